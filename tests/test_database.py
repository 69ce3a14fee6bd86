"""The `Database` layer on every backend: schema, bulk writes, transactions, read-only mode."""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import sqlalchemy

from databutler import (
    ConfigurationError,
    ConflictError,
    DatabaseConflictError,
    DatabaseConnectionError,
    ReadOnlyDatabaseError,
    SchemaAlreadyDefinedError,
    TransactionAbortedError,
    ddl,
)
from databutler.registry import RegistryManagerTypes, open_database
from databutler.registry._committed_cache import CommittedCache
from databutler.registry.databases.postgresql import PostgresqlDatabase
from databutler.registry.interfaces import Database, GuardChangedError
from databutler.testing.database import DatabaseFactory, database_factory, postgresql_uri

only_sqlite_file = pytest.mark.parametrize("databases", ["sqlite-file"], indirect=True)
only_sqlite = pytest.mark.parametrize("databases", ["sqlite-file", "sqlite-memory"], indirect=True)
only_postgresql = pytest.mark.parametrize("databases", ["postgresql"], indirect=True)
not_in_memory = pytest.mark.parametrize("databases", ["sqlite-file", "postgresql"], indirect=True)


def _item_spec() -> ddl.TableSpec:
    return ddl.TableSpec(
        [
            ddl.FieldSpec("id", sqlalchemy.Integer, primaryKey=True),
            ddl.FieldSpec("name", sqlalchemy.String, length=32, nullable=False),
            ddl.FieldSpec("value", sqlalchemy.Integer),
        ],
        unique={("name",)},
    )


def _pair_spec() -> ddl.TableSpec:
    return ddl.TableSpec(
        [
            ddl.FieldSpec("a", sqlalchemy.Integer, primaryKey=True),
            ddl.FieldSpec("b", sqlalchemy.Integer, primaryKey=True),
            ddl.FieldSpec("c", sqlalchemy.String, length=64),
        ]
    )


def _child_spec() -> ddl.TableSpec:
    return ddl.TableSpec(
        [
            ddl.FieldSpec("id", sqlalchemy.Integer, primaryKey=True),
            ddl.FieldSpec("item_id", sqlalchemy.Integer, nullable=False),
        ],
        foreignKeys=[ddl.ForeignKeySpec("item", ("item_id",), ("id",))],
    )


class Tables(NamedTuple):
    item: sqlalchemy.Table
    pair: sqlalchemy.Table
    child: sqlalchemy.Table


class Specs(NamedTuple):
    item: ddl.TableSpec
    pair: ddl.TableSpec
    child: ddl.TableSpec


def _specs() -> Specs:
    return Specs(_item_spec(), _pair_spec(), _child_spec())


def _declare(db: Database, *, create: bool) -> Tables:
    with db.declareStaticTables(create=create) as context:
        return context.addTableTuple(_specs())  # type: ignore[return-value]


@pytest.fixture
def tables(db: Database) -> Tables:
    return _declare(db, create=True)


def _raw(databases: DatabaseFactory, table: str, order: str) -> list[tuple[Any, ...]]:
    """Every row of ``table``, read through the backdoor."""
    with databases.raw_engine().connect() as connection:
        result = connection.execute(
            sqlalchemy.text(f"SELECT * FROM {databases.qualified(table)} ORDER BY {order}")
        )
        return [tuple(row) for row in result]


def _items(databases: DatabaseFactory) -> list[tuple[Any, ...]]:
    return _raw(databases, "item", "id")


def _pairs(databases: DatabaseFactory) -> list[tuple[Any, ...]]:
    return _raw(databases, "pair", "a, b")


def _table_names(databases: DatabaseFactory) -> set[str]:
    with databases.raw_engine().connect() as connection:
        return set(sqlalchemy.inspect(connection).get_table_names(schema=databases.namespace))


def _row(i: int, value: int | None = None) -> dict[str, Any]:
    return {"id": i, "name": f"n{i}", "value": i * 10 if value is None else value}


@contextmanager
def _count_statements(engine: sqlalchemy.engine.Engine, verb: str) -> Iterator[list[str]]:
    """Collect the SQL statements starting with ``verb`` that ``engine`` runs."""
    seen: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(verb):
            seen.append(statement)

    sqlalchemy.event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", listener)


# ----------------------------------------------------------------------
# Schema


def test_declare_static_tables_creates_tables(db: Database, databases: DatabaseFactory) -> None:
    assert _table_names(databases) == set()
    ran: list[Database] = []
    with db.declareStaticTables(create=True) as context:
        tables = context.addTableTuple(_specs())
        context.addInitializer(ran.append)
        context.addInitializer(lambda d: d.insert(tables.item, _row(1)))  # type: ignore[arg-type]
        # Nothing exists before the block ends.
        assert _table_names(databases) == set()
    assert _table_names(databases) == {"item", "pair", "child"}
    assert isinstance(tables, Specs)
    assert [t.name for t in tables] == ["item", "pair", "child"]  # type: ignore[attr-defined]
    assert ran == [db]
    assert _items(databases) == [(1, "n1", 10)]


def test_add_table_tuple_needs_a_namedtuple(db: Database, databases: DatabaseFactory) -> None:
    with (
        pytest.raises(TypeError, match="needs a namedtuple"),
        db.declareStaticTables(create=True) as context,
    ):
        context.addTableTuple((_item_spec(),))  # type: ignore[type-var]
    assert _table_names(databases) == set()


def test_second_create_raises_schema_already_defined(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    db.insert(tables.item, _row(1))
    other = databases.open()
    for target in (db, other):
        with (
            pytest.raises(SchemaAlreadyDefinedError, match="already holds tables"),
            target.declareStaticTables(create=True) as context,
        ):
            context.addTable("extra", _item_spec())
    assert _table_names(databases) == {"item", "pair", "child"}
    assert _items(databases) == [(1, "n1", 10)]


def test_bind_to_missing_tables_raises_database_conflict(
    db: Database, databases: DatabaseFactory
) -> None:
    with pytest.raises(DatabaseConflictError, match=r"has no table\(s\) child, item, pair"):
        _declare(db, create=False)
    assert _table_names(databases) == set()


def test_bind_to_existing_tables(db: Database, tables: Tables, databases: DatabaseFactory) -> None:
    db.insert(tables.item, _row(1), _row(2))
    other = databases.open()
    bound = _declare(other, create=False)
    with other.query(sqlalchemy.select(bound.item.c.id).order_by(bound.item.c.id)) as result:
        assert result.scalars().all() == [1, 2]
    other.insert(bound.item, _row(3))
    assert [r[0] for r in _items(databases)] == [1, 2, 3]


def test_ensure_table_exists_creates_once(db: Database, databases: DatabaseFactory) -> None:
    assert db.getExistingTable("extra", _item_spec()) is None
    table = db.ensureTableExists("extra", _item_spec())
    assert _table_names(databases) == {"extra"}
    db.insert(table, _row(1))
    assert db.ensureTableExists("extra", _item_spec()) is table
    assert db.getExistingTable("extra", _item_spec()) is table
    # Another connection to the same database finds the table and its rows.
    other = databases.open()
    again = other.ensureTableExists("extra", _item_spec())
    with other.query(sqlalchemy.select(again.c.name)) as result:
        assert result.scalars().all() == ["n1"]
    assert _table_names(databases) == {"extra"}


def test_existing_table_with_other_columns_conflicts(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    db.insert(tables.item, _row(1))
    wrong = ddl.TableSpec([ddl.FieldSpec("id", sqlalchemy.Integer, primaryKey=True)])
    for target in (db, databases.open()):
        with pytest.raises(
            DatabaseConflictError, match=r"Table 'item' exists with columns \['id', 'name'"
        ):
            target.getExistingTable("item", wrong)
        with pytest.raises(DatabaseConflictError, match="code expects \\['id'\\]"):
            target.ensureTableExists("item", wrong)
    assert _items(databases) == [(1, "n1", 10)]


def test_ensure_table_exists_inside_transaction_raises(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    with db.transaction():
        db.insert(tables.item, _row(1))
        with pytest.raises(RuntimeError, match="Cannot create table 'extra' inside a transaction"):
            db.ensureTableExists("extra", _item_spec())
        # Binding to a table that exists already is fine: nothing is created.
        assert db.ensureTableExists("item", _item_spec()) is tables.item
    assert "extra" not in _table_names(databases)
    assert _items(databases) == [(1, "n1", 10)]


# ----------------------------------------------------------------------
# insert / ensure / replace / delete


def test_insert_rows_and_nothing(db: Database, tables: Tables, databases: DatabaseFactory) -> None:
    db.insert(tables.item)
    assert _items(databases) == []
    db.insert(tables.item, _row(1), {"id": 2, "name": "n2", "value": None})
    assert _items(databases) == [(1, "n1", 10), (2, "n2", None)]


def test_insert_select(db: Database, tables: Tables, databases: DatabaseFactory) -> None:
    db.insert(tables.item, _row(1), _row(2), _row(3))
    item = tables.item
    select = sqlalchemy.select(
        item.c.id.label("a"), item.c.value.label("b"), item.c.name.label("c")
    ).where(item.c.id >= 2)
    db.insert(tables.pair, select=select)
    assert _pairs(databases) == [(2, 20, "n2"), (3, 30, "n3")]
    # names= maps the selected columns onto other target columns.
    select2 = sqlalchemy.select(item.c.value, item.c.id).where(item.c.id == 1)
    db.insert(tables.pair, select=select2, names=["a", "b"])
    assert _pairs(databases) == [(2, 20, "n2"), (3, 30, "n3"), (10, 1, None)]


def test_insert_rows_and_select_together_raises(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    select = sqlalchemy.select(tables.item.c.id)
    with pytest.raises(TypeError, match="either rows or select="):
        db.insert(tables.item, _row(1), select=select)
    with pytest.raises(TypeError, match="either rows or select="):
        db.ensure(tables.item, _row(1), select=select)
    assert _items(databases) == []


def test_duplicate_insert_raises_conflict_and_integrity_error(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    db.insert(tables.item, _row(1))
    with pytest.raises(ConflictError, match="Cannot insert into item") as excinfo:
        db.insert(tables.item, _row(1, value=99))
    assert isinstance(excinfo.value, sqlalchemy.exc.IntegrityError)
    # Code that only knows SQLAlchemy's error catches it too.
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        db.insert(tables.item, {"id": 2, "name": "n1", "value": 0})
    assert _items(databases) == [(1, "n1", 10)]


@pytest.mark.parametrize(
    "bad", ["existing_key", "existing_unique", "duplicate_in_batch", "foreign_key"]
)
def test_multi_row_insert_with_one_bad_row_inserts_nothing(
    db: Database, tables: Tables, databases: DatabaseFactory, bad: str
) -> None:
    db.insert(tables.item, _row(1))
    before_items, before_children = _items(databases), _raw(databases, "child", "id")
    if bad == "foreign_key":
        table, rows = tables.child, [{"id": 1, "item_id": 1}, {"id": 2, "item_id": 77}]
    else:
        bad_row = {
            "existing_key": {"id": 1, "name": "other", "value": 0},
            "existing_unique": {"id": 9, "name": "n1", "value": 0},
            "duplicate_in_batch": _row(3),
        }[bad]
        table, rows = tables.item, [_row(2), _row(3), bad_row, _row(4)]
    with pytest.raises(ConflictError):
        db.insert(table, *rows)
    assert _items(databases) == before_items
    assert _raw(databases, "child", "id") == before_children


def test_foreign_key_is_enforced_on_delete(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    db.insert(tables.item, _row(1), _row(2))
    db.insert(tables.child, {"id": 1, "item_id": 1})
    with pytest.raises(ConflictError, match="Cannot delete from item"):
        db.delete(tables.item, ["id"], {"id": 1}, {"id": 2})
    assert [r[0] for r in _items(databases)] == [1, 2]


def test_ensure_skips_conflicting_rows(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    db.insert(tables.item, _row(1), _row(2))
    db.ensure(tables.item, _row(2, value=-1), _row(3), _row(4))
    assert _items(databases) == [(1, "n1", 10), (2, "n2", 20), (3, "n3", 30), (4, "n4", 40)]
    # A conflict on a unique (non-key) column is skipped too by default ...
    db.ensure(tables.item, {"id": 5, "name": "n1", "value": 0})
    assert [r[0] for r in _items(databases)] == [1, 2, 3, 4]
    # ... but raises when only primary-key conflicts are to be skipped.
    with pytest.raises(ConflictError, match="Cannot insert into item"):
        db.ensure(tables.item, _row(6), {"id": 5, "name": "n1", "value": 0}, primary_key_only=True)
    db.ensure(tables.item, _row(1, value=-1), _row(6), primary_key_only=True)
    assert _items(databases) == [
        (1, "n1", 10),
        (2, "n2", 20),
        (3, "n3", 30),
        (4, "n4", 40),
        (6, "n6", 60),
    ]
    assert db.ensure(tables.item) == 0


def test_ensure_returns_inserted_count(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    db.insert(tables.item, _row(1), _row(2))
    assert db.ensure(tables.item, _row(2, value=-1), _row(3), _row(4)) == 2
    assert db.ensure(tables.item, _row(1)) == 0
    assert db.ensure(tables.item, {"id": 5, "name": "n1", "value": 0}) == 0
    assert db.ensure(tables.item, _row(1), _row(5), primary_key_only=True) == 1
    item = tables.item
    select = sqlalchemy.select(item.c.id.label("a"), item.c.id.label("b")).where(item.c.id <= 3)
    assert db.ensure(tables.pair, select=select) == 3
    assert db.ensure(tables.pair, select=select) == 0
    # A select without WHERE works too (SQLite needs one before ON CONFLICT).
    everything = sqlalchemy.select(item.c.id.label("a"), item.c.id.label("b"))
    assert db.ensure(tables.pair, select=everything) == 2
    assert [r[0] for r in _items(databases)] == [1, 2, 3, 4, 5]


def test_ensure_select(db: Database, tables: Tables, databases: DatabaseFactory) -> None:
    db.insert(tables.item, _row(1), _row(2), _row(3))
    db.insert(tables.pair, {"a": 2, "b": 2, "c": "kept"})
    item = tables.item
    # (With a WHERE clause: see the report about ensure(select=) without one on SQLite.)
    select = sqlalchemy.select(
        item.c.id.label("a"), item.c.id.label("b"), item.c.name.label("c")
    ).where(item.c.id > 0)
    db.ensure(tables.pair, select=select)
    assert _pairs(databases) == [(1, 1, "n1"), (2, 2, "kept"), (3, 3, "n3")]


def test_replace_overwrites_non_key_columns(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    db.insert(tables.item, _row(1), _row(2))
    db.replace(tables.item, {"id": 1, "name": "renamed", "value": None}, _row(5))
    assert _items(databases) == [(1, "renamed", None), (2, "n2", 20), (5, "n5", 50)]
    db.replace(tables.item)
    assert len(_items(databases)) == 3


def test_replace_key_only_table(db: Database, databases: DatabaseFactory) -> None:
    spec = ddl.TableSpec([ddl.FieldSpec("k", sqlalchemy.Integer, primaryKey=True)])
    table = db.ensureTableExists("keys", spec)
    db.insert(table, {"k": 1})
    db.replace(table, {"k": 1}, {"k": 2})
    assert _raw(databases, "keys", "k") == [(1,), (2,)]


def test_replace_unique_conflict_raises(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    db.insert(tables.item, _row(1), _row(2))
    with pytest.raises(ConflictError, match="Cannot replace into item"):
        db.replace(tables.item, _row(3), {"id": 1, "name": "n2", "value": 0})
    assert _items(databases) == [(1, "n1", 10), (2, "n2", 20)]


def test_delete_single_varying_column_in_batches(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    db.IN_BATCH_SIZE = 3
    db.insert(tables.item, *(_row(i) for i in range(12)))
    doomed = [*range(0, 12, 2), 100, 101]  # two ids that do not exist
    with _count_statements(databases.raw_engine(), "DELETE") as statements:
        count = db.delete(tables.item, ["id"], *({"id": i} for i in doomed))
    assert count == len(range(0, 12, 2))
    assert len(statements) == math.ceil(len(doomed) / db.IN_BATCH_SIZE)
    assert [r[0] for r in _items(databases)] == [i for i in range(12) if i not in doomed]


def test_delete_constant_and_varying_columns(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    db.IN_BATCH_SIZE = 2
    db.insert(tables.pair, *({"a": a, "b": b} for a in range(3) for b in range(4)))
    count = db.delete(tables.pair, ["a", "b"], *({"a": 1, "b": b} for b in (0, 2, 3)))
    assert count == 3
    expected = [(a, b) for a in range(3) for b in range(4) if not (a == 1 and b != 1)]
    assert [(a, b) for a, b, _ in _pairs(databases)] == expected
    # All columns constant: one row matched by plain equality.
    assert db.delete(tables.pair, ["a", "b"], {"a": 2, "b": 3}) == 1
    expected.remove((2, 3))
    assert [(a, b) for a, b, _ in _pairs(databases)] == expected


def test_delete_several_varying_columns_matches_row_by_row(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    db.IN_BATCH_SIZE = 2
    db.insert(tables.pair, *({"a": a, "b": b} for a in range(4) for b in range(4)))
    doomed = [(0, 1), (1, 0), (2, 3), (3, 3), (9, 9)]
    count = db.delete(tables.pair, ["a", "b"], *({"a": a, "b": b} for a, b in doomed))
    assert count == 4
    # A cartesian IN (a) AND IN (b) would also have deleted (0, 0), (1, 1), ...
    expected = [(a, b) for a in range(4) for b in range(4) if (a, b) not in doomed]
    assert [(a, b) for a, b, _ in _pairs(databases)] == expected


def test_delete_all_and_nothing(db: Database, tables: Tables, databases: DatabaseFactory) -> None:
    db.insert(tables.item, *(_row(i) for i in range(5)))
    assert db.delete(tables.item, ["id"]) == 0
    assert len(_items(databases)) == 5
    assert db.delete(tables.item, []) == 5
    assert _items(databases) == []
    assert db.delete(tables.item, []) == 0


def test_delete_where(db: Database, tables: Tables, databases: DatabaseFactory) -> None:
    db.insert(tables.item, *(_row(i) for i in range(6)))
    assert db.deleteWhere(tables.item, tables.item.c.value >= 30) == 3
    assert [r[0] for r in _items(databases)] == [0, 1, 2]
    assert db.deleteWhere(tables.item, tables.item.c.name == "missing") == 0
    assert [r[0] for r in _items(databases)] == [0, 1, 2]


# ----------------------------------------------------------------------
# Transactions


def test_outer_transaction_rolls_back_on_error(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    db.insert(tables.item, _row(1))
    with pytest.raises(ValueError, match="boom"), db.transaction():
        db.insert(tables.item, _row(2))
        db.delete(tables.item, ["id"], {"id": 1})
        raise ValueError("boom")
    assert not db.isInTransaction()
    assert _items(databases) == [(1, "n1", 10)]
    # The database is usable afterwards.
    db.insert(tables.item, _row(3))
    assert [r[0] for r in _items(databases)] == [1, 3]


def test_transaction_commits(db: Database, tables: Tables, databases: DatabaseFactory) -> None:
    with db.transaction():
        db.insert(tables.item, _row(1))
        with db.transaction():
            db.insert(tables.item, _row(2))
        with db.transaction(savepoint=True):
            db.insert(tables.item, _row(3))
    assert [r[0] for r in _items(databases)] == [1, 2, 3]


@pytest.mark.parametrize("failure", ["python", "conflict"])
def test_savepoint_failure_caught_inside_keeps_outer_work(
    db: Database, tables: Tables, databases: DatabaseFactory, failure: str
) -> None:
    with db.transaction():
        db.insert(tables.item, _row(1))
        expected = (ValueError, "inner") if failure == "python" else (ConflictError, "into item")
        with pytest.raises(expected[0], match=expected[1]), db.transaction(savepoint=True):
            db.insert(tables.item, _row(2))
            if failure == "python":
                raise ValueError("inner")
            db.insert(tables.item, _row(1))
        # Blocks nested in a savepoint are savepoints too.
        with db.transaction(savepoint=True):
            db.insert(tables.item, _row(3))
            with pytest.raises(ValueError, match="deeper"), db.transaction():
                db.insert(tables.item, _row(4))
                raise ValueError("deeper")
        db.insert(tables.item, _row(5))
    assert [r[0] for r in _items(databases)] == [1, 3, 5]


@pytest.mark.parametrize("failure", ["python", "conflict"])
def test_non_savepoint_failure_caught_inside_aborts_everything(
    db: Database, tables: Tables, databases: DatabaseFactory, failure: str
) -> None:
    db.insert(tables.item, _row(0))
    with (
        pytest.raises(TransactionAbortedError, match="all of its work was rolled back"),
        db.transaction(),
    ):
        db.insert(tables.item, _row(1))
        try:
            with db.transaction():
                if failure == "python":
                    db.insert(tables.item, _row(2))
                    raise ValueError("inner")
                db.insert(tables.item, _row(0))
        except (ValueError, ConflictError):
            pass
        if failure == "python":
            # Further writes in the doomed transaction go nowhere either.
            db.insert(tables.item, _row(3))
    assert not db.isInTransaction()
    assert _items(databases) == [(0, "n0", 0)]
    # A new transaction starts clean.
    with db.transaction():
        db.insert(tables.item, _row(4))
    assert [r[0] for r in _items(databases)] == [0, 4]


def test_interrupting_transaction(db: Database, tables: Tables, databases: DatabaseFactory) -> None:
    with db.transaction(interrupting=True):
        db.insert(tables.item, _row(1))
    with db.transaction():
        db.insert(tables.item, _row(2))
        with (
            pytest.raises(RuntimeError, match="must not run inside another transaction"),
            db.transaction(interrupting=True),
        ):
            db.insert(tables.item, _row(3))
    # The refused block never ran, and the RuntimeError (caught) did not doom the outer one.
    assert [r[0] for r in _items(databases)] == [1, 2]


def test_is_in_transaction(db: Database, tables: Tables) -> None:
    assert not db.isInTransaction()
    with db.session():
        assert not db.isInTransaction()
        with db.transaction():
            assert db.isInTransaction()
            with db.transaction(savepoint=True):
                assert db.isInTransaction()
            assert db.isInTransaction()
        assert not db.isInTransaction()
    with pytest.raises(ValueError, match="x"), db.transaction():
        raise ValueError("x")
    assert not db.isInTransaction()
    clone = db.clone()
    with db.transaction():
        assert not clone.isInTransaction()


def test_on_commit_runs_after_the_outermost_commit_only(db: Database, tables: Tables) -> None:
    ran: list[str] = []
    db.on_commit(lambda: ran.append("outside"))  # no transaction: at once
    assert ran == ["outside"]
    with db.transaction():
        db.on_commit(lambda: ran.append("outer"))
        with db.transaction():
            db.on_commit(lambda: ran.append("nested"))
        with pytest.raises(ValueError, match="undone"), db.transaction(savepoint=True):
            db.on_commit(lambda: ran.append("rolled-back savepoint"))
            raise ValueError("undone")
        with db.transaction(savepoint=True):
            db.on_commit(lambda: ran.append("kept savepoint"))
        assert ran == ["outside"]  # nothing before the commit
    assert ran == ["outside", "outer", "nested", "kept savepoint"]
    with pytest.raises(ValueError, match="boom"), db.transaction():
        db.on_commit(lambda: ran.append("rolled back"))
        raise ValueError("boom")
    with pytest.raises(TransactionAbortedError), db.transaction():
        db.on_commit(lambda: ran.append("doomed"))
        with contextlib.suppress(ValueError), db.transaction():
            raise ValueError("dooms the outer transaction")
    with db.transaction():
        pass  # callbacks of failed transactions do not leak into the next one
    assert ran == ["outside", "outer", "nested", "kept savepoint"]


def test_committed_cache_keeps_no_read_a_write_or_rollback_undid(
    db: Database, tables: Tables
) -> None:
    cache: CommittedCache[str, int] = CommittedCache(db)
    with db.transaction():
        cache.keep("a", 1)
        assert cache.get("a") == 1 and "a" in cache  # the transaction sees what it kept
        with contextlib.suppress(ValueError), db.transaction(savepoint=True):
            cache.keep("s", 9)
            assert cache.get("s") == 9
            raise ValueError("undoes the savepoint")
        # A block rolled back: the transaction reads afresh (what it kept before still
        # commits, what the block kept never does).
        assert cache.get("s") is None and cache.get("a") is None and "a" not in cache
        cache.keep("e", 5)
        assert cache.get("e") == 5
    assert cache.get("a") == 1 and cache.get("e") == 5
    assert "s" not in cache
    with db.transaction():
        assert cache.get("a") == 1  # committed values serve every transaction
    with pytest.raises(ValueError, match="x"), db.transaction():
        cache.keep("b", 2)
        raise ValueError("x")
    assert "b" not in cache
    with db.transaction():
        assert "b" not in cache  # nor does the next transaction see it
    with db.transaction():
        cache.keep("c", 3)  # read before a write of the same rows...
        cache.forget("c")  # ...which the write's invalidation cancels
        assert "c" not in cache
        cache.keep("d", 4)  # read after the write: kept
    assert "c" not in cache
    assert cache.get("d") == 4
    cache.clear()
    assert cache.get("a") is None and cache.get("d") is None


def test_query_raw_raises_driver_errors_as_sqlalchemy_errors_and_goes_on(
    db: Database, tables: Tables
) -> None:
    db.insert(tables.item, _row(1))
    for _ in range(2):  # the kept read connection, then the same after the error
        with (
            pytest.raises(sqlalchemy.exc.DBAPIError, match="no_such_table"),
            db.query_raw("SELECT * FROM no_such_table"),
        ):
            pass
        with db.query_raw(f"SELECT name FROM {db.quoted(tables.item)}") as rows:
            assert [tuple(r) for r in rows] == [("n1",)]
    with db.transaction():  # inside a transaction the rows it wrote are seen
        db.insert(tables.item, _row(2))
        with db.query_raw(f"SELECT id FROM {db.quoted(tables.item)} ORDER BY id") as rows:
            assert [r[0] for r in rows] == [1, 2]


def test_insert_guarded_inserts_all_or_nothing_under_its_guard(tmp_path: Path) -> None:
    with database_factory("postgresql", tmp_path) as databases:
        db = databases.open()
        assert db.GUARDED_INSERTS
        tables = _declare(db, create=True)
        db.insert(tables.pair, {"a": 1, "b": 1, "c": "token-1"})
        guard = (tables.pair, {"a": 1, "c": "token-1"})

        def parent_and_child(i: int) -> list[Any]:
            return [
                (tables.item, ["id", "name", "value"], (i, f"n{i}", i), ()),
                (tables.child, ["id", "item_id"], (i, i), ()),  # its foreign key: the item
            ]

        with db.transaction():
            assert db.insert_guarded(guard, parent_and_child(1))  # one statement, FK satisfied
        assert [r[0] for r in _items(databases)] == [1]
        stale = (tables.pair, {"a": 1, "c": "token-0"})
        with db.transaction():
            assert not db.insert_guarded(stale, parent_and_child(2))  # no guard row: nothing
        assert [r[0] for r in _items(databases)] == [1]
        with pytest.raises(ConflictError), db.transaction():
            db.insert_guarded(guard, parent_and_child(1))  # the item exists: nothing more
        assert [r[0] for r in _items(databases)] == [1]
        assert _raw(databases, "child", "id") == [(1, 1)]


def test_deferred_guarded_insert_rides_on_the_commit_and_a_changed_guard_repeats(
    tmp_path: Path,
) -> None:
    """In a `repeatable` block the guarded rows are queued; a guard changed by the time
    they are sent fails the transaction whole, for the block to repeat on fresh caches."""
    with database_factory("postgresql", tmp_path) as databases:
        db = databases.open()
        tables = _declare(db, create=True)
        db.insert(tables.pair, {"a": 1, "b": 1, "c": "token-1"})
        changed: list[int] = []

        def parent_and_child(i: int) -> list[Any]:
            return [
                (tables.item, ["id", "name", "value"], (i, f"n{i}", i), ()),
                (tables.child, ["id", "item_id"], (i, i), ()),
            ]

        def guarded(token: str, i: int) -> bool:
            return db.insert_guarded(
                (tables.pair, {"a": 1, "c": token}),
                parent_and_child(i),
                explain=lambda exc: ConflictError(f"item {i} explained: {exc}", exc.orig),
                on_changed=lambda: changed.append(i),
            )

        with db.repeatable(), db.transaction():
            assert guarded("token-1", 1)
            _deferred_one_row(db, tables.pair, 2)  # goes out in the same statement
        assert [r[0] for r in _items(databases)] == [1]
        assert _raw(databases, "child", "id") == [(1, 1)]
        assert _pairs(databases) == [(1, 1, "token-1"), (2, 2, "p2")]
        with pytest.raises(GuardChangedError) as caught, db.repeatable(), db.transaction():
            assert guarded("token-0", 2)  # queued: the answer comes with the commit
            _deferred_one_row(db, tables.pair, 3)
        assert changed == [2] and db.is_transient(caught.value)
        with (
            pytest.raises(ConflictError, match="item 1 explained"),
            db.repeatable(),
            db.transaction(),
        ):
            guarded("token-1", 1)  # the item exists
        with db.transaction():  # outside a repeatable block: sent at once, as before
            assert not guarded("token-0", 2)
        assert [r[0] for r in _items(databases)] == [1]
        assert _raw(databases, "child", "id") == [(1, 1)]
        assert _pairs(databases) == [(1, 1, "token-1"), (2, 2, "p2")]
        assert changed == [2]


def _deferred_one_row(db: Database, table: sqlalchemy.Table, i: int, note: str = "") -> None:
    """Queue pair ``(i, i, "p{i}")`` as a plain one-row insert (`Deferred.inserts_into`)."""
    p = db.PLACEHOLDER
    db.execute_deferred(
        f"INSERT INTO {db.quoted(table)} (a, b, c) VALUES ({p}, {p}, {p})",
        [(i, i, f"p{i}")],
        many=True,
        what="insert into pair",
        explain=lambda exc: ConflictError(f"pair {note}: {exc}", exc.orig),
        inserts_into=table.name,
    )


def test_one_row_inserts_of_a_transaction_commit_together_or_not_at_all(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    """On PostgreSQL a transaction made only of queued one-row inserts is one statement:
    its foreign keys are checked at its end, and a violation names the right write."""
    with db.transaction():
        if db.PIPELINED_WRITES:  # queued: the child may come before its parent
            db.insert_many(tables.child, ["id", "item_id"], [(7, 7)], deferred=True)
        db.insert_many(tables.item, ["id", "name", "value"], [(7, "n7", 70)], deferred=True)
        _deferred_one_row(db, tables.pair, 1)
    assert [r[0] for r in _items(databases)] == [7]
    assert _raw(databases, "child", "id") == ([(7, 7)] if db.PIPELINED_WRITES else [])
    assert _pairs(databases) == [(1, 1, "p1")]
    with pytest.raises(ConflictError, match="pair again"), db.transaction():
        db.insert_many(tables.item, ["id", "name", "value"], [(8, "n8", 80)], deferred=True)
        _deferred_one_row(db, tables.pair, 1, note="again")  # exists: the whole commit fails
    with pytest.raises(ConflictError, match="insert into item"), db.transaction():
        _deferred_one_row(db, tables.pair, 2)
        db.insert_many(tables.item, ["id", "name", "value"], [(7, "n9", 90)], deferred=True)
    assert [r[0] for r in _items(databases)] == [7]
    assert _pairs(databases) == [(1, 1, "p1")]
    with db.transaction():  # the connection goes on in transactions of its own
        _deferred_one_row(db, tables.pair, 3)
        with db.query_raw(f"SELECT a FROM {db.quoted(tables.pair)} ORDER BY a") as rows:
            assert [r[0] for r in rows] == [1, 3]
        _deferred_one_row(db, tables.pair, 4)
    assert [r[0] for r in _pairs(databases)] == [1, 3, 4]


def _deferred_insert(db: Database, table: sqlalchemy.Table, i: int, *, note: str = "") -> None:
    """Insert item ``i`` with `execute_deferred`; a conflict is explained with ``note``."""
    sql = f"INSERT INTO {db.quoted(table)} (id, name, value) VALUES ({db.PLACEHOLDER}, "
    sql += f"{db.PLACEHOLDER}, {db.PLACEHOLDER})"

    def explain(exc: ConflictError) -> ConflictError:
        return ConflictError(f"{note}: {exc}", exc.orig)

    db.execute_deferred(sql, [(i, f"n{i}", i)], many=True, what="insert into item", explain=explain)


def test_deferred_writes_are_pipelined_on_postgresql_only(db: Database) -> None:
    # psycopg 3 sends queued writes with the next statement or the COMMIT.
    expected = db.dialect_name == "postgresql"
    assert db.PIPELINED_WRITES is expected


def test_deferred_writes_are_seen_by_later_statements_and_committed(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    with db.transaction():
        _deferred_insert(db, tables.item, 1)
        _deferred_insert(db, tables.item, 2)
        with db.query_raw(f"SELECT id FROM {db.quoted(tables.item)} ORDER BY id") as rows:
            assert [r[0] for r in rows] == [1, 2]  # a read sends them first
        _deferred_insert(db, tables.item, 3)
        db.insert(tables.child, {"id": 3, "item_id": 3})  # a write after them, in order
        _deferred_insert(db, tables.item, 4)  # sent with the COMMIT
    assert [r[0] for r in _items(databases)] == [1, 2, 3, 4]
    assert _raw(databases, "child", "id") == [(3, 3)]
    _deferred_insert(db, tables.item, 5)  # outside a transaction: at once
    assert [r[0] for r in _items(databases)] == [1, 2, 3, 4, 5]


def test_deferred_conflict_at_commit_is_explained_and_rolls_back_everything(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    db.insert(tables.item, _row(1))
    explained = r"item one \(again\): Cannot insert into item"
    with pytest.raises(ConflictError, match=explained), db.transaction():
        db.insert(tables.item, _row(2))
        _deferred_insert(db, tables.item, 1, note="item one (again)")
        _deferred_insert(db, tables.item, 3)
    assert not db.isInTransaction()
    assert [r[0] for r in _items(databases)] == [1]
    with db.transaction():  # the next transaction starts clean
        _deferred_insert(db, tables.item, 4)
    assert [r[0] for r in _items(databases)] == [1, 4]


def test_a_transaction_of_queued_writes_only_begins_with_them(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    """Its BEGIN rides in their pipeline; all or nothing holds, and so do later transactions."""
    db.insert(tables.item, _row(1))
    with pytest.raises(ConflictError, match="one again"), db.transaction():
        _deferred_insert(db, tables.item, 2)
        _deferred_insert(db, tables.item, 1, note="one again")
        _deferred_insert(db, tables.item, 3)
    assert [r[0] for r in _items(databases)] == [1]
    with db.transaction():
        _deferred_insert(db, tables.item, 2)
        _deferred_insert(db, tables.item, 3)
    assert [r[0] for r in _items(databases)] == [1, 2, 3]
    # The connection is back in transaction mode: a later failure undoes earlier writes.
    with pytest.raises(ConflictError), db.transaction():
        _deferred_insert(db, tables.item, 4)
        with db.query_raw(f"SELECT count(*) FROM {db.quoted(tables.item)}") as rows:
            assert [r[0] for r in rows] == [4]
        db.insert(tables.item, _row(1))
    assert [r[0] for r in _items(databases)] == [1, 2, 3]


def test_a_transaction_that_reads_first_is_whole(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    """Its first read carries its BEGIN (PostgreSQL); what follows is in the same block."""
    item = db.quoted(tables.item)
    with pytest.raises(ConflictError), db.transaction():
        with db.query_raw(f"SELECT id FROM {item}") as rows:
            assert rows == []
        db.insert(tables.item, _row(1))  # through SQLAlchemy
        _deferred_insert(db, tables.item, 2)
        with db.query_raw(f"SELECT count(*) FROM {item}") as rows:
            assert rows[0][0] == 2  # the queued write went out first
        db.insert(tables.item, _row(2))  # exists: the whole block goes
    assert _items(databases) == []
    with db.transaction():
        with db.query_raw(f"SELECT id FROM {item}") as rows:
            assert rows == []
        _deferred_insert(db, tables.item, 3)
    assert [r[0] for r in _items(databases)] == [3]
    # The connection is back in transaction mode: a block that begins with a write is
    # whole too.
    with pytest.raises(ConflictError), db.transaction():
        db.insert(tables.item, _row(4))
        db.insert(tables.item, _row(3))
    assert [r[0] for r in _items(databases)] == [3]


@pytest.mark.parametrize("returning", [True, False], ids=["returning", "row-id"])
def test_ensure_key_gives_the_new_rows_key_or_none(
    db: Database,
    tables: Tables,
    databases: DatabaseFactory,
    returning: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One insert: the key of a row that went in, `None` for one that conflicts (nothing
    changes); also where the database has no RETURNING (SQLite before 3.35)."""
    monkeypatch.setattr(db._engine.dialect, "insert_returning", returning)
    assert db.ensure_key(tables.item, _row(5)) == 5
    assert db.ensure_key(tables.item, {"id": 6, "name": "n5", "value": 0}) is None  # name
    assert db.ensure_key(tables.item, _row(5, value=1)) is None  # key
    with db.transaction():
        assert db.ensure_key(tables.item, _row(7)) == 7
    assert _items(databases) == [(5, "n5", 50), (7, "n7", 70)]


def test_a_failed_first_read_fails_its_transaction_only(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    """The read that carries the block's BEGIN fails: raised as SQLAlchemy's error, nothing
    of the block is kept, and the next block (also beginning with a read) is whole."""
    with (
        pytest.raises(sqlalchemy.exc.DBAPIError, match="no_such_table"),
        db.transaction(),
        db.query_raw("SELECT * FROM no_such_table"),
    ):
        pass
    assert not db.isInTransaction()
    with db.transaction():
        with db.query_raw(f"SELECT count(*) FROM {db.quoted(tables.item)}") as rows:
            assert rows[0][0] == 0
        db.insert(tables.item, _row(1))
    assert [r[0] for r in _items(databases)] == [1]


def _round_trips(db: Database, work: Callable[[], None], trace: Path) -> int:
    """How many times the session connection waited for the server during ``work``."""
    import psycopg

    with db.transaction():
        pass  # the session connection is made and kept
    writer = db._held.writer
    assert writer is not None
    raw: Any = writer.connection.dbapi_connection
    with open(trace, "w") as file:
        raw.pgconn.trace(file.fileno())
        raw.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            work()
        finally:
            raw.pgconn.untrace()
    # A wait is a turn from what the client sent (F) to what the server answered (B).
    directions = [line[:1] for line in trace.read_text().splitlines() if line[:1] in ("F", "B")]
    return sum(1 for a, b in itertools.pairwise(directions) if (a, b) == ("F", "B"))


def test_begin_rides_with_the_first_statement_of_a_block(tmp_path: Path) -> None:
    """No round trip of its own for BEGIN: a read and then writes cost two (the read's reply
    and the end of its pipeline come back together), writes one."""
    with database_factory("postgresql", tmp_path) as databases:
        db = databases.open()
        tables = _declare(db, create=True)
        item = db.quoted(tables.item)

        def read_then_write() -> None:
            with db.transaction():
                with db.query_raw(f"SELECT id FROM {item}") as rows:
                    assert rows == []
                _deferred_insert(db, tables.item, 1)

        def writes() -> None:
            with db.transaction():
                _deferred_insert(db, tables.item, 2)
                _deferred_insert(db, tables.item, 3)

        assert _round_trips(db, read_then_write, tmp_path / "a") == 2
        assert _round_trips(db, writes, tmp_path / "b") == 1
        assert [r[0] for r in _items(databases)] == [1, 2, 3]


def test_a_block_whose_connection_drops_after_its_begin_leaves_the_next_one_whole(
    tmp_path: Path,
) -> None:
    """The server drops the session connection after a block sent its BEGIN with its first
    read: the block fails, and its witness row tells on a new connection that it did not
    commit; the next block, on a new connection, is whole again."""
    with database_factory("postgresql", tmp_path) as databases:
        db = databases.open()
        tables = _declare(db, create=True)
        with pytest.raises(DatabaseConnectionError) as lost, db.transaction():
            with db.query_raw("SELECT pg_backend_pid()") as rows:
                pid = rows[0][0]
            with databases.raw_engine().connect() as admin:
                admin.execute(sqlalchemy.text(f"SELECT pg_terminate_backend({int(pid)})"))
            db.witness(tables.item, "id", 1)
            _deferred_insert(db, tables.item, 1)  # sent with the COMMIT, on the dead connection
        assert not lost.value.in_doubt
        assert _items(databases) == []
        with pytest.raises(ConflictError), db.transaction():
            with db.query_raw(f"SELECT count(*) FROM {db.quoted(tables.item)}") as rows:
                assert rows[0][0] == 0
            db.insert(tables.item, _row(2))
            db.insert(tables.item, _row(2))  # exists: the whole block goes
        assert _items(databases) == []
        with db.transaction():
            _deferred_insert(db, tables.item, 3)
        assert [r[0] for r in _items(databases)] == [3]


def test_deferred_conflict_in_a_savepoint_keeps_the_outer_work(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    with db.transaction():
        db.insert(tables.item, _row(1))
        with pytest.raises(ConflictError, match="twice"), db.transaction(savepoint=True):
            _deferred_insert(db, tables.item, 2)
            _deferred_insert(db, tables.item, 1, note="twice")  # raised by the block's end
        _deferred_insert(db, tables.item, 3)
    assert [r[0] for r in _items(databases)] == [1, 3]


def test_deferred_conflict_caught_by_a_read_dooms_the_transaction(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    db.insert(tables.item, _row(1))
    with pytest.raises(TransactionAbortedError), db.transaction():
        db.insert(tables.item, _row(2))
        try:
            _deferred_insert(db, tables.item, 1, note="caught")
            with db.query_raw(f"SELECT id FROM {db.quoted(tables.item)}"):
                pass
        except ConflictError as exc:
            assert "caught" in str(exc)
    assert [r[0] for r in _items(databases)] == [1]


def test_deferred_writes_of_a_failed_block_are_never_sent(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    with db.transaction():
        db.insert(tables.item, _row(1))
        with pytest.raises(ValueError, match="inner"), db.transaction(savepoint=True):
            _deferred_insert(db, tables.item, 2)
            raise ValueError("inner")
    with pytest.raises(ValueError, match="outer"), db.transaction():
        _deferred_insert(db, tables.item, 3)
        raise ValueError("outer")
    assert [r[0] for r in _items(databases)] == [1]


def test_session_is_reentrant_and_pins_one_connection(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    checkouts: list[object] = []

    def on_checkout(dbapi_connection: object, record: object, proxy: object) -> None:
        checkouts.append(dbapi_connection)

    sqlalchemy.event.listen(databases.raw_engine(), "checkout", on_checkout)
    try:
        with db.session():
            db.insert(tables.item, _row(1))
            with db.session():
                with db.query(sqlalchemy.select(tables.item.c.id)) as result:
                    assert result.scalars().all() == [1]
                with db.transaction():
                    db.insert(tables.item, _row(2))
            # Still usable after the inner session closed.
            with db.query(
                sqlalchemy.select(sqlalchemy.func.count()).select_from(tables.item)
            ) as result:
                assert result.scalar_one() == 2
        # One connection for the whole session: none at all if it was kept already.
        assert len(checkouts) <= 1
        with db.query(sqlalchemy.select(tables.item.c.id)) as result:
            assert sorted(result.scalars()) == [1, 2]
        # Outside the session: the kept reader (made once).
        assert len(checkouts) <= 2
        settled = len(checkouts)
        for _ in range(3):  # the kept connections serve every later call: no checkout
            with db.transaction():
                db.insert(tables.item, _row(10 + _))
            with db.query(sqlalchemy.select(tables.item.c.id)) as result:
                assert len(result.all()) == 3 + _
        assert len(checkouts) == settled
    finally:
        sqlalchemy.event.remove(databases.raw_engine(), "checkout", on_checkout)
    assert [r[0] for r in _items(databases)] == [1, 2, 10, 11, 12]


def test_dispose_refused_inside_session(db: Database, tables: Tables) -> None:
    with db.session(), pytest.raises(RuntimeError, match="while a session is open"):
        db.dispose()
    db.insert(tables.item, _row(1))
    with db.query(sqlalchemy.select(tables.item.c.id)) as result:
        assert result.scalars().all() == [1]


# ----------------------------------------------------------------------
# Clones


def test_clone_shares_tables_and_sees_committed_data(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    db.insert(tables.item, _row(1))
    clone = db.clone()
    assert clone is not db
    assert clone.isWriteable() == db.isWriteable()
    assert clone.namespace == db.namespace
    assert clone.ensureTableExists("item", _item_spec()) is tables.item
    with clone.query(sqlalchemy.select(tables.item.c.id)) as result:
        assert result.scalars().all() == [1]
    clone.insert(tables.item, _row(2))
    with db.query(sqlalchemy.select(tables.item.c.id).order_by(tables.item.c.id)) as result:
        assert result.scalars().all() == [1, 2]
    # Tables created through a clone are known to the original.
    extra = clone.ensureTableExists("extra", _pair_spec())
    assert db.getExistingTable("extra", _pair_spec()) is extra


# In-memory SQLite is left out: its clones share the one connection that holds the data.
@not_in_memory
@pytest.mark.parametrize("client", ["opened again", "clone"])
def test_other_client_does_not_see_uncommitted_data(
    db: Database, tables: Tables, databases: DatabaseFactory, client: str
) -> None:
    db.insert(tables.item, _row(1))
    other = databases.open() if client == "opened again" else db.clone()
    with db.transaction():
        db.insert(tables.item, _row(2))
        with other.query(sqlalchemy.select(tables.item.c.id)) as result:
            assert result.scalars().all() == [1]
    with other.query(sqlalchemy.select(tables.item.c.id).order_by(tables.item.c.id)) as result:
        assert result.scalars().all() == [1, 2]


# ----------------------------------------------------------------------
# Read-only databases


def test_write_alone_returns_its_rows_and_commits_alone_or_with_the_transaction(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    db.insert(tables.item, _row(1), _row(2), _row(3))
    item, p = db.quoted(tables.item), db.PLACEHOLDER
    rows = db.write_alone(f"DELETE FROM {item} WHERE id >= {p} RETURNING id", [2], what="trim")
    assert sorted(row[0] for row in rows) == [2, 3]
    assert _items(databases) == [(1, "n1", 10)]  # committed: seen from another connection
    with pytest.raises(RuntimeError, match="undo"), db.transaction():
        assert db.write_alone(f"DELETE FROM {item} RETURNING id", what="empty") == [(1,)]
        raise RuntimeError("undo")
    assert _items(databases) == [(1, "n1", 10)]  # undone with the transaction it joined
    insert = f"INSERT INTO {item} (id, name, value) VALUES ({p}, {p}, {p}) RETURNING id"
    with pytest.raises(ConflictError, match="Cannot add an item"):
        db.write_alone(insert, [1, "again", 0], what="add an item")
    assert _items(databases) == [(1, "n1", 10)]
    assert db.write_alone(insert, [4, "n4", 40], what="add an item") == [(4,)]
    assert _items(databases) == [(1, "n1", 10), (4, "n4", 40)]
    # In a session, with or without a kept read connection, it commits as well.
    for keep in (True, False):
        db.KEEP_READER = keep  # type: ignore[misc]
        with db.session():
            rows = db.write_alone(f"DELETE FROM {item} WHERE id = {p} RETURNING id", [4], what="x")
            assert rows == [(4,)]
            db.write_alone(insert, [4, "n4", 40], what="add an item")
        assert _items(databases) == [(1, "n1", 10), (4, "n4", 40)]


def test_read_only_database_refuses_writes(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    db.insert(tables.item, _row(1), _row(2))
    db.insert(tables.pair, {"a": 1, "b": 1, "c": "x"})
    ro = databases.open(writeable=False)
    assert not ro.isWriteable()
    bound = _declare(ro, create=False)
    before = (_items(databases), _pairs(databases), _table_names(databases))
    item = bound.item
    attempts = {
        "insert": lambda: ro.insert(item, _row(3)),
        "insert select": lambda: ro.insert(
            bound.pair, select=sqlalchemy.select(item.c.id.label("a"), item.c.value.label("b"))
        ),
        "ensure": lambda: ro.ensure(item, _row(4)),
        "replace": lambda: ro.replace(item, _row(1, value=-1)),
        "delete": lambda: ro.delete(item, ["id"], {"id": 1}),
        "delete all": lambda: ro.delete(item, []),
        "deleteWhere": lambda: ro.deleteWhere(item, item.c.id > 0),
        "ensureTableExists": lambda: ro.ensureTableExists("extra", _item_spec()),
        "write_alone": lambda: ro.write_alone(
            f"DELETE FROM {ro.quoted(item)} RETURNING id", what="delete items"
        ),
    }
    for what, attempt in attempts.items():
        with pytest.raises(ReadOnlyDatabaseError, match="opened read-only") as excinfo:
            attempt()
        assert isinstance(excinfo.value, PermissionError), what
    with (
        pytest.raises(ReadOnlyDatabaseError, match="Cannot create tables"),
        ro.declareStaticTables(create=True) as context,
    ):
        context.addTable("extra", _item_spec())
    assert (_items(databases), _pairs(databases), _table_names(databases)) == before
    # Reading works.
    with ro.query(sqlalchemy.select(item.c.id).order_by(item.c.id)) as result:
        assert result.scalars().all() == [1, 2]
    with (
        ro.transaction(),
        ro.query(sqlalchemy.select(sqlalchemy.func.count()).select_from(item)) as result,
    ):
        assert result.scalar_one() == 2


@not_in_memory
def test_read_only_connection_refuses_raw_writes(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    """Below the API, the connection itself is read-only (SQLite mode=ro, PostgreSQL READ ONLY)."""
    db.insert(tables.item, _row(1))
    ro = databases.open(writeable=False)
    bound = _declare(ro, create=False)
    with (
        pytest.raises(sqlalchemy.exc.DBAPIError, match=r"(?i)read.?only"),
        ro.transaction(),
        ro.query(sqlalchemy.insert(bound.item).values(_row(2))),
    ):
        pass
    assert _items(databases) == [(1, "n1", 10)]


def test_read_only_in_memory_database_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="read-only in-memory SQLite database"):
        open_database("sqlite://", writeable=False)
    with pytest.raises(ConfigurationError, match="read-only in-memory SQLite database"):
        open_database("sqlite:///:memory:", writeable=False)


def test_read_only_missing_sqlite_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.sqlite3"
    with pytest.raises(
        ConfigurationError, match="does not exist, so it cannot be opened read-only"
    ):
        open_database(f"sqlite:///{path}", writeable=False)
    assert not path.exists()


def test_sqlite_file_in_missing_directory_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir" / "r.sqlite3"
    with pytest.raises(ConfigurationError, match="does not exist; create it first"):
        open_database(f"sqlite:///{path}")
    assert not (tmp_path / "no").exists()


# ----------------------------------------------------------------------
# Backend specifics


@only_sqlite_file
def test_sqlite_file_pragmas(db: Database, databases: DatabaseFactory) -> None:
    with databases.raw_engine().connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one() > 0


@only_sqlite
def test_sqlite_short_strings_are_checked(db: Database, databases: DatabaseFactory) -> None:
    spec = ddl.TableSpec(
        [
            ddl.FieldSpec("id", sqlalchemy.Integer, primaryKey=True),
            ddl.FieldSpec("s", sqlalchemy.String, length=8),
            ddl.FieldSpec("long", sqlalchemy.String, length=ddl.MAX_BOUNDED_STRING + 1),
        ]
    )
    table = db.ensureTableExists("strings", spec)
    db.insert(table, {"id": 1, "s": "x" * 8, "long": ""}, {"id": 2, "s": "y", "long": "z" * 100})
    for bad in ("", "x" * 9):
        with pytest.raises(ConflictError, match="CHECK constraint failed"):
            db.insert(table, {"id": 3, "s": "ok"}, {"id": 4, "s": bad})
        with pytest.raises(ConflictError, match="CHECK constraint failed"):
            db.replace(table, {"id": 1, "s": bad})
    assert _raw(databases, "strings", "id") == [(1, "x" * 8, ""), (2, "y", "z" * 100)]


@only_sqlite
def test_sqlite_rejects_namespace(databases: DatabaseFactory) -> None:
    with pytest.raises(ConfigurationError, match="SQLite databases have no namespaces"):
        open_database(databases.uri, namespace="ns")


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("not a uri", "Malformed database URI"),
        ("", "Malformed database URI"),
        ("mysql://x/y", "Unsupported database 'mysql'"),
        ("oracle+cx_oracle://u@h/d", "Unsupported database 'oracle'"),
    ],
)
def test_open_database_rejects_bad_uri(uri: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        open_database(uri)


def test_postgresql_rejects_unsupported_driver() -> None:
    with pytest.raises(ConfigurationError, match="Unsupported PostgreSQL driver 'pg8000'"):
        open_database("postgresql+pg8000://u@127.0.0.1:1/d")


@only_postgresql
@pytest.mark.parametrize("namespace", ['x"; drop', "1abc", "", "a" * 64, "has space"])
def test_postgresql_rejects_bad_namespace(databases: DatabaseFactory, namespace: str) -> None:
    with pytest.raises(ConfigurationError, match="Invalid PostgreSQL namespace"):
        open_database(databases.uri, namespace=namespace)
    engine = PostgresqlDatabase.makeEngine(databases.uri)
    try:
        with engine.connect() as connection:
            schemas = (
                connection.execute(
                    sqlalchemy.text("SELECT schema_name FROM information_schema.schemata")
                )
                .scalars()
                .all()
            )
    finally:
        engine.dispose()
    assert namespace not in schemas


@only_postgresql
def test_postgresql_namespace_is_created(databases: DatabaseFactory) -> None:
    db = databases.open()
    with databases.raw_engine().connect() as connection:
        found = connection.execute(
            sqlalchemy.text(
                "SELECT count(*) FROM information_schema.schemata WHERE schema_name = :s"
            ),
            {"s": databases.namespace},
        ).scalar_one()
    assert found == 1
    assert db.namespace == databases.namespace
    password = sqlalchemy.engine.make_url(postgresql_uri()).password
    if password:
        assert password not in str(db)


def test_unreachable_postgresql_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="Cannot connect to PostgreSQL"):
        open_database("postgresql://nobody@127.0.0.1:1/none")


def test_new_sqlite_files_use_small_pages(tmp_path: Path) -> None:
    """A put's commit appends every page it touched to the WAL: small pages, fewer bytes."""
    from databutler.registry.databases.sqlite import PAGE_SIZE

    db = open_database(f"sqlite:///{tmp_path / 'small.sqlite3'}")
    RegistryManagerTypes().makeRepo(db)
    with db.query_raw("PRAGMA page_size") as rows:
        assert rows[0][0] == PAGE_SIZE == 1024
    db.dispose()


def _series(n: int) -> sqlalchemy.Select[Any]:
    return sqlalchemy.select(sqlalchemy.func.generate_series(1, n).label("n"))


def _backend_pid(connection: sqlalchemy.Connection | None) -> int:
    assert connection is not None
    raw: Any = connection.connection.dbapi_connection
    return int(raw.info.backend_pid)


def test_streams_outside_a_session_are_one_statement_on_a_kept_connection(tmp_path: Path) -> None:
    """PostgreSQL streams outside a session read their rows in chunks of one autocommit
    statement, on a connection kept for streams: left early, or dropped by the server,
    the next stream still reads every row."""
    with database_factory("postgresql", tmp_path) as databases:
        db = databases.open()
        assert isinstance(db, PostgresqlDatabase)
        with db.stream_batches(_series(2500), 1000) as batches:
            sizes = [len(batch) for batch in batches]
        assert sizes == [1000, 1000, 500]
        kept = db._held.streamer
        assert kept is not None
        pid = _backend_pid(kept)
        # Left after the first chunk of a long result: the rest is cancelled, and the
        # connection is kept, idle, for the next stream.
        with db.stream_batches(_series(5_000_000), 1000) as batches:
            first = next(iter(batches))
        assert [row[0] for row in first] == list(range(1, 1001))
        assert db._held.streamer is kept and _backend_pid(kept) == pid
        with db.stream_batches(_series(10), 1000) as batches:
            assert [row[0] for batch in batches for row in batch] == list(range(1, 11))
        # The server drops the kept connection: the next stream runs on a new one.
        with databases.raw_engine().connect() as admin:
            admin.execute(sqlalchemy.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        time.sleep(0.2)
        with db.stream_batches(_series(1500), 1000) as batches:
            assert sum(len(batch) for batch in batches) == 1500
        assert _backend_pid(db._held.streamer) != pid
        # A statement failing midway raises SQLAlchemy's error; the next stream reads.
        failing = sqlalchemy.select(
            sqlalchemy.literal_column("1") / (sqlalchemy.func.generate_series(1, 3) - 2)
        )
        with (
            pytest.raises(sqlalchemy.exc.DataError, match="division by zero"),
            db.stream_batches(failing, 1000) as batches,
        ):
            list(batches)
        with db.stream_batches(_series(3), 1000) as batches:
            assert [row[0] for batch in batches for row in batch] == [1, 2, 3]
        # Inside a session, a stream sees the session's writes (a server-side cursor).
        tables = _declare(db, create=True)
        with db.transaction():
            db.insert(tables.item, *({"id": i, "name": f"n{i}", "value": i} for i in range(5)))
            with db.stream_batches(sqlalchemy.select(tables.item.c.id), 2) as batches:
                assert sorted(row[0] for batch in batches for row in batch) == list(range(5))


def test_chunked_streams_apply_result_and_bind_types(tmp_path: Path) -> None:
    """A column whose type converts the driver's value is converted in a chunked stream;
    a statement with a parameter whose type converts it reads through the cursor path."""
    with database_factory("postgresql", tmp_path) as databases:
        db = databases.open()
        half = sqlalchemy.func.generate_series(1, 3) / sqlalchemy.literal_column("2.0")
        floats = sqlalchemy.select(
            sqlalchemy.cast(half, sqlalchemy.Numeric(asdecimal=False)).label("half")
        )
        with db.stream_batches(floats, 10) as batches:
            halves = [row[0] for batch in batches for row in batch]
        assert halves == [0.5, 1.0, 1.5]
        assert all(type(h) is float for h in halves)  # the driver gives Decimal
        document = sqlalchemy.select(sqlalchemy.literal({"a": [1, 2]}, sqlalchemy.JSON).label("j"))
        with db.stream_batches(document, 10) as batches:
            assert [row[0] for batch in batches for row in batch] == [{"a": [1, 2]}]


def test_a_counted_write_goes_out_with_the_queued_ones(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    """`execute_raw` after queued writes (PostgreSQL: one pipeline for all of them) sees
    their rows and returns its own count; a queued write that fails raises its own error
    and undoes the transaction whole."""
    p = db.PLACEHOLDER
    item = db.quoted(tables.item)
    with db.transaction():
        for i in range(3):
            _deferred_insert(db, tables.item, i)
        queued = len(db._deferred)
        count = db.execute_raw(
            f"UPDATE {item} SET value = value + 1 WHERE id < {p}", (2,), what="update items"
        )
        assert count == 2  # the queued rows were there for it
        assert not db._deferred
    assert queued == (3 if db.PIPELINED_WRITES else 0)
    assert [(r[0], r[2]) for r in _items(databases)] == [(0, 1), (1, 2), (2, 2)]
    with pytest.raises(ConflictError, match="queued again"), db.transaction():
        _deferred_insert(db, tables.item, 5)
        _deferred_insert(db, tables.item, 1, note="queued again")  # exists
        db.execute_raw(f"DELETE FROM {item} WHERE id = {p}", (0,), what="delete an item")
    assert [r[0] for r in _items(databases)] == [0, 1, 2]
    with pytest.raises(ConflictError, match="Cannot insert the last"), db.transaction():
        _deferred_insert(db, tables.item, 6)
        db.execute_raw(
            f"INSERT INTO {item} (id, name, value) VALUES ({p}, {p}, {p})",
            (2, "again", 0),
            what="insert the last",
        )
    assert [r[0] for r in _items(databases)] == [0, 1, 2]


def test_a_queued_write_s_count_is_read_when_it_is_needed(
    db: Database, tables: Tables, databases: DatabaseFactory
) -> None:
    """`counted_later`: after the COMMIT that sent it, or sent on demand before it."""
    item = db.quoted(tables.item)
    p = db.PLACEHOLDER
    db.insert(tables.item, _row(1), _row(2), _row(3))
    with db.transaction():
        early = db.counted_later(f"DELETE FROM {item} WHERE id < {p}", (3,), what="delete")
        late = db.counted_later(f"DELETE FROM {item} WHERE id = {p}", (9,), what="delete")
        assert early() == 2  # asked for inside: the queue goes out now
        assert not db._deferred
        gone = db.counted_later(f"DELETE FROM {item} WHERE id = {p}", (3,), what="delete")
    assert (late(), gone()) == (0, 1)
    assert _items(databases) == []
    failed = None  # stays None where writes run at once: the error comes from the call
    with pytest.raises(ConflictError, match="explained"), db.transaction():
        db.insert(tables.item, _row(4))
        db.insert(tables.child, {"id": 1, "item_id": 4})
        failed = db.counted_later(
            f"DELETE FROM {item} WHERE id = {p}",
            (4,),
            what="delete",
            explain=lambda exc: ConflictError(f"explained: {exc}", exc.orig),
        )
    assert (failed is None) is (not db.PIPELINED_WRITES)
    if failed is not None:
        with pytest.raises(RuntimeError, match="never sent"):
            failed()
    assert _items(databases) == []


def test_a_stream_abandoned_by_its_reader_keeps_its_connection(tmp_path: Path) -> None:
    """A generator reading a chunked stream that its consumer stops (closed early) leaves
    the kept connection idle and kept, for the next stream."""
    with database_factory("postgresql", tmp_path) as databases:
        db = databases.open()

        def numbers() -> Generator[int, None, None]:
            with db.stream_batches(_series(1_000_000), 1000) as batches:
                for batch in batches:
                    yield from (row[0] for row in batch)

        reader = numbers()
        assert [next(reader) for _ in range(3)] == [1, 2, 3]
        kept_before = db._held.streamer  # taken by the open stream
        reader.close()
        kept = db._held.streamer
        assert kept_before is None and kept is not None
        with db.stream_batches(_series(5), 1000) as batches:
            assert [row[0] for batch in batches for row in batch] == [1, 2, 3, 4, 5]
        assert db._held.streamer is kept
