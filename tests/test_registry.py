"""The SQL registry end to end, on every database."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy

from databutler import (
    CollectionError,
    CollectionType,
    ConflictError,
    DataIdError,
    DatasetIdGenEnum,
    DatasetType,
    OrphanedRecordError,
)
from databutler.registry import SqlRegistry
from databutler.registry.queries import ExpressionError
from databutler.testing.database import DatabaseFactory


@pytest.fixture
def registry(databases: DatabaseFactory) -> SqlRegistry:
    registry = SqlRegistry.create(databases.open())
    registry.insertDimensionData("instrument", {"instrument": "HSC", "detector_max": 200})
    registry.insertDimensionData("band", {"band": "r"}, {"band": "i"})
    registry.insertDimensionData(
        "physical_filter",
        {"instrument": "HSC", "physical_filter": "HSC-R", "band": "r"},
        {"instrument": "HSC", "physical_filter": "HSC-I", "band": "i"},
    )
    registry.insertDimensionData(
        "detector",
        *({"instrument": "HSC", "detector": d, "full_name": f"ccd{d}"} for d in range(1, 11)),
    )
    registry.registerDatasetType(DatasetType("bias", ["detector"], "ExposureF", isCalibration=True))
    registry.registerDatasetType(DatasetType("flat", ["detector", "physical_filter"], "ExposureF"))
    registry.registerRun("HSC/calib/a")
    registry.registerRun("HSC/calib/b")
    return registry


def _count(databases: DatabaseFactory, table: str) -> int:
    with databases.raw_engine().connect() as connection:
        return int(
            connection.execute(
                sqlalchemy.text(f"SELECT count(*) FROM {databases.qualified(table)}")
            ).scalar_one()
        )


def test_insert_and_find(registry: SqlRegistry) -> None:
    refs = registry.insertDatasets(
        "bias", [{"instrument": "HSC", "detector": d} for d in (1, 2, 3)], "HSC/calib/a"
    )
    assert [r.dataId["detector"] for r in refs] == [1, 2, 3]
    assert all(r.run == "HSC/calib/a" and r.id.version == 7 for r in refs)
    found = registry.findDataset("bias", instrument="HSC", detector=2, collections="HSC/calib/a")
    assert found == refs[1] and found is not None and found.id == refs[1].id
    assert (
        registry.findDataset("bias", instrument="HSC", detector=9, collections="HSC/calib/a")
        is None
    )


def test_find_follows_chain_order(registry: SqlRegistry) -> None:
    old = registry.insertDatasets("bias", [{"instrument": "HSC", "detector": 1}], "HSC/calib/a")[0]
    new = registry.insertDatasets("bias", [{"instrument": "HSC", "detector": 1}], "HSC/calib/b")[0]
    registry.registerCollection("HSC/calib", CollectionType.CHAINED)
    registry.setCollectionChain("HSC/calib", ["HSC/calib/b", "HSC/calib/a"])
    assert (
        registry.findDataset("bias", {"instrument": "HSC", "detector": 1}, collections="HSC/calib")
        == new
    )
    registry.setCollectionChain("HSC/calib", ["HSC/calib/a", "HSC/calib/b"])
    assert (
        registry.findDataset("bias", {"instrument": "HSC", "detector": 1}, collections="HSC/calib")
        == old
    )


def test_deterministic_ids(registry: SqlRegistry) -> None:
    data_id = {"instrument": "HSC", "detector": 4}
    mode = DatasetIdGenEnum.DATAID_TYPE_RUN
    first = registry.insertDatasets("bias", [data_id], "HSC/calib/a", mode)[0]
    second = registry.insertDatasets("bias", [data_id], "HSC/calib/b", mode)[0]
    assert first.id != second.id and first.id.version == 5
    with pytest.raises(ConflictError, match="Nothing was added"):
        registry.insertDatasets("bias", [data_id], "HSC/calib/a", mode)


def test_insert_conflicts_and_bad_data_ids_change_nothing(
    registry: SqlRegistry, databases: DatabaseFactory
) -> None:
    registry.insertDatasets("bias", [{"instrument": "HSC", "detector": 1}], "HSC/calib/a")
    before = _count(databases, "dataset")
    with pytest.raises(ConflictError, match="Nothing was added"):
        registry.insertDatasets(
            "bias",
            [{"instrument": "HSC", "detector": 2}, {"instrument": "HSC", "detector": 1}],
            "HSC/calib/a",
        )
    with pytest.raises(ConflictError, match="dimension record"):
        registry.insertDatasets("bias", [{"instrument": "HSC", "detector": 99}], "HSC/calib/a")
    with pytest.raises(DataIdError, match="detector"):
        registry.insertDatasets("bias", [{"instrument": "HSC"}], "HSC/calib/a")
    with pytest.raises(DataIdError, match="detector"):
        registry.insertDatasets(
            "bias", [{"instrument": "HSC", "detector": "1; DROP TABLE dataset"}], "HSC/calib/a"
        )
    registry.registerCollection("tag", CollectionType.TAGGED)
    with pytest.raises(CollectionError, match="RUN"):
        registry.insertDatasets("bias", [{"instrument": "HSC", "detector": 3}], "tag")
    assert _count(databases, "dataset") == before


def test_query_with_where_and_datastores(registry: SqlRegistry) -> None:
    refs = registry.insertDatasets(
        "flat",
        [
            {"instrument": "HSC", "detector": d, "physical_filter": f}
            for d in range(1, 7)
            for f in ("HSC-R", "HSC-I")
        ],
        "HSC/calib/a",
    )
    everything = registry.queryDatasets("flat", collections="HSC/calib/a")
    assert {r.id for r in everything} == {r.id for r in refs}
    chosen = registry.queryDatasets(
        "flat",
        collections=["HSC/calib/a"],
        where="detector IN (2, 3) AND physical_filter = :f",
        bind={"f": "HSC-I"},
    )
    assert sorted((r.dataId["detector"], r.dataId["physical_filter"]) for r in chosen) == [
        (2, "HSC-I"),
        (3, "HSC-I"),
    ]
    assert registry.queryDatasets("flat", collections="HSC/calib/a", where="detector > 100") == []
    with pytest.raises(ExpressionError, match="column"):
        registry.queryDatasets(
            "flat", collections="HSC/calib/a", where="detector = 1; DROP TABLE dataset"
        )
    with pytest.raises(ExpressionError, match="not a dimension of this query"):
        registry.queryDatasets("flat", collections="HSC/calib/a", where="exposure = 3")
    # Record fields and implied dimensions join the dimension tables.
    by_field = registry.queryDatasets(
        "flat", collections="HSC/calib/a", where="detector.full_name = 'ccd3' AND band = 'i'"
    )
    assert [(r.dataId["detector"], r.dataId["physical_filter"]) for r in by_field] == [(3, "HSC-I")]
    by_key_alias = registry.queryDatasets(
        "flat", collections="HSC/calib/a", where="detector.id < 3"
    )
    assert sorted({r.dataId["detector"] for r in by_key_alias}) == [1, 2]
    with pytest.raises(ExpressionError, match="detector has no field 'colour'"):
        registry.queryDatasets("flat", collections="HSC/calib/a", where="detector.colour = 1")
    files = registry.datastore_bridges.register("files")
    files.insert(refs[:4])
    held = registry.queryDatasets("flat", collections="HSC/calib/a", in_datastore="files")
    assert {r.id for r in held} == {r.id for r in refs[:4]}
    missing = registry.queryDatasets("flat", collections="HSC/calib/a", not_in_datastore="files")
    assert {r.id for r in missing} == {r.id for r in refs[4:]}


def test_associate_and_disassociate(registry: SqlRegistry) -> None:
    refs = registry.insertDatasets(
        "bias", [{"instrument": "HSC", "detector": d} for d in (1, 2)], "HSC/calib/a"
    )
    other = registry.insertDatasets("bias", [{"instrument": "HSC", "detector": 1}], "HSC/calib/b")
    registry.registerCollection("best", CollectionType.TAGGED)
    registry.associate("best", refs)
    registry.associate("best", refs)  # again: nothing changes
    assert {r.id for r in registry.queryDatasets("bias", collections="best")} == {
        r.id for r in refs
    }
    with pytest.raises(ConflictError, match="already holds another 'bias'"):
        registry.associate("best", other)
    registry.disassociate("best", refs[:1])
    assert [r.id for r in registry.queryDatasets("bias", collections="best")] == [refs[1].id]
    with pytest.raises(CollectionError, match="TAGGED"):
        registry.associate("HSC/calib/a", refs)


def test_remove_datasets_respects_datastores(registry: SqlRegistry) -> None:
    refs = registry.insertDatasets(
        "bias", [{"instrument": "HSC", "detector": d} for d in (1, 2)], "HSC/calib/a"
    )
    files = registry.datastore_bridges.register("files")
    files.insert(refs)
    with pytest.raises(OrphanedRecordError, match="still present"):
        registry.removeDatasets(refs)
    assert registry.getDatasetLocations(refs[0]) == {"files"}
    with registry.transaction():
        files.moveToTrash(refs, None)
        assert registry.removeDatasets(refs) == 2
    assert registry.queryDatasets("bias", collections="HSC/calib/a") == []


def test_remove_run_trashes_its_datasets(registry: SqlRegistry, databases: DatabaseFactory) -> None:
    refs = registry.insertDatasets(
        "bias", [{"instrument": "HSC", "detector": d} for d in (1, 2, 3)], "HSC/calib/a"
    )
    files = registry.datastore_bridges.register("files")
    cache = registry.datastore_bridges.register("cache", ephemeral=True)
    files.insert(refs)
    cache.insert(refs[:1])
    registry.registerCollection("chain", CollectionType.CHAINED)
    registry.setCollectionChain("chain", ["HSC/calib/a"])
    before = _count(databases, "dataset")
    with pytest.raises(CollectionError, match="still in chain"):
        registry.removeCollection("HSC/calib/a")
    assert _count(databases, "dataset") == before
    registry.setCollectionChain("chain", [])
    registry.removeCollection("HSC/calib/a")
    assert _count(databases, "dataset") == 0
    with files.emptyTrash() as (pairs, _):
        assert {r.id for r, _ in pairs} == {r.id for r in refs}
    with cache.emptyTrash() as (pairs, _):
        assert [r.id for r, _ in pairs] == [refs[0].id]


def test_transaction_undoes_everything(registry: SqlRegistry, databases: DatabaseFactory) -> None:
    before = (_count(databases, "dataset"), _count(databases, "collection"))
    with pytest.raises(RuntimeError, match="abort"), registry.transaction():
        registry.registerRun("HSC/runs/x")
        registry.insertDatasets("bias", [{"instrument": "HSC", "detector": 5}], "HSC/runs/x")
        raise RuntimeError("abort")
    assert (_count(databases, "dataset"), _count(databases, "collection")) == before


def test_expand_data_id_and_reopen(registry: SqlRegistry, databases: DatabaseFactory) -> None:
    expanded = registry.expandDataId(instrument="HSC", physical_filter="HSC-R")
    assert expanded["band"] == "r" and expanded.has_full()
    registry.insertDatasets("bias", [{"instrument": "HSC", "detector": 7}], "HSC/calib/a")
    reopened = SqlRegistry.open(databases.open())
    assert reopened.dimensions == registry.dimensions
    assert (
        reopened.findDataset("bias", instrument="HSC", detector=7, collections="HSC/calib/a")
        is not None
    )
    assert [t.name for t in reopened.queryDatasetTypes("b*")] == ["bias"]
    assert reopened.queryCollections("HSC/*", types=[CollectionType.RUN]) == [
        "HSC/calib/a",
        "HSC/calib/b",
    ]


def test_import_keeps_ids(registry: SqlRegistry) -> None:
    refs = registry.insertDatasets("bias", [{"instrument": "HSC", "detector": 8}], "HSC/calib/a")
    other = SqlRegistry.create("sqlite://")
    other.insertDimensionData("instrument", {"instrument": "HSC"})
    other.insertDimensionData("detector", {"instrument": "HSC", "detector": 8})
    other.registerDatasetType(registry.getDatasetType("bias"))
    other.registerRun("HSC/calib/a")
    imported = other.import_datasets(refs)
    assert [r.id for r in imported] == [refs[0].id]
    found = other.findDataset("bias", instrument="HSC", detector=8, collections="HSC/calib/a")
    assert found is not None and found.id == refs[0].id
    assert isinstance(uuid.UUID(str(found.id)), uuid.UUID)


def test_query_dimension_records_and_data_ids(registry: SqlRegistry) -> None:
    records = registry.queryDimensionRecords("detector", where="detector > 8 OR full_name = 'ccd2'")
    assert [r.data_id["detector"] for r in records] == [2, 9, 10]
    filters = registry.queryDimensionRecords("physical_filter", where="band = 'i'")
    assert [r.data_id["physical_filter"] for r in filters] == ["HSC-I"]
    assert len(registry.queryDimensionRecords("detector")) == 10
    data_ids = registry.queryDataIds(["detector", "physical_filter"], where="detector < 3")
    assert sorted((d["detector"], d["physical_filter"]) for d in data_ids) == [
        (1, "HSC-I"),
        (1, "HSC-R"),
        (2, "HSC-I"),
        (2, "HSC-R"),
    ]
    assert registry.queryDataIds(["detector"], where="detector.full_name = 'nope'") == []
    with pytest.raises(ExpressionError, match="column 9"):
        registry.queryDataIds(["detector"], where="detector ! 3")
    with pytest.raises(TypeError, match="not both"):
        registry.queryDimensionRecords(
            "detector", [{"instrument": "HSC", "detector": 1}], where="detector = 1"
        )


def test_certify_find_and_decertify(registry: SqlRegistry, databases: DatabaseFactory) -> None:
    import datetime

    from databutler import Timespan

    utc = datetime.UTC
    day = lambda d: datetime.datetime(2026, 11, d, tzinfo=utc)  # noqa: E731
    old, new = (
        registry.insertDatasets("bias", [{"instrument": "HSC", "detector": 1}], run)[0]
        for run in ("HSC/calib/a", "HSC/calib/b")
    )
    registry.registerCollection("HSC/calib", CollectionType.CALIBRATION)
    registry.certify("HSC/calib", [old], Timespan(None, day(10)))
    registry.certify("HSC/calib", [new], Timespan(day(10), None))
    before = _count(databases, "dataset")
    with pytest.raises(ConflictError, match="already has a dataset valid"):
        registry.certify("HSC/calib", [new], Timespan(day(5), day(12)))
    with pytest.raises(CollectionError, match="CALIBRATION"):
        registry.certify("HSC/calib/a", [old], Timespan(None, None))
    flat = registry.insertDatasets(
        "flat", [{"instrument": "HSC", "detector": 1, "physical_filter": "HSC-R"}], "HSC/calib/a"
    )
    with pytest.raises(ValueError, match="not a calibration type"):
        registry.certify("HSC/calib", flat, Timespan(None, None))
    assert _count(databases, "dataset") == before + 1
    find = lambda when: registry.findDataset(  # noqa: E731
        "bias", instrument="HSC", detector=1, collections="HSC/calib", timespan=when
    )
    assert find(day(3)) == old and getattr(find(day(3)), "run", None) == "HSC/calib/a"
    assert find(day(20)) == new and find(day(10)) == new
    assert (
        registry.findDataset("bias", instrument="HSC", detector=1, collections="HSC/calib") is None
    )
    with pytest.raises(CollectionError, match="narrower"):
        find(Timespan(day(5), day(15)))
    # Two datasets of one data ID in one call overlap each other: neither is certified.
    other = registry.insertDatasets("bias", [{"instrument": "HSC", "detector": 2}], "HSC/calib/a")
    again = registry.insertDatasets("bias", [{"instrument": "HSC", "detector": 2}], "HSC/calib/b")
    with pytest.raises(ConflictError, match="have the same data ID"):
        registry.certify("HSC/calib", [*other, *again], Timespan(day(1), day(2)))
    registry.certify("HSC/calib", [*other, *other], Timespan(day(1), day(2)))  # once
    spans = [span for i, span in registry.query_certifications("HSC/calib") if i == other[0].id]
    assert spans == [Timespan(day(1), day(2))]
    assert all(i != again[0].id for i, _ in registry.query_certifications("HSC/calib"))
    # Decertify the middle: old stops on the 8th, new starts on the 12th.
    assert registry.decertify("HSC/calib", "bias", Timespan(day(8), day(12))) == 2
    assert find(day(7)) == old and find(day(9)) is None and find(day(12)) == new
    assert registry.decertify("HSC/calib", "bias", Timespan(day(8), day(12))) == 0
    # Removing the run of a certified dataset removes its validity too.
    registry.removeCollection("HSC/calib/a")
    assert find(day(3)) is None and find(day(20)) == new
