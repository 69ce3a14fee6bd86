"""Value types of the datastore's maintenance hooks, shared by every backend and the Butler.

- `TrashFailure` and `EmptyTrashResult`: what emptying the trash could not
  delete (`Datastore.trash_failures`), and the Butler's count with them.
- `StorageProblem`, `StorageCheck` and `PROBLEM_KINDS`: what
  `Datastore.verify_storage` found in a datastore's storage and records, and
  what it repaired.

They are public as ``databutler.datastores.<name>``; this module imports no
datastore.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._dataset_ref import DatasetId

__all__ = [
    "PROBLEM_KINDS",
    "EmptyTrashResult",
    "StorageCheck",
    "StorageProblem",
    "TrashFailure",
]


@dataclass(frozen=True, slots=True)
class TrashFailure:
    """A trashed artifact that could not be deleted; its datasets stay in the trash."""

    datastore: str
    path: str
    dataset_ids: tuple[DatasetId, ...]
    reason: str

    def __str__(self) -> str:
        return (
            f"Could not delete artifact {self.path!r} of datastore {self.datastore!r} "
            f"({len(self.dataset_ids)} trashed dataset(s)): {self.reason}. Its trash rows are "
            "kept; fix the cause (permissions, a directory in its place) and empty the trash "
            "again, or run verify(repair=True)."
        )


class EmptyTrashResult(int):
    """How many datasets `Butler.empty_trash` emptied (an `int`), and what it could not delete.

    ``failures`` lists the artifacts that could not be deleted (`TrashFailure`);
    their datasets stay in the trash, everything else was emptied.
    """

    failures: tuple[TrashFailure, ...]

    def __new__(cls, emptied: int, failures: tuple[TrashFailure, ...] = ()) -> EmptyTrashResult:
        result = super().__new__(cls, emptied)
        result.failures = tuple(failures)
        return result

    @property
    def ok(self) -> bool:
        """Whether every trashed artifact could be deleted."""
        return not self.failures


#: Kinds of disagreement `Datastore.verify_storage` reports, and what its repair does about each.
PROBLEM_KINDS = {
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


@dataclass(frozen=True, slots=True)
class StorageProblem:
    """One disagreement between a datastore's registry rows, its records and its storage.

    ``kind`` is one of `PROBLEM_KINDS`; ``dataset_id`` and ``path`` are `None`
    where the problem has none (an unknown file has no dataset).
    """

    kind: str
    datastore: str
    dataset_id: DatasetId | None
    path: str | None
    detail: str


@dataclass
class StorageCheck:
    """What `Datastore.verify_storage` found in one datastore, and what it repaired.

    ``problems`` are in the order found, except that those a repair could
    not fix come after the others of their kind's repair (so that counting
    ``repaired`` off the front of each kind leaves exactly the unrepaired
    ones); ``repaired`` counts the repairs made by kind; ``checked`` counts
    the records rows compared with the storage; ``unchecksummed`` counts the
    artifacts that ``checksums=True`` could compare by size only, because no
    checksum is recorded for them.
    """

    problems: list[StorageProblem] = field(default_factory=list)
    repaired: dict[str, int] = field(default_factory=dict)
    checked: int = 0
    unchecksummed: int = 0
