"""Compare registry, bridge, records and storage, in both directions, and repair what is safe.

Each file datastore is checked by streaming, through the queries of its
bridge (`~databutler.registry.interfaces.DatastoreRegistryBridge`), which owns
the tables: datasets held without records (and records of datasets neither
held nor trashed), the trash, and the records ordered by path, which a merge
with the sorted storage listing turns into missing artifacts, unknown
artifacts and size (optionally checksum) mismatches. Memory use does not grow
with the number of datasets, except for the problems found.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby, islice
from pathlib import Path
from typing import Any

from ..datastores import Datastore, FileDatastore
from ..datastores._file_journal import is_internal, journaled_paths, pending_moves, recover
from ..datastores.resources import LocalStore
from ..registry.interfaces import Database, FakeDatasetRef

__all__ = ["KINDS", "Problem", "VerifyReport", "recover_moves", "verify_datastore"]

_LOG = logging.getLogger(__name__)

#: Kinds of disagreement, and what `repair` does about each.
KINDS = {
    "missing_artifact": "dataset recorded as stored, artifact missing (repair: forget it)",
    "unknown_artifact": "artifact no record mentions (repair: delete, only if asked)",
    "size_mismatch": "artifact size differs from its record (reported only)",
    "checksum_mismatch": "artifact checksum differs from its record (reported only)",
    "stale_trash": "trash row left behind (repair: empty the trash)",
    "location_without_records": "datastore holds a dataset it has no record of (repair: forget)",
    "records_without_location": "record of a dataset neither held nor trashed (repair: drop)",
    "unfinished_move": (
        "file an interrupted ingest(transfer='move') left unrecorded (repair: move it back)"
    ),
    "undeletable_artifact": "trashed artifact that cannot be deleted (its trash row is kept)",
}

#: Paths of artifacts ingested in place (``transfer="direct"``), outside the datastore's root.
_DIRECT_PREFIXES = ("file://", "/")

#: Records columns the storage checks read (besides ``dataset_id`` and ``path``).
_CHECKED = ("file_size", "checksum", "member")


@dataclass(frozen=True)
class Problem:
    """One disagreement between the registry, the datastore's records and its storage."""

    kind: str
    datastore: str
    dataset_id: uuid.UUID | None
    path: str | None
    detail: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly form."""
        return {
            "kind": self.kind,
            "datastore": self.datastore,
            "dataset_id": None if self.dataset_id is None else str(self.dataset_id),
            "path": self.path,
            "detail": self.detail,
        }


@dataclass
class VerifyReport:
    """What `Butler.verify` found, and what it repaired."""

    problems: list[Problem] = field(default_factory=list)
    repaired: dict[str, int] = field(default_factory=dict)
    checked: int = 0
    """Records rows checked."""

    @property
    def ok(self) -> bool:
        """Whether nothing was found."""
        return not self.problems

    @property
    def unrepaired(self) -> list[Problem]:
        """Problems still there after the repairs."""
        left = dict(self.repaired)
        remaining = []
        for problem in self.problems:
            if left.get(problem.kind, 0) > 0:
                left[problem.kind] -= 1
            else:
                remaining.append(problem)
        return remaining

    def counts(self) -> dict[str, int]:
        """Number of problems of each kind found."""
        found: dict[str, int] = {}
        for problem in self.problems:
            found[problem.kind] = found.get(problem.kind, 0) + 1
        return found


class _Checker:
    """The checks and repairs of one file datastore."""

    def __init__(self, db: Database, datastore: FileDatastore, report: VerifyReport) -> None:
        self.db = db
        self.datastore = datastore
        self.bridge = datastore.bridge
        self.records = datastore.records
        self.report = report
        self.name = datastore.name
        # Files a move journal names are reported as unfinished moves, never as unknown.
        self.journaled = journaled_paths(datastore.store)

    def add(self, kind: str, dataset_id: uuid.UUID | None, path: str | None, detail: str) -> None:
        self.report.problems.append(Problem(kind, self.name, dataset_id, path, detail))

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
        rows = self.bridge.ordered_records(
            self.records, "path", exclude_prefixes=_DIRECT_PREFIXES, columns=_CHECKED
        )
        listing = self.datastore.store.list_sizes()
        artifact = next(listing, None)
        for stored_path, group in groupby(rows, key=lambda pair: pair[0]["path"]):
            same_path = list(group)
            self.report.checked += len(same_path)
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
                self.report.repaired["unfinished_move"] = (
                    self.report.repaired.get("unfinished_move", 0) + moved_back
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
            if file_size is not None and file_size >= 0 and file_size != size:
                self.add(
                    "size_mismatch", dataset_id, path, f"recorded {file_size} bytes, found {size}"
                )
            elif checksums and row.get("checksum"):
                if data is None:
                    data = self.datastore.store.read(path)
                if _sha256(data) != row["checksum"]:
                    self.add("checksum_mismatch", dataset_id, path, "content changed")

    def _check_direct(self, checksums: bool) -> None:
        rows = self.bridge.ordered_records(
            self.records, "path", prefixes=_DIRECT_PREFIXES, held_only=True, columns=_CHECKED
        )
        for row, _ in rows:
            path, dataset_id = row["path"], row["dataset_id"]
            file_size, checksum = row.get("file_size"), row.get("checksum")
            local = Path(path.removeprefix("file://"))
            self.report.checked += 1
            if not local.is_file():
                self.add("missing_artifact", dataset_id, path, "directly ingested file is gone")
            elif file_size is not None and local.stat().st_size != file_size:
                found = local.stat().st_size
                self.add(
                    "size_mismatch", dataset_id, path, f"recorded {file_size} bytes, found {found}"
                )
            elif checksums and checksum and _sha256(local.read_bytes()) != checksum:
                self.add("checksum_mismatch", dataset_id, path, "content changed")

    # -- repairs ---------------------------------------------------------------

    def repair(self, problems: list[Problem], delete_unknown: bool) -> dict[str, int]:
        by_kind: dict[str, list[Problem]] = {}
        for problem in problems:
            by_kind.setdefault(problem.kind, []).append(problem)
        done: dict[str, int] = {}
        datastore = self.datastore
        forget = [
            p.dataset_id
            for kind in ("missing_artifact", "location_without_records")
            for p in by_kind.get(kind, [])
            if p.dataset_id is not None
        ]
        for batch in _chunked(dict.fromkeys(forget), self.db.IN_BATCH_SIZE):
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
            # Last, so that `VerifyReport.unrepaired` names exactly the ones still there.
            left = {id(p) for p in by_kind["stale_trash"] if p.dataset_id in stuck}
            if left:
                problems = self.report.problems
                problems[:] = [p for p in problems if id(p) not in left] + [
                    p for p in problems if id(p) in left
                ]
            for failure in datastore.trash_failures:
                self.add("undeletable_artifact", None, failure.path, str(failure))
        if delete_unknown and by_kind.get("unknown_artifact"):
            # Never a file a move journal names: it is a user's file on its way back.
            journaled = journaled_paths(datastore.store)
            unknown = [
                p.path
                for p in by_kind["unknown_artifact"]
                if p.path is not None and p.path not in journaled and not is_internal(p.path)
            ]
            datastore.store.delete_many(unknown)  # in batches (S3) or several at once
            done["unknown_artifact"] = len(by_kind["unknown_artifact"])
        return done


def recover_moves(datastore: Datastore) -> None:
    """Roll back the move ingests a crashed process left unfinished (a writeable open does).

    Never fails the caller: what cannot be moved back is logged, kept, and
    reported by `verify`.
    """
    for leaf in datastore.leaves:
        if isinstance(leaf, FileDatastore) and isinstance(leaf.store, LocalStore):
            try:
                recover(leaf)
            except Exception:
                _LOG.exception("Could not roll back interrupted moves of datastore %r.", leaf.name)


def verify_datastore(
    db: Database,
    datastore: Datastore,
    *,
    repair: bool,
    delete_unknown: bool,
    checksums: bool,
) -> VerifyReport:
    """Check (and with ``repair``, fix) every file datastore under ``datastore``.

    Parameters
    ----------
    db : `Database`
        The registry database: the checks of one datastore read in one session.
    datastore : `Datastore`
        The datastore; its file datastores (children of chains included) are
        checked through their bridges and records tables.
    repair, delete_unknown, checksums : `bool`
        As for `Butler.verify`.
    """
    report = VerifyReport()
    for leaf in datastore.leaves:
        if not isinstance(leaf, FileDatastore):
            continue  # in-memory datastores die with the process: nothing to drift
        checker = _Checker(db, leaf, report)
        checker.check_moves(repair)  # first: files moved back are no unknown artifacts
        start = len(report.problems)
        with db.session():  # one connection, in a transaction: PostgreSQL streams then
            checker.check_tables()
            checker.check_storage(checksums)
        if repair:
            for kind, n in checker.repair(report.problems[start:], delete_unknown).items():
                report.repaired[kind] = report.repaired.get(kind, 0) + n
    return report


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
