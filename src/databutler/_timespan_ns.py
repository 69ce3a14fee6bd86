"""Instants as integer nanoseconds: the one storage scale of every time range.

CALIBRATION validity ranges and the ``timespan`` fields of dimension records
are stored as two ``BIGINT`` columns holding a half-open range ``[begin,
end)`` in integer nanoseconds since 1970-01-01T00:00:00 UTC. An unbounded
side is stored as a sentinel (`MIN_NS` for "since always", `MAX_NS` for
"forever"), so that ``begin < other_end AND other_begin < end`` is the
overlap test on every backend, with no special case for open ranges.
Python datetimes have microsecond resolution, so stored values are whole
microseconds (multiples of 1000).
"""

from __future__ import annotations

import datetime

from ._exceptions import InvalidArgumentError

__all__ = ["EPOCH", "MAX_NS", "MIN_NS", "from_ns", "to_ns"]

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
"""The zero of the scale."""

MIN_NS = -(2**62)
"""Stored for an unbounded begin."""

MAX_NS = 2**62
"""Stored for an unbounded end."""

_MICROSECOND = datetime.timedelta(microseconds=1)


def to_ns(when: datetime.datetime | None, *, unbounded: int) -> int:
    """A time-zone-aware instant as integer nanoseconds since 1970 (``unbounded`` for `None`).

    Raises `~databutler.InvalidArgumentError` for an instant the scale cannot
    hold (before 1823-11-12 or after 2116-02-20 UTC; use an unbounded side).
    """
    if when is None:
        return unbounded
    value = (when - EPOCH) // _MICROSECOND * 1000
    if not MIN_NS < value < MAX_NS:
        raise InvalidArgumentError(
            f"The time {when.isoformat()} is outside the range a time range can store "
            f"({from_ns(MIN_NS + 1000):%Y-%m-%d} to {from_ns(MAX_NS - 1000):%Y-%m-%d} UTC); "
            "leave that side unbounded instead."
        )
    return value


def from_ns(value: int) -> datetime.datetime | None:
    """The inverse of `to_ns` (`None` for the sentinels)."""
    if value <= MIN_NS or value >= MAX_NS:
        return None
    return EPOCH + datetime.timedelta(microseconds=value // 1000)
