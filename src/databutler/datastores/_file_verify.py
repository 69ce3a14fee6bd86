"""Checking a file datastore's storage against its records, in both directions, and repairing.

`FileDatastore.verify_storage` is `verify_storage` here. The datastore's
tables are read by streaming, through the queries of its bridge
(`~databutler.registry.interfaces.DatastoreRegistryBridge`), which owns them
(the records of files ingested ``direct`` in a registry: in driver-level
pages by primary key, one ``stat`` a file):
datasets held without records (and records of datasets neither held nor
trashed), the trash, and the records ordered by path, which a merge with the
sorted storage listing turns into missing artifacts, unknown artifacts and
size (optionally checksum) mismatches. Memory use does not grow with the
number of datasets, except for the problems found.

Files that interrupted move ingests left behind are found (and, with
``repair``, moved back) through the move journal (``_file_journal``); a file a
journal names is never an unknown artifact, and never deleted.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from functools import partial
from itertools import groupby, islice
from pathlib import Path
from typing import Any

from .._dataset_ref import DatasetId
from .._exceptions import RepositoryError
from ..registry.bridge.monolithic import MonolithicDatastoreRegistryBridge
from ..registry.interfaces import Database, FakeDatasetRef
from ..registry.opaque import ByNameOpaqueTableStorage
from ._file_common import FileDatastoreLike
from ._file_ingest import file_status
from ._file_journal import is_internal, journaled_paths, pending_moves, recover
from ._maintenance import StorageCheck, StorageProblem
from .resources import LocalStore

__all__ = ["FORGET_BATCH", "recover_moves", "verify_storage"]

_LOG = logging.getLogger(__name__)

#: Paths of artifacts ingested in place (``transfer="direct"``), outside the datastore's root.
_DIRECT_PREFIXES = ("file://", "/")

#: Records columns the storage checks read (besides ``dataset_id`` and ``path``).
_CHECKED = ("file_size", "checksum", "member")

#: Directly ingested files' records read per query by `_Checker._check_direct`.
_DIRECT_PAGE = 10_000

#: Datasets forgotten per call when a repair forgets those with missing artifacts.
FORGET_BATCH = 10_000


def recover_moves(datastore: FileDatastoreLike) -> None:
    """Roll back the move ingests a crashed process left unfinished (local roots only).

    What cannot be moved back is logged, kept, and reported by `verify_storage`.
    """
    if isinstance(datastore.store, LocalStore):
        recover(datastore)


def verify_storage(
    datastore: FileDatastoreLike,
    *,
    repair: bool,
    delete_unknown: bool,
    checksums: bool,
    keep_newer: float = 0.0,
    reading: Callable[[], AbstractContextManager[object]],
) -> StorageCheck:
    """Check (and with ``repair``, fix) ``datastore``, as `Datastore.verify_storage` documents."""
    check = StorageCheck()
    checker = _Checker(datastore, check)
    checker.check_moves(repair)  # first: files moved back are no unknown artifacts
    start = len(check.problems)
    with reading():  # one connection, in a transaction: PostgreSQL streams then
        checker.check_tables()
        checker.check_storage(checksums)
    if repair:
        problems = check.problems[start:]
        for kind, n in checker.repair(problems, delete_unknown, keep_newer).items():
            check.repaired[kind] = check.repaired.get(kind, 0) + n
    return check


class _Checker:
    """The checks and repairs of one file datastore."""

    def __init__(self, datastore: FileDatastoreLike, check: StorageCheck) -> None:
        self.datastore = datastore
        self.bridge = datastore.bridge
        self.records = datastore.records
        self.check = check
        self.name = datastore.name
        # Files a move journal names are reported as unfinished moves, never as unknown.
        self.journaled = journaled_paths(datastore.store)

    def add(self, kind: str, dataset_id: DatasetId | None, path: str | None, detail: str) -> None:
        self.check.problems.append(StorageProblem(kind, self.name, dataset_id, path, detail))

    # -- table checks ------------------------------------------------------------

    def check_tables(self) -> None:
        bridge, records = self.bridge, self.records
        for dataset_id in bridge.held_without_records(records):
            self.add(
                "location_without_records",
                dataset_id,
                None,
                "the bridge says this datastore holds it, but it has no record of where",
            )
        for dataset_id in bridge.trashed_ids():
            self.add("stale_trash", dataset_id, None, "trashed, and the trash was not emptied")
        for dataset_id, path in bridge.orphaned_records(records, "path"):
            self.add(
                "records_without_location",
                dataset_id,
                path,
                "a record of a dataset the datastore neither holds nor has in its trash",
            )

    # -- storage checks ------------------------------------------------------------

    def check_storage(self, checksums: bool) -> None:
        rows: Iterator[tuple[dict[str, Any], bool]] = iter(())
        if self._has_stored_records():
            rows = self.bridge.ordered_records(
                self.records, "path", exclude_prefixes=_DIRECT_PREFIXES, columns=_CHECKED
            )
        listing = self.datastore.store.list_sizes()
        artifact = next(listing, None)
        for stored_path, group in groupby(rows, key=lambda pair: pair[0]["path"]):
            same_path = list(group)
            self.check.checked += len(same_path)
            while artifact is not None and artifact[0] < stored_path:
                self._unknown(artifact[0])
                artifact = next(listing, None)
            if artifact is None or artifact[0] != stored_path:
                for row, held in same_path:
                    if held:
                        self.add("missing_artifact", row["dataset_id"], stored_path, "no such file")
                continue
            self._compare(stored_path, artifact[1], same_path, checksums)
            artifact = next(listing, None)
        while artifact is not None:
            self._unknown(artifact[0])
            artifact = next(listing, None)
        self._check_direct(checksums)

    def _has_stored_records(self) -> bool:
        """Whether any record names a file in the datastore's root (not ingested ``direct``):
        one cheap look, so that a datastore of files left in place is not read twice."""
        records = self.records
        if not isinstance(records, ByNameOpaqueTableStorage):
            return True  # the bridge's ordered query says it
        db = records.database
        p = db.PLACEHOLDER
        sql = (
            f"SELECT 1 FROM {db.quoted(records.table)} "
            f"WHERE NOT (substr(path, 1, 1) = {p} OR substr(path, 1, 7) = {p}) LIMIT 1"
        )
        with db.query_raw(sql, ["/", "file://"]) as found:
            return bool(found)

    def _unknown(self, path: str) -> None:
        if is_internal(path) or path in self.journaled:
            return  # databutler's own files, or a moved file its journal accounts for
        self.add("unknown_artifact", None, path, "no record mentions this file")

    def check_moves(self, repair: bool) -> None:
        """Files interrupted move ingests left behind; with ``repair``, move them back."""
        if repair:
            moved_back, left = recover(self.datastore)
            for _ in range(moved_back):
                self.add("unfinished_move", None, None, "moved back to where it was ingested from")
            if moved_back:
                self.check.repaired["unfinished_move"] = (
                    self.check.repaired.get("unfinished_move", 0) + moved_back
                )
        else:
            left = pending_moves(self.datastore)
        for problem in left:
            self.add("unfinished_move", None, problem.destination, problem.detail)
        self.journaled = journaled_paths(self.datastore.store)

    def _compare(
        self, path: str, size: int, rows: list[tuple[dict[str, Any], bool]], checksums: bool
    ) -> None:
        data: bytes | None = None
        for row, held in rows:
            if row.get("member") or not held:
                continue  # zip members have their own sizes; trashed ones await deletion
            file_size, dataset_id = row.get("file_size"), row["dataset_id"]
            if size < 0:  # the listing's mark of a symbolic link that leads to no file
                self.add(
                    "missing_artifact",
                    dataset_id,
                    path,
                    "a symbolic link that leads to no file (what it linked to is gone)",
                )
            elif file_size is not None and file_size >= 0 and file_size != size:
                self.add(
                    "size_mismatch", dataset_id, path, f"recorded {file_size} bytes, found {size}"
                )
            elif checksums and not row.get("checksum"):
                self.check.unchecksummed += 1
            elif checksums:
                if data is None:
                    data = self.datastore.store.read(path)
                if _sha256(data) != row["checksum"]:
                    self.add("checksum_mismatch", dataset_id, path, "content changed")

    def _check_direct(self, checksums: bool) -> None:
        for path, file_size, checksum, dataset_id in self._direct_rows():
            local = path.removeprefix("file://")
            self.check.checked += 1
            # One stat per file (strings, not Path objects: there can be millions).
            status = file_status(os.stat, local)
            if status is None or not stat.S_ISREG(status.st_mode):
                self.add("missing_artifact", dataset_id(), path, "directly ingested file is gone")
            elif file_size is not None and status.st_size != file_size:
                found = status.st_size
                self.add(
                    "size_mismatch",
                    dataset_id(),
                    path,
                    f"recorded {file_size} bytes, found {found}",
                )
            elif checksums and not checksum:
                self.check.unchecksummed += 1
            elif checksums and _sha256(Path(local).read_bytes()) != checksum:
                self.add("checksum_mismatch", dataset_id(), path, "content changed")

    def _direct_rows(
        self,
    ) -> Iterator[tuple[str, int | None, str | None, Callable[[], DatasetId]]]:
        """``(path, file_size, checksum, id)`` of the held datasets' directly ingested files
        (the id decoded only when asked for: a problem).

        A registry's records table is read through its bridge's `held_record_pages`
        (driver-level pages by the records' primary key, ``_DIRECT_PAGE`` rows a
        query); other storage goes through the bridge's `ordered_records`.
        """
        records, bridge = self.records, self.bridge
        if not (
            isinstance(records, ByNameOpaqueTableStorage)
            and isinstance(bridge, MonolithicDatastoreRegistryBridge)
        ):
            ordered = bridge.ordered_records(
                records, "path", prefixes=_DIRECT_PREFIXES, held_only=True, columns=_CHECKED
            )
            for row, _ in ordered:
                found = partial(_given, row["dataset_id"])
                yield row["path"], row.get("file_size"), row.get("checksum"), found
            return
        db = records.database
        pages = bridge.held_record_pages(
            records, "path", _DIRECT_PREFIXES, ("file_size", "checksum"), _DIRECT_PAGE
        )
        for page in pages:
            for key, _, path, file_size, checksum in page:
                yield path, file_size, checksum, partial(_decoded, db, key)

    # -- repairs ---------------------------------------------------------------

    def repair(
        self, problems: list[StorageProblem], delete_unknown: bool, keep_newer: float = 0.0
    ) -> dict[str, int]:
        by_kind: dict[str, list[StorageProblem]] = {}
        for problem in problems:
            by_kind.setdefault(problem.kind, []).append(problem)
        strays = len(by_kind.get("unknown_artifact", []))
        if delete_unknown and strays and not self.check.checked:
            # Every file unknown: far likelier a configuration that names the wrong datastore
            # or directory, or records lost, than strays. Refused before any repair.
            raise RepositoryError(
                f"Datastore {self.datastore.name!r} records no stored artifact, yet its storage "
                f"holds {strays} file(s) that delete_unknown would delete: its configuration "
                "may name the wrong datastore or directory (renamed in butler.yaml?), or its "
                "records were lost. Nothing was changed; check the configuration, or delete "
                "the files yourself if they are not wanted."
            )
        done: dict[str, int] = {}
        datastore = self.datastore
        forget = [
            p.dataset_id
            for kind in ("missing_artifact", "location_without_records")
            for p in by_kind.get(kind, [])
            if p.dataset_id is not None
        ]
        for batch in _chunked(dict.fromkeys(forget), FORGET_BATCH):
            datastore.forget([FakeDatasetRef(i) for i in batch])
        for kind in ("missing_artifact", "location_without_records"):
            if by_kind.get(kind):
                done[kind] = len(by_kind[kind])
        orphans = [p.dataset_id for p in by_kind.get("records_without_location", [])]
        if orphans:
            # Only rows still orphaned: a dataset stored since the check keeps its records.
            self.bridge.delete_orphaned_records(
                self.records, dict.fromkeys(i for i in orphans if i is not None)
            )
            done["records_without_location"] = len(orphans)
        if by_kind.get("stale_trash"):
            datastore.empty_trash()  # one artifact that cannot be deleted stops nothing
            stuck = {i for f in datastore.trash_failures for i in f.dataset_ids}
            emptied = [p for p in by_kind["stale_trash"] if p.dataset_id not in stuck]
            if emptied:
                done["stale_trash"] = len(emptied)
            # Last, so that counting the repairs off the front leaves exactly the ones still there.
            left = {id(p) for p in by_kind["stale_trash"] if p.dataset_id in stuck}
            if left:
                problems = self.check.problems
                problems[:] = [p for p in problems if id(p) not in left] + [
                    p for p in problems if id(p) in left
                ]
            for failure in datastore.trash_failures:
                self.add("undeletable_artifact", None, failure.path, str(failure))
        if delete_unknown and by_kind.get("unknown_artifact"):
            kept = self._delete_unknown(by_kind["unknown_artifact"], keep_newer)
            deleted = len(by_kind["unknown_artifact"]) - len(kept)
            if deleted:
                done["unknown_artifact"] = deleted
            if kept:  # last of their kind, in their new words: still there
                problems = self.check.problems
                replaced = {id(old) for old, _ in kept}
                problems[:] = [p for p in problems if id(p) not in replaced] + [
                    new for _, new in kept
                ]
        return done

    def _delete_unknown(
        self, found: list[StorageProblem], keep_newer: float
    ) -> list[tuple[StorageProblem, StorageProblem]]:
        """Delete the unknown artifacts ``found``, but those a write may still record: named
        by a record now (a write committed since the check), or arrived in the last
        ``keep_newer`` seconds. Never a file a move journal names (a user's file on its way
        back) or databutler's own. Returns the problems kept, each with its new form."""
        store = self.datastore.store
        journaled = journaled_paths(store)
        paths = [p.path for p in found if p.path is not None]
        recorded = {row["path"] for row in self.records.fetch(path=paths)} if paths else set()
        cutoff = time.time() - keep_newer
        doomed: list[str] = []
        kept: list[tuple[StorageProblem, StorageProblem]] = []
        for problem in found:
            path = problem.path
            if path is None or path in journaled or is_internal(path):
                continue
            if path in recorded:
                detail = "recorded since the check (a write finished meanwhile): kept"
            else:
                arrived = store.arrived(path) if keep_newer else None
                if arrived is None or arrived <= cutoff:
                    doomed.append(path)  # one already gone is not an error
                    continue
                detail = (
                    f"written {time.time() - arrived:.0f} s ago, within the {keep_newer:g} s "
                    "to keep: a write still running may record it; kept"
                )
            kept.append(
                (problem, StorageProblem(problem.kind, problem.datastore, None, path, detail))
            )
        store.delete_many(doomed)  # in batches (S3) or several at once
        return kept


def _given(dataset_id: DatasetId) -> DatasetId:
    return dataset_id


def _decoded(db: Database, key: Any) -> DatasetId:
    """The dataset id of ``key``, a driver-level value."""
    return db.decode_ids([key])[0]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
