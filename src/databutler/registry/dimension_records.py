"""Dimension records: one static table per element of the universe.

Every element ``D`` of the universe has a table named ``D`` (``instrument``,
``detector``, ..., and ``visit_definition`` and the other elements that are
not dimensions). Its columns, in this order, are all named by dimension or
field name, so a key column has the same name in every table that holds it:

=============================  ==========================  =============================
column                         type                        constraint
=============================  ==========================  =============================
``R``, each required dim. R    R's key type                primary key; FK to table ``R``
``D``                          D's key type                primary key
``I``, each implied dim. I     I's key type, NOT NULL      FK to table ``I``
``F``, each metadata field F   F's type (below)            NULL unless F says otherwise
=============================  ==========================  =============================

The primary key is the required columns and then ``D``, in universe order
(``detector(instrument, detector)``); an element that is not a dimension has
no ``D`` column, and its primary key is its required columns
(``visit_definition(instrument, exposure, visit)``). The foreign key to a required dimension
``R`` uses R's whole key (``R``'s required columns and ``R``); the foreign key
to an implied dimension ``I`` uses the required columns the two share plus
``I`` (``exposure(instrument, physical_filter)`` references
``physical_filter(instrument, physical_filter)``). Field types map to
columns as::

    string    String(length), or Text when unbounded or longer than 32
    int       BigInteger
    float     Float (double precision)
    bool      Boolean
    datetime  DateTime without time zone, holding UTC
    timespan  two BigInteger columns F_begin and F_end (below)
    region    LargeBinary: the region's encoded bytes, opaque (never queried)
    bytes     LargeBinary(length)

A ``timespan`` field ``F`` (``exposure.timespan``) is stored as the two
columns ``F_begin`` and ``F_end``, a half-open range ``[begin, end)`` in the
scale of CALIBRATION validity ranges (`databutler._timespan_ns`): integer
nanoseconds since 1970 UTC, ``-2**62`` for an unbounded begin and ``2**62``
for an unbounded end. A record without a timespan has NULL in both (the
columns are nullable unless the field says otherwise). Each such table has
an index on ``(F_begin, F_end)``. Overlap with ``[b, e)`` is ``F_begin < e
AND b < F_end`` on every backend: the same two columns on SQLite and
PostgreSQL (deliberately not PostgreSQL's ``tstzrange``), so both answer
identically. ``F_begin`` and ``F_end`` may not be the names of other fields.

Table and column names are part of schema version 1.0.0; renaming any is a
new major version. A record's field names are its column names; its key may
also be given under the key's own name in the universe description (``id``
for ``detector``, ``name`` for ``instrument``), and read back as an attribute
(``record.id``). String values are never empty (``None`` is "no value") and
floats never NaN, so that every backend stores the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import sqlalchemy

from .. import ddl
from .._deprecation import renamed
from .._exceptions import ConflictError, DataIdError, DimensionConfigError
from ..dimensions import (
    DataCoordinate,
    Dimension,
    DimensionCombination,
    DimensionField,
    DimensionGroup,
    DimensionUniverse,
)
from ._dimension_record import DimensionRecord
from ._dimension_values import (
    COLUMN_TYPES,
    from_db,
    preview,
    timespan_columns,
    timespan_from_db,
    timespan_to_db,
    to_db,
)
from .interfaces import Database, StaticTablesContext, VersionedExtension, VersionTuple
from .interfaces._database import chunked

if TYPE_CHECKING:
    from .queries import Node, OrderTerm

__all__ = [
    "DimensionRecord",
    "DimensionRecordConflictError",
    "StaticDimensionRecordStorageManager",
    "check_records",
]

_T = TypeVar("_T")

#: A further condition of a query, made from its dimension key columns (a function of
#: a dimension's name, `LookupError` for one the query does not have).
Constraint = Callable[
    [Callable[[str], sqlalchemy.ColumnElement[Any]]], sqlalchemy.ColumnElement[bool]
]

#: Rows fetched at a time when streaming query results.
_STREAM_BATCH = 10_000


class DimensionRecordConflictError(ConflictError):
    """A dimension record exists already, with the same or (for `sync`) other values.

    The message names the record and, for `sync`, the fields that differ.
    """


@dataclass(frozen=True)
class _Layout:
    """How one dimension's records map onto its table."""

    dimension: Dimension | DimensionCombination
    group: DimensionGroup
    key_names: tuple[str, ...]
    """The primary key: required dimensions, then the dimension itself (if it is one)."""
    implied: tuple[str, ...]
    fields: Mapping[str, DimensionField]
    """Every record field, in table order, with its type."""
    columns: Mapping[str, str]
    """Every column, in table order, with the field it holds (a timespan has two)."""
    alias: str | None
    """The key's own name (``id``), accepted for the key column, if it is free."""

    @classmethod
    def build(cls, universe: DimensionUniverse, name: str) -> _Layout:
        dimension = universe.element(name)
        is_dimension = isinstance(dimension, Dimension)
        key_names = (*dimension.required, name) if is_dimension else dimension.required
        fields: dict[str, DimensionField] = {}
        for column in (*key_names, *dimension.implied):
            fields[column] = universe[column].key
        for field in dimension.metadata:
            if field.name in fields:
                raise DimensionConfigError(
                    f"Element {name!r}: metadata field {field.name!r} has the same name as "
                    f"the column of dimension {field.name!r} in table {name!r}; rename the field."
                )
            fields[field.name] = field
        columns: dict[str, str] = {}
        for field_name, field in fields.items():
            names = timespan_columns(field_name) if field.dtype == "timespan" else (field_name,)
            for column in names:
                if column in columns or (column != field_name and column in fields):
                    raise DimensionConfigError(
                        f"Element {name!r}: the column {column!r} of timespan field "
                        f"{field_name!r} has the name of another field or column of table "
                        f"{name!r}; rename one of them."
                    )
                columns[column] = field_name
        alias = None
        if isinstance(dimension, Dimension) and dimension.key.name not in fields:
            alias = dimension.key.name
        return cls(
            dimension,
            universe.group([name] if is_dimension else [*dimension.required, *dimension.implied]),
            key_names,
            dimension.implied,
            fields,
            columns,
            alias,
        )

    @property
    def name(self) -> str:
        return self.dimension.name

    def references(self) -> list[tuple[str, tuple[str, ...]]]:
        """The dimensions a record names (required, then implied), each with the key
        columns of its records: the foreign keys of the table. Key columns are named alike
        in every table, and the universe guarantees that an implied dimension requires
        nothing its implier does not: the referenced key is all here, same names."""
        universe = self.group.universe
        dimension = self.dimension
        return [
            (other, (*universe[other].required, other))
            for other in (*dimension.required, *dimension.implied)
        ]

    def key_of(self, row: Mapping[Any, Any]) -> tuple[Any, ...]:
        return tuple(row[name] for name in self.key_names)

    def describe(self, key: Sequence[Any]) -> str:
        """``instrument='HSC', detector=12`` for a key tuple."""
        return ", ".join(
            f"{name}={value!r}" for name, value in zip(self.key_names, key, strict=True)
        )

    def field_list(self) -> str:
        names = [
            f"{n} (or {self.alias!r})" if n == self.name and self.alias else n for n in self.fields
        ]
        return ", ".join(names)

    def role(self, column: str) -> str:
        if column == self.name:
            alias = f", also accepted as {self.alias!r}" if self.alias else ""
            return f"the {self.name} key{alias}"
        if column in self.key_names:
            return "a required dimension"
        if column in self.implied:
            return "an implied dimension"
        return "a metadata field that is not nullable"

    def values_of(self, row: Mapping[Any, Any]) -> dict[str, Any]:
        """A row of the table as record values, by field name."""
        values: dict[str, Any] = {}
        for name, field in self.fields.items():
            if field.dtype == "timespan":
                begin, end = timespan_columns(name)
                values[name] = timespan_from_db(row[begin], row[end])
            else:
                values[name] = from_db(field, row[name])
        return values

    def make_record(self, row: Mapping[Any, Any]) -> DimensionRecord:
        values = self.values_of(row)
        data_id = DataCoordinate(
            self.group, {name: values[name] for name in (*self.key_names, *self.implied)}
        )
        return DimensionRecord(self.name, data_id, values)


class StaticDimensionRecordStorageManager(VersionedExtension):
    """Stores dimension records, one static table per dimension of the universe.

    The table layout is described in the module docstring.

    Parameters
    ----------
    db : `Database`
        The database.
    universe : `DimensionUniverse`
        The dimensions; one table each.
    tables : `~collections.abc.Mapping` [`str`, `sqlalchemy.Table`]
        The tables, by dimension name.
    registry_schema_version : `VersionTuple`, optional
        The stored schema version.

    Notes
    -----
    Writes join the caller's transaction as a savepoint: a failed `insert`
    or `sync` undoes only its own work, so the caller may catch the error
    and go on.
    """

    _VERSION: ClassVar[VersionTuple | None] = VersionTuple(1, 0, 0)

    def __init__(
        self,
        db: Database,
        universe: DimensionUniverse,
        tables: Mapping[str, sqlalchemy.Table],
        registry_schema_version: VersionTuple | None = None,
    ) -> None:
        super().__init__(registry_schema_version=registry_schema_version)
        self._db = db
        self._universe = universe
        self._tables = dict(tables)
        self._layouts = {name: _Layout.build(universe, name) for name in universe.elements}

    @classmethod
    def initialize(
        cls,
        db: Database,
        context: StaticTablesContext,
        *,
        universe: DimensionUniverse,
        registry_schema_version: VersionTuple | None = None,
    ) -> StaticDimensionRecordStorageManager:
        """Declare one table per dimension of ``universe`` and return a manager.

        Parameters
        ----------
        db : `Database`
            The database.
        context : `StaticTablesContext`
            The context of `Database.declareStaticTables`.
        universe : `DimensionUniverse`
            The repository's dimensions.
        registry_schema_version : `VersionTuple`, optional
            The stored schema version (`None` for a new repository).

        Returns
        -------
        manager : `StaticDimensionRecordStorageManager`
            The manager.

        Raises
        ------
        DimensionConfigError
            If a metadata field has the name of a dimension column of its
            table, or a dimension's table name is taken by another table.
        """
        tables: dict[str, sqlalchemy.Table] = {}
        for name in universe.elements:
            spec = cls._table_spec(_Layout.build(universe, name))
            table = context.addTable(name, spec)
            if [column.name for column in table.columns] != spec.fields.names():
                raise DimensionConfigError(
                    f"Element {name!r} needs a table named {name!r}, but another manager "
                    "declared a table of that name; rename the element."
                )
            tables[name] = table
        return cls(db, universe, tables, registry_schema_version)

    @staticmethod
    def _table_spec(layout: _Layout) -> ddl.TableSpec:
        dimension = layout.dimension
        specs = []
        indexes = []
        for column, field in layout.fields.items():
            if column in layout.key_names:
                doc = f"Key of the {column} dimension."
            elif column in layout.implied:
                doc = f"The {column} this {dimension.name} implies."
            else:
                doc = None
            if field.dtype == "timespan":
                begin, end = timespan_columns(column)
                for part, text in ((begin, "begin (inclusive)"), (end, "end (exclusive)")):
                    specs.append(
                        ddl.FieldSpec(
                            part,
                            COLUMN_TYPES["timespan"],
                            nullable=field.nullable,
                            doc=f"The {column} {text}: ns since 1970 UTC; NULL for no {column}.",
                        )
                    )
                indexes.append(ddl.IndexSpec(begin, end))
                continue
            specs.append(
                ddl.FieldSpec(
                    column,
                    COLUMN_TYPES[field.dtype],
                    length=field.length if field.dtype == "string" else None,
                    nbytes=field.length if field.dtype == "bytes" else None,
                    primaryKey=column in layout.key_names,
                    nullable=field.nullable,  # never for key and implied columns
                    doc=doc,
                )
            )
        kind = "dimension" if isinstance(dimension, Dimension) else "element"
        foreign_keys = [ddl.ForeignKeySpec(other, key, key) for other, key in layout.references()]
        return ddl.TableSpec(
            specs,
            foreignKeys=foreign_keys,
            indexes=indexes,
            doc=f"Records of the {dimension.name} {kind}. {dimension.doc}".strip(),
        )

    def clone(self, db: Database) -> StaticDimensionRecordStorageManager:
        """A copy bound to ``db``."""
        return type(self)(db, self._universe, self._tables, self._registry_schema_version)

    @property
    def universe(self) -> DimensionUniverse:
        """The dimensions whose records this manager stores (`DimensionUniverse`)."""
        return self._universe

    def table(self, name: str) -> sqlalchemy.Table:
        """The table of dimension ``name`` (for joins and foreign keys).

        Raises
        ------
        UnknownDimensionError
            If ``name`` is not a dimension of the universe.
        """
        return self._tables[self._layout(name).name]

    def _layout(self, name: str) -> _Layout:
        layout = self._layouts.get(name) if isinstance(name, str) else None
        if layout is None:
            self._universe.element(name)  # raises UnknownDimensionError, listing the valid names
            raise AssertionError(name)  # pragma: no cover
        return layout

    # -- writing --------------------------------------------------------

    def insert(self, element: str, *records: Mapping[str, Any] | DimensionRecord) -> None:
        """Insert records of dimension ``element``, all or none.

        Parameters
        ----------
        element : `str`
            The dimension (``detector``).
        *records : `~collections.abc.Mapping` [`str`, `~typing.Any`] or `DimensionRecord`
            The records, by field name: the key values of the required
            dimensions and of ``element`` (also accepted under the key's own
            name, e.g. ``id``), the values of the implied dimensions, and
            metadata (a nullable field may be left out). Datetimes must be
            timezone-aware; they are stored in UTC.

        Raises
        ------
        DataIdError
            If a record has an unknown field (the message lists the valid
            ones), lacks a value, or a value has the wrong type. Every
            record is checked before anything is written.
        DimensionRecordConflictError
            If a record with the same key exists, or is given twice.
        ConflictError
            If a record refers to a record that does not exist (an
            ``instrument`` for a ``detector``); the message names it.
        """
        layout = self._layout(element)
        rows = [
            _to_row(layout, record, index, len(records)) for index, record in enumerate(records)
        ]
        if not rows:
            return
        seen: set[tuple[Any, ...]] = set()
        for row in rows:
            key = layout.key_of(row)
            if key in seen:
                raise DimensionRecordConflictError(
                    f"Cannot insert {layout.name} records: the record for {layout.describe(key)} "
                    "is given twice; nothing was inserted."
                )
            seen.add(key)
        try:
            with self._db.transaction(savepoint=True):
                self._db.insert(self._tables[layout.name], *rows)
        except ConflictError as exc:
            raise self._explain_conflict(layout, rows, exc, check_existing=True) from exc

    def sync(self, element: str, record: Mapping[str, Any] | DimensionRecord) -> bool:
        """Insert a record unless an identical one exists.

        Parameters
        ----------
        element : `str`
            The dimension (``detector``).
        record : `~collections.abc.Mapping` [`str`, `~typing.Any`] or `DimensionRecord`
            The record, as for `insert`.

        Returns
        -------
        inserted : `bool`
            `True` if the record was new, `False` if an identical one exists.

        Raises
        ------
        DataIdError
            If the record is not valid, as for `insert`.
        DimensionRecordConflictError
            If a record with the same key exists with other values; the
            message names the fields that differ. Nothing changes.
        ConflictError
            If the record refers to a record that does not exist.
        """
        layout = self._layout(element)
        row = _to_row(layout, record, 0, 1)
        table = self._tables[layout.name]
        try:
            with self._db.transaction(savepoint=True):
                if self._db.ensure(table, row, primary_key_only=True):
                    return True
                key = layout.key_of(row)
                existing = self._rows_by_key(layout, [key]).get(key)
        except ConflictError as exc:
            raise self._explain_conflict(layout, [row], exc, check_existing=False) from exc
        if existing is None:
            raise DimensionRecordConflictError(
                f"The {layout.name} record for {layout.describe(key)} was removed by another "
                "client while this one was syncing it; try again."
            )
        stored, given = layout.values_of(existing), layout.values_of(row)
        differences = [
            f"{name}={stored[name]!r} (given {given[name]!r})"
            for name in layout.fields
            if stored[name] != given[name]
        ]
        if differences:
            raise DimensionRecordConflictError(
                f"The {layout.name} record for {layout.describe(key)} exists with other values: "
                f"{'; '.join(differences)}. Nothing was changed."
            )
        return False

    def _explain_conflict(
        self,
        layout: _Layout,
        rows: Sequence[Mapping[str, Any]],
        exc: ConflictError,
        *,
        check_existing: bool,
    ) -> ConflictError:
        """The error to raise for a failed write of ``rows``: which record is in the way."""
        what = f"Cannot insert {layout.name} record(s)"
        if check_existing:
            keys = [layout.key_of(row) for row in rows]
            found = self._rows_by_key(layout, keys)
            present = [key for key in keys if key in found]
            if present:
                more = f" (and {len(present) - 1} more)" if len(present) > 1 else ""
                return DimensionRecordConflictError(
                    f"{what}: the record for {layout.describe(present[0])} exists already{more}; "
                    "nothing was inserted. Use sync() to insert records only where absent."
                )
        dimension = layout.dimension
        for other in (*dimension.required, *dimension.implied):
            parent = self._layouts[other]
            keys = list(dict.fromkeys(parent.key_of(row) for row in rows))
            found = self._rows_by_key(parent, keys)
            absent = [key for key in keys if key not in found]
            if absent:
                more = f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""
                return ConflictError(
                    f"{what}: no {other} record for {parent.describe(absent[0])}{more}; insert it "
                    "first. Nothing was inserted.",
                    exc.orig,
                )
        return ConflictError(f"{what}: {exc}. Nothing was inserted.", exc.orig)

    # -- reading --------------------------------------------------------

    def query(
        self,
        element: str,
        where: Node | None = None,
        bind: Mapping[str, Any] | None = None,
        *,
        order_by: Sequence[OrderTerm] = (),
        limit: int | None = None,
    ) -> list[DimensionRecord]:
        """Records of ``element`` matching a parsed ``where`` expression (all without one).

        The expression may use the element's key, the keys of the dimensions
        it requires or implies, its own fields (``exposure.exposure_time``)
        and fields of those other dimensions' records. `stream` takes the
        same arguments and reads the rows as its iterator advances.
        """
        return list(self.stream(element, where, bind, order_by=order_by, limit=limit))

    def stream(
        self,
        element: str,
        where: Node | None = None,
        bind: Mapping[str, Any] | None = None,
        *,
        order_by: Sequence[OrderTerm] = (),
        limit: int | None = None,
        exists: Sequence[Constraint] = (),
    ) -> Iterator[DimensionRecord]:
        """`query`, streamed: the SQL is built (and checked) at the call, rows read as needed.

        ``order_by`` may name the element's own fields bare (``obs_id``) as
        well as anything ``where`` may use; ties (and everything without
        ``order_by``) are ordered by the record's key. Each of ``exists``
        makes a condition from the query's dimension key columns (given as
        a function of the dimension's name) that the records must meet too:
        the existence of datasets, say.
        """
        from .queries import DimensionColumns, apply_order, order_clauses, to_sql

        layout = self._layout(element)
        table = self.table(element)
        sql = sqlalchemy.select(table)
        base = {name: table.c[name] for name in (*layout.key_names, *layout.implied)}
        columns = DimensionColumns(self._universe, self.table, base)

        def resolve(identifier: Any) -> Any:
            # A bare field name means a field of this element's own record.
            name = identifier.name
            if identifier.field is None and name not in self._universe and name in table.c:
                return table.c[name]
            return columns.resolve(identifier)

        if where is not None:
            sql = sql.where(to_sql(where, resolve, bind))
        for constraint in exists:
            sql = sql.where(constraint(columns.key))
        own = [name for name in table.c.keys() if name not in base]  # noqa: SIM118
        order = order_clauses(
            order_by,
            lambda term: resolve(term.identifier),
            lambda: [*own, *columns.names()],
            [table.c[name] for name in layout.key_names],
        )
        sql = columns.apply(apply_order(sql, order, limit))
        return self._stream_rows(sql, layout.make_record, limit, mappings=True)

    def _stream_rows(
        self,
        sql: sqlalchemy.Select[Any],
        make: Callable[[Any], _T],
        limit: int | None,
        *,
        mappings: bool,
    ) -> Iterator[_T]:
        if limit is not None and limit <= _STREAM_BATCH:
            # Bounded by the limit: read in one round trip.
            with self._db.query(sql) as result:
                rows: Any = (result.mappings() if mappings else result).all()
            for row in rows:
                yield make(row)
            return
        # Streamed: a server-side cursor on PostgreSQL, in a transaction of its own.
        with self._db.stream(sql, _STREAM_BATCH) as result:
            found: Any = result.mappings() if mappings else result
            for batch in found.partitions(_STREAM_BATCH):
                for row in batch:
                    yield make(row)

    def query_data_ids(
        self,
        dimensions: Iterable[str],
        where: Node | None = None,
        bind: Mapping[str, Any] | None = None,
        *,
        order_by: Sequence[OrderTerm] = (),
        limit: int | None = None,
    ) -> list[DataCoordinate]:
        """Every data ID of ``dimensions`` whose records exist and match ``where``.

        The records of the required dimensions are joined on their shared
        keys, so the answer is every combination the records allow (every
        detector of every exposure of an instrument, say). `stream_data_ids`
        takes the same arguments and reads the rows as its iterator advances.
        """
        return list(self.stream_data_ids(dimensions, where, bind, order_by=order_by, limit=limit))

    def stream_data_ids(
        self,
        dimensions: Iterable[str],
        where: Node | None = None,
        bind: Mapping[str, Any] | None = None,
        *,
        order_by: Sequence[OrderTerm] = (),
        limit: int | None = None,
        exists: Sequence[Constraint] = (),
    ) -> Iterator[DataCoordinate]:
        """`query_data_ids`, streamed: the SQL is built (and checked) at the call.

        Ordered by ``order_by`` (dimensions and record fields), then by the
        data ID. ``exists`` are further conditions, as for `stream`.
        """
        from .queries import DimensionColumns, apply_order, dimension_term, order_clauses, to_sql

        group = self._universe.group(dimensions)
        if not group.required:
            return iter(())
        tables = {name: self.table(name).alias(f"key_{name}") for name in group.required}
        first, *rest = group.required
        joined: Any = tables[first]
        for name in rest:
            shared = [r for r in self._universe[name].required if r in tables]
            onclause = sqlalchemy.and_(
                sqlalchemy.true(), *(tables[name].c[r] == tables[r].c[r] for r in shared)
            )
            joined = joined.join(tables[name], onclause)
        keys = [tables[name].c[name] for name in group.required]
        sql = sqlalchemy.select(*keys).select_from(joined)
        base = {name: tables[name].c[name] for name in group.required}
        columns = DimensionColumns(self._universe, self.table, base)
        if where is not None:
            sql = sql.where(to_sql(where, columns.resolve, bind))
        for constraint in exists:
            sql = sql.where(constraint(columns.key))
        order = order_clauses(
            order_by, lambda term: dimension_term(columns, term), columns.names, keys
        )
        sql = columns.apply(apply_order(sql.distinct(), order, limit))
        width = len(keys)

        def make(row: Any) -> DataCoordinate:
            return DataCoordinate.from_required(group, tuple(row[:width]), check=False)

        return self._stream_rows(sql, make, limit, mappings=False)

    # Deprecated aliases of renamed methods, kept for one release.
    queryDataIds = renamed("query_data_ids")

    def fetch(
        self,
        element: str,
        data_ids: Iterable[DataCoordinate | Mapping[str, Any]] | None = None,
        /,
        **where: Any,
    ) -> list[DimensionRecord]:
        """Records of dimension ``element``: all, or those of the given data IDs.

        Parameters
        ----------
        element : `str`
            The dimension (``detector``).
        data_ids : `~collections.abc.Iterable` [`DataCoordinate` or `dict`], optional
            Data IDs (`DataCoordinate` or mappings) with values for
            ``element`` and the dimensions it requires; values of other
            dimensions are ignored. By default, every record.
        **where
            Field values the records must have (``instrument="HSC"``;
            `None` matches an empty field).

        Returns
        -------
        records : `list` [`DimensionRecord`]
            In the order of ``data_ids`` (each record once; data IDs without
            a record are left out), or else by key.

        Raises
        ------
        DataIdError
            If a data ID lacks a value or has a bad one, or ``where`` names
            an unknown field or has a value of the wrong type.
        """
        layout = self._layout(element)
        filters = []
        table = self._tables[layout.name]
        for name, value in where.items():
            column = layout.name if name == layout.alias else name
            field = layout.fields.get(column)
            if field is None:
                raise DataIdError(
                    f"Cannot select {layout.name} records by {name!r}: not a field; valid fields "
                    f"are: {layout.field_list()}."
                )
            if field.dtype == "timespan":
                begin, end = timespan_columns(column)
                bounds = timespan_to_db(
                    to_db(field, value, f"Selecting {layout.name} records: {name!r}")
                )
                for part, bound in zip((begin, end), bounds, strict=True):
                    filters.append(
                        table.columns[part].is_(None)
                        if bound is None
                        else table.columns[part] == bound
                    )
            elif value is None:
                filters.append(table.columns[column].is_(None))
            else:
                converted = to_db(field, value, f"Selecting {layout.name} records: {name!r}")
                filters.append(table.columns[column] == converted)
        if data_ids is None:
            sql = sqlalchemy.select(table).where(*filters)
            sql = sql.order_by(*(table.columns[name] for name in layout.key_names))
            with self._db.query(sql) as result:
                return [layout.make_record(row) for row in result.mappings()]
        keys = []
        for data_id in data_ids:
            coordinate = DataCoordinate.standardize(
                data_id, universe=self._universe, dimensions=layout.group
            )
            keys.append(tuple(coordinate.required[name] for name in layout.key_names))
        rows = self._rows_by_key(layout, keys, filters)
        return [layout.make_record(rows[key]) for key in dict.fromkeys(keys) if key in rows]

    def fill_implied(
        self, data_ids: Iterable[DataCoordinate | Mapping[str, Any]]
    ) -> list[DataCoordinate]:
        """Data IDs with the values of their implied dimensions, from the records.

        Parameters
        ----------
        data_ids : `~collections.abc.Iterable` [`DataCoordinate` or `dict`]
            The data IDs (mappings are standardized first).

        Returns
        -------
        coordinates : `list` [`DataCoordinate`]
            The same data IDs, in order, each with `~DataCoordinate.has_full`.

        Raises
        ------
        DataIdError
            If a record needed is missing (the message names the dimension
            and its key values), a data ID belongs to another universe, or
            an implied value it has differs from the record's.

        Notes
        -----
        Looks up all data IDs at once: one query per dimension per batch of
        `Database.IN_BATCH_SIZE` values. An implied value comes from the
        record of the dimension that implies it (``physical_filter`` from
        ``exposure``), which may itself be implied (``band`` from that
        ``physical_filter``).
        """
        coordinates = [self._coordinate(data_id) for data_id in data_ids]
        known = [dict(coordinate.mapping) for coordinate in coordinates]
        pending = [i for i, coordinate in enumerate(coordinates) if not coordinate.has_full()]
        # Reverse universe order visits a dimension before any it implies.
        for name in reversed(self._universe.names):
            layout = self._layouts[name]
            if not layout.implied:
                continue
            wanted: dict[int, tuple[Any, ...]] = {}
            for i in pending:
                group = coordinates[i].dimensions
                if name in group and any(
                    other in group.implied and other not in known[i] for other in layout.implied
                ):
                    wanted[i] = layout.key_of(known[i])
            if not wanted:
                continue
            rows = self._rows_by_key(layout, list(dict.fromkeys(wanted.values())))
            for i, key in wanted.items():
                row = rows.get(key)
                if row is None:
                    raise DataIdError(
                        f"Cannot fill the implied values of data ID {coordinates[i]}: no {name} "
                        f"record for {layout.describe(key)}; insert it first."
                    )
                for other in layout.implied:
                    value = row[other]
                    if known[i].get(other, value) != value:
                        raise DataIdError(
                            f"Data ID {coordinates[i]} has {other}={known[i][other]!r}, but the "
                            f"{name} record for {layout.describe(key)} says {other}={value!r}."
                        )
                    known[i][other] = value
        return [
            coordinate if coordinate.has_full() else coordinate.fill_implied(values)
            for coordinate, values in zip(coordinates, known, strict=True)
        ]

    def _coordinate(self, data_id: DataCoordinate | Mapping[str, Any]) -> DataCoordinate:
        if not isinstance(data_id, DataCoordinate):
            return DataCoordinate.standardize(data_id, universe=self._universe)
        if data_id.universe != self._universe:
            raise DataIdError(
                f"Data ID {data_id} belongs to another dimension universe than this repository's."
            )
        return data_id

    def _rows_by_key(
        self,
        layout: _Layout,
        keys: Sequence[tuple[Any, ...]],
        filters: Sequence[sqlalchemy.ColumnElement[bool]] = (),
    ) -> dict[tuple[Any, ...], Mapping[str, Any]]:
        """Raw rows of ``layout``'s table with the given keys, by key; batched."""
        table = self._tables[layout.name]
        unique = list(dict.fromkeys(keys))
        found: dict[tuple[Any, ...], Mapping[str, Any]] = {}
        size = max(1, self._db.IN_BATCH_SIZE // len(layout.key_names))
        for batch in chunked(unique, size):
            sql = sqlalchemy.select(table).where(self._key_filter(table, layout, batch), *filters)
            with self._db.query(sql) as result:
                for row in result.mappings():
                    found[layout.key_of(row)] = dict(row)
        return found

    def _key_filter(
        self, table: sqlalchemy.Table, layout: _Layout, keys: Sequence[tuple[Any, ...]]
    ) -> sqlalchemy.ColumnElement[bool]:
        """``WHERE`` matching exactly ``keys``: equalities for columns that do not vary."""
        clauses = []
        varying = []
        for position, name in enumerate(layout.key_names):
            values = {key[position] for key in keys}
            if len(values) == 1:
                clauses.append(table.columns[name] == keys[0][position])
            else:
                varying.append(position)
        if len(varying) == 1:
            position = varying[0]
            column = table.columns[layout.key_names[position]]
            clauses.append(
                self._db.in_clause(column, list(dict.fromkeys(k[position] for k in keys)))
            )
        elif varying:
            columns = sqlalchemy.tuple_(*(table.columns[layout.key_names[p]] for p in varying))
            clauses.append(columns.in_([tuple(key[p] for p in varying) for key in keys]))
        return sqlalchemy.and_(*clauses)


def _to_row(
    layout: _Layout, record: Mapping[str, Any] | DimensionRecord, index: int, count: int
) -> dict[str, Any]:
    """Check one record and convert it to a row of its table."""
    if isinstance(record, DimensionRecord):
        if record.element != layout.name:
            raise DataIdError(
                f"Cannot store the {record.element} record as a {layout.name} record."
            )
        record = record.values
    if not isinstance(record, Mapping):
        raise DataIdError(
            f"Each {layout.name} record is a mapping of field names to values, not "
            f"{preview(record)}."
        )
    what = f"{layout.name} record {preview(record)}"
    if count > 1:
        what = f"{what} (record {index + 1} of {count})"
    values = dict(record)
    if layout.alias is not None and layout.alias in values:
        given = values.pop(layout.alias)
        if layout.name in values and values[layout.name] != given:
            raise DataIdError(
                f"The {what} gives its key twice, as {layout.name!r} and {layout.alias!r}, "
                "with different values; give one."
            )
        values[layout.name] = given
    unknown = [name for name in values if name not in layout.fields]
    if unknown:
        raise DataIdError(
            f"The {what} has unknown field(s) {', '.join(map(repr, unknown))}; valid fields "
            f"are: {layout.field_list()}."
        )
    missing = [
        name
        for name, field in layout.fields.items()
        if values.get(name) is None and not field.nullable
    ]
    if missing:
        described = "; ".join(f"{name!r} ({layout.role(name)})" for name in missing)
        raise DataIdError(f"The {what} has no value for {described}.")
    row: dict[str, Any] = {}
    for name, field in layout.fields.items():
        value = to_db(field, values.get(name), f"The {what}: field {name!r}")
        if field.dtype == "timespan":
            row.update(zip(timespan_columns(name), timespan_to_db(value), strict=True))
        else:
            row[name] = value
    return row


def check_records(
    universe: DimensionUniverse,
    records: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    complete: bool = False,
) -> None:
    """Check records (by element) as `StaticDimensionRecordStorageManager.insert` would,
    without a database: their fields and values.

    With ``complete``, also that each record's required and implied dimensions have
    their records among ``records``, as when they go into a registry that holds none
    yet (the foreign keys of its tables).

    Raises
    ------
    DataIdError
        For a record's unknown or missing field, or a value of the wrong type.
    ConflictError
        With ``complete``, for a record naming one that ``records`` lacks.
    """
    layouts = {name: _Layout.build(universe, name) for name in records}
    rows = {
        name: [_to_row(layouts[name], record, i, len(given)) for i, record in enumerate(given)]
        for name, given in records.items()
    }
    if not complete:
        return
    keys = {name: {layouts[name].key_of(row) for row in found} for name, found in rows.items()}
    for name, found in rows.items():
        for other, key_names in layouts[name].references():
            present = keys.get(other, set())
            for row in found:
                key = tuple(row.get(column) for column in key_names)
                if None not in key and key not in present:
                    described = ", ".join(f"{n}={v!r}" for n, v in zip(key_names, key, strict=True))
                    raise ConflictError(
                        f"The {name} record {layouts[name].describe(layouts[name].key_of(row))} "
                        f"names the {other} record {described}, which is not among the records."
                    )
