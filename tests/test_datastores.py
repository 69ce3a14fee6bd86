"""The datastore contract over every datastore: memory, files on disk, files on S3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from databutler import DatabutlerError, TransferModeError
from databutler.datastores import (
    DatastoreAbilities,
    DatastoreAbilityError,
    FileDatastore,
    InMemoryDatastore,
)
from databutler.datastores.resources.s3 import S3Store
from databutler.registry import SqlRegistry
from databutler.registry.interfaces import DatastoreRegistryBridgeManager
from databutler.testing.datastore import DatastoreBackend, DatastoreTests, make_refs
from databutler.testing.datastore_backends import file_backdoor, memory_backdoor
from databutler.testing.s3 import make_bucket, s3_endpoint


@pytest.fixture(scope="module")
def s3_client() -> Iterator[Any]:
    with s3_endpoint() as client:
        yield client


class TestInMemoryDatastore(DatastoreTests):
    @pytest.fixture
    def backend(self) -> DatastoreBackend[InMemoryDatastore]:
        return DatastoreBackend(
            make=lambda bridges, place: InMemoryDatastore("memory", bridges),
            backdoor=memory_backdoor,
        )


class TestLocalFileDatastore(DatastoreTests):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> DatastoreBackend[FileDatastore]:
        return DatastoreBackend(
            make=lambda bridges, place: FileDatastore("files", bridges, str(tmp_path / place)),
            backdoor=file_backdoor,
        )

    def test_artifacts_on_disk(
        self, registry: SqlRegistry, datastore: FileDatastore, tmp_path: Path
    ) -> None:
        refs = make_refs(registry, 2)
        datastore.put_many(({"i": i}, r) for i, r in enumerate(refs))
        files = sorted(
            p.relative_to(tmp_path / "store").as_posix()
            for p in (tmp_path / "store").rglob("*")
            if p.is_file()
        )
        assert files == sorted(f"run/thing/thing_{r.id}.json" for r in refs)
        assert datastore.get_uri(refs[0]).endswith(f"run/thing/thing_{refs[0].id}.json")
        datastore.trash(refs[0])
        datastore.empty_trash()
        assert not (tmp_path / "store" / f"run/thing/thing_{refs[0].id}.json").exists()

    def test_failed_serialisation_writes_nothing(
        self, registry: SqlRegistry, datastore: FileDatastore, tmp_path: Path
    ) -> None:
        (ref,) = make_refs(registry, 1)
        datastore_json = FileDatastore(
            "strict",
            registry.datastore_bridges,
            str(tmp_path / "strict"),
            formatters={"thing": "json"},
        )
        with pytest.raises(ValueError, match="json"):
            datastore_json.put({"not json": {1, 2}}, ref)
        assert not any(p.is_file() for p in (tmp_path / "strict").rglob("*"))
        assert not datastore_json.knows(ref)
        assert registry.getDatasetLocations(ref) == frozenset()

    def test_failed_registration_leaves_no_file(
        self, registry: SqlRegistry, datastore: FileDatastore, tmp_path: Path
    ) -> None:
        (ref,) = make_refs(registry, 1)
        registry.removeDatasets([ref])  # the dataset is gone: the bridge's foreign key refuses it
        with pytest.raises(Exception, match="not a dataset of the registry"):
            datastore.put({"v": 1}, ref)
        assert not any(p.is_file() for p in (tmp_path / "store").rglob("*"))
        assert not datastore.knows(ref)

    def test_shared_artifacts_are_kept(
        self, registry: SqlRegistry, datastore: FileDatastore, tmp_path: Path
    ) -> None:
        first, second = make_refs(registry, 2)
        datastore.put({"v": 1}, first)
        # A second dataset recorded on the same artifact (as ingest of a shared file does).
        (info,) = datastore.records.fetch(dataset_id=first.id)
        datastore.records.insert({**info, "dataset_id": second.id})
        datastore.bridge.insert([second])
        datastore.trash(first)
        datastore.empty_trash()
        assert datastore.get(second) == {"v": 1}  # its artifact survived


class TestS3FileDatastore(DatastoreTests):
    @pytest.fixture
    def backend(self, s3_client: Any) -> DatastoreBackend[FileDatastore]:
        def make(bridges: DatastoreRegistryBridgeManager, place: str) -> FileDatastore:
            store = S3Store(f"s3://{make_bucket(s3_client)}/{place}", client=s3_client)
            # Checksums recorded in one of the two, so transfers meet both kinds of record.
            return FileDatastore("s3files", bridges, store, checksum=place == "store")

        return DatastoreBackend(make=make, backdoor=file_backdoor)


class TestIngest:
    @pytest.fixture
    def registry(self) -> SqlRegistry:
        return SqlRegistry.create("sqlite://")

    @pytest.fixture
    def datastore(self, registry: SqlRegistry, tmp_path: Path) -> FileDatastore:
        return FileDatastore("files", registry.datastore_bridges, str(tmp_path / "store"))

    def _outside(self, tmp_path: Path, name: str, value: int) -> Path:
        path = tmp_path / "outside" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(f'{{"v": {value}}}')
        return path

    @pytest.mark.parametrize(
        "mode", ["copy", "move", "link", "hardlink", "symlink", "relsymlink", "auto"]
    )
    def test_transfer_modes(
        self, registry: SqlRegistry, datastore: FileDatastore, tmp_path: Path, mode: str
    ) -> None:
        (ref,) = make_refs(registry, 1)
        source = self._outside(tmp_path, "a.json", 7)
        datastore.ingest([(source, ref)], transfer=mode)
        assert datastore.get(ref) == {"v": 7}
        assert source.exists() == (mode != "move")
        datastore.remove(ref)
        assert not datastore.knows(ref)
        if mode != "move":
            assert source.read_text() == '{"v": 7}'  # removing never touches the original

    def test_direct_and_in_place(
        self, registry: SqlRegistry, datastore: FileDatastore, tmp_path: Path
    ) -> None:
        direct_ref, inside_ref = make_refs(registry, 2)
        source = self._outside(tmp_path, "direct.json", 1)
        datastore.ingest([(source, direct_ref)], transfer="direct")
        assert datastore.get(direct_ref) == {"v": 1}
        inside = tmp_path / "store" / "raw" / "in.json"
        inside.parent.mkdir(parents=True)
        inside.write_text('{"v": 2}')
        datastore.ingest([(inside, inside_ref)], transfer=None)
        assert datastore.get(inside_ref) == {"v": 2}
        datastore.remove([direct_ref, inside_ref])
        assert source.exists()  # a direct ingest is never deleted
        assert not inside.exists()

    def test_ingest_errors_change_nothing(
        self, registry: SqlRegistry, datastore: FileDatastore, tmp_path: Path
    ) -> None:
        ref, gone = make_refs(registry, 2)
        source = self._outside(tmp_path, "b.json", 3)
        with pytest.raises(FileNotFoundError):
            datastore.ingest([(tmp_path / "missing.json", ref)], transfer="copy")
        with pytest.raises(ValueError, match="Unknown transfer mode 'teleport'"):
            datastore.ingest([(source, ref)], transfer="teleport")
        with pytest.raises(ValueError, match="outside the datastore root"):
            datastore.ingest([(source, ref)], transfer=None)
        other = self._outside(tmp_path, "c.json", 4)
        registry.removeDatasets([gone])
        for mode in ("copy", "move"):
            with pytest.raises(Exception, match="not a dataset of the registry"):
                datastore.ingest([(source, ref), (other, gone)], transfer=mode)
            # A failed move gives the files back.
            assert source.read_text() == '{"v": 3}' and other.read_text() == '{"v": 4}'
        assert not any(p.is_file() for p in (tmp_path / "store").rglob("*"))
        assert not datastore.knows(ref)


def test_standalone_file_datastore(tmp_path: Path) -> None:
    """No registry around it: an SQLite file with only the dataset-id, bridge and opaque tables."""
    import uuid

    import sqlalchemy

    from databutler import DatasetRef, DatasetType
    from databutler.registry import RegistryManagerTypes, open_database

    uri = f"sqlite:///{tmp_path / 'standalone.sqlite3'}"
    repo = RegistryManagerTypes().makeRepo(open_database(uri))
    thing = DatasetType("thing", ["detector"], "StructuredDataDict")
    refs = [
        DatasetRef(thing, {"instrument": "Cam", "detector": d}, run="r", id=uuid.uuid4())
        for d in range(3)
    ]
    repo.datasets.insert([r.id for r in refs])  # type: ignore[attr-defined]
    store = FileDatastore("files", repo.datastores, tmp_path / "store")
    store.put_many(({"d": d}, ref) for d, ref in enumerate(refs))
    with repo.db.transaction():
        store.trash(refs[:1])
    assert store.empty_trash() == [refs[0].id]

    # Reopened from the file alone, it still knows what it holds.
    again = RegistryManagerTypes().loadRepo(open_database(uri))
    reopened = FileDatastore("files", again.datastores, tmp_path / "store")
    assert [reopened.get(r) for r in refs[1:]] == [{"d": 1}, {"d": 2}]
    assert not reopened.knows(refs[0])
    tables = set(sqlalchemy.inspect(again.db._engine).get_table_names())
    assert {"dataset", "dataset_location", "dataset_location_trash", "files_records"} <= tables
    assert len(list((tmp_path / "store").rglob("*.json"))) == 2


class TestAbilities:
    """What the built-in datastores declare, and the base class's defaults."""

    def test_built_in(self, tmp_path: Path) -> None:
        bridges = SqlRegistry.create("sqlite://").datastore_bridges
        files = FileDatastore("files", bridges, str(tmp_path / "store"))
        memory = InMemoryDatastore("memory", bridges)
        assert files.abilities.supports_ingest and not files.is_ephemeral
        assert files.transfer_modes == files.abilities.transfer_modes >= {None, "copy", "direct"}
        assert memory.abilities == DatastoreAbilities(ephemeral=True) and memory.is_ephemeral
        assert files.has_bridge and files.leaves == (files,) and files.names == ("files",)
        assert files.children == () and files.bridge.datastoreName == "files"
        assert hash(files.abilities) == hash(FileDatastore("f2", bridges, "mem://").abilities)

    def test_no_transfer_modes_without_ingest(self) -> None:
        with pytest.raises(ValueError, match="supports_ingest"):
            DatastoreAbilities(transfer_modes=frozenset({"copy"}))
        assert DatastoreAbilities() == DatastoreAbilities(
            ephemeral=False, supports_ingest=False, transfer_modes=frozenset()
        )

    def test_refusals_are_databutler_errors(self, tmp_path: Path) -> None:
        bridges = SqlRegistry.create("sqlite://").datastore_bridges
        memory = InMemoryDatastore("memory", bridges)
        with pytest.raises(DatastoreAbilityError, match=r"'memory' .* cannot ingest") as caught:
            memory.ingest([])
        assert isinstance(caught.value, DatabutlerError) and isinstance(caught.value, TypeError)
        files = FileDatastore("files", bridges, str(tmp_path / "store"))
        with pytest.raises(TransferModeError, match="Unknown transfer mode 'teleport'"):
            files.ingest([], transfer="teleport")
