"""Pruning in chunks: a chunk's artifacts are deleted while the next is trashed.

`Butler.prune` and `Butler.remove_runs` work through `_delete.PRUNE_CHUNK`
datasets at a time and overlap deleting one chunk's artifacts (in a thread,
for a file datastore) with trashing the next. These tests make the chunks
tiny so that a handful of datasets crosses several of them, and check through
the storage and the registry that everything went, or, when a later chunk
fails, that what was done is whole and what was not is untouched.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import databutler.butler._delete as delete_module
import databutler.datastores._file_trash as file_trash
from databutler import Butler
from databutler.testing.butler import file_datastore, populate, registry_arguments

N = 11


@pytest.fixture(
    params=[("sqlite", 0), ("sqlite", 64), ("postgresql", 0), ("postgresql", 64)],
    ids=["sqlite-thread", "sqlite-inline", "postgresql-thread", "postgresql-inline"],
)
def butler(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: Any) -> Iterator[Butler]:
    """A repository pruned three datasets a chunk; each chunk's artifacts deleted in a
    thread (``INLINE_DELETES`` 0) or, being few, when the chunk is finished."""
    backend, inline = request.param
    monkeypatch.setattr(delete_module, "PRUNE_CHUNK", 3)
    monkeypatch.setattr(file_trash, "INLINE_DELETES", inline)
    with registry_arguments(backend) as arguments:
        made = Butler.create(str(tmp_path / "repo"), run="run", **arguments)
        try:
            populate(made, detectors=N)
            yield made
        finally:
            made.close()


def _artifacts(butler: Butler) -> set[str]:
    return set(file_datastore(butler).store.list())  # what is on disk


def _trash_rows(butler: Butler) -> int:
    return int(butler.empty_trash(dry_run=True))  # trashed datasets it would empty


def _put_all(butler: Butler) -> list[Any]:
    return [butler.put({"d": d}, "thing", instrument="HSC", detector=d) for d in range(N)]


def test_prune_across_chunks_deletes_everything(butler: Butler) -> None:
    refs = _put_all(butler)
    assert len(_artifacts(butler)) == N
    result = butler.prune(refs, purge=True)
    assert (result.unstored, result.purged) == (N, N)
    assert _artifacts(butler) == set()
    assert _trash_rows(butler) == 0
    assert list(butler.query_datasets("thing", collections="run")) == []
    assert butler.verify().ok


def test_unstore_across_chunks_keeps_the_datasets(butler: Butler) -> None:
    refs = _put_all(butler)
    result = butler.prune(refs, unstore=True)
    assert (result.unstored, result.purged) == (N, 0)
    assert _artifacts(butler) == set()
    assert _trash_rows(butler) == 0
    assert sorted(r.dataId["detector"] for r in butler.query_datasets("thing")) == list(range(N))
    assert not any(butler.exists(r) for r in refs)


def test_remove_runs_across_chunks(butler: Butler) -> None:
    _put_all(butler)
    assert butler.remove_runs(["run"]) == N
    assert _artifacts(butler) == set()
    assert _trash_rows(butler) == 0
    assert butler.verify().ok


def test_a_prune_inside_a_transaction_counts_what_it_deleted(butler: Butler) -> None:
    """The dataset deletes wait for a COMMIT that is the caller's: their count does not."""
    refs = _put_all(butler)
    with butler.transaction():
        result = butler.prune(refs[:4], purge=True)
        assert result.purged == 4  # read before the caller's COMMIT
        again = butler.prune(refs[:4], purge=True)  # gone already, inside the block
        assert again.purged == 0
    left = sorted(r.dataId["detector"] for r in butler.query_datasets("thing"))
    assert left == list(range(4, N))
    assert butler.verify().ok


def test_failure_in_a_later_chunk_finishes_the_earlier_ones(
    butler: Butler, monkeypatch: Any
) -> None:
    refs = _put_all(butler)
    registry = butler.registry
    original = registry.queue_dataset_removal
    calls = []

    def fail_on_third(chunk: Any) -> Any:
        calls.append(len(list(chunk)))
        if len(calls) == 3:
            raise RuntimeError("the database went away")
        return original(chunk)

    monkeypatch.setattr(registry, "queue_dataset_removal", fail_on_third)
    with pytest.raises(RuntimeError, match="went away"):
        butler.prune(refs, purge=True)
    monkeypatch.undo()
    # Chunks one and two (six datasets) are gone whole, artifacts and rows; the
    # failed third and the rest are untouched, their artifacts readable.
    left = sorted(r.dataId["detector"] for r in butler.query_datasets("thing"))
    assert left == list(range(6, N))
    assert len(_artifacts(butler)) == N - 6
    assert _trash_rows(butler) == 0
    assert all(butler.get(r) == {"d": r.dataId["detector"]} for r in refs[6:])
    assert butler.verify().ok
    result = butler.prune(refs[6:], purge=True)
    assert (result.unstored, result.purged) == (N - 6, N - 6)
    assert _artifacts(butler) == set()


def test_a_small_prune_deletes_its_artifacts_without_a_thread(
    butler: Butler, monkeypatch: Any
) -> None:
    refs = _put_all(butler)
    started: list[str] = []
    real = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        started.append(thread.name)
        real(thread)

    monkeypatch.setattr(threading.Thread, "start", start)
    butler.prune(refs[:2], purge=True)
    assert len(_artifacts(butler)) == N - 2
    threaded = file_trash.INLINE_DELETES < 2
    assert ("databutler-empty-trash" in started) == threaded


def test_empty_trash_of_a_small_trash_reads_it_by_ids(butler: Butler, monkeypatch: Any) -> None:
    """A trash of at most `FEW` datasets is read once by ids, emptied and purged in fewer
    statements than the passes of a whole trash (as a prune empties its own). Both leave
    the same: no artifact, no trash row, the kept datasets whole."""
    from databutler.testing.database import statements

    refs = _put_all(butler)
    counts = []
    for few, trashed in ((2, refs[:5]), (8, refs[5:10])):  # a large trash, then a small one
        monkeypatch.setattr(file_trash, "FEW", few)
        with butler.transaction():  # trashed, not emptied: what a crash after commit leaves
            file_datastore(butler).trash(trashed)
            butler.registry.removeDatasets(trashed)
        assert _trash_rows(butler) == 5
        with statements(butler.registry.db) as seen:
            emptied = butler.empty_trash()
        assert int(emptied) == 5 and emptied.ok
        assert _trash_rows(butler) == 0
        counts.append(len(seen))
    assert len(_artifacts(butler)) == 1  # the one dataset kept
    assert butler.get(refs[10]) == {"d": 10}
    large, small = counts
    assert small < large, counts
    if butler.registry.db.dialect_name == "postgresql":
        # The ids; their rows and records; which of their artifacts others share; the purge.
        assert small <= 4, counts
