"""The datastore contract over a chain (files + memory), and what only a chain does."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from pathlib import Path

import pytest

from databutler import ConfigurationError, ConflictError, DatasetType, TransferModeError
from databutler._dataset_ref import DatasetRef
from databutler.datastores import (
    DatastoreAbilities,
    DatastoreAbilityError,
    FileDatastore,
    InMemoryDatastore,
)
from databutler.datastores.chained import (
    ChainedDatastore,
    Constraints,
    DatasetTypeNotSupportedError,
)
from databutler.registry import SqlRegistry
from databutler.registry.interfaces import DatastoreRegistryBridgeManager
from databutler.testing.datastore import DatastoreBackend, DatastoreTests, make_refs
from databutler.testing.datastore_backends import (
    chained_backdoor,
    file_backdoor,
    memory_backdoor,
)


def make_images(registry: SqlRegistry, n: int, run: str = "run") -> list[DatasetRef]:
    """``n`` datasets of a second type, ``image`` (storage class ``ImageDict``)."""
    make_refs(registry, 0, run)  # the dimension records and the ``thing`` type
    if "image" not in [t.name for t in registry.queryDatasetTypes()]:
        registry.registerDatasetType(DatasetType("image", ["detector"], "ImageDict"))
    taken = len(registry.queryDatasets("image", collections=run))
    return list(
        registry.insertDatasets(
            "image", [{"instrument": "Cam", "detector": taken + d} for d in range(n)], run
        )
    )


def chain_of(
    bridges: DatastoreRegistryBridgeManager,
    tmp_path: Path,
    constraints: list[Constraints | None] | None = None,
) -> ChainedDatastore:
    files = FileDatastore("files", bridges, str(tmp_path / "store"))
    memory = InMemoryDatastore("memory", bridges)
    return ChainedDatastore("chain", [files, memory], constraints=constraints)


class TestChainedDatastore(DatastoreTests):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> DatastoreBackend[ChainedDatastore]:
        return DatastoreBackend(
            make=lambda bridges, place: chain_of(bridges, tmp_path / place),
            backdoor=chained_backdoor(file_backdoor, memory_backdoor),
        )

    def test_put_is_all_or_nothing_across_children(
        self, registry: SqlRegistry, tmp_path: Path
    ) -> None:
        memory = InMemoryDatastore("memory", registry.datastore_bridges)
        strict = FileDatastore(
            "strict", registry.datastore_bridges, str(tmp_path / "s"), formatters={"thing": "json"}
        )
        chain = ChainedDatastore("chain", [memory, strict])
        ok, bad = make_refs(registry, 2)
        with pytest.raises(ValueError, match="json"):
            chain.put_many([({"v": 1}, ok), ({"not json": {1, 2}}, bad)])
        # The memory child had stored both already: both were undone.
        assert not memory.knows(ok) and not memory.knows(bad)
        assert registry.getDatasetLocations(ok) == frozenset()
        assert chain._transaction is None and memory._transaction is None
        chain.put({"v": 1}, ok)  # a retry succeeds
        assert memory.get(ok) == strict.get(ok) == {"v": 1}

    def test_put_refuses_what_one_child_holds(self, registry: SqlRegistry, tmp_path: Path) -> None:
        chain = chain_of(registry.datastore_bridges, tmp_path)
        files, memory = chain.children
        (ref,) = make_refs(registry, 1)
        memory.put({"v": 1}, ref)
        with pytest.raises(ConflictError, match="'memory' of chain 'chain'"):
            chain.put({"v": 2}, ref)
        assert not files.knows(ref) and memory.get(ref) == {"v": 1}

    def test_identity(self, registry: SqlRegistry, tmp_path: Path) -> None:
        chain = chain_of(registry.datastore_bridges, tmp_path)
        assert chain.name == "chain" and chain.names == ("files", "memory")
        assert not chain.is_ephemeral
        both_memory = ChainedDatastore(
            "m", [InMemoryDatastore(n, registry.datastore_bridges) for n in ("m1", "m2")]
        )
        assert both_memory.is_ephemeral
        with pytest.raises(TypeError, match="no bridge"):
            chain.bridge  # noqa: B018

    def test_constraints_must_match_children(self, registry: SqlRegistry, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match="2 children but 1 constraints"):
            chain_of(registry.datastore_bridges, tmp_path, constraints=[None])
        with pytest.raises(ConfigurationError, match="at least one child"):
            ChainedDatastore("empty", [])


class TestRouting:
    @pytest.fixture
    def registry(self) -> SqlRegistry:
        return SqlRegistry.create("sqlite://")

    def test_rejected_type_lands_only_in_accepting_child(
        self, registry: SqlRegistry, tmp_path: Path
    ) -> None:
        chain = chain_of(
            registry.datastore_bridges, tmp_path, constraints=[None, Constraints(reject=["image"])]
        )
        files, memory = chain.children
        (thing,) = make_refs(registry, 1)
        (image,) = make_images(registry, 1)
        chain.put_many([({"t": 1}, thing), ({"i": 1}, image)])
        assert files.knows(thing) and memory.knows(thing)
        assert files.knows(image) and not memory.knows(image)
        assert set(registry.getDatasetLocations(image)) == {"files"}
        assert chain.get(image) == {"i": 1}
        chain.remove(image)
        assert not chain.knows(image) and not files.knows(image)

    def test_get_falls_through_to_the_child_that_holds_it(
        self, registry: SqlRegistry, tmp_path: Path
    ) -> None:
        chain = chain_of(
            registry.datastore_bridges, tmp_path, constraints=[Constraints(reject=["thing"]), None]
        )
        files, memory = chain.children
        (ref,) = make_refs(registry, 1)
        chain.put({"v": 1}, ref)
        assert not files.knows(ref) and memory.knows(ref)
        assert chain.get(ref) == {"v": 1} and chain.exists(ref)

    def test_nothing_accepts(self, registry: SqlRegistry, tmp_path: Path) -> None:
        reject = Constraints(reject=["image"])
        chain = chain_of(registry.datastore_bridges, tmp_path, constraints=[reject, reject])
        (thing,) = make_refs(registry, 1)
        (image,) = make_images(registry, 1)
        with pytest.raises(DatasetTypeNotSupportedError, match="type 'image'"):
            chain.put_many([({"t": 1}, thing), ({"i": 1}, image)])
        assert not chain.knows(thing)  # checked before anything was written
        assert registry.getDatasetLocations(thing) == frozenset()
        assert isinstance(DatasetTypeNotSupportedError("x"), ValueError)

    def test_locations_name_children_never_the_chain(
        self, registry: SqlRegistry, tmp_path: Path
    ) -> None:
        chain = chain_of(registry.datastore_bridges, tmp_path)
        (ref,) = make_refs(registry, 1)
        chain.put({"v": 1}, ref)
        locations = registry.getDatasetLocations(ref)
        assert set(locations) == {"files", "memory"} and "chain" not in locations


class TestAbilities:
    """A chain derives what it can do from its children, and ingests through those that can."""

    @pytest.fixture
    def registry(self) -> SqlRegistry:
        return SqlRegistry.create("sqlite://")

    def _source(self, tmp_path: Path) -> Path:
        path = tmp_path / "outside" / "a.json"
        path.parent.mkdir()
        path.write_text('{"v": 7}')
        return path

    def test_derived_from_the_children(self, registry: SqlRegistry, tmp_path: Path) -> None:
        bridges = registry.datastore_bridges
        chain = chain_of(bridges, tmp_path)
        files, memory = chain.children
        assert chain.abilities == DatastoreAbilities(
            ephemeral=False, supports_ingest=True, transfer_modes=files.abilities.transfer_modes
        )
        assert memory.abilities.ephemeral and not memory.abilities.supports_ingest
        assert files.abilities.supports_ingest and "copy" in files.transfer_modes
        memories = ChainedDatastore("m", [InMemoryDatastore(n, bridges) for n in ("m1", "m2")])
        assert memories.abilities == DatastoreAbilities(ephemeral=True)
        assert memories.is_ephemeral and not memories.abilities.supports_ingest

    def test_nested_chains(self, registry: SqlRegistry, tmp_path: Path) -> None:
        bridges = registry.datastore_bridges
        inner = chain_of(bridges, tmp_path)
        outer = ChainedDatastore("outer", [inner, InMemoryDatastore("last", bridges)])
        assert outer.children[0] is inner and not outer.has_bridge
        assert outer.names == ("files", "memory", "last")
        assert [leaf.name for leaf in outer.leaves] == ["files", "memory", "last"]
        assert outer.abilities.supports_ingest and not outer.is_ephemeral
        with pytest.raises(DatastoreAbilityError, match=r"'outer' has no bridge.*files, memory"):
            outer.bridge  # noqa: B018
        (ref,) = make_refs(registry, 1)
        with pytest.raises(RuntimeError), outer.transaction():
            outer.put({"v": 1}, ref)
            raise RuntimeError("undo every level")
        assert registry.getDatasetLocations(ref) == frozenset()
        assert outer._transaction is inner._transaction is None

    def test_ingest_goes_to_the_children_that_can(
        self, registry: SqlRegistry, tmp_path: Path
    ) -> None:
        chain = chain_of(registry.datastore_bridges, tmp_path)
        files, memory = chain.children
        (ref,) = make_refs(registry, 1)
        chain.ingest([(self._source(tmp_path), ref)], transfer="copy")
        assert files.get(ref) == {"v": 7} and not memory.knows(ref)
        assert set(registry.getDatasetLocations(ref)) == {"files"}

    def test_ingest_without_a_child_that_can(self, registry: SqlRegistry, tmp_path: Path) -> None:
        bridges = registry.datastore_bridges
        chain = ChainedDatastore("m", [InMemoryDatastore(n, bridges) for n in ("m1", "m2")])
        (ref,) = make_refs(registry, 1)
        with pytest.raises(DatastoreAbilityError, match=r"'m' .*cannot ingest"):
            chain.ingest([(self._source(tmp_path), ref)])
        assert registry.getDatasetLocations(ref) == frozenset()

    def test_ingest_refuses_a_mode_a_taking_child_lacks(
        self, registry: SqlRegistry, tmp_path: Path
    ) -> None:
        bridges = registry.datastore_bridges
        files = FileDatastore("files", bridges, str(tmp_path / "store"))
        copier = _CopyOnly("copier", bridges)
        chain = ChainedDatastore("chain", [files, copier])
        assert chain.abilities.transfer_modes == files.abilities.transfer_modes
        (ref,) = make_refs(registry, 1)
        source = self._source(tmp_path)
        with pytest.raises(TransferModeError, match="'copier' of chain 'chain'"):
            chain.ingest([(source, ref)], transfer="link")
        assert registry.getDatasetLocations(ref) == frozenset() and source.exists()
        chain.ingest([(source, ref)], transfer="copy")
        assert set(registry.getDatasetLocations(ref)) == {"files", "copier"}
        assert copier.get(ref) == files.get(ref) == {"v": 7}


class _CopyOnly(InMemoryDatastore):
    """A memory datastore that ingests JSON files, by copying only."""

    @property
    def abilities(self) -> DatastoreAbilities:
        return DatastoreAbilities(
            ephemeral=True, supports_ingest=True, transfer_modes=frozenset({"copy"})
        )

    def ingest(
        self,
        items: Iterable[tuple[str | os.PathLike[str], DatasetRef]],
        *,
        transfer: str | None = "auto",
        formatter: str | None = None,
    ) -> None:
        self._check_ingest(transfer)
        self.put_many((json.loads(Path(source).read_text()), ref) for source, ref in items)


class TestConstraints:
    thing = DatasetRef(
        DatasetType("thing", ["instrument", "detector"], "StructuredDataDict"), {}, id=uuid.uuid4()
    )
    image = DatasetRef(
        DatasetType("image", ["instrument", "visit"], "ImageDict"), {}, id=uuid.uuid4()
    )

    def test_default_accepts_everything(self) -> None:
        assert Constraints().accepts(self.thing) and Constraints().accepts(self.image)

    @pytest.mark.parametrize(
        "key", ["image", "ImageDict", "instrument+visit", "visit+instrument", "all"]
    )
    def test_keys(self, key: str) -> None:
        only = Constraints(accept=[key])
        assert only.accepts(self.image)
        assert only.accepts(self.thing) == (key == "all")
        assert not Constraints(reject=[key]).accepts(self.image)

    def test_dimension_key_is_the_exact_set(self) -> None:
        assert not Constraints(accept=["visit"]).accepts(self.image)
        assert not Constraints(accept=["instrument+visit+detector"]).accepts(self.image)

    def test_reject_wins(self) -> None:
        assert not Constraints(accept=["image"], reject=["ImageDict"]).accepts(self.image)

    def test_a_bare_string_is_refused(self) -> None:
        with pytest.raises(TypeError, match=r"write \['image'\]"):
            Constraints(accept="image")

    def test_value_semantics(self) -> None:
        assert Constraints(["a+b"]) == Constraints(["b+a"])
        assert hash(Constraints()) == hash(Constraints(accept=["all"]))
        assert repr(Constraints(reject=["x"])) == "Constraints(accept=['all'], reject=['x'])"


@pytest.mark.parametrize(
    ("second", "shared"),
    [
        ({"kind": "file", "name": "a"}, "name 'a'"),
        ({"kind": "file", "name": "b", "records_table": "a_records"}, "records table 'a_records'"),
    ],
)
def test_children_must_not_share_names_or_records(
    tmp_path: Path, second: dict[str, str], shared: str
) -> None:
    from databutler.datastores import datastore_from_config

    registry = SqlRegistry.create("sqlite://")
    config = {
        "kind": "chained",
        "name": "chain",
        "datastores": [{"kind": "file", "name": "a"}, second],
    }
    with pytest.raises(ConfigurationError, match=f"share the {shared}"):
        datastore_from_config(config, registry.datastore_bridges, root=str(tmp_path))
