"""The move journal: ``ingest(transfer="move")`` that a crash cannot turn into data loss.

Before its first move, an ingest writes (and flushes to the device) a small
JSON journal under ``.databutler/journal/`` in the datastore's root, listing
every ``(source, destination)`` pair it is about to move, and holds an
exclusive lock on it (``flock``) for as long as it lives. Once the datasets
are recorded and committed the journal is deleted. A process killed in
between leaves an unlocked journal behind; `recover` (run by the next ingest
and by ``verify(repair=True)``) then moves each destination that no record
mentions back to its source, keeps the recorded ones, and deletes the
journal. A destination whose source path is taken again is left where it is
and reported, and its journal kept: `journaled_paths` names such files, so
``verify(delete_unknown=True)`` never deletes them.

Moves only happen on local roots, so only `LocalStore` roots have journals;
the journal directory is not part of the datastore's artifacts (`is_internal`).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..registry.databases.sqlite import SQLITE_FILE_SUFFIXES
from ._file_common import FileDatastoreLike
from .resources import LocalStore, ResourceStore
from .resources.local import fsync_path

try:  # POSIX; elsewhere journals are not locked, and only stale ones should exist
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "INTERNAL_PREFIX",
    "JournalProblem",
    "MoveJournal",
    "is_internal",
    "journaled_paths",
    "move_back",
    "pending_moves",
    "recover",
]

_LOG = logging.getLogger(__name__)

#: Where databutler keeps its own files under a datastore root (never artifacts).
INTERNAL_PREFIX = ".databutler/"

_JOURNAL_DIR = ".databutler/journal"


#: A repository's own files at the top of its root: where a datastore shares that root
#: (allowed before `Butler.create` refused it), they are not artifacts either.
_REPOSITORY_FILES = frozenset(
    ["butler.yaml"] + [f"registry.sqlite3{suffix}" for suffix in SQLITE_FILE_SUFFIXES]
)


def is_internal(path: str) -> bool:
    """Whether a path under a datastore root is databutler's own (a journal, or a repository's
    configuration or SQLite registry at the top), not an artifact."""
    return path.startswith(INTERNAL_PREFIX) or path in _REPOSITORY_FILES


@dataclass(frozen=True)
class JournalProblem:
    """A file an interrupted move left in the datastore, and why it is still there."""

    journal: str
    source: str
    destination: str
    detail: str


def _directory(store: LocalStore) -> Path:
    return store.directory / _JOURNAL_DIR


def _lock(descriptor: int, *, wait: bool) -> bool:
    if fcntl is None:  # pragma: no cover
        return True
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise
    return True


class MoveJournal:
    """The live journal of one move ingest: written, flushed and locked before the first move."""

    def __init__(self, path: Path, descriptor: int) -> None:
        self.path = path
        self._descriptor: int | None = descriptor

    @classmethod
    def begin(cls, store: LocalStore, moves: list[tuple[Path, str]]) -> MoveJournal:
        """Write the journal of ``moves`` (source file, destination artifact path) durably."""
        directory = _directory(store)
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{uuid.uuid4().hex}.json"
        temporary = directory / f".{name}.tmp"
        document = {
            "version": 1,
            "pid": os.getpid(),
            "moves": [{"source": os.fspath(s), "destination": d} for s, d in moves],
        }
        descriptor = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(descriptor, json.dumps(document).encode())
            os.fsync(descriptor)
            _lock(descriptor, wait=True)  # held through the rename: never seen unlocked
            os.replace(temporary, directory / name)
            fsync_path(directory)
        except BaseException:
            os.close(descriptor)
            temporary.unlink(missing_ok=True)
            raise
        return cls(directory / name, descriptor)

    def finish(self) -> None:
        """The moves are recorded (or given back): delete the journal and release it."""
        if self._descriptor is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            self.release()

    def release(self) -> None:
        """Let go of the journal but keep it, for `recover` to finish the job."""
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None


def _journal_files(store: ResourceStore) -> list[Path]:
    if not isinstance(store, LocalStore):
        return []
    directory = _directory(store)
    try:
        names = sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [directory / n for n in names if n.endswith(".json") and not n.startswith(".")]


def _read(path: Path) -> list[tuple[str, str]]:
    """The (source, destination) pairs of a journal; none for an unreadable one."""
    try:
        document = json.loads(path.read_text())
        return [(str(m["source"]), str(m["destination"])) for m in document["moves"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _LOG.warning("Ignoring unreadable move journal %s: %s", path, exc)
        return []


def journaled_paths(store: ResourceStore) -> set[str]:
    """Destination paths that any journal (live or left by a crash) names."""
    return {d for path in _journal_files(store) for _, d in _read(path)}


def _stale_journals(store: ResourceStore) -> Iterator[tuple[Path, list[tuple[str, str]]]]:
    """Journals no live process holds, each locked by this process while it is handled."""
    for path in _journal_files(store):
        try:
            descriptor = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue  # finished meanwhile
        try:
            if not _lock(descriptor, wait=False):
                continue  # its ingest is still running
            try:
                same = os.fstat(descriptor).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:  # not finished (and deleted) between listing and locking
                yield path, _read(path)
        finally:
            os.close(descriptor)


def _recorded(datastore: FileDatastoreLike, paths: list[str]) -> set[str]:
    return {row["path"] for row in datastore.records.fetch(path=paths)} if paths else set()


def pending_moves(datastore: FileDatastoreLike) -> list[JournalProblem]:
    """Files that interrupted moves left in the datastore unrecorded (nothing is changed)."""
    found = []
    for path, moves in _stale_journals(datastore.store):
        recorded = _recorded(datastore, [d for _, d in moves])
        for source, destination in moves:
            if destination not in recorded and _exists(datastore.store, destination):
                detail = f"left by an interrupted ingest(transfer='move') from {source}"
                found.append(JournalProblem(path.name, source, destination, detail))
    return found


def recover(datastore: FileDatastoreLike) -> tuple[int, list[JournalProblem]]:
    """Roll back every interrupted move ingest of ``datastore``.

    Returns
    -------
    moved_back : `int`
        Files moved back to their sources.
    problems : `list` [`JournalProblem`]
        Files that could not be moved back (their journals are kept).
    """
    store = datastore.store
    moved_back = 0
    problems: list[JournalProblem] = []
    for path, moves in _stale_journals(store):
        assert isinstance(store, LocalStore)
        recorded = _recorded(datastore, [d for _, d in moves])
        left: list[JournalProblem] = []
        for source, destination in moves:
            if destination in recorded or not _exists(store, destination):
                continue  # ingested, or never moved (or moved back already)
            problem = move_back(store, source, destination)
            if problem is None:
                moved_back += 1
                _LOG.warning(
                    "Moved %s back to %s: its ingest(transfer='move') was interrupted.",
                    destination,
                    source,
                )
            else:
                left.append(JournalProblem(path.name, source, destination, problem))
        if left:
            problems.extend(left)
            for kept in left:
                _LOG.warning("Cannot move %s back: %s", kept.destination, kept.detail)
        else:
            path.unlink(missing_ok=True)
    return moved_back, problems


def _exists(store: ResourceStore, path: str) -> bool:
    assert isinstance(store, LocalStore)
    try:
        target = store.local_path(path)
    except ValueError:
        return False  # not a path this store can hold: nothing was moved there
    return target.is_file() or target.is_symlink()


def move_back(store: LocalStore, source: str, destination: str) -> str | None:
    """Move ``destination`` back to ``source``; why not, if it cannot be."""
    target = store.local_path(destination)
    original = Path(source)
    if not original.is_absolute():
        return f"its journal names a relative source {source!r}; move it by hand"
    if os.path.lexists(original):
        return (
            f"its source {source} exists again; move {target} to where it belongs by hand, "
            "then run verify(repair=True) (databutler verify --repair) again"
        )
    try:
        original.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(target, original)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            shutil.move(os.fspath(target), original)  # another file system, as it came
    except OSError as exc:
        return f"moving it back to {source} failed ({exc}); fix that and run verify(repair=True)"
    return None
