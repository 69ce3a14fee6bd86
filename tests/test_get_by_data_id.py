"""A get by data ID reads the dataset's records in the statement that finds it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from databutler import Butler, DatasetNotFoundError
from databutler.datastores import DatasetNotStoredError
from databutler.testing.butler import populate, registry_arguments
from databutler.testing.database import statements


@pytest.fixture(params=["sqlite", "postgresql"])
def butler(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Butler]:
    with registry_arguments(request.param) as arguments:
        made = Butler.create(str(tmp_path / "repo"), run="a", **arguments)
        try:
            populate(made, detectors=3)
            yield made
        finally:
            made.close()


def test_a_get_by_data_id_is_one_statement(butler: Butler) -> None:
    butler.put({"v": 1}, "thing", instrument="HSC", detector=0)
    assert butler.get("thing", instrument="HSC", detector=0) == {"v": 1}  # caches warm
    with statements(butler.registry.db) as seen:
        assert butler.get("thing", {"instrument": "HSC"}, detector=0, collections="a") == {"v": 1}
    assert len(seen) == 1, seen


def test_the_first_collection_searched_gives_the_dataset_and_its_records(butler: Butler) -> None:
    in_a = butler.put({"run": "a"}, "thing", instrument="HSC", detector=1)
    in_b = butler.put({"run": "b"}, "thing", instrument="HSC", detector=1, run="b")
    assert butler.get("thing", instrument="HSC", detector=1, collections=["b", "a"]) == {"run": "b"}
    assert butler.get("thing", instrument="HSC", detector=1, collections=["a", "b"]) == {"run": "a"}
    # Found first but no longer held: not stored, even though the next collection has one.
    butler.prune([in_b], unstore=True)
    with pytest.raises(DatasetNotStoredError):
        butler.get("thing", instrument="HSC", detector=1, collections=["b", "a"])
    assert butler.get("thing", instrument="HSC", detector=1, collections=["a", "b"]) == {"run": "a"}
    butler.prune([in_a], purge=True)
    with pytest.raises(DatasetNotFoundError):
        butler.get("thing", instrument="HSC", detector=1, collections="a")
    # Inside a transaction the find carries the records too, and sees the transaction's put.
    with butler.transaction():
        butler.put({"run": "a", "again": True}, "thing", instrument="HSC", detector=1)
        assert butler.get("thing", instrument="HSC", detector=1, collections="a") == {
            "run": "a",
            "again": True,
        }


def test_the_find_reads_records_and_locations_through_their_keys(tmp_path: Path) -> None:
    """On SQLite the statement of a get by data ID looks the records and locations up by
    the found id: no scan of either table, which would make every get as slow as the
    repository is big. (PostgreSQL's plan, on 10,000 fresh datasets, is covered by
    test_postgresql_plans.py.)"""
    with Butler.create(str(tmp_path / "repo"), run="a") as butler:
        populate(butler, detectors=3)
        for d in range(3):
            butler.put({"d": d}, "thing", instrument="HSC", detector=d)
        seen: list[tuple[str, Any]] = []

        def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            seen.append((statement, parameters))

        engine = butler.registry.db._engine
        sqlalchemy.event.listen(engine, "before_cursor_execute", record)
        try:
            assert butler.get("thing", instrument="HSC", detector=2) == {"d": 2}
        finally:
            sqlalchemy.event.remove(engine, "before_cursor_execute", record)
        ((sql, parameters),) = seen
        with engine.connect() as connection:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters).all()
        details = [str(row[-1]) for row in plan]
        assert any("hl USING" in d for d in details), details
        assert any("hr USING" in d for d in details), details
        assert not any(d.startswith("SCAN") and (" hl" in d or " hr" in d) for d in details)
