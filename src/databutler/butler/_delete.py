"""Deleting datasets through a `Butler`: prune and remove runs, in two phases.

Phase one runs in one transaction per chunk: the datastore trashes the
datasets while the registry deletes (or untags) them. Phase two, after
commit, empties the chunk's trash: the artifacts go, then their rows. An
interruption between the two leaves trash rows, which `Butler.empty_trash`
clears.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._collection_type import CollectionType
from .._dataset_ref import DatasetId, DatasetRef
from .._exceptions import ArgumentConflictError, CollectionError
from .._gc import collection_paused
from ..datastores import EmptyTrashResult, TrashFailure
from ..registry.interfaces import FakeDatasetRef
from ._retry import retrying

if TYPE_CHECKING:
    from ._butler_base import ButlerBase

__all__ = ["PRUNE_CHUNK", "PruneResult", "RemovedDatasets", "prune", "remove_runs"]

#: Refs per transaction when pruning (small enough that deleting one chunk's
#: artifacts overlaps trashing the next, large enough that statements are few).
PRUNE_CHUNK = 5_000

_LOG = logging.getLogger(__name__)

Emptying = Callable[[], list[DatasetId]]
"""A chunk's trash being emptied: called, it finishes and returns the emptied ids."""


class _EmptyingBehind:
    """Empties the trash of chunks one chunk behind, as a pipeline.

    `add` starts emptying a chunk (the datastore reads its trash and deletes
    its artifacts in the background where it can), then finishes the chunk
    before it (its rows go only after its artifacts): so one chunk's
    artifacts are deleted while the caller trashes the next. Leaving the
    block after an error finishes what was started (logged, not raised; its
    trash rows stay if that fails too, for `Butler.empty_trash`).
    """

    def __init__(self, start: Callable[[list[Any]], Emptying], finish: Callable[[Emptying], int]):
        self._start = start
        self._finish = finish
        self._pending: Emptying | None = None

    def __enter__(self) -> _EmptyingBehind:
        return self

    def add(self, chunk: list[Any]) -> int:
        """Start emptying ``chunk``, finish the one before; how many datasets that emptied."""
        previous, self._pending = self._pending, self._start(chunk)
        return 0 if previous is None else self._finish(previous)

    def close(self) -> int:
        """Finish the last chunk; how many datasets it emptied."""
        previous, self._pending = self._pending, None
        return 0 if previous is None else self._finish(previous)

    def __exit__(self, *exc_info: object) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            pending()
        except Exception:
            _LOG.exception(
                "Could not finish emptying the trash of pruned datasets; Butler.empty_trash will."
            )


@dataclass(frozen=True)
class PruneResult:
    """How many datasets `Butler.prune` untagged, unstored (artifacts deleted) and purged,
    and the artifacts it could not delete (``failures``: their datasets stay in the trash,
    for `Butler.empty_trash` once the cause is fixed)."""

    disassociated: int = 0
    unstored: int = 0
    purged: int = 0
    failures: tuple[TrashFailure, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every artifact that was to go went."""
        return not self.failures


class RemovedDatasets(EmptyTrashResult):
    """How many datasets `Butler.remove_runs` removed (an `int`), and the artifacts it could
    not delete (``failures``: their datasets stay in the trash); a count with failures, as
    `~databutler.datastores.EmptyTrashResult` is."""


def _failures(butler: ButlerBase) -> list[TrashFailure]:
    """What the last emptying of each datastore could not delete."""
    return [failure for leaf in butler.datastore.leaves for failure in leaf.trash_failures]


def _check_prune_options(
    tags: list[str], disassociate: bool | None, unstore: bool | None, purge: bool
) -> bool:
    """Refuse illegal combinations, naming them; whether artifacts are to be deleted."""
    if disassociate is False and tags:
        raise ArgumentConflictError(
            "tags= names collections to take the datasets out of, but disassociate=False; "
            "drop one of them."
        )
    if disassociate and not tags and not purge:
        raise ArgumentConflictError(
            "disassociate=True needs the TAGGED collections: pass tags=[...]."
        )
    if purge and disassociate is False:
        raise ArgumentConflictError(
            "purge=True takes the datasets out of every collection; drop disassociate=False."
        )
    if purge and unstore is False:
        raise ArgumentConflictError(
            "purge=True deletes the datasets, so it must delete their artifacts too; "
            "drop unstore=False."
        )
    if purge and tags:
        raise ArgumentConflictError(
            "purge=True takes the datasets out of every collection; drop tags=, or "
            "drop purge=True to only untag them."
        )
    if not (tags or unstore or purge):
        raise ArgumentConflictError("Nothing to do: pass tags=[...], unstore=True or purge=True.")
    return bool(unstore) or purge


def prune(
    butler: ButlerBase,
    refs: Iterable[DatasetRef],
    *,
    tags: Iterable[str],
    disassociate: bool | None,
    unstore: bool | None,
    purge: bool,
) -> PruneResult:
    """See `Butler.prune`."""
    tags = list(dict.fromkeys(tags))
    unstore = _check_prune_options(tags, disassociate, unstore, purge)
    registry = butler.registry
    for tag in tags:
        kind = registry.getCollectionType(tag)
        if kind is not CollectionType.TAGGED:
            raise CollectionError(
                f"Collection {tag!r} is a {kind.name} collection, not TAGGED; only tags can "
                "be disassociated from (use purge=True to delete datasets from their run)."
            )
    refs = list(refs)
    if refs:  # pruning nothing only checks the options: a read-only butler may
        butler._require_writeable("prune datasets")
    untagged = unstored = purged = 0
    db = registry.db

    def remove(chunk: list[DatasetRef]) -> int:
        removed = None
        with butler.transaction():
            if unstore:
                butler.datastore.trash(chunk)
            if purge:  # the deletes go out with the COMMIT; their count is read after it
                removed = registry.queue_dataset_removal(chunk)
            for tag in tags:
                registry.disassociate(tag, chunk)
        return 0 if removed is None else removed()

    failures: list[TrashFailure] = []

    def finish(emptying: Emptying) -> int:
        emptied = len(set(retrying(db, emptying, "empty the trash of pruned datasets")))
        failures.extend(_failures(butler))  # this chunk's: the next one replaces them
        return emptied

    # What the chunks make goes by reference counting; the refs are held by the caller.
    with collection_paused(), _EmptyingBehind(butler.datastore.start_empty_trash, finish) as behind:
        for start in range(0, len(refs), PRUNE_CHUNK):
            chunk = refs[start : start + PRUNE_CHUNK]
            purged += retrying(db, functools.partial(remove, chunk), "prune datasets")
            untagged += len(chunk) if tags else 0
            if unstore:
                unstored += behind.add(chunk)
        unstored += behind.close()
    return PruneResult(untagged, unstored, purged, tuple(failures))


def remove_runs(
    butler: ButlerBase, names: Iterable[str], *, unlink_from_chains: bool
) -> RemovedDatasets:
    """See `Butler.remove_runs`."""
    butler._require_writeable("remove runs")
    registry = butler.registry
    runs = sorted(set(names))  # a fixed order: concurrent removals cannot deadlock
    for run in runs:
        kind = registry.getCollectionType(run)
        if kind is not CollectionType.RUN:
            raise CollectionError(
                f"Collection {run!r} is a {kind.name} collection, not a RUN; remove_runs "
                "deletes runs only."
            )
        parents = registry.get_collection_parents(run)
        if parents and not unlink_from_chains:
            raise CollectionError(
                f"Run {run!r} is in chain(s) {', '.join(parents)}; pass "
                "unlink_from_chains=True (--unlink) to take it out of them first."
            )
    # Only ids are held (not refs): a run of millions of datasets fits in memory.
    ids = [dataset_id for run in runs for dataset_id in registry.run_dataset_ids(run)]
    with butler.transaction():
        for run in runs:
            for parent in sorted(registry.get_collection_parents(run)):
                chain = [c for c in registry.getCollectionChain(parent) if c != run]
                registry.setCollectionChain(parent, chain)
        for run in runs:
            # Trashes the run's datasets in every datastore holding them, then
            # deletes the datasets and the run.
            registry.removeCollection(run)
    failures: list[TrashFailure] = []

    def finish(emptying: Emptying) -> int:
        emptied = len(emptying())
        failures.extend(_failures(butler))
        return emptied

    with collection_paused(), _EmptyingBehind(butler.datastore.start_empty_trash, finish) as behind:
        for start in range(0, len(ids), PRUNE_CHUNK):  # only the ids are held
            behind.add([FakeDatasetRef(i) for i in ids[start : start + PRUNE_CHUNK]])
        behind.close()
    return RemovedDatasets(len(ids), tuple(failures))
