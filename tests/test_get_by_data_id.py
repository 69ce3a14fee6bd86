"""A get by data ID reads the dataset's records in the statement that finds it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from databutler import Butler, DatasetNotFoundError
from databutler.datastores import DatasetNotStoredError
from databutler.testing.butler import populate, registry_arguments


@pytest.fixture(params=["sqlite", "postgresql"])
def butler(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Butler]:
    with registry_arguments(request.param) as arguments:
        made = Butler.create(str(tmp_path / "repo"), run="a", **arguments)
        try:
            populate(made, detectors=3)
            yield made
        finally:
            made.close()


@contextmanager
def statements(butler: Butler) -> Iterator[list[str]]:
    """The SQL statements the registry's database runs inside the block."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    engine = butler.registry.db._engine
    sqlalchemy.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", record)


def test_a_get_by_data_id_is_one_statement(butler: Butler) -> None:
    butler.put({"v": 1}, "thing", instrument="HSC", detector=0)
    assert butler.get("thing", instrument="HSC", detector=0) == {"v": 1}  # caches warm
    with statements(butler) as seen:
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
