"""A per-client cache that keeps what committed transactions read, and nothing a rollback undid."""

from __future__ import annotations

from typing import Generic, TypeVar

from .interfaces import Database

K = TypeVar("K")
V = TypeVar("V")


class CommittedCache(Generic[K, V]):
    """A dictionary of rows read from ``db``, filled only by transactions that commit.

    A value read inside a transaction is kept once the transaction commits
    (`Database.on_commit`); a rollback drops it. Until then the transaction
    itself sees it (so a row it wrote or read is not read again), as long as
    none of its blocks rolled back (`Database.transaction_scope`). Forgetting
    anything while the transaction is open also cancels what it read before,
    so a read taken before a write of the same rows never outlives the write.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._data: dict[K, V] = {}
        self._epoch = 0
        #: What the open transaction kept, for itself, and the scope it kept it in.
        self._local: dict[K, V] = {}
        self._local_scope: int | None = None

    def get(self, key: K) -> V | None:
        """The cached value, or `None`."""
        value = self._data.get(key)
        if value is None and self._local:
            return self._pending().get(key)
        return value

    def __contains__(self, key: object) -> bool:
        return key in self._data or (bool(self._local) and key in self._pending())

    def _pending(self) -> dict[K, V]:
        """What the open transaction kept so far (emptied once its scope has changed)."""
        scope = self._db.transaction_scope()
        if scope is None or scope != self._local_scope:
            self._local.clear()
        return self._local

    def keep(self, key: K, value: V) -> None:
        """Cache ``value`` once the current transaction (if any) commits; the transaction
        sees it meanwhile."""
        epoch = self._epoch
        scope = self._db.transaction_scope()
        if scope is not None:
            if scope != self._local_scope:
                self._local.clear()
                self._local_scope = scope
            self._local[key] = value

        def store() -> None:
            if epoch == self._epoch:
                self._data[key] = value

        self._db.on_commit(store)

    def forget(self, key: K) -> None:
        """Drop ``key``, and whatever the open transaction read so far."""
        self._epoch += 1
        self._data.pop(key, None)
        self._local.clear()

    def clear(self) -> None:
        """Drop everything, and whatever the open transaction read so far."""
        self._epoch += 1
        self._data.clear()
        self._local.clear()
