"""TAI and UTC: the leap seconds between them, and the conversions both ways.

Daf_butler keeps times in TAI (its exports and registries write them so);
databutler keeps them in UTC, to the microsecond. Leap seconds are those
announced up to 2017 (TAI - UTC = 37 s since then); before 1972 UTC did not
count whole leap seconds, and nothing here converts such times.
"""

from __future__ import annotations

import datetime

__all__ = ["tai_from_utc", "utc_from_tai"]

# TAI - UTC in seconds from each UTC date on (IERS Bulletin C).
_LEAP_SECONDS = (
    ((1972, 1, 1), 10), ((1972, 7, 1), 11), ((1973, 1, 1), 12), ((1974, 1, 1), 13),
    ((1975, 1, 1), 14), ((1976, 1, 1), 15), ((1977, 1, 1), 16), ((1978, 1, 1), 17),
    ((1979, 1, 1), 18), ((1980, 1, 1), 19), ((1981, 7, 1), 20), ((1982, 7, 1), 21),
    ((1983, 7, 1), 22), ((1985, 7, 1), 23), ((1988, 1, 1), 24), ((1990, 1, 1), 25),
    ((1991, 1, 1), 26), ((1992, 7, 1), 27), ((1993, 7, 1), 28), ((1994, 7, 1), 29),
    ((1996, 1, 1), 30), ((1997, 7, 1), 31), ((1999, 1, 1), 32), ((2006, 1, 1), 33),
    ((2009, 1, 1), 34), ((2012, 7, 1), 35), ((2015, 7, 1), 36), ((2017, 1, 1), 37),
)  # fmt: skip

#: (the TAI reading from which TAI - UTC is ``seconds``, ``seconds``), in order, naive.
_TAI_STARTS = tuple(
    (datetime.datetime(*day) + datetime.timedelta(seconds=seconds), seconds)
    for day, seconds in _LEAP_SECONDS
)


def _offset(tai: datetime.datetime) -> int:
    reading = tai.replace(tzinfo=None)
    offset = None
    for start, seconds in _TAI_STARTS:
        if reading >= start:
            offset = seconds
    if offset is None:
        raise ValueError("a TAI time before 1972 is not converted to UTC")
    return offset


def utc_from_tai(tai: datetime.datetime) -> datetime.datetime:
    """The UTC reading of the TAI reading ``tai`` (naive or aware; the result alike).

    Raises
    ------
    ValueError
        If ``tai`` is before 1972.
    """
    return tai - datetime.timedelta(seconds=_offset(tai))


def tai_from_utc(utc: datetime.datetime) -> datetime.datetime:
    """The TAI reading of the UTC reading ``utc`` (naive or aware; the result alike).

    Raises
    ------
    ValueError
        If ``utc`` is before 1972.
    """
    reading = utc.replace(tzinfo=None)
    offset = None
    for start, seconds in _TAI_STARTS:
        if reading + datetime.timedelta(seconds=seconds) >= start:
            offset = seconds
    if offset is None:
        raise ValueError("a UTC time before 1972 is not converted to TAI")
    return utc + datetime.timedelta(seconds=offset)
