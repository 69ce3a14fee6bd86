"""Datastores: where datasets' bytes are kept, and how."""

from ._base import DatasetNotStoredError, Datastore
from .file import FileDatastore, StoredFileInfo
from .memory import InMemoryDatastore

__all__ = [
    "DatasetNotStoredError",
    "Datastore",
    "FileDatastore",
    "InMemoryDatastore",
    "StoredFileInfo",
]
