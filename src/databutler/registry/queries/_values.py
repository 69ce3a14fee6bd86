"""The types of ``where`` values: columns' kinds, and checks of literals and bind values.

Every value that can reach the database is checked here first, whatever its
source (a literal in the text or a ``bind`` mapping), so that both backends
either receive a value they store alike or nothing at all.
"""

from __future__ import annotations

import datetime
import math
import numbers
import operator
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy

from ..._collection_type import Timespan
from ...ddl import GUID
from ._time import MAX_NS, MIN_NS, ns_of

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "MAX_STRING_LENGTH",
    "MAX_TERMS",
    "BindValues",
    "SpanColumns",
    "column_kind",
    "describe_kind",
]

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1

MAX_STRING_LENGTH = 4096
"""The longest string, in characters, that a literal or bind value may be."""

MAX_TERMS = 10_000
"""The most comparisons and listed values (``IN`` items, list-bind items) in one expression.

Far more than a hand-written condition needs, and few enough that every
backend accepts the statement (bound parameters, expression depth).
"""

_KIND_NAMES = {
    "int": "an integer",
    "float": "a float",
    "str": "a string",
    "bool": "a boolean",
    "datetime": "a datetime",
    "uuid": "a UUID",
    "timespan": "a timespan",
}


@dataclass(frozen=True, slots=True)
class SpanColumns:
    """What a resolver returns for a timespan field: its two nanosecond columns.

    ``begin`` and ``end`` hold a half-open range in integer nanoseconds since
    1970 UTC (``MIN_NS``/``MAX_NS`` for unbounded, NULL in both for no
    timespan). A resolver may instead give ``overlaps``, which builds the SQL
    condition "overlaps ``[begin, end)``" itself (a calibration's validity
    ranges, held in another table).
    """

    begin: sqlalchemy.ColumnElement[Any] | None = None
    end: sqlalchemy.ColumnElement[Any] | None = None
    overlaps: (
        Callable[
            [sqlalchemy.ColumnElement[Any], sqlalchemy.ColumnElement[Any]],
            sqlalchemy.ColumnElement[bool],
        ]
        | None
    ) = None


BindValues = dict[str, tuple[str, Any] | list[tuple[str, Any]]]
"""Checked bind values: ``(kind, value)`` for a scalar, a list of them for a collection."""


def describe_kind(kind: str) -> str:
    """``"an integer"`` for ``"int"`` and so on."""
    return _KIND_NAMES.get(kind, kind)


def column_kind(column: sqlalchemy.ColumnElement[Any]) -> str | None:
    """The value kind of a column (``int``, ``float``, ``str``, ``bool``, ``datetime``, ``uuid``).

    `None` for a type the ``where`` language cannot compare.
    """
    type_ = column.type
    if isinstance(type_, GUID | sqlalchemy.Uuid):
        return "uuid"
    if isinstance(type_, sqlalchemy.TypeDecorator):
        type_ = type_.impl_instance
    if isinstance(type_, sqlalchemy.Boolean):
        return "bool"
    if isinstance(type_, sqlalchemy.Integer):
        return "int"
    if isinstance(type_, sqlalchemy.Float | sqlalchemy.Numeric):
        return "float"
    if isinstance(type_, sqlalchemy.String):
        return "str"
    if isinstance(type_, sqlalchemy.DateTime):
        return "datetime"
    return None


def check_string(value: str, what: str) -> str | None:
    """The problem with a string value, or `None` when it can be sent to any backend."""
    if len(value) > MAX_STRING_LENGTH:
        return (
            f"{what} is {len(value)} characters long; the limit is {MAX_STRING_LENGTH} — "
            "no stored value is that long, shorten it"
        )
    if "\x00" in value:
        return f"{what} contains a NUL character, which no stored value holds; remove it"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return (
            f"{what} contains a lone surrogate, which is not valid Unicode; "
            "give a properly encoded string"
        )
    return None


def check_int(value: int, what: str) -> str | None:
    """The problem with an integer value, or `None` when it fits a 64-bit column."""
    if not INT_MIN <= value <= INT_MAX:
        return (
            f"{what} {value} does not fit in a signed 64-bit integer "
            f"({INT_MIN} to {INT_MAX}), so no stored value can equal it; use a smaller number"
        )
    return None


def scalar(value: object, what: str) -> tuple[str, Any] | str:
    """``(kind, normalized value)`` for a bind value, or a message saying what is wrong."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, numbers.Integral):
        number = operator.index(value)
        problem = check_int(number, what)
        return problem if problem else ("int", number)
    if isinstance(value, numbers.Real):
        try:
            real = float(value)
        except (OverflowError, ValueError):
            real = math.inf
        if not math.isfinite(real):
            return f"{what} {value!r} is not a finite number; give a finite float"
        return ("float", real)
    if isinstance(value, str):
        problem = check_string(value, what)
        return problem if problem else ("str", str(value))
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            return (
                f"{what} {value!r} has no time zone; give an aware datetime "
                "(e.g. tzinfo=datetime.UTC)"
            )
        try:
            return ("datetime", value.astimezone(datetime.UTC).replace(tzinfo=None))
        except OverflowError:
            return f"{what} {value!r} is out of range in UTC"
    if isinstance(value, uuid.UUID):
        return ("uuid", value)
    if isinstance(value, Timespan):
        try:
            begin = MIN_NS if value.begin is None else ns_of(value.begin)
            end = MAX_NS if value.end is None else ns_of(value.end)
        except ValueError as exc:
            return f"{what}: {exc.args[0]}"
        return ("timespan", (begin, end))
    if value is None:
        return f"{what} is None; test for NULL in the expression with 'x = NULL' instead"
    return (
        f"{what} is a {type(value).__name__}; bind values must be int, float, str, bool, "
        "an aware datetime, a databutler.Timespan or uuid.UUID (or a list, tuple or set of "
        "them after IN)"
    )


_COLLECTIONS = (list, tuple, set, frozenset)


class _BindError(Exception):
    """A bad ``bind`` mapping; ``name`` is the bind parameter at fault, if one is."""

    def __init__(self, reason: str, name: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.name = name


def _check_bind(bind: object) -> BindValues:
    """Check a ``bind`` mapping whole (see `databutler.registry.queries.check_bind`)."""
    if bind is None:
        return {}
    if not isinstance(bind, Mapping):
        raise _BindError(
            f"bind must be a mapping of names to values (a dict), not {type(bind).__name__}; "
            "write bind={'name': value} and :name in the expression"
        )
    checked: BindValues = {}
    terms = 0
    for name, value in bind.items():
        if not isinstance(name, str):
            raise _BindError(
                f"bind parameter names must be str, not {type(name).__name__} ({name!r}); "
                "use the name written after ':' in the expression"
            )
        what = f"bind parameter :{name}"
        if isinstance(value, _COLLECTIONS):
            terms += len(value)
            if terms > MAX_TERMS:
                raise _BindError(
                    f"the bind values hold more than {MAX_TERMS} items; "
                    "split the query into several smaller ones",
                    name,
                )
            items: list[tuple[str, Any]] = []
            for item in value:
                if isinstance(item, _COLLECTIONS):
                    raise _BindError(
                        f"{what} holds a {type(item).__name__} inside a "
                        f"{type(value).__name__}; give a flat list of values",
                        name,
                    )
                result = scalar(item, f"an item of {what}")
                if isinstance(result, str):
                    raise _BindError(result, name)
                items.append(result)
            checked[name] = items
            continue
        result = scalar(value, what)
        if isinstance(result, str):
            raise _BindError(result, name)
        checked[name] = result
    return checked
