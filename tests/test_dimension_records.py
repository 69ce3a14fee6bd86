"""Dimension records: tables, insert, sync, fetch and fill_implied, on every database."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import operator
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy

from databutler import ConflictError, DataIdError, DimensionConfigError, UnknownDimensionError
from databutler.dimensions import DataCoordinate, DimensionUniverse
from databutler.registry.dimension_records import (
    DimensionRecord,
    DimensionRecordConflictError,
    StaticDimensionRecordStorageManager,
)
from databutler.registry.interfaces import Database
from databutler.testing.database import DatabaseFactory
from databutler.testing.dimensions import universe_v1

UNIVERSE = universe_v1()  # these tests describe the version-1 layout
UTC = datetime.UTC
HST = datetime.timezone(datetime.timedelta(hours=-10))
BEGIN = datetime.datetime(2024, 3, 1, 22, 15, 30, 123456, tzinfo=HST)
END = datetime.datetime(2024, 3, 2, 8, 16, 0, tzinfo=UTC)
NASTY = "x'); DROP TABLE detector; --"


@pytest.fixture
def manager(db: Database) -> StaticDimensionRecordStorageManager:
    with db.declareStaticTables(create=True) as context:
        return StaticDimensionRecordStorageManager.initialize(db, context, universe=UNIVERSE)


@pytest.fixture
def hsc(manager: StaticDimensionRecordStorageManager) -> StaticDimensionRecordStorageManager:
    """An instrument with two filters, three detectors and one exposure."""
    manager.insert("instrument", {"instrument": "HSC", "visit_max": 21_000_000})
    manager.insert("band", {"band": "g"}, {"band": "r"})
    manager.insert(
        "physical_filter",
        {"instrument": "HSC", "physical_filter": "HSC-G", "band": "g"},
        {"instrument": "HSC", "name": "HSC-R", "band": "r"},  # the key under its own name
    )
    manager.insert(
        "detector",
        *({"instrument": "HSC", "detector": i, "full_name": f"1_{i}"} for i in range(3)),
    )
    manager.insert("day_obs", {"instrument": "HSC", "day_obs": 20240301})
    manager.insert("exposure", _exposure(1))
    return manager


def _exposure(exposure: int, physical_filter: str = "HSC-G", **more: Any) -> dict[str, Any]:
    return {
        "instrument": "HSC",
        "exposure": exposure,
        "physical_filter": physical_filter,
        "day_obs": 20240301,
        "obs_id": f"HSCA{operator.index(exposure):08d}",
        "exposure_time": 30.5,
        "datetime_begin": BEGIN,
        "datetime_end": END,
        **more,
    }


def _rows(databases: DatabaseFactory, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table``, read through the backdoor, sorted."""
    with databases.raw_engine().connect() as connection:
        result = connection.execute(sqlalchemy.text(f"SELECT * FROM {databases.qualified(table)}"))
        return sorted((tuple(row) for row in result), key=repr)


@contextmanager
def _selects(databases: DatabaseFactory) -> Iterator[list[str]]:
    """The SELECT statements run inside the block."""
    statements: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    engine = databases.raw_engine()
    sqlalchemy.event.listen(engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", listener)


# -- tables ----------------------------------------------------------------


def test_tables_are_named_and_keyed_by_dimension(
    manager: StaticDimensionRecordStorageManager, databases: DatabaseFactory
) -> None:
    inspector = sqlalchemy.inspect(databases.raw_engine())
    schema = databases.namespace
    assert set(inspector.get_table_names(schema=schema)) == set(UNIVERSE.names)
    columns = [c["name"] for c in inspector.get_columns("exposure", schema=schema)]
    assert columns == [
        "instrument",
        "exposure",
        "physical_filter",
        "day_obs",
        "obs_id",
        "exposure_time",
        "datetime_begin",
        "datetime_end",
    ]
    assert inspector.get_pk_constraint("exposure", schema=schema)["constrained_columns"] == [
        "instrument",
        "exposure",
    ]
    assert inspector.get_pk_constraint("patch", schema=schema)["constrained_columns"] == [
        "skymap",
        "tract",
        "patch",
    ]
    foreign_keys = {
        (fk["referred_table"], tuple(fk["constrained_columns"]), tuple(fk["referred_columns"]))
        for fk in inspector.get_foreign_keys("exposure", schema=schema)
    }
    assert foreign_keys == {
        ("instrument", ("instrument",), ("instrument",)),
        ("physical_filter", ("instrument", "physical_filter"), ("instrument", "physical_filter")),
        ("day_obs", ("instrument", "day_obs"), ("instrument", "day_obs")),
    }
    nullable = {c["name"]: c["nullable"] for c in inspector.get_columns("exposure", schema=schema)}
    assert not nullable["physical_filter"] and not nullable["day_obs"] and nullable["obs_id"]
    assert manager.table("exposure").name == "exposure"
    assert manager.universe is UNIVERSE
    with pytest.raises(UnknownDimensionError, match="valid elements are: instrument"):
        manager.table("nope")


def test_metadata_named_like_a_key_column_is_refused(db: Database) -> None:
    universe = DimensionUniverse.from_config(
        {
            "namespace": "test",
            "version": 1,
            "dimensions": {
                "a": {"key": {"name": "id", "type": "int"}},
                "b": {"key": {"name": "id", "type": "int"}, "requires": ["a"]},
                "c": {
                    "key": {"name": "id", "type": "int"},
                    "requires": ["b"],
                    "metadata": [{"name": "a", "type": "int"}],
                },
            },
        }
    )
    with (
        pytest.raises(DimensionConfigError, match="metadata field 'a' has the same name"),
        db.declareStaticTables(create=True) as context,
    ):
        StaticDimensionRecordStorageManager.initialize(db, context, universe=universe)


# -- insert and fetch ------------------------------------------------------


def test_insert_stores_values_and_fetch_reads_them_back(
    hsc: StaticDimensionRecordStorageManager, databases: DatabaseFactory
) -> None:
    visit_record = {
        "instrument": "HSC",
        "visit": 7,
        "physical_filter": "HSC-G",
        "day_obs": 20240301,
        "name": "v7",
        "datetime_end": END,
    }
    hsc.insert("visit", visit_record)
    assert _rows(databases, "physical_filter") == [("HSC", "HSC-G", "g"), ("HSC", "HSC-R", "r")]
    (row,) = _rows(databases, "exposure")
    assert row[:6] == ("HSC", 1, "HSC-G", 20240301, "HSCA00000001", 30.5)
    # Stored as naive UTC (SQLite hands the text back through the backdoor).
    stored = [datetime.datetime.fromisoformat(v) if isinstance(v, str) else v for v in row[6:]]
    assert stored == [datetime.datetime(2024, 3, 2, 8, 15, 30, 123456), END.replace(tzinfo=None)]
    (exposure,) = hsc.fetch("exposure")
    assert exposure.to_dict() == _exposure(1)
    assert exposure.datetime_begin == BEGIN and exposure.datetime_begin.tzinfo is UTC
    assert exposure.exposure_time == 30.5 and exposure.obs_id == "HSCA00000001"
    assert exposure.element == "exposure" and exposure.id == 1 and exposure.exposure == 1
    assert exposure.data_id == DataCoordinate.standardize(
        instrument="HSC", exposure=1, universe=UNIVERSE
    )
    assert exposure.data_id.mapping["physical_filter"] == "HSC-G"
    assert list(exposure.values) == [c.name for c in hsc.table("exposure").columns]
    (visit,) = hsc.fetch("visit")
    assert visit.to_dict() == {**visit_record, "exposure_time": None, "datetime_begin": None}
    (instrument,) = hsc.fetch("instrument")
    assert instrument.to_dict() == {
        "instrument": "HSC",
        "visit_max": 21_000_000,
        "detector_max": None,
        "class_name": None,
    }
    assert instrument.name == "HSC"  # the key under its own name


def test_records_are_immutable_hashable_values(hsc: StaticDimensionRecordStorageManager) -> None:
    first, second = hsc.fetch("exposure"), hsc.fetch("exposure")
    assert first == second and hash(first[0]) == hash(second[0])
    record = first[0]
    assert isinstance(record, DimensionRecord) and {record, second[0]} == {record}
    assert pickle.loads(pickle.dumps(record)) == record
    assert copy.deepcopy(record) == record
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.obs_id = "other"
    with pytest.raises(TypeError):
        record.values["obs_id"] = "other"  # type: ignore[index]
    with pytest.raises(AttributeError, match="no field 'nope'; its fields are instrument"):
        _ = record.nope
    assert "obs_id='HSCA00000001'" in repr(record)
    assert record != hsc.fetch("detector")[0]


def test_fetch_by_data_ids_in_batches(
    hsc: StaticDimensionRecordStorageManager, db: Database, databases: DatabaseFactory
) -> None:
    hsc.insert("instrument", {"instrument": "LSST"})
    hsc.insert("detector", *({"instrument": "LSST", "id": i} for i in range(20)))
    db.IN_BATCH_SIZE = 8  # two key columns: four keys per query
    wanted = [{"instrument": "LSST", "detector": i} for i in (19, *range(10))]
    wanted += [{"instrument": "LSST", "detector": 99}, {"instrument": "LSST", "detector": 3}]
    with _selects(databases) as statements:
        records = hsc.fetch("detector", wanted)
    assert [r.detector for r in records] == [19, *range(10)]  # in order; no dupes, no 99
    assert len(statements) == 3  # 12 distinct keys, 4 per query
    mixed = [
        DataCoordinate.standardize(instrument=i, detector=d, exposure=1, universe=UNIVERSE)
        for i, d in [("HSC", 0), ("LSST", 5), ("HSC", 2), ("LSST", 0), ("HSC", 1)]
    ]
    with _selects(databases) as statements:
        records = hsc.fetch("detector", mixed)
    assert [(r.instrument, r.detector) for r in records] == [
        ("HSC", 0),
        ("LSST", 5),
        ("HSC", 2),
        ("LSST", 0),
        ("HSC", 1),
    ]
    assert len(statements) == 2
    assert len(hsc.fetch("detector")) == 23
    assert [r.detector for r in hsc.fetch("detector", instrument="HSC")] == [0, 1, 2]
    assert [r.id for r in hsc.fetch("detector", wanted, full_name=None)][:2] == [19, 0]
    assert hsc.fetch("detector", [], instrument="HSC") == []
    assert [r.detector for r in hsc.fetch("detector", full_name="1_2")] == [2]
    assert [r.exposure for r in hsc.fetch("exposure", datetime_begin=BEGIN)] == [1]
    with pytest.raises(DataIdError, match="not a field; valid fields are: instrument, detector"):
        hsc.fetch("detector", colour="red")
    with pytest.raises(DataIdError, match="has no value for the required dimension 'detector'"):
        hsc.fetch("detector", [{"instrument": "HSC"}])
    with pytest.raises(DataIdError, match="expected int"):
        hsc.fetch("detector", detector="1")


# -- sync ------------------------------------------------------------------


def test_sync_inserts_accepts_identical_and_refuses_different(
    hsc: StaticDimensionRecordStorageManager, databases: DatabaseFactory
) -> None:
    assert hsc.sync("exposure", _exposure(2)) is True
    assert hsc.sync("exposure", _exposure(2)) is False
    (stored,) = hsc.fetch("exposure", [{"instrument": "HSC", "exposure": 2}])
    assert hsc.sync("exposure", stored) is False  # a fetched record syncs as identical
    before = _rows(databases, "exposure")
    changed = _exposure(2, "HSC-R", exposure_time=31.0)
    with pytest.raises(DimensionRecordConflictError) as info:
        hsc.sync("exposure", changed)
    message = str(info.value)
    assert "exposure record for instrument='HSC', exposure=2 exists with other values" in message
    assert "physical_filter='HSC-G' (given 'HSC-R')" in message
    assert "exposure_time=30.5 (given 31.0)" in message and "obs_id" not in message
    assert isinstance(info.value, ConflictError)
    with pytest.raises(DimensionRecordConflictError, match=r"datetime_end=datetime.datetime"):
        hsc.sync("exposure", _exposure(2, datetime_end=END + datetime.timedelta(seconds=1)))
    with pytest.raises(ConflictError, match=r"no physical_filter record for .*'HSC-Z'"):
        hsc.sync("exposure", _exposure(3, "HSC-Z"))
    assert _rows(databases, "exposure") == before


# -- refused input ---------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "match"),
    [
        (
            {"colour": "red"},
            r"unknown field\(s\) 'colour'; valid fields are: instrument, detector "
            r"\(or 'id'\), full_name, purpose",
        ),
        (
            {"detector": None},
            r"no value for 'detector' \(the detector key, also accepted as 'id'\)",
        ),
        ({"instrument": None}, r"no value for 'instrument' \(a required dimension\)"),
        ({"detector": "7"}, r"field 'detector': '7' \(str\) has the wrong type; expected int"),
        ({"detector": True}, r"field 'detector': True \(bool\) is a bool; expected int"),
        ({"detector": 7.0}, r"7.0 \(float\) has the wrong type; expected int"),
        ({"detector": 2**63}, "does not fit in a 64-bit signed integer"),
        ({"instrument": 7}, r"field 'instrument': 7 \(int\) has the wrong type; expected str"),
        ({"instrument": ""}, "is empty"),
        ({"full_name": "x" * 33}, "is longer than 32 characters"),
        ({"full_name": "a\x00b"}, "contains a NUL character"),
        ({"full_name": 5}, "expected str"),
        ({"id": 8}, "gives its key twice"),
    ],
)
def test_bad_detector_records_are_refused(
    hsc: StaticDimensionRecordStorageManager,
    databases: DatabaseFactory,
    record: dict[str, Any],
    match: str,
) -> None:
    before = _rows(databases, "detector")
    good = {"instrument": "HSC", "detector": 50, "full_name": "ok"}
    with pytest.raises(DataIdError, match=match):
        # The good record first: nothing is written unless every record is valid.
        hsc.insert("detector", good, {**good, "detector": 51, **record})
    assert _rows(databases, "detector") == before


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"datetime_begin": BEGIN.replace(tzinfo=None)}, "has no time zone; give an aware"),
        ({"datetime_begin": datetime.date(2024, 3, 1)}, "expected a timezone-aware datetime"),
        ({"exposure_time": "30"}, r"'30' \(str\) has the wrong type; expected float"),
        ({"exposure_time": True}, "expected float"),
        ({"exposure_time": float("nan")}, "is NaN"),
        ({"physical_filter": None}, r"no value for 'physical_filter' \(an implied dimension\)"),
        ({"obs_id": None, "colour": 1}, "unknown field"),
    ],
)
def test_bad_exposure_records_are_refused(
    hsc: StaticDimensionRecordStorageManager,
    databases: DatabaseFactory,
    change: dict[str, Any],
    match: str,
) -> None:
    before = _rows(databases, "exposure")
    with pytest.raises(DataIdError, match=match):
        hsc.insert("exposure", _exposure(5), {**_exposure(6), **change})
    with pytest.raises(DataIdError, match=match):
        hsc.sync("exposure", {**_exposure(6), **change})
    assert _rows(databases, "exposure") == before


def test_number_types_are_converted(
    hsc: StaticDimensionRecordStorageManager,
) -> None:
    class Index:
        def __index__(self) -> int:
            return 9

    hsc.insert("detector", {"instrument": "HSC", "detector": Index()})
    hsc.insert("exposure", _exposure(Index(), exposure_time=30))  # type: ignore[arg-type]
    (exposure,) = hsc.fetch("exposure", [{"instrument": "HSC", "exposure": 9}])
    assert type(exposure.exposure) is int and type(exposure.exposure_time) is float
    assert exposure.datetime_end == END
    exact = _exposure(10, exposure_time=0.1 + 0.2)  # double precision, bit for bit
    hsc.insert("exposure", exact, _exposure(11, exposure_time=float("inf")))
    assert hsc.fetch("exposure", exposure=10)[0].exposure_time == 0.1 + 0.2
    assert hsc.sync("exposure", exact) is False
    assert hsc.fetch("exposure", exposure=11)[0].exposure_time == float("inf")


def test_bool_and_unbounded_string_fields(db: Database, databases: DatabaseFactory) -> None:
    universe = DimensionUniverse.from_config(
        {
            "namespace": "test",
            "version": 1,
            "dimensions": {
                "camera": {
                    "key": {"name": "name", "type": "string"},
                    "metadata": [{"name": "active", "type": "bool", "nullable": False}],
                },
                "ccd": {
                    "key": {"name": "id", "type": "int"},
                    "requires": ["camera"],
                    "metadata": [{"name": "notes", "type": "string"}],
                },
            },
        }
    )
    with db.declareStaticTables(create=True) as context:
        manager = StaticDimensionRecordStorageManager.initialize(db, context, universe=universe)
    long_name = "c" * 500
    manager.insert("camera", {"name": long_name, "active": True}, {"camera": "b", "active": False})
    manager.insert("ccd", {"camera": long_name, "ccd": 1, "notes": "n" * 10_000})
    assert [(r.name, r.active) for r in manager.fetch("camera")] == [
        ("b", False),
        (long_name, True),
    ]
    assert manager.fetch("camera", active=False)[0].camera == "b"
    assert manager.fetch("ccd")[0].notes == "n" * 10_000
    before = _rows(databases, "camera")
    with pytest.raises(
        DataIdError, match=r"field 'active': 1 \(int\) has the wrong type; expected bool"
    ):
        manager.insert("camera", {"camera": "x", "active": 1})
    with pytest.raises(DataIdError, match=r"'active' \(a metadata field that is not nullable\)"):
        manager.insert("camera", {"camera": "x"})
    assert _rows(databases, "camera") == before


def test_missing_parent_records_are_named(
    hsc: StaticDimensionRecordStorageManager, databases: DatabaseFactory
) -> None:
    before = {name: _rows(databases, name) for name in ("detector", "physical_filter")}
    with pytest.raises(ConflictError, match="no instrument record for instrument='LSST'; insert"):
        hsc.insert("detector", {"instrument": "LSST", "detector": 1})
    with pytest.raises(ConflictError, match=r"no band record for band='z' \(and 1 more\)"):
        hsc.insert(
            "physical_filter",
            {"instrument": "HSC", "physical_filter": "HSC-I", "band": "r"},
            {"instrument": "HSC", "physical_filter": "HSC-Z", "band": "z"},
            {"instrument": "HSC", "physical_filter": "HSC-Y", "band": "y"},
        )
    assert {name: _rows(databases, name) for name in before} == before
    hsc.insert("band", {"band": "z"})  # the fix the message asks for
    hsc.insert("physical_filter", {"instrument": "HSC", "physical_filter": "HSC-Z", "band": "z"})


def test_duplicates_are_conflicts(
    hsc: StaticDimensionRecordStorageManager, databases: DatabaseFactory
) -> None:
    before = _rows(databases, "detector")
    new = {"instrument": "HSC", "detector": 10}
    with pytest.raises(
        DimensionRecordConflictError,
        match=r"record for instrument='HSC', detector=1 exists already \(and 1 more\).*sync",
    ):
        hsc.insert("detector", new, {"instrument": "HSC", "detector": 1}, {**new, "detector": 2})
    with pytest.raises(DimensionRecordConflictError, match="detector=10 is given twice"):
        hsc.insert("detector", new, {**new, "full_name": "other"})
    assert _rows(databases, "detector") == before


def test_sql_text_is_stored_verbatim(
    manager: StaticDimensionRecordStorageManager, databases: DatabaseFactory
) -> None:
    manager.insert("instrument", {"instrument": NASTY, "class_name": NASTY + '"; --'})
    manager.insert("detector", {"instrument": NASTY, "detector": 0, "full_name": NASTY})
    (detector,) = manager.fetch("detector", [{"instrument": NASTY, "detector": 0}])
    assert detector.full_name == NASTY
    assert manager.fetch("detector", instrument=NASTY) == [detector]
    assert _rows(databases, "detector") == [(NASTY, 0, NASTY, None)]
    assert manager.sync("instrument", {"name": NASTY, "class_name": NASTY + '"; --'}) is False


# -- fill_implied ----------------------------------------------------------


def test_fill_implied_for_many_data_ids(
    hsc: StaticDimensionRecordStorageManager, db: Database, databases: DatabaseFactory
) -> None:
    hsc.insert("exposure", *(_exposure(i, "HSC-R" if i % 2 else "HSC-G") for i in range(2, 12)))
    db.IN_BATCH_SIZE = 10  # two key columns: five keys per query
    data_ids = [
        DataCoordinate.standardize(instrument="HSC", exposure=e, detector=d, universe=UNIVERSE)
        for e in range(1, 12)
        for d in range(3)
    ]
    data_ids.append(DataCoordinate.standardize(instrument="HSC", detector=0, universe=UNIVERSE))
    with _selects(databases) as statements:
        filled = hsc.fill_implied(data_ids)
    # 11 exposures in batches of 5, then 2 physical filters: 3 + 1 queries.
    assert len(statements) == 4
    assert filled == data_ids and all(c.has_full() for c in filled)
    assert filled[0].mapping == {
        "instrument": "HSC",
        "band": "g",
        "physical_filter": "HSC-G",
        "detector": 0,
        "day_obs": 20240301,
        "exposure": 1,
    }
    assert filled[3 * 4]["band"] == "r" and filled[-1] is data_ids[-1]
    assert hsc.fill_implied([{"instrument": "HSC", "physical_filter": "HSC-R"}])[0]["band"] == "r"
    assert hsc.fill_implied([]) == []


def test_fill_implied_names_a_missing_record(hsc: StaticDimensionRecordStorageManager) -> None:
    data_ids = [
        {"instrument": "HSC", "exposure": 1, "detector": 0},
        {"instrument": "HSC", "exposure": 999, "detector": 0},
    ]
    with pytest.raises(
        DataIdError, match="no exposure record for instrument='HSC', exposure=999; insert it first"
    ):
        hsc.fill_implied(data_ids)
    contradicting = {"instrument": "HSC", "exposure": 1, "physical_filter": "HSC-R"}
    with pytest.raises(DataIdError, match="has physical_filter='HSC-R', but the exposure record"):
        hsc.fill_implied([contradicting])
    other = DimensionUniverse(version=2)
    with pytest.raises(DataIdError, match="another dimension universe"):
        hsc.fill_implied([DataCoordinate.standardize(band="g", universe=other)])


# -- transactions ----------------------------------------------------------


def test_insert_is_undone_with_its_transaction(
    hsc: StaticDimensionRecordStorageManager, db: Database, databases: DatabaseFactory
) -> None:
    before = _rows(databases, "detector")
    with pytest.raises(RuntimeError, match="abandon"), db.transaction():
        hsc.insert("detector", {"instrument": "HSC", "detector": 40})
        assert hsc.sync("detector", {"instrument": "HSC", "detector": 41}) is True
        raise RuntimeError("abandon")
    assert _rows(databases, "detector") == before


def test_failed_insert_keeps_the_rest_of_the_transaction(
    hsc: StaticDimensionRecordStorageManager, db: Database, databases: DatabaseFactory
) -> None:
    with db.transaction():
        hsc.insert("detector", {"instrument": "HSC", "detector": 40})
        with pytest.raises(ConflictError, match="exists already"):
            hsc.insert(
                "detector",
                {"instrument": "HSC", "detector": 41},
                {"instrument": "HSC", "detector": 0},
            )
        hsc.insert("detector", {"instrument": "HSC", "detector": 42})
    assert [r.detector for r in hsc.fetch("detector")] == [0, 1, 2, 40, 42]


def test_clone_shares_the_tables(hsc: StaticDimensionRecordStorageManager, db: Database) -> None:
    clone = hsc.clone(db.clone())
    assert clone.fetch("exposure") == hsc.fetch("exposure")
    assert clone.table("detector") is hsc.table("detector")
    assert clone.newSchemaVersion() == hsc.newSchemaVersion() == (1, 0, 0)
