"""The syntax tree of ``where`` expressions: immutable nodes that render back to text."""

from __future__ import annotations

import datetime
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field

from ._errors import _COMPARISON_OPERATORS, _WORD, KEYWORDS, ComparisonOperator, LiteralValue

# ---------------------------------------------------------------------------
# Syntax tree


@dataclass(frozen=True, slots=True)
class Node(ABC):
    """A node of a parsed expression.

    Nodes are immutable and compare equal (and hash) by content alone:
    ``position``, the 0-based column where the node starts in the parsed
    text, is ignored by ``==``.  ``str(node)`` renders expression text that
    parses back to an equal node.
    """

    position: int = field(default=0, compare=False, kw_only=True)

    @abstractmethod
    def __str__(self) -> str:
        raise NotImplementedError()

    def children(self) -> tuple[Node, ...]:
        """Return the nodes directly below this one, in text order."""
        return ()

    def walk(self) -> Iterator[Node]:
        """Iterate over this node and every node below it, depth first."""
        stack: list[Node] = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children()))


def _check_word(word: str, what: str) -> None:
    if not _WORD.fullmatch(word):
        raise ValueError(f"{what} {word!r} is not a valid name ([A-Za-z_][A-Za-z0-9_]*).")
    if word.upper() in KEYWORDS:
        raise ValueError(f"{what} {word!r} is a reserved word.")


def _check_condition(node: Node) -> None:
    if isinstance(node, Literal | TimeLiteral) and not isinstance(node.value, bool):
        raise ValueError(f"{node} is a value, not a condition.")
    if isinstance(node, BinaryOperation | Negative | TimespanLiteral):
        raise ValueError(f"{node} is a value, not a condition.")


def _operand_text(node: Node) -> str:
    if isinstance(
        node,
        Identifier | Literal | TimeLiteral | BindParameter | RangeLiteral | TimespanLiteral | Glob,
    ):
        return str(node)
    return f"({node})"


def _term_text(node: Node) -> str:
    return f"({node})" if isinstance(node, And | Or) else str(node)


@dataclass(frozen=True, slots=True)
class Identifier(Node):
    """A dimension (``detector``) or a field of a record (``visit.exposure_time``)."""

    name: str
    field: str | None = None

    def __post_init__(self) -> None:
        _check_word(self.name, "Identifier")
        if self.field is not None:
            _check_word(self.field, "Field")

    def __str__(self) -> str:
        return self.name if self.field is None else f"{self.name}.{self.field}"


@dataclass(frozen=True, slots=True, eq=False)
class Literal(Node):
    """A number, string or boolean written in the expression.

    Equality is by type as well as value, so ``Literal(1) != Literal(True)``.
    Floats must be finite and strings may not contain line breaks, so that
    every literal can be written back as text.
    """

    value: LiteralValue

    def __post_init__(self) -> None:
        if not isinstance(self.value, bool | int | float | str):
            raise TypeError(f"Literal value {self.value!r} is not a bool, int, float or str.")
        if isinstance(self.value, float) and not math.isfinite(self.value):
            raise ValueError(f"Literal value {self.value!r} is not finite.")
        if isinstance(self.value, str) and ("\n" in self.value or "\r" in self.value):
            raise ValueError("A string literal cannot contain a line break.")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Literal):
            return NotImplemented
        return type(self.value) is type(other.value) and self.value == other.value

    def __hash__(self) -> int:
        return hash((type(self.value), self.value))

    def __str__(self) -> str:
        value = self.value
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, str):
            return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return repr(value)


@dataclass(frozen=True, slots=True)
class TimeLiteral(Node):
    """An instant written ``T'2026-11-29T12:00:00'`` (the forms: `._time.parse_time`).

    ``value`` is the instant as a naive UTC `datetime.datetime`, the form
    datetime columns hold; it is written back as UTC ISO text.
    """

    value: datetime.datetime

    def __post_init__(self) -> None:
        if not isinstance(self.value, datetime.datetime) or self.value.tzinfo is not None:
            raise TypeError(
                f"A time literal's value must be a naive UTC datetime, not {self.value!r}."
            )

    def __str__(self) -> str:
        return f"T'{self.value.isoformat()}'"


@dataclass(frozen=True, slots=True)
class BindParameter(Node):
    """A named value supplied at translation time: ``:name``."""

    name: str

    def __post_init__(self) -> None:
        if not _WORD.fullmatch(self.name):
            raise ValueError(f"Bind parameter name {self.name!r} is not a valid name.")

    def __str__(self) -> str:
        return f":{self.name}"


@dataclass(frozen=True, slots=True)
class RangeLiteral(Node):
    """The integers ``start..stop:stride`` (both ends included), an item of an ``IN`` list.

    ``1..5`` is 1, 2, 3, 4, 5 and ``1..10:3`` is 1, 4, 7, 10, as in daf_butler.
    ``stop`` is at least ``start`` and ``stride`` at least 1.
    """

    start: int
    stop: int
    stride: int = 1

    def __post_init__(self) -> None:
        for name in ("start", "stop", "stride"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"A range's {name} must be an int, not {value!r}.")
        if self.stride < 1:
            raise ValueError(f"A range's stride must be 1 or more, not {self.stride}.")
        if self.stop < self.start:
            raise ValueError(f"The range {self.start}..{self.stop} is empty.")

    def __str__(self) -> str:
        text = f"{self.start}..{self.stop}"
        return text if self.stride == 1 else f"{text}:{self.stride}"

    def values(self) -> range:
        """The integers of the range, as a Python `range`."""
        return range(self.start, self.stop + 1, self.stride)


@dataclass(frozen=True, slots=True)
class Comparison(Node):
    """``left op right``; ``<>`` is stored as ``!=``."""

    op: ComparisonOperator
    left: Node
    right: Node

    def __post_init__(self) -> None:
        if self.op not in _COMPARISON_OPERATORS:
            raise ValueError(f"Unknown comparison operator {self.op!r}.")

    def __str__(self) -> str:
        return f"{_operand_text(self.left)} {self.op} {_operand_text(self.right)}"

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class InList(Node):
    """``operand [NOT] IN (item, ...)``, with at least one item; items may be `RangeLiteral`."""

    operand: Node
    items: tuple[Node, ...]
    negated: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))
        if not self.items:
            raise ValueError("An IN list needs at least one item.")

    def __str__(self) -> str:
        items = ", ".join(_operand_text(item) for item in self.items)
        return f"{_operand_text(self.operand)} {'NOT IN' if self.negated else 'IN'} ({items})"

    def children(self) -> tuple[Node, ...]:
        return (self.operand, *self.items)


@dataclass(frozen=True, slots=True)
class InBind(Node):
    """``operand [NOT] IN :bind``, where the bound value is a collection."""

    operand: Node
    bind: BindParameter
    negated: bool = False

    def __str__(self) -> str:
        return f"{_operand_text(self.operand)} {'NOT IN' if self.negated else 'IN'} {self.bind}"

    def children(self) -> tuple[Node, ...]:
        return (self.operand, self.bind)


@dataclass(frozen=True, slots=True)
class IsNull(Node):
    """``operand = NULL`` (``IS NULL``) or, negated, ``operand != NULL``."""

    operand: Node
    negated: bool = False

    def __str__(self) -> str:
        return f"{_operand_text(self.operand)} {'!=' if self.negated else '='} NULL"

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class And(Node):
    """Two or more conditions that must all hold."""

    terms: tuple[Node, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", tuple(self.terms))
        if len(self.terms) < 2:
            raise ValueError("And needs at least two terms.")
        for term in self.terms:
            _check_condition(term)

    def __str__(self) -> str:
        return " AND ".join(_term_text(term) for term in self.terms)

    def children(self) -> tuple[Node, ...]:
        return self.terms


@dataclass(frozen=True, slots=True)
class Or(Node):
    """Two or more conditions of which at least one must hold."""

    terms: tuple[Node, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "terms", tuple(self.terms))
        if len(self.terms) < 2:
            raise ValueError("Or needs at least two terms.")
        for term in self.terms:
            _check_condition(term)

    def __str__(self) -> str:
        return " OR ".join(_term_text(term) for term in self.terms)

    def children(self) -> tuple[Node, ...]:
        return self.terms


@dataclass(frozen=True, slots=True)
class Not(Node):
    """The negation of a condition."""

    term: Node

    def __post_init__(self) -> None:
        _check_condition(self.term)

    def __str__(self) -> str:
        return f"NOT {_term_text(self.term)}"

    def children(self) -> tuple[Node, ...]:
        return (self.term,)


ARITHMETIC_OPERATORS = frozenset({"+", "-", "*", "/", "%"})
"""The binary arithmetic operators, as daf_butler's grammar has them."""


@dataclass(frozen=True, slots=True)
class BinaryOperation(Node):
    """``left op right`` with an arithmetic operator: ``+ - * / %``."""

    op: str
    left: Node
    right: Node

    def __post_init__(self) -> None:
        if self.op not in ARITHMETIC_OPERATORS:
            raise ValueError(f"Unknown arithmetic operator {self.op!r}.")

    def __str__(self) -> str:
        return f"{_operand_text(self.left)} {self.op} {_operand_text(self.right)}"

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class Negative(Node):
    """``-operand`` for an operand that is not a number (``-detector``)."""

    operand: Node

    def __str__(self) -> str:
        return f"-{_operand_text(self.operand)}"

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class TimespanLiteral(Node):
    """``(begin, end)``: a half-open time range; a `None` bound (``NULL``) is unbounded.

    Each bound is a `TimeLiteral` or a `BindParameter` (holding an aware datetime).
    """

    begin: Node | None
    end: Node | None

    def __str__(self) -> str:
        begin = "NULL" if self.begin is None else str(self.begin)
        end = "NULL" if self.end is None else str(self.end)
        return f"({begin}, {end})"

    def children(self) -> tuple[Node, ...]:
        return tuple(n for n in (self.begin, self.end) if n is not None)


@dataclass(frozen=True, slots=True)
class Overlaps(Node):
    """``left OVERLAPS right``: two timespans (or a timespan and an instant) share a time."""

    left: Node
    right: Node

    def __str__(self) -> str:
        return f"{_operand_text(self.left)} OVERLAPS {_operand_text(self.right)}"

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class Glob(Node):
    """``GLOB(operand, pattern)``: a string matching a pattern of ``*`` (any characters,
    none included) and ``?`` (one character); every other character stands for itself."""

    operand: Node
    pattern: Node

    def __str__(self) -> str:
        return f"GLOB({self.operand}, {self.pattern})"

    def children(self) -> tuple[Node, ...]:
        return (self.operand, self.pattern)
