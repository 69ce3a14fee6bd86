"""Checking dimension record values and converting them to and from columns."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

import sqlalchemy

from .._collection_type import Timespan
from .._timespan_ns import MAX_NS, MIN_NS, from_ns, to_ns
from ..dimensions import DimensionField, check_value

__all__ = [
    "COLUMN_TYPES",
    "from_db",
    "preview",
    "timespan_columns",
    "timespan_from_db",
    "timespan_to_db",
    "to_db",
]

COLUMN_TYPES: dict[str, type] = {
    "string": sqlalchemy.String,
    "int": sqlalchemy.BigInteger,
    "float": sqlalchemy.Float,
    "bool": sqlalchemy.Boolean,
    "datetime": sqlalchemy.DateTime,
    # Each of a timespan field's two columns (see timespan_columns).
    "timespan": sqlalchemy.BigInteger,
    "region": sqlalchemy.LargeBinary,
    "bytes": sqlalchemy.LargeBinary,
}

_PREVIEW_LENGTH = 160


def preview(record: object) -> str:
    text = repr(dict(record)) if isinstance(record, Mapping) else repr(record)
    return text if len(text) <= _PREVIEW_LENGTH else text[: _PREVIEW_LENGTH - 3] + "..."


def timespan_columns(name: str) -> tuple[str, str]:
    """The two columns of timespan field ``name``: ``name_begin`` and ``name_end``."""
    return f"{name}_begin", f"{name}_end"


def timespan_to_db(value: Timespan | None) -> tuple[int | None, int | None]:
    """A timespan's two column values: integer ns since 1970 UTC, sentinels when unbounded.

    `None` (no timespan) is stored as two NULLs.
    """
    if value is None:
        return None, None
    return to_ns(value.begin, unbounded=MIN_NS), to_ns(value.end, unbounded=MAX_NS)


def timespan_from_db(begin: int | None, end: int | None) -> Timespan | None:
    """The inverse of `timespan_to_db`."""
    if begin is None or end is None:
        return None
    return Timespan(from_ns(begin), from_ns(end))


def to_db(field: DimensionField, value: Any, where: str) -> Any:
    """Check ``value`` against ``field``'s type and convert it to a column value.

    The check is `~databutler.dimensions.check_value`, the one data IDs use
    too; datetimes are stored naive, in UTC. A timespan comes back as a
    checked `~databutler.Timespan`: its two columns are made by
    `timespan_to_db`.
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
    if value is not None and field.dtype in ("region", "bytes"):
        return bytes(value)
    return value
