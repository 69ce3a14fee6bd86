"""Small values the `Butler` hands out: existence flags and its lookup error."""

from __future__ import annotations

import enum

from .._exceptions import DatabutlerError

__all__ = ["DatasetExistence", "DatasetNotFoundError"]


class DatasetNotFoundError(DatabutlerError, LookupError):
    """No dataset matches the type, data ID and collections asked for."""


class DatasetExistence(enum.Flag):
    """What is known about a dataset: registry entry, datastore record, readable artifact.

    A value is true only when the dataset can be read: `VERIFIED` (its
    artifact was found) or `KNOWN` (``full_check=False``: registered and
    recorded, the artifact assumed there). Every other combination, a
    `RECORDED`-only dataset (in the registry, not stored) among them, is
    false, as in daf_butler. Test single flags with ``in``
    (``DatasetExistence.RECORDED in flags``), not with ``&``: the result of
    ``&`` is itself a value and follows the same rule.
    """

    NONE = 0
    RECORDED = enum.auto()
    """The registry has the dataset."""
    DATASTORE = enum.auto()
    """The datastore has a record of it."""
    ARTIFACT = enum.auto()
    """Its artifact was found (checked only with ``full_check``)."""
    ASSUMED = enum.auto()
    """Its artifact was not looked for (``full_check=False``); assumed there from the record."""
    VERIFIED = RECORDED | DATASTORE | ARTIFACT
    """Registered, recorded, and its artifact found."""
    KNOWN = RECORDED | DATASTORE | ASSUMED
    """Registered and recorded; the artifact was not checked."""

    def __bool__(self) -> bool:
        value = self._value_
        stored = _RECORDED_AND_STORED
        return value & stored == stored and bool(value & _ARTIFACT_OR_ASSUMED)


_RECORDED_AND_STORED = DatasetExistence.RECORDED.value | DatasetExistence.DATASTORE.value
_ARTIFACT_OR_ASSUMED = DatasetExistence.ARTIFACT.value | DatasetExistence.ASSUMED.value
