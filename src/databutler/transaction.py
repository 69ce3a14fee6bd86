"""Undo logs for operations that touch more than a database (files, memory)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ._deprecation import renamed

__all__ = ["DatastoreTransaction"]

_LOG = logging.getLogger(__name__)


class DatastoreTransaction:
    """A log of undo actions, run last-in first-out when the work fails.

    Parameters
    ----------
    parent : `DatastoreTransaction` or `None`, optional
        The enclosing transaction; a committed child hands its undo actions to
        its parent, so an outer failure still undoes the inner work.
    """

    def __init__(self, parent: DatastoreTransaction | None = None) -> None:
        self.parent = parent
        self._log: list[tuple[str, Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = []
        self._on_commit: list[Callable[[], Any]] = []

    def registerUndo(
        self, name: str, undoFunc: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> None:
        """Record ``undoFunc(*args, **kwargs)`` to run if this transaction rolls back."""
        self._log.append((name, undoFunc, args, kwargs))

    @contextmanager
    def undoWith(
        self, name: str, undoFunc: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> Iterator[None]:
        """Run the block, then record the undo action only if the block succeeded."""
        yield
        self.registerUndo(name, undoFunc, *args, **kwargs)

    def register_commit(self, func: Callable[[], Any]) -> None:
        """Run ``func()`` once the outermost transaction has committed (dropped on rollback)."""
        self._on_commit.append(func)

    # Deprecated aliases of renamed methods, kept for one release.
    registerCommit = renamed("register_commit")  # noqa: N815

    def rollback(self) -> None:
        """Run every undo action, newest first; log (do not raise) their failures."""
        self._on_commit = []
        while self._log:
            name, func, args, kwargs = self._log.pop()
            try:
                func(*args, **kwargs)
            except Exception:
                _LOG.exception("Undo action %r failed during rollback; continuing.", name)

    def abandon(self) -> None:
        """Keep the work, but run neither its undo actions nor its after-commit ones: for a
        registry commit whose outcome cannot be told, where undoing could lose what the
        registry names and the after-commit actions could drop what settles it later."""
        self._log = []
        self._on_commit = []

    def commit(self) -> None:
        """Keep the work: hand the undo actions to the parent, or drop them at top level."""
        if self.parent is not None:
            self.parent._log.extend(self._log)
            self.parent._on_commit.extend(self._on_commit)
            self._log, self._on_commit = [], []
            return
        self._log = []
        actions, self._on_commit = self._on_commit, []
        for func in actions:
            try:
                func()
            except Exception:
                _LOG.exception("Action after commit failed; continuing.")
