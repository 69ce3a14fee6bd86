"""Translation of parsed ``where`` expressions to SQLAlchemy.

Every literal and every bind value in the expression reaches the database as a
bound parameter; the only names spliced into SQL are the columns that the
caller's ``resolve`` function returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy

from .expression import (
    And,
    BindParameter,
    Comparison,
    ExpressionError,
    Identifier,
    InBind,
    InList,
    IsNull,
    Literal,
    Node,
    Not,
    Or,
)

__all__ = ["Resolver", "bind_names", "identifiers", "to_sql"]

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
    """Translate a parsed expression to an SQLAlchemy boolean expression.

    Parameters
    ----------
    node : `Node`
        A condition, as returned by `parse_expression`.  ``Literal(True)``
        (the empty expression) translates to ``sqlalchemy.true()``.
    resolve : `~collections.abc.Callable`
        Called with each `Identifier`; returns the column it names.  It may
        raise `ExpressionError`, which propagates, or `LookupError`, which is
        re-raised as an `ExpressionError` pointing at the identifier.
    binds : `~collections.abc.Mapping` [`str`, `~typing.Any`], optional
        Values of the bind parameters, by name without the ``:``.  The value
        for ``x IN :name`` must be a list, tuple or set; the value of a bind
        used on its own as a condition must be `True` or `False`.
    text : `str`, optional
        The text ``node`` was parsed from; when given, errors quote it with a
        caret under the offending column.

    Returns
    -------
    clause : `sqlalchemy.ColumnElement` [`bool`]
        The condition.  Literals become ``sqlalchemy.literal`` and bind values
        ``sqlalchemy.bindparam`` (expanding for ``IN :name``), so none of the
        values appear in the SQL text.

    Raises
    ------
    ExpressionError
        If an identifier is unknown, a bind parameter has no value or a value
        of the wrong kind, or ``node`` is a value rather than a condition.
    """
    return _Translator(resolve, binds if binds is not None else {}, text).condition(node)


class _Translator:
    def __init__(self, resolve: Resolver, binds: Mapping[str, Any], text: str | None) -> None:
        self.resolve = resolve
        self.binds = binds
        self.text = text

    def error(self, node: Node, reason: str) -> ExpressionError:
        return ExpressionError(reason, self.text, node.position)

    def condition(self, node: Node) -> sqlalchemy.ColumnElement[bool]:
        match node:
            case And(terms=terms):
                return sqlalchemy.and_(*(self.condition(term) for term in terms))
            case Or(terms=terms):
                return sqlalchemy.or_(*(self.condition(term) for term in terms))
            case Not(term=term):
                return sqlalchemy.not_(self.condition(term))
            case Comparison(op=op, left=left, right=right):
                return self.comparison(op, self.value(left), self.value(right))
            case InList(operand=operand, items=items, negated=negated):
                column = self.value(operand)
                values = [self.value(item) for item in items]
                return column.not_in(values) if negated else column.in_(values)
            case InBind(operand=operand, bind=bind, negated=negated):
                return self.in_bind(self.value(operand), bind, negated)
            case IsNull(operand=operand, negated=negated):
                column = self.value(operand)
                return column.is_not(None) if negated else column.is_(None)
            case Literal(value=bool() as value):
                return sqlalchemy.true() if value else sqlalchemy.false()
            case Literal():
                raise self.error(
                    node,
                    f"{node} at column {node.position} is a value, not a condition; "
                    "compare it with =, !=, <, <=, >, >= or IN",
                )
            case BindParameter(name=name):
                value = self.bind_value(node)
                if not isinstance(value, bool):
                    raise self.error(
                        node,
                        f"bind parameter :{name} at column {node.position} is used as a "
                        f"condition, so its value must be True or False, not {value!r}",
                    )
                return sqlalchemy.bindparam(name, value, type_=sqlalchemy.Boolean, unique=True)
            case _:
                # An identifier on its own is a boolean column; type_coerce (no CAST in the
                # SQL) lets NOT and AND apply to it whatever type the resolver declared.
                return sqlalchemy.type_coerce(self.value(node), sqlalchemy.Boolean)

    def value(self, node: Node) -> sqlalchemy.ColumnElement[Any]:
        match node:
            case Identifier():
                try:
                    return self.resolve(node)
                except LookupError as exc:
                    message = exc.args[0] if len(exc.args) == 1 else str(exc)
                    raise self.error(
                        node, f"unknown identifier '{node}' at column {node.position}: {message}"
                    ) from exc
            case Literal(value=value):
                return sqlalchemy.literal(value)
            case BindParameter(name=name):
                return sqlalchemy.bindparam(name, self.bind_value(node), unique=True)
            case _:
                clause = self.condition(node)
                # SQLAlchemy folds constant conditions (NOT FALSE, TRUE AND x) into
                # true()/false(), which it refuses to order with < or >: bind those instead.
                if isinstance(clause, sqlalchemy.True_ | sqlalchemy.False_):
                    return sqlalchemy.literal(isinstance(clause, sqlalchemy.True_))
                return clause

    def bind_value(self, node: BindParameter) -> Any:
        try:
            return self.binds[node.name]
        except KeyError:
            known = (
                ", ".join(f":{name}" for name in sorted(map(str, self.binds))) or "none were given"
            )
            raise self.error(
                node,
                f"no value for bind parameter :{node.name} at column {node.position} "
                f"(known bind parameters: {known})",
            ) from None

    def in_bind(
        self, column: sqlalchemy.ColumnElement[Any], bind: BindParameter, negated: bool
    ) -> sqlalchemy.ColumnElement[bool]:
        values = self.bind_value(bind)
        if not isinstance(values, list | tuple | set | frozenset):
            raise self.error(
                bind,
                f"bind parameter :{bind.name} at column {bind.position} follows IN, so its "
                f"value must be a list, tuple or set, not {type(values).__name__}",
            )
        param: sqlalchemy.BindParameter[Any] = sqlalchemy.bindparam(
            bind.name, list(values), expanding=True, unique=True
        )
        return column.not_in(param) if negated else column.in_(param)

    @staticmethod
    def comparison(
        op: str, left: sqlalchemy.ColumnElement[Any], right: sqlalchemy.ColumnElement[Any]
    ) -> sqlalchemy.ColumnElement[bool]:
        match op:
            case "=":
                return left == right
            case "!=":
                return left != right
            case "<":
                return left < right
            case "<=":
                return left <= right
            case ">":
                return left > right
            case _:
                return left >= right
