"""Several clients emptying one trash at once never handle the same dataset twice."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from databutler.registry import RegistryManagerInstances, RegistryManagerTypes
from databutler.registry.interfaces import FakeDatasetRef
from databutler.testing.database import DatabaseFactory, database_factory, statements


@pytest.fixture(params=["sqlite-file", "postgresql"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseFactory]:
    """A database that separate clients (connections) can share."""
    with database_factory(request.param, tmp_path) as factory:
        yield factory


def _client(databases: DatabaseFactory) -> RegistryManagerInstances:
    repo = RegistryManagerTypes().loadRepo(databases.open())
    repo.db.IN_BATCH_SIZE = 25  # several pages per emptier
    return repo


def test_concurrent_emptiers_share_the_work(shared: DatabaseFactory) -> None:
    creator = RegistryManagerTypes().makeRepo(shared.open())
    ids = [uuid.uuid4() for _ in range(200)]
    creator.datasets.insert(ids)  # type: ignore[attr-defined]
    bridge = creator.datastores.register("files")
    bridge.insert(FakeDatasetRef(i) for i in ids)
    bridge.moveToTrash((FakeDatasetRef(i) for i in ids), None)

    first, second = _client(shared), _client(shared)
    seen: dict[str, list[uuid.UUID]] = {"first": [], "second": []}
    first_has_rows = threading.Event()
    second_done = threading.Event()
    errors: list[BaseException] = []

    def run_first() -> None:
        try:
            with first.datastores.register("files").emptyTrash() as (pairs, _):
                for ref, _info in pairs:
                    seen["first"].append(ref.id)  # type: ignore[arg-type]
                first_has_rows.set()
                # Hold the transaction open while the second client tries; on
                # SQLite it waits for our commit, so do not wait for it forever.
                second_done.wait(timeout=1.0)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            first_has_rows.set()

    def run_second() -> None:
        try:
            first_has_rows.wait(timeout=30)
            with second.datastores.register("files").emptyTrash() as (pairs, _):
                seen["second"].extend(ref.id for ref, _info in pairs)  # type: ignore[misc]
        except BaseException as exc:
            errors.append(exc)
        finally:
            second_done.set()

    threads = [threading.Thread(target=run_first), threading.Thread(target=run_second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    everything = seen["first"] + seen["second"]
    assert len(everything) == len(set(everything)) == len(ids)
    assert set(everything) == set(ids)
    with creator.datastores.register("files").emptyTrash() as (pairs, _):
        assert list(pairs) == []


def test_a_purge_skips_rows_another_emptier_holds(shared: DatabaseFactory) -> None:
    """`purge_trash` leaves trash rows another client has locked (it is emptying them) and
    purges the others; on PostgreSQL in one statement, with no BEGIN or COMMIT."""
    creator = RegistryManagerTypes().makeRepo(shared.open())
    ids = sorted(uuid.uuid4() for _ in range(6))
    creator.datasets.insert(ids)  # type: ignore[attr-defined]
    bridge = creator.datastores.register("files")
    bridge.insert(FakeDatasetRef(i) for i in ids)
    bridge.moveToTrash((FakeDatasetRef(i) for i in ids), None)
    other = _client(shared)
    purger = _client(shared)
    held = ids[:2]
    left = ids  # what the last purge below empties
    if other.db.dialect_name == "postgresql":  # SQLite's writers lock the whole database
        trash = creator.datastores.trash_table  # type: ignore[attr-defined]
        with other.db.transaction():
            with other.db.query_raw(
                f"SELECT dataset_id FROM {other.db.quoted(trash)} "
                f"WHERE {other.db.sql_in_ids('dataset_id', 2)} FOR UPDATE",
                other.db.in_ids_params(other.db.encode_ids(held)),
            ) as locked:
                assert len(locked) == 2
            with statements(purger.db) as seen:
                purged = purger.datastores.register("files").purge_trash(None, ids)
        assert sorted(purged) == ids[2:]
        assert len(seen) == 1 and seen[0].startswith("WITH page AS"), seen
        # The other emptier's rows are still there for it.
        assert sorted(bridge.trashed_ids()) == held
        left = held
    purged = purger.datastores.register("files").purge_trash(None, ids)
    assert sorted(purged) == left
    assert sorted(bridge.trashed_ids()) == []
