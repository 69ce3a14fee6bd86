"""Implementations of the registry–datastore bridge."""

from .ephemeral import EphemeralDatastoreRegistryBridge
from .monolithic import MonolithicDatastoreRegistryBridge, MonolithicDatastoreRegistryBridgeManager

__all__ = [
    "EphemeralDatastoreRegistryBridge",
    "MonolithicDatastoreRegistryBridge",
    "MonolithicDatastoreRegistryBridgeManager",
]
