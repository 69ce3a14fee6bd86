"""The documented abstract layer between the registry and datastores.

Names are kept verbatim from the documented API so that code written against
it ports unchanged.
"""

from ..._dataset_ref import DatasetId, DatasetRef
from ..._exceptions import AmbiguousDatasetError, IncompatibleVersionError
from ._bridge import (
    DatasetIdRef,
    DatastoreRegistryBridge,
    DatastoreRegistryBridgeManager,
    FakeDatasetRef,
    FindRider,
    StoredDatastoreItemInfoFactory,
)
from ._database import Database, StaticTablesContext
from ._database_connections import Deferred, GuardChangedError
from ._datasets import DatasetRecordStorageManager
from ._opaque import OpaqueTableStorage, OpaqueTableStorageManager
from ._versioning import VersionedExtension, VersionTuple

__all__ = [
    "AmbiguousDatasetError",
    "Database",
    "DatasetId",
    "DatasetIdRef",
    "DatasetRecordStorageManager",
    "DatasetRef",
    "DatastoreRegistryBridge",
    "DatastoreRegistryBridgeManager",
    "Deferred",
    "FakeDatasetRef",
    "FindRider",
    "GuardChangedError",
    "IncompatibleVersionError",
    "OpaqueTableStorage",
    "OpaqueTableStorageManager",
    "StaticTablesContext",
    "StoredDatastoreItemInfoFactory",
    "VersionTuple",
    "VersionedExtension",
]
