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
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from .._dataset_ref import DatasetId
from ._base import _id

if TYPE_CHECKING:
    from .file import FileDatastore

__all__ = ["empty_trash"]

#: Trashed datasets per chunk.
CHUNK = 10_000


def empty_trash(
    datastore: FileDatastore, selected: list[DatasetId] | None, *, dry_run: bool
) -> list[DatasetId]:
    """Empty the trash of ``datastore`` (only ``selected`` datasets when given)."""
    emptied: list[DatasetId] = []
    with _reading(datastore, selected) as (pairs, keep):
        if dry_run:
            return list(dict.fromkeys(_id(ref) for ref, _ in pairs))
        while chunk := list(itertools.islice(pairs, CHUNK)):
            _delete(datastore, chunk, keep)
            emptied.extend(_purge(datastore, list(dict.fromkeys(_id(ref) for ref, _ in chunk))))
    if selected is None:
        # Trash rows of datasets stored again since they were trashed are not read
        # above (their records describe live artifacts); this drops them, and
        # empties what was trashed meanwhile.
        with datastore.bridge.emptyTrash(datastore.records, _record_class(), "path") as (
            pairs,
            keep,
        ):
            emptied.extend(_id(ref) for ref, _ in _delete(datastore, list(pairs), keep))
    return list(dict.fromkeys(emptied))


def _purge(datastore: FileDatastore, ids: list[DatasetId]) -> list[DatasetId]:
    """Step 3: delete the records and trash rows of ``ids``; the ids this call purged."""
    bridge = datastore.bridge
    with bridge.emptyTrash(datastore.records, _record_class(), "path", selected_ids=ids) as (
        pairs,
        _,
    ):
        return [_id(ref) for ref, _ in pairs]  # their artifacts are gone already


def _reading(datastore: FileDatastore, ids: list[DatasetId] | None) -> Any:
    """The bridge's read-only pass over the trash (``ids`` only, when given)."""
    return datastore.bridge.emptyTrash(
        datastore.records, _record_class(), "path", selected_ids=ids, dry_run=True
    )


def _delete(
    datastore: FileDatastore, pairs: list[tuple[Any, Any]], keep: set[Any] | None
) -> list[tuple[Any, Any]]:
    """Step 2: delete the artifacts of ``pairs``, except kept ones and files ingested in place."""
    from .file import _is_direct

    kept = keep or set()
    doomed = {
        info.path
        for _, info in pairs
        if info is not None and info.path not in kept and not _is_direct(info.path)
    }
    datastore.store.delete_many(sorted(doomed))  # already gone is not an error
    return pairs


def _record_class() -> Any:
    from .file import StoredFileInfo

    return StoredFileInfo
