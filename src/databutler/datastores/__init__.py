"""Datastores: where datasets' bytes are kept, and how."""

from ._base import DatasetNotStoredError, Datastore
from .memory import InMemoryDatastore

__all__ = ["DatasetNotStoredError", "Datastore", "InMemoryDatastore"]
