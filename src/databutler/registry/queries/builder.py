"""Resolving ``where`` identifiers to columns, joining dimension record tables as needed.

A query starts from columns that hold the key values of some dimensions (a
tags table's data ID columns, or dimension tables themselves).
`DimensionColumns` resolves an identifier to a column from there:

- ``detector``: the key value of a dimension, from the base columns, or for
  an implied dimension (``physical_filter`` of an exposure, or its ``band``)
  from the table of a dimension that implies it, directly or not;
- ``exposure.exposure_time``: a field of a dimension record, by joining that
  dimension's table on its key columns.

Every join it needs is recorded and added by `apply`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy

from ...dimensions import DimensionUniverse
from ._nodes import Identifier
from ._values import SpanColumns

__all__ = ["DimensionColumns"]


class DimensionColumns:
    """Columns for dimension keys and record fields, with the joins they need.

    Parameters
    ----------
    universe : `DimensionUniverse`
        The dimensions.
    table_of : `~collections.abc.Callable` [[`str`], `sqlalchemy.Table`]
        The record table of a dimension.
    base : `~collections.abc.Mapping` [`str`, `sqlalchemy.ColumnElement`]
        Columns already in the query that hold the key value of a dimension.
    prefix : `str`, optional
        Start of the names of the record tables joined (``record_exposure``); a
        subquery uses another, so that its names do not hide its query's.
    """

    def __init__(
        self,
        universe: DimensionUniverse,
        table_of: Callable[[str], sqlalchemy.Table],
        base: Mapping[str, sqlalchemy.ColumnElement[Any]],
        *,
        prefix: str = "record_",
    ) -> None:
        self._universe = universe
        self._table_of = table_of
        self._base = dict(base)
        self._prefix = prefix
        self._joins: dict[str, tuple[Any, sqlalchemy.ColumnElement[bool]]] = {}

    def key(self, name: str) -> sqlalchemy.ColumnElement[Any]:
        """The column holding the key value of dimension ``name``.

        Raises
        ------
        LookupError
            If the query's dimensions neither hold nor imply ``name``.
        """
        column = self._base.get(name)
        if column is not None:
            return column
        reachable = self._reachable()
        for holder in reachable:
            if name in self._universe[holder].implied:
                return self.field(holder, name)
        raise LookupError(
            f"{name!r} is not a dimension of this query; use one of {', '.join(reachable)}"
        )

    def reachable(self) -> list[str]:
        """The base dimensions, then those they imply, directly or through others."""
        return self._reachable()

    def _reachable(self) -> list[str]:
        """The base dimensions and those they imply, directly or through others."""
        found = list(self._base)
        for name in found:  # grows as it goes: breadth first
            found.extend(d for d in self._universe[name].implied if d not in found)
        return found

    def field(self, element: str, field: str) -> sqlalchemy.ColumnElement[Any]:
        """The column of ``field`` in the record of dimension ``element``, joining its table."""
        if element not in self._universe:
            raise LookupError(f"{element!r} is not a dimension")
        joined = self._joins.get(element)
        if joined is None:
            table = self._table_of(element).alias(f"{self._prefix}{element}")
            keys = (*self._universe[element].required, element)
            onclause = sqlalchemy.and_(*(table.c[k] == self.key(k) for k in keys))
            joined = self._joins[element] = (table, onclause)
        table = joined[0]
        if field not in table.c:
            fields = ", ".join(name for name in table.c.keys() if name != element)  # noqa: SIM118
            raise LookupError(f"{element} has no field {field!r}; its fields are {fields}")
        return table.c[field]

    def resolve(self, identifier: Identifier) -> sqlalchemy.ColumnElement[Any] | SpanColumns:
        """The column an expression identifier names (a `where` resolver); for a timespan
        field (``exposure.timespan``, stored as ``timespan_begin``/``timespan_end``), its
        two columns."""
        name, field = identifier.name, identifier.field
        if field is None:
            return self.key(name)
        if name in self._universe and field == self._universe[name].key.name:
            return self.key(name)  # exposure.id is the exposure key itself
        if name in self._universe:
            columns = self._table_of(name).c
            if field not in columns and f"{field}_begin" in columns and f"{field}_end" in columns:
                return SpanColumns(
                    self.field(name, f"{field}_begin"), self.field(name, f"{field}_end")
                )
        return self.field(name, field)

    def fields_named(self, name: str) -> list[str]:
        """The reachable dimensions whose records have a field ``name`` (not a key)."""
        if name in self._universe:
            return []
        found = []
        for element in self._reachable():
            dimension = self._universe[element]
            keys = {*dimension.required, element, *dimension.implied}
            if name in self._table_of(element).c and name not in keys:
                found.append(element)
        return found

    def names(self) -> list[str]:
        """The names `resolve` knows: each reachable dimension, then ``dimension.field``."""
        reachable = self._reachable()
        names = list(reachable)
        for element in reachable:
            keys = {*self._universe[element].required, element, *self._universe[element].implied}
            table = self._table_of(element)
            names.extend(f"{element}.{c}" for c in table.c.keys() if c not in keys)  # noqa: SIM118
        return names

    def apply(self, select: sqlalchemy.Select[Any]) -> sqlalchemy.Select[Any]:
        """``select`` with every join the resolved identifiers need."""
        for table, onclause in self._joins.values():
            select = select.join(table, onclause)
        return select
