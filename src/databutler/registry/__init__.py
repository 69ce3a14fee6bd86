"""The registry: an SQL database of datasets, and the bridge to datastores."""

from .databases import open_database
from .managers import RegistryManagerInstances, RegistryManagerTypes

__all__ = ["RegistryManagerInstances", "RegistryManagerTypes", "open_database"]
