"""databutler: a data butler for scientific data.

A registry (an SQL database) knows every dataset; datastores hold the bytes;
the registry–datastore bridge records which datastore holds which dataset.
"""

import importlib as _importlib
import typing as _typing

from ._collection_type import CollectionType, Timespan
from ._dataset_id import DatasetIdFactory, DatasetIdGenEnum
from ._dataset_ref import DatasetId, DatasetRef, UnresolvedRef
from ._dataset_type import DatasetType, StorageClass
from ._exceptions import (
    AlreadyExistsError,
    AmbiguousDatasetError,
    ArgumentConflictError,
    ArgumentTypeError,
    ArtifactCorruptedError,
    CollectionError,
    ConcurrentUpdateError,
    ConfigurationError,
    DatabaseConflictError,
    DatabaseConnectionError,
    DatabaseError,
    DatabaseStorageError,
    DatabutlerError,
    DataIdError,
    DatastoreAbilityError,
    DimensionConfigError,
    ExportFormatError,
    ExpressionError,
    IncompatibleVersionError,
    InvalidArgumentError,
    InvalidDatasetIdError,
    InvalidNameError,
    ManagerMismatchError,
    MissingCollectionError,
    MissingManagerError,
    PositionError,
    ReadOnlyDatabaseError,
    RepositoryError,
    RepositoryNotFoundError,
    SchemaAlreadyDefinedError,
    SourceFileError,
    SourceNotFoundError,
    SourcePermissionError,
    StorageClassError,
    TransactionAbortedError,
    TransferModeError,
    UnknownDimensionError,
    UnsafePathError,
)
from ._file_dataset import FileDataset
from .dimensions import DataCoordinate, DimensionGroup, DimensionUniverse
from .storage_classes import StorageClassRegistry
from .transaction import DatastoreTransaction

if _typing.TYPE_CHECKING:
    from ._exceptions import ConflictError, OrphanedRecordError
    from .butler import Butler, DatasetExistence, DatasetNotFoundError, VerifyReport
    from .registry.queries import DatasetAssociation

#: Names imported on first use: they need SQLAlchemy, which "import databutler" avoids.
_LAZY = {
    "ConflictError": "._exceptions",
    "OrphanedRecordError": "._exceptions",
    "Butler": ".butler",
    "DatasetAssociation": ".registry.queries",
    "DatasetExistence": ".butler",
    "DatasetNotFoundError": ".butler",
    "VerifyReport": ".butler",
}


def __getattr__(name: str) -> _typing.Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "AlreadyExistsError",
    "AmbiguousDatasetError",
    "ArgumentConflictError",
    "ArgumentTypeError",
    "ArtifactCorruptedError",
    "Butler",
    "CollectionError",
    "CollectionType",
    "ConcurrentUpdateError",
    "ConfigurationError",
    "ConflictError",
    "DataCoordinate",
    "DataIdError",
    "DatabaseConflictError",
    "DatabaseConnectionError",
    "DatabaseError",
    "DatabaseStorageError",
    "DatabutlerError",
    "DatasetAssociation",
    "DatasetExistence",
    "DatasetId",
    "DatasetIdFactory",
    "DatasetIdGenEnum",
    "DatasetNotFoundError",
    "DatasetRef",
    "DatasetType",
    "DatastoreAbilityError",
    "DatastoreTransaction",
    "DimensionConfigError",
    "DimensionGroup",
    "DimensionUniverse",
    "ExportFormatError",
    "ExpressionError",
    "FileDataset",
    "IncompatibleVersionError",
    "InvalidArgumentError",
    "InvalidDatasetIdError",
    "InvalidNameError",
    "ManagerMismatchError",
    "MissingCollectionError",
    "MissingManagerError",
    "OrphanedRecordError",
    "PositionError",
    "ReadOnlyDatabaseError",
    "RepositoryError",
    "RepositoryNotFoundError",
    "SchemaAlreadyDefinedError",
    "SourceFileError",
    "SourceNotFoundError",
    "SourcePermissionError",
    "StorageClass",
    "StorageClassError",
    "StorageClassRegistry",
    "Timespan",
    "TransactionAbortedError",
    "TransferModeError",
    "UnknownDimensionError",
    "UnresolvedRef",
    "UnsafePathError",
    "VerifyReport",
]

__version__ = "0.1.0"
