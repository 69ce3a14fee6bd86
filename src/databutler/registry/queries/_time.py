"""Time literals of the ``where`` language: ``T'2026-11-29T12:00:00'``, ``T'60000.5/mjd'``.

The text inside ``T'...'`` is daf_butler's: ``[format/]value[/scale]``.

- ``value`` is an ISO date or date and time (``2026-11-29``,
  ``2026-11-29T12:00:00.5``, a space for the ``T``; ``Z`` or ``+00:00`` at
  the end means UTC) or a number (``60000.5``).
- ``format`` is ``iso`` or ``isot`` for ISO text, ``mjd`` (days since
  1858-11-17), ``jd`` (Julian days) or ``unix`` (seconds since 1970) for a
  number; without one, text is ISO and a number is MJD.
- ``scale`` is ``utc``, ``tai`` or ``tt``; without one ISO and ``unix``
  times are UTC, MJD and JD times TAI, as in daf_butler (astropy).

The instant becomes a naive UTC `datetime.datetime` to the microsecond, the
form databutler stores datetimes in, so it compares with datetime columns
and bind values alike on every backend. TAI and TT times are converted with
the leap seconds announced up to 2017 (TAI - UTC = 37 s since then); before
1972, when UTC started counting whole leap seconds, they are refused.
"""

from __future__ import annotations

import datetime
import decimal
import re

from ..._leap_seconds import utc_from_tai
from ..._timespan_ns import MAX_NS, MIN_NS, from_ns

__all__ = ["MAX_NS", "MIN_NS", "ns_of", "parse_time"]


def ns_of(when: datetime.datetime) -> int:
    """Integer nanoseconds since 1970 UTC of an instant (aware, or naive UTC), the scale
    timespans are stored in (`databutler._timespan_ns`).

    Raises `ValueError` for an instant the scale cannot hold (the message says
    which years it can).
    """
    if when.tzinfo is not None:
        when = when.astimezone(datetime.UTC).replace(tzinfo=None)
    value = (when - _UNIX_EPOCH) // datetime.timedelta(microseconds=1) * 1000
    if not MIN_NS < value < MAX_NS:
        raise ValueError(
            f"the time {when.isoformat()} UTC is outside the range timespans are stored in "
            f"({from_ns(MIN_NS + 1000):%Y-%m-%d} to {from_ns(MAX_NS - 1000):%Y-%m-%d} UTC); "
            "leave that side of a timespan unbounded (NULL) instead"
        )
    return value


_ISO = re.compile(
    r"(?P<date>\d{4}-\d{1,2}-\d{1,2})"
    r"(?:[ Tt](?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d*))?)?)?"
    r"(?P<zone>Z|z|\+00:00)?"
)
_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
_NUMBER_FORMATS = ("mjd", "jd", "unix")
_TEXT_FORMATS = ("iso", "isot")
_SCALES = ("utc", "tai", "tt")
_EXAMPLES = "T'2026-11-29T12:00:00', T'2026-11-29 12:00:00/tai' or T'61008.5/mjd'"

_TT_MINUS_TAI = datetime.timedelta(seconds=32.184)
_MJD_EPOCH = datetime.datetime(1858, 11, 17)
_UNIX_EPOCH = datetime.datetime(1970, 1, 1)
_JD_MINUS_MJD = decimal.Decimal("2400000.5")
_MICROSECONDS = {"mjd": 86_400_000_000, "jd": 86_400_000_000, "unix": 1_000_000}


def parse_time(text: str) -> datetime.datetime:
    """The instant a time literal's text names, as a naive UTC datetime.

    Raises
    ------
    ValueError
        If the text is not such a time; the message says what is wrong and
        how to write it.
    """
    parts = text.strip().split("/")
    formats = (*_NUMBER_FORMATS, *_TEXT_FORMATS)
    fmt = scale = None
    if len(parts) > 1 and parts[0].lower() in formats:  # daf_butler's 'mjd/60000.5[/tai]'
        fmt = parts.pop(0).lower()
    elif len(parts) > 1 and parts[1].lower() in formats:  # also '60000.5/mjd[/tai]'
        fmt = parts.pop(1).lower()
    if len(parts) > 1 and fmt is None and parts[0].isalpha():
        raise ValueError(
            f"the time {text!r} has the unknown time format {parts[0]!r}; use iso, isot, mjd, "
            f"jd or unix (as in {_EXAMPLES})"
        )
    if len(parts) > 2 or not parts[0]:
        raise ValueError(
            f"the time {text!r} is not [format/]value[/scale]; write it as {_EXAMPLES}"
        )
    value = parts[0].strip()
    if len(parts) == 2:
        scale = parts[1].lower()
    if scale is not None and scale not in _SCALES:
        raise ValueError(
            f"the time {text!r} has the unknown time scale {scale!r}; use utc, tai or tt "
            f"(as in {_EXAMPLES})"
        )
    if fmt is None:
        fmt = "mjd" if _NUMBER.fullmatch(value) else "isot"
    if fmt in _TEXT_FORMATS:
        when = _iso(value, text)
        scale = scale or "utc"
    else:
        if not _NUMBER.fullmatch(value):
            raise ValueError(f"the time {text!r} is not a number, as the {fmt} format needs")
        when = _number(value, fmt, text)
        scale = scale or ("utc" if fmt == "unix" else "tai")
    if scale == "tt":
        try:
            when -= _TT_MINUS_TAI
        except OverflowError:  # before year 1 as TAI: before 1972 all the more
            when = datetime.datetime.min
        scale = "tai"
    if scale == "tai":
        when = _tai_to_utc(when, text)
    return when


def _iso(value: str, text: str) -> datetime.datetime:
    match = _ISO.fullmatch(value)
    if match is None:
        if re.search(r"[+-]\d\d:?\d\d$", value):
            raise ValueError(
                f"the time {text!r} has a UTC offset; give it in UTC (or end it with Z, or "
                f"give a scale: /tai), as in {_EXAMPLES}"
            )
        raise ValueError(
            f"the time {text!r} is not an ISO date and time (YYYY-MM-DD[THH:MM[:SS[.ffffff]]]) "
            f"nor a number; write it as {_EXAMPLES}"
        )
    fraction = match.group("fraction") or ""
    try:
        year, month, day = (int(part) for part in match.group("date").split("-"))
        when = datetime.datetime(
            year,
            month,
            day,
            int(match.group("hour") or 0),
            int(match.group("minute") or 0),
            int(match.group("second") or 0),
        )
    except ValueError as exc:
        raise ValueError(f"the time {text!r} is not a valid date and time ({exc})") from None
    microseconds = round(decimal.Decimal(f"0.{fraction or '0'}") * 1_000_000)
    return _shift(when, microseconds, text)


def _number(value: str, fmt: str, text: str) -> datetime.datetime:
    number = decimal.Decimal(value)
    if fmt == "jd":
        number -= _JD_MINUS_MJD
    epoch = _UNIX_EPOCH if fmt == "unix" else _MJD_EPOCH
    return _shift(epoch, round(number * _MICROSECONDS[fmt]), text)


def _shift(when: datetime.datetime, microseconds: int, text: str) -> datetime.datetime:
    try:
        return when + datetime.timedelta(microseconds=microseconds)
    except OverflowError:
        raise ValueError(
            f"the time {text!r} is outside the years 1 to 9999 that can be compared"
        ) from None


def _tai_to_utc(tai: datetime.datetime, text: str) -> datetime.datetime:
    try:
        return utc_from_tai(tai)
    except ValueError:
        raise ValueError(
            f"the time {text!r} is a TAI time before 1972, which is not converted to UTC; "
            "give it in UTC (/utc)"
        ) from None
