"""Repository attributes: a small key-value table, home of the schema versions."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import sqlalchemy

from .. import ddl
from .._exceptions import ConflictError
from .interfaces import Database, StaticTablesContext, VersionedExtension, VersionTuple

__all__ = ["ButlerAttributeExistsError", "DefaultButlerAttributeManager"]


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
    _VERSION = VersionTuple(1, 0, 0)

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
    def currentVersions(cls) -> list[VersionTuple]:
        # docstring inherited
        return [cls._VERSION]

    @classmethod
    def tableSpec(cls) -> ddl.TableSpec:
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
        table = context.addTable(cls.TABLE_NAME, cls.tableSpec())
        return cls(db, table, registry_schema_version)

    def clone(self, db: Database) -> DefaultButlerAttributeManager:
        """A copy bound to ``db``."""
        return type(self)(db, self._table, self._registry_schema_version)

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

    def setMany(self, items: Iterable[tuple[str, str]]) -> None:
        """Set several new attributes in one statement (all-or-nothing)."""
        self._db.insert(self._table, *({"name": n, "value": v} for n, v in items))

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
