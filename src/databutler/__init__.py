"""databutler: a data butler for scientific data.

A registry (an SQL database) knows every dataset; datastores hold the bytes;
the registry–datastore bridge records which datastore holds which dataset.
"""

from ._collection_type import CollectionType, Timespan
from ._dataset_id import DatasetIdFactory, DatasetIdGenEnum
from ._dataset_ref import DatasetId, DatasetRef
from ._dataset_type import DatasetType, StorageClass
from ._exceptions import (
    AmbiguousDatasetError,
    CollectionError,
    ConfigurationError,
    ConflictError,
    DatabaseConflictError,
    DatabaseError,
    DatabutlerError,
    DataIdError,
    DimensionConfigError,
    IncompatibleVersionError,
    InvalidDatasetIdError,
    InvalidNameError,
    ManagerMismatchError,
    MissingCollectionError,
    MissingManagerError,
    OrphanedRecordError,
    ReadOnlyDatabaseError,
    SchemaAlreadyDefinedError,
    TransactionAbortedError,
    UnknownDimensionError,
)
from .dimensions import DataCoordinate, DimensionGroup, DimensionUniverse
from .transaction import DatastoreTransaction

__all__ = [
    "AmbiguousDatasetError",
    "CollectionError",
    "CollectionType",
    "ConfigurationError",
    "ConflictError",
    "DataCoordinate",
    "DataIdError",
    "DatabaseConflictError",
    "DatabaseError",
    "DatabutlerError",
    "DatasetId",
    "DatasetIdFactory",
    "DatasetIdGenEnum",
    "DatasetRef",
    "DatasetType",
    "DatastoreTransaction",
    "DimensionConfigError",
    "DimensionGroup",
    "DimensionUniverse",
    "IncompatibleVersionError",
    "InvalidDatasetIdError",
    "InvalidNameError",
    "ManagerMismatchError",
    "MissingCollectionError",
    "MissingManagerError",
    "OrphanedRecordError",
    "ReadOnlyDatabaseError",
    "SchemaAlreadyDefinedError",
    "StorageClass",
    "Timespan",
    "TransactionAbortedError",
    "UnknownDimensionError",
]

__version__ = "0.1.0"
