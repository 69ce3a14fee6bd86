"""A bridge kept in memory, for datastores whose artifacts die with the process."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..._exceptions import ConflictError
from ..interfaces import (
    DatasetIdRef,
    DatastoreRegistryBridge,
    FakeDatasetRef,
    OpaqueTableStorage,
    StoredDatastoreItemInfoFactory,
)
from ..interfaces._bridge import as_dataset_ids, ref_ids
from ..interfaces._database import chunked
from ._trash import check_empty_trash_arguments, check_record_column

if TYPE_CHECKING:
    from ...transaction import DatastoreTransaction

__all__ = ["EphemeralDatastoreRegistryBridge"]

#: Ids per records-table query.
_BATCH = 1_000


class EphemeralDatastoreRegistryBridge(DatastoreRegistryBridge):
    """The bridge of one in-memory datastore: two sets, mirroring the SQL tables.

    ``held`` plays ``dataset_location`` and ``trashed`` plays
    ``dataset_location_trash``: `moveToTrash` moves ids from one to the other,
    `forget` drops held ids, `insert` refuses an id held already. Changes by
    `moveToTrash` are undone by a `DatastoreTransaction` rollback when one is
    given. Thread-safe.

    Parameters
    ----------
    datastoreName : `str`
        Name of the datastore.
    """

    def __init__(self, datastoreName: str) -> None:
        super().__init__(datastoreName)
        self._held: set[uuid.UUID] = set()
        self._trashed: set[uuid.UUID] = set()
        self._lock = threading.RLock()

    def __contains__(self, ref: Any) -> bool:
        dataset_id = ref if isinstance(ref, uuid.UUID) else getattr(ref, "id", None)
        return dataset_id in self._held

    def insert(self, refs: Iterable[DatasetIdRef]) -> None:
        # docstring inherited
        ids = list(ref_ids(refs))
        with self._lock:
            duplicates = {i for i in ids if i in self._held}
            if len(set(ids)) != len(ids):
                duplicates.update(i for i, n in Counter(ids).items() if n > 1)
            if duplicates:
                raise ConflictError(
                    f"Datastore {self.datastoreName!r} holds {len(duplicates)} of these datasets "
                    f"already (e.g. {next(iter(duplicates))}); nothing was recorded. Use ensure() "
                    "to skip datasets recorded already."
                )
            self._held.update(ids)

    def ensure(self, refs: Iterable[DatasetIdRef]) -> None:
        # docstring inherited
        ids = list(ref_ids(refs))
        with self._lock:
            self._held.update(ids)

    def forget(self, refs: Iterable[DatasetIdRef]) -> None:
        # docstring inherited
        ids = list(ref_ids(refs))
        with self._lock:
            self._held.difference_update(ids)

    def moveToTrash(
        self, refs: Iterable[DatasetIdRef], transaction: DatastoreTransaction | None
    ) -> None:
        # docstring inherited
        ids = set(ref_ids(refs))
        with self._lock:
            moved = ids & self._held
            newly_trashed = moved - self._trashed
            self._held -= moved
            self._trashed |= moved
        if transaction is not None and moved:
            transaction.registerUndo("moveToTrash", self._untrash, moved, newly_trashed)

    def _untrash(self, moved: set[uuid.UUID], newly_trashed: set[uuid.UUID]) -> None:
        with self._lock:
            self._trashed -= newly_trashed
            self._held |= moved

    def check(self, refs: Iterable[Any]) -> set[uuid.UUID]:
        # docstring inherited
        held = self._held
        return {i for i in as_dataset_ids(refs) if i in held}

    # -- consistency checks ------------------------------------------------------
    #
    # The sets are in memory already; the records table is read in batches
    # (or, by `ordered_records`, whole, to sort it: the rows of an in-memory
    # datastore's records table are as many as the datasets it holds).

    def held_without_records(self, records_table: OpaqueTableStorage) -> Iterator[uuid.UUID]:
        # docstring inherited
        with self._lock:
            held = sorted(self._held)
        return self._held_without_records(records_table, held)

    @staticmethod
    def _held_without_records(
        records_table: OpaqueTableStorage, held: list[uuid.UUID]
    ) -> Iterator[uuid.UUID]:
        for batch in chunked(held, _BATCH):
            recorded = {row["dataset_id"] for row in records_table.fetch(dataset_id=batch)}
            yield from (i for i in batch if i not in recorded)

    def trashed_ids(self) -> Iterator[uuid.UUID]:
        # docstring inherited
        with self._lock:
            return iter(sorted(self._trashed))

    def _known(self) -> set[uuid.UUID]:
        with self._lock:
            return self._held | self._trashed

    def orphaned_records(
        self, records_table: OpaqueTableStorage, record_column: str
    ) -> Iterator[tuple[uuid.UUID, Any]]:
        # docstring inherited
        check_record_column(records_table, record_column)
        return self._orphaned_records(records_table, record_column, self._known())

    @staticmethod
    def _orphaned_records(
        records_table: OpaqueTableStorage, record_column: str, known: set[uuid.UUID]
    ) -> Iterator[tuple[uuid.UUID, Any]]:
        seen: set[tuple[uuid.UUID, Any]] = set()  # orphans only: the problems found
        for row in records_table.fetch():
            pair = (row["dataset_id"], row[record_column])
            if pair[0] not in known and pair not in seen:
                seen.add(pair)
                yield pair

    def delete_orphaned_records(
        self, records_table: OpaqueTableStorage, ids: Iterable[Any]
    ) -> None:
        # docstring inherited
        with self._lock:
            known = self._held | self._trashed
            orphans = [i for i in dict.fromkeys(as_dataset_ids(ids)) if i not in known]
            if orphans:
                records_table.delete(["dataset_id"], *({"dataset_id": i} for i in orphans))

    def ordered_records(
        self,
        records_table: OpaqueTableStorage,
        record_column: str,
        *,
        prefixes: Sequence[str] | None = None,
        exclude_prefixes: Sequence[str] = (),
        held_only: bool = False,
        columns: Sequence[str] | None = None,
    ) -> Iterator[tuple[dict[str, Any], bool]]:
        # docstring inherited
        check_record_column(records_table, record_column)
        wanted = None if columns is None else {"dataset_id", record_column, *columns}
        with self._lock:
            held = set(self._held)
        starts = tuple(prefixes) if prefixes is not None else None
        excluded = tuple(exclude_prefixes)
        rows = []
        for row in records_table.fetch():
            value = row[record_column]
            if starts is not None and not value.startswith(starts):
                continue
            if excluded and value.startswith(excluded):
                continue
            is_held = row["dataset_id"] in held
            if held_only and not is_held:
                continue
            if wanted is not None:
                row = {k: v for k, v in row.items() if k in wanted}
            rows.append((row, is_held))
        rows.sort(key=lambda pair: (pair[0][record_column], pair[0]["dataset_id"]))
        return iter(rows)

    def trash_is_empty(self) -> bool:
        # docstring inherited
        with self._lock:
            return not self._trashed

    def trash_sample(self, limit: int) -> list[uuid.UUID] | None:
        # docstring inherited
        with self._lock:
            return sorted(self._trashed)[: max(0, limit)]

    @contextmanager
    def emptyTrash(
        self,
        records_table: OpaqueTableStorage | None = None,
        record_class: type[StoredDatastoreItemInfoFactory] | None = None,
        record_column: str | None = None,
        selected_ids: Iterable[Any] | None = None,
        dry_run: bool = False,
    ) -> Iterator[tuple[Iterable[tuple[DatasetIdRef, Any]], set[Any] | None]]:
        """Context manager over the trashed datasets whose artifacts are to be deleted.

        See `DatastoreRegistryBridge.emptyTrash`. Records are fetched in
        batches through the records table's own API, so any
        `OpaqueTableStorage` works. A trashed dataset held again is not
        yielded; its stale trash entry is dropped.
        """
        check_empty_trash_arguments(records_table, record_class, record_column)
        with self._lock:
            candidates = set(self._trashed)
            held = set(self._held)
        if selected_ids is not None:
            candidates &= set(as_dataset_ids(selected_ids))
        stale = candidates & held
        ids = sorted(candidates - stale)
        keep = None
        if record_column is not None:
            assert records_table is not None
            trashed_values = {row[record_column] for row in self._records(records_table, ids)}
            keep = {
                row[record_column]
                for row in self._records(records_table, sorted(held))
                if row[record_column] in trashed_values
            }
        passed: list[uuid.UUID] = []
        yield self._pairs(records_table, record_class, ids, passed), keep
        if dry_run:
            return
        if records_table is not None and passed:
            records_table.delete(["dataset_id"], *({"dataset_id": i} for i in passed))
        with self._lock:
            self._trashed.difference_update(passed)
            self._trashed.difference_update(stale)

    @staticmethod
    def _records(
        records_table: OpaqueTableStorage, ids: list[uuid.UUID]
    ) -> Iterator[dict[str, Any]]:
        for batch in chunked(ids, _BATCH):
            yield from records_table.fetch(dataset_id=batch)

    def _pairs(
        self,
        records_table: OpaqueTableStorage | None,
        record_class: type[StoredDatastoreItemInfoFactory] | None,
        ids: list[uuid.UUID],
        passed: list[uuid.UUID],
    ) -> Iterator[tuple[FakeDatasetRef, Any]]:
        for batch in chunked(ids, _BATCH):
            by_id: dict[uuid.UUID, list[Any]] = {}
            if records_table is not None:
                assert record_class is not None
                for row in records_table.fetch(dataset_id=batch):
                    by_id.setdefault(row["dataset_id"], []).append(record_class.from_record(row))
            for dataset_id in batch:
                ref = FakeDatasetRef(dataset_id)
                for info in by_id.get(dataset_id, [None]):
                    yield ref, info
                passed.append(dataset_id)
