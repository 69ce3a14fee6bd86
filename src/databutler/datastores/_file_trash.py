"""Emptying a file datastore's trash: artifacts are deleted outside any database transaction.

One read pass streams the trash (or the selected datasets) with their records,
page by page, holding no lock between pages. For each chunk of it:

1. **Delete** the artifacts, outside any transaction, so no database lock is
   held while storage (S3 especially) is slow. An artifact already gone is
   not an error; artifacts a stored dataset shares, and files ingested in
   place, are kept.
2. **Purge** the chunk's records and trash rows in one short transaction
   (``SKIP LOCKED`` on PostgreSQL).

Rows go only after their artifacts: a failure or a crash leaves trash rows
whose artifacts are (partly) gone, and the next emptying finishes the job;
nothing is left that only `verify` could find. Concurrent emptiers may both
delete an artifact (harmless); each row is purged, and reported, by one.

An artifact that cannot be deleted (no permission, a directory in its
place, a recorded path that is not valid) never stops the others: it is
logged and returned as a `TrashFailure`, and only its datasets' rows stay.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import Any

from .._dataset_ref import DatasetId
from ._base import _id
from ._file_common import FileDatastoreLike, StoredFileInfo, is_direct
from ._maintenance import EmptyTrashResult, TrashFailure
from .resources import InvalidPathError, check_relative_path

# The value types live in ``_maintenance`` (public as ``databutler.datastores.*``);
# they are named here too for importers of their old place.
__all__ = ["EmptyTrashResult", "Emptying", "TrashFailure", "empty_trash"]

_LOG = logging.getLogger(__name__)

#: Trashed datasets per chunk.
CHUNK = 10_000

#: Times the whole trash is read again for what was trashed while it was emptied.
ROUNDS = 3

#: At most this many artifacts of an `Emptying` are deleted when it is called, without a
#: thread: for a few, starting a thread costs more than deleting them meanwhile gains.
INLINE_DELETES = 64

#: A trash of at most this many datasets is emptied as a prune empties its own: its ids
#: read, their rows and records read by id, the artifacts deleted, the rows purged (a few
#: statements, not the passes of a whole trash).
FEW = 1_000


def empty_trash(
    datastore: FileDatastoreLike, selected: list[DatasetId] | None, *, dry_run: bool
) -> tuple[list[DatasetId], list[TrashFailure]]:
    """Empty the trash of ``datastore`` (only ``selected`` datasets when given).

    Returns the datasets emptied, and the artifacts that could not be
    deleted (reported, logged; their datasets stay in the trash).
    """
    emptied: list[DatasetId] = []
    failures: dict[str, TrashFailure] = {}
    if selected is None:
        few = datastore.bridge.trash_sample(FEW + 1)  # one read
        if (few is None and datastore.bridge.trash_is_empty()) or few == []:
            return emptied, []
        if few is not None and len(few) <= FEW and not dry_run:
            return _empty_few(datastore, few)
    if dry_run:
        with _reading(datastore, selected) as (pairs, _):
            return list(dict.fromkeys(_id(ref) for ref, _ in pairs)), []
    for _ in range(ROUNDS):
        with _reading(datastore, selected) as (pairs, keep):
            rows = iter(pairs)  # an iterable by contract: islice must not start it again
            while chunk := list(itertools.islice(rows, CHUNK)):
                failed = _delete(datastore, chunk, keep, failures)
                done = [i for i in dict.fromkeys(_id(ref) for ref, _ in chunk) if i not in failed]
                emptied.extend(_purge(datastore, done))
        if selected is not None or not _sweep(datastore, failures):
            break
    for failure in failures.values():
        _LOG.warning("%s", failure)
    return list(dict.fromkeys(emptied)), list(failures.values())


class Emptying:
    """The selected datasets' trash being emptied: artifacts deleted in the background.

    Made, it reads the datasets' trash rows and records (a read-only pass)
    and starts deleting their artifacts in a thread (more than `INLINE_DELETES`
    of them; fewer are deleted when it is called); the database is free
    meanwhile, so a prune trashes its next chunk while this one's artifacts
    go. Called, it waits for the deletions, then purges the rows of the
    datasets whose artifacts are gone and returns their ids. It may be
    called again (after the purge failed): the artifacts are deleted once,
    the purge runs again for what is left. Rows go only after their
    artifacts, as in `empty_trash`.
    """

    def __init__(self, datastore: FileDatastoreLike, selected: list[DatasetId]) -> None:
        self._datastore = datastore
        with _reading(datastore, selected) as (pairs, keep):
            read = list(pairs)
        self._ids = list(dict.fromkeys(_id(ref) for ref, _ in read))
        self._plan = _Plan(read, keep)
        self._error: Exception | None = None
        self._failures: dict[str, TrashFailure] | None = None
        self._thread: threading.Thread | None = None
        if len(self._plan.valid) > INLINE_DELETES:
            self._thread = threading.Thread(
                target=self._delete, name="databutler-empty-trash", daemon=True
            )
            self._thread.start()

    @property
    def failures(self) -> list[TrashFailure]:
        """The artifacts that could not be deleted (known once called)."""
        return list(self._failures.values()) if self._failures is not None else []

    def _delete(self) -> None:
        try:
            self._datastore.store.delete_many(self._plan.valid)  # already gone is not an error
        except Exception as exc:  # settled (culprits found, reported) when called
            self._error = exc

    def __call__(self) -> list[DatasetId]:
        if self._thread is not None:
            self._thread.join()
        if self._failures is None:
            if self._thread is None:
                self._delete()  # a few artifacts: deleted now, without a thread
            failures: dict[str, TrashFailure] = {}
            self._plan.settle(self._datastore, self._error, failures)
            self._failures = failures
            for failure in failures.values():
                _LOG.warning("%s", failure)
        failed = {i for failure in self._failures.values() for i in failure.dataset_ids}
        return _purge(self._datastore, [i for i in self._ids if i not in failed])


def _empty_few(
    datastore: FileDatastoreLike, ids: list[DatasetId]
) -> tuple[list[DatasetId], list[TrashFailure]]:
    """`empty_trash` of a small trash, ``ids`` (all of it when read): their rows and records
    read at once, their artifacts deleted, then every row purged but those of failed
    artifacts. The read leaves out datasets stored again since they were trashed; their
    stale rows go in the purge, which keeps their records (what `_sweep` does for a large
    trash). Rows trashed after ``ids`` were read are left for the next call."""
    failures: dict[str, TrashFailure] = {}
    with _reading(datastore, ids) as (pairs, keep):
        read = list(pairs)
    failed = _delete(datastore, read, keep, failures)
    for failure in failures.values():
        _LOG.warning("%s", failure)
    return _purge(datastore, [i for i in ids if i not in failed]), list(failures.values())


def _sweep(datastore: FileDatastoreLike, failures: dict[str, TrashFailure]) -> bool:
    """Drop the trash rows of datasets stored again since they were trashed.

    The read pass does not yield those (their records describe live
    artifacts), so their rows are purged here, page by page, without
    deleting anything: the sweep stops (keeping the rest) at the first
    dataset whose artifact is still to be deleted. Returns whether that is
    one trashed meanwhile, for another read → delete → purge round.
    """
    stuck = {i for failure in failures.values() for i in failure.dataset_ids}
    pending = False
    # No record_column: nothing is deleted here, so what held datasets still use is not needed.
    with datastore.bridge.emptyTrash(datastore.records, StoredFileInfo) as (pairs, _):
        iterator = iter(pairs)
        for ref, _ in iterator:
            pending = _id(ref) not in stuck
            break  # the page holding it is not purged: nothing unhandled is lost
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    return pending


def _purge(datastore: FileDatastoreLike, ids: list[DatasetId]) -> list[DatasetId]:
    """Step 3: delete the records and trash rows of ``ids``; the ids this call purged."""
    if not ids:
        return []
    return datastore.bridge.purge_trash(datastore.records, ids)  # the artifacts are gone


def _reading(datastore: FileDatastoreLike, ids: list[DatasetId] | None) -> Any:
    """The bridge's read-only pass over the trash (``ids`` only, when given)."""
    return datastore.bridge.emptyTrash(
        datastore.records, StoredFileInfo, "path", selected_ids=ids, dry_run=True
    )


def _delete(
    datastore: FileDatastoreLike,
    pairs: list[tuple[Any, Any]],
    keep: set[Any] | None,
    failures: dict[str, TrashFailure],
) -> set[DatasetId]:
    """Step 2: delete the artifacts of ``pairs``, except kept ones and files ingested in place.

    Returns the datasets with an artifact that could not be deleted (added
    to ``failures``); one bad artifact never stops the others.
    """
    plan = _Plan(pairs, keep)
    error: Exception | None = None
    try:
        datastore.store.delete_many(plan.valid)  # already gone is not an error
    except Exception as exc:
        error = exc
    return plan.settle(datastore, error, failures)


class _Plan:
    """The artifacts a chunk of trashed datasets lets go, and their owners."""

    def __init__(self, pairs: list[tuple[Any, Any]], keep: set[Any] | None) -> None:
        kept = keep or set()
        self.owners: dict[str, list[DatasetId]] = {}
        for ref, info in pairs:
            if info is not None and info.path not in kept and not is_direct(info.path):
                self.owners.setdefault(info.path, []).append(_id(ref))
        self.reasons: dict[str, str] = {}
        self.valid: list[str] = []
        for path in sorted(self.owners):
            try:
                self.valid.append(check_relative_path(path))
            except InvalidPathError as exc:
                self.reasons[path] = f"the recorded path is not valid ({exc})"

    def settle(
        self,
        datastore: FileDatastoreLike,
        error: Exception | None,
        failures: dict[str, TrashFailure],
    ) -> set[DatasetId]:
        """After `delete_many` (which raised ``error``, or not): the datasets that failed."""
        reasons = self.reasons
        if error is not None:
            for path in self.valid:  # find the culprits; deleting twice is harmless
                try:
                    datastore.store.delete(path)
                except IsADirectoryError:
                    reasons[path] = "a directory is in its place"
                except Exception as exc:
                    reasons[path] = f"{type(exc).__name__}: {exc}"
        owners = self.owners
        failed: set[DatasetId] = set()
        for path, reason in reasons.items():
            ids = tuple(dict.fromkeys(owners[path]))
            previous = failures.get(path)
            if previous is not None:
                ids = tuple(dict.fromkeys(previous.dataset_ids + ids))
            failures[path] = TrashFailure(datastore.name, path, ids, reason)
            failed.update(ids)
        return failed
