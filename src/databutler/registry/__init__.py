"""The registry: an SQL database of datasets, and the bridge to datastores."""

from .databases import open_database
from .managers import RegistryManagerInstances, RegistryManagerTypes
from .sql_registry import SqlRegistry

__all__ = ["RegistryManagerInstances", "RegistryManagerTypes", "SqlRegistry", "open_database"]
