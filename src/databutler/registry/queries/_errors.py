"""Limits, reserved words and the error of the ``where`` expression language."""

from __future__ import annotations

import re
import typing

from ..._exceptions import DatabutlerError

MAX_LENGTH = 100_000
"""The longest expression, in characters, that `parse_expression` accepts."""

MAX_DEPTH = 20
"""How deeply parentheses and ``NOT`` may nest in one expression.

Deeper nesting is refused, rather than risking a `RecursionError` here or in
SQLAlchemy's compiler.  The figure is low because SQLite's parser (a fixed
100-entry stack in common builds) rejects SQL nested about 25 levels deep once
the condition sits in a subquery; no hand-written condition needs more.
"""

ComparisonOperator = typing.Literal["=", "!=", "<", "<=", ">", ">="]
LiteralValue = bool | int | float | str

KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "TRUE", "FALSE", "NULL"})
"""Reserved words (matched case-insensitively); they cannot name a dimension or field."""
_COMPARISON_OPERATORS: frozenset[str] = frozenset(typing.get_args(ComparisonOperator))
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NUMBER_TAIL = re.compile(r"[A-Za-z0-9_.]+(?:(?<=[eE])[+-][0-9]*)?")
_WHITESPACE = re.compile(r"\s+")


class ExpressionError(DatabutlerError, ValueError):
    """A ``where`` expression is malformed, or cannot be translated to SQL.

    Parameters
    ----------
    reason : `str`
        What went wrong, where, and how to fix it when that is obvious.
    expression : `str`, optional
        The expression text; when given, the message quotes the offending
        line with a caret under ``position``.
    position : `int`, optional
        0-based offset into ``expression`` of the column where it went wrong
        (``len(expression)`` for "ended too early").

    Notes
    -----
    Columns in messages are the same 0-based offsets as ``position``.
    """

    def __init__(
        self, reason: str, expression: str | None = None, position: int | None = None
    ) -> None:
        self.reason = reason
        self.expression = expression
        self.position = position
        super().__init__(_format_error(reason, expression, position))

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.reason, self.expression, self.position))


def _format_error(reason: str, expression: str | None, position: int | None) -> str:
    if expression is None or position is None:
        return reason
    line_start = expression.rfind("\n", 0, position) + 1
    line_end = expression.find("\n", position)
    line = expression[line_start : line_end if line_end >= 0 else len(expression)]
    column = position - line_start
    # Keep the excerpt readable for very long expressions: a window around the column.
    start = max(0, column - 40)
    end = min(len(line), column + 40)
    prefix = "..." if start > 0 else ""
    suffix = "..." if end < len(line) else ""
    shown = "".join(c if c.isprintable() else " " for c in line[start:end])
    caret = " " * (len(prefix) + column - start) + "^"
    parts = [reason]
    if "\n" in expression:
        parts.append(f"  (line {expression.count(chr(10), 0, line_start) + 1})")
    parts += [f"  {prefix}{shown}{suffix}", f"  {caret}"]
    return "\n".join(parts)
