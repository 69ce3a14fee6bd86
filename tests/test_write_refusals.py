"""Writes the repository cannot take are refused with a databutler error, and leave it as it was.

A registry file (or its directory) that may not be written, a dataset type
that is not registered, a bad transfer mode, or an import or transfer that
fails half-way: each is a `DatabutlerError` that says what to fix (exit code
1 on the command line, never "internal error"), and the registry's SQL dump
is the same afterwards, schema (tables, the schema generation) included.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy
from click.testing import CliRunner

from databutler import Butler, DatabutlerError, ReadOnlyDatabaseError, TransferModeError, ddl
from databutler.cli import main
from databutler.registry.databases.sqlite import SqliteDatabase
from databutler.registry.dataset_types import MissingDatasetTypeError
from databutler.registry.interfaces import Database
from databutler.testing.butler import populate
from databutler.testing.database import DatabaseFactory

DATABUTLER = str(Path(sys.executable).parent / "databutler")

#: Root ignores file permissions; without these capabilities it does not.
_DROP = "-dac_override,-dac_read_search"


def _as_unprivileged() -> list[str]:
    """The command prefix that runs a command without the power to ignore permissions."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:  # pragma: no cover - util-linux is in the test image
        pytest.fail("Tests run as root need setpriv (util-linux) to drop DAC capabilities.")
    return [setpriv, f"--inh-caps={_DROP}", f"--bounding-set={_DROP}"]


def dump(root: Path) -> list[str]:
    """The registry's SQL dump: its whole schema and every row."""
    connection = sqlite3.connect(f"file:{root / 'registry.sqlite3'}?mode=ro", uri=True)
    try:
        return list(connection.iterdump())
    finally:
        connection.close()


def make_source(root: Path) -> Butler:
    butler = Butler.create(root, run="night1")
    populate(butler, 4, "catalog")
    butler.put({"a": 1}, "catalog", instrument="HSC", detector=2)
    return butler


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Butler]:
    butler = make_source(tmp_path / "repo")
    yield butler
    butler.registry.db.dispose()


@pytest.fixture
def fresh(tmp_path: Path) -> Path:
    root = tmp_path / "fresh"
    Butler.create(root).registry.db.dispose()
    return root


@pytest.fixture
def exported(source: Butler, tmp_path: Path) -> Path:
    return source.export(tmp_path / "export", collections=["night1"])


# -- a registry file this user may not write --------------------------------------------


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*_as_unprivileged(), DATABUTLER, *args], capture_output=True, text=True, check=False
    )


@pytest.fixture
def locked(source: Butler, tmp_path: Path) -> Iterator[Path]:
    """A copy of the source repository whose registry file is read-only."""
    root = tmp_path / "locked"
    source.registry.db.dispose()
    shutil.copytree(source.root, root)
    database = root / "registry.sqlite3"
    database.chmod(0o444)
    yield root
    database.chmod(0o644)


WRITES = {
    "register-dataset-type": ["t", "StructuredDataDict", "detector"],
    "collection-chain": ["chain", "night1"],
    "insert-dimension-records": ["--element", "detector", "{records}"],
}


@pytest.mark.parametrize("command", sorted(WRITES))
def test_writing_command_on_unwritable_registry_file(
    locked: Path, tmp_path: Path, command: str
) -> None:
    records = tmp_path / "records.yaml"
    records.write_text("- {instrument: HSC, detector: 9}\n")
    args = [a.format(records=records) for a in WRITES[command]]
    before = dump(locked)
    done = _run(command, str(locked), *args)
    assert done.returncode == 1, done.stderr
    assert "internal error" not in done.stderr
    assert str(locked / "registry.sqlite3") in done.stderr
    assert "permissions" in done.stderr and "read-only" in done.stderr
    assert dump(locked) == before
    # Reading it still works.
    done = _run("query-datasets", str(locked), "catalog", "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert "catalog" in done.stdout


def test_writing_command_on_unwritable_registry_directory(locked: Path) -> None:
    """SQLite must create its journal (or -wal and -shm files) next to the database."""
    database = locked / "registry.sqlite3"
    database.chmod(0o644)
    before = dump(locked)
    for companion in (locked / "registry.sqlite3-wal", locked / "registry.sqlite3-shm"):
        companion.unlink(missing_ok=True)
    locked.chmod(0o555)
    try:
        done = _run("register-dataset-type", str(locked), "t", "StructuredDataDict", "detector")
        assert done.returncode == 1, done.stderr
        assert "internal error" not in done.stderr
        assert f"directory {locked}" in done.stderr and "read-only" in done.stderr
        done = _run("query-dataset-types", str(locked), "--format", "csv")
        assert done.returncode == 0, done.stderr
    finally:
        locked.chmod(0o755)
    assert dump(locked) == before


def test_python_open_of_unwritable_registry_file(locked: Path) -> None:
    done = subprocess.run(
        [
            *_as_unprivileged(),
            sys.executable,
            "-c",
            "import sys\n"
            "from databutler import Butler, ReadOnlyDatabaseError\n"
            "try:\n"
            f"    Butler({str(locked)!r}, writeable=True)\n"
            "except ReadOnlyDatabaseError as exc:\n"
            "    assert isinstance(exc, PermissionError)\n"
            "    print(exc)\n"
            "    sys.exit(0)\n"
            "sys.exit(5)\n",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "registry.sqlite3 cannot be opened for writing" in done.stdout


# -- every write SQLite refuses, at the database layer -------------------------------------


def _spec() -> ddl.TableSpec:
    return ddl.TableSpec([ddl.FieldSpec("id", sqlalchemy.Integer, primaryKey=True)])


@pytest.fixture
def refusing(tmp_path: Path) -> Iterator[tuple[Database, sqlalchemy.Table, Path]]:
    """A database on a file SQLite opens read-only, used as if it could be written: what a
    file that turns read-only under an open repository looks like, for any user."""
    path = tmp_path / "registry.sqlite3"
    uri = f"sqlite:///{path}"
    db = SqliteDatabase.fromUri(uri, origin=0)
    with db.declareStaticTables(create=True) as context:
        table = context.addTable("item", _spec())
    db.insert(table, {"id": 1})
    db.dispose()
    engine = SqliteDatabase.makeEngine(uri, writeable=False)
    refusing = SqliteDatabase.fromEngine(engine, origin=0, writeable=True)
    with refusing.declareStaticTables(create=False) as context:
        table = context.addTable("item", _spec())
    yield refusing, table, path
    refusing.dispose()


def _in_transaction(db: Database, table: sqlalchemy.Table) -> None:
    with db.transaction():
        db.insert(table, {"id": 7})


def _table_in_transaction(db: Database, table: sqlalchemy.Table) -> None:
    with db.transaction(), db.tables_in_transaction():
        db.ensureTableExists("other", _spec())


WRITERS = {
    "insert": lambda db, t: db.insert(t, {"id": 2}),
    "ensure": lambda db, t: db.ensure(t, {"id": 3}),
    "replace": lambda db, t: db.replace(t, {"id": 1}),
    "delete": lambda db, t: db.delete(t, ["id"], {"id": 1}),
    "update": lambda db, t: db.update_where(t, t.c.id == 1, {"id": 4}),
    "driver": lambda db, t: db.execute_raw("DELETE FROM item", what="delete from item"),
    "returning": lambda db, t: db.write_alone(
        "DELETE FROM item RETURNING id", what="delete from item"
    ),
    "create table": lambda db, t: db.ensureTableExists("other", _spec()),
    "transaction": _in_transaction,
    "table in transaction": _table_in_transaction,
}


@pytest.mark.parametrize("write", sorted(WRITERS))
def test_refused_write_is_a_read_only_error(
    refusing: tuple[Database, sqlalchemy.Table, Path], write: str
) -> None:
    db, table, path = refusing
    with pytest.raises(ReadOnlyDatabaseError) as caught:
        WRITERS[write](db, table)
    assert isinstance(caught.value, PermissionError)
    message = str(caught.value)
    assert str(path) in message
    assert "directory" in message and "read-only" in message
    assert not isinstance(caught.value.__cause__, ReadOnlyDatabaseError)
    with db.query(sqlalchemy.select(table.c.id)) as result:
        assert [row.id for row in result] == [1]
    assert db.getExistingTable("other", _spec()) is None


# -- tables made inside a transaction -------------------------------------------------------


def test_table_made_in_a_rolled_back_transaction_is_forgotten(
    databases: DatabaseFactory,
) -> None:
    db = databases.open()
    with db.tables_in_transaction() as inside:
        if not inside:
            with db.transaction(), pytest.raises(RuntimeError, match="inside a transaction"):
                db.ensureTableExists("extra", _spec())
            return
        other = db.clone()
        with pytest.raises(LookupError), db.transaction():
            table = db.ensureTableExists("extra", _spec())
            db.insert(table, {"id": 1})
            assert db.getExistingTable("extra", _spec()) is table
            if databases.kind != "sqlite-memory":  # there, clones share one connection
                # Another client (a clone, on another thread) does not find it uncommitted.
                assert other.getExistingTable("extra", _spec()) is None
            raise LookupError("fail the transaction")
        assert db.getExistingTable("extra", _spec()) is None
        # Made again, and committed, it is there for every client.
        with db.transaction():
            table = db.ensureTableExists("extra", _spec())
            db.insert(table, {"id": 2})
        assert other.getExistingTable("extra", _spec()) is not None
        with other.query(sqlalchemy.select(table.c.id)) as result:
            assert [row.id for row in result] == [2]


def test_table_made_in_a_rolled_back_savepoint_is_forgotten(databases: DatabaseFactory) -> None:
    db = databases.open()
    with db.tables_in_transaction() as inside:
        if not inside:  # PostgreSQL: tables are made before the transaction
            assert not db.TABLES_IN_TRANSACTIONS
            return
        with db.transaction():
            with pytest.raises(LookupError), db.transaction(savepoint=True):
                db.ensureTableExists("extra", _spec())
                raise LookupError("fail the savepoint")
            assert db.getExistingTable("extra", _spec()) is None
            table = db.ensureTableExists("kept", _spec())
            db.insert(table, {"id": 1})
    assert db.getExistingTable("extra", _spec()) is None
    assert db.getExistingTable("kept", _spec()) is not None


# -- transfers and imports that fail leave nothing ------------------------------------------


def test_transfer_of_unregistered_types_is_refused(source: Butler, fresh: Path) -> None:
    target = Butler(fresh, writeable=True)
    before = dump(fresh)
    refs = source.query_datasets("catalog", collections="night1")
    with pytest.raises(MissingDatasetTypeError, match="'catalog' are not registered") as caught:
        target.transfer_from(source, refs, register_dataset_types=False)
    assert isinstance(caught.value, LookupError) and isinstance(caught.value, DatabutlerError)
    target.registry.db.dispose()
    assert dump(fresh) == before


def test_import_with_unknown_transfer_mode_is_refused_first(fresh: Path, exported: Path) -> None:
    target = Butler(fresh, writeable=True)
    before = dump(fresh)
    with pytest.raises(TransferModeError, match="transfer=None"):
        target.import_(exported, transfer="bogus")
    target.registry.db.dispose()
    assert dump(fresh) == before


def test_transfer_with_unknown_transfer_mode_is_refused_first(source: Butler, fresh: Path) -> None:
    target = Butler(fresh, writeable=True)
    before = dump(fresh)
    refs = source.query_datasets("catalog", collections="night1")
    with pytest.raises(TransferModeError, match="'bogus'"):
        target.transfer_from(source, refs, transfer="bogus")
    target.registry.db.dispose()
    assert dump(fresh) == before


FAILURES = {
    "import bad mode": (["import", "{fresh}", "{export}", "-t", "bogus"], "--transfer none"),
    "import without records": (["import", "{fresh}", "{export}", "--skip-dimensions"], "record"),
    "transfer bad mode": (
        ["transfer-datasets", "{repo}", "{fresh}", "catalog", "-t", "bogus"],
        "--transfer bogus",
    ),
    "transfer without records": (
        ["transfer-datasets", "{repo}", "{fresh}", "catalog", "--no-transfer-dimensions"],
        "record",
    ),
    "transfer without types": (
        ["transfer-datasets", "{repo}", "{fresh}", "--no-register-dataset-types"],
        "not registered",
    ),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_failed_import_or_transfer_leaves_the_registry_as_it_was(
    source: Butler, fresh: Path, exported: Path, case: str
) -> None:
    args, expected = FAILURES[case]
    source.registry.db.dispose()
    names = {"fresh": str(fresh), "export": str(exported), "repo": str(source.root)}
    before = dump(fresh)
    result = CliRunner().invoke(main, [a.format(**names) for a in args])
    assert result.exit_code == 1, result.output
    assert "internal error" not in result.output
    assert expected in result.output
    after = dump(fresh)
    assert after == before, "\n".join(set(after) ^ set(before))
    # And the same call, done right, works afterwards (no stale table or type is cached).
    if case.startswith("import"):
        assert CliRunner().invoke(main, ["import", str(fresh), str(exported)]).exit_code == 0
    else:
        ok = ["transfer-datasets", str(source.root), str(fresh), "catalog"]
        assert CliRunner().invoke(main, ok).exit_code == 0
    done = CliRunner().invoke(main, ["verify", str(fresh)])
    assert done.exit_code == 0, done.output


def test_failed_import_in_one_process_then_success(fresh: Path, exported: Path) -> None:
    """The same butler imports again after a failure: nothing a rollback undid is cached."""
    target = Butler(fresh, writeable=True)
    with pytest.raises(DatabutlerError):
        target.import_(exported, skip_dimensions=True)
    assert target.registry.queryDatasetTypes() == []
    imported = target.import_(exported)
    assert len(imported) == 1
    assert target.get(imported[0]) == {"a": 1}
    assert target.verify().ok
    target.registry.db.dispose()


# -- a PostgreSQL server that refuses the session's writes ----------------------------------


def _table(db: Database) -> sqlalchemy.Table:
    spec = ddl.TableSpec(fields=[ddl.FieldSpec("id", dtype=sqlalchemy.BigInteger, primaryKey=True)])
    return db.ensureTableExists("kept", spec)


def test_a_server_that_runs_the_session_read_only_refuses_by_name(tmp_path: Path) -> None:
    """``default_transaction_read_only`` (what a standby does too) and a missing privilege:
    each write is a `ReadOnlyDatabaseError` naming the reason; nothing is written."""
    from databutler.registry import open_database

    databases = DatabaseFactory("postgresql", tmp_path)
    try:
        table = _table(databases.open())
        qualified = databases.qualified("kept")
        with databases.raw_engine().begin() as admin:
            admin.execute(sqlalchemy.text(f"INSERT INTO {qualified} VALUES (1)"))
        read_only = databases.uri + "?options=-c%20default_transaction_read_only%3Don"
        with pytest.raises(ReadOnlyDatabaseError, match="Cannot create schema"):
            open_database(read_only, namespace=f"{databases.namespace}_new", writeable=True)
        db = open_database(read_only, namespace=databases.namespace, create=False)
        try:
            writes = [
                lambda: db.insert(table, {"id": 2}),
                lambda: db.delete(table, ["id"], {"id": 1}),
                lambda: db.execute_raw(f"DELETE FROM {qualified}", what="empty kept"),
            ]
            for write in writes:
                with pytest.raises(ReadOnlyDatabaseError, match="read-only") as caught:
                    write()
                assert "default_transaction_read_only" in str(caught.value)
        finally:
            db.dispose()
        with databases.raw_engine().begin() as admin:
            rows = admin.execute(sqlalchemy.text(f"SELECT id FROM {qualified}")).all()
            role = f"ro_{databases.namespace}"
            admin.execute(sqlalchemy.text(f'CREATE ROLE "{role}" LOGIN'))
            admin.execute(
                sqlalchemy.text(f'GRANT USAGE ON SCHEMA "{databases.namespace}" TO "{role}"')
            )
            admin.execute(sqlalchemy.text(f'GRANT SELECT ON {qualified} TO "{role}"'))
        assert [row.id for row in rows] == [1]
        url = sqlalchemy.make_url(databases.uri).set(username=role)
        db = open_database(
            url.render_as_string(hide_password=False), namespace=databases.namespace, create=False
        )
        try:
            with pytest.raises(ReadOnlyDatabaseError, match="lacks the privilege"):
                db.insert(table, {"id": 3})
            with db.query(sqlalchemy.select(table.c.id)) as result:
                assert [row.id for row in result] == [1]
        finally:
            db.dispose()
            with databases.raw_engine().begin() as admin:
                admin.execute(sqlalchemy.text(f'DROP OWNED BY "{role}"'))
                admin.execute(sqlalchemy.text(f'DROP ROLE "{role}"'))
    finally:
        databases.close()
