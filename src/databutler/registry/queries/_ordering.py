"""``order_by`` and ``limit`` of registry queries: checking them, and turning them into SQL.

``order_by`` names what to sort by, as daf_butler spells it: a dimension
(``detector``, its key value), a field of a dimension record
(``exposure.obs_id``, or ``obs_id`` when one dimension of the query has such
a field), or a name a query adds of its own (``run`` and ``ingest_date`` for
datasets); a leading ``-`` sorts that term descending.
Whatever the names leave tied is ordered by the rest of the row's key (the
data ID, then the dataset id), so that the order, and what ``limit`` keeps,
is the same on every backend.

Strings are ordered by code point on every backend (``COLLATE "C"`` on
PostgreSQL, as SQLite's default collation does) and NULLs come after every
value ascending, before them descending.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Any

import sqlalchemy

from ..._exceptions import ArgumentTypeError, InvalidArgumentError
from ._errors import KEYWORDS
from ._nodes import Identifier
from ._values import SpanColumns, column_kind
from .builder import DimensionColumns
from .sql import Bytewise, bytewise

__all__ = [
    "OrderTerm",
    "apply_order",
    "check_limit",
    "dimension_term",
    "order_clauses",
    "parse_order_by",
]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?")


@dataclass(frozen=True, slots=True)
class OrderTerm:
    """One term of ``order_by``: a name, ascending or descending."""

    name: str
    """The name without its ``-``: ``detector`` or ``exposure.obs_id``."""
    descending: bool = False

    @property
    def identifier(self) -> Identifier:
        """The name as an expression identifier (dimension, or dimension and field)."""
        element, _, field = self.name.partition(".")
        return Identifier(element, field or None)

    def __str__(self) -> str:
        return ("-" if self.descending else "") + self.name


def parse_order_by(value: object, name: str = "order_by") -> tuple[OrderTerm, ...]:
    """Check ``order_by`` (`None`, one name, or an iterable of names) and split it into terms.

    Only the spelling is checked here; whether a name exists is for the query
    that resolves it (`order_clauses`).

    Raises
    ------
    ArgumentTypeError
        If ``value`` is not `None`, a `str` or an ordered iterable of `str`
        (a set or a mapping is refused).
    InvalidArgumentError
        If a name is empty or not ``name`` / ``element.field`` (with an
        optional leading ``-``), or names a reserved word.
    """
    if value is None:
        return ()
    if isinstance(value, str):
        items: list[Any] = [value]
    elif isinstance(value, (bytes, bytearray, Mapping, Set)) or not isinstance(value, Iterable):
        # A set has no order to sort by; a mapping's values would be ignored.
        raise ArgumentTypeError(
            f"{name} must be a name or a list of names such as ['detector', '-exposure'], "
            f"got {type(value).__name__} {value!r}."
        )
    else:
        items = list(value)
    terms: list[OrderTerm] = []
    for item in items:
        if not isinstance(item, str):
            raise ArgumentTypeError(
                f"{name} must hold names (str) such as 'detector' or '-exposure.obs_id', "
                f"got {type(item).__name__} {item!r}."
            )
        text = item.strip()
        descending = text.startswith("-")
        bare = text[1:].strip() if descending else text
        if not _NAME.fullmatch(bare) or any(p.upper() in KEYWORDS for p in bare.split(".")):
            raise InvalidArgumentError(
                f"{name} term {item!r} is not a name: write a dimension ('detector'), a record "
                "field ('exposure.obs_id'), with '-' in front to sort descending ('-exposure')."
            )
        terms.append(OrderTerm(bare, descending))
    return tuple(terms)


def check_limit(value: object, name: str = "limit") -> int | None:
    """``limit``: `None` (every result) or an `int` of at least 0.

    Raises
    ------
    ArgumentTypeError
        If ``value`` is not an `int` (a `bool` is not one) or `None`.
    InvalidArgumentError
        If ``value`` is negative, or more than `MAX_LIMIT`.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(
            f"{name} must be a whole number of results (int, 0 or more) or None for all of "
            f"them, got {type(value).__name__} {value!r}."
        )
    if value < 0:
        raise InvalidArgumentError(
            f"{name} must be 0 or more (how many results to return at most), got {value}; "
            "pass None for every result."
        )
    if value > MAX_LIMIT:
        raise InvalidArgumentError(
            f"{name} must be at most {MAX_LIMIT} (what a database can count to), got {value}; "
            "pass None for every result."
        )
    return value


#: The largest ``limit``: a signed 64-bit integer, the type of SQL's LIMIT.
MAX_LIMIT = 2**63 - 1


def dimension_term(columns: DimensionColumns, term: OrderTerm) -> sqlalchemy.ColumnElement[Any]:
    """The column of a term naming a dimension or a record field, through ``columns``.

    A bare name that is not a dimension is a field of the one dimension of the
    query whose records have it (``obs_id`` for ``exposure.obs_id``), as in
    daf_butler.

    Raises
    ------
    LookupError
        If the query has no such dimension or field.
    InvalidArgumentError
        If a bare field name belongs to several of the query's dimensions.
    """
    if term.identifier.field is None:
        holders = columns.fields_named(term.name)
        if len(holders) > 1:
            raise InvalidArgumentError(
                f"Cannot order by {str(term)!r}: {', '.join(holders)} all have a field "
                f"{term.name!r}; name one, as in '{holders[0]}.{term.name}'."
            )
        if holders:
            return columns.field(holders[0], term.name)
    resolved = columns.resolve(term.identifier)
    if isinstance(resolved, SpanColumns):
        if resolved.begin is None:
            raise LookupError(f"{term.name} cannot be ordered by")
        return resolved.begin  # a timespan orders by its begin, as in daf_butler
    return resolved


def order_clauses(
    terms: Sequence[OrderTerm],
    resolve: Callable[[OrderTerm], sqlalchemy.ColumnElement[Any]],
    valid_names: Callable[[], Iterable[str]],
    tie_breakers: Sequence[sqlalchemy.ColumnElement[Any]],
) -> list[tuple[sqlalchemy.ColumnElement[Any], bool]]:
    """What to order by for ``terms``, then ``tie_breakers`` ascending.

    Parameters
    ----------
    terms : `~collections.abc.Sequence` [`OrderTerm`]
        What the caller asked for, as `parse_order_by` returns it.
    resolve : `~collections.abc.Callable`
        The column a term names; raises `LookupError` for a name the query
        does not know.
    valid_names : `~collections.abc.Callable`
        The names the query knows, for the message of an unknown one.
    tie_breakers : `~collections.abc.Sequence` [`sqlalchemy.ColumnElement`]
        Columns that, after the terms, order every row of the query in one
        way (the data ID, a dataset id); a tie-breaker that is also a term
        is left out.

    Returns
    -------
    order : `list` [`tuple` [`sqlalchemy.ColumnElement`, `bool`]]
        Each expression to order by (strings by code point), and whether
        descending; for `apply_order`.

    Raises
    ------
    InvalidArgumentError
        If a term names nothing the query knows, or a column that cannot be
        ordered; the message lists the valid names.
    """
    clauses: list[tuple[sqlalchemy.ColumnElement[Any], bool]] = []
    used: list[sqlalchemy.ColumnElement[Any]] = []
    for term in terms:
        try:
            column = resolve(term)
        except LookupError:
            names = ", ".join(valid_names())
            raise InvalidArgumentError(
                f"Cannot order by {str(term)!r}: this query has no such dimension or field; "
                f"valid names are {names} (with '-' in front to sort descending)."
            ) from None
        kind = column_kind(column)
        if kind is None or kind == "uuid":
            raise InvalidArgumentError(f"Cannot order by {str(term)!r}: its values have no order.")
        if any(column is seen for seen in used):
            continue  # ordered already by an earlier term
        used.append(column)
        clauses.append((bytewise(column) if kind == "str" else column, term.descending))
    for column in tie_breakers:
        if not any(column is seen for seen in used):
            used.append(column)
            kind = column_kind(column)
            clauses.append((bytewise(column) if kind == "str" else column, False))
    return clauses


def apply_order(
    select: sqlalchemy.Select[Any],
    order: Sequence[tuple[sqlalchemy.ColumnElement[Any], bool]],
    limit: int | None,
) -> sqlalchemy.Select[Any]:
    """``select`` ordered by ``order`` (from `order_clauses`) and cut at ``limit``.

    The expressions are also selected, as extra columns after the query's own
    (``order_0``, ``order_1``, ...), and ordered by those names: PostgreSQL
    orders a ``SELECT DISTINCT`` only by what it selects.  They depend only on
    the row's key, so they change neither what ``DISTINCT`` keeps nor what the
    caller reads from the leading columns.
    """
    labels = [expr.label(f"order_{i}") for i, (expr, _) in enumerate(order)]
    select = select.add_columns(*labels)
    for label, (expr, descending) in zip(labels, order, strict=True):
        clause = label.desc() if descending else label.asc()
        if _nullable(expr):
            # NULL sorts as the largest value on both backends (PostgreSQL's default;
            # SQLite's is the opposite, so both are spelled out). Not said for a column
            # that cannot hold NULL, so that SQLite still reads it in the order of an index.
            clause = clause.nulls_first() if descending else clause.nulls_last()
        select = select.order_by(clause)
    if limit is not None:
        select = select.limit(limit)
    return select


def _nullable(expr: sqlalchemy.ColumnElement[Any]) -> bool:
    """Whether ``expr`` may be NULL: unless it is (a string view of) a NOT NULL column."""
    if isinstance(expr, Bytewise):
        expr = expr.clause
    # A column of an alias or a subquery is a Column too, NOT NULL as its source.
    return not isinstance(expr, sqlalchemy.Column) or bool(expr.nullable)
