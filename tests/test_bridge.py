"""The bridge contract suite, run over every bridge and every database."""

from databutler.testing.bridge import DatastoreRegistryBridgeTests, PersistentBridgeTests


class TestMonolithicBridge(DatastoreRegistryBridgeTests, PersistentBridgeTests):
    ephemeral = False


class TestEphemeralBridge(DatastoreRegistryBridgeTests):
    ephemeral = True
