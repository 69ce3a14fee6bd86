"""The maintenance face of the `Butler`: the mixin `ButlerMaintenance`.

It holds what organizes and tidies a repository: collection management
(`collection_chain`, `associate` into TAGGED collections, `certify` into
CALIBRATION ones), deleting (`prune`, `remove_runs`), `remove_dataset_type`,
`empty_trash`, and `verify`,
which compares registry, bridge, records and storage and repairs what is
safe.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence

from .._arguments import (
    require_bool,
    require_refs,
    require_seconds,
    require_str,
    require_strs,
    require_timestamp,
)
from .._collection_type import CollectionType, Timespan
from .._dataset_ref import DatasetRef
from .._gc import collection_paused
from ..datastores import EmptyTrashResult
from . import _delete
from ._butler_base import ButlerBase
from ._chains import new_chain
from ._delete import PruneResult, RemovedDatasets
from ._retry import retrying
from ._verify import VerifyReport, verify_datastore

__all__ = ["ButlerMaintenance"]


class ButlerMaintenance(ButlerBase):
    """Organize collections, empty the trash, check and repair a repository.

    Not used on its own: `Butler` inherits it.
    """

    def collection_chain(
        self, parent: str, children: Sequence[str], *, mode: str = "redefine"
    ) -> tuple[str, ...]:
        """Set a CHAINED collection's members (created if new); return the new chain.

        ``mode`` is ``redefine`` (replace), ``extend`` (append), ``prepend``,
        ``remove`` (drop the given children) or ``pop`` (drop the children at the
        given positions).
        """
        require_str(parent, "parent")
        children = require_strs(children, "children")
        require_str(mode, "mode")
        self._require_writeable("change a collection chain")
        with self.registry.transaction():
            self.registry.registerCollection(parent, CollectionType.CHAINED)
            current = self.registry.getCollectionChain(parent)
            chain = new_chain(parent, current, children, mode)
            self.registry.setCollectionChain(parent, chain)
        return chain

    def associate(self, tag: str, refs: Iterable[DatasetRef]) -> None:
        """Add datasets to TAGGED collection ``tag`` (created if new)."""
        require_str(tag, "tag")
        refs = require_refs(refs)
        self._require_writeable("tag datasets")
        with self.registry.transaction():
            self.registry.registerCollection(tag, CollectionType.TAGGED)
            self.registry.associate(tag, refs)

    def certify(
        self,
        collection: str,
        refs: Iterable[DatasetRef],
        begin: datetime.datetime | None,
        end: datetime.datetime | None,
    ) -> None:
        """Make calibrations valid over ``[begin, end)`` in CALIBRATION ``collection``.

        The collection is created if new; `None` leaves that side unbounded.
        """
        require_str(collection, "collection")
        refs = require_refs(refs)
        require_timestamp(begin, "begin")
        require_timestamp(end, "end")
        self._require_writeable("certify calibrations")
        with self.registry.transaction():
            self.registry.registerCollection(collection, CollectionType.CALIBRATION)
            self.registry.certify(collection, refs, Timespan(begin, end))

    # -- deleting ------------------------------------------------------------------

    def prune(
        self,
        refs: Iterable[DatasetRef],
        *,
        tags: Iterable[str] = (),
        disassociate: bool | None = None,
        unstore: bool | None = None,
        purge: bool = False,
    ) -> PruneResult:
        """Remove datasets from TAGGED collections, from storage, or entirely.

        Parameters
        ----------
        refs : `~collections.abc.Iterable` [`DatasetRef`]
            The datasets.
        tags : `~collections.abc.Iterable` [`str`], optional
            TAGGED collections to take them out of.
        disassociate : `bool`, optional
            Implied by ``tags``; accepted for readers of the upstream API
            (``True`` without ``tags`` or ``purge`` is an error).
        unstore : `bool`, optional
            Delete their artifacts (the registry keeps the datasets).
        purge : `bool`, optional
            Delete the datasets from the registry too (implies ``unstore``,
            and takes them out of every collection).

        Raises
        ------
        TypeError
            For an illegal combination (named in the message), or no action.
        CollectionError
            If a tag is not a TAGGED collection.
        """
        refs = require_refs(refs)
        tags = require_strs(tags, "tags")
        require_bool(disassociate, "disassociate", optional=True)
        require_bool(unstore, "unstore", optional=True)
        require_bool(purge, "purge")
        return _delete.prune(
            self, refs, tags=tags, disassociate=disassociate, unstore=unstore, purge=purge
        )

    def remove_runs(
        self, names: Iterable[str], *, unlink_from_chains: bool = False
    ) -> RemovedDatasets:
        """Delete RUN collections with their datasets and artifacts; how many datasets went
        (an `int`), and in ``failures`` the artifacts that could not be deleted (logged; their
        datasets stay in the trash, for `empty_trash` once the cause is fixed).

        Raises
        ------
        CollectionError
            If one is not a RUN, or is in a chain and ``unlink_from_chains``
            is false; checked before anything is deleted.
        """
        names = require_strs(names, "names")
        require_bool(unlink_from_chains, "unlink_from_chains")
        return _delete.remove_runs(self, names, unlink_from_chains=unlink_from_chains)

    def empty_trash(self, *, dry_run: bool = False) -> EmptyTrashResult:
        """Delete the artifacts of every trashed dataset; how many datasets were emptied.

        An artifact that cannot be deleted (no permission, a directory in its
        place) does not stop the others: it is logged, its datasets stay in
        the trash, and the result (an `int`) lists it in ``failures``.
        """
        require_bool(dry_run, "dry_run")
        if not dry_run:
            self._require_writeable("empty the trash")
        with collection_paused():  # the trash's rows and paths go by reference counting
            emptied = len(
                retrying(
                    self.registry.db,
                    lambda: self.datastore.empty_trash(dry_run=dry_run),
                    "empty the trash",
                )
            )
        failures = [
            failure
            for leaf in self.datastore.leaves
            if not dry_run
            for failure in leaf.trash_failures
        ]
        return EmptyTrashResult(emptied, tuple(failures))

    def remove_dataset_type(self, name: str) -> None:
        """Remove a dataset type that has no datasets."""
        require_str(name, "name")
        self._require_writeable("remove a dataset type")
        self.registry.removeDatasetType(name)

    # -- consistency -----------------------------------------------------------------

    def verify(
        self,
        *,
        repair: bool = False,
        delete_unknown: bool = False,
        checksums: bool = False,
        keep_newer: float = 0.0,
    ) -> VerifyReport:
        """Compare registry, bridge, records and storage; with ``repair``, fix what is safe.

        Parameters
        ----------
        repair : `bool`, optional
            Forget datasets whose artifacts are missing and locations without
            records, drop records of datasets neither held nor trashed, and
            empty stale trash. Size and checksum mismatches are only reported.
        delete_unknown : `bool`, optional
            Also delete artifacts that no record mentions (listed otherwise).
            An artifact that a record names by the time of the deletion (a
            write that committed during the check) is kept.
        checksums : `bool`, optional
            Read every artifact with a recorded checksum and compare it.
        keep_newer : `float`, optional
            With ``delete_unknown``, keep the unknown artifacts that took their
            place less than this many seconds ago (listed, with why): a put,
            ingest, transfer or import that another client is still running
            records its artifacts only when it commits. 0 (the default) deletes
            them all: right when nothing else writes to the repository.

        Returns
        -------
        report : `VerifyReport`
            Every problem found (``report.ok`` when none), and the repairs made.
        """
        require_bool(repair, "repair")
        require_bool(delete_unknown, "delete_unknown")
        require_bool(checksums, "checksums")
        seconds = require_seconds(keep_newer, "keep_newer")
        if repair or delete_unknown:
            self._require_writeable("repair the repository")
        return verify_datastore(
            self.registry.db,
            self.datastore,
            repair=repair,
            delete_unknown=delete_unknown,
            checksums=checksums,
            keep_newer=seconds,
        )
