"""Registering, finding, querying and removing dataset types, on every database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy

from databutler import DatasetType, InvalidNameError, UnknownDimensionError
from databutler.dimensions import DimensionUniverse
from databutler.registry.dataset_types import (
    DatasetTypeConflictError,
    DatasetTypeManager,
    MissingDatasetTypeError,
)
from databutler.registry.interfaces import Database
from databutler.testing.database import DatabaseFactory


@pytest.fixture
def manager(db: Database) -> Iterator[DatasetTypeManager]:
    with db.declareStaticTables(create=True) as context:
        manager = DatasetTypeManager.initialize(db, context, universe=DimensionUniverse())
    yield manager


def _rows(databases: DatabaseFactory) -> list[tuple[object, ...]]:
    table = databases.qualified("dataset_type")
    sql = f"SELECT name, storage_class, dimensions, is_calibration FROM {table} ORDER BY name"
    with databases.raw_engine().connect() as connection:
        return [tuple(r) for r in connection.execute(sqlalchemy.text(sql))]


def test_register_closes_dimensions_and_is_idempotent(manager: DatasetTypeManager) -> None:
    record, new = manager.register(DatasetType("calexp", ["visit", "detector"], "ExposureF"))
    assert new
    universe = DimensionUniverse()
    assert record.datasetType.dimensions == frozenset(universe.group(["visit", "detector"]).names)
    assert {"instrument", "physical_filter", "band"} <= record.datasetType.dimensions
    again, new_again = manager.register(DatasetType("calexp", ["detector", "visit"], "ExposureF"))
    assert again == record and not new_again
    assert manager.get("calexp") == record.datasetType


def test_conflicting_definitions_are_refused(
    manager: DatasetTypeManager, databases: DatabaseFactory
) -> None:
    manager.register(
        DatasetType("flat", ["detector", "physical_filter"], "ExposureF", isCalibration=True)
    )
    before = _rows(databases)
    with pytest.raises(
        DatasetTypeConflictError, match="storage class: registered 'ExposureF', given 'ImageF'"
    ):
        manager.register(
            DatasetType("flat", ["detector", "physical_filter"], "ImageF", isCalibration=True)
        )
    with pytest.raises(
        DatasetTypeConflictError, match="isCalibration: registered True, given False"
    ):
        manager.register(DatasetType("flat", ["detector", "physical_filter"], "ExposureF"))
    with pytest.raises(DatasetTypeConflictError, match="dimensions"):
        manager.register(DatasetType("flat", ["detector"], "ExposureF", isCalibration=True))
    assert _rows(databases) == before


def test_bad_definitions_change_nothing(
    manager: DatasetTypeManager, databases: DatabaseFactory
) -> None:
    with pytest.raises(UnknownDimensionError, match="telescope"):
        manager.register(DatasetType("raw", ["telescope"], "Exposure"))
    with pytest.raises(ValueError, match="register its parent 'calexp'"):
        manager.register(DatasetType("calexp.wcs", ["visit"], "Wcs"))
    with pytest.raises(TypeError, match="Expected a DatasetType"):
        manager.register("calexp")  # type: ignore[arg-type]
    with pytest.raises(InvalidNameError):
        DatasetType("cal'exp; DROP TABLE dataset_type", ["visit"], "Exposure")
    assert _rows(databases) == []


def test_find_and_components(manager: DatasetTypeManager) -> None:
    manager.register(DatasetType("calexp", ["visit", "detector"], "ExposureF"))
    with pytest.raises(MissingDatasetTypeError, match="No dataset type named 'bias'"):
        manager.get("bias")
    with pytest.raises(MissingDatasetTypeError, match="component of 'calexp'"):
        manager.get("calexp.wcs")
    with pytest.raises(InvalidNameError):
        manager.get("not a name")


def test_query_by_glob(manager: DatasetTypeManager) -> None:
    for name in ("calexp", "calexp_background", "deepCoadd", "raw"):
        manager.register(DatasetType(name, ["detector"], "ExposureF"))
    names = lambda types: [t.name for t in types]  # noqa: E731
    assert names(manager.query("calexp*")) == ["calexp", "calexp_background"]
    assert names(manager.query()) == ["calexp", "calexp_background", "deepCoadd", "raw"]
    assert names(manager.query("raw")) == ["raw"]
    assert manager.query("nothing*") == []


def test_remove(manager: DatasetTypeManager, databases: DatabaseFactory) -> None:
    manager.register(DatasetType("raw", ["exposure", "detector"], "Exposure"))
    manager.remove("raw")
    assert _rows(databases) == []
    with pytest.raises(MissingDatasetTypeError):
        manager.remove("raw")
    # Registering again after removal works, under a new key.
    record, new = manager.register(DatasetType("raw", ["exposure", "detector"], "Exposure"))
    assert new and manager.get("raw") == record.datasetType
