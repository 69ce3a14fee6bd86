"""Repository attributes: a small key-value table, home of the schema versions."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import sqlalchemy

from .. import ddl
from .._deprecation import renamed
from .._exceptions import ConflictError
from .interfaces import Database, StaticTablesContext, VersionedExtension, VersionTuple

__all__ = ["ButlerAttributeExistsError", "DefaultButlerAttributeManager", "SchemaGeneration"]

#: The attribute that changes with every schema-level change (runs,
#: collections, chains, dataset types). Created on the first such change,
#: so repositories made before it existed open unchanged.
GENERATION_KEY = "registry:generation"


class ButlerAttributeExistsError(ConflictError):
    """An attribute is set already and ``force`` was not given."""


class DefaultButlerAttributeManager(VersionedExtension):
    """Keeps ``butler_attributes(name, value)``: manager classes, versions, the universe.

    Parameters
    ----------
    db : `Database`
        The database.
    table : `sqlalchemy.Table`
        The attributes table.
    registry_schema_version : `VersionTuple`, optional
        The stored schema version.
    """

    TABLE_NAME: ClassVar[str] = "butler_attributes"
    _VERSION: ClassVar[VersionTuple | None] = VersionTuple(1, 0, 0)

    def __init__(
        self,
        db: Database,
        table: sqlalchemy.Table,
        registry_schema_version: VersionTuple | None = None,
    ) -> None:
        super().__init__(registry_schema_version=registry_schema_version)
        self._db = db
        self._table = table

    @classmethod
    def table_spec(cls) -> ddl.TableSpec:
        """The table's specification."""
        return ddl.TableSpec(
            [
                ddl.FieldSpec("name", sqlalchemy.String, length=1024, primaryKey=True),
                ddl.FieldSpec("value", sqlalchemy.String, length=65535, nullable=False),
            ],
            doc="Repository-wide settings: manager classes, schema versions, dimensions.",
        )

    @classmethod
    def initialize(
        cls,
        db: Database,
        context: StaticTablesContext,
        registry_schema_version: VersionTuple | None = None,
    ) -> DefaultButlerAttributeManager:
        """Declare the table and return a manager."""
        table = context.addTable(cls.TABLE_NAME, cls.table_spec())
        return cls(db, table, registry_schema_version)

    def clone(self, db: Database) -> DefaultButlerAttributeManager:
        """A copy bound to ``db``."""
        return type(self)(db, self._table, self._registry_schema_version)

    @property
    def table(self) -> sqlalchemy.Table:
        """The ``butler_attributes`` table."""
        return self._table

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of ``name``, or ``default``."""
        sql = sqlalchemy.select(self._table.c.value).where(self._table.c.name == name)
        with self._db.query(sql) as result:
            value = result.scalar()
        return default if value is None else value

    def set(self, name: str, value: str, *, force: bool = False) -> None:
        """Set ``name`` to ``value``.

        Raises
        ------
        ValueError
            If ``name`` or ``value`` is empty.
        ButlerAttributeExistsError
            If ``name`` is set already and ``force`` is false.
        """
        if not name or not value:
            raise ValueError(f"Attribute name and value must be non-empty, got {name!r}={value!r}.")
        row = {"name": name, "value": value}
        if force:
            self._db.replace(self._table, row)
        elif self._db.ensure(self._table, row) == 0:
            raise ButlerAttributeExistsError(
                f"Attribute {name!r} is set already; pass force=True to overwrite it."
            )

    def set_many(self, items: Iterable[tuple[str, str]]) -> None:
        """Set several new attributes in one statement (all-or-nothing)."""
        self._db.insert(self._table, *({"name": n, "value": v} for n, v in items))

    # Deprecated aliases of renamed methods, kept for one release.
    tableSpec = renamed("table_spec")
    setMany = renamed("set_many")  # noqa: N815

    def delete(self, name: str) -> bool:
        """Delete ``name``; whether it existed."""
        return self._db.deleteWhere(self._table, self._table.c.name == name) > 0

    def items(self) -> dict[str, str]:
        """Every attribute."""
        with self._db.query(sqlalchemy.select(self._table.c.name, self._table.c.value)) as result:
            return {row.name: row.value for row in result}

    def empty(self) -> bool:
        """Whether no attribute is set."""
        with self._db.query(
            sqlalchemy.select(sqlalchemy.func.count()).select_from(self._table)
        ) as result:
            return bool(result.scalar_one() == 0)


class SchemaGeneration:
    """A token in ``butler_attributes`` that every schema-level change replaces.

    Caches of runs, collections and dataset types stay valid while the token
    is the one they were built under. `bump` writes a new token in the
    transaction of the change; `check` reads it (one primary-key lookup) and,
    when another client changed it, calls ``on_change`` to drop the caches.

    Parameters
    ----------
    db : `Database`
        The database.
    table : `sqlalchemy.Table`
        The ``butler_attributes`` table.
    on_change : `~collections.abc.Callable`, optional
        Called when the token differs from the last one seen.
    """

    def __init__(
        self,
        db: Database,
        table: sqlalchemy.Table,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self._db = db
        self._table = table
        self.on_change = on_change
        self._seen: str | None = None
        #: Per thread: whether a `once` block is open (`False`) and its token read (`True`).
        self._once = threading.local()
        # Driver-level SQL: this runs once per call and write transaction, so
        # it skips SQLAlchemy's statement handling. Where writers serialise
        # (SQLite: FOR_UPDATE is empty) no lock clause is needed.
        read = f"SELECT value FROM {db.quoted(table)} WHERE name = {db.PLACEHOLDER}"
        self._sql = read
        self._sql_share = read + (" FOR SHARE" if db.FOR_UPDATE else "")
        self._sql_update = read + db.FOR_UPDATE
        self._scalar_column: sqlalchemy.Label[Any] | None = None
        #: The transaction scope (`Database.transaction_scope`) in which the token was read
        #: so that it holds until the transaction ends: no later check there reads it again.
        self._held_in: int | None = None

    def check(self, *, lock: bool = False) -> bool:
        """Read the token; drop the caches if it changed. Whether it changed.

        Parameters
        ----------
        lock : `bool`, optional
            Inside a transaction on PostgreSQL, share-lock the row until the
            transaction ends, so that no schema change commits between this
            check and the writes that rely on the caches (SQLite write
            transactions are exclusive already). For write transactions.
        """
        if not lock and getattr(self._once, "read", False):
            return False  # read already in this `once` block
        scope = self._db.transaction_scope()
        if scope is not None and scope == self._held_in:
            return False  # read in this transaction already, and no change can commit
        changed = self._check(self._sql_share if lock else self._sql)
        # A share-locked token holds until the transaction ends; where writers serialise
        # (SQLite), any token read inside a transaction does.
        if scope is not None and (lock or not self._db.FOR_UPDATE):
            self._held_in = scope
        return changed

    @contextmanager
    def once(self) -> Iterator[None]:
        """Let one read of the token serve every `check` without ``lock`` in the block:
        for one call made of several registry calls (a butler query), each of which
        checks. Re-entrant; per thread. A `forget` in the block makes the next check
        read again."""
        if hasattr(self._once, "read"):
            yield
            return
        self._once.read = False
        try:
            yield
        finally:
            del self._once.read

    def _check(self, sql: str) -> bool:
        if not self._db.isInTransaction():
            sql = self._sql
        with self._db.query_raw(sql, (GENERATION_KEY,)) as rows:
            token = rows[0][0] if rows else None
        return self.observe(token)

    @property
    def seen(self) -> str | None:
        """The token this client's caches were last checked against."""
        return self._seen

    @property
    def guard(self) -> tuple[sqlalchemy.Table, dict[str, Any]]:
        """The row that holds the token this client saw, for `Database.insert_guarded`: an
        insert under it happens only while the caches are current."""
        return self._table, {"name": GENERATION_KEY, "value": self._seen}

    @property
    def scalar_sql(self) -> tuple[str, tuple[Any, ...]]:
        """A scalar subquery for the token, and its parameters, for another read to carry
        (saving a round trip); give what it returns to `observe`."""
        return f"({self._sql})", (GENERATION_KEY,)

    def scalar_subquery(self) -> sqlalchemy.Label[Any]:
        """`scalar_sql` as a column for a SQLAlchemy ``SELECT`` to carry (last, by position);
        give the value of its first row to `observe`. Built once (it is immutable)."""
        if self._scalar_column is None:
            table = self._table
            token = sqlalchemy.select(table.c.value).where(table.c.name == GENERATION_KEY)
            self._scalar_column = token.scalar_subquery().label("schema_generation")
        return self._scalar_column

    def forget(self) -> None:
        """Forget the token seen: the next `check` drops the caches (whatever it reads), and
        no insert is guarded by the old one meanwhile (`seen` is `None`)."""
        self._seen = None
        self._held_in = None
        if hasattr(self._once, "read"):
            self._once.read = False

    def observe(self, token: str | None) -> bool:
        """Take ``token`` as just read; drop the caches if it changed. Whether it changed."""
        if hasattr(self._once, "read"):
            self._once.read = True
        if token == self._seen:
            return False
        self._seen = token
        if self.on_change is not None:
            self.on_change()
        return True

    def bump(self) -> None:
        """Record a schema-level change (call inside the change's transaction)."""
        # Pick up others' changes first; the exclusive lock queues concurrent bumps.
        self._check(self._sql_update)
        token = uuid.uuid4().hex
        self._db.replace(self._table, {"name": GENERATION_KEY, "value": token})
        # If the transaction rolls back, the next check sees another token and refreshes.
        self._seen = token
