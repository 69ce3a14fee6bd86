"""Datastores: where datasets' bytes are kept, and how."""

from .._file_dataset import FileDataset
from ._base import DatasetNotStoredError, Datastore, DatastoreAbilities, DatastoreAbilityError
from ._maintenance import (
    PROBLEM_KINDS,
    EmptyTrashResult,
    StorageCheck,
    StorageProblem,
    TrashFailure,
)
from .chained import ChainedDatastore, Constraints, DatasetTypeNotSupportedError
from .file import FileDatastore, StoredFileInfo
from .memory import InMemoryDatastore

from .config import KINDS, DatastoreFactory, datastore_from_config, register_kind  # isort: skip

__all__ = [
    "KINDS",
    "PROBLEM_KINDS",
    "ChainedDatastore",
    "Constraints",
    "DatasetNotStoredError",
    "DatasetTypeNotSupportedError",
    "Datastore",
    "DatastoreAbilities",
    "DatastoreAbilityError",
    "DatastoreFactory",
    "EmptyTrashResult",
    "FileDataset",
    "FileDatastore",
    "InMemoryDatastore",
    "StorageCheck",
    "StorageProblem",
    "StoredFileInfo",
    "TrashFailure",
    "datastore_from_config",
    "register_kind",
]
