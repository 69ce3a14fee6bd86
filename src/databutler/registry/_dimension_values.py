"""Checking dimension record values and converting them to and from columns."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

import sqlalchemy

from ..dimensions import DimensionField, check_value

__all__ = ["COLUMN_TYPES", "from_db", "preview", "to_db"]

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
    """Check ``value`` against ``field``'s type and convert it to a column value.

    The check is `~databutler.dimensions.check_value`, the one data IDs use
    too; datetimes are stored naive, in UTC.
    """
    if value is None:
        return None
    checked = check_value(field.dtype, field.length, value, where)
    if field.dtype == "datetime":
        return checked.replace(tzinfo=None)
    return checked


def from_db(field: DimensionField, value: Any) -> Any:
    """A column value as a record holds it (datetimes become aware, in UTC)."""
    if value is not None and field.dtype == "datetime":
        return value.replace(tzinfo=datetime.UTC)
    return value
