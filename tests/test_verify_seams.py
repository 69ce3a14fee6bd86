"""Verify and the registry reach the tables only through the manager interfaces (issue 14, item 1).

`verify_datastore` needs no bridge tables: every check is a streamed query of
the datastore's bridge. `SqlRegistry` takes any managers implementing the
interfaces: a bridge manager without a locations table filters queries by
datastore through its bridges, and a manager lacking the interfaces is refused.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from databutler import Butler, DatasetRef, DatasetType
from databutler.butler._verify import verify_datastore
from databutler.registry import SqlRegistry
from databutler.registry.bridge.monolithic import MonolithicDatastoreRegistryBridgeManager
from databutler.registry.datasets import ByDimensionsDatasetRecordStorageManager
from databutler.registry.interfaces import FakeDatasetRef
from databutler.registry.managers import RegistryManagerTypes
from databutler.testing.butler import RepositoryFactory, artifact_of, file_datastore, populate
from databutler.testing.database import DatabaseFactory


def _put(butler: Butler, n: int) -> list[DatasetRef]:
    return [
        butler.put({"detector": d}, "thing", instrument="HSC", detector=d, run="r1")
        for d in range(n)
    ]


def _summary(report: Any) -> list[tuple[str, str, uuid.UUID | None, str | None]]:
    return sorted(
        ((p.kind, p.datastore, p.dataset_id, p.path) for p in report.problems),
        key=repr,
    )


def test_verify_datastore_needs_no_tables(repositories: RepositoryFactory) -> None:
    butler = repositories.create(run="r1")
    populate(butler)
    refs = _put(butler, 5)
    datastore = file_datastore(butler)
    store, path = artifact_of(butler, refs[0])
    store.delete(path)  # missing_artifact
    datastore.bridge.forget([refs[1]])  # records_without_location
    datastore.records.delete(["dataset_id"], {"dataset_id": refs[2].id})  # location_without_records
    datastore.bridge.moveToTrash([refs[3]], None)  # stale_trash
    db = butler.registry.db
    flags = {"delete_unknown": False, "checksums": False}
    report = verify_datastore(db, butler.datastore, repair=False, **flags)
    assert report.counts() == {
        "missing_artifact": 1,
        "records_without_location": 1,
        "location_without_records": 1,
        "stale_trash": 1,
        "unknown_artifact": 1,  # the artifact of the dataset whose records were lost
    }
    assert _summary(report) == _summary(butler.verify())  # the Butler's own call agrees
    repaired = verify_datastore(
        db, butler.datastore, repair=True, delete_unknown=True, checksums=False
    )
    assert repaired.unrepaired == []
    # Dropping the orphaned records left their artifact unknown, as in every repair.
    after = verify_datastore(db, butler.datastore, repair=False, **flags)
    assert after.counts() == {"unknown_artifact": 1}
    assert butler.get(refs[4]) == {"detector": 4}


class _NoLocationTable(MonolithicDatastoreRegistryBridgeManager):
    """A bridge manager that does not offer its locations table to the registry's queries."""

    @property
    def location_table(self) -> Any:  # None: what a manager without such a table returns
        return None


def _registry(databases: DatabaseFactory, **managers: Any) -> SqlRegistry:
    types = RegistryManagerTypes(datasets=ByDimensionsDatasetRecordStorageManager, **managers)
    return SqlRegistry(types.makeRepo(databases.open(), None))


def _fill(registry: SqlRegistry) -> list[DatasetRef]:
    registry.insertDimensionData("instrument", {"instrument": "HSC", "detector_max": 20})
    registry.insertDimensionData(
        "detector",
        *({"instrument": "HSC", "detector": d, "full_name": f"ccd{d}"} for d in range(6)),
    )
    registry.registerDatasetType(DatasetType("bias", ["detector"], "ExposureF"))
    registry.registerRun("run")
    return registry.insertDatasets(
        "bias", [{"instrument": "HSC", "detector": d} for d in range(6)], "run"
    )


@pytest.mark.parametrize("manager", [MonolithicDatastoreRegistryBridgeManager, _NoLocationTable])
def test_datastore_filters_with_and_without_a_location_table(
    databases: DatabaseFactory, manager: type[MonolithicDatastoreRegistryBridgeManager]
) -> None:
    registry = _registry(databases, datastores=manager)
    refs = _fill(registry)
    bridges = registry.datastore_bridges
    ids_of = [FakeDatasetRef(r.id) for r in refs]
    bridges.register("files").insert(ids_of[:2])
    bridges.register("memory", ephemeral=True).insert(ids_of[1:4])

    def ids(in_datastore: str | None = None, not_in_datastore: str | None = None) -> set[Any]:
        found = registry.queryDatasets(
            "bias", collections="run", in_datastore=in_datastore, not_in_datastore=not_in_datastore
        )
        return {r.id for r in found}

    assert ids(in_datastore="files") == {r.id for r in refs[:2]}
    assert ids(not_in_datastore="files") == {r.id for r in refs[2:]}
    assert ids(in_datastore="memory") == {r.id for r in refs[1:4]}
    assert ids(in_datastore="files", not_in_datastore="memory") == {refs[0].id}
    assert ids(in_datastore="nowhere") == set()


def test_registry_refuses_managers_without_the_interfaces(databases: DatabaseFactory) -> None:
    managers = RegistryManagerTypes().makeRepo(databases.open(), None)  # the simple dataset manager
    with pytest.raises(TypeError, match="RegistryDatasets"):
        SqlRegistry(managers)
