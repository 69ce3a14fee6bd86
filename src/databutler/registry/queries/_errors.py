"""Limits, reserved words and the error of the ``where`` expression language."""

from __future__ import annotations

import re
import typing

from ..._exceptions import ExpressionError

__all__ = ["ExpressionError"]  # re-exported here, where the language's other parts are

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

KEYWORDS = frozenset({"AND", "OR", "NOT", "IN", "TRUE", "FALSE", "NULL", "OVERLAPS"})
"""Reserved words (matched case-insensitively); they cannot name a dimension or field."""
_COMPARISON_OPERATORS: frozenset[str] = frozenset(typing.get_args(ComparisonOperator))
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NUMBER_TAIL = re.compile(r"[A-Za-z0-9_.]+(?:(?<=[eE])[+-][0-9]*)?")
_WHITESPACE = re.compile(r"\s+")
