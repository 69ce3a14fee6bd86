"""The one check of dimension values: data ID keys and dimension record fields alike.

Everything a value must be for every database to store and compare it the
same way is decided here, once, so that data IDs (`DataCoordinate`) and
dimension records (the registry) can never disagree about a value.
"""

from __future__ import annotations

import datetime
import math
import numbers
import operator
from typing import Any

from .._collection_type import Timespan
from ._exceptions import DataIdError

__all__ = ["INT_MAX", "INT_MIN", "check_value", "describe_value"]

INT_MIN = -(2**63)
INT_MAX = 2**63 - 1

_PREVIEW = 80


def describe_value(value: Any) -> str:
    """``repr(value)`` (shortened) and its type, for messages."""
    text = repr(value)
    if len(text) > _PREVIEW:
        text = text[: _PREVIEW - 3] + "..."
    return f"{text} ({type(value).__name__})"


def check_value(dtype: str, length: int | None, value: Any, what: str) -> Any:
    """Return ``value`` as a column of type ``dtype`` holds it, or say why it cannot be.

    Parameters
    ----------
    dtype : `str`
        ``string``, ``int``, ``float``, ``bool``, ``datetime``,
        ``timespan``, ``region`` or ``bytes``.
    length : `int`, optional
        The longest string (in characters) or byte string (in bytes) the
        column holds.
    value : `~typing.Any`
        The value (not `None`: the caller decides whether a field may be empty).
    what : `str`
        What the value is, for messages: ``The detector record: field 'id'``
        (the value follows), or with ``{value}`` where the value goes
        (``Data ID value {value} for 'detector'``).

    Returns
    -------
    value : `~typing.Any`
        ``int`` for ``int`` (anything with ``__index__``, not `bool`), `str`
        for ``string`` (non-empty, valid UTF-8 without NUL, within
        ``length``), `float` (finite or infinite, not NaN), `bool`, or an
        aware `datetime.datetime` in UTC.

    Raises
    ------
    DataIdError
        If the value has the wrong type or cannot be stored; the message
        names ``what``, the value and the rule.
    """
    shown = describe_value(value)
    given = what.replace("{value}", shown) if "{value}" in what else f"{what}: {shown}"
    if dtype == "int":
        if isinstance(value, bool):
            raise DataIdError(f"{given} is a bool; expected int.")
        try:
            number = operator.index(value)
        except TypeError:
            raise DataIdError(f"{given} has the wrong type; expected int.") from None
        if not INT_MIN <= number <= INT_MAX:
            raise DataIdError(
                f"{given} does not fit in a 64-bit signed integer ({INT_MIN} to {INT_MAX})."
            )
        return number
    if dtype == "string":
        if not isinstance(value, str):
            raise DataIdError(f"{given} has the wrong type; expected str.")
        if not value:
            raise DataIdError(f"{given} is empty; expected a non-empty str.")
        if length is not None and len(value) > length:
            raise DataIdError(
                f"{given} is longer than {length} characters ({len(value)}); shorten it."
            )
        if "\x00" in value:
            raise DataIdError(
                f"{given} contains a NUL character, which databases cannot store; remove it."
            )
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise DataIdError(
                f"{given} is not valid Unicode (it has a lone surrogate); give valid text."
            ) from None
        return str(value)
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
    if dtype == "timespan":
        if not isinstance(value, Timespan):
            raise DataIdError(
                f"{given} has the wrong type; expected a databutler.Timespan "
                "(Timespan(begin, end), either bound None for unbounded)."
            )
        return value
    if dtype in ("region", "bytes"):
        if not isinstance(value, bytes | bytearray | memoryview):
            hint = " (a region's encoded bytes, e.g. sphgeom's region.encode())"
            raise DataIdError(
                f"{given} has the wrong type; expected bytes{hint if dtype == 'region' else ''}."
            )
        data = bytes(value)
        if dtype == "region" and not data:
            raise DataIdError(f"{given} is empty; a region is non-empty bytes (or None).")
        if length is not None and len(data) > length:
            raise DataIdError(f"{given} is longer than {length} bytes ({len(data)}).")
        return data
    if dtype != "datetime":
        raise DataIdError(f"{given}: unknown value type {dtype!r}.")
    if not isinstance(value, datetime.datetime):
        raise DataIdError(f"{given} has the wrong type; expected a timezone-aware datetime.")
    if value.tzinfo is None or value.utcoffset() is None:
        raise DataIdError(
            f"{given} has no time zone; give an aware datetime (e.g. tzinfo=datetime.UTC)."
        )
    try:
        return value.astimezone(datetime.UTC)
    except OverflowError:
        raise DataIdError(f"{given} is out of range in UTC.") from None
