"""A transaction that collides with another client's is repeated inside the library."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from databutler import ConcurrentUpdateError, ConflictError
from databutler.butler import _retry
from databutler.registry.interfaces import Database
from databutler.testing.database import DatabaseFactory, database_factory


def _real_deadlock(databases: DatabaseFactory) -> BaseException:
    """Two real PostgreSQL transactions that lock two rows in opposite orders; the error
    the server raises in the one it aborts."""
    engine = databases.raw_engine()
    table = databases.qualified("deadlock_rows")
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f"CREATE TABLE {table} (id INT PRIMARY KEY, v INT)"))
        connection.execute(sqlalchemy.text(f"INSERT INTO {table} VALUES (1, 0), (2, 0)"))
    errors: list[BaseException] = []
    both_locked = threading.Barrier(2)

    def lock(first: int, second: int) -> None:
        try:
            with engine.begin() as connection:
                update = f"UPDATE {table} SET v = v + 1 WHERE id = "
                connection.execute(sqlalchemy.text(update + str(first)))
                both_locked.wait(timeout=30)
                connection.execute(sqlalchemy.text(update + str(second)))
        except sqlalchemy.exc.DBAPIError as exc:
            errors.append(exc)

    other = threading.Thread(target=lock, args=(2, 1))
    other.start()
    lock(1, 2)
    other.join()
    assert len(errors) == 1, errors  # the server aborts exactly one of the two
    return errors[0]


class _Work:
    """Raises ``errors`` one by one, then returns the number of calls."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.calls


@pytest.fixture
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_retry, "FIRST_PAUSE", 0.0)


@pytest.fixture
def postgresql(tmp_path: Path) -> Iterator[DatabaseFactory]:
    with database_factory("postgresql", tmp_path) as factory:
        yield factory


def test_a_real_deadlock_is_transient_and_repeated(
    postgresql: DatabaseFactory, no_pause: None
) -> None:
    db = postgresql.open()
    deadlock = _real_deadlock(postgresql)
    assert db.is_transient(deadlock)
    wrapped = ConcurrentUpdateError("wrapped")
    wrapped.__cause__ = deadlock
    assert db.is_transient(wrapped)  # found through the chain of causes
    assert not db.is_transient(ConflictError("a unique constraint", None))

    work = _Work(deadlock, deadlock)
    assert _retry.retrying(db, work, "do it") == 3  # repeated, never seen by the caller

    always = _Work(*[deadlock] * _retry.ATTEMPTS)
    with pytest.raises(ConcurrentUpdateError, match=r"collided .* 6 time.*repeat it later"):
        _retry.retrying(db, always, "do it")
    assert always.calls == _retry.ATTEMPTS

    inside = _Work(deadlock)
    with (
        pytest.raises(ConcurrentUpdateError, match=r"repeat it \(the whole transaction\)"),
        db.transaction(),
    ):
        _retry.retrying(db, inside, "do it")  # the caller's transaction cannot be repeated here
    assert inside.calls == 1


def test_other_errors_are_not_repeated(db: Database, no_pause: None) -> None:
    # SQLite serialises writers (and waits for the lock): nothing there is transient.
    assert not db.is_transient(RuntimeError("x"))
    work: Any = _Work(ValueError("not a collision"))
    with pytest.raises(ValueError, match="not a collision"):
        _retry.retrying(db, work, "do it")
    assert work.calls == 1
