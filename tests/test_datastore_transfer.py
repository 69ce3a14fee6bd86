"""What only file datastores do: zip archives, trust mode, transfer and link modes, S3 ↔ local.

Every failure is checked through backdoors — the directory or the bucket,
and raw SQL on the records and bridge tables — to leave no file and no row.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy

from databutler import (
    AlreadyExistsError,
    AmbiguousDatasetError,
    ConflictError,
    DatasetRef,
    FileDataset,
)
from databutler.datastores import (
    DatasetNotStoredError,
    FileDatastore,
    InMemoryDatastore,
    datastore_from_config,
)
from databutler.datastores.resources import InvalidPathError
from databutler.datastores.resources.s3 import S3Store
from databutler.registry import SqlRegistry
from databutler.testing.datastore import ANY_OBJECT, copy_datasets, make_refs
from databutler.testing.s3 import make_bucket, s3_endpoint


@pytest.fixture(scope="module")
def s3_client() -> Iterator[Any]:
    with s3_endpoint() as client:
        yield client


@pytest.fixture
def registry() -> SqlRegistry:
    return SqlRegistry.create("sqlite://")


@pytest.fixture
def other_registry() -> SqlRegistry:
    return SqlRegistry.create("sqlite://")


@pytest.fixture
def datastore(registry: SqlRegistry, tmp_path: Path) -> FileDatastore:
    return FileDatastore("files", registry.datastore_bridges, str(tmp_path / "store"))


def files(root: Path) -> list[str]:
    """The files under ``root``, behind the datastore's back."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def rows(registry: SqlRegistry, datastore: FileDatastore) -> dict[str, int]:
    """Rows of the records table and of this datastore's bridge rows, by raw SQL."""
    bridges: Any = registry.datastore_bridges
    counts = {}
    for name, table, where in [
        ("records", datastore.records.table, None),  # type: ignore[attr-defined]
        ("locations", bridges.location_table, bridges.location_table.c.datastore_name),
        ("trash", bridges.trash_table, bridges.trash_table.c.datastore_name),
    ]:
        sql = sqlalchemy.select(sqlalchemy.func.count()).select_from(table)
        if where is not None:
            sql = sql.where(where == datastore.name)
        with registry.db.query(sql) as result:
            counts[name] = result.scalar_one()
    return counts


NOTHING = {"records": 0, "locations": 0, "trash": 0}


# -- zip archives -------------------------------------------------------------------


class TestZip:
    def test_one_archive_for_many_datasets(
        self, registry: SqlRegistry, datastore: FileDatastore, tmp_path: Path
    ) -> None:
        refs = make_refs(registry, 100)
        uri = datastore.put_zip(({"i": i}, r) for i, r in enumerate(refs))
        assert files(tmp_path / "store") == [uri.rsplit("/", 2)[-2] + "/" + uri.rsplit("/")[-1]]
        assert uri.startswith("file:///") and "/zips/" in uri
        assert [datastore.get(r) for r in refs] == [{"i": i} for i in range(100)]
        assert datastore.get(refs[3], component="i") == 3
        member_uri = datastore.get_uri(refs[0])
        assert member_uri.startswith(f"{uri}#") and member_uri.endswith(f"{refs[0].id}.json")
        assert all(datastore.exists_many(refs).values())
        datastore.trash(refs[:99])
        assert sorted(datastore.empty_trash()) == sorted(r.id for r in refs[:99])
        assert len(files(tmp_path / "store")) == 1  # kept: one member is still held
        assert datastore.get(refs[99]) == {"i": 99}
        datastore.trash(refs[99])
        assert datastore.empty_trash() == [refs[99].id]
        assert files(tmp_path / "store") == []
        assert rows(registry, datastore) == NOTHING

    def test_named_archive_and_records(
        self, registry: SqlRegistry, datastore: FileDatastore
    ) -> None:
        refs = make_refs(registry, 2, storage_class=ANY_OBJECT)  # formats by the objects' types
        datastore.put_zip([({"a": 1}, refs[0]), (b"raw", refs[1])], name="batch-1")
        records = list(datastore.records.fetch())
        assert {r["path"] for r in records} == {"zips/batch-1.zip"}
        assert sorted(r["formatter"] for r in records) == ["bytes", "json"]
        assert datastore.get(refs[1]) == b"raw"
        with zipfile.ZipFile(datastore.store.local_path("zips/batch-1.zip")) as archive:  # type: ignore[attr-defined]
            assert all(i.compress_type == zipfile.ZIP_STORED for i in archive.infolist())

    @pytest.mark.parametrize(
        ("name", "message"),
        [("../up", "plain file name"), ("a/b", "plain file name"), ("x#y", "plain file name")],
    )
    def test_bad_archive_names(
        self,
        registry: SqlRegistry,
        datastore: FileDatastore,
        tmp_path: Path,
        name: str,
        message: str,
    ) -> None:
        (ref,) = make_refs(registry, 1)
        with pytest.raises(ValueError, match=message):
            datastore.put_zip([({"v": 1}, ref)], name=name)
        assert files(tmp_path / "store") == [] and rows(registry, datastore) == NOTHING

    def test_put_zip_failures_leave_nothing(
        self, registry: SqlRegistry, datastore: FileDatastore, tmp_path: Path
    ) -> None:
        ref, gone = make_refs(registry, 2)
        with pytest.raises(ValueError, match="at least one"):
            datastore.put_zip([])
        with pytest.raises(ValueError, match="given twice"):
            datastore.put_zip([({"v": 1}, ref), ({"v": 2}, ref)])
        with pytest.raises(AmbiguousDatasetError, match="has no id"):  # refs always have one
            datastore.put_zip([({"v": 1}, DatasetRef(ref.datasetType, ref.dataId, "run"))])
        registry.removeDatasets([gone])  # the bridge's foreign key refuses it
        with pytest.raises(Exception, match="not a dataset of the registry"):
            datastore.put_zip([({"v": 1}, ref), ({"v": 2}, gone)], name="n")
        assert files(tmp_path / "store") == [] and rows(registry, datastore) == NOTHING
        datastore.put_zip([({"v": 1}, ref)], name="n")  # a retry succeeds
        assert datastore.get(ref) == {"v": 1}
        with pytest.raises(ConflictError, match="already has an artifact"):
            datastore.put_zip([({"v": 1}, make_refs(registry, 1)[0])], name="n")

    def test_rolled_back_transaction_removes_the_archive(
        self, registry: SqlRegistry, datastore: FileDatastore, tmp_path: Path
    ) -> None:
        refs = make_refs(registry, 3)
        with pytest.raises(RuntimeError), datastore.transaction():
            datastore.put_zip(({"i": i}, r) for i, r in enumerate(refs))
            raise RuntimeError("boom")
        assert files(tmp_path / "store") == [] and rows(registry, datastore) == NOTHING

    def test_on_s3_with_checksums(self, registry: SqlRegistry, s3_client: Any) -> None:
        bucket = make_bucket(s3_client)
        store = S3Store(f"s3://{bucket}/repo", client=s3_client)
        datastore = FileDatastore("s3", registry.datastore_bridges, store, checksum=True)
        refs = make_refs(registry, 5)
        uri = datastore.put_zip(({"i": i}, r) for i, r in enumerate(refs))
        assert uri.startswith(f"s3://{bucket}/repo/zips/")
        assert [datastore.get(r) for r in refs] == [{"i": i} for i in range(5)]
        assert len(s3_client.list_objects_v2(Bucket=bucket)["Contents"]) == 1
        datastore.remove(refs)
        assert "Contents" not in s3_client.list_objects_v2(Bucket=bucket)

    def test_retrieve_and_export_extract_members(
        self, registry: SqlRegistry, datastore: FileDatastore, tmp_path: Path
    ) -> None:
        refs = make_refs(registry, 3)
        datastore.put_zip(({"i": i}, r) for i, r in enumerate(refs))
        paths = datastore.retrieve_artifacts(refs, tmp_path / "out", transfer="symlink")
        assert [json.loads(p.read_text()) for p in paths] == [{"i": i} for i in range(3)]
        assert not any(p.is_symlink() for p in paths)  # members are always extracted
        assert {p.relative_to(tmp_path / "out").as_posix() for p in paths} == {
            f"run/thing/thing_{r.id}.json" for r in refs
        }
        exported = datastore.export(refs, directory=tmp_path / "export")
        assert [d.path for d in exported] == [f"run/thing/thing_{r.id}.json" for r in refs]
        in_place = datastore.export(refs, directory=None, transfer=None)
        assert all("#run/thing/" in d.path for d in in_place)


class TestIngestZip:
    def _zip(self, tmp_path: Path, members: dict[str, bytes], name: str = "in.zip") -> Path:
        path = tmp_path / "outside" / name
        path.parent.mkdir(exist_ok=True)
        with zipfile.ZipFile(path, "w") as archive:
            for member, data in members.items():
                archive.writestr(member, data)
        return path

    @pytest.mark.parametrize("mode", ["copy", "move", "symlink", "hardlink", "direct", "auto"])
    def test_modes(
        self, registry: SqlRegistry, datastore: FileDatastore, tmp_path: Path, mode: str
    ) -> None:
        first, second = make_refs(registry, 2)
        source = self._zip(tmp_path, {"a.json": b'{"v": 1}', "d/b.yaml": b"v: 2\n", "x": b"?"})
        datastore.ingest_zip(source, {"a.json": first, "d/b.yaml": second}, transfer=mode)
        assert datastore.get(first) == {"v": 1} and datastore.get(second) == {"v": 2}
        assert datastore.get_uri(second).endswith(".zip#d/b.yaml")
        assert source.exists() == (mode != "move")
        datastore.remove([first, second])
        assert files(tmp_path / "store") == [] and rows(registry, datastore) == NOTHING
        if mode == "direct":
            assert source.exists()  # never deleted

    def test_in_place(
        self, registry: SqlRegistry, datastore: FileDatastore, tmp_path: Path
    ) -> None:
        (ref,) = make_refs(registry, 1, storage_class=ANY_OBJECT)  # a list, not a dict
        inside = self._zip(tmp_path / "store", {"a.json": b"[1]"})
        datastore.ingest_zip(inside, {"a.json": ref}, transfer=None)
        assert datastore.get(ref) == [1]
        assert datastore.get_uri(ref) == f"{inside.as_uri()}#a.json"

    @pytest.mark.parametrize(
        ("member", "error", "message"),
        [
            ("../evil.json", InvalidPathError, "'..'"),
            ("/abs.json", InvalidPathError, "absolute"),
            ("a#b.json", InvalidPathError, "'#'"),
            ("missing.json", ValueError, "no member\\(s\\) 'missing.json'"),
        ],
    )
    def test_bad_members(
        self,
        registry: SqlRegistry,
        datastore: FileDatastore,
        tmp_path: Path,
        member: str,
        error: type[Exception],
        message: str,
    ) -> None:
        (ref,) = make_refs(registry, 1)
        source = self._zip(tmp_path, {"a.json": b"1"})
        with pytest.raises(error, match=message):
            datastore.ingest_zip(source, {member: ref})
        assert files(tmp_path / "store") == [] and rows(registry, datastore) == NOTHING

    def test_bad_inputs(
        self, registry: SqlRegistry, datastore: FileDatastore, tmp_path: Path
    ) -> None:
        (ref,) = make_refs(registry, 1)
        source = self._zip(tmp_path, {"a.json": b"1"})
        not_zip = tmp_path / "outside" / "plain.zip"
        not_zip.write_text("hello")
        with pytest.raises(ValueError, match="is not a zip archive"):
            datastore.ingest_zip(not_zip, {"a.json": ref})
        with pytest.raises(FileNotFoundError):
            datastore.ingest_zip(tmp_path / "nope.zip", {"a.json": ref})
        with pytest.raises(ValueError, match="Unknown transfer mode 'teleport'"):
            datastore.ingest_zip(source, {"a.json": ref}, transfer="teleport")
        with pytest.raises(ValueError, match="outside the datastore root"):
            datastore.ingest_zip(source, {"a.json": ref}, transfer=None)
        with pytest.raises(ValueError, match="No member"):
            datastore.ingest_zip(source, {})
        assert files(tmp_path / "store") == [] and rows(registry, datastore) == NOTHING

    @pytest.mark.parametrize("mode", ["copy", "move"])
    def test_failed_registration(
        self, registry: SqlRegistry, datastore: FileDatastore, tmp_path: Path, mode: str
    ) -> None:
        ref, gone = make_refs(registry, 2)
        source = self._zip(tmp_path, {"a.json": b"1", "b.json": b"2"})
        registry.removeDatasets([gone])
        with pytest.raises(Exception, match="not a dataset of the registry"):
            datastore.ingest_zip(source, {"a.json": ref, "b.json": gone}, transfer=mode)
        assert source.is_file()  # a failed move gives the file back
        assert files(tmp_path / "store") == [] and rows(registry, datastore) == NOTHING
        with pytest.raises(RuntimeError), datastore.transaction():
            datastore.ingest_zip(source, {"a.json": ref}, transfer=mode)
            raise RuntimeError("rolled back")
        assert source.is_file()  # and so does a rolled-back one
        assert files(tmp_path / "store") == [] and rows(registry, datastore) == NOTHING


# -- transfers between file datastores ---------------------------------------------------


def two_repositories(
    registry: SqlRegistry, other_registry: SqlRegistry, n: int, storage_class: str = ANY_OBJECT
) -> list[DatasetRef]:
    refs = make_refs(registry, n, storage_class=storage_class)
    copy_datasets(registry, other_registry, refs)
    return refs


class TestTransfer:
    @pytest.fixture
    def target(self, other_registry: SqlRegistry, tmp_path: Path) -> FileDatastore:
        return FileDatastore("target", other_registry.datastore_bridges, str(tmp_path / "target"))

    @pytest.mark.parametrize("mode", ["auto", "copy", "link", "hardlink", "symlink", "relsymlink"])
    def test_local_modes(
        self,
        registry: SqlRegistry,
        other_registry: SqlRegistry,
        datastore: FileDatastore,
        target: FileDatastore,
        tmp_path: Path,
        mode: str,
    ) -> None:
        refs = two_repositories(registry, other_registry, 2)
        datastore.put_many(({"i": i}, r) for i, r in enumerate(refs))
        assert target.transfer_from(datastore, refs, transfer=mode) == refs
        assert [target.get(r) for r in refs] == [{"i": 0}, {"i": 1}]
        assert files(tmp_path / "target") == files(tmp_path / "store")  # same layout
        path = tmp_path / "target" / files(tmp_path / "target")[0]
        assert path.is_symlink() == (mode in ("symlink", "relsymlink"))
        if mode == "relsymlink":
            assert not os.readlink(path).startswith("/")
        if mode in ("hardlink", "link"):
            assert path.stat().st_nlink == 2
        target.remove(refs)  # deleting the target's artifacts leaves the source's alone
        assert [datastore.get(r) for r in refs] == [{"i": 0}, {"i": 1}]

    @pytest.mark.parametrize("direction", ["local_to_s3", "s3_to_local"])
    def test_s3_and_local(
        self,
        registry: SqlRegistry,
        other_registry: SqlRegistry,
        tmp_path: Path,
        s3_client: Any,
        direction: str,
    ) -> None:
        s3_root = S3Store(f"s3://{make_bucket(s3_client)}/r", client=s3_client)
        local_root = str(tmp_path / "local")
        roots: list[Any] = (
            [local_root, s3_root] if direction == "local_to_s3" else [s3_root, local_root]
        )
        source = FileDatastore("source", registry.datastore_bridges, roots[0], checksum=True)
        target = FileDatastore("target", other_registry.datastore_bridges, roots[1])
        refs = two_repositories(registry, other_registry, 3)
        source.put_many(({"i": i}, r) for i, r in enumerate(refs[:2]))
        source.put_zip([({"i": 2}, refs[2])])
        with pytest.raises(ValueError, match="links files on local disk"):
            target.transfer_from(source, refs, transfer="symlink")
        assert target.transfer_from(source, refs) == refs
        assert [target.get(r) for r in refs] == [{"i": i} for i in range(3)]
        (record,) = target.records.fetch(dataset_id=refs[0].id)
        assert record["checksum"] is not None  # the source's record fields come along

    def test_zip_in_two_batches_arrives_once(
        self,
        registry: SqlRegistry,
        other_registry: SqlRegistry,
        datastore: FileDatastore,
        target: FileDatastore,
        tmp_path: Path,
    ) -> None:
        refs = two_repositories(registry, other_registry, 4)
        datastore.put_zip(({"i": i}, r) for i, r in enumerate(refs))
        assert target.transfer_from(datastore, refs[:2]) == refs[:2]
        assert target.transfer_from(datastore, refs) == refs[2:]
        assert len(files(tmp_path / "target")) == 1
        assert [target.get(r) for r in refs] == [{"i": i} for i in range(4)]
        target.remove(refs[:3])
        assert len(files(tmp_path / "target")) == 1  # one member is still held
        target.remove(refs[3])
        assert files(tmp_path / "target") == []

    def test_failures_leave_nothing_in_the_target(
        self,
        registry: SqlRegistry,
        other_registry: SqlRegistry,
        datastore: FileDatastore,
        target: FileDatastore,
        tmp_path: Path,
    ) -> None:
        refs = make_refs(registry, 3)
        copy_datasets(registry, other_registry, refs[:2])  # refs[2] is not in the target registry
        datastore.put_many(({"i": i}, r) for i, r in enumerate(refs))
        with pytest.raises(Exception, match="not a dataset of the registry"):
            target.transfer_from(datastore, refs)
        assert files(tmp_path / "target") == [] and rows(other_registry, target) == NOTHING
        # A source artifact gone missing fails the whole transfer too.
        (tmp_path / "store" / f"run/thing/thing_{refs[0].id}.json").unlink()
        with pytest.raises(FileNotFoundError):
            target.transfer_from(datastore, refs[:2])
        assert files(tmp_path / "target") == [] and rows(other_registry, target) == NOTHING
        with pytest.raises(ValueError, match="Unknown transfer mode 'direct'"):
            target.transfer_from(datastore, refs, transfer="direct")
        with pytest.raises(AmbiguousDatasetError, match="has no id"):  # refs always have one
            target.transfer_from(datastore, [DatasetRef(refs[0].datasetType, {}, "run")])

    def test_different_bytes_at_the_same_path_conflict(
        self, registry: SqlRegistry, other_registry: SqlRegistry, tmp_path: Path
    ) -> None:
        template = {
            "default": "{run}/{datasetType}/{instrument}_{detector}"
        }  # no {id}: paths can collide
        source = FileDatastore(
            "s", registry.datastore_bridges, str(tmp_path / "s"), templates=template
        )
        target = FileDatastore(
            "t", other_registry.datastore_bridges, str(tmp_path / "t"), templates=template
        )
        (ref,) = two_repositories(registry, other_registry, 1)
        (theirs,) = make_refs(other_registry, 1, run="run")  # a different dataset, same path
        target.put({"mine": 1}, DatasetRef(theirs.datasetType, ref.dataId, "run", theirs.id))
        source.put({"theirs": 1}, ref)
        before = files(tmp_path / "t"), rows(other_registry, target)
        with pytest.raises(ConflictError, match="different artifact"):
            target.transfer_from(source, [ref])
        assert (files(tmp_path / "t"), rows(other_registry, target)) == before

    def test_memory_and_files(
        self, registry: SqlRegistry, other_registry: SqlRegistry, target: FileDatastore
    ) -> None:
        refs = two_repositories(registry, other_registry, 2)
        memory = InMemoryDatastore("memory", registry.datastore_bridges)
        memory.put_many([({"v": 1}, refs[0]), (np.arange(3), refs[1])])
        assert target.transfer_from(memory, refs) == refs
        assert target.get(refs[0]) == {"v": 1} and list(target.get(refs[1])) == [0, 1, 2]
        back = InMemoryDatastore("back", other_registry.datastore_bridges)
        assert back.transfer_from(target, refs) == refs
        assert back.get(refs[0]) == {"v": 1}
        with pytest.raises(ValueError, match="'symlink' is not possible"):
            back.transfer_from(target, refs, transfer="symlink")

    def test_direct_artifacts_are_copied_to_template_paths(
        self,
        registry: SqlRegistry,
        other_registry: SqlRegistry,
        datastore: FileDatastore,
        target: FileDatastore,
        tmp_path: Path,
    ) -> None:
        (ref,) = two_repositories(registry, other_registry, 1)
        outside = tmp_path / "outside.json"
        outside.write_text('{"v": 5}')
        datastore.ingest([(outside, ref)], transfer="direct")
        assert datastore.get_uri(ref) == outside.as_uri()  # keeps its outside URI
        assert datastore.exists(ref)
        target.transfer_from(datastore, [ref])
        assert files(tmp_path / "target") == [f"run/thing/thing_{ref.id}.json"]
        target.remove(ref)
        assert outside.exists()


# -- retrieving -----------------------------------------------------------------------


class TestRetrieve:
    def test_link_modes(
        self, registry: SqlRegistry, datastore: FileDatastore, tmp_path: Path
    ) -> None:
        refs = make_refs(registry, 2)
        datastore.put_many(({"i": i}, r) for i, r in enumerate(refs))
        links = datastore.retrieve_artifacts(refs, tmp_path / "l", transfer="relsymlink")
        assert all(p.is_symlink() and not os.readlink(p).startswith("/") for p in links)
        hard = datastore.retrieve_artifacts(refs, tmp_path / "h", transfer="hardlink")
        assert all(p.stat().st_nlink == 2 for p in hard)

    def test_s3_cannot_link(self, registry: SqlRegistry, s3_client: Any, tmp_path: Path) -> None:
        store = S3Store(f"s3://{make_bucket(s3_client)}/r", client=s3_client)
        datastore = FileDatastore("s3", registry.datastore_bridges, store)
        (ref,) = make_refs(registry, 1)
        datastore.put({"v": 1}, ref)
        with pytest.raises(ValueError, match="not on local disk; use transfer='copy'"):
            datastore.retrieve_artifacts([ref], tmp_path / "out", transfer="symlink")
        assert not (tmp_path / "out").exists()
        (path,) = datastore.retrieve_artifacts([ref], tmp_path / "out")
        assert json.loads(path.read_text()) == {"v": 1}

    def test_destination_problems(
        self, registry: SqlRegistry, datastore: FileDatastore, tmp_path: Path
    ) -> None:
        refs = make_refs(registry, 2)
        datastore.put_many(({"i": i}, r) for i, r in enumerate(refs))
        a_file = tmp_path / "file"
        a_file.write_text("x")
        with pytest.raises(AlreadyExistsError, match="give a directory"):
            datastore.retrieve_artifacts(refs, a_file)
        out = tmp_path / "out"
        first = datastore.retrieve_artifacts(refs[:1], out)
        with pytest.raises(FileExistsError):
            datastore.retrieve_artifacts(refs, out)  # one of the two exists: neither is written
        assert files(out) == [first[0].relative_to(out).as_posix()]

    def test_shared_file_is_written_once(
        self, registry: SqlRegistry, datastore: FileDatastore, tmp_path: Path
    ) -> None:
        first, second = make_refs(registry, 2)
        shared = tmp_path / "shared.json"
        shared.write_text('{"v": 1}')
        datastore.ingest([(shared, first), (shared, second)], transfer="direct")
        exported = datastore.export([first, second], directory=tmp_path / "export")
        assert len(exported) == 1 and exported[0].refs == [first, second]
        assert exported[0] == FileDataset(exported[0].path, [first, second], "json")


# -- trust mode -------------------------------------------------------------------------


class TestTrust:
    def _untracked(
        self, registry: SqlRegistry, other_registry: SqlRegistry, tmp_path: Path, n: int
    ) -> tuple[list[DatasetRef], FileDatastore]:
        """Datasets written by one repository, and a trusting datastore of another (no records)."""
        refs = two_repositories(registry, other_registry, n)
        writer = FileDatastore("w", registry.datastore_bridges, str(tmp_path / "shared"))
        writer.put_many(({"i": i}, r) for i, r in enumerate(refs))
        reader = FileDatastore(
            "r", other_registry.datastore_bridges, str(tmp_path / "shared"), trust=True
        )
        return refs, reader

    def test_reads_artifacts_without_records(
        self, registry: SqlRegistry, other_registry: SqlRegistry, tmp_path: Path
    ) -> None:
        refs, reader = self._untracked(registry, other_registry, tmp_path, 2)
        assert reader.get(refs[1]) == {"i": 1}
        assert reader.exists_many(refs) == {r.id: True for r in refs}
        assert not reader.knows(refs[0])  # knowing is about records
        assert set(reader.get_uris(refs)) == {r.id for r in refs}
        (path,) = reader.retrieve_artifacts(refs[:1], tmp_path / "out")
        assert json.loads(path.read_text()) == {"i": 0}
        distrustful = FileDatastore("d", other_registry.datastore_bridges, str(tmp_path / "shared"))
        with pytest.raises(DatasetNotStoredError):
            distrustful.get(refs[0])
        assert distrustful.exists_many(refs) == {r.id: False for r in refs}
        assert distrustful.get_uris(refs) == {}

    def test_formatter_by_extension(
        self, registry: SqlRegistry, other_registry: SqlRegistry, tmp_path: Path
    ) -> None:
        refs = make_refs(registry, 3, storage_class=ANY_OBJECT)  # formats by the objects' types
        copy_datasets(registry, other_registry, refs)
        objects = [(np.arange(4), refs[0]), (b"\x00raw", refs[1]), ({"y": 1}, refs[2])]
        writer = FileDatastore(
            "w", registry.datastore_bridges, str(tmp_path / "s"), formatters={"thing": "yaml"}
        )
        writer.put_many(objects[2:])
        writer = FileDatastore("w2", registry.datastore_bridges, str(tmp_path / "s"))
        writer.put_many(objects[:2])
        reader = FileDatastore(
            "r", other_registry.datastore_bridges, str(tmp_path / "s"), trust=True
        )
        assert list(reader.get(refs[0])) == [0, 1, 2, 3]
        assert reader.get(refs[1]) == b"\x00raw"
        assert reader.get(refs[2]) == {"y": 1}
        # A file without extension is read as bytes.
        bare = tmp_path / "s" / f"run/thing/thing_{refs[1].id}"
        (tmp_path / "s" / f"run/thing/thing_{refs[1].id}.bin").rename(bare)
        assert reader.get(refs[1]) == b"\x00raw"

    def test_many_in_one_directory_are_listed(
        self, registry: SqlRegistry, other_registry: SqlRegistry, tmp_path: Path
    ) -> None:
        refs, reader = self._untracked(registry, other_registry, tmp_path, 40)
        absent = make_refs(other_registry, 1)[0]
        found = reader.exists_many([*refs, absent])
        assert sum(found.values()) == 40 and not found[absent.id]
        transferred = FileDatastore(
            "t", other_registry.datastore_bridges, str(tmp_path / "t")
        ).transfer_from(reader, refs)
        assert len(transferred) == 40

    def test_trashed_records_are_not_guessed_back(
        self, registry: SqlRegistry, tmp_path: Path
    ) -> None:
        datastore = FileDatastore("f", registry.datastore_bridges, str(tmp_path / "f"), trust=True)
        (ref,) = make_refs(registry, 1)
        datastore.put({"v": 1}, ref)
        datastore.trash(ref)
        with pytest.raises(DatasetNotStoredError):
            datastore.get(ref)  # trashed, its artifact awaiting empty_trash
        assert not datastore.exists(ref)

    def test_config_key(self, registry: SqlRegistry, tmp_path: Path) -> None:
        config = {"kind": "file", "name": "f", "root": str(tmp_path), "trust": True}
        datastore = datastore_from_config(config, registry.datastore_bridges)
        assert isinstance(datastore, FileDatastore) and datastore.trust


# -- batching ---------------------------------------------------------------------------


@contextmanager
def statements(*registries: SqlRegistry) -> Iterator[list[str]]:
    """Collect the SQL statements the registries' databases run inside the block."""
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(args[2])

    engines = {registry.db._engine for registry in registries}  # type: ignore[attr-defined]
    for engine in engines:
        sqlalchemy.event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        for engine in engines:
            sqlalchemy.event.remove(engine, "before_cursor_execute", note)


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_transfer_and_retrieval_run_no_query_per_dataset(
    registry: SqlRegistry, other_registry: SqlRegistry, tmp_path: Path, kind: str
) -> None:
    counts = []
    for n in (3, 30):
        refs = two_repositories(registry, other_registry, n)
        source = FileDatastore(f"s{n}", registry.datastore_bridges, str(tmp_path / f"s{n}"))
        source.put_many(({"i": i}, r) for i, r in enumerate(refs))
        target: Any = (
            FileDatastore(f"t{n}", other_registry.datastore_bridges, str(tmp_path / f"t{n}"))
            if kind == "file"
            else InMemoryDatastore(f"t{n}", other_registry.datastore_bridges)
        )
        with statements(registry, other_registry) as seen:
            assert len(target.transfer_from(source, refs)) == n
            source.retrieve_artifacts(refs, tmp_path / f"out{n}")
            source.get_uris(refs)
            source.export(refs, directory=tmp_path / f"export{n}")
        counts.append(len(seen))
    assert counts[0] == counts[1], counts


def test_file_dataset(registry: SqlRegistry, tmp_path: Path) -> None:
    import databutler.datastores

    (ref,) = make_refs(registry, 1)
    dataset = FileDataset(tmp_path / "a.json", [ref])  # type: ignore[arg-type]
    assert dataset.path == str(tmp_path / "a.json") and dataset.formatter is None
    assert databutler.datastores.FileDataset is FileDataset
    with pytest.raises(ValueError, match="non-empty"):
        FileDataset("", [ref])
    with pytest.raises(ValueError, match="has no refs"):
        FileDataset("a.json", [])
    with pytest.raises(TypeError, match="must be DatasetRef or UnresolvedRef objects, got str"):
        FileDataset("a.json", ["not a ref"])  # type: ignore[list-item]
