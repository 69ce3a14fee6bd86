"""The resource layer: where a datastore's bytes live, behind one small interface.

A `ResourceStore` is rooted somewhere (a local directory, an S3 bucket and
prefix, a dictionary in memory) and addresses artifacts by relative paths
(``raw/HSC/903334/12.fits``). Paths are checked before any I/O: absolute
paths, ``..`` segments, backslashes and control characters are refused, so
no artifact path can escape its root.
"""

from __future__ import annotations

import io
import os
import re
import stat
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, BinaryIO

from ..._exceptions import DatabutlerError
from ..._os_errors import os_fix

__all__ = [
    "InvalidPathError",
    "ResourceStore",
    "StorageError",
    "check_relative_path",
    "cpu_count",
    "run_all",
    "storage_error",
]


def file_kind(mode: int) -> str:
    """What a file of ``mode`` (from `os.stat`) is, with its article, for messages that refuse
    it: ``a file`` (a regular one), ``a directory``, ``a named pipe (FIFO)``, ``a socket``,
    ``a device``, else ``a special file``."""
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


class StorageError(DatabutlerError, OSError):
    """Reading or writing an artifact failed in the storage backend."""


def storage_error(what: str, error: OSError) -> StorageError:
    """``error`` as a `StorageError` saying ``"<what>: <the system's words>; <what to do>."``,
    with the same ``errno`` (``what`` is, say, ``"Cannot write artifact 'a' in /root"``)."""
    fix = os_fix(error)
    named = StorageError(f"{what}: {error.strerror or error}" + (f"; {fix}." if fix else "."))
    named.errno = error.errno
    return named


class InvalidPathError(DatabutlerError, ValueError):
    """An artifact path is malformed or would leave the store's root."""


_BAD_CHARACTERS = re.compile(r"[\x00-\x1f\x7f\\]")


def check_relative_path(path: str) -> str:
    """Return ``path`` if it is a safe path relative to a store's root.

    Raises
    ------
    InvalidPathError
        If it is empty, absolute, has empty, ``.`` or ``..`` segments, a
        backslash or a control character.
    """
    if not isinstance(path, str) or not path:
        raise InvalidPathError(f"Artifact path {path!r} must be a non-empty string.")
    if path.startswith("/"):
        raise InvalidPathError(
            f"Artifact path {path!r} is absolute; give a path relative to the store's root."
        )
    bad = _BAD_CHARACTERS.search(path)
    if bad is not None:
        raise InvalidPathError(
            f"Artifact path {path!r} contains {bad.group()!r}; use '/'-separated printable names."
        )
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidPathError(
                f"Artifact path {path!r} has a {segment or 'empty'!r} segment; paths may not "
                "leave or re-enter directories ('..', '.', '//')."
            )
    return path


class ResourceStore(ABC):
    """Artifacts under one root, addressed by relative paths.

    Writes are atomic: a reader sees the old content or the new, never a
    part. Deleting what is already gone is not an error (another process may
    have emptied the same trash).
    """

    #: Whether the bytes outlive the process.
    is_persistent: bool = True

    #: Link modes (``link``, ``hardlink``, ``symlink``, ``relsymlink``) this store supports.
    link_modes: frozenset[str] = frozenset()

    #: How many operations are worth running at once (1: one at a time).
    concurrency: int = 1

    #: How many deletions are worth running at once (`None`: as `concurrency`).
    delete_concurrency: int | None = None

    @property
    @abstractmethod
    def root(self) -> str:
        """Where the store is, as a URI (``file:///...``, ``s3://bucket/prefix``, ``mem://name``)."""
        raise NotImplementedError()

    @abstractmethod
    def read(self, path: str) -> bytes:
        """The content of ``path``.

        Raises
        ------
        FileNotFoundError
            If there is no artifact at ``path``.
        """
        raise NotImplementedError()

    def open(self, path: str) -> BinaryIO:
        """A seekable binary file of ``path``'s content, for reading parts of it.

        Stores that can read a byte range without the rest (local files, S3
        ranged requests) override this; by default the whole content is read.
        Close it when done.

        Raises
        ------
        FileNotFoundError
            If there is no artifact at ``path``.
        """
        return io.BytesIO(self.read(path))

    @abstractmethod
    def write(self, path: str, data: bytes, *, overwrite: bool = False) -> None:
        """Write ``data`` to ``path`` atomically.

        Raises
        ------
        AlreadyExistsError
            If ``path`` exists and ``overwrite`` is false (a `FileExistsError`).
        """
        raise NotImplementedError()

    @abstractmethod
    def size(self, path: str) -> int:
        """Size of ``path`` in bytes (`FileNotFoundError` if absent)."""
        raise NotImplementedError()

    @abstractmethod
    def delete(self, path: str) -> bool:
        """Delete ``path``; whether it existed (absent is not an error)."""
        raise NotImplementedError()

    def arrived(self, path: str) -> float | None:
        """When the artifact at ``path`` took its place there, in seconds since the epoch
        (a local file's last status change: its creation, link or rename; an object's
        upload), or `None` if nothing is there. `verify`'s ``delete_unknown`` keeps what
        arrived lately: a write in progress may yet record it. A store that cannot tell
        says now, so nothing of it is taken for old."""
        return time.time() if self.exists(path) else None

    def remove_empty_directories(self, paths: Iterable[str]) -> None:  # noqa: B027
        """Remove the directories of ``paths`` (deleted artifacts) that are empty now, and
        their parents up to the root while they are empty too: an undone write leaves none
        it made. Stores without directories (S3, memory) have nothing to do."""

    def delete_many(self, paths: Iterable[str]) -> None:
        """Delete every one of ``paths`` (absent ones are not an error).

        Backends override this to delete in batches (S3: 1,000 keys a request).

        Raises
        ------
        StorageError
            If a deletion failed; others may have happened.
        """
        calls = [(path,) for path in paths]
        workers = self.concurrency if self.delete_concurrency is None else self.delete_concurrency
        run_all(self.delete, calls, workers=workers if len(calls) >= 32 else 1)

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Relative paths of the artifacts under ``prefix`` (a directory-like prefix), sorted."""
        raise NotImplementedError()

    def list_sizes(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        """``(path, size)`` of the artifacts under ``prefix``, sorted by path (code points).

        Backends override this to get the sizes from the listing itself.
        """
        for path in self.list(prefix):
            try:
                yield path, self.size(path)
            except FileNotFoundError:
                continue  # deleted since it was listed

    def exists(self, path: str) -> bool:
        """Whether there is an artifact at ``path``."""
        try:
            self.size(path)
        except FileNotFoundError:
            return False
        return True

    def copy(self, source: str, destination: str, *, overwrite: bool = False) -> None:
        """Copy ``source`` to ``destination`` within this store (backends do it server-side)."""
        self.write(destination, self.read(source), overwrite=overwrite)

    def move(self, source: str, destination: str, *, overwrite: bool = False) -> None:
        """Move ``source`` to ``destination`` within this store."""
        self.copy(source, destination, overwrite=overwrite)
        self.delete(source)


def cpu_count() -> int:
    """The CPUs this process may run on (``os.process_cpu_count`` where Python has it)."""
    counter = getattr(os, "process_cpu_count", None)
    if counter is not None:
        return int(counter() or 1)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def run_all(
    function: Callable[..., Any], calls: Sequence[tuple[Any, ...]], *, workers: int
) -> None:
    """Call ``function(*args)`` for every ``args`` of ``calls``, ``workers`` at a time.

    The first exception is raised once the calls under way have finished;
    calls not started yet are dropped. With fewer than two workers the calls
    run one after the other, in order.
    """
    if workers < 2 or len(calls) < 2:
        for args in calls:
            function(*args)
        return
    from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="databutler-io") as pool:
        futures = [pool.submit(function, *args) for args in calls]
        wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in futures if f.done() and f.exception() is not None), None)
        if failed is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            raise failed.exception()  # type: ignore[misc]
