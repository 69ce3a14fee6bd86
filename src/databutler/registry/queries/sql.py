"""Translation of parsed ``where`` expressions to SQLAlchemy, through a type check.

`to_sql` first checks the ``bind`` values (`check_bind`), then type-checks the
tree against the columns the identifiers resolve to (``_check``), and only
then generates SQL from the typed tree, so that nothing ill-typed or out of
range reaches a database and SQLite and PostgreSQL answer alike.  Every
literal and every bind value reaches the database as a bound parameter; the
only names spliced into SQL are the columns that the caller's ``resolve``
function returns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from ._check import (
    BoolColumn,
    Column,
    Compare,
    Cond,
    Const,
    GlobMatch,
    Junction,
    Negation,
    NullTest,
    Operand,
    Overlap,
    Remainder,
    Value,
    check,
)
from ._values import BindValues, SpanColumns, _BindError, _check_bind
from .expression import BindParameter, ExpressionError, Identifier, Node, parse_expression

__all__ = ["Resolver", "bind_names", "check_bind", "identifiers", "parse_where", "to_sql"]

Resolver = Callable[[Identifier], "sqlalchemy.ColumnElement[Any] | SpanColumns"]
"""Maps an identifier of an expression to the column (or SQL expression) it names."""


def identifiers(node: Node) -> set[Identifier]:
    """Return the identifiers (dimensions and record fields) an expression uses.

    Parameters
    ----------
    node : `Node`
        A parsed expression.

    Returns
    -------
    identifiers : `set` [`Identifier`]
        Each distinct identifier once (identifiers compare without positions).
    """
    return {n for n in node.walk() if isinstance(n, Identifier)}


def bind_names(node: Node) -> set[str]:
    """Return the names of the bind parameters an expression uses.

    Parameters
    ----------
    node : `Node`
        A parsed expression.

    Returns
    -------
    names : `set` [`str`]
        The names, without the leading ``:``.
    """
    return {n.name for n in node.walk() if isinstance(n, BindParameter)}


def to_sql(
    node: Node,
    resolve: Resolver,
    binds: Mapping[str, Any] | None = None,
    *,
    text: str | None = None,
) -> sqlalchemy.ColumnElement[bool]:
    """Type-check a parsed expression and translate it to an SQLAlchemy condition.

    Parameters
    ----------
    node : `Node`
        A condition, as returned by `parse_expression`.  ``Literal(True)``
        (the empty expression) translates to ``sqlalchemy.true()``.
    resolve : `~collections.abc.Callable`
        Called with each `Identifier`; returns the column it names, whose
        SQLAlchemy type gives the kind of its values (integer, float,
        string, boolean, datetime or UUID).  It may raise `ExpressionError`,
        which propagates, or `LookupError`, which is re-raised as an
        `ExpressionError` pointing at the identifier.
    binds : `~collections.abc.Mapping` [`str`, `~typing.Any`], optional
        Values of the bind parameters, by name without the ``:``; checked
        whole by `check_bind`.  The value for ``x IN :name`` must be a list,
        tuple or set, which may also be an item of an ``IN`` list
        (``x IN (:name)``, daf_butler's spelling); such a value anywhere else
        is refused.  The value of a bind used on its own as a condition must
        be `True` or `False`.
    text : `str`, optional
        The text ``node`` was parsed from; when given, errors quote it with a
        caret under the offending column.

    Returns
    -------
    clause : `sqlalchemy.ColumnElement` [`bool`]
        The condition.  Every value is a bound parameter typed like the
        column it is compared with, so none appears in the SQL text.

    Raises
    ------
    ExpressionError
        If an identifier is unknown or of a type that cannot be compared;
        operands of a comparison or ``IN`` have incompatible kinds (an
        integer with a string, a boolean with a number); a non-boolean
        column or value is used as a condition; a literal or bind value is
        out of range (integers beyond 64 bits, non-finite floats, strings
        with NUL or lone surrogates or longer than `MAX_STRING_LENGTH`); a
        bind parameter has no value or a value of the wrong kind; or the
        expression holds more than `MAX_TERMS` comparisons and listed
        values.  Nothing reaches the database before all of this is checked.
    """
    try:
        values = _check_bind(binds)
    except _BindError as exc:
        uses = [
            n.position for n in node.walk() if isinstance(n, BindParameter) and n.name == exc.name
        ]
        raise ExpressionError(
            exc.reason, text if uses else None, min(uses) if uses else None
        ) from None
    return _generate(check(node, resolve, values, text))


def check_bind(bind: object) -> BindValues:
    """Check a ``bind`` mapping whole, before any query is built.

    Parameters
    ----------
    bind : `~collections.abc.Mapping` [`str`, `object`] or `None`
        Bind values by name (without the ``:``).  A value is an `int` (a
        `bool` is not one) within 64 bits, a finite `float`, a `str` (no NUL,
        no lone surrogate, at most `MAX_STRING_LENGTH` characters), a
        `bool`, an aware `datetime.datetime`, a `uuid.UUID`, or a list,
        tuple, set or frozenset of those (for ``x IN :name`` and
        ``x IN (:name)``).

    Returns
    -------
    values : `dict`
        ``(kind, value)`` per scalar, a list of them per collection; values
        as the database receives them (datetimes naive UTC).

    Raises
    ------
    ExpressionError
        If ``bind`` is not a mapping, a name is not a `str`, or a value is of
        an unsupported type or out of range.
    """
    try:
        return _check_bind(bind)
    except _BindError as exc:
        raise ExpressionError(exc.reason) from None


def parse_where(where: object) -> Node | None:
    """Parse the ``where`` argument of a query: a `str`, or `None` for no constraint.

    Returns
    -------
    node : `Node` or `None`
        `None` when there is no constraint (`None`, or a blank string).

    Raises
    ------
    ExpressionError
        If ``where`` is neither a `str` nor `None`, or does not parse.
    """
    if where is None:
        return None
    if not isinstance(where, str):
        raise ExpressionError(
            f'where must be a str (an expression such as "detector = 1") or None, '
            f"not {type(where).__name__}"
        )
    if not where.strip():
        return None
    return parse_expression(where)


# ---------------------------------------------------------------------------
# SQL generation from the typed tree

_CHAIN = 64
"""Longest AND/OR chain always rendered flat."""

_FLAT_DEPTH = 400
"""Longer chains are rendered flat too while the tree stays this shallow: SQLite parses a
flat chain into a tree as deep as the chain is long (and refuses depth 1000), but each
group of a longer chain costs a level of parentheses, of which it allows fewer."""


class _Parenthesized(ColumnElement[bool]):
    """A condition rendered inside parentheses, which SQLAlchemy keeps (it flattens
    nested ``or_``/``and_``, which would rebuild the long chain)."""

    inherit_cache = True
    _traverse_internals = [("clause", InternalTraversal.dp_clauseelement)]  # noqa: RUF012
    type = sqlalchemy.Boolean()

    def __init__(self, clause: ColumnElement[bool]) -> None:
        self.clause = clause

    def self_group(self, against: Any = None) -> ColumnElement[Any]:
        return self


@compiles(_Parenthesized)
def _compile_parenthesized(element: _Parenthesized, compiler: Any, **kw: Any) -> str:
    return "(" + str(compiler.process(element.clause, **kw)) + ")"


@compiles(_Parenthesized, "sqlite")
def _compile_parenthesized_sqlite(element: _Parenthesized, compiler: Any, **kw: Any) -> str:
    # A unary plus (the value unchanged, NULL included) keeps the group whole: SQLite splits
    # a WHERE into its AND terms through parentheses, and where it pushes them down into a
    # subquery it ANDs them again one after another, a tree as deep as there are terms.
    return "+(" + str(compiler.process(element.clause, **kw)) + ")"


class Bytewise(ColumnElement[str]):
    """A string operand ordered by code point: ``COLLATE "C"`` on PostgreSQL (whose
    default collation follows the locale), as SQLite's BINARY collation orders."""

    inherit_cache = True
    _traverse_internals = [("clause", InternalTraversal.dp_clauseelement)]  # noqa: RUF012
    type = sqlalchemy.String()

    def __init__(self, clause: ColumnElement[Any]) -> None:
        self.clause = clause

    def self_group(self, against: Any = None) -> ColumnElement[Any]:
        return self


def bytewise(clause: ColumnElement[Any]) -> ColumnElement[str]:
    """``clause`` (a string) compared and ordered by code point on every backend."""
    return Bytewise(clause)


@compiles(Bytewise)
def _compile_bytewise(element: Bytewise, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clause.self_group(), **kw))


@compiles(Bytewise, "postgresql")
def _compile_bytewise_postgresql(element: Bytewise, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clause.self_group(), **kw)) + ' COLLATE "C"'


def _bound(bound: ColumnElement[Any] | int) -> ColumnElement[Any]:
    """A timespan bound (nanoseconds) as SQL."""
    if isinstance(bound, int):
        return sqlalchemy.literal(bound, sqlalchemy.BigInteger())
    return bound


class _GlobMatch(ColumnElement[bool]):
    r"""``GLOB(column, pattern)``, case-sensitive on every backend: SQLite's GLOB (``[``
    escaped as ``[[]``), PostgreSQL's LIKE (``%``, ``_`` and ``\`` escaped)."""

    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012
        ("clause", InternalTraversal.dp_clauseelement),
        ("pattern", InternalTraversal.dp_string),
    ]
    type = sqlalchemy.Boolean()

    def __init__(self, clause: ColumnElement[Any], pattern: str) -> None:
        self.clause = clause
        self.pattern = pattern


@compiles(_GlobMatch)
def _compile_glob(element: _GlobMatch, compiler: Any, **kw: Any) -> str:
    pattern = element.pattern.replace("[", "[[]")
    match = element.clause.op("GLOB")(sqlalchemy.literal(pattern, sqlalchemy.String()))
    return str(compiler.process(match, **kw))


@compiles(_GlobMatch, "postgresql")
def _compile_glob_postgresql(element: _GlobMatch, compiler: Any, **kw: Any) -> str:
    escaped = element.pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = escaped.replace("*", "%").replace("?", "_")
    match = element.clause.like(sqlalchemy.literal(pattern, sqlalchemy.String()), escape="\\")
    return str(compiler.process(match, **kw))


@dataclass(frozen=True, slots=True)
class _Sql:
    """Generated SQL with how deep it nests: ``depth`` estimates the depth of the
    expression tree a database parses it into, ``parens`` how deeply its
    parentheses nest (SQLite's parser stack holds about 35 levels)."""

    clause: sqlalchemy.ColumnElement[Any]
    depth: int = 1
    parens: int = 0


MAX_SQL_DEPTH = 800
"""The deepest expression tree sent to a database (SQLite refuses depth 1000)."""

MAX_SQL_PARENTHESES = 30
"""The deepest nesting of parentheses sent to a database."""


def _generate(cond: Cond) -> sqlalchemy.ColumnElement[bool]:
    sql = _emit(cond)
    if sql.depth > MAX_SQL_DEPTH or sql.parens > MAX_SQL_PARENTHESES:
        raise ExpressionError(
            f"expression too complex: its SQL would nest {sql.parens} levels of parentheses "
            f"(the limit is {MAX_SQL_PARENTHESES}) and about {sql.depth} levels of operators "
            f"(the limit is {MAX_SQL_DEPTH}); nest fewer long AND/OR chains inside each other, "
            "or split the query into several"
        )
    return sql.clause


def _emit(cond: Cond) -> _Sql:
    match cond:
        case Const(value=value):
            return _Sql(sqlalchemy.true() if value else sqlalchemy.false())
        case BoolColumn(column=column):
            return _Sql(column.sql)
        case Negation(term=term):
            inner = _emit(term)
            grouped = isinstance(term, Junction)
            return _Sql(sqlalchemy.not_(inner.clause), inner.depth + 1, inner.parens + grouped)
        case NullTest(operand=operand, negated=negated):
            sql = _operand(operand, None)
            clause = sql.clause.is_not(None) if negated else sql.clause.is_(None)
            return _Sql(clause, sql.depth + 1, sql.parens)
        case Compare(op=op, left=left, right=right):
            return _compare(op, left, right)
        case Remainder(column=column, divisor=divisor, remainder=remainder):
            integer = column.sql.type
            modulo: ColumnElement[Any] = column.sql % sqlalchemy.literal(divisor, integer)
            return _Sql(modulo == sqlalchemy.literal(remainder, integer), 3, 1)
        case Junction(op=op, terms=terms):
            return _junction(op, terms)
        case Overlap(left=left, right=right):
            begin, end = _bound(right.begin), _bound(right.end)
            if left.overlaps is not None:
                return _Sql(left.overlaps(begin, end), 4, 2)
            a, b = _bound(left.begin), _bound(left.end)
            return _Sql(sqlalchemy.and_(a < end, begin < b), 3, 1)
        case GlobMatch(column=column, pattern=pattern):
            return _Sql(_GlobMatch(column.sql, pattern), 2)
    raise AssertionError(f"unexpected condition {cond!r}")


def _operand(operand: Operand, other: Operand | None) -> _Sql:
    if isinstance(operand, Column):
        if operand.kind == "int" and other is not None and other.kind == "float":
            # Both backends then compare two doubles (SQLite would compare exactly).
            return _Sql(sqlalchemy.cast(operand.sql, sqlalchemy.Float))
        return _Sql(operand.sql)
    if isinstance(operand, Value):
        same = isinstance(other, Column) and other.kind == operand.kind
        type_ = other.sql.type if same else _TYPES[operand.kind]  # type: ignore[union-attr]
        return _Sql(sqlalchemy.literal(operand.value, type_))
    inner = _emit(operand)
    return _Sql(inner.clause.self_group(), inner.depth, inner.parens + 1)


_TYPES: dict[str, Any] = {
    "int": sqlalchemy.BigInteger(),
    "float": sqlalchemy.Float(),
    "str": sqlalchemy.String(),
    "bool": sqlalchemy.Boolean(),
    "datetime": sqlalchemy.DateTime(),
    "uuid": sqlalchemy.Uuid(),
}


def _compare(op: str, left: Operand, right: Operand) -> _Sql:
    lhs, rhs = _operand(left, right), _operand(right, left)
    a, b = lhs.clause, rhs.clause
    if op in ("<", "<=", ">", ">=") and left.kind == "str":
        a, b = Bytewise(a), Bytewise(b)
    match op:
        case "=":
            clause = a == b
        case "!=":
            clause = a != b
        case "<":
            clause = a < b
        case "<=":
            clause = a <= b
        case ">":
            clause = a > b
        case _:
            clause = a >= b
    return _Sql(clause, max(lhs.depth, rhs.depth) + 1, max(lhs.parens, rhs.parens))


def _junction(op: str, terms: list[Cond]) -> _Sql:
    # x = 1 OR x = 2 is x IN (1, 2); x != 1 AND x != 2 is x NOT IN (1, 2), NULLs alike.
    equality = "=" if op == "or" else "!="
    groups: dict[int, tuple[Column, list[Any]]] = {}
    parts: list[_Sql] = []
    for term in terms:
        if (
            isinstance(term, Compare)
            and term.op == equality
            and isinstance(term.left, Column)
            and isinstance(term.right, Value)
        ):
            groups.setdefault(id(term.left.sql), (term.left, []))[1].append(term.right.value)
        else:
            sql = _emit(term)
            # A chain inside a chain (of the other operator) is parenthesized.
            parts.append(replace(sql, parens=sql.parens + 1) if isinstance(term, Junction) else sql)
    for column, values in groups.values():
        if len(values) == 1:
            parts.append(_compare(equality, column, Value(column.kind, values[0], column.node)))
        else:
            clause = column.sql.in_(values) if op == "or" else column.sql.not_in(values)
            parts.append(_Sql(clause, 2, 1))
    return _chain(op, parts)


def _chain(op: str, parts: list[_Sql]) -> _Sql:
    """``AND``/``OR`` of ``parts``: flat when shallow enough, else in parenthesized groups."""
    if len(parts) == 1:
        return parts[0]
    combine = sqlalchemy.or_ if op == "or" else sqlalchemy.and_
    depth = len(parts) + max(part.depth for part in parts)
    parens = max(part.parens for part in parts)
    if len(parts) <= _CHAIN or depth <= _FLAT_DEPTH:
        return _Sql(combine(*(part.clause for part in parts)), depth, parens)
    size = math.isqrt(len(parts) - 1) + 1
    groups = [_chain(op, parts[i : i + size]) for i in range(0, len(parts), size)]
    return _Sql(
        combine(*(_Parenthesized(group.clause) for group in groups)),
        len(groups) + max(group.depth for group in groups),
        max(group.parens for group in groups) + 1,
    )
