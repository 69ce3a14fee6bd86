"""Repeating a unit of work whose transaction collided with another client's."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from .._exceptions import ConcurrentUpdateError, DatabaseConnectionError
from ..registry.interfaces import Database, GuardChangedError

T = TypeVar("T")

#: Tries of one unit of work before the collision is reported.
ATTEMPTS = 6
#: Upper bound of the first pause, in seconds; it doubles with every try.
FIRST_PAUSE = 0.005


def retrying(db: Database, work: Callable[[], T], what: str) -> T:
    """``work()``, repeated while its transaction collides with another client's.

    ``work`` must be all-or-nothing (one transaction, datastore changes undone
    on failure) and its arguments already materialised, so that a repeat
    does exactly what the first try would have done. Outside any transaction
    the collision (a PostgreSQL deadlock or serialization failure) is never
    seen by the caller unless it persists for `ATTEMPTS` tries; inside the
    caller's own transaction nothing can be repeated here, so it is reported
    at once as `ConcurrentUpdateError`.

    A connection the server dropped while the work ran (a restart, a failover,
    an idle timeout) rolled it back whole: outside a transaction it is
    repeated once, at once, on a new connection. A second loss, and a loss
    whose commit is in doubt, are raised (`DatabaseConnectionError`).
    """
    attempts = 1 if db.isInTransaction() else ATTEMPTS
    collisions = 0
    reconnected = False
    while True:
        try:
            if attempts == 1:
                return work()
            with db.repeatable():  # its writes may leave checks to the COMMIT
                return work()
        except DatabaseConnectionError as exc:
            if attempts == 1 or exc.in_doubt or reconnected:
                raise
            reconnected = True
            continue
        except Exception as exc:
            if not db.is_transient(exc):
                raise
            collisions += 1
            if collisions >= attempts:
                raise ConcurrentUpdateError(
                    f"Could not {what}: it collided with another client's changes "
                    f"{collisions} time(s) and was rolled back whole; repeat it"
                    + (" (the whole transaction)." if attempts == 1 else " later.")
                ) from exc
            # Stale caches (forgotten already) are not a collision: repeat at once.
            stale = isinstance(exc, GuardChangedError)
        if not stale:
            # Jittered exponential pause, so that the colliding clients part ways.
            time.sleep(random.uniform(0, FIRST_PAUSE * 2 ** (collisions - 1)))
