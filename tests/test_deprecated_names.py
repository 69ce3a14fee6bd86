"""The deprecated aliases of renamed names warn, naming the new name, and forward to it."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from databutler._deprecation import adopt_renamed_overrides, renamed
from databutler.datastores import Datastore
from databutler.registry.attributes import DefaultButlerAttributeManager
from databutler.registry.collections import SimpleCollectionManager
from databutler.registry.datasets.by_dimensions import ByDimensionsDatasetRecordStorageManager
from databutler.registry.dimension_records import StaticDimensionRecordStorageManager
from databutler.registry.interfaces import Database
from databutler.registry.sql_registry import SqlRegistry
from databutler.transaction import DatastoreTransaction

RENAMED: list[tuple[type, str, str]] = [
    (Database, "quoteName", "quote_name"),
    (Database, "resultProcessors", "result_processors"),
    (Database, "bindValue", "bind_value"),
    (Database, "insertMany", "insert_many"),
    (Database, "sqlInValues", "sql_in_values"),
    (Database, "inValuesParams", "in_values_params"),
    (Database, "encodeIds", "encode_ids"),
    (Database, "decodeIds", "decode_ids"),
    (Database, "sqlInIds", "sql_in_ids"),
    (Database, "inIdsParams", "in_ids_params"),
    (Database, "executeRaw", "execute_raw"),
    (Database, "queryRaw", "query_raw"),
    (Database, "updateWhere", "update_where"),
    (Database, "inClause", "in_clause"),
    (SqlRegistry, "expandDataIds", "expand_data_ids"),
    (SqlRegistry, "importDatasets", "import_datasets"),
    (SqlRegistry, "getCollectionParents", "get_collection_parents"),
    (SqlRegistry, "streamDatasets", "stream_datasets"),
    (SqlRegistry, "runDatasetIds", "run_dataset_ids"),
    (SqlRegistry, "existingDatasetIds", "existing_dataset_ids"),
    (DefaultButlerAttributeManager, "tableSpec", "table_spec"),
    (DefaultButlerAttributeManager, "setMany", "set_many"),
    (SimpleCollectionManager, "getChain", "get_chain"),
    (SimpleCollectionManager, "setChain", "set_chain"),
    (StaticDimensionRecordStorageManager, "queryDataIds", "query_data_ids"),
    (ByDimensionsDatasetRecordStorageManager, "registerDatasetType", "register_dataset_type"),
    (DatastoreTransaction, "registerCommit", "register_commit"),
    (Datastore, "emptyTrash", "empty_trash"),
]


@pytest.mark.parametrize(("cls", "old", "new"), RENAMED, ids=lambda v: getattr(v, "__name__", v))
def test_alias_warns_and_forwards(cls: type, old: str, new: str) -> None:
    with pytest.warns(DeprecationWarning, match=rf"\.{old} is deprecated.*\.{new}\b"):
        found = getattr(cls, old)
    assert found == getattr(cls, new)


def test_alias_on_an_instance_calls_the_new_method() -> None:
    done: list[str] = []
    transaction = DatastoreTransaction()
    with pytest.warns(DeprecationWarning, match="register_commit"):
        transaction.registerCommit(lambda: done.append("committed"))
    transaction.commit()
    assert done == ["committed"]


def test_alias_reaches_a_subclass_override() -> None:
    class Base:
        def new_name(self) -> str:
            return "base"

        oldName = renamed("new_name")  # noqa: N815

    class Derived(Base):
        def new_name(self) -> str:
            return "derived"

    with pytest.warns(DeprecationWarning, match="new_name"):
        assert Derived().oldName() == "derived"


def test_subclass_defining_the_old_name_still_serves_the_new_one() -> None:
    class Base:
        def __init_subclass__(cls, **kwargs: Any) -> None:
            super().__init_subclass__(**kwargs)
            adopt_renamed_overrides(cls)

        def new_name(self) -> str:
            return "base"

        oldName = renamed("new_name")  # noqa: N815

    with pytest.warns(DeprecationWarning, match="define new_name instead"):

        class Legacy(Base):
            def oldName(self) -> str:  # noqa: N802
                return "legacy"

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Legacy().new_name() == "legacy"
        assert Legacy().oldName() == "legacy"
