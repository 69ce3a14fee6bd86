"""Kinds of collections, and the validity ranges of calibrations."""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass

from ._exceptions import ArgumentTypeError, InvalidArgumentError

__all__ = ["CollectionType", "Timespan"]


class CollectionType(enum.IntEnum):
    """The kinds of collection a registry holds."""

    RUN = 1
    """Where datasets are born: each dataset belongs to exactly one RUN."""

    TAGGED = 2
    """A hand-picked set of datasets (at most one per dataset type and data ID)."""

    CHAINED = 3
    """An ordered list of other collections, searched in order."""

    CALIBRATION = 4
    """Datasets each valid over a `Timespan`."""

    @classmethod
    def from_name(cls, name: str) -> CollectionType:
        """The type named ``name`` (case-insensitive).

        Raises
        ------
        InvalidArgumentError
            If there is none, listing the valid names (a `ValueError`).
        """
        try:
            return cls[name.upper()]
        except (KeyError, AttributeError):
            valid = ", ".join(t.name for t in cls)
            raise InvalidArgumentError(
                f"Unknown collection type {name!r}; valid types are {valid}."
            ) from None


def _utc(value: datetime.datetime | None, which: str) -> datetime.datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime.datetime):
        raise ArgumentTypeError(f"Timespan {which} must be a datetime or None, got {value!r}.")
    if value.tzinfo is None:
        raise InvalidArgumentError(
            f"Timespan {which} {value.isoformat()} has no time zone; give an aware datetime "
            "(e.g. with tzinfo=datetime.UTC)."
        )
    try:
        return value.astimezone(datetime.UTC)
    except OverflowError:
        raise InvalidArgumentError(
            f"Timespan {which} {value.isoformat()} is outside the years 1-9999 in UTC; give a "
            "time within them (use None for an unbounded side)."
        ) from None


@dataclass(frozen=True, slots=True)
class Timespan:
    """A half-open time interval ``[begin, end)``; `None` means unbounded on that side.

    Parameters
    ----------
    begin : `datetime.datetime` or `None`
        Start (inclusive), time-zone aware.
    end : `datetime.datetime` or `None`
        End (exclusive), time-zone aware.

    Raises
    ------
    InvalidArgumentError
        If ``end`` is not after ``begin``, or a bound has no time zone (a `ValueError`).
    ArgumentTypeError
        If a bound is not a `datetime.datetime` (a `TypeError`).
    """

    begin: datetime.datetime | None
    end: datetime.datetime | None

    def __post_init__(self) -> None:
        begin, end = _utc(self.begin, "begin"), _utc(self.end, "end")
        if begin is not None and end is not None and end <= begin:
            raise InvalidArgumentError(
                f"Timespan end {end.isoformat()} is not after its begin {begin.isoformat()}."
            )
        object.__setattr__(self, "begin", begin)
        object.__setattr__(self, "end", end)

    def __str__(self) -> str:
        """``[begin, end)`` in ISO 8601 UTC, an unbounded side shown as ``-inf``/``+inf``."""
        begin = self.begin.isoformat() if self.begin is not None else "-inf"
        end = self.end.isoformat() if self.end is not None else "+inf"
        return f"[{begin}, {end})"

    def overlaps(self, other: Timespan) -> bool:
        """Whether the two intervals share any instant."""
        starts_before_other_ends = other.end is None or self.begin is None or self.begin < other.end
        ends_after_other_starts = self.end is None or other.begin is None or other.begin < self.end
        return starts_before_other_ends and ends_after_other_starts

    def contains(self, when: datetime.datetime) -> bool:
        """Whether the instant ``when`` (time-zone aware) is inside."""
        moment = _utc(when, "instant")
        assert moment is not None
        return (self.begin is None or self.begin <= moment) and (
            self.end is None or moment < self.end
        )
