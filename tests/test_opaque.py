"""Opaque tables (`ByNameOpaqueTableStorageManager`) on every backend."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy

from databutler import (
    ConflictError,
    DatabaseConflictError,
    InvalidNameError,
    ReadOnlyDatabaseError,
    ddl,
)
from databutler.registry import RegistryManagerInstances, RegistryManagerTypes
from databutler.registry.interfaces import OpaqueTableStorage
from databutler.testing.database import DatabaseFactory

META = "opaque_meta"


def _spec() -> ddl.TableSpec:
    return ddl.TableSpec(
        [
            ddl.FieldSpec("id", sqlalchemy.Integer, primaryKey=True),
            ddl.FieldSpec("path", sqlalchemy.String, length=256, nullable=False),
            ddl.FieldSpec("size", sqlalchemy.Integer),
        ]
    )


def _rows(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "path": f"file{i}.fits", "size": i % 3} for i in range(n)]


def _raw(databases: DatabaseFactory, table: str, order: str) -> list[tuple[Any, ...]]:
    with databases.raw_engine().connect() as connection:
        result = connection.execute(
            sqlalchemy.text(f"SELECT * FROM {databases.qualified(table)} ORDER BY {order}")
        )
        return [tuple(row) for row in result]


def _meta(databases: DatabaseFactory) -> set[str]:
    return {name for (name,) in _raw(databases, META, "table_name")}


def _table_names(databases: DatabaseFactory) -> set[str]:
    with databases.raw_engine().connect() as connection:
        return set(sqlalchemy.inspect(connection).get_table_names(schema=databases.namespace))


@contextmanager
def _selects(databases: DatabaseFactory) -> Iterator[list[str]]:
    """Collect the SELECT statements run on the database inside the block."""
    seen: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    engine = databases.raw_engine()
    sqlalchemy.event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", listener)


def _as_tuples(rows: Any) -> list[tuple[Any, ...]]:
    return sorted((r["id"], r["path"], r["size"]) for r in rows)


@pytest.fixture
def records(repo: RegistryManagerInstances) -> OpaqueTableStorage:
    table = repo.opaque.register("records", _spec())
    table.insert(*_rows(10))
    return table


# ----------------------------------------------------------------------
# register / get / []


def test_register_get_and_lookup(
    repo: RegistryManagerInstances, databases: DatabaseFactory
) -> None:
    assert repo.opaque.get("records") is None
    with pytest.raises(LookupError, match="No opaque table named 'records'"):
        repo.opaque["records"]
    before = _table_names(databases)
    table = repo.opaque.register("records", _spec())
    assert table.name == "records"
    assert repo.opaque.get("records") is table
    assert repo.opaque["records"] is table
    assert _table_names(databases) == before | {"records"}
    # Registering again with the same spec binds to the same table.
    table.insert({"id": 1, "path": "p"})
    again = repo.opaque.register("records", _spec())
    assert again.name == "records"
    assert list(again.fetch()) == [{"id": 1, "path": "p", "size": None}]
    assert repo.opaque.get("other") is None


def test_opaque_meta_gets_a_row_per_table(
    repo: RegistryManagerInstances, databases: DatabaseFactory
) -> None:
    before = _meta(databases)
    names = ["records_a", "records_b", "Records_C"]
    for name in names:
        repo.opaque.register(name, _spec())
    repo.opaque.register("records_a", _spec())
    assert _meta(databases) == before | set(names)
    assert len(_raw(databases, META, "table_name")) == len(before) + len(names)


@pytest.mark.parametrize(
    "name",
    ["", "1abc", "x; drop table y", "a" * 70, "a" * 64, "has space", "dash-name", "é", None, 12],
)
def test_invalid_table_names(
    repo: RegistryManagerInstances, databases: DatabaseFactory, name: Any
) -> None:
    keep = repo.opaque.register("y", _spec())
    keep.insert({"id": 1, "path": "p"})
    tables, meta = _table_names(databases), _meta(databases)
    with pytest.raises(InvalidNameError, match="Invalid opaque table name") as excinfo:
        repo.opaque.register(name, _spec())
    assert isinstance(excinfo.value, ValueError)
    assert _table_names(databases) == tables
    assert _meta(databases) == meta
    assert _raw(databases, "y", "id") == [(1, "p", None)]


def test_longest_valid_table_name(
    repo: RegistryManagerInstances, databases: DatabaseFactory
) -> None:
    name = "t" + "a" * 62
    table = repo.opaque.register(name, _spec())
    table.insert({"id": 1, "path": "p"})
    assert name in _table_names(databases)
    assert name in _meta(databases)
    assert _raw(databases, name, "id") == [(1, "p", None)]


def test_register_with_other_columns_in_reopened_repo_conflicts(
    repo: RegistryManagerInstances, records: OpaqueTableStorage, databases: DatabaseFactory
) -> None:
    before, meta = _raw(databases, "records", "id"), _meta(databases)
    reopened = RegistryManagerTypes().loadRepo(databases.open())
    other = ddl.TableSpec(
        [
            ddl.FieldSpec("id", sqlalchemy.Integer, primaryKey=True),
            ddl.FieldSpec("checksum", sqlalchemy.String, length=64),
        ]
    )
    with pytest.raises(DatabaseConflictError, match=r"Table 'records' exists with columns"):
        reopened.opaque.register("records", other)
    assert reopened.opaque.get("records") is None
    assert _raw(databases, "records", "id") == before
    assert _meta(databases) == meta
    # The matching spec still binds, and sees the rows.
    bound = reopened.opaque.register("records", _spec())
    assert _as_tuples(bound.fetch()) == before


def test_register_again_with_other_columns_conflicts(
    repo: RegistryManagerInstances, records: OpaqueTableStorage, databases: DatabaseFactory
) -> None:
    before = _raw(databases, "records", "id")
    other = ddl.TableSpec([ddl.FieldSpec("id", sqlalchemy.Integer, primaryKey=True)])
    for manager in (repo.opaque, repo.opaque.clone(repo.db.clone())):
        with pytest.raises(DatabaseConflictError, match=r"Table 'records' exists with columns"):
            manager.register("records", other)
    assert repo.opaque.register("records", _spec()) is records
    assert _raw(databases, "records", "id") == before


def test_register_inside_transaction_raises(
    repo: RegistryManagerInstances, databases: DatabaseFactory
) -> None:
    tables, meta = _table_names(databases), _meta(databases)
    with repo.db.transaction(), pytest.raises(RuntimeError, match="inside a transaction"):
        repo.opaque.register("late", _spec())
    assert repo.opaque.get("late") is None
    assert _table_names(databases) == tables
    assert _meta(databases) == meta
    # Outside a transaction it works.
    repo.opaque.register("late", _spec())
    assert "late" in _table_names(databases)
    assert "late" in _meta(databases)


def test_clone_sees_tables_registered_before(
    repo: RegistryManagerInstances, records: OpaqueTableStorage, databases: DatabaseFactory
) -> None:
    clone = repo.opaque.clone(repo.db.clone())
    table = clone.get("records")
    assert table is not None
    assert clone["records"].name == "records"
    assert _as_tuples(table.fetch()) == _as_tuples(_rows(10))
    table.insert({"id": 100, "path": "from-clone"})
    assert [r["path"] for r in records.fetch(id=100)] == ["from-clone"]
    # The cache is shared both ways.
    clone.register("from_clone", _spec())
    assert repo.opaque.get("from_clone") is not None
    assert "from_clone" in _meta(databases)


def test_read_only_repo_binds_but_does_not_create(
    repo: RegistryManagerInstances, records: OpaqueTableStorage, databases: DatabaseFactory
) -> None:
    ro = RegistryManagerTypes().loadRepo(databases.open(writeable=False))
    tables, meta = _table_names(databases), _meta(databases)
    table = ro.opaque.register("records", _spec())
    assert _as_tuples(table.fetch(size=1)) == _as_tuples(r for r in _rows(10) if r["size"] == 1)
    with pytest.raises(ReadOnlyDatabaseError, match="create table 'fresh'"):
        ro.opaque.register("fresh", _spec())
    with pytest.raises(ReadOnlyDatabaseError, match="read-only"):
        table.insert({"id": 50, "path": "p"})
    assert ro.opaque.get("fresh") is None
    assert _table_names(databases) == tables
    assert _meta(databases) == meta
    assert _as_tuples(records.fetch()) == _as_tuples(_rows(10))


# ----------------------------------------------------------------------
# fetch


def test_fetch_all_and_by_scalar(records: OpaqueTableStorage) -> None:
    expected = _rows(10)
    assert _as_tuples(records.fetch()) == _as_tuples(expected)
    assert _as_tuples(records.fetch(size=2)) == _as_tuples(r for r in expected if r["size"] == 2)
    assert _as_tuples(records.fetch(size=2, id=5)) == _as_tuples([expected[5]])
    assert list(records.fetch(path="missing")) == []
    row = next(iter(records.fetch(id=3)))
    assert row == expected[3]


def test_fetch_by_list_in_batches(
    repo: RegistryManagerInstances, records: OpaqueTableStorage, databases: DatabaseFactory
) -> None:
    repo.db.IN_BATCH_SIZE = 3
    wanted = [0, 2, 3, 5, 7, 9, 42, 3, 2]  # duplicates and a missing id
    expected = [r for r in _rows(10) if r["id"] in wanted]
    with _selects(databases) as statements:
        assert _as_tuples(records.fetch(id=wanted)) == _as_tuples(expected)
    # Values are de-duplicated, then sent at most IN_BATCH_SIZE at a time.
    assert len(statements) == math.ceil(len(set(wanted)) / repo.db.IN_BATCH_SIZE)
    assert _as_tuples(records.fetch(id=tuple(wanted))) == _as_tuples(expected)
    assert _as_tuples(records.fetch(id=set(wanted))) == _as_tuples(expected)
    assert _as_tuples(records.fetch(id=frozenset(wanted))) == _as_tuples(expected)
    # A list and a scalar together.
    assert _as_tuples(records.fetch(id=wanted, size=0)) == _as_tuples(
        r for r in expected if r["size"] == 0
    )


@pytest.mark.parametrize("batch", [1, 2, 3, 10_000])
def test_fetch_by_two_lists(
    repo: RegistryManagerInstances,
    records: OpaqueTableStorage,
    databases: DatabaseFactory,
    batch: int,
) -> None:
    repo.db.IN_BATCH_SIZE = batch
    ids = [1, 2, 3, 4, 5, 6, 8]
    sizes = [0, 2]
    expected = [r for r in _rows(10) if r["id"] in ids and r["size"] in sizes]
    with _selects(databases) as statements:
        assert _as_tuples(records.fetch(id=ids, size=sizes)) == _as_tuples(expected)
    # The longest list is split into batches of at most IN_BATCH_SIZE values.
    assert len(statements) >= math.ceil(max(len(ids), len(sizes)) / batch)
    assert _as_tuples(records.fetch(size=sizes, id=ids)) == _as_tuples(expected)


def test_fetch_empty_list_returns_nothing(
    repo: RegistryManagerInstances, records: OpaqueTableStorage, databases: DatabaseFactory
) -> None:
    with _selects(databases) as statements:
        assert list(records.fetch(id=[])) == []
        assert list(records.fetch(id=(), size=1)) == []
        assert list(records.fetch(id=[1, 2], size=set())) == []
    assert statements == []  # answered without asking the database


def test_fetch_unknown_column_raises_at_call(
    records: OpaqueTableStorage, databases: DatabaseFactory
) -> None:
    with pytest.raises(ValueError, match="has no column 'colour'"):
        records.fetch(colour="red")  # not iterated: checked at the call
    with pytest.raises(ValueError, match="has no column 'colour'; its columns are id, path, size"):
        records.fetch(id=[1], colour=["red"])
    with pytest.raises(ValueError, match="has no column 'colour'"):
        records.delete(["colour"], {"colour": "red"})
    assert _as_tuples(records.fetch()) == _as_tuples(_rows(10))


# ----------------------------------------------------------------------
# writes


def test_insert_duplicate_raises_and_writes_nothing(
    records: OpaqueTableStorage, databases: DatabaseFactory
) -> None:
    before = _raw(databases, "records", "id")
    with pytest.raises(ConflictError, match="Cannot insert into records"):
        records.insert({"id": 50, "path": "new"}, {"id": 1, "path": "dup"})
    assert _raw(databases, "records", "id") == before


def test_delete_by_key_and_all(records: OpaqueTableStorage, databases: DatabaseFactory) -> None:
    records.delete(["id"], {"id": 1}, {"id": 4}, {"id": 99})
    assert [r[0] for r in _raw(databases, "records", "id")] == [0, 2, 3, 5, 6, 7, 8, 9]
    records.delete(["size", "id"], {"size": 0, "id": 3}, {"size": 0, "id": 5})
    assert [r[0] for r in _raw(databases, "records", "id")] == [0, 2, 5, 6, 7, 8, 9]
    records.delete(["id"])
    assert len(_raw(databases, "records", "id")) == 7
    records.delete(())
    assert _raw(databases, "records", "id") == []


def test_ensure_keeps_existing_rows(
    records: OpaqueTableStorage, databases: DatabaseFactory
) -> None:
    records.ensure({"id": 1, "path": "changed", "size": 99}, {"id": 20, "path": "new", "size": 5})
    rows = {r[0]: r for r in _raw(databases, "records", "id")}
    assert rows[1] == (1, "file1.fits", 1)
    assert rows[20] == (20, "new", 5)
    assert len(rows) == 11


def test_replace_overwrites(records: OpaqueTableStorage, databases: DatabaseFactory) -> None:
    records.replace({"id": 1, "path": "changed", "size": 99}, {"id": 20, "path": "new", "size": 5})
    rows = {r[0]: r for r in _raw(databases, "records", "id")}
    assert rows[1] == (1, "changed", 99)
    assert rows[20] == (20, "new", 5)
    assert rows[2] == (2, "file2.fits", 2)
    assert len(rows) == 11


def test_writes_join_the_database_transaction(
    repo: RegistryManagerInstances, records: OpaqueTableStorage, databases: DatabaseFactory
) -> None:
    before = _raw(databases, "records", "id")
    with pytest.raises(ValueError, match="abort"), repo.db.transaction():
        records.insert({"id": 30, "path": "x"})
        records.replace({"id": 1, "path": "y"})
        records.delete(["id"], {"id": 2})
        raise ValueError("abort")
    assert _raw(databases, "records", "id") == before


def test_opaque_table_storage_is_an_abc() -> None:
    class Partial(OpaqueTableStorage):
        def fetch(self, **where: Any) -> Iterator[dict[str, Any]]:
            return iter(())

    for cls in (OpaqueTableStorage, Partial):
        with pytest.raises(TypeError, match="abstract"):
            cls("records")  # type: ignore[abstract]
    assert OpaqueTableStorage.__abstractmethods__ == {
        "insert",
        "ensure",
        "replace",
        "fetch",
        "delete",
    }
