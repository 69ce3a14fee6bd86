"""The contract suite of `~databutler.datastores.resources.ResourceStore`.

Subclass `ResourceStoreTests` and provide a ``store`` fixture (an empty store)
and a ``backdoor`` fixture: a callable ``backdoor(path) -> bytes | None`` that
reads an artifact without the store (from the disk, the bucket, the dict).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ..datastores.resources import InvalidPathError

__all__ = ["ESCAPING_PATHS", "ResourceStoreTests"]

#: Paths every store must refuse before any I/O.
ESCAPING_PATHS = [
    "../outside.txt",
    "a/../../outside.txt",
    "/etc/passwd",
    "a//b",
    "./a",
    "a\\..\\b",
    "a/\x00b",
    "",
]


class ResourceStoreTests:
    """Tests every resource store must pass."""

    def test_write_read_size_exists(self, store, backdoor) -> None:
        store.write("a/b/c.fits", b"\x00\x01 fits bytes")
        assert store.read("a/b/c.fits") == b"\x00\x01 fits bytes"
        assert backdoor("a/b/c.fits") == b"\x00\x01 fits bytes"
        assert store.size("a/b/c.fits") == 13
        assert store.exists("a/b/c.fits") and not store.exists("a/b/other.fits")
        assert not store.exists("a/b")  # a directory-like prefix is no artifact

    def test_write_refuses_to_overwrite_unless_asked(self, store, backdoor) -> None:
        store.write("x.json", b"1")
        with pytest.raises(FileExistsError, match=r"x\.json"):
            store.write("x.json", b"2")
        assert backdoor("x.json") == b"1"
        store.write("x.json", b"2", overwrite=True)
        assert backdoor("x.json") == b"2"

    def test_missing_artifacts(self, store) -> None:
        with pytest.raises(FileNotFoundError):
            store.read("nope")
        with pytest.raises(FileNotFoundError):
            store.size("nope")
        assert store.delete("nope") is False  # already gone is not an error

    def test_delete(self, store, backdoor) -> None:
        store.write("d/one", b"1")
        assert store.delete("d/one") is True
        assert backdoor("d/one") is None
        assert store.delete("d/one") is False

    def test_delete_many_and_list_sizes(self, store, backdoor) -> None:
        for name in ("a/1", "a/2", "b/3"):
            store.write(name, name.encode() * 3)
        assert list(store.list_sizes()) == [("a/1", 9), ("a/2", 9), ("b/3", 9)]
        store.delete_many(["a/1", "b/3", "never/there"])  # absent is not an error
        assert backdoor("a/1") is None and backdoor("b/3") is None
        assert backdoor("a/2") == b"a/2" * 3
        assert list(store.list_sizes("a")) == [("a/2", 9)]
        store.delete_many([])

    def test_list(self, store) -> None:
        for path in ("r/2.txt", "r/1.txt", "r/sub/3.txt", "other/4.txt", "rx.txt"):
            store.write(path, path.encode())
        assert list(store.list("r")) == ["r/1.txt", "r/2.txt", "r/sub/3.txt"]
        assert list(store.list()) == ["other/4.txt", "r/1.txt", "r/2.txt", "r/sub/3.txt", "rx.txt"]
        assert list(store.list("empty")) == []

    def test_copy_and_move(self, store, backdoor) -> None:
        store.write("src", b"payload")
        store.copy("src", "copies/dst")
        assert backdoor("copies/dst") == b"payload" and backdoor("src") == b"payload"
        with pytest.raises(FileExistsError):
            store.copy("src", "copies/dst")
        store.move("src", "moved/dst")
        assert backdoor("moved/dst") == b"payload" and backdoor("src") is None
        with pytest.raises(FileNotFoundError):
            store.move("src", "again")

    def test_large_artifact(self, store, backdoor) -> None:
        data = bytes(range(256)) * 40_000  # 10 MB
        store.write("big.bin", data)
        assert store.size("big.bin") == len(data)
        assert store.read("big.bin") == data

    @pytest.mark.parametrize("path", ESCAPING_PATHS, ids=repr)
    def test_paths_cannot_escape_the_root(self, store, backdoor, path) -> None:
        calls: list[Callable[[], object]] = [
            lambda: store.write(path, b"evil"),
            lambda: store.read(path),
            lambda: store.delete(path),
            lambda: store.exists(path),
        ]
        for call in calls:
            with pytest.raises(InvalidPathError):
                call()
        assert list(store.list()) == []
