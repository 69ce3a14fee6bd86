"""The contract suite of `~databutler.datastores.Datastore`, for any datastore.

Subclass `DatastoreTests` and provide one fixture, ``backend``: a
`DatastoreBackend` that says how to make a datastore of your kind on a
registry's bridge manager, and how to look into its storage without it (the
backdoor the suite checks cleanups with). The suite makes the rest: the
registries (SQLite in memory, and PostgreSQL on the server
``DATABUTLER_TEST_POSTGRESQL`` names; without one those variants skip, or fail
under CI), the ``datastore`` under test, and an ``other_datastore`` of the
same kind in another registry, for transfers. For example, for a datastore
that keeps each dataset as a blob under a directory::

    import pytest

    from databutler.testing.datastore import DatastoreBackend, DatastoreTests


    class TestBlobDatastore(DatastoreTests):
        @pytest.fixture
        def backend(self, tmp_path):
            return DatastoreBackend(
                make=lambda bridges, place: BlobDatastore("blobs", bridges, tmp_path / place),
                backdoor=lambda datastore: {"blobs": sorted(datastore.directory.iterdir())},
            )

``make`` is called with ``place`` ``"store"`` for ``datastore`` and
``"other"`` for ``other_datastore``: two datastores must not share storage.
``backdoor`` returns what a datastore holds, looked at behind its back, as
collections by kind (files, objects, records rows...): all empty when it holds
nothing.

The suite reads what the datastore declares it can do (`Datastore.abilities`):
a datastore that ingests must accept the transfer modes it lists and refuse
every other with `~databutler.TransferModeError` before anything changes; one
that does not must refuse `Datastore.ingest` with `DatastoreAbilityError`.

To run over other registries, override ``registry_kind`` (one of
`~databutler.testing.database.database_ids`), or ``registry`` and
``other_registry`` themselves (each a new, empty `SqlRegistry`). The
backdoors of the built-in datastores are in
`~databutler.testing.datastore_backends`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import pytest

from .. import ConflictError, DatasetRef, DatasetType, TransferModeError
from ..datastores import (
    PROBLEM_KINDS,
    DatasetNotStoredError,
    Datastore,
    DatastoreAbilities,
    DatastoreAbilityError,
    StorageCheck,
    TrashFailure,
)
from ..registry import SqlRegistry
from ..registry.interfaces import DatastoreRegistryBridgeManager
from .database import database_factory

__all__ = [
    "ANY_OBJECT",
    "REGISTRY_KINDS",
    "DatastoreBackend",
    "DatastoreTests",
    "copy_datasets",
    "make_refs",
]

#: The database backends the suite's registries run over by default.
REGISTRY_KINDS = ("sqlite-memory", "postgresql")

D = TypeVar("D", bound=Datastore)


@dataclass(frozen=True)
class DatastoreBackend(Generic[D]):
    """How `DatastoreTests` makes datastores of one kind, and reads their storage directly.

    Parameters
    ----------
    make : `~collections.abc.Callable`
        ``make(bridges, place)``: a new datastore on the registry's
        `DatastoreRegistryBridgeManager`, keeping its artifacts in storage of
        its own named by ``place`` (``"store"`` or ``"other"``).
    backdoor : `~collections.abc.Callable`
        ``backdoor(datastore)``: what a datastore made by ``make`` holds,
        read without it (files, objects, records rows), as collections by
        kind; every one empty when it holds nothing.
    """

    make: Callable[[DatastoreRegistryBridgeManager, str], D]
    backdoor: Callable[[D], Mapping[str, Collection[Any]]]

    def holds_nothing(self, datastore: D) -> bool:
        """Whether the backdoor finds nothing at all in ``datastore``'s storage."""
        return not any(self.backdoor(datastore).values())


#: A storage class no registry defines: its datasets take any object, written by the
#: formatter its type calls for (what tests of other things than storage classes want).
ANY_OBJECT = "AnyObject"


def make_refs(
    registry: SqlRegistry, n: int, run: str = "run", *, storage_class: str = "StructuredDataDict"
) -> list[DatasetRef]:
    """``n`` new datasets of type ``thing`` (one per detector) in ``run``.

    ``thing`` is registered with ``storage_class`` (`ANY_OBJECT` for datasets
    of any kind) unless the registry has it already.
    """
    if not list(registry.queryDimensionRecords("instrument")):
        registry.insertDimensionData("instrument", {"instrument": "Cam"})
        registry.insertDimensionData(
            "detector", *({"instrument": "Cam", "detector": d} for d in range(100))
        )
    if "thing" not in [t.name for t in registry.queryDatasetTypes()]:
        registry.registerDatasetType(DatasetType("thing", ["detector"], storage_class))
    registry.registerRun(run)
    taken = len(registry.queryDatasets("thing", collections=run))
    return registry.insertDatasets(
        "thing", [{"instrument": "Cam", "detector": taken + d} for d in range(n)], run
    )


def copy_datasets(source: SqlRegistry, target: SqlRegistry, refs: list[DatasetRef]) -> None:
    """Insert the datasets ``refs`` of ``source`` into ``target``, keeping their ids."""
    for ref in refs:
        if ref.datasetType.name not in [t.name for t in target.queryDatasetTypes()]:
            target.registerDatasetType(ref.datasetType)
    make_refs(target, 0)  # the dimension records (and ``thing``, if no ref has it)
    for ref in refs:
        if ref.run is not None:
            target.registerRun(ref.run)
    target.import_datasets(refs)


class DatastoreTests:
    """Tests every datastore must pass; subclasses provide the ``backend`` fixture."""

    @pytest.fixture(params=REGISTRY_KINDS)
    def registry_kind(self, request: pytest.FixtureRequest) -> str:
        """The database the registries are in (one of `database_ids`)."""
        return str(request.param)

    @pytest.fixture
    def registry(
        self, registry_kind: str, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[SqlRegistry]:
        """A new registry, for ``datastore``."""
        with database_factory(registry_kind, tmp_path_factory.mktemp("registry")) as databases:
            yield SqlRegistry.create(databases.open())

    @pytest.fixture
    def other_registry(
        self, registry_kind: str, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[SqlRegistry]:
        """A second registry, for ``other_datastore``."""
        with database_factory(registry_kind, tmp_path_factory.mktemp("registry")) as databases:
            yield SqlRegistry.create(databases.open())

    @pytest.fixture
    def datastore(self, backend: DatastoreBackend[Datastore], registry: SqlRegistry) -> Datastore:
        """The datastore under test."""
        return backend.make(registry.datastore_bridges, "store")

    @pytest.fixture
    def other_datastore(
        self, backend: DatastoreBackend[Datastore], other_registry: SqlRegistry
    ) -> Datastore:
        """A datastore of the same kind in ``other_registry``, with storage of its own."""
        return backend.make(other_registry.datastore_bridges, "other")

    def test_put_get(self, registry, datastore) -> None:
        ref, other = make_refs(registry, 2)
        datastore.put({"a": [1, 2], "b": "x"}, ref)
        assert datastore.get(ref) == {"a": [1, 2], "b": "x"}
        assert datastore.get(ref, component="b") == "x"
        assert datastore.knows(ref) and datastore.exists(ref)
        assert not datastore.knows(other) and not datastore.exists(other)
        with pytest.raises(DatasetNotStoredError):
            datastore.get(other)
        # A chain registers no bridge: its children hold the dataset.
        assert set(registry.getDatasetLocations(ref)) == set(datastore.names)

    def test_put_twice_is_refused(self, registry, datastore) -> None:
        (ref,) = make_refs(registry, 1)
        datastore.put({"v": 1}, ref)
        with pytest.raises(ConflictError):
            datastore.put({"v": 2}, ref)
        assert datastore.get(ref) == {"v": 1}
        # Refused inside a transaction too: its rollback leaves the stored dataset alone.
        with pytest.raises(ConflictError), datastore.transaction():
            datastore.put({"v": 3}, ref)
        assert datastore.get(ref) == {"v": 1} and datastore.knows(ref)

    def test_get_returns_what_was_put_not_a_live_object(self, registry, datastore) -> None:
        (ref,) = make_refs(registry, 1)
        obj = {"v": [1]}
        datastore.put(obj, ref)
        obj["v"].append(2)
        assert datastore.get(ref) == {"v": [1]}

    def test_trash_then_empty(self, registry, datastore) -> None:
        refs = make_refs(registry, 3)
        datastore.put_many(({"i": i}, r) for i, r in enumerate(refs))
        with registry.transaction(), datastore.transaction():
            datastore.trash(refs[:2])
        assert [datastore.exists(r) for r in refs] == [False, False, True]
        assert datastore.empty_trash(dry_run=True) != []
        assert datastore.knows(refs[0])  # a dry run deletes nothing
        assert sorted(datastore.empty_trash()) == sorted(r.id for r in refs[:2])
        assert [datastore.knows(r) for r in refs] == [False, False, True]
        assert datastore.empty_trash() == []
        assert datastore.get(refs[2]) == {"i": 2}

    def test_empty_trash_of_selected_refs(self, registry, datastore) -> None:
        refs = make_refs(registry, 3)
        datastore.put_many(({"i": i}, r) for i, r in enumerate(refs))
        datastore.trash(refs)
        assert datastore.empty_trash(refs=[]) == []
        assert datastore.empty_trash(refs=refs[1:2]) == [refs[1].id]
        assert sorted(datastore.empty_trash()) == sorted([refs[0].id, refs[2].id])

    def test_failed_transaction_undoes_puts(self, registry, datastore) -> None:
        kept, undone = make_refs(registry, 2)
        datastore.put({"v": 1}, kept)
        with pytest.raises(RuntimeError, match="boom"), datastore.transaction():
            datastore.put({"v": 2}, undone)
            raise RuntimeError("boom")
        assert datastore.exists(kept) and not datastore.exists(undone)
        assert not datastore.knows(undone)
        # The enclosing (here: no) transaction is restored after the error.
        assert datastore._transaction is None
        datastore.put({"v": 3}, undone)  # and a retry succeeds
        assert datastore.get(undone) == {"v": 3}

    def test_nested_transactions(self, registry, datastore) -> None:
        first, second = make_refs(registry, 2)
        with pytest.raises(RuntimeError), datastore.transaction():
            with datastore.transaction():
                datastore.put({"v": 1}, first)
            datastore.put({"v": 2}, second)
            raise RuntimeError("outer fails")
        assert not datastore.exists(first) and not datastore.exists(second)

    def test_forget_and_remove(self, registry, datastore) -> None:
        refs = make_refs(registry, 2)
        datastore.put_many(({"i": i}, r) for i, r in enumerate(refs))
        datastore.forget(refs[0])
        assert not datastore.knows(refs[0])
        assert registry.getDatasetLocations(refs[0]) == frozenset()
        datastore.remove(refs[1])
        assert not datastore.knows(refs[1]) and not datastore.exists(refs[1])

    # -- URIs, transfers, retrieval, export ---------------------------------------

    def test_get_uris(self, registry, datastore) -> None:
        first, second, absent = make_refs(registry, 3)
        datastore.put_many([({"v": 1}, first), ({"v": 2}, second)])
        uris = datastore.get_uris([first, second, absent])
        assert set(uris) == {first.id, second.id}  # what is not held is left out
        assert len(set(uris.values())) == 2
        assert all(uri.startswith(("file:///", "s3://", "mem://")) for uri in uris.values())
        assert datastore.get_uri(first) == uris[first.id]
        with pytest.raises(DatasetNotStoredError):
            datastore.get_uri(absent)
        datastore.trash(first)
        assert datastore.get_uris([first, second]) == {second.id: uris[second.id]}

    def test_transfer_from_another_registry(
        self, registry, datastore, other_registry, other_datastore
    ) -> None:
        refs = make_refs(registry, 3)
        datastore.put_many(({"i": i}, r) for i, r in enumerate(refs[:2]))  # refs[2] not held
        copy_datasets(registry, other_registry, refs)
        done = other_datastore.transfer_from(datastore, refs)
        assert sorted(r.id for r in done) == sorted(r.id for r in refs[:2])
        assert [other_datastore.get(r) for r in refs[:2]] == [{"i": 0}, {"i": 1}]
        assert not other_datastore.knows(refs[2])
        names = set(other_datastore.names)
        assert set(other_registry.getDatasetLocations(refs[0])) == names
        assert set(registry.getDatasetLocations(refs[0])) == set(datastore.names)
        # What the target holds already is skipped; the source keeps everything.
        assert other_datastore.transfer_from(datastore, refs) == []
        assert datastore.get(refs[1]) == {"i": 1}

    def test_transfer_is_undone_with_its_transaction(
        self, registry, datastore, other_registry, other_datastore, backend
    ) -> None:
        refs = make_refs(registry, 2)
        datastore.put_many(({"i": i}, r) for i, r in enumerate(refs))
        copy_datasets(registry, other_registry, refs)
        with pytest.raises(ValueError, match=r"Unknown transfer mode 'move'|'move' is not"):
            other_datastore.transfer_from(datastore, refs, transfer="move")
        with pytest.raises(RuntimeError, match="boom"), other_datastore.transaction():
            other_datastore.transfer_from(datastore, refs)
            raise RuntimeError("boom")
        assert backend.holds_nothing(other_datastore)
        assert other_registry.getDatasetLocations(refs[0]) == frozenset()
        assert len(other_datastore.transfer_from(datastore, refs)) == 2  # a retry succeeds

    def test_retrieve_artifacts(self, registry, datastore, tmp_path: Path) -> None:
        refs = make_refs(registry, 2)
        absent = make_refs(registry, 1)[0]
        datastore.put_many(({"i": i}, r) for i, r in enumerate(refs))
        out = tmp_path / "out"
        paths = datastore.retrieve_artifacts(refs, out)
        assert len(paths) == 2 and all(p.is_file() and p.is_relative_to(out) for p in paths)
        assert sorted(json.loads(p.read_text())["i"] for p in paths) == [0, 1]
        assert all(len(p.relative_to(out).parts) > 1 for p in paths)  # the datastore's layout
        before = [p.stat().st_mtime_ns for p in paths]
        with pytest.raises(FileExistsError, match="overwrite=True"):
            datastore.retrieve_artifacts(refs, out)
        assert [p.stat().st_mtime_ns for p in paths] == before
        assert datastore.retrieve_artifacts(refs, out, overwrite=True) == paths
        flat = datastore.retrieve_artifacts(refs, tmp_path / "flat", preserve_path=False)
        assert sorted(p.name for p in flat) == sorted(p.name for p in paths)
        assert all(p.parent == tmp_path / "flat" for p in flat)
        with pytest.raises(DatasetNotStoredError, match=str(absent.id)):
            datastore.retrieve_artifacts([refs[0], absent], tmp_path / "none")
        with pytest.raises(ValueError, match="Unknown transfer mode 'move'"):
            datastore.retrieve_artifacts(refs, tmp_path / "none", transfer="move")
        assert not (tmp_path / "none").exists()

    def test_export(self, registry, datastore, tmp_path: Path) -> None:
        refs = make_refs(registry, 2)
        datastore.put_many(({"i": i}, r) for i, r in enumerate(refs))
        exported = datastore.export(refs, directory=tmp_path / "export")
        assert sorted(d.refs[0].id for d in exported) == sorted(r.id for r in refs)
        for dataset in exported:
            assert len(dataset.refs) == 1 and dataset.formatter == "json"
            assert not Path(dataset.path).is_absolute()
            content = json.loads((tmp_path / "export" / dataset.path).read_text())
            assert content == datastore.get(dataset.refs[0])
        with pytest.raises(FileExistsError):
            datastore.export(refs, directory=tmp_path / "export")
        with pytest.raises(ValueError, match="needs a directory"):
            datastore.export(refs, directory=None)
        uris = datastore.get_uris(refs)
        if all(uri.startswith(("file:", "s3:")) for uri in uris.values()):
            in_place = datastore.export(refs, directory=None, transfer=None)
            assert {d.path for d in in_place} == set(uris.values())
        else:
            with pytest.raises(ValueError, match="not a file"):
                datastore.export(refs, directory=None, transfer=None)

    # -- abilities -------------------------------------------------------------------

    def test_declares_abilities(self, datastore) -> None:
        abilities = datastore.abilities
        assert isinstance(abilities, DatastoreAbilities)
        assert datastore.is_ephemeral is abilities.ephemeral
        assert datastore.transfer_modes == abilities.transfer_modes
        assert all(mode is None or isinstance(mode, str) for mode in abilities.transfer_modes)
        if abilities.supports_ingest:
            assert abilities.transfer_modes, "a datastore that ingests names its transfer modes"
        else:
            assert not abilities.transfer_modes
        # The datastores holding the artifacts each have a bridge, and their names are
        # those the registry records datasets under.
        assert datastore.leaves and all(leaf.has_bridge for leaf in datastore.leaves)
        assert datastore.names == tuple(leaf.name for leaf in datastore.leaves)
        if datastore.has_bridge:
            assert datastore.bridge.datastoreName == datastore.name
        else:
            with pytest.raises(DatastoreAbilityError, match=f"{datastore.name!r} has no bridge"):
                datastore.bridge  # noqa: B018

    def test_ingest_without_the_ability_is_refused(
        self, registry, datastore, backend, tmp_path: Path
    ) -> None:
        if datastore.abilities.supports_ingest:
            pytest.skip("this datastore ingests files")
        (ref,) = make_refs(registry, 1)
        source = _outside_file(tmp_path, {"v": 7})
        with pytest.raises(DatastoreAbilityError, match="cannot ingest"):
            datastore.ingest([(source, ref)], transfer="copy")
        assert backend.holds_nothing(datastore) and not datastore.knows(ref)
        assert registry.getDatasetLocations(ref) == frozenset()
        assert json.loads(source.read_text()) == {"v": 7}

    def test_ingest_refuses_an_undeclared_transfer_mode(
        self, registry, datastore, backend, tmp_path: Path
    ) -> None:
        if not datastore.abilities.supports_ingest:
            pytest.skip("this datastore does not ingest files")
        modes = datastore.abilities.transfer_modes
        (ref,) = make_refs(registry, 1)
        source = _outside_file(tmp_path, {"v": 7})
        for mode in ("teleport", *sorted(_COMMON_MODES - modes, key=str)):
            with pytest.raises(TransferModeError):
                datastore.ingest([(source, ref)], transfer=mode)
            assert backend.holds_nothing(datastore) and not datastore.knows(ref)
            assert registry.getDatasetLocations(ref) == frozenset()
            assert json.loads(source.read_text()) == {"v": 7}

    def test_ingest_copy(self, registry, datastore, backend, tmp_path: Path) -> None:
        if "copy" not in datastore.abilities.transfer_modes:
            pytest.skip("this datastore does not ingest by copying")
        kept, undone = make_refs(registry, 2)
        source = _outside_file(tmp_path, {"v": 7})
        with pytest.raises(RuntimeError, match="boom"), datastore.transaction():
            datastore.ingest([(source, undone)], transfer="copy")
            raise RuntimeError("boom")
        assert backend.holds_nothing(datastore) and not datastore.knows(undone)
        assert registry.getDatasetLocations(undone) == frozenset()
        datastore.ingest([(source, kept)], transfer="copy")
        assert datastore.get(kept) == {"v": 7} and datastore.exists(kept)
        locations = set(registry.getDatasetLocations(kept))
        assert locations and locations <= set(datastore.names)
        assert json.loads(source.read_text()) == {"v": 7}  # copied, not moved

    # -- maintenance: verify_storage, recover_moves, trash_failures ------------------

    def test_verify_storage_of_a_consistent_datastore(self, registry, datastore, backend) -> None:
        refs = make_refs(registry, 3)
        datastore.put_many(({"i": i}, r) for i, r in enumerate(refs))
        before = backend.backdoor(datastore)
        entered = []

        @contextmanager
        def reading() -> Iterator[None]:
            entered.append(True)
            yield

        for leaf in datastore.leaves:
            check = leaf.verify_storage(checksums=True, reading=reading)
            assert isinstance(check, StorageCheck)
            assert check.problems == [] and check.repaired == {}
            assert check.checked >= 0
            # Repairing a consistent datastore changes nothing, unknown files included.
            check = leaf.verify_storage(repair=True, delete_unknown=True, reading=reading)
            assert check.problems == [] and check.repaired == {}
        assert len(entered) <= 2 * len(datastore.leaves)  # at most once a call
        assert backend.backdoor(datastore) == before
        assert [datastore.get(r) for r in refs] == [{"i": 0}, {"i": 1}, {"i": 2}]
        # Without a reading context, and on the datastore itself (a chain's checks are
        # its leaves': it finds nothing of its own).
        assert datastore.verify_storage().problems == []

    def test_verify_storage_reports_and_repairs_stale_trash(self, registry, datastore) -> None:
        refs = make_refs(registry, 3)
        datastore.put_many(({"i": i}, r) for i, r in enumerate(refs))
        datastore.trash(refs[:2])  # the trash is not emptied
        trashed = {r.id for r in refs[:2]}
        for leaf in datastore.leaves:
            check = leaf.verify_storage()
            assert {p.kind for p in check.problems} <= {"stale_trash"}
            assert all(p.kind in PROBLEM_KINDS for p in check.problems)
            assert all(p.datastore == leaf.name for p in check.problems)
            assert {p.dataset_id for p in check.problems} <= trashed
            assert leaf.empty_trash(dry_run=True) != []  # a check repairs nothing
            reported = len(check.problems)
            check = leaf.verify_storage(repair=True)
            assert len(check.problems) == reported
            if reported:  # a datastore that reports stale trash empties it on repair
                assert check.repaired == {"stale_trash": reported}
                assert leaf.empty_trash(dry_run=True) == []
                assert leaf.verify_storage().problems == []
        assert datastore.get(refs[2]) == {"i": 2}

    def test_recover_moves_with_nothing_to_recover(self, registry, datastore, backend) -> None:
        refs = make_refs(registry, 2)
        datastore.put_many(({"i": i}, r) for i, r in enumerate(refs))
        before = backend.backdoor(datastore)
        for leaf in datastore.leaves:
            leaf.recover_moves()
        assert backend.backdoor(datastore) == before
        assert [datastore.get(r) for r in refs] == [{"i": 0}, {"i": 1}]

    def test_trash_failures_after_emptying(self, registry, datastore) -> None:
        refs = make_refs(registry, 2)
        datastore.put_many(({"i": i}, r) for i, r in enumerate(refs))
        for leaf in datastore.leaves:
            assert all(isinstance(f, TrashFailure) for f in leaf.trash_failures)
        datastore.trash(refs)
        assert sorted(datastore.empty_trash()) == sorted(r.id for r in refs)
        for leaf in datastore.leaves:
            assert list(leaf.trash_failures) == []  # every artifact could be deleted


#: The transfer modes of the built-in datastores' `ingest`.
_COMMON_MODES: frozenset[str | None] = frozenset(
    {None, "auto", "direct", "copy", "move", "link", "hardlink", "symlink", "relsymlink"}
)


def _outside_file(tmp_path: Path, content: Any) -> Path:
    """A JSON file of ``content`` outside every datastore's storage, to ingest."""
    path = tmp_path / "outside" / "source.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(content))
    return path
