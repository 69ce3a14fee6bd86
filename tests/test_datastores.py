"""The datastore contract over every datastore."""

from __future__ import annotations

import pytest

from databutler.datastores import InMemoryDatastore
from databutler.registry import SqlRegistry
from databutler.testing.datastore import DatastoreTests


class TestInMemoryDatastore(DatastoreTests):
    @pytest.fixture
    def datastore(self, registry: SqlRegistry) -> InMemoryDatastore:
        return InMemoryDatastore("memory", registry.datastore_bridges)
