"""What every face of the `Butler` stands on: the mixin base `ButlerBase`.

It declares the state a `~databutler.butler.Butler` sets up when it opens a
repository (root, configuration, registry, datastore, default run and
collections, whether it may write) and holds the few pieces that the
reading, writing, query and maintenance faces all use: `transaction`,
`dimensions`, the collections a search goes through (`_search`) and the
read-only check (`_require_writeable`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from .._arguments import require_collections
from .._dataset_ref import DatasetRef
from .._exceptions import ArgumentConflictError, DatabaseConnectionError, ReadOnlyDatabaseError
from ..datastores import Datastore
from ..dimensions import DimensionUniverse
from ..registry import SqlRegistry
from ._config import RepositoryConfig

__all__ = ["ButlerBase"]


class ButlerBase:
    """The repository a `Butler` opened, and what all of its faces share.

    Not used on its own: `Butler` inherits it, and sets the attributes
    declared here in its constructor.
    """

    #: The repository: an absolute path or ``s3://bucket/prefix``.
    root: str
    config: RepositoryConfig
    registry: SqlRegistry
    datastore: Datastore
    is_writeable: bool
    #: Where `put` and `ingest` write when not told otherwise.
    run: str | None
    #: Collections `get` and the queries search by default, in order.
    collections: tuple[str, ...]

    @property
    def dimensions(self) -> DimensionUniverse:
        """The repository's dimension universe."""
        return self.registry.dimensions

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One registry transaction and one datastore transaction: an error undoes both.

        Nested blocks join the outer one. The registry commits first, inside
        the datastore block: a failed commit still undoes the datastore's
        work, and the datastore's after-commit actions (deleting a move
        journal) run only once the registry has committed. A commit whose
        outcome cannot be told (the connection lost in it, and the server not
        reachable to ask) undoes nothing and keeps the journal: it raises
        `DatabaseConnectionError` with ``in_doubt`` set.
        """
        try:
            with self.datastore.transaction(), self.registry.transaction():
                yield
        except DatabaseConnectionError as lost:
            if not lost.in_doubt:
                raise
            # The datastore kept what it wrote (it may be named by a committed registry).
            raise DatabaseConnectionError(
                f"{lost} Files it wrote are kept, so that nothing the registry may name is "
                "lost: 'databutler verify REPO' then lists those that no dataset names, and "
                "'--delete-unknown' deletes them.",
                in_doubt=True,
            ) from lost

    def _search(self, collections: str | Sequence[str] | None) -> tuple[str, ...]:
        collections = require_collections(collections)
        if collections is None:
            if not self.collections:
                raise ArgumentConflictError(
                    "No collections to search: pass collections=[...], or open the butler with "
                    "Butler(root, collections=[...]) or run=...."
                )
            return self.collections
        return (collections,) if isinstance(collections, str) else tuple(collections)

    def _require_writeable(self, what: str) -> None:
        if not self.is_writeable:
            raise ReadOnlyDatabaseError(
                f"Cannot {what}: this butler is read-only; open it with "
                f"Butler({self.root!r}, writeable=True)."
            )

    def _import_refs(self, refs: list[DatasetRef]) -> None:
        """Make sure the registry has these resolved refs (same ids), creating their runs."""
        for run in sorted({ref.run for ref in refs if ref.run}):
            self.registry.registerRun(run)
        known = self.registry.existing_dataset_ids([ref.id for ref in refs])
        new = [ref for ref in refs if ref.id not in known]
        if new:
            self.registry.import_datasets(new)
