"""Small values the `Butler` hands out: existence flags and its lookup error."""

from __future__ import annotations

import enum

from .._exceptions import DatabutlerError

__all__ = ["DatasetExistence", "DatasetNotFoundError"]


class DatasetNotFoundError(DatabutlerError, LookupError):
    """No dataset matches the type, data ID and collections asked for."""


class DatasetExistence(enum.Flag):
    """What is known about a dataset: registry entry, datastore record, readable artifact."""

    NONE = 0
    RECORDED = enum.auto()
    """The registry has the dataset."""
    DATASTORE = enum.auto()
    """The datastore has a record of it."""
    ARTIFACT = enum.auto()
    """Its artifact was found (checked only with ``full_check``)."""
    VERIFIED = RECORDED | DATASTORE | ARTIFACT
