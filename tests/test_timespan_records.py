"""Timespan, region and bytes fields of dimension records, on SQLite and PostgreSQL.

A ``timespan`` field is stored as two BIGINT columns ``F_begin``/``F_end``
(integer ns since 1970 UTC, the calibration sentinels for unbounded sides,
NULL for no timespan); records go in and come back exactly, through the
API, databutler's own exports (YAML and JSON) and ``sync``.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from databutler import (
    Butler,
    DataIdError,
    DimensionConfigError,
    ExportFormatError,
    InvalidArgumentError,
    Timespan,
)
from databutler._timespan_ns import MAX_NS, MIN_NS, from_ns, to_ns
from databutler.dimensions import DimensionUniverse, check_value
from databutler.registry.dimension_records import DimensionRecordConflictError
from databutler.testing.butler import registry_arguments

UTC = datetime.UTC
T0 = datetime.datetime(2024, 3, 1, 3, 0, 0, 123456, tzinfo=UTC)
SECOND = datetime.timedelta(seconds=1)
BOUNDED = Timespan(T0, T0 + 30 * SECOND)
NO_BEGIN = Timespan(None, T0)
NO_END = Timespan(T0 + 60 * SECOND, None)
EVERYTHING = Timespan(None, None)
# A region is opaque bytes: sphgeom's encoding (first byte: the class, 'p' for ConvexPolygon).
REGION = b"p" + bytes(range(48))


@pytest.fixture(params=["sqlite", "postgresql"])
def butler(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Butler]:
    """A new repository with the default (version 2) universe, filled up to exposures."""
    with registry_arguments(request.param) as arguments:
        made = Butler.create(str(tmp_path / "repo"), run="r", **arguments)
        try:
            made.insert_dimension_records("instrument", {"instrument": "HSC"})
            made.insert_dimension_records("band", {"band": "g"})
            made.insert_dimension_records(
                "physical_filter", {"instrument": "HSC", "physical_filter": "HSC-G", "band": "g"}
            )
            made.insert_dimension_records(
                "day_obs", {"instrument": "HSC", "day_obs": 20240301, "timespan": EVERYTHING}
            )
            made.insert_dimension_records("group", {"instrument": "HSC", "group": "night"})
            made.insert_dimension_records("detector", {"instrument": "HSC", "detector": 1})
            yield made
        finally:
            made.close()


def exposure(number: int, timespan: Timespan | None, **more: Any) -> dict[str, Any]:
    return {
        "instrument": "HSC",
        "exposure": number,
        "physical_filter": "HSC-G",
        "group": "night",
        "day_obs": 20240301,
        "obs_id": f"HSC{number:04d}",
        "timespan": timespan,
        **more,
    }


def stored(butler: Butler, table: str, *columns: str) -> list[tuple[Any, ...]]:
    """Raw column values of ``table``, read past databutler's records, by key."""
    db = butler.registry.db
    t = sqlalchemy.table(table, *(sqlalchemy.column(c) for c in columns), schema=db.namespace)
    sql = sqlalchemy.select(t).order_by(*(t.c[c] for c in columns[:2]))
    with db.query(sql) as result:
        return [tuple(row) for row in result]


TIMESPANS = {1: BOUNDED, 2: NO_BEGIN, 3: NO_END, 4: EVERYTHING, 5: None}


def test_records_with_timespans_come_back_exactly(butler: Butler) -> None:
    butler.insert_dimension_records(
        "exposure", *(exposure(n, span) for n, span in TIMESPANS.items())
    )
    butler.insert_dimension_records(
        "exposure", {**exposure(6, None), "timespan": None, "exposure_time": 15.0}
    )
    records = {r.exposure: r for r in butler.query_dimension_records("exposure")}
    assert {n: r.timespan for n, r in records.items()} == {**TIMESPANS, 6: None}
    assert records[1].timespan == Timespan(
        datetime.datetime(2024, 3, 1, 3, 0, 0, 123456, tzinfo=UTC),
        datetime.datetime(2024, 3, 1, 3, 0, 30, 123456, tzinfo=UTC),
    )
    assert records[1].to_dict() == exposure(1, BOUNDED) | {
        field: None
        for field in (
            "exposure_time", "dark_time", "observation_type", "observation_reason", "seq_num",
            "seq_start", "seq_end", "target_name", "science_program", "tracking_ra",
            "tracking_dec", "sky_angle", "azimuth", "zenith_angle", "has_simulated",
            "can_see_sky",
        )
    }  # fmt: skip
    # The storage contract: two BIGINT columns, ns since 1970 UTC, sentinels, NULL for none.
    begin = to_ns(T0, unbounded=MIN_NS)
    assert begin == 1709262000123456000
    assert stored(
        butler, "exposure", "instrument", "exposure", "timespan_begin", "timespan_end"
    ) == [
        ("HSC", 1, begin, begin + 30 * 10**9),
        ("HSC", 2, MIN_NS, begin),
        ("HSC", 3, begin + 60 * 10**9, MAX_NS),
        ("HSC", 4, MIN_NS, MAX_NS),
        ("HSC", 5, None, None),
        ("HSC", 6, None, None),
    ]
    assert from_ns(begin) == T0 and from_ns(MIN_NS) is None and from_ns(MAX_NS) is None


def test_timespans_in_other_zones_are_stored_in_utc(butler: Butler) -> None:
    tokyo = datetime.timezone(datetime.timedelta(hours=9))
    butler.insert_dimension_records(
        "exposure",
        exposure(1, Timespan(T0.astimezone(tokyo), (T0 + SECOND).astimezone(tokyo))),
    )
    (record,) = butler.query_dimension_records("exposure")
    assert record.timespan == Timespan(T0, T0 + SECOND)
    assert record.timespan.begin is not None and record.timespan.begin.tzinfo is UTC


def test_fetch_and_sync_compare_timespans(butler: Butler) -> None:
    butler.insert_dimension_records("exposure", exposure(1, BOUNDED), exposure(2, None))
    manager: Any = butler.registry._managers.dimensions
    assert [r.exposure for r in manager.fetch("exposure", timespan=BOUNDED)] == [1]
    assert [r.exposure for r in manager.fetch("exposure", timespan=None)] == [2]
    assert manager.fetch("exposure", timespan=NO_END) == []
    assert (
        butler.insert_dimension_records("exposure", exposure(1, BOUNDED), skip_existing=True) == 0
    )
    with pytest.raises(DimensionRecordConflictError) as caught:
        butler.insert_dimension_records("exposure", exposure(1, NO_END), skip_existing=True)
    assert "exists with other values: timespan=Timespan(" in str(caught.value)
    assert [r.timespan for r in butler.query_dimension_records("exposure")] == [BOUNDED, None]


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ((T0, T0 + SECOND), "expected a databutler.Timespan"),
        ("2024-03-01/2024-03-02", "expected a databutler.Timespan"),
        (T0, "expected a databutler.Timespan"),
    ],
)
def test_bad_timespans_are_refused_unchanged(butler: Butler, value: Any, says: str) -> None:
    with pytest.raises(DataIdError, match=says) as caught:
        butler.insert_dimension_records("exposure", exposure(1, None) | {"timespan": value})
    assert "field 'timespan'" in str(caught.value)
    assert list(butler.query_dimension_records("exposure")) == []


def test_times_beyond_the_storable_range_are_refused(butler: Butler) -> None:
    far = Timespan(datetime.datetime(9999, 12, 31, tzinfo=datetime.UTC), None)
    with pytest.raises(InvalidArgumentError, match="outside the range a time range can store"):
        butler.insert_dimension_records("exposure", exposure(1, far))
    assert list(butler.query_dimension_records("exposure")) == []


def test_regions_are_opaque_bytes(butler: Butler) -> None:
    butler.insert_dimension_records(
        "visit",
        {"instrument": "HSC", "visit": 1, "physical_filter": "HSC-G", "day_obs": 20240301,
         "name": "v1", "timespan": BOUNDED, "region": REGION},
        {"instrument": "HSC", "visit": 2, "physical_filter": "HSC-G", "day_obs": 20240301,
         "name": "v2", "region": bytearray(b"c\x01")},
    )  # fmt: skip
    butler.insert_dimension_records(
        "visit_detector_region",
        {"instrument": "HSC", "visit": 1, "detector": 1, "region": memoryview(REGION)},
    )
    visits = {r.visit: r for r in butler.query_dimension_records("visit")}
    assert (visits[1].region, visits[1].timespan) == (REGION, BOUNDED)
    assert (visits[2].region, visits[2].timespan) == (b"c\x01", None)
    (vdr,) = butler.query_dimension_records("visit_detector_region")
    assert vdr.to_dict() == {"instrument": "HSC", "visit": 1, "detector": 1, "region": REGION}
    with pytest.raises(DataIdError, match="expected bytes"):
        butler.insert_dimension_records(
            "visit_detector_region",
            {"instrument": "HSC", "visit": 2, "detector": 1, "region": "p0102"},
        )
    with pytest.raises(DataIdError, match="is empty; a region is non-empty bytes"):
        butler.insert_dimension_records(
            "visit_detector_region", {"instrument": "HSC", "visit": 2, "detector": 1, "region": b""}
        )
    assert len(list(butler.query_dimension_records("visit_detector_region"))) == 1


def test_skymap_hash_is_bytes_of_at_most_40(butler: Butler) -> None:
    digest = bytes(range(20))
    butler.insert_dimension_records("skymap", {"skymap": "rings", "hash": digest, "tract_max": 2})
    (record,) = butler.query_dimension_records("skymap")
    assert record.hash == digest
    with pytest.raises(DataIdError, match="is longer than 40 bytes"):
        butler.insert_dimension_records("skymap", {"skymap": "big", "hash": bytes(41)})


@pytest.mark.parametrize("format", ["yaml", "json"])
def test_own_exports_round_trip_timespans_and_bytes(
    butler: Butler, tmp_path: Path, format: str
) -> None:
    butler.insert_dimension_records(
        "exposure", *(exposure(n, span) for n, span in TIMESPANS.items())
    )
    butler.insert_dimension_records(
        "visit",
        {"instrument": "HSC", "visit": 1, "physical_filter": "HSC-G", "day_obs": 20240301,
         "name": "v1", "timespan": NO_BEGIN, "region": REGION},
    )  # fmt: skip
    butler.register_dataset_type("raw", ["exposure", "detector"], "StructuredDataDict")
    butler.register_dataset_type("calexp", ["visit", "detector"], "StructuredDataDict")
    for n in TIMESPANS:
        butler.put({"n": n}, "raw", instrument="HSC", exposure=n, detector=1)
    butler.put({"v": 1}, "calexp", instrument="HSC", visit=1, detector=1)
    out = tmp_path / "out"
    butler.export(out, collections=["r"], format=format)
    text = (out / f"export.{format}").read_text()
    assert "2024-03-01T03:00:00.123456+00:00" in text and REGION.hex() in text
    target = Butler.create(str(tmp_path / "target"))
    try:
        target.import_(out)
        for element in ("day_obs", "exposure", "visit"):
            assert list(target.query_dimension_records(element)) == list(
                butler.query_dimension_records(element)
            )
        assert {r.exposure: r.timespan for r in target.query_dimension_records("exposure")} == (
            TIMESPANS
        )
        assert [r.region for r in target.query_dimension_records("visit")] == [REGION]
    finally:
        target.close()


def test_timespan_columns_must_not_clash(tmp_path: Path) -> None:
    config = DimensionUniverse().to_config()
    config["dimensions"]["exposure"]["metadata"].append({"name": "timespan_end", "type": "int"})
    universe = DimensionUniverse(config)
    with pytest.raises(DimensionConfigError, match="the column 'timespan_end' of timespan field"):
        Butler.create(str(tmp_path / "repo"), universe=universe)
    assert not (tmp_path / "repo" / "butler.yaml").exists()


def test_check_value_of_the_new_types() -> None:
    assert check_value("timespan", None, BOUNDED, "x") is BOUNDED
    assert check_value("region", None, bytearray(b"p1"), "x") == b"p1"
    assert check_value("bytes", 2, b"ab", "x") == b"ab"
    with pytest.raises(DataIdError, match="x: 'ab' \\(str\\) has the wrong type; expected bytes"):
        check_value("bytes", None, "ab", "x")


def test_command_line_shows_timespans_and_bytes(butler: Butler) -> None:
    from click.testing import CliRunner

    from databutler.cli import main

    butler.insert_dimension_records("exposure", exposure(1, NO_BEGIN), exposure(2, None))
    butler.insert_dimension_records("skymap", {"skymap": "rings", "hash": b"\x01\xff"})
    runner = CliRunner()
    shown = runner.invoke(
        main, ["query-dimension-records", butler.root, "exposure", "--format", "json"]
    )
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.output)
    assert [(r["exposure"], r["timespan"]) for r in rows] == [
        (1, {"begin": None, "end": "2024-03-01T03:00:00.123456+00:00"}),
        (2, None),
    ]
    shown = runner.invoke(
        main, ["query-dimension-records", butler.root, "skymap", "--format", "csv"]
    )
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines()[1].startswith("rings,01ff,")


def test_command_line_inserts_timespans_regions_and_other_elements(
    butler: Butler, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from databutler.cli import main

    records = tmp_path / "records.yaml"
    records.write_text(
        "exposure:\n"
        "- {instrument: HSC, id: 1, physical_filter: HSC-G, group: night, day_obs: 20240301,\n"
        "   timespan: {begin: '2024-03-01T03:00:00.123456+00:00', end: null}}\n"
        "visit:\n"
        "- {instrument: HSC, id: 1, physical_filter: HSC-G, day_obs: 20240301, region: 70ff}\n"
        "visit_definition:\n"
        "- {instrument: HSC, exposure: 1, visit: 1}\n"
    )
    table = tmp_path / "exposures.csv"
    table.write_text(
        "instrument,exposure,physical_filter,group,day_obs,timespan\n"
        'HSC,2,HSC-G,night,20240301,"{""begin"": null, ""end"": ""2024-03-01T03:00:00Z""}"\n'
        "HSC,3,HSC-G,night,20240301,\n"
    )
    runner = CliRunner()
    done = runner.invoke(main, ["insert-dimension-records", butler.root, str(records)])
    assert done.exit_code == 0, done.output
    done = runner.invoke(
        main, ["insert-dimension-records", butler.root, str(table), "--element", "exposure"]
    )
    assert done.exit_code == 0, done.output
    assert {r.exposure: r.timespan for r in butler.query_dimension_records("exposure")} == {
        1: Timespan(T0, None),
        2: Timespan(None, T0.replace(microsecond=0)),
        3: None,
    }
    assert [r.region for r in butler.query_dimension_records("visit")] == [b"\x70\xff"]
    assert [r.to_dict() for r in butler.query_dimension_records("visit_definition")] == [
        {"instrument": "HSC", "exposure": 1, "visit": 1}
    ]
    table.write_text("instrument,exposure,physical_filter,group,day_obs,timespan\n"
                     "HSC,4,HSC-G,night,20240301,2024-03-01\n")  # fmt: skip
    refused = runner.invoke(
        main, ["insert-dimension-records", butler.root, str(table), "--element", "exposure"]
    )
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    assert "a timespan is {begin, end} with ISO times or null" in refused.output
    assert len(list(butler.query_dimension_records("exposure"))) == 3


@pytest.mark.parametrize(
    ("timespan", "says"),
    [
        ({"begin": "yesterday", "end": None}, "timespan.begin must be an ISO 8601 time"),
        ({"begin": None}, "timespan is a timespan, a mapping of 'begin' and 'end'"),
        ("2024-03-01", "timespan is a timespan, a mapping of 'begin' and 'end'"),
        (
            {"begin": "2024-03-02T00:00:00+00:00", "end": "2024-03-01T00:00:00+00:00"},
            "is not after its begin",
        ),
    ],
)
def test_own_exports_with_bad_timespans_are_refused(
    butler: Butler, tmp_path: Path, timespan: Any, says: str
) -> None:
    butler.insert_dimension_records("exposure", exposure(1, BOUNDED))
    butler.register_dataset_type("raw", ["exposure", "detector"], "StructuredDataDict")
    butler.put({"n": 1}, "raw", instrument="HSC", exposure=1, detector=1)
    out = tmp_path / "out"
    butler.export(out, collections=["r"], format="json")
    manifest = json.loads((out / "export.json").read_text())
    manifest["dimensions"]["exposure"][0]["timespan"] = timespan
    (out / "export.json").write_text(json.dumps(manifest))
    target = Butler.create(str(tmp_path / "target"))
    try:
        with pytest.raises(ExportFormatError, match=re.escape(says)):
            target.import_(out)
        assert list(target.query_dimension_records("exposure")) == []
    finally:
        target.close()
