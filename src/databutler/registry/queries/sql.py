"""Translation of parsed ``where`` expressions to SQLAlchemy.

Every literal and every bind value in the expression reaches the database as a
bound parameter; the only names spliced into SQL are the columns that the
caller's ``resolve`` function returns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
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
    Junction,
    Negation,
    NullTest,
    Operand,
    Value,
    check,
)
from ._values import BindValues, _BindError, _check_bind
from .expression import BindParameter, ExpressionError, Identifier, Node, parse_expression

__all__ = ["Resolver", "bind_names", "check_bind", "identifiers", "parse_where", "to_sql"]

Resolver = Callable[[Identifier], sqlalchemy.ColumnElement[Any]]
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
    return _emit(check(node, resolve, values, text))


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
"""Longest AND/OR chain rendered flat; longer ones are grouped, since SQLite parses a
flat chain into a tree as deep as the chain is long (and refuses depth 1000)."""


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


class _Bytewise(ColumnElement[str]):
    """A string operand ordered by code point: ``COLLATE "C"`` on PostgreSQL (whose
    default collation follows the locale), as SQLite's BINARY collation orders."""

    inherit_cache = True
    _traverse_internals = [("clause", InternalTraversal.dp_clauseelement)]  # noqa: RUF012
    type = sqlalchemy.String()

    def __init__(self, clause: ColumnElement[Any]) -> None:
        self.clause = clause

    def self_group(self, against: Any = None) -> ColumnElement[Any]:
        return self


@compiles(_Bytewise)
def _compile_bytewise(element: _Bytewise, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clause.self_group(), **kw))


@compiles(_Bytewise, "postgresql")
def _compile_bytewise_postgresql(element: _Bytewise, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.clause.self_group(), **kw)) + ' COLLATE "C"'


def _emit(cond: Cond) -> sqlalchemy.ColumnElement[bool]:
    match cond:
        case Const(value=value):
            return sqlalchemy.true() if value else sqlalchemy.false()
        case BoolColumn(column=column):
            return column.sql
        case Negation(term=term):
            return sqlalchemy.not_(_emit(term))
        case NullTest(operand=operand, negated=negated):
            sql = _operand(operand, None)
            return sql.is_not(None) if negated else sql.is_(None)
        case Compare(op=op, left=left, right=right):
            return _compare(op, left, right)
        case Junction(op=op, terms=terms):
            return _junction(op, terms)
    raise AssertionError(f"unexpected condition {cond!r}")


def _operand(operand: Operand, other: Operand | None) -> sqlalchemy.ColumnElement[Any]:
    if isinstance(operand, Column):
        if operand.kind == "int" and other is not None and other.kind == "float":
            # Both backends then compare two doubles (SQLite would compare exactly).
            return sqlalchemy.cast(operand.sql, sqlalchemy.Float)
        return operand.sql
    if isinstance(operand, Value):
        type_ = other.sql.type if isinstance(other, Column) else _TYPES[operand.kind]
        return sqlalchemy.literal(operand.value, type_)
    return _emit(operand).self_group()


_TYPES: dict[str, Any] = {
    "int": sqlalchemy.BigInteger(),
    "float": sqlalchemy.Float(),
    "str": sqlalchemy.String(),
    "bool": sqlalchemy.Boolean(),
    "datetime": sqlalchemy.DateTime(),
    "uuid": sqlalchemy.Uuid(),
}


def _compare(op: str, left: Operand, right: Operand) -> sqlalchemy.ColumnElement[bool]:
    lhs, rhs = _operand(left, right), _operand(right, left)
    if op in ("<", "<=", ">", ">=") and left.kind == "str":
        lhs, rhs = _Bytewise(lhs), _Bytewise(rhs)
    match op:
        case "=":
            return lhs == rhs
        case "!=":
            return lhs != rhs
        case "<":
            return lhs < rhs
        case "<=":
            return lhs <= rhs
        case ">":
            return lhs > rhs
        case _:
            return lhs >= rhs


def _junction(op: str, terms: list[Cond]) -> sqlalchemy.ColumnElement[bool]:
    # x = 1 OR x = 2 is x IN (1, 2); x != 1 AND x != 2 is x NOT IN (1, 2), NULLs alike.
    equality = "=" if op == "or" else "!="
    groups: dict[int, tuple[Column, list[Any]]] = {}
    clauses: list[sqlalchemy.ColumnElement[bool]] = []
    for term in terms:
        if (
            isinstance(term, Compare)
            and term.op == equality
            and isinstance(term.left, Column)
            and isinstance(term.right, Value)
        ):
            groups.setdefault(id(term.left.sql), (term.left, []))[1].append(term.right.value)
        else:
            clauses.append(_emit(term))
    for column, values in groups.values():
        if len(values) == 1:
            clauses.append(_compare(equality, column, Value(column.kind, values[0], column.node)))
        elif op == "or":
            clauses.append(column.sql.in_(values))
        else:
            clauses.append(column.sql.not_in(values))
    return _chain(op, clauses)


def _chain(
    op: str, clauses: list[sqlalchemy.ColumnElement[bool]]
) -> sqlalchemy.ColumnElement[bool]:
    combine = sqlalchemy.or_ if op == "or" else sqlalchemy.and_
    if len(clauses) == 1:
        return clauses[0]
    if len(clauses) <= _CHAIN:
        return combine(*clauses)
    size = math.isqrt(len(clauses) - 1) + 1
    return combine(
        *(_Parenthesized(_chain(op, clauses[i : i + size])) for i in range(0, len(clauses), size))
    )
