"""Checking dimension record values and converting them to and from columns."""

from __future__ import annotations

import datetime
import math
import numbers
import operator
from collections.abc import Mapping
from typing import Any

import sqlalchemy

from .._exceptions import DataIdError
from ..dimensions import (
    DimensionField,
)

__all__ = ["COLUMN_TYPES", "from_db", "preview", "to_db"]

_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1

COLUMN_TYPES: dict[str, type] = {
    "string": sqlalchemy.String,
    "int": sqlalchemy.BigInteger,
    "float": sqlalchemy.Float,
    "bool": sqlalchemy.Boolean,
    "datetime": sqlalchemy.DateTime,
}

_PREVIEW_LENGTH = 160


def preview(record: object) -> str:
    text = repr(dict(record)) if isinstance(record, Mapping) else repr(record)
    return text if len(text) <= _PREVIEW_LENGTH else text[: _PREVIEW_LENGTH - 3] + "..."


def to_db(field: DimensionField, value: Any, where: str) -> Any:
    """Check ``value`` against ``field``'s type and convert it to a column value."""
    if value is None:
        return None
    given = f"{where}: {value!r} ({type(value).__name__})"
    dtype = field.dtype
    if dtype == "string":
        if not isinstance(value, str):
            raise DataIdError(f"{given} has the wrong type; expected str.")
        if not value:
            raise DataIdError(
                f"{given} is empty; give a non-empty str (or None if it may be empty)."
            )
        if field.length is not None and len(value) > field.length:
            raise DataIdError(f"{given} is longer than {field.length} characters.")
        if "\x00" in value:
            raise DataIdError(f"{given} contains a NUL character, which databases cannot store.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise DataIdError(f"{given} is not valid Unicode (lone surrogate).") from None
        return str(value)
    if dtype == "int":
        if isinstance(value, bool):
            raise DataIdError(f"{given} is a bool; expected int.")
        try:
            number = operator.index(value)
        except TypeError:
            raise DataIdError(f"{given} has the wrong type; expected int.") from None
        if not _INT_MIN <= number <= _INT_MAX:
            raise DataIdError(f"{given} does not fit in a 64-bit signed integer.")
        return number
    if dtype == "float":
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise DataIdError(f"{given} has the wrong type; expected float.")
        try:
            real = float(value)
        except OverflowError:
            raise DataIdError(f"{given} is too large for a float.") from None
        if math.isnan(real):
            raise DataIdError(f"{given} is NaN, which not every database stores; use None.")
        return real
    if dtype == "bool":
        if not isinstance(value, bool):
            raise DataIdError(f"{given} has the wrong type; expected bool.")
        return value
    if not isinstance(value, datetime.datetime):
        raise DataIdError(f"{given} has the wrong type; expected a timezone-aware datetime.")
    if value.tzinfo is None or value.utcoffset() is None:
        raise DataIdError(
            f"{given} has no time zone; give an aware datetime (e.g. tzinfo=datetime.UTC)."
        )
    try:
        return value.astimezone(datetime.UTC).replace(tzinfo=None)
    except OverflowError:
        raise DataIdError(f"{given} is out of range in UTC.") from None


def from_db(field: DimensionField, value: Any) -> Any:
    """A column value as a record holds it (datetimes become aware, in UTC)."""
    if value is not None and field.dtype == "datetime":
        return value.replace(tzinfo=datetime.UTC)
    return value
