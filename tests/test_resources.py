"""The resource-store contract over local files, memory and a real S3 endpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from databutler import ConfigurationError
from databutler.datastores.resources import LocalStore, MemoryStore, store_for
from databutler.datastores.resources.s3 import S3Store
from databutler.testing.resources import ResourceStoreTests
from databutler.testing.s3 import make_bucket, s3_endpoint

Backdoor = Callable[[str], bytes | None]


@pytest.fixture(scope="session")
def s3_client() -> Iterator[Any]:
    with s3_endpoint() as client:
        yield client


class TestLocalStore(ResourceStoreTests):
    @pytest.fixture
    def store(self, tmp_path: Path) -> LocalStore:
        return LocalStore(tmp_path / "root")

    @pytest.fixture
    def backdoor(self, tmp_path: Path) -> Backdoor:
        def read(path: str) -> bytes | None:
            target = tmp_path / "root" / path
            return target.read_bytes() if target.is_file() else None

        return read

    @pytest.mark.parametrize("mode", ["copy", "move", "hardlink", "symlink", "relsymlink", "link"])
    def test_ingest_modes(self, store: LocalStore, tmp_path: Path, mode: str) -> None:
        source = tmp_path / "outside" / "raw.fits"
        source.parent.mkdir()
        source.write_bytes(b"raw")
        link = tmp_path / "outside" / "link.fits"
        link.symlink_to(source)  # a link to a link resolves to the original
        store.ingest(link if mode in ("symlink", "relsymlink") else source, "in/raw.fits", mode)
        target = store.local_path("in/raw.fits")
        assert store.read("in/raw.fits") == b"raw"
        assert source.exists() == (mode != "move")
        if mode in ("symlink", "relsymlink"):
            assert target.is_symlink() and target.resolve() == source.resolve()
            assert Path(target.readlink()).is_absolute() == (mode == "symlink")
        if mode == "hardlink":
            assert target.stat().st_ino == source.stat().st_ino
        other = tmp_path / "outside" / "other.fits"
        other.write_bytes(b"other")
        with pytest.raises(FileExistsError):
            store.ingest(other, "in/raw.fits", "copy")
        assert store.read("in/raw.fits") == b"raw"

    def test_copy_refuses_any_existing_target_and_leaves_nothing(
        self, store: LocalStore, tmp_path: Path
    ) -> None:
        source = tmp_path / "raw.fits"
        source.write_bytes(b"raw")
        via = tmp_path / "via.fits"
        via.symlink_to(source)
        store.ingest(via, "deep/new/dir/raw.fits", "copy")  # directories made, link followed
        target = store.local_path("deep/new/dir/raw.fits")
        assert target.read_bytes() == b"raw" and not target.is_symlink()
        dangling = store.local_path("deep/new/dir/gone.fits")
        dangling.symlink_to(tmp_path / "nothing")
        with pytest.raises(FileExistsError, match="exists already"):
            store.ingest(source, "deep/new/dir/gone.fits", "copy")
        assert dangling.is_symlink() and not dangling.exists()  # untouched
        left = sorted(p.name for p in target.parent.iterdir())
        assert left == ["gone.fits", "raw.fits"]  # no temporary file left behind

    def test_ingest_errors(self, store: LocalStore, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError):
            store.ingest(tmp_path / "missing.fits", "x", "copy")
        (tmp_path / "f").write_bytes(b"")
        with pytest.raises(ValueError, match="Unknown transfer mode 'teleport'"):
            store.ingest(tmp_path / "f", "x", "teleport")
        assert list(store.list()) == []

    def test_failed_write_leaves_no_file(
        self, store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import errno
        import os

        def disk_full(fd: int) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

        store.write("kept.bin", b"old")
        store.fsync = True
        monkeypatch.setattr(os, "fsync", disk_full)  # the fault strikes mid-write
        with pytest.raises(OSError, match="No space left"):
            store.write("half.bin", b"new data")
        with pytest.raises(OSError, match="No space left"):
            store.write("kept.bin", b"new data", overwrite=True)
        monkeypatch.undo()
        files = sorted(p.name for p in (tmp_path / "root").rglob("*") if p.is_file())
        assert files == ["kept.bin"]  # no temporary, no partial artifact
        assert store.read("kept.bin") == b"old"
        store.write("half.bin", b"retried")  # and a retry succeeds
        assert store.read("half.bin") == b"retried"

    def test_write_error_without_fsync_leaves_no_file(
        self, store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import errno
        import os

        def full_disk(descriptor: int, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(os, "write", full_disk)
        with pytest.raises(OSError, match="No space left"):
            store.write("a/b.bin", b"new data")
        monkeypatch.undo()
        assert [p for p in (tmp_path / "root").rglob("*") if p.is_file()] == []
        store.write("a/b.bin", b"retried")
        assert store.read("a/b.bin") == b"retried"


class TestMemoryStore(ResourceStoreTests):
    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore("test")

    @pytest.fixture
    def backdoor(self, store: MemoryStore) -> Backdoor:
        return lambda path: store._data.get(path)


class TestS3Store(ResourceStoreTests):
    @pytest.fixture
    def bucket(self, s3_client: Any) -> str:
        return make_bucket(s3_client)

    @pytest.fixture
    def store(self, s3_client: Any, bucket: str) -> S3Store:
        return S3Store(f"s3://{bucket}/repo/datastore", client=s3_client)

    @pytest.fixture
    def backdoor(self, s3_client: Any, bucket: str) -> Backdoor:
        def read(path: str) -> bytes | None:
            try:
                return bytes(
                    s3_client.get_object(Bucket=bucket, Key=f"repo/datastore/{path}")["Body"].read()
                )
            except s3_client.exceptions.NoSuchKey:
                return None

        return read

    def test_store_stays_under_its_prefix(
        self, store: S3Store, s3_client: Any, bucket: str
    ) -> None:
        store.write("a.txt", b"a")
        keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]]
        assert keys == ["repo/datastore/a.txt"]
        assert store.root == f"s3://{bucket}/repo/datastore"

    def test_server_errors_are_storage_errors(self, s3_client: Any) -> None:
        from databutler.datastores.resources import StorageError

        missing_bucket = S3Store("s3://no-such-bucket-here/x", client=s3_client)
        with pytest.raises(
            StorageError, match=r"Cannot write 'a\.txt' in s3://no-such-bucket-here/x"
        ):
            missing_bucket.write("a.txt", b"a", overwrite=True)


def test_store_for(tmp_path: Path) -> None:
    assert isinstance(store_for(str(tmp_path / "d")), LocalStore)
    assert isinstance(store_for(f"file://{tmp_path}/e"), LocalStore)
    assert store_for("mem://cache").root == "mem://cache"
    with pytest.raises(ConfigurationError, match="Unsupported storage scheme 'ftp'"):
        store_for("ftp://host/x")
    with pytest.raises(ConfigurationError, match="Not an S3 URI"):
        S3Store("s3://")
