"""The persistent bridge: two tables shared by every datastore of a registry.

``dataset_location(datastore_name, dataset_id)`` says a datastore holds a
dataset; its foreign key to ``dataset`` stops the registry deleting a dataset
that is still stored. ``dataset_location_trash(dataset_id, datastore_name)``
lists datasets whose artifacts await deletion; it has no foreign key, so the
registry can delete the dataset in the transaction that trashes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, cast

import sqlalchemy

from ... import ddl
from ..._dataset_ref import require_dataset_id
from ..._exceptions import ConflictError, ReadOnlyDatabaseError
from ..interfaces import (
    Database,
    DatasetIdRef,
    DatasetRecordStorageManager,
    DatastoreRegistryBridge,
    DatastoreRegistryBridgeManager,
    FakeDatasetRef,
    FindRider,
    OpaqueTableStorage,
    OpaqueTableStorageManager,
    StaticTablesContext,
    StoredDatastoreItemInfoFactory,
    VersionTuple,
)
from ..interfaces._bridge import (
    as_dataset_ids,
    ref_ids,
    validate_datastore_name,
)
from ..interfaces._database import chunked
from ._trash import check_empty_trash_arguments, selected_id_batches
from .ephemeral import EphemeralDatastoreRegistryBridge

if TYPE_CHECKING:
    from ...dimensions import DimensionUniverse
    from ...transaction import DatastoreTransaction

__all__ = ["MonolithicDatastoreRegistryBridge", "MonolithicDatastoreRegistryBridgeManager"]


class _TableSpecs(NamedTuple):
    dataset_location: ddl.TableSpec
    dataset_location_trash: ddl.TableSpec


class _TablesTuple(NamedTuple):
    dataset_location: sqlalchemy.Table
    dataset_location_trash: sqlalchemy.Table


#: Width of the ``datastore_name`` columns.
_NAME_LENGTH = 256

#: Rows fetched at a time by the streamed consistency queries.
_ROWS_PER_FETCH = 10_000


def _makeTableSpecs(datasets: type[DatasetRecordStorageManager]) -> _TableSpecs:
    # dataset_id leads both keys: lookups by id (findDatastores, locate) and by
    # (id, datastore) use the key itself, which also serves the foreign key.
    location = ddl.TableSpec([], doc="A row means the named datastore holds the dataset.")
    datasets.addDatasetForeignKey(location, primaryKey=True)
    location.fields.add(
        ddl.FieldSpec("datastore_name", sqlalchemy.String, length=_NAME_LENGTH, primaryKey=True)
    )
    trash = ddl.TableSpec(
        [],
        doc="Datasets removed from a datastore whose artifacts still have to be deleted.",
    )
    # No foreign key: trash rows outlive their datasets. dataset_id leads the
    # key because the queries that empty the trash look rows up by id.
    datasets.addDatasetForeignKey(trash, primaryKey=True, constraint=False)
    trash.fields.add(
        ddl.FieldSpec("datastore_name", sqlalchemy.String, length=_NAME_LENGTH, primaryKey=True)
    )
    return _TableSpecs(dataset_location=location, dataset_location_trash=trash)


class MonolithicDatastoreRegistryBridge(DatastoreRegistryBridge):
    """The bridge of one persistent datastore, over the shared tables.

    Every write joins an enclosing ``db.transaction()``, or runs in its own.

    Parameters
    ----------
    datastoreName : `str`
        Name of the datastore.
    db : `Database`
        The registry database.
    tables : `_TablesTuple`
        The two bridge tables.
    """

    def __init__(self, datastoreName: str, *, db: Database, tables: _TablesTuple) -> None:
        super().__init__(datastoreName)
        self._db = db
        self._tables = tables
        p = db.PLACEHOLDER
        location, trash = (
            db.quoted(tables.dataset_location),
            db.quoted(tables.dataset_location_trash),
        )
        self._location_sql = location
        self._trash_sql = trash
        self._insert_sql = f"INSERT INTO {location} (dataset_id, datastore_name) VALUES ({p}, {p})"
        self._ensure_sql = f"{self._insert_sql} ON CONFLICT (dataset_id, datastore_name) DO NOTHING"
        self._mine = f"datastore_name = {p}"
        # held_records' SQL and row decoding, by records table.
        self._held_records_sql: dict[sqlalchemy.Table, Any] = {}
        self._riders: dict[sqlalchemy.Table, FindRider] = {}

    def _batches(self, refs: Iterable[DatasetIdRef]) -> Iterator[list[Any]]:
        """Encoded, sorted batches of ids (sorted for index locality)."""
        for batch in chunked(ref_ids(refs), self._db.IN_BATCH_SIZE):
            yield sorted(self._db.encode_ids(batch))

    def _where_mine(self, keys: list[Any]) -> tuple[str, list[Any]]:
        """SQL and parameters for "this datastore's rows with these ids"."""
        db = self._db
        return f"{self._mine} AND {db.sql_in_ids('dataset_id', len(keys))}", [
            self.datastoreName,
            *db.in_ids_params(keys),
        ]

    def _write_pairs(
        self,
        sql: str,
        refs: Iterable[DatasetIdRef],
        what: str,
        explain: Callable[[ConflictError], BaseException],
    ) -> None:
        # Sent with the transaction's next statement or its COMMIT where the
        # database pipelines: storing a dataset costs no round trip of its own.
        name = self.datastoreName
        # A plain insert of one pair may be sent as part of one statement with the
        # transaction's other such writes (see `Database.execute_deferred`).
        table = self._tables.dataset_location.name if sql is self._insert_sql else None
        with self._db.transaction():
            for keys in self._batches(refs):
                self._db.execute_deferred(
                    sql,
                    [(k, name) for k in keys],
                    many=True,
                    what=what,
                    explain=explain,
                    inserts_into=table if len(keys) == 1 else None,
                )

    def insert(self, refs: Iterable[DatasetIdRef]) -> None:
        # docstring inherited
        name = self.datastoreName

        def explain(exc: ConflictError) -> ConflictError:
            return ConflictError(
                f"Datastore {name!r} cannot record these datasets as stored: one is recorded "
                "already, or is not a dataset of the registry. Nothing was recorded; use ensure() "
                f"to skip datasets recorded already. ({exc})",
                exc.orig,
            )

        self._write_pairs(self._insert_sql, refs, "insert into dataset_location", explain)

    def ensure(self, refs: Iterable[DatasetIdRef]) -> None:
        # docstring inherited
        name = self.datastoreName

        def explain(exc: ConflictError) -> ConflictError:
            return ConflictError(
                f"Datastore {name!r} cannot record these datasets as stored: one is "
                f"not a dataset of the registry. Nothing was recorded. ({exc})",
                exc.orig,
            )

        self._write_pairs(self._ensure_sql, refs, "insert into dataset_location", explain)

    def forget(self, refs: Iterable[DatasetIdRef]) -> None:
        # docstring inherited
        with self._db.transaction():
            for keys in self._batches(refs):
                where, params = self._where_mine(keys)
                self._db.execute_raw(
                    f"DELETE FROM {self._location_sql} WHERE {where}",
                    params,
                    what="forget datasets",
                )

    def moveToTrash(
        self, refs: Iterable[DatasetIdRef], transaction: DatastoreTransaction | None
    ) -> None:
        # docstring inherited; the database transaction is the undo log here.
        db = self._db
        with db.transaction():
            for keys in self._batches(refs):
                where, params = self._where_mine(keys)
                # Rows are locked as they are copied, so a concurrent forget()
                # cannot slip between the copy and the delete. A dataset trashed
                # again (stored again before the trash was emptied) needs its
                # artifacts deleted once: the duplicate is skipped.
                # Queued: they go out with the transaction's next statement (a prune's
                # delete of the datasets) or its COMMIT.
                db.execute_deferred(
                    f"INSERT INTO {self._trash_sql} (dataset_id, datastore_name) "
                    f"SELECT dataset_id, datastore_name FROM {self._location_sql} WHERE {where}"
                    f"{db.FOR_UPDATE} ON CONFLICT (dataset_id, datastore_name) DO NOTHING",
                    params,
                    what="move datasets to the trash",
                )
                db.execute_deferred(
                    f"DELETE FROM {self._location_sql} WHERE {where}",
                    params,
                    what="move datasets to the trash",
                )

    def check(self, refs: Iterable[Any]) -> set[uuid.UUID]:
        # docstring inherited
        db = self._db
        found: set[uuid.UUID] = set()
        with db.session():
            for batch in chunked(as_dataset_ids(refs), db.IN_BATCH_SIZE):
                keys = db.encode_ids(batch)
                back = dict(zip(keys, batch, strict=True))
                where, params = self._where_mine(sorted(back))  # sorted: sequential probes
                with db.query_raw(
                    f"SELECT dataset_id FROM {self._location_sql} WHERE {where}", params
                ) as rows:
                    found.update(back[row[0]] for row in rows)
        return found

    def held_records(
        self, records_table: OpaqueTableStorage, ids: Iterable[Any]
    ) -> Iterator[dict[str, Any]]:
        """Records rows of the held ``ids``: one join of records and locations per batch."""
        db = self._db
        records = _sql_table(records_table)
        cached = self._held_records_sql.get(records)
        if cached is None:
            names, active, at = self._record_decoder(records)
            columns = ", ".join(f"r.{db.quote_name(name)}" for name in names)
            base = (
                f"SELECT {columns} FROM {db.quoted(records)} r JOIN {self._location_sql} l "
                f"ON l.dataset_id = r.dataset_id AND l.datastore_name = {db.PLACEHOLDER} WHERE "
            )
            cached = self._held_records_sql[records] = (names, active, at, base)
        names, active, at, base = cached
        id_name = names[at]
        for batch in chunked(as_dataset_ids(ids), db.IN_BATCH_SIZE):
            keys = db.encode_ids(batch)
            back = dict(zip(keys, batch, strict=True))
            # The ids constrain both tables, so that each is read through its primary key
            # whatever the planner's statistics say (none, right after a bulk load).
            n = len(back)
            sql = f"{base}{db.sql_in_ids('r.dataset_id', n)} AND {db.sql_in_ids('l.dataset_id', n)}"
            params = db.in_ids_params(sorted(back))
            with db.query_raw(sql, [self.datastoreName, *params, *params]) as rows:
                for row in rows:
                    record = dict(zip(names, row, strict=True))
                    record[id_name] = back[row[at]]
                    for i, process in active:
                        record[names[i]] = process(row[i])
                    yield record

    def held_records_rider(self, records_table: OpaqueTableStorage) -> FindRider | None:
        # docstring inherited; the records joined with this datastore's locations, by the
        # found id (both keys lead with it, so the plan does not depend on statistics).
        records = _sql_table(records_table)
        rider = self._riders.get(records)
        if rider is None:
            db = self._db
            names, active, at = self._record_decoder(records)
            id_name = names[at]

            def decode(rows: list[tuple[Any, ...]], dataset_id: Any) -> list[dict[str, Any]]:
                found = []
                for row in rows:
                    if row[at] is None:
                        continue  # the join matched nothing: not held (or no records)
                    record = dict(zip(names, row, strict=True))
                    record[id_name] = dataset_id
                    for i, process in active:
                        record[names[i]] = process(row[i])
                    found.append(record)
                return found

            # Two flat left joins, each through its table's key from the found id: a records
            # row only where this datastore holds the dataset. (A parenthesised inner join
            # of the two is not looked up by key on SQLite: it scans.)
            join = (
                f"LEFT JOIN {self._location_sql} hl ON hl.dataset_id = {{dataset_id}} "
                f"AND hl.datastore_name = {db.PLACEHOLDER} LEFT JOIN {db.quoted(records)} hr "
                "ON hr.dataset_id = hl.dataset_id"
            )
            columns = ", ".join(f"hr.{db.quote_name(name)}" for name in names)
            rider = FindRider(join, columns, len(names), (self.datastoreName,), decode)
            self._riders[records] = rider
        return rider

    # -- consistency checks -------------------------------------------------

    def _held(self, dataset_id: Any) -> sqlalchemy.Exists:
        """SQL: this datastore holds the dataset ``dataset_id`` (a column)."""
        location = self._tables.dataset_location
        return sqlalchemy.exists().where(
            location.c.dataset_id == dataset_id, location.c.datastore_name == self.datastoreName
        )

    def _trashed_sql(self, dataset_id: Any) -> sqlalchemy.Exists:
        """SQL: the dataset ``dataset_id`` (a column) is in this datastore's trash."""
        trash = self._tables.dataset_location_trash
        return sqlalchemy.exists().where(
            trash.c.dataset_id == dataset_id, trash.c.datastore_name == self.datastoreName
        )

    def _stream(self, sql: sqlalchemy.Select[Any]) -> Iterator[Any]:
        """Rows of ``sql``, fetched a page at a time (a server-side cursor on PostgreSQL)."""
        with self._db.stream(sql, _ROWS_PER_FETCH) as result:
            yield from result

    def held_record_pages(
        self,
        records_table: OpaqueTableStorage,
        record_column: str,
        prefixes: Sequence[str],
        columns: Sequence[str],
        page: int,
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Pages of ``(dataset_id, component, record_column, *columns)`` rows of the records
        of datasets this datastore holds whose ``record_column`` starts with one of
        ``prefixes``, in primary-key order (dataset id, component), ``page`` rows a query.

        Driver-level rows (ids as the driver returns them: `Database.decode_ids`), with no
        per-row SQLAlchemy work: for reading millions of records (a verify of files
        ingested in place).
        """
        records = _sql_table(records_table)
        for name in ("component", record_column, *columns):
            _column(records_table, records, name)
        db = self._db
        p = db.PLACEHOLDER
        starts = " OR ".join(
            f"substr(r.{db.quote_name(record_column)}, 1, {len(x)}) = {p}" for x in prefixes
        )
        read = ", ".join(
            f"r.{db.quote_name(c)}" for c in ("dataset_id", "component", record_column, *columns)
        )
        select = (
            f"SELECT {read} FROM {db.quoted(records)} r WHERE ({starts or 'FALSE'}) "
            f"AND EXISTS (SELECT 1 FROM {db.quoted(self._tables.dataset_location)} l "
            f"WHERE l.dataset_id = r.dataset_id AND l.datastore_name = {p})"
        )
        params: list[Any] = [*prefixes, self.datastoreName]
        order = f"ORDER BY r.dataset_id, r.component LIMIT {int(page)}"
        after = f"AND (r.dataset_id > {p} OR (r.dataset_id = {p} AND r.component > {p}))"
        sql, page_params = f"{select} {order}", params
        while True:
            with db.query_raw(sql, page_params) as fetched:
                rows = list(fetched)
            if rows:
                yield rows
            if len(rows) < page:
                return
            last, component = rows[-1][0], rows[-1][1]  # keyset: the primary key
            sql, page_params = f"{select} {after} {order}", [*params, last, last, component]

    def held_without_records(self, records_table: OpaqueTableStorage) -> Iterator[uuid.UUID]:
        # docstring inherited
        records = _sql_table(records_table)
        location = self._tables.dataset_location
        has_records = sqlalchemy.exists().where(records.c.dataset_id == location.c.dataset_id)
        sql = sqlalchemy.select(location.c.dataset_id).where(
            location.c.datastore_name == self.datastoreName, ~has_records
        )
        return (row[0] for row in self._stream(sql))

    def trashed_ids(self) -> Iterator[uuid.UUID]:
        # docstring inherited
        trash = self._tables.dataset_location_trash
        sql = sqlalchemy.select(trash.c.dataset_id).where(
            trash.c.datastore_name == self.datastoreName
        )
        return (row[0] for row in self._stream(sql))

    def orphaned_records(
        self, records_table: OpaqueTableStorage, record_column: str
    ) -> Iterator[tuple[uuid.UUID, Any]]:
        # docstring inherited
        records = _sql_table(records_table)
        column = _column(records_table, records, record_column)
        sql = (
            sqlalchemy.select(records.c.dataset_id, column)
            .where(~self._held(records.c.dataset_id), ~self._trashed_sql(records.c.dataset_id))
            .distinct()
        )
        return ((row[0], row[1]) for row in self._stream(sql))

    def delete_orphaned_records(
        self, records_table: OpaqueTableStorage, ids: Iterable[Any]
    ) -> None:
        # docstring inherited
        db = self._db
        records = _sql_table(records_table)
        p = db.PLACEHOLDER
        location, trash = self._location_sql, self._trash_sql
        orphaned = (
            f"NOT EXISTS (SELECT 1 FROM {location} l WHERE l.dataset_id = r.dataset_id "
            f"AND l.datastore_name = {p}) AND NOT EXISTS (SELECT 1 FROM {trash} t "
            f"WHERE t.dataset_id = r.dataset_id AND t.datastore_name = {p})"
        )
        table = db.quoted(records)
        with db.transaction():
            for batch in chunked(dict.fromkeys(as_dataset_ids(ids)), db.IN_BATCH_SIZE):
                keys = sorted(db.encode_ids(batch))
                db.execute_raw(
                    f"DELETE FROM {table} WHERE dataset_id IN (SELECT r.dataset_id FROM {table} r "
                    f"WHERE {db.sql_in_ids('r.dataset_id', len(keys))} AND {orphaned})",
                    [*db.in_ids_params(keys), self.datastoreName, self.datastoreName],
                    what=f"delete orphaned records from {records.name}",
                )

    def ordered_records(
        self,
        records_table: OpaqueTableStorage,
        record_column: str,
        *,
        prefixes: Sequence[str] | None = None,
        exclude_prefixes: Sequence[str] = (),
        held_only: bool = False,
        columns: Sequence[str] | None = None,
    ) -> Iterator[tuple[dict[str, Any], bool]]:
        # docstring inherited
        records = _sql_table(records_table)
        column = _column(records_table, records, record_column)
        held = self._held(records.c.dataset_id)
        # Code-point order: SQLite compares strings bytewise (UTF-8) by default;
        # PostgreSQL would use the database's locale unless told otherwise.
        ordered = column.collate("C") if self._db.dialect_name == "postgresql" else column
        read = list(records.columns)
        if columns is not None:
            wanted = {"dataset_id", record_column, *columns}
            read = [c for c in read if c.name in wanted]
        sql = sqlalchemy.select(held.label("held"), *read)
        if prefixes is not None:
            sql = sql.where(
                sqlalchemy.or_(sqlalchemy.false(), *(_starts(column, p) for p in prefixes))
            )
        for prefix in exclude_prefixes:
            sql = sql.where(~_starts(column, prefix))
        if held_only:
            sql = sql.where(held)
        sql = sql.order_by(ordered, records.c.dataset_id)
        names = [c.name for c in read]
        return ((dict(zip(names, row[1:], strict=True)), bool(row[0])) for row in self._stream(sql))

    @contextmanager
    def emptyTrash(
        self,
        records_table: OpaqueTableStorage | None = None,
        record_class: type[StoredDatastoreItemInfoFactory] | None = None,
        record_column: str | None = None,
        selected_ids: Iterable[Any] | None = None,
        dry_run: bool = False,
    ) -> Iterator[tuple[Iterable[tuple[DatasetIdRef, Any]], set[Any] | None]]:
        """Context manager over the trashed datasets whose artifacts are to be deleted.

        See `DatastoreRegistryBridge.emptyTrash` for the contract. This
        implementation runs the whole block in one database transaction. It
        pages through the trash by dataset id, ``SKIP LOCKED`` on PostgreSQL
        (so concurrent emptiers share the work and never double-handle a
        row), and deletes each page's records and trash rows once the caller
        has moved past it; the deletions become visible only at a clean exit
        and are rolled back otherwise. A trashed dataset that was stored again
        before the trash was emptied is not yielded: its records describe the
        live artifacts; only its stale trash row is dropped. A trashed dataset
        with no records row is yielded with ``info`` `None`, so its trash row
        does not linger forever.
        """
        check_empty_trash_arguments(records_table, record_class, record_column)
        if not dry_run and not self._db.isWriteable():
            # Refuse before the caller deletes any artifact whose rows we could not purge.
            raise ReadOnlyDatabaseError(
                f"Cannot empty the trash of datastore {self.datastoreName!r}: database "
                f"{self._db} was opened read-only; use dry_run=True or a writeable database."
            )
        records = _sql_table(records_table) if records_table is not None else None
        selected = (
            None if selected_ids is None else list(dict.fromkeys(as_dataset_ids(selected_ids)))
        )
        transaction = self._db.transaction() if not dry_run else self._db.session()
        with transaction:
            if dry_run and selected is not None:
                # The selected datasets' trash, read once: its rows give the pairs and
                # the artifacts to ask about (where a full pass reads the trash twice).
                pages = list(self._trash_pages(records, selected))
                keep = None
                if record_column is not None:
                    assert records is not None
                    at = 2 + list(records.columns.keys()).index(record_column)
                    column = records.columns[record_column]
                    paths = {row[at] for rows in pages for row in rows if not row[1]}
                    keep = self._shared(records, column, sorted(paths - {None}))
                decoder = self._record_decoder(records) if records is not None else None
                pairs = [self._page_pairs(rows, decoder, record_class)[0] for rows in pages]
                yield iter([pair for page in pairs for pair in page]), keep
                return
            keep = None
            if record_column is not None:
                assert records is not None
                keep = self._preserved(records, records.columns[record_column], selected)
            yield self._trashed(records, record_class, selected, dry_run), keep

    def trash_is_empty(self) -> bool:
        # docstring inherited; one read, which stops at the first row.
        sql = f"SELECT 1 FROM {self._trash_sql} WHERE datastore_name = {self._db.PLACEHOLDER}"
        with self._db.query_raw(sql + " LIMIT 1", (self.datastoreName,)) as rows:
            return not rows

    def trash_sample(self, limit: int) -> list[uuid.UUID] | None:
        # docstring inherited; one read, through the trash's primary key.
        p = self._db.PLACEHOLDER
        sql = f"SELECT dataset_id FROM {self._trash_sql} WHERE datastore_name = {p} LIMIT {p}"
        with self._db.query_raw(sql, (self.datastoreName, int(limit))) as rows:
            return self._db.decode_ids([row[0] for row in rows])

    def purge_trash(
        self, records_table: OpaqueTableStorage | None, ids: Iterable[uuid.UUID]
    ) -> list[uuid.UUID]:
        # docstring inherited. The trash rows of ``ids`` are read (locked, on
        # PostgreSQL; rows another emptier holds are its to purge) without the
        # records join and the item infos a full emptyTrash pass builds.
        if not self._db.isWriteable():
            raise ReadOnlyDatabaseError(
                f"Cannot empty the trash of datastore {self.datastoreName!r}: database "
                f"{self._db} was opened read-only; use a writeable database."
            )
        records = _sql_table(records_table) if records_table is not None else None
        selected = list(dict.fromkeys(as_dataset_ids(ids)))
        purged: list[uuid.UUID] = []
        db = self._db
        if db.WRITING_CTES:
            # One statement a batch, each a transaction of its own outside the caller's:
            # every batch is whole by itself (its artifacts are gone already).
            for batch in chunked(selected, db.IN_BATCH_SIZE):
                keys = db.encode_ids(batch)
                rows = db.write_alone(
                    self._purge_statement(records, len(keys)),
                    [self.datastoreName, *db.in_ids_params(keys), self.datastoreName],
                    what="empty the trash",
                )
                purged.extend(db.decode_ids([row[0] for row in rows]))
            return purged
        with self._db.transaction():
            for rows in self._trash_pages(None, selected):
                keys = list(dict.fromkeys(row[0] for row in rows if not row[1]))
                self._purge(records, rows, keys, by_range=False)
                purged.extend(self._db.decode_ids(keys))
        return purged

    def _purge_statement(self, records: sqlalchemy.Table | None, n: int) -> str:
        """`purge_trash` of ``n`` ids in one statement whose ``WITH`` parts write: lock their
        trash rows (skipping those another emptier holds), delete the records of those not
        stored again and the locked trash rows; its rows are the ids of the records
        deleted. Parameters: the datastore name, the ids (`Database.in_ids_params`), the
        datastore name."""
        db = self._db
        p = db.PLACEHOLDER
        page = (
            f"SELECT t.dataset_id, EXISTS (SELECT 1 FROM {self._location_sql} l "
            "WHERE l.dataset_id = t.dataset_id AND l.datastore_name = t.datastore_name) AS again "
            f"FROM {self._trash_sql} t WHERE t.datastore_name = {p} "
            f"AND {db.sql_in_ids('t.dataset_id', n)}{db.FOR_UPDATE_SKIP_LOCKED}"
        )
        parts = [f"page AS ({page})"]
        if records is not None:
            parts.append(
                f"records_gone AS (DELETE FROM {db.quoted(records)} WHERE dataset_id IN "
                "(SELECT dataset_id FROM page WHERE NOT again))"
            )
        parts.append(
            f"trash_gone AS (DELETE FROM {self._trash_sql} WHERE datastore_name = {p} "
            "AND dataset_id IN (SELECT dataset_id FROM page))"
        )
        return f"WITH {', '.join(parts)} SELECT dataset_id FROM page WHERE NOT again"

    def _preserved(
        self,
        records: sqlalchemy.Table,
        column: sqlalchemy.Column[Any],
        selected: list[uuid.UUID] | None,
    ) -> set[Any]:
        """Artifacts (``column`` values) of trashed datasets that held datasets also use.

        Two plain queries rather than one correlated one, so that no plan can go
        wrong on tables whose statistics are stale (a bulk load just before a
        prune made the correlated form take minutes on PostgreSQL): the trashed
        datasets' artifacts, streamed, then, batch by batch, which of them a
        record of a held dataset names (through the index on ``column``).
        """
        db = self._db
        p = db.PLACEHOLDER
        name = self.datastoreName
        path = db.quote_name(column.name)
        table = db.quoted(records)
        page_size = db.IN_BATCH_SIZE
        trashed = (
            f"SELECT t.dataset_id, r.{path} FROM {table} r JOIN {self._trash_sql} t "
            f"ON t.dataset_id = r.dataset_id WHERE t.datastore_name = {p} AND NOT EXISTS "
            f"(SELECT 1 FROM {self._location_sql} held WHERE held.dataset_id = t.dataset_id "
            f"AND held.datastore_name = {p})"
        )
        order = f" ORDER BY t.dataset_id LIMIT {page_size}"
        keep: set[Any] = set()
        for batch in selected_id_batches(selected, page_size):
            query, params = trashed, [name, name]
            if batch is not None:
                keys = db.encode_ids(batch)
                query += f" AND {db.sql_in_ids('t.dataset_id', len(keys))}"
                params += db.in_ids_params(keys)
            # Keyset pages over the trash: memory stays flat however large it is.
            after: Any = None
            past = False  # whether to start after ``after`` rather than at it
            while True:
                if after is None:
                    page_sql, page_params = query + order, params
                else:
                    page_sql = f"{query} AND t.dataset_id {'>' if past else '>='} {p}{order}"
                    page_params = [*params, after]
                with db.query_raw(page_sql, page_params) as rows:
                    full = len(rows) == page_size
                    if full and rows[0][0] != rows[-1][0]:
                        # The last dataset's rows may go on in the next page: take them there.
                        after, past = rows[-1][0], False
                        rows = [row for row in rows if row[0] != after]
                    elif full:  # one dataset fills a whole page: go on after it
                        after, past = rows[-1][0], True
                    candidates = sorted({row[1] for row in rows if row[1] is not None})
                keep |= self._shared(records, column, candidates)
                if not full:
                    break
        return keep

    def _shared(
        self, records: sqlalchemy.Table, column: sqlalchemy.Column[Any], candidates: list[Any]
    ) -> set[Any]:
        """Those of ``candidates`` (``column`` values) that a record of a dataset this
        datastore holds names: one plain query per batch, through the index on ``column``."""
        db = self._db
        path = db.quote_name(column.name)
        still_used = (
            f"SELECT DISTINCT s.{path} FROM {db.quoted(records)} s JOIN {self._location_sql} l "
            f"ON l.dataset_id = s.dataset_id AND l.datastore_name = {db.PLACEHOLDER} WHERE "
        )
        shared: set[Any] = set()
        for batch in chunked(candidates, db.IN_BATCH_SIZE):
            sql = still_used + db.sql_in_values(f"s.{path}", len(batch))
            with db.query_raw(sql, [self.datastoreName, *db.in_values_params(batch)]) as used:
                shared.update(row[0] for row in used)
        return shared

    def _trash_pages(
        self, records: sqlalchemy.Table | None, selected: list[uuid.UUID] | None
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Pages of this datastore's trash, in dataset id order (rows within a page in any order).

        Each row is ``(encoded dataset_id, stored_again, *records columns)``,
        one per records row of the dataset (the records columns all `None`
        when it has none, or there is no records table). The trash rows of a
        page stay locked (PostgreSQL) until the transaction ends; rows another
        emptier has locked are skipped.
        """
        db = self._db
        p = db.PLACEHOLDER
        trash = (
            f"SELECT t.dataset_id, EXISTS (SELECT 1 FROM {self._location_sql} l "
            "WHERE l.dataset_id = t.dataset_id AND l.datastore_name = t.datastore_name) AS again "
            f"FROM {self._trash_sql} t WHERE t.datastore_name = {p}"
        )

        def joined(page: str) -> str:
            if records is None:
                return page
            columns = ", ".join(f"r.{db.quote_name(c.name)}" for c in records.columns)
            return (
                f"SELECT page.dataset_id, page.again, {columns} FROM ({page}) page "
                f"LEFT JOIN {db.quoted(records)} r ON r.dataset_id = page.dataset_id"
            )

        page_size = db.IN_BATCH_SIZE
        if selected is not None:
            for batch in selected_id_batches(selected, page_size):
                assert batch is not None
                keys = db.encode_ids(batch)
                where = db.sql_in_ids("t.dataset_id", len(keys))
                sql = joined(f"{trash} AND {where}{db.FOR_UPDATE_SKIP_LOCKED}")
                with db.query_raw(sql, [self.datastoreName, *db.in_ids_params(keys)]) as rows:
                    if rows:
                        yield rows
            return
        order = f" ORDER BY t.dataset_id LIMIT {page_size}{db.FOR_UPDATE_SKIP_LOCKED}"
        first = joined(f"{trash}{order}")
        after = joined(f"{trash} AND t.dataset_id > {p}{order}")
        last: Any = None
        while True:
            params = [self.datastoreName] if last is None else [self.datastoreName, last]
            with db.query_raw(first if last is None else after, params) as rows:
                if not rows:
                    return
                yield rows
            last = max(row[0] for row in rows)

    def _record_decoder(
        self, records: sqlalchemy.Table
    ) -> tuple[list[str], list[tuple[int, Any]], int]:
        """Column names, ``(index, processor)`` pairs and the dataset_id index of records rows."""
        columns = list(records.columns)
        names = [c.name for c in columns]
        processors = self._db.result_processors(columns)
        at = names.index("dataset_id")
        active = [(i, f) for i, f in enumerate(processors) if f is not None and i != at]
        return names, active, at

    def _trashed(
        self,
        records: sqlalchemy.Table | None,
        record_class: type[StoredDatastoreItemInfoFactory] | None,
        selected: list[uuid.UUID] | None,
        dry_run: bool,
    ) -> Iterator[tuple[FakeDatasetRef, Any]]:
        db = self._db
        decoder = self._record_decoder(records) if records is not None else None
        for rows in self._trash_pages(records, selected):
            pairs, keys = self._page_pairs(rows, decoder, record_class)
            yield from pairs
            if dry_run:
                continue
            # The caller has moved past every pair of this page: purge it.
            self._purge(records, rows, keys, by_range=db.SERIALIZED_WRITES and selected is None)

    def _page_pairs(
        self,
        rows: list[tuple[Any, ...]],
        decoder: tuple[list[str], list[tuple[int, Any]], int] | None,
        record_class: type[StoredDatastoreItemInfoFactory] | None,
    ) -> tuple[list[tuple[FakeDatasetRef, Any]], list[Any]]:
        """The ``(ref, info)`` pairs of one page of `_trash_pages` (datasets stored again
        left out), and the encoded ids of the datasets they are of."""
        keys = list(dict.fromkeys(row[0] for row in rows if not row[1]))
        refs = dict(zip(keys, map(FakeDatasetRef, self._db.decode_ids(keys)), strict=True))
        pairs: list[tuple[FakeDatasetRef, Any]] = []
        append = pairs.append
        if decoder is None:
            for key in keys:
                append((refs[key], None))
            return pairs, keys
        assert record_class is not None
        from_record = record_class.from_record
        names, active, at = decoder
        id_name = names[at]
        id_column = 2 + at
        for row in rows:
            ref = refs.get(row[0])
            if ref is None:
                continue  # stored again: its records describe live artifacts
            if row[id_column] is None:
                append((ref, None))
                continue
            record = dict(zip(names, row[2:], strict=True))
            record[id_name] = ref.id
            for i, process in active:
                record[names[i]] = process(row[2 + i])
            append((ref, from_record(record)))
        return pairs, keys

    def _purge(
        self,
        records: sqlalchemy.Table | None,
        rows: list[tuple[Any, ...]],
        keys: list[Any],
        *,
        by_range: bool,
    ) -> None:
        """Delete the records rows of ``keys`` and the trash rows of one emptied page.

        With ``by_range`` (writers serialised, our write lock held, a page read
        in id order) the page is exactly our trash rows in its id range, so
        both deletes go by range instead of binding every id.
        """
        db = self._db
        if not by_range:
            # Queued: they go out with the COMMIT (or the next statement).
            if records is not None and keys:
                in_keys = db.sql_in_ids("dataset_id", len(keys))
                db.execute_deferred(
                    f"DELETE FROM {db.quoted(records)} WHERE {in_keys}",
                    db.in_ids_params(keys),
                    what=f"delete records from {records.name}",
                )
            where, params = self._where_mine(list(dict.fromkeys(row[0] for row in rows)))
            db.execute_deferred(
                f"DELETE FROM {self._trash_sql} WHERE {where}", params, what="empty the trash"
            )
            return
        p = db.PLACEHOLDER
        page_ids = [row[0] for row in rows]
        span = [self.datastoreName, min(page_ids), max(page_ids)]
        if records is not None and keys:
            emptied = (
                f"SELECT t.dataset_id FROM {self._trash_sql} t WHERE t.datastore_name = {p} "
                f"AND t.dataset_id >= {p} AND t.dataset_id <= {p} AND NOT EXISTS (SELECT 1 FROM "
                f"{self._location_sql} l WHERE l.dataset_id = t.dataset_id "
                "AND l.datastore_name = t.datastore_name)"
            )
            db.execute_raw(
                f"DELETE FROM {db.quoted(records)} WHERE dataset_id IN ({emptied})",
                span,
                what=f"delete records from {records.name}",
            )
        purged = db.execute_raw(
            f"DELETE FROM {self._trash_sql} WHERE datastore_name = {p} "
            f"AND dataset_id >= {p} AND dataset_id <= {p}",
            span,
            what="empty the trash",
        )
        if purged != len(set(page_ids)):
            # Only the caller's own writes inside the block can get here; raising
            # rolls the whole transaction back, so no unyielded row is lost.
            raise RuntimeError(
                f"The trash of datastore {self.datastoreName!r} changed while it was being "
                "emptied; do not trash datasets of a datastore inside its emptyTrash block."
            )


def _sql_table(records_table: OpaqueTableStorage) -> sqlalchemy.Table:
    """The SQL table of a records table, which must have a ``dataset_id`` column."""
    records = getattr(records_table, "table", None)
    if not isinstance(records, sqlalchemy.Table):
        raise TypeError(
            f"Records table {records_table.name!r} is not stored in this registry's "
            "database (it has no SQL table); the persistent bridge joins to it in SQL."
        )
    if "dataset_id" not in records.columns:
        raise ValueError(f"Records table {records_table.name!r} has no 'dataset_id' column.")
    return records


def _column(
    records_table: OpaqueTableStorage, records: sqlalchemy.Table, name: str
) -> sqlalchemy.Column[Any]:
    """Column ``name`` of ``records``; `ValueError` naming the columns if there is none."""
    if name not in records.columns:
        raise ValueError(
            f"Records table {records_table.name!r} has no column {name!r}; its columns "
            f"are {', '.join(records.columns.keys())}."
        )
    return records.columns[name]


def _starts(column: sqlalchemy.Column[Any], prefix: str) -> sqlalchemy.ColumnElement[bool]:
    """SQL "``column`` starts with ``prefix``", case-sensitive and free of LIKE wildcards."""
    return sqlalchemy.func.substr(column, 1, len(prefix)) == prefix


class MonolithicDatastoreRegistryBridgeManager(DatastoreRegistryBridgeManager):
    """Bridges for every datastore of a registry, over two shared tables.

    Parameters
    ----------
    db : `Database`
        The registry database.
    tables : `_TablesTuple`
        The ``dataset_location`` and ``dataset_location_trash`` tables.
    opaque : `OpaqueTableStorageManager`
        Manager of the datastores' records tables.
    universe : `~databutler.dimensions.DimensionUniverse`
        The dimensions of the registry.
    registry_schema_version : `VersionTuple`, optional
        The stored schema version.
    """

    _VERSION: ClassVar[VersionTuple | None] = VersionTuple(0, 2, 1)

    def __init__(
        self,
        *,
        db: Database,
        tables: _TablesTuple,
        opaque: OpaqueTableStorageManager,
        universe: DimensionUniverse,
        registry_schema_version: VersionTuple | None = None,
        _ephemeral: dict[str, EphemeralDatastoreRegistryBridge] | None = None,
    ) -> None:
        super().__init__(
            opaque=opaque, universe=universe, registry_schema_version=registry_schema_version
        )
        self._db = db
        self._tables = tables
        # Shared with clones: an ephemeral datastore's contents belong to the
        # process, not to one database connection.
        self._ephemeral = _ephemeral if _ephemeral is not None else {}
        location = db.quoted(tables.dataset_location)
        self._find_sql = (
            f"SELECT datastore_name FROM {location} WHERE dataset_id = {db.PLACEHOLDER}"
        )
        self._locate_sql = f"SELECT dataset_id, datastore_name FROM {location}"

    @classmethod
    def initialize(
        cls,
        db: Database,
        context: StaticTablesContext,
        *,
        opaque: OpaqueTableStorageManager,
        datasets: type[DatasetRecordStorageManager],
        universe: DimensionUniverse,
        registry_schema_version: VersionTuple | None = None,
    ) -> MonolithicDatastoreRegistryBridgeManager:
        # docstring inherited
        specs = context.addTableTuple(_makeTableSpecs(datasets))
        tables = _TablesTuple(*cast(tuple[sqlalchemy.Table, ...], specs))
        return cls(
            db=db,
            tables=tables,
            opaque=opaque,
            universe=universe,
            registry_schema_version=registry_schema_version,
        )

    def clone(
        self, *, db: Database, opaque: OpaqueTableStorageManager
    ) -> MonolithicDatastoreRegistryBridgeManager:
        # docstring inherited
        return type(self)(
            db=db,
            tables=self._tables,
            opaque=opaque,
            universe=self.universe,
            registry_schema_version=self._registry_schema_version,
            _ephemeral=self._ephemeral,
        )

    def refresh(self) -> None:
        # docstring inherited; nothing cached depends on other clients.
        pass

    @property
    def location_table(self) -> sqlalchemy.Table:
        """The ``dataset_location`` table, for queries that filter by datastore (never `None`)."""
        return self._tables.dataset_location

    @property
    def trash_table(self) -> sqlalchemy.Table:
        """The ``dataset_location_trash`` table, for code that reads it directly (tests)."""
        return self._tables.dataset_location_trash

    def is_ephemeral(self, name: str) -> bool:
        # docstring inherited
        return name in self._ephemeral

    def transaction(self) -> AbstractContextManager[None]:
        # docstring inherited
        return self._db.transaction()

    def register(self, name: str, *, ephemeral: bool = False) -> DatastoreRegistryBridge:
        # docstring inherited
        validate_datastore_name(name)
        if ephemeral:
            bridge = self._ephemeral.get(name)
            if bridge is None:
                bridge = self._ephemeral.setdefault(name, EphemeralDatastoreRegistryBridge(name))
            return bridge
        return MonolithicDatastoreRegistryBridge(name, db=self._db, tables=self._tables)

    def findDatastores(self, ref: DatasetIdRef) -> frozenset[str]:
        # docstring inherited
        dataset_id = require_dataset_id(ref)
        (key,) = self._db.encode_ids([dataset_id])
        with self._db.query_raw(self._find_sql, (key,)) as rows:
            names = {row[0] for row in rows}
        for name, bridge in self._ephemeral.items():
            if dataset_id in bridge:
                names.add(name)
        return frozenset(names)

    def locate(self, refs: Iterable[DatasetIdRef]) -> dict[uuid.UUID, set[str]]:
        # docstring inherited
        db = self._db
        found: dict[uuid.UUID, set[str]] = {}
        ephemeral = list(self._ephemeral.values())
        with db.session():
            for batch in chunked(ref_ids(refs), db.IN_BATCH_SIZE):
                keys = db.encode_ids(batch)
                # A dataset given twice is looked up twice; its last set wins, complete.
                places: list[set[str]] = [set() for _ in keys]
                found.update(zip(batch, places, strict=True))
                by_key = dict(zip(keys, places, strict=True))
                sql = f"{self._locate_sql} WHERE {db.sql_in_ids('dataset_id', len(keys))}"
                with db.query_raw(sql, db.in_ids_params(sorted(by_key))) as rows:
                    for key, name in rows:
                        by_key[key].add(name)
                for bridge in ephemeral:
                    for dataset_id in bridge.check(batch):
                        found[dataset_id].add(bridge.datastoreName)
        return found
