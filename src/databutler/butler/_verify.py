"""Compare registry, bridge, records and storage, in both directions, and repair what is safe.

The checks belong to the datastores that own the records and the storage:
the Butler asks each of its datastore's `~databutler.datastores.Datastore.leaves`
for `~databutler.datastores.Datastore.verify_storage` (a file datastore
streams its bridge's queries and merges them with its storage listing;
memory use does not grow with the number of datasets, except for the
problems found), and gathers what they return into one `VerifyReport`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from .._gc import collection_paused
from ..datastores import PROBLEM_KINDS, Datastore, StorageCheck
from ..registry.interfaces import Database

__all__ = ["KINDS", "Problem", "VerifyReport", "recover_moves", "verify_datastore"]

_LOG = logging.getLogger(__name__)

#: Kinds of disagreement, and what `repair` does about each.
KINDS = PROBLEM_KINDS


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
    unchecksummed: int = 0
    """With ``checksums=True``: the artifacts compared by size only, because no checksum is
    recorded for them (a datastore records checksums only when configured with
    ``checksum: true``); a same-size change to one of them cannot be seen."""

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


def recover_moves(datastore: Datastore) -> None:
    """Roll back the move ingests a crashed process left unfinished (a writeable open does).

    Never fails the caller: what cannot be moved back is logged, kept, and
    reported by `verify`.
    """
    for leaf in datastore.leaves:
        try:
            leaf.recover_moves()
        except Exception:
            _LOG.exception("Could not roll back interrupted moves of datastore %r.", leaf.name)


def verify_datastore(
    db: Database,
    datastore: Datastore,
    *,
    repair: bool,
    delete_unknown: bool,
    checksums: bool,
    keep_newer: float = 0.0,
) -> VerifyReport:
    """Check (and with ``repair``, fix) every datastore holding artifacts under ``datastore``.

    Parameters
    ----------
    db : `Database`
        The registry database: the checks of one datastore read in one session.
    datastore : `Datastore`
        The datastore; each of its `~Datastore.leaves` (children of chains
        included) checks itself with `~Datastore.verify_storage` (in-memory
        datastores die with the process: they have nothing to drift).
    repair, delete_unknown, checksums : `bool`
        As for `Butler.verify`.
    keep_newer : `float`, optional
        As for `Butler.verify`.
    """
    report = VerifyReport()
    # Only when asked for: a datastore written before the option takes the call as it was.
    newer: dict[str, float] = {"keep_newer": keep_newer} if keep_newer else {}
    for leaf in datastore.leaves:
        with collection_paused():  # rows streamed, each freed by reference counting
            check = leaf.verify_storage(
                repair=repair,
                delete_unknown=delete_unknown,
                checksums=checksums,
                reading=db.session,
                **newer,
            )
        _add(report, check)
    return report


def _add(report: VerifyReport, check: StorageCheck) -> None:
    """Add one datastore's problems, repairs and count of records checked to ``report``."""
    report.problems.extend(
        Problem(p.kind, p.datastore, p.dataset_id, p.path, p.detail) for p in check.problems
    )
    for kind, n in check.repaired.items():
        report.repaired[kind] = report.repaired.get(kind, 0) + n
    report.checked += check.checked
    report.unchecksummed += check.unchecksummed
