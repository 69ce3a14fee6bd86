"""Schema versions: `VersionTuple`, `VersionedExtension`, and what a repository stores."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy
from hypothesis import given
from hypothesis import strategies as st

from databutler import (
    DatabaseConflictError,
    DimensionUniverse,
    IncompatibleVersionError,
    ManagerMismatchError,
    MissingManagerError,
    SchemaAlreadyDefinedError,
)
from databutler.registry import RegistryManagerInstances, RegistryManagerTypes
from databutler.registry.attributes import DefaultButlerAttributeManager
from databutler.registry.bridge.monolithic import MonolithicDatastoreRegistryBridgeManager
from databutler.registry.interfaces import VersionedExtension, VersionTuple
from databutler.registry.opaque import ByNameOpaqueTableStorageManager
from databutler.testing.database import DatabaseFactory

ATTRIBUTES = DefaultButlerAttributeManager.TABLE_NAME
BRIDGE = MonolithicDatastoreRegistryBridgeManager
BRIDGE_VERSION_KEY = f"version:{BRIDGE.extensionName()}"

# ----------------------------------------------------------------------
# VersionTuple


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.2.3", (1, 2, 3)),
        ("0.0.0", (0, 0, 0)),
        (" 10.20.30\n", (10, 20, 30)),
        ("01.2.3", (1, 2, 3)),
    ],
)
def test_from_string_valid(text: str, expected: tuple[int, int, int]) -> None:
    version = VersionTuple.fromString(text)
    assert version == expected
    assert (version.major, version.minor, version.patch) == expected


@pytest.mark.parametrize(
    "text",
    ["1.2", "a.b.c", "1.2.3.4", "", "1..3", "-1.2.3", "1.2.3a", "v1.2.3", "1,2,3", None, 123],
)
def test_from_string_invalid(text: Any) -> None:
    with pytest.raises(ValueError, match="Invalid schema version"):
        VersionTuple.fromString(text)


@given(st.tuples(*(st.integers(min_value=0, max_value=10**12) for _ in range(3))))
def test_str_round_trip(parts: tuple[int, int, int]) -> None:
    version = VersionTuple(*parts)
    text = str(version)
    assert text == ".".join(map(str, parts))
    assert VersionTuple.fromString(text) == version


def test_versions_order_numerically() -> None:
    assert VersionTuple(0, 10, 0) > VersionTuple(0, 9, 99)
    assert VersionTuple.fromString("1.0.0") > VersionTuple.fromString("0.99.99")


_CODE = VersionTuple(2, 3, 4)


@pytest.mark.parametrize(
    ("stored", "update", "compatible"),
    [
        # Same major and minor: any patch, either mode.
        (VersionTuple(2, 3, 4), False, True),
        (VersionTuple(2, 3, 4), True, True),
        (VersionTuple(2, 3, 0), True, True),
        (VersionTuple(2, 3, 99), True, True),
        (VersionTuple(2, 3, 99), False, True),
        # Major differs: never.
        (VersionTuple(1, 3, 4), False, False),
        (VersionTuple(1, 3, 4), True, False),
        (VersionTuple(3, 3, 4), False, False),
        (VersionTuple(3, 0, 0), True, False),
        # Repository older minor (code newer): read-only only.
        (VersionTuple(2, 2, 4), False, True),
        (VersionTuple(2, 0, 99), False, True),
        (VersionTuple(2, 2, 4), True, False),
        # Repository newer minor (code older): never.
        (VersionTuple(2, 4, 0), False, False),
        (VersionTuple(2, 4, 0), True, False),
    ],
)
def test_check_compatibility_matrix(stored: VersionTuple, update: bool, compatible: bool) -> None:
    assert _CODE.checkCompatibility(stored, update) is compatible


@given(
    code=st.tuples(*(st.integers(0, 5) for _ in range(3))),
    stored=st.tuples(*(st.integers(0, 5) for _ in range(3))),
    update=st.booleans(),
)
def test_check_compatibility_ignores_patch(
    code: tuple[int, int, int], stored: tuple[int, int, int], update: bool
) -> None:
    a, b = VersionTuple(*code), VersionTuple(*stored)
    result = a.checkCompatibility(b, update)
    assert result == a._replace(patch=0).checkCompatibility(b._replace(patch=7), update)
    if update:
        assert result == (a[:2] == b[:2])


# ----------------------------------------------------------------------
# VersionedExtension


class _Unversioned(VersionedExtension):
    @classmethod
    def currentVersions(cls) -> list[VersionTuple]:
        return []


class _TwoVersions(VersionedExtension):
    @classmethod
    def currentVersions(cls) -> list[VersionTuple]:
        return [VersionTuple(1, 0, 0), VersionTuple(2, 1, 0)]


def test_extension_name_is_the_qualified_class_name() -> None:
    assert BRIDGE.extensionName() == (
        "databutler.registry.bridge.monolithic.MonolithicDatastoreRegistryBridgeManager"
    )
    assert _Unversioned.extensionName() == f"{__name__}._Unversioned"


@pytest.mark.parametrize("update", [False, True])
def test_extension_check_compatibility_raises_naming_everything(update: bool) -> None:
    cls = ByNameOpaqueTableStorageManager
    [current] = cls.currentVersions()
    stored = VersionTuple(current.major + 1, 0, 0)
    with pytest.raises(IncompatibleVersionError) as excinfo:
        cls.checkCompatibility(stored, update)
    message = str(excinfo.value)
    assert cls.extensionName() in message
    assert f"stores schema version {stored}" in message
    assert f"supports {current}" in message
    assert ("read-write" if update else "read-only") in message


def test_extension_check_compatibility_accepts_compatible() -> None:
    cls = ByNameOpaqueTableStorageManager
    [current] = cls.currentVersions()
    assert cls.checkCompatibility(current, True) is None
    assert cls.checkCompatibility(current._replace(patch=current.patch + 5), True) is None
    # Unversioned managers accept anything.
    assert _Unversioned.checkCompatibility(VersionTuple(99, 0, 0), True) is None


def test_extension_with_several_versions() -> None:
    assert _TwoVersions.checkCompatibility(VersionTuple(1, 0, 3), True) is None
    assert _TwoVersions.checkCompatibility(VersionTuple(2, 0, 0), False) is None
    with pytest.raises(IncompatibleVersionError, match=r"supports 1\.0\.0, 2\.1\.0 \(read-write\)"):
        _TwoVersions.checkCompatibility(VersionTuple(2, 0, 0), True)
    with pytest.raises(NotImplementedError, match="must say which one new repositories get"):
        _TwoVersions.clsNewSchemaVersion(None)
    assert _TwoVersions.clsNewSchemaVersion(VersionTuple(2, 1, 0)) == VersionTuple(2, 1, 0)
    with pytest.raises(IncompatibleVersionError, match=r"cannot create schema version 2\.0\.0"):
        _TwoVersions.clsNewSchemaVersion(VersionTuple(2, 0, 0))


def test_new_schema_version() -> None:
    [current] = BRIDGE.currentVersions()
    assert BRIDGE.clsNewSchemaVersion(None) == current
    assert _Unversioned.clsNewSchemaVersion(None) is None
    assert _Unversioned().newSchemaVersion() is None
    stored = VersionTuple(7, 7, 7)
    assert _Unversioned(registry_schema_version=stored).newSchemaVersion() == stored
    BRIDGE.checkNewSchemaVersion(current)
    with pytest.raises(IncompatibleVersionError, match=r"cannot create schema version 9\.9\.9"):
        BRIDGE.checkNewSchemaVersion(VersionTuple(9, 9, 9))


# ----------------------------------------------------------------------
# What a repository stores, and what opening it checks


def _attributes(databases: DatabaseFactory) -> dict[str, str]:
    with databases.raw_engine().connect() as connection:
        result = connection.execute(
            sqlalchemy.text(f"SELECT name, value FROM {databases.qualified(ATTRIBUTES)}")
        )
        return {name: value for name, value in result}


def _set_attribute(databases: DatabaseFactory, name: str, value: str | None) -> None:
    table = databases.qualified(ATTRIBUTES)
    with databases.raw_engine().begin() as connection:
        if value is None:
            result = connection.execute(
                sqlalchemy.text(f"DELETE FROM {table} WHERE name = :name"), {"name": name}
            )
        else:
            result = connection.execute(
                sqlalchemy.text(f"UPDATE {table} SET value = :value WHERE name = :name"),
                {"name": name, "value": value},
            )
        assert result.rowcount == 1


def test_make_repo_records_managers_and_versions(
    repo: RegistryManagerInstances, databases: DatabaseFactory
) -> None:
    stored = _attributes(databases)
    types = RegistryManagerTypes()
    expected = {"config:dimensions.json": DimensionUniverse().to_json()}
    for kind, cls in types.items():
        expected[f"config:registry.managers.{kind}"] = cls.extensionName()
        [version] = cls.currentVersions()
        expected[f"version:{cls.extensionName()}"] = str(version)
    kinds = ["attributes", "dimensions", "collections", "datasets", "opaque", "datastores"]
    assert [kind for kind, _ in types.items()] == kinds
    assert stored == expected
    assert repo.attributes.items() == stored
    assert stored[BRIDGE_VERSION_KEY] == str(BRIDGE.currentVersions()[0])


def test_make_repo_records_a_custom_universe(databases: DatabaseFactory) -> None:
    universe = DimensionUniverse(namespace="custom", version=3)
    RegistryManagerTypes().makeRepo(databases.open(), universe)
    assert _attributes(databases)["config:dimensions.json"] == universe.to_json()
    assert RegistryManagerTypes().loadRepo(databases.open()).universe == universe


def test_make_repo_twice_raises(repo: RegistryManagerInstances, databases: DatabaseFactory) -> None:
    before = _attributes(databases)
    with pytest.raises(SchemaAlreadyDefinedError, match="already holds tables"):
        RegistryManagerTypes().makeRepo(databases.open())
    assert _attributes(databases) == before


def test_load_repo_on_empty_database_raises(databases: DatabaseFactory) -> None:
    db = databases.open()
    with pytest.raises(DatabaseConflictError, match=f"has no table\\(s\\) {ATTRIBUTES}"):
        RegistryManagerTypes().loadRepo(db)
    with databases.raw_engine().connect() as connection:
        assert sqlalchemy.inspect(connection).get_table_names(schema=databases.namespace) == []


def test_load_repo_reads_stored_versions(
    repo: RegistryManagerInstances, databases: DatabaseFactory
) -> None:
    loaded = RegistryManagerTypes().loadRepo(databases.open())
    for kind, cls in RegistryManagerTypes().items():
        [current] = cls.currentVersions()
        assert getattr(loaded, kind).newSchemaVersion() == current
    assert loaded.universe == repo.universe


@pytest.mark.parametrize("writeable", [True, False])
def test_load_repo_with_other_major_version_raises(
    repo: RegistryManagerInstances, databases: DatabaseFactory, writeable: bool
) -> None:
    [current] = BRIDGE.currentVersions()
    stored = VersionTuple(current.major + 1, 0, 0)
    _set_attribute(databases, BRIDGE_VERSION_KEY, str(stored))
    before = _attributes(databases)
    with pytest.raises(IncompatibleVersionError) as excinfo:
        RegistryManagerTypes().loadRepo(databases.open(writeable=writeable))
    message = str(excinfo.value)
    assert "MonolithicDatastoreRegistryBridgeManager" in message
    assert str(stored) in message
    assert str(current) in message
    assert _attributes(databases) == before


def test_load_repo_with_stored_version_1_0_0_names_both_versions(
    repo: RegistryManagerInstances, databases: DatabaseFactory
) -> None:
    """The exact case from the bridge's history: code at 0.2.x, repository at 1.0.0."""
    [current] = BRIDGE.currentVersions()
    assert current.major == 0  # the premise of this test
    _set_attribute(databases, BRIDGE_VERSION_KEY, "1.0.0")
    before = _attributes(databases)
    with pytest.raises(
        IncompatibleVersionError, match="MonolithicDatastoreRegistryBridgeManager"
    ) as e:
        RegistryManagerTypes().loadRepo(databases.open())
    assert "1.0.0" in str(e.value)
    assert str(current) in str(e.value)
    assert _attributes(databases) == before


def test_load_repo_with_older_minor_opens_read_only_only(
    repo: RegistryManagerInstances, databases: DatabaseFactory
) -> None:
    [current] = BRIDGE.currentVersions()
    assert current.minor > 0  # the premise of this test
    older = VersionTuple(current.major, current.minor - 1, 0)
    _set_attribute(databases, BRIDGE_VERSION_KEY, str(older))
    before = _attributes(databases)

    loaded = RegistryManagerTypes().loadRepo(databases.open(writeable=False))
    assert loaded.datastores.newSchemaVersion() == older
    assert not loaded.db.isWriteable()

    with pytest.raises(
        IncompatibleVersionError,
        match=rf"stores schema version {re.escape(str(older))}.*read-write",
    ):
        RegistryManagerTypes().loadRepo(databases.open())
    assert _attributes(databases) == before


def test_load_repo_with_newer_minor_raises_even_read_only(
    repo: RegistryManagerInstances, databases: DatabaseFactory
) -> None:
    [current] = BRIDGE.currentVersions()
    newer = VersionTuple(current.major, current.minor + 1, 0)
    _set_attribute(databases, BRIDGE_VERSION_KEY, str(newer))
    before = _attributes(databases)
    with pytest.raises(
        IncompatibleVersionError, match=rf"stores schema version {re.escape(str(newer))}.*read-only"
    ):
        RegistryManagerTypes().loadRepo(databases.open(writeable=False))
    assert _attributes(databases) == before


@pytest.mark.parametrize("writeable", [True, False])
def test_load_repo_with_patch_difference_opens(
    repo: RegistryManagerInstances, databases: DatabaseFactory, writeable: bool
) -> None:
    [current] = BRIDGE.currentVersions()
    patched = current._replace(patch=current.patch + 3)
    _set_attribute(databases, BRIDGE_VERSION_KEY, str(patched))
    loaded = RegistryManagerTypes().loadRepo(databases.open(writeable=writeable))
    assert loaded.datastores.newSchemaVersion() == patched
    assert loaded.db.isWriteable() is writeable
    # The repository is usable.
    bridge = loaded.datastores.register("store")
    assert bridge.datastoreName == "store"
    assert _attributes(databases)[BRIDGE_VERSION_KEY] == str(patched)


def test_load_repo_with_other_manager_class_raises(
    repo: RegistryManagerInstances, databases: DatabaseFactory
) -> None:
    key = "config:registry.managers.opaque"
    _set_attribute(databases, key, "somewhere.else.OtherOpaqueManager")
    before = _attributes(databases)
    with pytest.raises(
        ManagerMismatchError,
        match=(
            r"uses somewhere\.else\.OtherOpaqueManager as its 'opaque' manager, but this code is "
            rf"configured with {re.escape(ByNameOpaqueTableStorageManager.extensionName())}"
        ),
    ):
        RegistryManagerTypes().loadRepo(databases.open())
    assert _attributes(databases) == before


@pytest.mark.parametrize(
    "kind", ["attributes", "dimensions", "collections", "datasets", "opaque", "datastores"]
)
def test_load_repo_without_manager_record_raises(
    repo: RegistryManagerInstances, databases: DatabaseFactory, kind: str
) -> None:
    _set_attribute(databases, f"config:registry.managers.{kind}", None)
    before = _attributes(databases)
    with pytest.raises(MissingManagerError, match=f"records no '{kind}' manager") as excinfo:
        RegistryManagerTypes().loadRepo(databases.open())
    assert isinstance(excinfo.value, LookupError)
    assert _attributes(databases) == before


def test_load_repo_with_malformed_version_raises(
    repo: RegistryManagerInstances, databases: DatabaseFactory
) -> None:
    _set_attribute(databases, BRIDGE_VERSION_KEY, "two.oh")
    with pytest.raises(ValueError, match=r"Invalid schema version 'two\.oh'"):
        RegistryManagerTypes().loadRepo(databases.open())


def test_load_repo_with_malformed_universe_raises(
    repo: RegistryManagerInstances, databases: DatabaseFactory
) -> None:
    _set_attribute(databases, "config:dimensions.json", "{not json")
    with pytest.raises(ValueError, match="Stored dimension universe"):
        RegistryManagerTypes().loadRepo(databases.open())
