"""Bulk work without Python's cyclic garbage collector running through it.

A bulk operation builds a page of tens of thousands of small objects (rows,
ids, refs), all of them freed by reference counting once the page is written.
With the collector on, every 700 allocations start a young collection and the
survivors of a page trigger full ones, which walk every object the process
holds: a tenth of a migration's time went there. `collection_paused` keeps the
collector off for one bounded piece of work (a page) and turns it back on
after, so cycles made meanwhile are collected then; memory stays bounded by
the page.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collection_paused"]

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def collection_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector for the body (nested and threaded uses nest:
    the collector comes back, if it was on, when the last one leaves)."""
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
