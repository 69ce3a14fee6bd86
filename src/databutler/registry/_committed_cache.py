"""A per-client cache that keeps what committed transactions read, and nothing a rollback undid."""

from __future__ import annotations

from typing import Generic, TypeVar

from .interfaces import Database

K = TypeVar("K")
V = TypeVar("V")


class CommittedCache(Generic[K, V]):
    """A dictionary of rows read from ``db``, filled only by transactions that commit.

    A value read inside a transaction is kept once the transaction commits
    (`Database.on_commit`); a rollback drops it. Forgetting anything while
    the transaction is open also cancels what it read before, so a read taken
    before a write of the same rows never outlives the write.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._data: dict[K, V] = {}
        self._epoch = 0

    def get(self, key: K) -> V | None:
        """The cached value, or `None`."""
        return self._data.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def keep(self, key: K, value: V) -> None:
        """Cache ``value`` once the current transaction (if any) commits."""
        epoch = self._epoch

        def store() -> None:
            if epoch == self._epoch:
                self._data[key] = value

        self._db.on_commit(store)

    def forget(self, key: K) -> None:
        """Drop ``key``, and whatever the open transaction read so far."""
        self._epoch += 1
        self._data.pop(key, None)

    def clear(self) -> None:
        """Drop everything, and whatever the open transaction read so far."""
        self._epoch += 1
        self._data.clear()
