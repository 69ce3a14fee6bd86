"""databutler: a data butler for scientific data.

A registry (an SQL database) knows every dataset; datastores hold the bytes;
the registry–datastore bridge records which datastore holds which dataset.
"""

from ._dataset_ref import DatasetId, DatasetRef
from ._exceptions import (
    AmbiguousDatasetError,
    ConfigurationError,
    ConflictError,
    DatabaseConflictError,
    DatabaseError,
    DatabutlerError,
    IncompatibleVersionError,
    InvalidDatasetIdError,
    InvalidNameError,
    ManagerMismatchError,
    MissingManagerError,
    OrphanedRecordError,
    ReadOnlyDatabaseError,
    SchemaAlreadyDefinedError,
    TransactionAbortedError,
)
from .dimensions import DimensionUniverse
from .transaction import DatastoreTransaction

__all__ = [
    "AmbiguousDatasetError",
    "ConfigurationError",
    "ConflictError",
    "DatabaseConflictError",
    "DatabaseError",
    "DatabutlerError",
    "DatasetId",
    "DatasetRef",
    "DatastoreTransaction",
    "DimensionUniverse",
    "IncompatibleVersionError",
    "InvalidDatasetIdError",
    "InvalidNameError",
    "ManagerMismatchError",
    "MissingManagerError",
    "OrphanedRecordError",
    "ReadOnlyDatabaseError",
    "SchemaAlreadyDefinedError",
    "TransactionAbortedError",
]

__version__ = "0.1.0"
