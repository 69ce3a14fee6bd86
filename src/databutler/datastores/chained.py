"""`ChainedDatastore`: one datastore in front of several, each taking what it accepts.

A chain is a pure forwarder: it registers no bridge of its own, so the
registry records a dataset under the names of the children that hold it,
never under the chain's. Which child takes which dataset is decided by
`Constraints` (by dataset type name, storage class name or dimensions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from .._dataset_ref import DatasetId, DatasetRef
from .._exceptions import (
    ArgumentTypeError,
    ConfigurationError,
    ConflictError,
    DatabutlerError,
    TransferModeError,
)
from ..registry.interfaces import DatasetIdRef
from ._artifacts import Artifact
from ._base import DatasetNotStoredError, Datastore, DatastoreAbilities, IngestItem, _id

__all__ = ["ChainedDatastore", "Constraints", "DatasetTypeNotSupportedError", "chain_abilities"]


class DatasetTypeNotSupportedError(DatabutlerError, ValueError):
    """No datastore (of a chain) accepts datasets of this type."""


class Constraints:
    """Which datasets a datastore accepts, by dataset type, storage class or dimensions.

    Each entry of ``accept`` and ``reject`` is a dataset type name, a storage
    class name, a dimension-set key ``"a+b"`` (matching dataset types whose
    dimension names are exactly ``{a, b}``), or ``"all"``. A rejection wins
    over an acceptance.

    Parameters
    ----------
    accept : `~collections.abc.Iterable` [`str`], optional
        What is accepted; everything (``"all"``) by default.
    reject : `~collections.abc.Iterable` [`str`], optional
        What is refused; nothing by default.

    Raises
    ------
    TypeError
        If ``accept`` or ``reject`` is a single string or holds a non-string.
    """

    __slots__ = ("accept", "reject")

    #: The entry that matches every dataset.
    ALL = "all"

    def __init__(self, accept: Iterable[str] = ("all",), reject: Iterable[str] = ()) -> None:
        self.accept: frozenset[str] = _entries("accept", accept)
        self.reject: frozenset[str] = _entries("reject", reject)

    def __repr__(self) -> str:
        return f"Constraints(accept={sorted(self.accept)!r}, reject={sorted(self.reject)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Constraints):
            return NotImplemented
        return self.accept == other.accept and self.reject == other.reject

    def __hash__(self) -> int:
        return hash((self.accept, self.reject))

    def accepts(self, ref: DatasetRef) -> bool:
        """Whether a dataset like ``ref`` is accepted."""
        keys = _keys(ref.datasetType)
        if self.reject & keys:
            return False
        return bool(self.accept & keys)


def _entries(what: str, values: Iterable[str]) -> frozenset[str]:
    if isinstance(values, str):
        raise ArgumentTypeError(
            f"Constraints {what} must be a collection of names, not the string {values!r}; "
            f"write [{values!r}]."
        )
    entries = frozenset(values)
    bad = sorted(repr(v) for v in entries if not isinstance(v, str))
    if bad:
        raise ArgumentTypeError(
            f"Constraints {what} entries must be strings, got {', '.join(bad)}."
        )
    # A dimension key matches a set, so its order must not matter.
    return frozenset(_dimension_key(e.split("+")) if "+" in e else e for e in entries)


def _dimension_key(names: Iterable[str]) -> str:
    return "+".join(sorted(names))


def _keys(dataset_type: Any) -> frozenset[str]:
    """What a constraint entry can name about ``dataset_type`` (which may be a bare name)."""
    keys = {Constraints.ALL, getattr(dataset_type, "name", str(dataset_type))}
    storage_class = getattr(dataset_type, "storageClass", None)
    if storage_class is not None:
        keys.add(getattr(storage_class, "name", str(storage_class)))
    dimensions = getattr(dataset_type, "dimensions", None)
    if dimensions is not None:
        keys.add(_dimension_key(getattr(dimensions, "names", dimensions)))
    return frozenset(keys)


class ChainedDatastore(Datastore):
    """Forwards every operation to its children; each stores what it accepts.

    Parameters
    ----------
    name : `str`
        The chain's name (for messages; the registry never sees it).
    children : `~collections.abc.Sequence` [`Datastore`]
        The datastores, in the order `get` tries them.
    constraints : `~collections.abc.Sequence` [`Constraints` or `None`], optional
        One entry per child (`None`: accept everything); everything goes to
        every child by default.

    Raises
    ------
    ConfigurationError
        If there are no children, or ``constraints`` has not one entry per child.

    Notes
    -----
    `transaction` opens a transaction on every child, so a failed block undoes
    each child's work. `put_many` is all-or-nothing across children.
    """

    def __init__(
        self,
        name: str,
        children: Sequence[Datastore],
        *,
        constraints: Sequence[Constraints | None] | None = None,
    ) -> None:
        if not children:
            raise ConfigurationError(f"Chained datastore {name!r} needs at least one child.")
        if constraints is None:
            constraints = [None] * len(children)
        if len(constraints) != len(children):
            raise ConfigurationError(
                f"Chained datastore {name!r} has {len(children)} children but "
                f"{len(constraints)} constraints; give one entry (or None) per child."
            )
        _check_distinct(name, children)
        # No bridge manager: a chain keeps no registry records of its own (its
        # children do), so it never appears in the registry's dataset locations.
        super().__init__(name, None, abilities=chain_abilities(children), children=children)
        self.constraints: tuple[Constraints | None, ...] = tuple(constraints)

    @property
    def local_roots(self) -> tuple[Path, ...]:
        """Every child's local roots."""
        return tuple(root for child in self.children for root in child.local_roots)

    def __repr__(self) -> str:
        return f"ChainedDatastore({self.name!r}, [{', '.join(self.names)}])"

    # -- primitives ----------------------------------------------------------

    def put_many(self, items: Iterable[tuple[Any, DatasetRef]]) -> None:
        # docstring inherited; each item goes to every child that accepts it.
        batches: list[list[tuple[Any, DatasetRef]]] = [[] for _ in self.children]
        for obj, ref in items:
            for i in self._targets(ref, "stored"):
                batches[i].append((obj, ref))
        # Refuse a dataset a child holds already before anything is written:
        # undoing a put that failed on such a dataset would drop the original.
        for child, batch in zip(self.children, batches, strict=True):
            known = child.knows_many(ref for _, ref in batch) if batch else {}
            taken = [str(i) for i, held in known.items() if held]
            if taken:
                raise ConflictError(
                    f"Datastore {child.name!r} of chain {self.name!r} holds dataset(s) "
                    f"{', '.join(taken[:3])} already; nothing was stored."
                )
        # A failing child rolls back what the children before it stored.
        with self.transaction():
            for child, batch in zip(self.children, batches, strict=True):
                if batch:
                    child.put_many(batch)

    def ingest(
        self,
        items: Iterable[IngestItem],
        *,
        transfer: str | None = "auto",
        formatter: str | None = None,
    ) -> None:
        """Ingest files into every child that accepts them and can ingest (all-or-nothing).

        See `Datastore.ingest`; the chain can ingest when one of its children
        can, in the transfer modes of those children.

        Raises
        ------
        DatastoreAbilityError
            If no child can ingest files.
        TransferModeError
            For a transfer mode no child accepts, or one a child that would
            take a file does not accept; nothing is ingested.
        DatasetTypeNotSupportedError
            If no child that can ingest files accepts a dataset.
        ValueError
            For ``move`` when more than one child would take a file.
        """
        self._check_ingest(transfer)
        items = list(items)
        capable = [i for i, child in enumerate(self.children) if child.abilities.supports_ingest]
        batches: dict[int, list[IngestItem]] = {}
        for source, ref in items:
            takers = [i for i in self._targets(ref, "ingested") if i in capable]
            if not takers:
                raise DatasetTypeNotSupportedError(
                    f"No child of chain {self.name!r} that can ingest files accepts datasets "
                    f"of type {ref.datasetType.name!r}; nothing was ingested."
                )
            if transfer == "move" and len(takers) > 1:
                raise TransferModeError(
                    f"Cannot move {source} into {len(takers)} datastores of chain {self.name!r}; "
                    "use transfer='copy'."
                )
            for i in takers:
                batches.setdefault(i, []).append((source, ref))
        for i in batches:
            child = self.children[i]
            if transfer not in child.abilities.transfer_modes:
                raise TransferModeError(
                    f"Datastore {child.name!r} of chain {self.name!r} does not ingest with "
                    f"transfer={transfer!r}; nothing was ingested."
                )
        with self.transaction():
            for i, batch in sorted(batches.items()):
                self.children[i].ingest(batch, transfer=transfer, formatter=formatter)

    def _targets(self, ref: DatasetRef, what: str) -> list[int]:
        """Indexes of the children that accept ``ref``."""
        _id(ref)
        targets = [i for i, c in enumerate(self.constraints) if c is None or c.accepts(ref)]
        if not targets:
            raise DatasetTypeNotSupportedError(
                f"No datastore of chain {self.name!r} ({', '.join(self.names)}) accepts "
                f"datasets of type {ref.datasetType.name!r}; nothing was {what}."
            )
        return targets

    def _route(self, refs: Iterable[DatasetRef], what: str) -> list[list[DatasetRef]]:
        """``refs`` split into one batch per child, by the children's constraints."""
        batches: list[list[DatasetRef]] = [[] for _ in self.children]
        for ref in refs:
            for i in self._targets(ref, what):
                batches[i].append(ref)
        return batches

    def get(
        self,
        ref: DatasetRef,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        # docstring inherited; from the first child that holds ``ref``.
        for child in self.children:
            if child.knows(ref):
                try:
                    return child.get(ref, component=component, parameters=parameters)
                except DatasetNotStoredError:
                    continue  # trashed, or its artifact is gone: try the next child
                # An ArtifactCorruptedError is not caught: damage is reported, not hidden
                # behind another child's copy (`verify` lists it; see the docs' concepts).
        raise DatasetNotStoredError(
            f"No datastore of chain {self.name!r} ({', '.join(self.names)}) holds {ref}."
        )

    def knows_many(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, bool]:
        # docstring inherited
        return self._any_child(refs, lambda child, todo: child.knows_many(todo))

    def exists_many(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, bool]:
        # docstring inherited
        return self._any_child(refs, lambda child, todo: child.exists_many(todo))

    def get_uris(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, str]:
        # docstring inherited; from the first child that holds each dataset.
        pending = {_id(r): r for r in refs}
        uris: dict[DatasetId, str] = {}
        for child in self.children:
            if not pending:
                break
            for dataset_id, uri in child.get_uris(list(pending.values())).items():
                uris.setdefault(dataset_id, uri)
                pending.pop(dataset_id, None)
        return uris

    def _artifacts(self, refs: list[DatasetRef]) -> list[Artifact]:
        # docstring inherited; from the first child that holds each dataset.
        pending = {_id(r): r for r in refs}
        artifacts: list[Artifact] = []
        for child in self.children:
            if not pending:
                break
            for artifact in child._artifacts(list(pending.values())):
                mine = tuple(r for r in artifact.refs if _id(r) in pending)
                for ref in mine:
                    del pending[_id(ref)]
                if mine:
                    artifacts.append(replace(artifact, refs=mine))
        return artifacts

    def _get_many(self, refs: list[DatasetRef]) -> list[Any]:
        # docstring inherited; each from the first child that holds it. Keyed by
        # position: one dataset may be asked for twice, as two storage classes.
        pending = dict(enumerate(refs))
        found: dict[int, Any] = {}
        for child in self.children:
            if not pending:
                break
            exists = child.exists_many(list(pending.values()))
            held = [i for i, r in pending.items() if exists[_id(r)]]
            found.update(zip(held, child._get_many([pending[i] for i in held]), strict=True))
            for i in held:
                del pending[i]
        if pending:
            raise DatasetNotStoredError(
                f"No datastore of chain {self.name!r} ({', '.join(self.names)}) holds "
                f"{next(iter(pending.values()))}."
            )
        return [found[i] for i in range(len(refs))]

    def transfer_from(
        self, source: Datastore, refs: Iterable[DatasetRef], *, transfer: str = "auto"
    ) -> list[DatasetRef]:
        # docstring inherited; each child takes what it accepts, all-or-nothing across them.
        batches = self._route(refs, "transferred")
        done: dict[DatasetId, DatasetRef] = {}
        with self.transaction():
            for child, batch in zip(self.children, batches, strict=True):
                if batch:
                    done.update(
                        (_id(r), r) for r in child.transfer_from(source, batch, transfer=transfer)
                    )
        return list(done.values())

    def _any_child(
        self,
        refs: Iterable[DatasetRef],
        ask: Callable[[Datastore, list[DatasetRef]], dict[DatasetId, bool]],
    ) -> dict[DatasetId, bool]:
        pending = {_id(r): r for r in refs}
        result = dict.fromkeys(pending, False)
        for child in self.children:
            if not pending:
                break
            # Only refs no earlier child answered for are asked again.
            for dataset_id, found in ask(child, list(pending.values())).items():
                if found:
                    result[dataset_id] = True
                    pending.pop(dataset_id, None)
        return result

    def trash(self, refs: Iterable[DatasetRef] | DatasetRef) -> None:
        # docstring inherited
        items = [refs] if isinstance(refs, DatasetRef) else list(refs)
        for child in self.children:
            child.trash(items)

    def empty_trash(
        self, *, refs: Iterable[DatasetIdRef] | None = None, dry_run: bool = False
    ) -> list[DatasetId]:
        # docstring inherited; the union over the children.
        items = None if refs is None else list(refs)
        emptied: dict[DatasetId, None] = {}
        for child in self.children:
            emptied.update(dict.fromkeys(child.empty_trash(refs=items, dry_run=dry_run)))
        return list(emptied)

    def start_empty_trash(self, refs: Iterable[DatasetIdRef]) -> Callable[[], list[DatasetId]]:
        # docstring inherited; every child starts, then each finishes (the union).
        items = list(refs)
        started = [child.start_empty_trash(items) for child in self.children]

        def finish() -> list[DatasetId]:
            emptied: dict[DatasetId, None] = {}
            for child in started:
                emptied.update(dict.fromkeys(child()))
            return list(emptied)

        return finish

    def forget(self, refs: Iterable[DatasetIdRef] | DatasetRef) -> None:
        # docstring inherited
        items = [refs] if isinstance(refs, DatasetRef) else list(refs)
        for child in self.children:
            child.forget(items)

    def _forget_artifacts(self, refs: Sequence[DatasetIdRef]) -> None:
        # docstring inherited
        for child in self.children:
            child._forget_artifacts(refs)


def chain_abilities(children: Sequence[Datastore]) -> DatastoreAbilities:
    """What a chain of ``children`` can do, derived from what they can.

    Ephemeral when every child is; it ingests when a child does, in any
    transfer mode one of those children accepts (`ChainedDatastore.ingest`
    refuses a mode a child that would take a file does not).
    """
    ingesting = [child.abilities for child in children if child.abilities.supports_ingest]
    return DatastoreAbilities(
        ephemeral=all(child.abilities.ephemeral for child in children),
        supports_ingest=bool(ingesting),
        transfer_modes=frozenset(mode for a in ingesting for mode in a.transfer_modes),
    )


def _check_distinct(name: str, children: Sequence[Datastore]) -> None:
    """Refuse children sharing a name or a records table: they would delete each other's rows."""
    seen: dict[str, str] = {}
    for child in children:
        keys = [f"name {child.name!r}"]
        records = getattr(child, "records", None)
        if records is not None:
            keys.append(f"records table {records.name!r}")
        for key in keys:
            if key in seen:
                raise ConfigurationError(
                    f"Chained datastore {name!r}: children {seen[key]!r} and {child.name!r} "
                    f"share the {key}; give each child its own name (and records_table)."
                )
            seen[key] = child.name
