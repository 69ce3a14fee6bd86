"""`collection_paused`: the cyclic garbage collector off for a bulk page, and back after."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from databutler._gc import collection_paused


@pytest.fixture(autouse=True)
def _collector_restored() -> Iterator[None]:
    enabled = gc.isenabled()
    yield
    if enabled:
        gc.enable()
    else:
        gc.disable()


def test_paused_inside_and_back_after_even_on_error() -> None:
    gc.enable()
    with collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collection_paused():
        raise RuntimeError("a page failed")
    assert gc.isenabled()


def test_nested_uses_restore_once_the_outermost_ends() -> None:
    gc.enable()
    with collection_paused():
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer page is still running
    assert gc.isenabled()


def test_a_collector_the_caller_turned_off_stays_off() -> None:
    gc.disable()
    with collection_paused():
        pass
    assert not gc.isenabled()


def test_threads_overlapping_leave_it_on_when_the_last_is_done() -> None:
    gc.enable()
    inside, release = threading.Event(), threading.Event()

    def page() -> None:
        with collection_paused():
            inside.set()
            release.wait(10)

    worker = threading.Thread(target=page)
    worker.start()
    assert inside.wait(10)
    with collection_paused():
        pass
    assert not gc.isenabled()  # the worker's page is not over
    release.set()
    worker.join(10)
    assert gc.isenabled()
