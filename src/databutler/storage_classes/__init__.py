"""Storage classes: what a dataset is in memory, how it is written, what it converts to.

A `StorageClass` names a Python type (imported only when needed), the
formatter that writes it, its read parameters, its derived components and
the converters that turn other objects into it. A `StorageClassRegistry`
holds the storage classes a datastore knows: `DEFAULT_STORAGE_CLASSES`, plus
those of the repository's datastore configuration (``storage_classes``).
"""

from ._conversions import ASSEMBLERS, CONVERTERS, DERIVED_COMPONENTS, PARAMETERS
from ._registry import DEFAULT_STORAGE_CLASSES, StorageClassRegistry
from ._storage_class import MAX_STORAGE_CLASS_NAME, StorageClass

__all__ = [
    "ASSEMBLERS",
    "CONVERTERS",
    "DEFAULT_STORAGE_CLASSES",
    "DERIVED_COMPONENTS",
    "MAX_STORAGE_CLASS_NAME",
    "PARAMETERS",
    "StorageClass",
    "StorageClassRegistry",
]
