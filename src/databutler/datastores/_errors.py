"""Errors of the datastores that modules below `Datastore` raise too (public from
``databutler.datastores``)."""

from __future__ import annotations

from .._exceptions import DatabutlerError

__all__ = ["DatasetNotStoredError"]


class DatasetNotStoredError(DatabutlerError, LookupError):
    """The datastore does not hold the dataset asked for."""
