"""The type-checking pass of ``where`` expressions: a parsed tree becomes a typed one.

Between parsing and SQL generation, every identifier is resolved to a column
of a known kind (``int``, ``float``, ``str``, ``bool``, ``datetime``,
``uuid``), every literal and bind value gets a kind and is checked (64-bit
integers, finite floats, strings without NUL or lone surrogates), and every
operator is checked against the kinds of its operands.  What comes out uses
only comparisons whose meaning is the same on every backend:

- comparisons of constants are folded here, in Python;
- an integer column compared with a float is rewritten to an exact integer
  comparison (``detector < 2.5`` is ``detector <= 2``), and a float column
  compared with an integer gets a float, so that no backend converts a
  64-bit integer to a double in its own way;
- ``IN`` lists become chains of equalities (the SQL generator turns chains
  on one column back into ``IN``), so that list items are checked like any
  other comparison; a range ``a..b:s`` becomes ``a <= x AND x <= b`` and,
  with a stride, a test of ``x``'s remainder (`Remainder`) written so that
  no backend computes a value beyond 64 bits;
- ``AND``/``OR`` with a constant term are simplified, as three-valued logic
  allows.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy

from ._errors import ExpressionError
from ._nodes import (
    And,
    BinaryOperation,
    BindParameter,
    Comparison,
    Glob,
    Identifier,
    InBind,
    InList,
    IsNull,
    Literal,
    Negative,
    Node,
    Not,
    Or,
    Overlaps,
    RangeLiteral,
    TimeLiteral,
    TimespanLiteral,
)
from ._time import MAX_NS, MIN_NS, ns_of
from ._values import (
    INT_MAX,
    INT_MIN,
    MAX_TERMS,
    BindValues,
    SpanColumns,
    check_int,
    check_string,
    column_kind,
    describe_kind,
)

__all__ = [
    "Column",
    "Compare",
    "Cond",
    "Const",
    "GlobMatch",
    "Junction",
    "Negation",
    "NullTest",
    "Operand",
    "Overlap",
    "Remainder",
    "Span",
    "Value",
    "check",
]

_FLIPPED = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_NUMBERS = frozenset({"int", "float"})


@dataclass(slots=True)
class Column:
    """A resolved column, with the kind of its values."""

    sql: sqlalchemy.ColumnElement[Any]
    kind: str
    node: Node


@dataclass(slots=True)
class Value:
    """A checked constant (literal or bind value), as the database will receive it."""

    kind: str
    value: Any
    node: Node


class Cond:
    """A typed condition."""

    __slots__ = ()
    kind = "bool"


@dataclass(slots=True)
class Const(Cond):
    """A condition known without the database."""

    value: bool


@dataclass(slots=True)
class BoolColumn(Cond):
    """A boolean column used as a condition."""

    column: Column


@dataclass(slots=True)
class Compare(Cond):
    """``left op right``; ``left`` is never a `Value`."""

    op: str
    left: Column | Cond
    right: Operand


@dataclass(slots=True)
class NullTest(Cond):
    """``operand IS [NOT] NULL``."""

    operand: Column | Cond
    negated: bool


@dataclass(slots=True)
class Remainder(Cond):
    """``column % divisor = remainder``, with SQL's ``%`` (the sign of ``column``)."""

    column: Column
    divisor: int
    remainder: int


@dataclass(slots=True)
class Junction(Cond):
    """``AND`` (op ``"and"``) or ``OR`` (op ``"or"``) of two or more conditions."""

    op: str
    terms: list[Cond]


@dataclass(slots=True)
class Negation(Cond):
    """``NOT term``."""

    term: Cond


@dataclass(slots=True)
class Span:
    """A timespan operand: nanosecond bounds (SQL, or `int` for a constant), or a
    resolver's own ``overlaps`` builder (`SpanColumns`)."""

    begin: sqlalchemy.ColumnElement[Any] | int
    end: sqlalchemy.ColumnElement[Any] | int
    node: Node
    overlaps: Any = None

    @property
    def constant(self) -> bool:
        return self.overlaps is None and isinstance(self.begin, int) and isinstance(self.end, int)


@dataclass(slots=True)
class Overlap(Cond):
    """``left OVERLAPS right``; ``left`` is never constant."""

    left: Span
    right: Span


@dataclass(slots=True)
class GlobMatch(Cond):
    """``GLOB(column, pattern)``: ``*`` any characters, ``?`` one character."""

    column: Column
    pattern: str


Operand = Column | Value | Cond


def kind_of(operand: Operand) -> str:
    """The kind of values an operand has."""
    return operand.kind


def junction(op: str, terms: Sequence[Cond]) -> Cond:
    """``AND``/``OR`` of ``terms``, with constants folded and nested chains flattened."""
    flat: list[Cond] = []
    for term in terms:
        if isinstance(term, Const):
            if term.value == (op == "or"):
                return term  # TRUE absorbs OR, FALSE absorbs AND, even against NULL
            continue
        if isinstance(term, Junction) and term.op == op:
            flat.extend(term.terms)
        else:
            flat.append(term)
    if not flat:
        return Const(op == "and")
    return flat[0] if len(flat) == 1 else Junction(op, flat)


def negate(term: Cond) -> Cond:
    """``NOT term``, folded for constants and double negation."""
    if isinstance(term, Const):
        return Const(not term.value)
    if isinstance(term, Negation):
        return term.term
    return Negation(term)


def check(
    node: Node,
    resolve: Callable[[Identifier], sqlalchemy.ColumnElement[Any] | SpanColumns],
    binds: BindValues,
    text: str | None,
) -> Cond:
    """Type-check a parsed condition; see the module docstring.

    Raises
    ------
    ExpressionError
        For the first problem found, pointing at its column.
    """
    return _Checker(resolve, binds, text).condition(node)


class _Checker:
    def __init__(
        self,
        resolve: Callable[[Identifier], sqlalchemy.ColumnElement[Any] | SpanColumns],
        binds: BindValues,
        text: str | None,
    ) -> None:
        self.resolve = resolve
        self.binds = binds
        self.text = text
        self.terms = 0
        self.columns: dict[Identifier, sqlalchemy.ColumnElement[Any] | SpanColumns] = {}

    def error(self, node: Node, reason: str) -> ExpressionError:
        return ExpressionError(reason, self.text, node.position)

    def count(self, node: Node, terms: int) -> None:
        self.terms += terms
        if self.terms > MAX_TERMS:
            raise self.error(
                node,
                f"expression too large at column {node.position}: more than {MAX_TERMS} "
                "comparisons and listed values; split the query into several smaller ones",
            )

    # -- conditions ----------------------------------------------------------

    def condition(self, node: Node) -> Cond:
        match node:
            case And(terms=terms):
                return junction("and", [self.condition(term) for term in terms])
            case Or(terms=terms):
                return junction("or", [self.condition(term) for term in terms])
            case Not(term=term):
                return negate(self.condition(term))
            case Comparison(op=op, left=left, right=right):
                self.count(node, 1)
                return self.compare(node, op, self.operand(left), self.operand(right))
            case InList(operand=operand, items=items, negated=negated):
                member = self.operand(operand)
                values: list[Operand] = []
                ranges: list[Cond] = []
                for item in items:
                    if isinstance(item, RangeLiteral):
                        self.count(item, 1)
                        ranges.append(self.in_range(member, item))
                    elif isinstance(item, BindParameter) and isinstance(
                        self.binds.get(item.name), list
                    ):
                        values.extend(self.bind_items(item))
                    else:
                        self.count(item, 1)
                        values.append(self.operand(item))
                return self.membership(node, member, values, negated, ranges)
            case InBind(operand=operand, bind=bind, negated=negated):
                member = self.operand(operand)
                given = self.binds.get(bind.name, [])
                if not isinstance(given, list):
                    raise self.error(
                        bind,
                        f"bind parameter :{bind.name} at column {bind.position} follows IN, "
                        f"so its value must be a list, tuple or set, not "
                        f"{describe_kind(given[0])} ({given[1]!r})",
                    )
                return self.membership(node, member, self.bind_items(bind), negated)
            case Overlaps(left=left, right=right):
                self.count(node, 1)
                return self.overlap(node, self.span(left), self.span(right))
            case Glob(operand=operand, pattern=pattern):
                self.count(node, 1)
                return self.glob(node, self.operand(operand), self.operand(pattern))
            case IsNull(operand=Identifier() as operand, negated=negated) if isinstance(
                self.resolved(operand), SpanColumns
            ):
                self.count(node, 1)
                spans = self.resolved(operand)
                assert isinstance(spans, SpanColumns)
                if spans.begin is None:
                    return Const(negated)  # a validity range is never NULL
                return NullTest(Column(spans.begin, "int", operand), negated)
            case IsNull(operand=operand, negated=negated):
                self.count(node, 1)
                checked = self.operand(operand)
                if isinstance(checked, Value):
                    return Const(negated)  # a value is never NULL
                return NullTest(checked, negated)
            case Literal(value=bool() as value):
                return Const(value)
            case Literal():
                raise self.error(
                    node,
                    f"{node} at column {node.position} is a value, not a condition; "
                    "compare it with =, !=, <, <=, >, >= or IN",
                )
            case BindParameter(name=name):
                bound = self.bind_scalar(node)
                if bound.kind != "bool":
                    raise self.error(
                        node,
                        f"bind parameter :{name} at column {node.position} is used as a "
                        f"condition, so its value must be True or False, not {bound.value!r}",
                    )
                return Const(bound.value)
            case Identifier():
                column = self.column(node)
                if column.kind != "bool":
                    raise self.error(
                        node,
                        f"'{node}' at column {node.position} is {describe_kind(column.kind)}, "
                        f"not a condition; compare it with a value, as in {node} = ...",
                    )
                return BoolColumn(column)
        raise self.error(node, f"{node} at column {node.position} is not a condition")

    def membership(
        self,
        node: Node,
        left: Operand,
        items: list[Operand],
        negated: bool,
        ranges: Sequence[Cond] = (),
    ) -> Cond:
        """``left [NOT] IN (items, ranges)`` as a chain of (in)equalities and range tests."""
        op, chain = ("!=", "and") if negated else ("=", "or")
        terms = [self.compare(_at(item, node), op, left, item) for item in items]
        terms.extend(negate(term) if negated else term for term in ranges)
        return junction(chain, terms)

    def in_range(self, member: Operand, node: RangeLiteral) -> Cond:
        """``member IN (start..stop:stride)``: bounds, and a remainder test for a stride."""
        if member.kind != "int":
            raise self.error(
                node,
                f"the range {node} at column {node.position} holds integers, but "
                f"{self.describe(member)} is not one; ranges only apply to integer fields "
                "such as detector or exposure",
            )
        for end in (node.start, node.stop):
            problem = check_int(end, f"the range {node} at column {node.position}: its end")
            if problem:
                raise self.error(node, problem)
        start, stride = node.start, node.stride
        stop = start + (node.stop - start) // stride * stride  # the last value in the range
        if isinstance(member, Value):
            return Const(member.value in range(start, stop + 1, stride))
        assert isinstance(member, Column)
        if start == stop:
            return Compare("=", member, Value("int", start, node))
        terms: list[Cond] = [
            Compare(">=", member, Value("int", start, node)),
            Compare("<=", member, Value("int", stop, node)),
        ]
        if stride > 1:
            # SQL's % takes the sign of the dividend: x and start agree modulo stride when
            # x % stride is start's remainder of x's sign (0 is both).
            positive, negative = start % stride, -(-start % stride)
            if start >= 0:
                terms.append(Remainder(member, stride, positive))
            elif stop <= 0:
                terms.append(Remainder(member, stride, negative))
            else:
                zero = Value("int", 0, node)
                terms.append(
                    junction(
                        "or",
                        [
                            junction(
                                "and",
                                [Compare(">=", member, zero), Remainder(member, stride, positive)],
                            ),
                            junction(
                                "and",
                                [Compare("<", member, zero), Remainder(member, stride, negative)],
                            ),
                        ],
                    )
                )
        return junction("and", terms)

    # -- operands ------------------------------------------------------------

    def operand(self, node: Node) -> Operand:
        match node:
            case Identifier():
                return self.column(node)
            case Literal(value=value):
                return self.literal(node, value)
            case TimeLiteral(value=value):
                return Value("datetime", value, node)
            case BindParameter():
                return self.bind_scalar(node)
            case BinaryOperation(op=op, left=left, right=right):
                return self.arithmetic(node, op, self.operand(left), self.operand(right))
            case Negative(operand=operand):
                zero = Value("int", 0, node)
                return self.arithmetic(node, "-", zero, self.operand(operand))
            case TimespanLiteral():
                raise self.error(
                    node,
                    f"{node} at column {node.position} is a timespan; timespans are tested "
                    "with OVERLAPS, as in exposure.timespan OVERLAPS (T'2026-01-01', NULL)",
                )
        checked = self.condition(node)
        if isinstance(checked, Const):
            return Value("bool", checked.value, node)
        return checked

    def resolved(self, node: Identifier) -> sqlalchemy.ColumnElement[Any] | SpanColumns:
        sql = self.columns.get(node)
        if sql is None:
            try:
                sql = self.resolve(node)
            except LookupError as exc:
                message = exc.args[0] if len(exc.args) == 1 else str(exc)
                raise self.error(
                    node, f"unknown identifier '{node}' at column {node.position}: {message}"
                ) from exc
            self.columns[node] = sql
        return sql

    def column(self, node: Identifier) -> Column:
        sql = self.resolved(node)
        if isinstance(sql, SpanColumns):
            raise self.error(
                node,
                f"'{node}' at column {node.position} is a timespan; timespans are tested with "
                f"OVERLAPS, as in {node} OVERLAPS (T'2026-01-01', T'2026-01-02'), or with "
                f"{node} = NULL",
            )
        kind = column_kind(sql)
        if kind is None:
            raise self.error(
                node,
                f"'{node}' at column {node.position} has a type ({sql.type}) that where "
                "expressions cannot compare; constrain it another way",
            )
        return Column(sql, kind, node)

    def literal(self, node: Node, value: object) -> Value:
        if isinstance(value, bool):
            return Value("bool", value, node)
        if isinstance(value, int):
            problem = check_int(value, f"number at column {node.position}:")
            if problem:
                raise self.error(node, problem)
            return Value("int", value, node)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.error(node, f"number at column {node.position} is not finite")
            return Value("float", value, node)
        if isinstance(value, str):
            problem = check_string(value, f"the string at column {node.position}")
            if problem:
                raise self.error(node, problem)
            return Value("str", value, node)
        raise self.error(node, f"{value!r} at column {node.position} is not a supported value")

    def bound(self, node: BindParameter) -> Any:
        try:
            return self.binds[node.name]
        except KeyError:
            known = ", ".join(f":{name}" for name in sorted(self.binds)) or "none were given"
            raise self.error(
                node,
                f"no value for bind parameter :{node.name} at column {node.position} "
                f"(known bind parameters: {known}); add it to bind=",
            ) from None

    def bind_scalar(self, node: BindParameter) -> Value:
        value = self.bound(node)
        if isinstance(value, list):
            raise self.error(
                node,
                f"bind parameter :{node.name} at column {node.position} is a list, tuple or "
                f"set, which can only follow IN; write x IN (:{node.name}) or x IN :{node.name}",
            )
        return Value(value[0], value[1], node)

    def bind_items(self, node: BindParameter) -> list[Operand]:
        values = self.bound(node)
        self.count(node, len(values))
        return [Value(kind, value, node) for kind, value in values]

    # -- comparisons -----------------------------------------------------------

    def describe(self, operand: Operand) -> str:
        kind = describe_kind(operand.kind)
        if isinstance(operand, Column):
            return f"'{operand.node}' ({kind})"
        if isinstance(operand, Value):
            if isinstance(operand.node, BindParameter):
                return f":{operand.node.name} ({kind} {operand.value!r})"
            return f"{operand.node} ({kind})"
        return "a condition (a boolean)"

    # -- arithmetic, patterns and time ------------------------------------------

    def arithmetic(self, node: Node, op: str, left: Operand, right: Operand) -> Operand:
        """``left op right`` on numbers: folded for constants, else a computed column."""
        for side in (left, right):
            if side.kind not in _NUMBERS or (op == "%" and side.kind != "int"):
                what = "integers" if op == "%" else "numbers"
                raise self.error(
                    _at(side, node),
                    f"'{op}' at column {node.position} works on {what}, but "
                    f"{self.describe(side)} is not one; arithmetic applies to integer and "
                    "float fields, literals and bind values",
                )
        kind = "int" if left.kind == right.kind == "int" else "float"
        if isinstance(right, Value) and op in ("/", "%") and right.value == 0:
            raise self.error(
                node,
                f"division by zero at column {node.position} ({node}); divide by another value",
            )
        if isinstance(left, Value) and isinstance(right, Value):
            return self.folded(node, op, kind, left.value, right.value)
        assert isinstance(left, Column | Value) and isinstance(right, Column | Value)
        a, b = _number_sql(left, kind), _number_sql(right, kind)
        type_ = _TYPES[kind]
        if op in ("/", "%") and isinstance(right, Column):
            # A zero divisor gives NULL on both backends (PostgreSQL would fail the query).
            b = sqlalchemy.func.nullif(b, sqlalchemy.literal(0, type_), type_=type_)
        match op:
            case "+":
                sql = a + b
            case "-":
                sql = a - b
            case "*":
                sql = a * b
            case "/":
                # Integer division truncates toward zero on both backends; SQLAlchemy
                # renders // on integers as a plain '/'.
                sql = a // b if kind == "int" else a / b
            case _:
                sql = a % b
        return Column(sqlalchemy.type_coerce(sql, type_), kind, node)

    def folded(self, node: Node, op: str, kind: str, a: Any, b: Any) -> Value:
        result: Any
        match op:
            case "+":
                result = a + b
            case "-":
                result = a - b
            case "*":
                result = a * b
            case "/" if kind == "int":
                quotient = abs(a) // abs(b)
                result = quotient if (a >= 0) == (b > 0) else -quotient
            case "/":
                result = a / b
            case _:
                quotient = abs(a) // abs(b)
                result = a - b * (quotient if (a >= 0) == (b > 0) else -quotient)
        if kind == "int":
            problem = check_int(result, f"the value of {node} at column {node.position}:")
            if problem:
                raise self.error(node, problem)
        else:
            result = float(result)
            if not math.isfinite(result):
                raise self.error(node, f"{node} at column {node.position} is not finite")
        return Value(kind, result, node)

    def glob(self, node: Node, operand: Operand, pattern: Operand) -> Cond:
        if operand.kind != "str":
            raise self.error(
                _at(operand, node),
                f"GLOB at column {node.position} matches strings, but {self.describe(operand)} "
                "is not one; use it on a string field such as exposure.obs_id",
            )
        if not isinstance(pattern, Value) or pattern.kind != "str":
            raise self.error(
                _at(pattern, node),
                f"the pattern of GLOB at column {node.position} must be a string literal or a "
                f"string bind value, not {self.describe(pattern)}; write GLOB(field, 'HSC*')",
            )
        if isinstance(operand, Value):
            return Const(_glob_regex(pattern.value).fullmatch(operand.value) is not None)
        assert isinstance(operand, Column)
        return GlobMatch(operand, pattern.value)

    def span(self, node: Node) -> Span:
        """A timespan operand of OVERLAPS; an instant is the timespan ``[t, t + 1 ns)``."""
        if isinstance(node, TimespanLiteral):
            bounds = [
                self.instant(bound, node) if bound is not None else unbounded
                for bound, unbounded in ((node.begin, MIN_NS), (node.end, MAX_NS))
            ]
            if bounds[1] <= bounds[0]:
                raise self.error(
                    node,
                    f"the timespan {node} at column {node.position} ends before or when it "
                    "begins; a timespan's end is after its begin",
                )
            return Span(bounds[0], bounds[1], node)
        if isinstance(node, Identifier):
            resolved = self.resolved(node)
            if isinstance(resolved, SpanColumns):
                if resolved.overlaps is not None:
                    return Span(0, 0, node, resolved.overlaps)
                assert resolved.begin is not None and resolved.end is not None
                return Span(resolved.begin, resolved.end, node)
        if isinstance(node, BindParameter):
            bound = self.bind_scalar(node)
            if bound.kind == "timespan":
                return Span(bound.value[0], bound.value[1], node)
        at = self.instant(node, node)
        return Span(at, at + 1, node)

    def instant(self, node: Node, where: Node) -> int:
        """Nanoseconds of a time literal or datetime bind value."""
        when = None
        if isinstance(node, TimeLiteral):
            when = node.value
        elif isinstance(node, BindParameter):
            bound = self.bind_scalar(node)
            if bound.kind == "datetime":
                when = bound.value
        if when is not None:
            try:
                return ns_of(when)
            except ValueError as exc:
                raise self.error(node, f"{exc.args[0]} (at column {node.position})") from None
        if isinstance(node, BindParameter):
            described = self.describe(bound)
        elif isinstance(node, Identifier):
            described = self.describe(self.column(node))
        else:
            described = str(node)
        raise self.error(
            node,
            f"OVERLAPS at column {where.position} takes timespans (a (T'...', T'...') literal, "
            "a timespan field such as exposure.timespan, a Timespan bind value) or a time "
            f"(T'...' or a datetime bind value), not {described}",
        )

    def overlap(self, node: Node, left: Span, right: Span) -> Cond:
        if left.overlaps is not None and right.overlaps is not None:
            raise self.error(
                node,
                f"OVERLAPS at column {node.position} cannot compare {left.node} with "
                f"{right.node}; compare each with a timespan or a dimension's timespan",
            )
        if left.constant and right.constant:
            a, b, c, d = left.begin, left.end, right.begin, right.end
            assert isinstance(a, int) and isinstance(b, int)
            assert isinstance(c, int) and isinstance(d, int)
            return Const(a < d and c < b)
        if left.constant or right.overlaps is not None:
            left, right = right, left
        return Overlap(left, right)

    def compare(self, node: Node, op: str, left: Operand, right: Operand) -> Cond:
        lk, rk = left.kind, right.kind
        if "timespan" in (lk, rk):
            raise self.error(
                node,
                f"'{op}' at column {node.position} cannot compare timespans; test them with "
                "OVERLAPS, as in exposure.timespan OVERLAPS :span",
            )
        if lk != rk and not (lk in _NUMBERS and rk in _NUMBERS):
            raise self.error(
                node,
                f"cannot compare {self.describe(left)} with {self.describe(right)} at column "
                f"{node.position}; compare {describe_kind(lk)} with {describe_kind(lk)}",
            )
        if op not in ("=", "!=") and lk in ("bool", "uuid"):
            raise self.error(
                node,
                f"'{op}' at column {node.position} cannot order {describe_kind(lk)} values; "
                "use = or !=",
            )
        if isinstance(left, Value):
            if isinstance(right, Value):
                return Const(_evaluate(op, left.value, right.value))
            left, right, op = right, left, _FLIPPED[op]
            lk = left.kind
        assert not isinstance(left, Value)
        if isinstance(right, Value):
            if lk == "int" and right.kind == "float":
                return _int_versus_float(op, left, right)
            if lk == "float" and right.kind == "int":
                right = Value("float", float(right.value), right.node)
            elif isinstance(left, Cond):
                # A condition compared with TRUE or FALSE is itself or its negation.
                return left if (op == "=") == right.value else negate(left)
        return Compare(op, left, right)


_TYPES: dict[str, Any] = {"int": sqlalchemy.BigInteger(), "float": sqlalchemy.Float()}


def _number_sql(operand: Column | Value, kind: str) -> sqlalchemy.ColumnElement[Any]:
    """An arithmetic operand as SQL of ``kind`` (an integer becomes a float to mix with one)."""
    if isinstance(operand, Value):
        value = float(operand.value) if kind == "float" else operand.value
        return sqlalchemy.literal(value, _TYPES[kind])
    if kind == "float" and operand.kind == "int":
        return sqlalchemy.cast(operand.sql, sqlalchemy.Float)
    return operand.sql


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """The regular expression of a GLOB pattern (for constants, matched in Python)."""
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.compile("".join(parts), re.S)


def _at(operand: Operand, default: Node) -> Node:
    """The node to point at for a problem with ``operand``."""
    return operand.node if isinstance(operand, Column | Value) else default


def _evaluate(op: str, left: Any, right: Any) -> bool:
    match op:
        case "=":
            return bool(left == right)
        case "!=":
            return bool(left != right)
        case "<":
            return bool(left < right)
        case "<=":
            return bool(left <= right)
        case ">":
            return bool(left > right)
        case _:
            return bool(left >= right)


def _int_versus_float(op: str, left: Column | Cond, right: Value) -> Cond:
    """An integer column against a float, as an exact comparison with an integer."""
    value: float = right.value
    if value.is_integer():
        target = int(value)
    else:
        target = math.floor(value)
        if op in ("<", "<="):
            op = "<="
        elif op in (">", ">="):
            op = ">"
        else:
            return _always(left, right, op == "!=")
    if INT_MIN <= target <= INT_MAX:
        return Compare(op, left, Value("int", target, right.node))
    # Beyond the 64-bit range every stored integer is on one side of the target.
    below = target > INT_MAX  # every stored value is below the target
    holds = {
        "=": False,
        "!=": True,
        "<": below,
        "<=": below,
        ">": not below,
        ">=": not below,
    }[op]
    return _always(left, right, holds)


def _always(left: Column | Cond, right: Value, holds: bool) -> Cond:
    """True (or, without ``holds``, false) for every non-NULL value of ``left``; NULL stays NULL."""
    if holds:
        return Compare(">=", left, Value("int", INT_MIN, right.node))
    return Compare(">", left, Value("int", INT_MAX, right.node))
