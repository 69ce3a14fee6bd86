"""The `Datastore` interface: put, get, trash and empty the trash of datasets' artifacts.

Besides the primitives, the maintenance hooks the Butler calls on each leaf
datastore, with safe defaults: `Datastore.verify_storage`,
`Datastore.recover_moves` and `Datastore.trash_failures`.
"""

from __future__ import annotations

import functools
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._dataset_ref import DatasetId, DatasetRef
from .._deprecation import adopt_renamed_overrides, renamed
from .._exceptions import (
    DatastoreAbilityError,
    InvalidArgumentError,
    TransferModeError,
    commit_in_doubt,
)
from .._file_dataset import FileDataset
from ..registry.interfaces import (
    DatasetIdRef,
    DatastoreRegistryBridge,
    DatastoreRegistryBridgeManager,
    FakeDatasetRef,
    FindRider,
)
from ..storage_classes import StorageClassRegistry
from ..transaction import DatastoreTransaction
from ._artifacts import (
    Artifact,
    check_destination,
    check_retrieve_mode,
    check_sizes,
    write_local,
)
from ._errors import DatasetNotStoredError
from ._maintenance import StorageCheck, TrashFailure

if TYPE_CHECKING:
    from ._formatter_base import Formatter

__all__ = [
    "DatasetNotStoredError",
    "Datastore",
    "DatastoreAbilities",
    "DatastoreAbilityError",
    "IngestItem",
]

#: One file to ingest: its path (or URI) and the dataset it holds.
IngestItem = tuple[str | os.PathLike[str], DatasetRef]


@dataclass(frozen=True)
class DatastoreAbilities:
    """What a datastore can do, declared by it for callers to read (`Datastore.abilities`).

    Parameters
    ----------
    ephemeral : `bool`, optional
        Whether the artifacts die with the process (its registry records
        are then kept apart from the persistent ones).
    supports_ingest : `bool`, optional
        Whether `Datastore.ingest` brings existing files in; if not, it
        raises `DatastoreAbilityError`.
    transfer_modes : `frozenset` [`str` or `None`], optional
        The transfer modes `Datastore.ingest` accepts (`None` for "in place",
        as `ingest` spells it); any other is refused with `TransferModeError`
        before anything changes. A mode listed may still be refused for a
        particular file or root (links need local disk, for example).

    Raises
    ------
    ValueError
        If transfer modes are given without ``supports_ingest``.
    """

    ephemeral: bool = False
    supports_ingest: bool = False
    transfer_modes: frozenset[str | None] = frozenset()

    def __post_init__(self) -> None:
        if self.transfer_modes and not self.supports_ingest:
            raise ValueError(
                "A datastore that cannot ingest accepts no transfer modes; "
                "set supports_ingest=True or give no transfer_modes."
            )


#: The abilities of a datastore that declares none: the primitives only.
_BASIC = DatastoreAbilities()


class Datastore(ABC):
    """Where datasets' artifacts are kept; it tells the registry through its bridge.

    Subclasses implement a handful of bulk primitives; the one-dataset forms
    here call them. A datastore reaches the registry only through the
    `DatastoreRegistryBridgeManager` it is given.

    Parameters
    ----------
    name : `str`
        The datastore's name, as recorded in the registry.
    bridge_manager : `DatastoreRegistryBridgeManager` or `None`
        The registry's bridge manager; the datastore registers its bridge
        with it. `None` for a datastore that keeps no registry records of
        its own (a chain, whose `children` do): it has no `bridge`.
    abilities : `DatastoreAbilities`, optional
        What the datastore can do; nothing beyond the primitives (not
        ephemeral, no ingest) by default.
    children : `~collections.abc.Sequence` [`Datastore`], optional
        Datastores this one forwards to (a chain's); none by default.
        A `transaction` of this datastore opens one on each of them.
    storage_classes : `StorageClassRegistry`, optional
        The storage classes it knows: what ``put`` checks objects against,
        which formatter writes them, what ``get`` converts to. The shipped
        defaults when not given.
    """

    def __init__(
        self,
        name: str,
        bridge_manager: DatastoreRegistryBridgeManager | None,
        *,
        abilities: DatastoreAbilities = _BASIC,
        children: Sequence[Datastore] = (),
        storage_classes: StorageClassRegistry | None = None,
    ) -> None:
        self._abilities = abilities
        #: The storage classes this datastore knows (see `StorageClassRegistry`).
        self.storage_classes = storage_classes or _default_storage_classes()
        self._children: tuple[Datastore, ...] = tuple(children)
        self._bridge: DatastoreRegistryBridge | None = None
        if bridge_manager is not None:
            self._bridge = bridge_manager.register(name, ephemeral=abilities.ephemeral)
            name = self._bridge.datastoreName
        self.name = name
        self._bridge_manager = bridge_manager
        self._transaction: DatastoreTransaction | None = None

    @property
    def abilities(self) -> DatastoreAbilities:
        """What this datastore can do (ingest, its transfer modes, ephemeral)."""
        return self._abilities

    @property
    def is_ephemeral(self) -> bool:
        """Whether the artifacts die with the process (``abilities.ephemeral``)."""
        return self.abilities.ephemeral

    @property
    def transfer_modes(self) -> frozenset[str | None]:
        """The transfer modes `ingest` accepts (``abilities.transfer_modes``)."""
        return self.abilities.transfer_modes

    @property
    def has_bridge(self) -> bool:
        """Whether this datastore keeps registry records of its own, through a `bridge`."""
        return self._bridge is not None

    @property
    def bridge(self) -> DatastoreRegistryBridge:
        """This datastore's bridge to the registry.

        Raises
        ------
        DatastoreAbilityError
            If the datastore keeps no registry records of its own (a chain:
            use its `leaves`' bridges); `has_bridge` says so beforehand.
        """
        if self._bridge is None:
            held_by = ", ".join(self.names) or "none"
            raise DatastoreAbilityError(
                f"Datastore {self.name!r} has no bridge to the registry: it keeps no records "
                f"of its own; the datastores holding its datasets ({held_by}) have theirs."
            )
        return self._bridge

    @property
    def children(self) -> tuple[Datastore, ...]:
        """The datastores this one forwards to (a chain's); empty for most."""
        return self._children

    @property
    def leaves(self) -> tuple[Datastore, ...]:
        """The datastores that hold the artifacts themselves, each with its own `bridge`.

        This datastore itself if it has a bridge, then its children's leaves
        (recursively, in order).
        """
        own = (self,) if self._bridge is not None else ()
        return own + tuple(leaf for child in self._children for leaf in child.leaves)

    @property
    def names(self) -> tuple[str, ...]:
        """The names the registry records this datastore's datasets under (its `leaves`')."""
        return tuple(leaf.name for leaf in self.leaves)

    @property
    def local_roots(self) -> tuple[Path, ...]:
        """The local directories this datastore keeps its artifacts in (none by default).

        Artifacts are never copied or linked out into these directories:
        `retrieve_artifacts` and `export` refuse a destination inside one.
        """
        return ()

    # -- transactions --------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[DatastoreTransaction]:
        """Group operations: on an error, their undo actions run newest first.

        Nested blocks hand their undo actions to the enclosing one when they
        succeed. The enclosing transaction is restored however the block
        ends (the upstream system left a dead one behind after an error).
        Each of the `children` joins with a transaction of its own, which
        undoes that child's work on an error. A registry commit whose outcome
        cannot be told (`DatabaseConnectionError` with ``in_doubt``) undoes
        nothing: the registry may name what was written (see
        `DatastoreTransaction.abandon`).
        """
        parent = self._transaction
        self._transaction = DatastoreTransaction(parent)
        try:
            with ExitStack() as joined:
                for child in self._children:
                    joined.enter_context(child.transaction())
                yield self._transaction
        except BaseException as exc:
            if commit_in_doubt(exc):
                self._transaction.abandon()
            else:
                self._transaction.rollback()
            raise
        else:
            self._transaction.commit()
        finally:
            self._transaction = parent

    # -- primitives subclasses implement ----------------------------------------

    @abstractmethod
    def put_many(self, items: Iterable[tuple[Any, DatasetRef]]) -> None:
        """Store each object as the dataset its ref names (all-or-nothing)."""
        raise NotImplementedError()

    @abstractmethod
    def get(
        self,
        ref: DatasetRef,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """The stored object (or one component of it, or a subset by ``parameters``).

        Raises
        ------
        DatasetNotStoredError
            If this datastore does not hold ``ref``.
        """
        raise NotImplementedError()

    def records_rider(self) -> FindRider | None:
        """What reads this datastore's records of a dataset in the registry statement that
        finds it by data ID (for `get_found`); `None` where it cannot (the default)."""
        return None

    def get_found(
        self,
        ref: DatasetRef,
        records: list[dict[str, Any]],
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """`get`, given the ``records`` of ``ref`` that `records_rider` read with its find.

        The default reads them again (`get`).
        """
        return self.get(ref, component=component, parameters=parameters)

    @abstractmethod
    def knows_many(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, bool]:
        """Whether the datastore has a record of each dataset (trashed ones included)."""
        raise NotImplementedError()

    @abstractmethod
    def exists_many(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, bool]:
        """Whether each dataset is held and its artifact can be read."""
        raise NotImplementedError()

    @abstractmethod
    def empty_trash(
        self, *, refs: Iterable[DatasetIdRef] | None = None, dry_run: bool = False
    ) -> list[DatasetId]:
        """Delete the artifacts of trashed datasets (only ``refs``' when given).

        Returns
        -------
        emptied : `list` [`DatasetId`]
            The datasets whose artifacts were (or, with ``dry_run``, would be) deleted.
        """
        raise NotImplementedError()

    def start_empty_trash(self, refs: Iterable[DatasetIdRef]) -> Callable[[], list[DatasetId]]:
        """Begin emptying the trash of ``refs``; call the result to finish.

        Between the two the caller may use the database (a prune trashes its
        next chunk) while the artifacts are deleted, where the datastore can
        do that in the background. The result waits for the deletions, purges
        the rows and returns the emptied datasets, as `empty_trash` does; it
        may be called again after a failure, to finish what is left. By
        default nothing starts before it is called, which runs `empty_trash`.
        """
        return functools.partial(self.empty_trash, refs=list(refs))

    trash_failures: Sequence[TrashFailure] = ()
    """The artifacts the last `empty_trash` could not delete (their datasets stay trashed).

    A datastore that can fail to delete an artifact without failing the call
    (one bad file never stops the others) sets it on each `empty_trash`, to
    the failures of that call; none by default. A chain's are its `leaves`'.
    """

    def recover_moves(self) -> None:
        """Roll back the work a crashed process left half done in this datastore's storage.

        The Butler calls it on each of its `leaves` when it opens a
        repository for writing. A file datastore moves back the files of
        move ingests that were interrupted (see `verify_storage`'s
        ``unfinished_move``); by default there is nothing to do. What cannot
        be rolled back is kept for `verify_storage` to report; an error
        raised here is logged by the Butler, never passed on.
        """
        return None

    def verify_storage(
        self,
        *,
        repair: bool = False,
        delete_unknown: bool = False,
        checksums: bool = False,
        keep_newer: float = 0.0,
        reading: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> StorageCheck:
        """Compare this datastore's registry rows, records and storage; with ``repair``, fix.

        The Butler's ``verify`` calls it on each of its `leaves` and reports
        what it returns. Each kind of problem is one of `PROBLEM_KINDS`, which
        also says what ``repair`` does about it. A datastore whose artifacts
        die with the process has nothing that can drift: this default checks
        nothing and returns an empty `StorageCheck`.

        Parameters
        ----------
        repair : `bool`, optional
            Forget datasets whose artifacts are missing and locations without
            records, drop records of datasets neither held nor trashed, empty
            stale trash and roll back interrupted moves. Size and checksum
            mismatches are only reported.
        delete_unknown : `bool`, optional
            With ``repair``, also delete artifacts that no record mentions (but
            those a record names by then).
        checksums : `bool`, optional
            Read every artifact with a recorded checksum and compare it.
        keep_newer : `float`, optional
            With ``delete_unknown``, keep unknown artifacts that took their
            place less than this many seconds ago (`ResourceStore.arrived`).
        reading : `~collections.abc.Callable`, optional
            A context manager factory to hold open while the checks stream the
            registry's tables (the Butler passes its database's ``session``,
            so that they read on one connection); none by default. Repairs
            run outside it.

        Returns
        -------
        check : `StorageCheck`
            The problems found (in order, those a repair could not fix after
            the fixed ones of their kind), the repairs made by kind, and the
            number of records compared with the storage.
        """
        return StorageCheck()

    # Deprecated aliases of renamed methods, kept for one release.
    emptyTrash = renamed("empty_trash")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A datastore written against the old names keeps working for a release.
        super().__init_subclass__(**kwargs)
        adopt_renamed_overrides(cls)

    @abstractmethod
    def _forget_artifacts(self, refs: Sequence[DatasetIdRef]) -> None:
        """Drop what the datastore keeps about ``refs`` (records), keeping the artifacts."""
        raise NotImplementedError()

    @abstractmethod
    def get_uris(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, str]:
        """Where the artifact of each held dataset is.

        Returns
        -------
        uris : `dict` [`DatasetId`, `str`]
            A URI (``file:///...``, ``s3://...``, ``...zip#member``,
            ``mem://...``) for each of ``refs`` this datastore holds; the
            others are left out.
        """
        raise NotImplementedError()

    # -- built on the primitives ------------------------------------------------

    def put(self, obj: Any, ref: DatasetRef) -> None:
        """Store ``obj`` as dataset ``ref``."""
        self.put_many([(obj, ref)])

    def knows(self, ref: DatasetRef) -> bool:
        """Whether the datastore has a record of ``ref``."""
        return self.knows_many([ref])[_id(ref)]

    def exists(self, ref: DatasetRef) -> bool:
        """Whether ``ref`` is held and readable."""
        return self.exists_many([ref])[_id(ref)]

    def trash(self, refs: Iterable[DatasetRef] | DatasetRef) -> None:
        """Mark datasets for deletion; `empty_trash` deletes their artifacts later.

        Run it in the same transaction as the registry's removal of the datasets.
        """
        items = [refs] if isinstance(refs, DatasetRef) else list(refs)
        self.bridge.moveToTrash(items, self._transaction)

    def forget(self, refs: Iterable[DatasetIdRef] | DatasetRef) -> None:
        """Forget datasets without deleting their artifacts."""
        items = [refs] if isinstance(refs, DatasetRef) else list(refs)
        self.bridge.forget(items)
        self._forget_artifacts(items)

    def remove(self, refs: Iterable[DatasetRef] | DatasetRef) -> None:
        """Trash datasets and delete their artifacts now."""
        items = [refs] if isinstance(refs, DatasetRef) else list(refs)
        self.trash(items)
        self.empty_trash(refs=items)

    def get_uri(self, ref: DatasetRef) -> str:
        """Where the artifact of ``ref`` is (see `get_uris`).

        Raises
        ------
        DatasetNotStoredError
            If this datastore does not hold ``ref``.
        """
        uri = self.get_uris([ref]).get(_id(ref))
        if uri is None:
            raise DatasetNotStoredError(f"Datastore {self.name!r} does not hold {ref}.")
        return uri

    # -- ingest --------------------------------------------------------------------

    def ingest(
        self,
        items: Iterable[IngestItem],
        *,
        transfer: str | None = "auto",
        formatter: str | None = None,
    ) -> None:
        """Bring existing files in as datasets (all-or-nothing).

        Only datastores whose ``abilities.supports_ingest`` is true ingest;
        this default refuses.

        Parameters
        ----------
        items : `~collections.abc.Iterable` [`tuple` [`str` or `os.PathLike`, `DatasetRef`]]
            A file path (or URI) and the dataset it holds; the datasets must
            be in the registry already.
        transfer : `str` or `None`, optional
            How the file comes in: one of ``abilities.transfer_modes``
            (``auto``, ``copy``, ``move``, the link modes, ``direct``, or
            `None` for a file in place; see the datastore's own `ingest`).
        formatter : `str`, optional
            How to read the files; by default the datastore chooses (from
            the dataset type's configuration, else the file extension).

        Raises
        ------
        DatastoreAbilityError
            If this datastore cannot ingest files; nothing changes.
        TransferModeError
            For a transfer mode not in ``abilities.transfer_modes``, before
            anything changes, or one a file or the root cannot use.
        """
        self._check_ingest(transfer)
        raise NotImplementedError(
            f"Datastore {self.name!r} declares supports_ingest but does not implement ingest."
        )

    def _check_ingest(self, transfer: str | None) -> None:
        """Refuse an ingest this datastore cannot do with ``transfer``, as `ingest` documents."""
        if not self.abilities.supports_ingest:
            raise DatastoreAbilityError(
                f"Datastore {self.name!r} ({type(self).__name__}) cannot ingest files "
                "(abilities.supports_ingest is False); put the objects instead, or ingest "
                "into a file datastore."
            )
        modes = self.abilities.transfer_modes
        if transfer not in modes:
            valid = ", ".join(sorted(str(m) for m in modes))
            raise TransferModeError(
                f"Unknown transfer mode {transfer!r} for ingest into datastore "
                f"{self.name!r}; use one of {valid}."
            )

    # -- moving artifacts between datastores and out of them --------------------

    def transfer_from(
        self, source: Datastore, refs: Iterable[DatasetRef], *, transfer: str = "auto"
    ) -> list[DatasetRef]:
        """Bring ``source``'s artifacts of ``refs`` into this datastore, keeping the dataset ids.

        The datasets must exist (with the same ids) in this datastore's
        registry already; the two datastores may belong to different
        registries. All-or-nothing: a failure leaves no artifact and no row here.

        Parameters
        ----------
        source : `Datastore`
            Where the artifacts are now.
        refs : `~collections.abc.Iterable` [`DatasetRef`]
            The datasets; those ``source`` does not hold are left out.
        transfer : `str`, optional
            ``auto`` or ``copy`` here (the object is read with ``source.get``
            and stored with `put_many`); file datastores also link.

        Returns
        -------
        transferred : `list` [`DatasetRef`]
            The refs brought in: those ``source`` holds, less those this
            datastore has a record of already (held, or trashed and not yet
            emptied), which are skipped.

        Raises
        ------
        ValueError
            For a transfer mode this pair of datastores cannot do.
        """
        if transfer not in ("auto", "copy"):
            raise TransferModeError(
                f"Datastore {self.name!r} copies datasets from {source.name!r} by reading and "
                f"storing the objects; transfer mode {transfer!r} is not possible, use 'copy'."
            )
        todo = self._to_transfer(source, refs)
        objects = source._get_many(todo)  # read all before storing any
        self.put_many(zip(objects, todo, strict=True))
        return todo

    def existence_many(
        self, refs: Iterable[DatasetRef], *, full_check: bool = True
    ) -> dict[DatasetId, tuple[bool, bool, bool]]:
        """``(known, present, registered)`` for each of ``refs``, in as few queries as can be.

        ``known`` and ``present`` are what `knows_many` and `exists_many` say
        (``present`` only with ``full_check``, else `False`); ``registered`` is
        `True` where the datastore can vouch that the registry has the dataset
        (its bridge's rows keep it there), so that the caller need not ask.
        Datastores override this to answer in one query.
        """
        refs = list(refs)
        known = self.knows_many(refs)
        present = self.exists_many(refs) if full_check else {}
        return {i: (k, bool(present.get(i)), False) for i, k in known.items()}

    def get_many(self, refs: Iterable[DatasetRef]) -> list[Any]:
        """What `get` returns for each of ``refs``, in order, read in bulk.

        Raises
        ------
        DatasetNotStoredError
            If a dataset is not held.
        """
        return self._get_many(list(refs))

    def _get_many(self, refs: list[DatasetRef]) -> list[Any]:
        """What `get` returns for each of ``refs``; datastores override it to read in bulk."""
        return [self.get(ref) for ref in refs]

    def _to_transfer(self, source: Datastore, refs: Iterable[DatasetRef]) -> list[DatasetRef]:
        """Those of ``refs`` (once each) that ``source`` holds and this datastore does not know."""
        unique = list({_id(r): r for r in refs}.values())
        held = source.exists_many(unique)
        known = self.knows_many(unique)
        return [r for r in unique if held[_id(r)] and not known[_id(r)]]

    def retrieve_artifacts(
        self,
        refs: Iterable[DatasetRef],
        destination: str | os.PathLike[str],
        *,
        transfer: str = "copy",
        preserve_path: bool = True,
        overwrite: bool = False,
    ) -> list[Path]:
        """Copy the artifacts of ``refs`` into a local directory (all-or-nothing).

        Parameters
        ----------
        refs : `~collections.abc.Iterable` [`DatasetRef`]
            The datasets; every one must be held.
        destination : `str` or `os.PathLike`
            A local directory, created when missing.
        transfer : `str`, optional
            ``copy`` (or ``auto``); ``link``, ``hardlink``, ``symlink`` or
            ``relsymlink`` for artifacts on local disk. Members of zip
            archives are always extracted as files of their own.
        preserve_path : `bool`, optional
            Keep the datastore's relative paths (a zip member's name for a
            member); otherwise write every file at the top of ``destination``.
        overwrite : `bool`, optional
            Replace existing files instead of refusing.

        Returns
        -------
        paths : `list` [`pathlib.Path`]
            The files written, one per artifact (datasets sharing one give one file).

        Raises
        ------
        TypeError
            If ``destination`` is not a path.
        UnsafePathError
            If ``destination`` (or a target under it) resolves into one of this
            datastore's `local_roots`, or a target is the artifact itself.
        DatasetNotStoredError
            If a dataset is not held; nothing is written.
        FileExistsError
            If a file exists already and ``overwrite`` is false; nothing is written.
        ValueError
            For an unknown or impossible transfer mode, or two artifacts with
            the same name without ``preserve_path``.
        StorageError
            If writing at the destination fails (a full disk, a read-only file
            system: the file and what to do are named, with the ``errno``);
            what this call wrote is removed again.

        Notes
        -----
        A datastore without files (in memory) writes each object as its
        formatter chosen by type would (`~databutler.datastores.formatters.formatter_for_object`:
        JSON, ``.npy``, Parquet, bytes, else pickle) at its default template path.
        """
        check_destination(destination)  # bad arguments fail before anything is read
        check_retrieve_mode(transfer, [])
        artifacts = self._held_artifacts(refs)
        placed = [(a.path if preserve_path else a.path.rsplit("/", 1)[-1], a) for a in artifacts]
        return write_local(
            destination, placed, transfer=transfer, overwrite=overwrite, forbidden=self.local_roots
        )

    def export(
        self,
        refs: Iterable[DatasetRef],
        *,
        directory: str | os.PathLike[str] | None,
        transfer: str | None = "copy",
    ) -> list[FileDataset]:
        """Describe (and copy out) the artifacts of ``refs`` for another repository to ingest.

        Parameters
        ----------
        refs : `~collections.abc.Iterable` [`DatasetRef`]
            The datasets; every one must be held.
        directory : `str` or `os.PathLike` or `None`
            Where to copy the files (created when missing), keeping the
            datastore's relative layout; unused when ``transfer`` is `None`.
        transfer : `str` or `None`, optional
            How to copy (as in `retrieve_artifacts`), or `None` to copy
            nothing and export each artifact's URI.

        Returns
        -------
        datasets : `list` [`FileDataset`]
            One per artifact, with the datasets it holds and its formatter;
            its path is relative to ``directory``, or the URI (with
            ``#member`` for a zip member) when ``transfer`` is `None`.

        Raises
        ------
        DatasetNotStoredError
            If a dataset is not held; nothing is written.
        FileExistsError
            If a file exists in ``directory`` already; nothing is written.
        ValueError
            If ``directory`` is missing while ``transfer`` is not `None`, or
            ``transfer`` is `None` for artifacts that are not files.
        """
        if transfer is not None:
            check_retrieve_mode(transfer, [])  # bad arguments fail before anything is read
            if directory is None:
                raise InvalidArgumentError(
                    f"Export with transfer={transfer!r} needs a directory to copy the files "
                    "into; pass directory=..., or transfer=None to export the artifacts' URIs."
                )
        artifacts = self._held_artifacts(refs)
        if transfer is None:
            not_files = [a.uri for a in artifacts if not a.uri.startswith(("file:", "s3:"))]
            if not_files:
                raise InvalidArgumentError(
                    f"Artifact {not_files[0]} of datastore {self.name!r} is not a file another "
                    "repository could read; export with a directory and transfer='copy'."
                )
            check_sizes(artifacts)  # never point another repository at an altered file
            return [FileDataset(a.uri, list(a.refs), a.formatter) for a in artifacts]
        assert directory is not None  # checked above
        write_local(
            directory,
            [(a.path, a) for a in artifacts],
            transfer=transfer,
            overwrite=False,
            forbidden=self.local_roots,
        )
        return [FileDataset(a.path, list(a.refs), a.formatter) for a in artifacts]

    def _held_artifacts(self, refs: Iterable[DatasetRef]) -> list[Artifact]:
        """`_artifacts` of ``refs``, checked to cover every one."""
        wanted = list({_id(r): r for r in refs}.values())
        artifacts = self._artifacts(wanted)
        covered = {_id(r) for artifact in artifacts for r in artifact.refs}
        missing = [str(_id(r)) for r in wanted if _id(r) not in covered]
        if missing:
            raise DatasetNotStoredError(
                f"Datastore {self.name!r} does not hold dataset(s) {', '.join(missing[:3])}"
                f"{' and more' if len(missing) > 3 else ''}; nothing was written."
            )
        return artifacts

    def _artifacts(self, refs: list[DatasetRef]) -> list[Artifact]:
        """The artifacts of those of ``refs`` (distinct) that are held, each once.

        This default serialises what `get` returns with the formatter chosen
        by the object's type, at the default file template's path; datastores
        with files override it to describe the files themselves.
        """
        from .templates import DEFAULT_TEMPLATE, FileTemplate

        held = self.exists_many(refs)
        uris = self.get_uris(r for r in refs if held[_id(r)])
        template = FileTemplate(DEFAULT_TEMPLATE)
        artifacts = []
        for ref in refs:
            if not held[_id(ref)]:
                continue
            obj = self.get(ref)
            formatter = self._formatter_for(ref, obj)
            data = formatter.to_bytes(obj)
            artifacts.append(
                Artifact(
                    refs=(ref,),
                    path=template.format(ref) + formatter.extension,
                    uri=uris[_id(ref)],
                    formatter=formatter.name,
                    read=_constant(data),
                )
            )
        return artifacts

    def _formatter_for(self, ref: DatasetRef, obj: Any) -> Formatter:
        """The formatter that writes ``obj`` as ``ref``: its storage class's, else by its type."""
        from .formatters import formatter_for, formatter_for_object

        storage_class = self.storage_classes.get(ref.datasetType.storageClass)
        if storage_class is not None and storage_class.formatter is not None:
            return formatter_for(storage_class.formatter)
        return formatter_for_object(obj)


_DEFAULTS: list[StorageClassRegistry] = []


def _default_storage_classes() -> StorageClassRegistry:
    """The registry of the shipped storage classes, made once."""
    if not _DEFAULTS:
        _DEFAULTS.append(StorageClassRegistry())
    return _DEFAULTS[0]


def _constant(data: bytes) -> Callable[[], bytes]:
    return lambda: data


def _id(ref: DatasetRef | FakeDatasetRef) -> DatasetId:
    return ref.id
