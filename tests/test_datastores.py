"""The datastore contract over every datastore: memory, files on disk, files on S3."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from databutler.datastores import FileDatastore, InMemoryDatastore
from databutler.datastores.resources.s3 import S3Store
from databutler.registry import SqlRegistry
from databutler.testing.datastore import DatastoreTests, make_refs
from databutler.testing.s3 import make_bucket, s3_endpoint


@pytest.fixture(scope="module")
def s3_client() -> Iterator[Any]:
    with s3_endpoint() as client:
        yield client


class TestInMemoryDatastore(DatastoreTests):
    @pytest.fixture
    def datastore(self, registry: SqlRegistry) -> InMemoryDatastore:
        return InMemoryDatastore("memory", registry.datastore_bridges)


class TestLocalFileDatastore(DatastoreTests):
    @pytest.fixture
    def datastore(self, registry: SqlRegistry, tmp_path: Path) -> FileDatastore:
        return FileDatastore("files", registry.datastore_bridges, str(tmp_path / "store"))

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
        datastore.emptyTrash()
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
        datastore.emptyTrash()
        assert datastore.get(second) == {"v": 1}  # its artifact survived


class TestS3FileDatastore(DatastoreTests):
    @pytest.fixture
    def datastore(self, registry: SqlRegistry, s3_client: Any) -> FileDatastore:
        bucket = make_bucket(s3_client)
        store = S3Store(f"s3://{bucket}/repo", client=s3_client)
        return FileDatastore("s3files", registry.datastore_bridges, store, checksum=True)
