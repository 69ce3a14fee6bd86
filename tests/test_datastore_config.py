"""Datastores built from configuration, and the errors bad configurations raise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from databutler import ConfigurationError
from databutler.datastores import FileDatastore, InMemoryDatastore
from databutler.datastores.chained import ChainedDatastore, Constraints
from databutler.datastores.config import KINDS, datastore_from_config, register_kind
from databutler.registry import SqlRegistry
from databutler.testing.datastore import make_refs


@pytest.fixture
def registry() -> SqlRegistry:
    return SqlRegistry.create("sqlite://")


def build(registry: SqlRegistry, config: Any, root: str | None = None) -> Any:
    return datastore_from_config(config, registry.datastore_bridges, root=root)


def test_file(registry: SqlRegistry, tmp_path: Path) -> None:
    store = build(
        registry,
        {
            "kind": "file",
            "name": "files",
            "root": str(tmp_path / "here"),
            "templates": {"default": "{run}/{datasetType}/{id}"},
            "formatters": {"thing": "json"},
            "checksum": True,
            "records_table": "my_records",
        },
    )
    assert isinstance(store, FileDatastore) and store.name == "files"
    (ref,) = make_refs(registry, 1)
    store.put({"v": 1}, ref)
    assert store.get_uri(ref).endswith(f"here/run/thing/{ref.id}.json")
    (record,) = store.records.fetch(dataset_id=ref.id)
    assert record["checksum"] is not None


def test_file_root_defaults_under_the_repository(registry: SqlRegistry, tmp_path: Path) -> None:
    store = build(registry, {"kind": "file", "name": "files"}, root=str(tmp_path))
    (ref,) = make_refs(registry, 1)
    store.put({"v": 1}, ref)
    assert (tmp_path / "files" / "run" / "thing").is_dir()


def test_memory(registry: SqlRegistry) -> None:
    store = build(registry, {"kind": "memory", "name": "mem", "copy_on_get": False})
    assert isinstance(store, InMemoryDatastore) and store.name == "mem"
    (ref,) = make_refs(registry, 1)
    store.put({"v": [1]}, ref)
    assert store.get(ref) is store.get(ref)  # no copies


def test_chained(registry: SqlRegistry, tmp_path: Path) -> None:
    store = build(
        registry,
        {
            "kind": "chained",
            "name": "chain",
            "datastores": [{"kind": "file", "name": "files"}, {"kind": "memory", "name": "mem"}],
            "constraints": [None, {"reject": ["thing"]}],
        },
        root=str(tmp_path),
    )
    assert isinstance(store, ChainedDatastore) and store.names == ("files", "mem")
    assert store.constraints == (None, Constraints(reject=["thing"]))
    (ref,) = make_refs(registry, 1)
    store.put({"v": 1}, ref)
    assert set(registry.getDatasetLocations(ref)) == {"files"}


def test_chained_without_constraints(registry: SqlRegistry) -> None:
    store = build(
        registry,
        {"kind": "chained", "name": "c", "datastores": [{"kind": "memory", "name": "m"}]},
    )
    assert isinstance(store, ChainedDatastore) and store.constraints == (None,)


def test_register_kind(registry: SqlRegistry) -> None:
    def factory(config: Any, bridge_manager: Any, *, root: str | None) -> InMemoryDatastore:
        return InMemoryDatastore(f"scratch-{config['name']}", bridge_manager)

    assert {"file", "memory", "chained"} <= set(KINDS)
    register_kind("scratch", factory)
    try:
        assert build(registry, {"kind": "scratch", "name": "x"}).name == "scratch-x"
        with pytest.raises(ConfigurationError, match="'scratch' is registered already"):
            register_kind("scratch", factory)
        register_kind("scratch", factory, replace=True)
    finally:
        del KINDS["scratch"]
    with pytest.raises(ConfigurationError, match="non-empty string"):
        register_kind("", factory)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"kind": "s3"}, "Unknown datastore kind 's3'; valid kinds are 'chained', 'file'"),
        ({"name": "x"}, "lacks the required key 'kind'"),
        (["kind", "file"], "must be a mapping, not list"),
        (
            {"kind": "file", "name": "f", "root": "/r", "colour": "red"},
            "Unknown key\\(s\\) 'colour' in file datastore configuration; valid keys are "
            "'checksum', 'formatters', 'fsync', 'kind', 'name', 'records_table', 'root', "
            "'storage_classes', 'templates', 'trust'",
        ),
        ({"kind": "file", "root": "/r"}, "File datastore configuration lacks required key 'name'"),
        ({"kind": "file", "name": "f"}, "File datastore 'f' lacks required key 'root'"),
        (
            {"kind": "file", "name": "f", "root": "/r\0s"},
            "File datastore 'f': key 'root' is '/r\\\\x00s', which names no directory; give a "
            "directory path or s3:// URI without NUL characters",
        ),
        ({"kind": "file", "name": "f", "root": ""}, "key 'root' is '', which names no directory"),
        (
            {"kind": "file", "name": "f", "root": "/r", "checksum": "yes"},
            "Key 'checksum' of file datastore configuration must be a boolean \\(true or false\\), "
            "not str 'yes'",
        ),
        ({"kind": "file", "name": 3, "root": "/r"}, "Key 'name' .* must be a string, not int"),
        ({"kind": "file", "name": "", "root": "/r"}, "Key 'name' .* must not be empty"),
        (
            {"kind": "file", "name": "f", "root": "/r", "templates": ["x"]},
            "Key 'templates' .* must be a mapping of strings to strings",
        ),
        (
            {"kind": "memory", "name": "m", "copy_on_get": 1},
            "Key 'copy_on_get' of memory datastore configuration must be a boolean",
        ),
        (
            {"kind": "memory", "name": "m", "root": "/r"},
            "Unknown key\\(s\\) 'root' in memory datastore configuration; "
            "valid keys are 'copy_on_get', 'kind', 'name'",
        ),
        (
            {"kind": "chained", "name": "c"},
            "Chained datastore configuration lacks required key 'datastores'",
        ),
        (
            {"kind": "chained", "name": "c", "datastores": {"kind": "memory"}},
            "Key 'datastores' .* must be a list of configurations, not dict",
        ),
        (
            {"kind": "chained", "name": "c", "datastores": []},
            "'c' needs at least one datastore",
        ),
        (
            {"kind": "chained", "name": "c", "datastores": [{"kind": "memory", "name": "m"}, {}]},
            "Chained datastore 'c', datastores\\[1\\]: .* lacks the required key 'kind'",
        ),
        (
            {
                "kind": "chained",
                "name": "c",
                "datastores": [{"kind": "memory", "name": "m"}],
                "constraints": [None, None],
            },
            "'constraints' of chained datastore 'c' has 2 entries for 1 datastores",
        ),
        (
            {
                "kind": "chained",
                "name": "c",
                "datastores": [{"kind": "memory", "name": "m"}],
                "constraints": [{"accept": ["x"], "deny": ["y"]}],
            },
            "Unknown key\\(s\\) 'deny' in constraints\\[0\\] of chained datastore 'c'; "
            "valid keys are 'accept', 'reject'",
        ),
        (
            {
                "kind": "chained",
                "name": "c",
                "datastores": [{"kind": "memory", "name": "m"}],
                "constraints": [{"reject": "x"}],
            },
            "Key 'reject' of constraints\\[0\\] .* must be a list of strings, not 'x'",
        ),
        (
            {
                "kind": "chained",
                "name": "c",
                "datastores": [{"kind": "memory", "name": "m"}],
                "constraints": ["all"],
            },
            "Entry constraints\\[0\\] .* must be a mapping",
        ),
    ],
)
def test_errors(registry: SqlRegistry, config: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build(registry, config)
