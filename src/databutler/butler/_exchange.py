"""Moving datasets between repositories: ingest, transfer, export and import.

An export is a directory (or a zip of one) with a manifest, ``export.yaml``
or ``export.json``, and the artifacts under their datastore paths::

    databutler_export: 1
    artifacts: inside | linked | external   (how the export holds them; see _manifest)
    dataset_types: [{name, dimensions, storage_class, is_calibration}, ...]
    dimensions: {instrument: [{...}], detector: [{...}], ...}
    runs: [r1, ...]
    tags: {tag: [dataset id, ...]}
    files: [{path, formatter, refs: [{id, dataset_type, run, data_id}]}, ...]
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .. import _yaml
from .._collection_type import CollectionType, Timespan
from .._dataset_ref import DatasetRef, UnresolvedRef
from .._exceptions import (
    AlreadyExistsError,
    AmbiguousDatasetError,
    ArgumentConflictError,
    CollectionError,
    ConflictError,
    DatabutlerError,
    ExportFormatError,
    InvalidArgumentError,
    InvalidNameError,
    MissingCollectionError,
    TransferModeError,
    commit_in_doubt,
)
from .._file_dataset import FileDataset
from ..datastores.resources import storage_error
from ..dimensions import DataCoordinate
from ..registry import SqlRegistry
from ..registry.collections import validate_collection_name
from ..registry.dataset_types import MissingDatasetTypeError
from ._conflicts import explaining_conflicts
from ._daf_butler_export import DafButlerExport, is_daf_butler_export, read_daf_butler_export
from ._daf_butler_writer import plan_daf_butler_export
from ._manifest import (
    EXPORT_VERSION,
    Manifest,
    artifact_path,
    check_records,
    read_manifest,
    record_from_plain,
    record_to_plain,
    resolve_refs,
)

if TYPE_CHECKING:
    from ._butler_base import ButlerBase

__all__ = ["ExportFormatError", "export", "import_", "ingest", "transfer_from"]

_FORMATS = ("yaml", "json", "daf_butler")


# -- ingest ----------------------------------------------------------------------------


def ingest(
    butler: ButlerBase,
    datasets: Iterable[FileDataset],
    *,
    transfer: str | None,
    run: str | None,
    skip_existing: bool,
) -> list[DatasetRef]:
    """Register the datasets of ``datasets`` and bring their files into the datastore."""
    if run is not None:  # "" is a bad name, not "the default run"
        validate_collection_name(run)
    datasets = list(datasets)
    _check_ingest_transfer(butler, transfer)
    items = _ingest_items(datasets)
    inserts: dict[str, list[Mapping[str, Any]]] = {}
    for _, ref in items:
        if isinstance(ref, UnresolvedRef):
            inserts.setdefault(ref.dataset_type_name, []).append(dict(ref.data_id))
    with explaining_conflicts(butler.registry, inserts, run or butler.run), butler.transaction():
        chosen = _register_files(butler, items, run, skip_existing)
        _store_files(butler, chosen, transfer)
    return [ref for _, ref in chosen]


def _ingest_items(
    datasets: list[FileDataset],
) -> list[tuple[FileDataset, DatasetRef | UnresolvedRef]]:
    """Each dataset of ``datasets`` with the file holding it; a file naming none is refused."""
    items: list[tuple[FileDataset, DatasetRef | UnresolvedRef]] = []
    for dataset in datasets:
        if not dataset.refs:
            raise InvalidArgumentError(
                f"FileDataset {dataset.path!r} names no dataset; give it refs."
            )
        items.extend((dataset, ref) for ref in dataset.refs)
    return items


def _register_files(
    butler: ButlerBase,
    items: list[tuple[FileDataset, DatasetRef | UnresolvedRef]],
    run: str | None,
    skip_existing: bool,
) -> list[tuple[FileDataset, DatasetRef]]:
    """The registry half of an ingest: the datasets registered (existing ones skipped with
    ``skip_existing``), each with its file, for `_store_files` (in the caller's transaction)."""
    resolved = _register_refs(butler, [ref for _, ref in items], run, skip_existing)
    return [(d, r) for (d, _), r in zip(items, resolved, strict=True) if r is not None]


def _store_files(
    butler: ButlerBase, chosen: list[tuple[FileDataset, DatasetRef]], transfer: str | None
) -> None:
    """The datastore half of an ingest: bring in the files of the registered datasets."""
    by_formatter: dict[str | None, list[tuple[str, DatasetRef]]] = {}
    for dataset, ref in chosen:
        by_formatter.setdefault(dataset.formatter, []).append((str(dataset.path), ref))
    for formatter, pairs in by_formatter.items():
        butler.datastore.ingest(pairs, transfer=transfer, formatter=formatter)


def _check_ingest_transfer(butler: ButlerBase, transfer: str | None) -> None:
    """Refuse an ingest the butler's datastore cannot do with ``transfer``, before any write."""
    datastore = butler.datastore
    if not datastore.abilities.supports_ingest:
        raise ArgumentConflictError(
            f"Datastore {datastore.name!r} cannot ingest files; configure a file "
            "datastore (kind: file) for ingest."
        )
    modes = datastore.abilities.transfer_modes
    if transfer not in modes:
        named = ", ".join(sorted(repr(m) for m in modes if m is not None))
        # Spelt transfer=None, which the command line shows as its own spelling of it.
        in_place = (
            ", or transfer=None for files inside the datastore already" if None in modes else ""
        )
        raise TransferModeError(
            f"Datastore {datastore.name!r} cannot ingest with transfer={transfer!r}; "
            f"use one of {named}{in_place}."
        )


def _register_refs(
    butler: ButlerBase,
    refs: list[DatasetRef | UnresolvedRef],
    run: str | None,
    skip_existing: bool,
) -> list[DatasetRef | None]:
    """Resolved refs for ``refs`` (new datasets inserted); `None` for skipped existing ones.

    A `DatasetRef` keeps its id; an `UnresolvedRef` is registered in its run,
    else ``run``, else the Butler's.
    """
    registry = butler.registry
    out: list[DatasetRef | None] = [None] * len(refs)
    groups: dict[tuple[str, str], list[tuple[int, UnresolvedRef]]] = {}
    given: list[tuple[int, DatasetRef]] = []
    for i, ref in enumerate(refs):
        if isinstance(ref, DatasetRef):
            # Complete refs (the registered dataset type, a standardized data
            # ID), so that what is stored and returned can be templated,
            # retrieved and compared.
            given.append((i, _complete(registry, ref)))
            continue
        target = ref.run or run or butler.run
        if target is None:
            raise ArgumentConflictError(
                "No run to ingest into: pass run='name', or give each ref a run, or open "
                "the butler with Butler(root, run='name', writeable=True)."
            )
        groups.setdefault((ref.dataset_type_name, target), []).append((i, ref))
    if given:
        known = registry.existing_dataset_ids([r.id for _, r in given])
        if known and not skip_existing:
            raise ConflictError(
                f"{len(known)} of these datasets exist already (e.g. {next(iter(known))}); "
                "pass skip_existing=True (--skip-existing on the command line) to bring in "
                "only the new ones."
            )
        if known:
            _check_same_definitions(
                registry, [r for _, r in given if r.id in known], run or butler.run
            )
        butler._import_refs([r for _, r in given if r.id not in known])
        for i, ref in given:
            out[i] = None if ref.id in known else ref
    for (name, target), members in sorted(groups.items(), key=lambda item: item[0]):
        registry.registerRun(target)
        existing = _existing_in_run(registry, name, target) if skip_existing else {}
        fresh = [
            (i, ref)
            for i, ref in members
            if _data_id_key(registry, name, ref.data_id) not in existing
        ]
        new = registry.insertDatasets(name, [dict(ref.data_id) for _, ref in fresh], target)
        for (i, _), made in zip(fresh, new, strict=True):
            out[i] = made
    return out


def _complete(registry: SqlRegistry, ref: DatasetRef) -> DatasetRef:
    """``ref`` with its registered dataset type and a standardized data ID."""
    if isinstance(ref.dataId, DataCoordinate):
        return ref
    dataset_type = registry.getDatasetType(ref.datasetType.name)
    data_id = DataCoordinate.standardize(
        ref.dataId, universe=registry.dimensions, dimensions=dataset_type.dimensions
    )
    return DatasetRef(dataset_type, data_id, run=ref.run, id=ref.id)


def _check_same_definitions(
    registry: SqlRegistry, refs: list[DatasetRef], default_run: str | None
) -> None:
    """Refuse to skip an existing dataset whose type, run or data ID differs from ``refs``'.

    One scan per (dataset type, run) of the refs, not a query per dataset.
    """
    groups: dict[tuple[str, str | None], list[DatasetRef]] = {}
    for ref in refs:
        groups.setdefault((ref.datasetType.name, ref.run or default_run), []).append(ref)
    registered = {t.name for t in registry.queryDatasetTypes()}
    for (name, run), members in sorted(groups.items(), key=lambda item: repr(item[0])):
        stored: dict[Any, Any] = {}
        if run is not None and name in registered:
            try:
                stored = {
                    found.id: tuple(sorted(_required(found).items()))
                    for found in registry.stream_datasets(name, collections=run)
                    if found.run == run
                }
            except MissingCollectionError:
                stored = {}
        for ref in members:
            found = stored.get(ref.id)
            if found is None or found != _data_id_key(registry, name, ref.dataId):
                raise ConflictError(
                    f"Dataset {ref.id} exists already with another definition than the "
                    f"{name!r} dataset {dict(_required(ref))} in run {run!r} given here "
                    "(another dataset type, run or data ID); skip_existing skips only "
                    "identical datasets. Nothing was changed; remove the existing dataset "
                    "or leave this one out."
                )


def _existing_in_run(registry: SqlRegistry, name: str, run: str) -> dict[Any, DatasetRef]:
    return {
        tuple(sorted(_required(ref).items())): ref
        for ref in registry.stream_datasets(name, collections=run)
        if ref.run == run
    }


def _data_id_key(registry: SqlRegistry, name: str, data_id: Any) -> Any:
    dimensions = registry.getDatasetType(name).dimensions
    coordinate = DataCoordinate.standardize(
        data_id, universe=registry.dimensions, dimensions=dimensions
    )
    return tuple(sorted(coordinate.required.items()))


# -- transfer ----------------------------------------------------------------------------


def transfer_from(
    butler: ButlerBase,
    source: ButlerBase,
    refs: Iterable[DatasetRef],
    *,
    transfer: str,
    register_dataset_types: bool,
    transfer_dimensions: bool,
    skip_missing: bool,
    dry_run: bool,
) -> list[DatasetRef]:
    """Copy datasets (registry entries, keeping ids, and artifacts) from ``source``.

    Everything that can be checked without writing is checked first (the
    transfer mode, the dataset types, the collections the transfer makes or
    fills); the rest (records, datasets, collection structure, artifacts) is
    one transaction, so a failure leaves the repository as it was (see
    `_with_types` for the dataset types). The artifacts come last,
    once the registry has taken everything else.
    """
    _check_transfer_mode(transfer)
    refs = [ref for ref in refs]
    if skip_missing:
        present = source.datastore.exists_many(refs)
        refs = [ref for ref in refs if present.get(ref.id)]
    existing = butler.registry.existing_dataset_ids([ref.id for ref in refs])
    # Checked for a dry run too: it answers what the real transfer would do, refusals included.
    _check_dataset_types(butler, refs, register=register_dataset_types)
    structure = _plan_structure(butler.registry, source.registry, refs)
    if dry_run:
        return [ref for ref in refs if ref.id not in existing]
    records = _dimension_records_for(source.registry, refs) if transfer_dimensions else {}
    with _with_types(butler, lambda: _copy_dataset_types(butler, source.registry, refs)):
        _sync_records(butler.registry, records)
        butler._import_refs(refs)
        _carry_structure(butler.registry, structure)
        # Artifacts last: what the registry could refuse has been, before any is written.
        butler.datastore.transfer_from(source.datastore, refs, transfer=transfer)
    return [ref for ref in refs if ref.id not in existing]


@dataclass(frozen=True, slots=True)
class _Structure:
    """The collection structure a transfer gives its datasets (see `_plan_structure`)."""

    tagged: dict[str, list[DatasetRef]]
    """TAGGED collections and the transferred datasets tagged in them."""
    certified: dict[tuple[str, Timespan], list[DatasetRef]]
    """CALIBRATION collections and validity ranges, with the datasets certified there."""
    chains: list[tuple[str, list[str]]]
    """CHAINED collections to make, in an order that makes children first."""


def _plan_structure(target: SqlRegistry, source: SqlRegistry, refs: list[DatasetRef]) -> _Structure:
    """The collection structure the transferred datasets have in ``source``, checked
    against ``target`` before anything is written there.

    That is their TAGGED memberships and CALIBRATION certifications (the
    collections made as needed), then the source's chains that hold one of
    those collections (or the datasets' runs) and whose children all exist in
    ``target`` once the transfer is done (a chain already there is left as it
    is). Only reads: a query per dataset type, batch of ids and table.

    Raises
    ------
    CollectionError
        If ``target`` has a collection of a run, tag or calibration collection
        the transfer needs under that name with another type.
    InvalidNameError
        If a collection to make has a name ``target`` cannot register.
    """
    ids = {ref.id: ref for ref in refs}
    tagged: dict[str, list[DatasetRef]] = {}
    certified: dict[tuple[str, Timespan], list[DatasetRef]] = {}
    by_type: dict[str, list[Any]] = {}
    for ref in refs:
        by_type.setdefault(ref.datasetType.name, []).append(ref.id)
    for name, members in sorted(by_type.items()):
        for dataset_id, collection, timespan in source.dataset_memberships(name, members):
            if timespan is None:
                tagged.setdefault(collection, []).append(ids[dataset_id])
            else:
                certified.setdefault((collection, timespan), []).append(ids[dataset_id])
    wanted = {ref.run: CollectionType.RUN for ref in refs if ref.run}
    wanted.update({name: CollectionType.TAGGED for name in tagged})
    wanted.update({name: CollectionType.CALIBRATION for name, _ in certified})
    for name, kind in sorted(wanted.items()):
        _check_collection_kind(target, name, kind)
    # Chains holding a collection this transfer fills, directly or through another chain.
    chains: list[tuple[str, list[str]]] = []
    if not ids:
        return _Structure(tagged, certified, chains)
    made = set(wanted)
    touched = set(wanted)
    source_chains = {
        name: list(source.getCollectionChain(name))
        for name in source.queryCollections(types=[CollectionType.CHAINED])
    }
    grown = True
    while grown:  # chains of chains: until no more can be made
        grown = False
        for chain, children in source_chains.items():
            if chain in made or target.known_collection(chain):
                continue
            if not touched.intersection(children):
                continue
            if all(child in made or target.known_collection(child) for child in children):
                validate_collection_name(chain)
                chains.append((chain, children))
                made.add(chain)
                touched.add(chain)
                grown = True
    return _Structure(tagged, certified, chains)


def _present_kind(registry: SqlRegistry, name: str) -> CollectionType | None:
    """The type of the collection ``name`` in ``registry``, or `None` if it has none there
    yet and the name can be registered (`InvalidNameError` if it cannot): what a transfer
    and an import check before they make or fill the collection."""
    if not registry.known_collection(name):
        validate_collection_name(name)
        return None
    return registry.getCollectionType(name)


def _check_collection_kind(target: SqlRegistry, name: str, kind: CollectionType) -> None:
    """Refuse a collection a transfer would make or fill as ``kind`` that ``target`` has as
    another type, or whose name ``target`` cannot register."""
    here = _present_kind(target, name)
    if here is not None and here is not kind:
        raise CollectionError(
            f"Cannot transfer: collection {name!r} is {kind.name} in the source repository "
            f"but {here.name} here; rename or remove one of them, then transfer again. "
            "Nothing was changed."
        )


def _carry_structure(target: SqlRegistry, structure: _Structure) -> None:
    """Make the collection structure `_plan_structure` found (in the caller's transaction)."""
    for collection, members in structure.tagged.items():
        target.registerCollection(collection, CollectionType.TAGGED)
        target.associate(collection, members)
    present: dict[str, set[tuple[Any, Timespan]]] = {}  # each collection's, read once
    for (collection, timespan), members in structure.certified.items():
        if collection not in present:
            target.registerCollection(collection, CollectionType.CALIBRATION)
            present[collection] = set(target.query_certifications(collection))
        fresh = [ref for ref in members if (ref.id, timespan) not in present[collection]]
        if fresh:
            target.certify(collection, fresh, timespan)
    for chain, children in structure.chains:
        target.registerCollection(chain, CollectionType.CHAINED)
        target.setCollectionChain(chain, children)


#: The transfer modes some pair of datastores can transfer with (`Datastore.transfer_from`);
#: which of them work depends on the two datastores (``copy`` always does).
_TRANSFER_MODES = ("auto", "copy", "link", "hardlink", "symlink", "relsymlink")


def _check_transfer_mode(transfer: str) -> None:
    """Refuse a transfer mode no datastore transfers with, before anything is written."""
    if transfer not in _TRANSFER_MODES:
        raise TransferModeError(
            f"Cannot transfer datasets with transfer={transfer!r}: no datastore transfers "
            f"that way; use one of {', '.join(_TRANSFER_MODES)} (which of them work depends "
            "on the two datastores; 'copy' always does)."
        )


@contextmanager
def _with_types(butler: ButlerBase, register: Callable[[], list[str]]) -> Iterator[None]:
    """One transaction for the block, with the dataset types ``register`` registers (it
    returns the names of those that were new).

    Registering a type may create its tables. Where the database creates
    tables inside a transaction (SQLite: `Database.TABLES_IN_TRANSACTIONS`)
    the types are registered in it, so a failure rolls back the types, their
    tables and the schema generation with the rest. Elsewhere (PostgreSQL,
    where a CREATE TABLE would stop every writer of the tables it references
    until the commit) they come first, each in a short transaction of its
    own, and those that were new are removed again if the block fails.
    """
    registry = butler.registry
    inside = registry.db.TABLES_IN_TRANSACTIONS
    added = [] if inside else register()
    try:
        with butler.transaction(), registry.db.tables_in_transaction():
            if inside:
                register()
            yield
    except BaseException as failure:
        _remove_added_types(registry, added, failure)
        raise


def _check_dataset_types(butler: ButlerBase, refs: list[DatasetRef], *, register: bool) -> None:
    """Refuse refs of dataset types not registered here, unless ``register``."""
    if register:
        return
    known = {t.name for t in butler.registry.queryDatasetTypes()}
    missing = sorted({ref.datasetType.name for ref in refs} - known)
    if missing:
        raise MissingDatasetTypeError(
            f"Dataset type(s) {', '.join(map(repr, missing))} are not registered in "
            f"{butler.root}; register them, or pass register_dataset_types=True."
        )


def _copy_dataset_types(
    butler: ButlerBase, source: SqlRegistry, refs: list[DatasetRef]
) -> list[str]:
    """Register the refs' dataset types here; the names of those this call added (not one
    another client registered meanwhile: a failed transfer removes only its own)."""
    names = sorted({ref.datasetType.name for ref in refs})
    known = {t.name for t in butler.registry.queryDatasetTypes()}
    # Known types first: a differing definition fails before anything is added.
    for name in [n for n in names if n in known]:
        butler.registry.registerDatasetType(source.getDatasetType(name))
    added = []
    for name in names:
        # False when another client registered the same definition meanwhile: not ours.
        if name not in known and butler.registry.registerDatasetType(source.getDatasetType(name)):
            added.append(name)
    return added


def _dimension_records_for(
    registry: SqlRegistry, refs: list[DatasetRef]
) -> dict[str, list[dict[str, Any]]]:
    """The dimension records the refs' data IDs need, dependencies first."""
    universe = registry.dimensions
    coordinates = [
        DataCoordinate.standardize(
            ref.dataId, universe=universe, dimensions=ref.datasetType.dimensions
        )
        for ref in refs
    ]
    full = registry.expand_data_ids(coordinates)
    wanted: dict[str, dict[Any, dict[str, Any]]] = {}
    for coordinate in full:
        for name in coordinate.dimensions.names:
            keys = universe.group([name]).required
            key = tuple((k, coordinate[k]) for k in keys)
            wanted.setdefault(name, {})[key] = dict(key)
    records: dict[str, list[dict[str, Any]]] = {}
    for name in universe.names:
        if name in wanted:
            found = registry.queryDimensionRecords(name, list(wanted[name].values()))
            records[name] = [record.to_dict() for record in found]
    return records


def _sync_records(registry: SqlRegistry, records: Mapping[str, list[dict[str, Any]]]) -> None:
    """Insert the records the target lacks (batched); an existing differing record is an error."""
    universe = registry.dimensions
    with registry.transaction():
        for name in universe.elements:  # dimensions first, then elements like visit_definition
            rows = records.get(name)
            if not rows:
                continue
            keys = (
                universe.group([name]).required
                if name in universe
                else universe.element(name).required
            )
            wanted = [{k: row[k] for k in keys} for row in rows]
            stored = {
                tuple(record.data_id[k] for k in keys): record.to_dict()
                for record in registry.queryDimensionRecords(name, wanted)
            }
            new = []
            for row, key_values in zip(rows, wanted, strict=True):
                existing = stored.get(tuple(key_values.values()))
                if existing is None:
                    new.append(row)
                elif existing != row:
                    raise ConflictError(
                        f"The {name} record for {key_values} differs between the repositories "
                        f"({existing} here, {row} there); fix one, or skip the dimensions."
                    )
            if new:
                registry.insertDimensionData(name, *new)


# -- export and import ----------------------------------------------------------------------


def export(
    butler: ButlerBase,
    destination: str | os.PathLike[str],
    *,
    refs: Iterable[DatasetRef] | None,
    collections: Iterable[str] | None,
    format: str,
    transfer: str | None,
) -> Path:
    """Write the datasets (and what they need) to a directory or a ``.zip`` file."""
    if format not in _FORMATS:
        raise InvalidArgumentError(
            f"Unknown export format {format!r}; use one of {', '.join(_FORMATS)} "
            "(daf_butler: the format lsst-daf-butler's 'butler import' reads)."
        )
    if transfer == "move":
        raise InvalidArgumentError(
            "An export never moves artifacts out of the repository; use copy."
        )
    target = Path(destination).absolute()
    as_zip = target.suffix == ".zip"
    if target.exists() and (as_zip or any(target.iterdir())):
        raise AlreadyExistsError(f"{target} exists already; export to a new directory or zip.")
    try:
        if format == "daf_butler":
            return _export_daf_butler(butler, target, refs, collections, transfer)
        return _export(butler, target, as_zip, refs, collections, format, transfer)
    except OSError as exc:
        if isinstance(exc, DatabutlerError):
            raise
        # A full disk, a quota, a read-only file system: nothing of the export is left.
        raise storage_error(f"Cannot write the export {target}", exc) from exc


def _export(
    butler: ButlerBase,
    target: Path,
    as_zip: bool,
    refs: Iterable[DatasetRef] | None,
    collections: Iterable[str] | None,
    format: str,
    transfer: str | None,
) -> Path:
    """`export` in databutler's format, once the arguments are checked."""
    chosen, tags = _export_selection(butler, refs, collections)
    structure = _collection_structure(butler, chosen, collections if refs is None else None)
    with _staging(target, as_zip) as directory:
        files = butler.datastore.export(
            chosen, directory=directory, transfer=transfer if not as_zip else "copy"
        )
        manifest = _manifest(butler, chosen, tags, files)
        # Runs a chain names are exported even without datasets, so the chain can be made.
        manifest["runs"] = sorted({*manifest["runs"], *structure.pop("runs", [])})
        manifest.update(structure)
        manifest["artifacts"] = _artifact_mode(transfer if not as_zip else "copy")
        name = f"export.{format}"
        text = _dump(manifest, format)
        (directory / name).write_text(text)
        if as_zip:
            _zip_directory(directory, target)
    return target


def _export_daf_butler(
    butler: ButlerBase,
    target: Path,
    refs: Iterable[DatasetRef] | None,
    collections: Iterable[str] | None,
    transfer: str | None,
) -> Path:
    """Write an export lsst-daf-butler imports (see `._daf_butler_writer`).

    Everything daf_butler could not hold is refused before any file is
    written; the export is made beside ``target`` and renamed into place, so
    a failure (a formatter daf_butler lacks) leaves nothing at ``target``.
    """
    registry = butler.registry
    chosen, names = _daf_butler_selection(butler, refs, collections)
    records = _dimension_records_for(registry, chosen) if chosen else {}
    plan = plan_daf_butler_export(registry, chosen, records, names)
    as_zip = target.suffix == ".zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        files = butler.datastore.export(
            chosen, directory=staging, transfer="copy" if as_zip else transfer
        )
        text, renames = plan.render(files)
        for old, new in renames.items():
            os.replace(staging.joinpath(*old.split("/")), staging.joinpath(*new.split("/")))
        (staging / "export.yaml").write_text(text, encoding="utf-8")
        if as_zip:
            _zip_directory(staging, target)
        else:
            if target.exists():
                target.rmdir()  # checked empty above
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _daf_butler_selection(
    butler: ButlerBase, refs: Iterable[DatasetRef] | None, collections: Iterable[str] | None
) -> tuple[list[DatasetRef], list[str]]:
    """The stored datasets to export, and the collections besides their runs.

    Chains bring their children (recursively); a TAGGED collection brings its
    members, a CALIBRATION one the datasets certified in it.
    """
    registry = butler.registry
    if refs is not None:
        return list(refs), []
    if collections is None:
        raise ArgumentConflictError("Export what? Pass refs=[...] or collections=[...].")
    names = _expand_chains(registry, collections)
    types = registry.queryDatasetTypes()
    chosen: dict[Any, DatasetRef] = {}
    certified: set[Any] = set()
    for name in names:
        kind = registry.getCollectionType(name)
        if kind is CollectionType.CALIBRATION:
            certified.update(i for i, _ in registry.query_certifications(name))
        elif kind is not CollectionType.CHAINED:
            for dataset_type in types:
                for ref in registry.stream_datasets(dataset_type.name, collections=name):
                    chosen[ref.id] = ref
    if certified - set(chosen):
        # Certified datasets are found in their runs (calibration types only).
        runs = registry.queryCollections(types=[CollectionType.RUN])
        for dataset_type in types:
            if dataset_type.isCalibration and runs:
                for ref in registry.stream_datasets(dataset_type.name, collections=runs):
                    if ref.id in certified:
                        chosen[ref.id] = ref
    stored = butler.datastore.knows_many(chosen.values())
    return [ref for dataset_id, ref in chosen.items() if stored.get(dataset_id)], names


def _artifact_mode(transfer: str | None) -> str:
    """How an export made with ``transfer`` holds its artifacts (the manifest's ``artifacts``)."""
    if transfer is None:
        return "external"
    if transfer in ("link", "symlink", "relsymlink"):
        return "linked"
    return "inside"


def _expand_chains(registry: SqlRegistry, collections: Iterable[str]) -> list[str]:
    """``collections`` and, for each CHAINED one, its children (recursively), each once."""
    names: list[str] = []
    pending = list(collections)
    while pending:
        name = pending.pop(0)
        if name in names:
            continue
        names.append(name)
        if registry.getCollectionType(name) is CollectionType.CHAINED:
            pending.extend(registry.getCollectionChain(name))
    return names


def _collection_structure(
    butler: ButlerBase, chosen: list[DatasetRef], collections: Iterable[str] | None
) -> dict[str, Any]:
    """The manifest's ``chains`` and ``calibrations`` (and the RUN children of chains) for
    an export of ``collections``: chains with their children, CALIBRATION collections with
    the validity ranges of the exported datasets certified in them."""
    if collections is None:
        return {}
    registry = butler.registry
    exported = {ref.id for ref in chosen}
    chains: dict[str, list[str]] = {}
    calibrations: dict[str, list[dict[str, Any]]] = {}
    runs: list[str] = []
    for name in _expand_chains(registry, collections):
        kind = registry.getCollectionType(name)
        if kind is CollectionType.CHAINED:
            chains[name] = list(registry.getCollectionChain(name))
        elif kind is CollectionType.CALIBRATION:
            ranges: dict[Timespan, list[str]] = {}
            for dataset_id, timespan in registry.query_certifications(name):
                if dataset_id in exported:
                    ranges.setdefault(timespan, []).append(str(dataset_id))
            calibrations[name] = [
                {
                    "begin": None if span.begin is None else span.begin.isoformat(),
                    "end": None if span.end is None else span.end.isoformat(),
                    "ids": ids,
                }
                for span, ids in ranges.items()
            ]
        elif kind is CollectionType.RUN:
            runs.append(name)
    structure: dict[str, Any] = {"runs": runs}
    if chains:
        structure["chains"] = chains
    if calibrations:
        structure["calibrations"] = calibrations
    return structure


def _export_selection(
    butler: ButlerBase, refs: Iterable[DatasetRef] | None, collections: Iterable[str] | None
) -> tuple[list[DatasetRef], dict[str, list[str]]]:

    tags: dict[str, list[str]] = {}
    if refs is not None:
        return list(refs), tags
    if collections is None:
        raise ArgumentConflictError("Export what? Pass refs=[...] or collections=[...].")
    # Chains bring their children, so that TAGGED members and CALIBRATION certifications
    # of collections in a chain are exported with it.
    names = _expand_chains(butler.registry, collections)
    types = [t.name for t in butler.registry.queryDatasetTypes()]
    chosen: dict[Any, DatasetRef] = {}
    for collection in names:
        kind = butler.registry.getCollectionType(collection)
        for name in types:
            for ref in butler.registry.stream_datasets(name, collections=collection):
                chosen[ref.id] = ref
                if kind is CollectionType.TAGGED:
                    tags.setdefault(collection, []).append(str(ref.id))
    # Datasets with no artifact here (registry entries only) have nothing to export.
    stored = butler.datastore.knows_many(chosen.values())
    kept = [ref for dataset_id, ref in chosen.items() if stored.get(dataset_id)]
    kept_ids = {str(ref.id) for ref in kept}
    tags = {tag: [i for i in ids if i in kept_ids] for tag, ids in tags.items()}
    return kept, tags


def _manifest(
    butler: ButlerBase,
    refs: list[DatasetRef],
    tags: dict[str, list[str]],
    files: list[FileDataset],
) -> dict[str, Any]:
    registry = butler.registry
    type_names = sorted({ref.datasetType.name for ref in refs})
    dataset_types = []
    for name in type_names:
        t = registry.getDatasetType(name)
        dataset_types.append(
            {
                "name": t.name,
                "dimensions": sorted(t.dimensions),
                "storage_class": t.storageClass,
                "is_calibration": t.isCalibration,
            }
        )
    records = _dimension_records_for(registry, refs) if refs else {}
    return {
        "databutler_export": EXPORT_VERSION,
        "dataset_types": dataset_types,
        "dimensions": {name: [record_to_plain(r) for r in rows] for name, rows in records.items()},
        "runs": sorted({ref.run for ref in refs if ref.run}),
        "tags": tags,
        "files": [
            {
                "path": str(f.path),
                "formatter": f.formatter,
                "refs": [
                    {
                        "id": str(ref.id),
                        "dataset_type": ref.datasetType.name,
                        "run": ref.run,
                        "data_id": _required(ref),
                    }
                    for ref in _exported_refs(f)
                ],
            }
            for f in files
        ],
    }


def _exported_refs(dataset: FileDataset) -> list[DatasetRef]:
    """The refs of a file the datastore exported: all resolved, as it holds only those."""
    refs = [ref for ref in dataset.refs if isinstance(ref, DatasetRef)]
    if len(refs) != len(dataset.refs):
        raise AmbiguousDatasetError(
            f"The datastore exported {dataset.path!r} with unresolved refs; an export "
            "lists only stored, resolved datasets."
        )
    return refs


def _required(ref: DatasetRef) -> dict[str, Any]:
    """The required values of a ref's data ID."""
    data_id = ref.dataId
    if isinstance(data_id, DataCoordinate):
        return dict(data_id.required.items())
    return dict(data_id)


def _dump(manifest: dict[str, Any], format: str) -> str:
    if format == "json":
        return json.dumps(manifest, indent=1)
    return _yaml.dump(manifest)


@contextmanager
def _staging(target: Path, as_zip: bool) -> Iterator[Path]:
    """The directory to write the export into; removed again if the export fails."""
    if as_zip:
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as tmp:
            yield Path(tmp)
        return
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    try:
        yield target
    except BaseException:
        if created:
            shutil.rmtree(target, ignore_errors=True)
        raise


def _zip_directory(directory: Path, target: Path) -> None:
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(directory.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(directory).as_posix())
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def import_(
    butler: ButlerBase,
    source: str | os.PathLike[str],
    *,
    transfer: str | None,
    skip_dimensions: bool,
    skip_existing: bool = False,
    skip_unknown_fields: bool = False,
) -> list[DatasetRef]:
    """Import an export: types, records, collections, datasets, files, tags and certifications.

    ``source`` is a databutler export (a directory or a zip of one), a
    daf_butler export (its directory, or its YAML file, with the files it
    copied beside it), or a zip of either. The export is untrusted input: it
    is checked whole, and every artifact path resolved, before the
    repository is changed; a failure leaves the repository as it was.
    """
    _check_ingest_transfer(butler, transfer)  # before anything, whatever the export holds
    path = Path(source).absolute()
    if not path.exists():
        raise ExportFormatError(f"{path} does not exist; give an export directory or zip file.")
    if path.is_file() and zipfile.is_zipfile(path):
        with tempfile.TemporaryDirectory(prefix="databutler-import-") as tmp:
            _safe_extract(path, Path(tmp))
            # The extracted files go with the temporary directory: links to them
            # would dangle, and moving them saves nothing worth a special case.
            return import_(
                butler,
                tmp,
                transfer="copy",
                skip_dimensions=skip_dimensions,
                skip_existing=skip_existing,
                skip_unknown_fields=skip_unknown_fields,
            )
    upstream: DafButlerExport | None = None
    registry = butler.registry
    if path.is_file():
        if is_daf_butler_export(path):
            upstream = read_daf_butler_export(
                path,
                registry.dimensions,
                skip_dimensions=skip_dimensions,
                skip_unknown_fields=skip_unknown_fields,
            )
            manifest, path = upstream.manifest, path.parent
        elif path.name in ("export.yaml", "export.json"):
            path = path.parent
            manifest = read_manifest(path)
        else:
            raise ExportFormatError(
                f"{path} is neither an export directory, an export's YAML file, nor a zip "
                "file of an export."
            )
    elif (found := _daf_butler_file(path)) is not None:
        upstream = read_daf_butler_export(
            found,
            registry.dimensions,
            skip_dimensions=skip_dimensions,
            skip_unknown_fields=skip_unknown_fields,
        )
        manifest = upstream.manifest
    else:
        manifest = read_manifest(path)
    # Refuse a bad manifest before changing anything.
    check_records(manifest, registry.dimensions)
    refs = resolve_refs(manifest, registry.dimensions)
    paths = [artifact_path(path, manifest, entry) for entry in manifest.files]
    _check_objects(manifest, paths)
    _check_certified_types(manifest)
    if upstream is not None:
        _check_collections(registry, upstream)
    _check_structure(registry, manifest)
    if manifest.artifacts != "inside" and transfer in ("move", "auto", None, "direct"):
        # Never move, nor record in place, a file the export only points at: it
        # belongs to the exporting repository, whose purge would delete it.
        transfer = "copy"
    # One transaction: a failure (a missing file, a conflicting record) leaves no record,
    # run or dataset, and no dataset type it added (see `_with_types`).
    # The files come last: the registry takes (or refuses) everything else first, so that
    # a failure there (a certification that conflicts) has written no file, nor made a
    # directory for one.
    with _with_types(butler, lambda: _register_types(registry, manifest)):
        if upstream is not None:
            _register_collections(registry, manifest, upstream)
        chosen = _register_directory(
            butler,
            manifest,
            list(zip(paths, refs, strict=True)),
            skip_dimensions,
            skip_existing,
        )
        imported = [ref for _, ref in chosen]
        if upstream is not None:
            _certify_and_chain(registry, manifest, refs, imported, upstream)
        _store_files(butler, chosen, transfer)
    return imported


def _register_types(registry: SqlRegistry, manifest: Manifest) -> list[str]:
    """Register the manifest's dataset types; the names of those that were new."""
    return [t.name for t in manifest.dataset_types if registry.registerDatasetType(t)]


def _remove_added_types(registry: SqlRegistry, added: list[str], failure: BaseException) -> None:
    """Remove the dataset types a failed import or transfer added, unless its commit's
    outcome cannot be told: its datasets may then be in the registry, of those types."""
    if commit_in_doubt(failure):
        return
    for name in added:
        registry.removeDatasetType(name)


def _daf_butler_file(directory: Path) -> Path | None:
    """The daf_butler export file of ``directory``: ``export.yaml``, else its one such YAML file."""
    if (directory / "export.yaml").is_file() or (directory / "export.json").is_file():
        candidate = directory / "export.yaml"
        return candidate if is_daf_butler_export(candidate) else None
    found = sorted(p for p in directory.glob("*.y*ml") if is_daf_butler_export(p))
    if len(found) > 1:
        raise ExportFormatError(
            f"{directory} holds several daf_butler exports ({', '.join(p.name for p in found)}); "
            "give the one to import by its file path."
        )
    return found[0] if found else None


def _check_collections(registry: SqlRegistry, upstream: DafButlerExport) -> None:
    """Refuse collections that clash with the repository's, before anything changes."""
    kinds = dict(upstream.collections)
    kinds.update({run: CollectionType.RUN for run in upstream.manifest.runs})
    for name, kind in sorted(kinds.items()):
        validate_collection_name(name)
        if registry.known_collection(name):
            here = registry.getCollectionType(name)
            if here is not kind:
                raise ConflictError(
                    f"Collection {name!r} is {here.name} here and {kind.name} in the export; "
                    "rename or remove one of them, then import again. Nothing was changed."
                )
    for chain, children in sorted(upstream.chains.items()):
        missing = [c for c in children if c not in kinds and not registry.known_collection(c)]
        if missing:
            raise ExportFormatError(
                f"{upstream.manifest.location}: chain {chain!r} has child collection(s) "
                f"{', '.join(map(repr, missing))}, which neither the export nor this "
                "repository has; export them too, or create them here first."
            )
        if registry.known_collection(chain):
            present = registry.getCollectionChain(chain)
            if tuple(present) != children:
                raise ConflictError(
                    f"Chain {chain!r} exists here with children {list(present)}; the export "
                    f"gives {list(children)}. Rename or remove one of them, then import "
                    "again. Nothing was changed."
                )


def _register_collections(
    registry: SqlRegistry, manifest: Manifest, upstream: DafButlerExport
) -> None:
    """Register the export's runs and other collections (chains last, once filled)."""
    docs = upstream.docs
    for run in manifest.runs:
        registry.registerRun(run, doc=docs.get(run))
    for name, kind in upstream.collections.items():
        registry.registerCollection(name, kind, doc=docs.get(name))


def _certify_and_chain(
    registry: SqlRegistry,
    manifest: Manifest,
    refs: list[list[DatasetRef]],
    imported: list[DatasetRef],
    upstream: DafButlerExport,
) -> None:
    types = {t.name: registry.getDatasetType(t.name) for t in manifest.dataset_types}
    by_id = {
        ref.id: DatasetRef(types[ref.datasetType.name], ref.dataId, run=ref.run, id=ref.id)
        for group in refs
        for ref in group
    }
    # Datasets skipped as existing (skip_existing) keep the certifications they have.
    fresh = {ref.id for ref in imported}
    for certification in upstream.certifications:
        members = [by_id[i] for i in certification.ids if i in fresh]
        if members:
            registry.certify(certification.collection, members, certification.timespan)
    for chain, children in upstream.chains.items():
        registry.setCollectionChain(chain, children)


def _check_objects(manifest: Manifest, paths: list[str]) -> None:
    """Refuse two entries naming one file, or S3 objects that are not there (one HEAD each)."""
    seen: dict[str, int] = {}
    for i, uri in enumerate(paths):
        key = uri if "://" in uri else os.path.realpath(uri)
        if key in seen:
            raise ExportFormatError(
                f"{manifest.location}: files[{i}] names the same file as files[{seen[key]}] "
                f"({manifest.files[i].path!r}); each artifact has one entry, listing all "
                "its datasets under 'refs'."
            )
        seen[key] = i
    wanted = [(i, uri) for i, uri in enumerate(paths) if uri.startswith("s3://")]
    if not wanted:
        return
    from ..datastores.resources import ResourceStore, store_for

    stores: dict[str, ResourceStore] = {}
    for i, uri in wanted:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        store = stores.get(bucket) or stores.setdefault(bucket, store_for(f"s3://{bucket}"))
        if not store.exists(key):
            raise ExportFormatError(
                f"{manifest.location}: files[{i}] names {uri}, which does not exist; the "
                "export points at artifacts that are gone. Re-export with transfer='copy'."
            )


def _register_directory(
    butler: ButlerBase,
    manifest: Manifest,
    files: list[tuple[str, list[DatasetRef]]],
    skip_dimensions: bool,
    skip_existing: bool,
) -> list[tuple[FileDataset, DatasetRef]]:
    """The registry side of importing a databutler export: its dimension records, datasets,
    tags, certifications, runs and chains; the datasets registered, with their files, for
    `_store_files` (in the caller's transaction)."""
    registry = butler.registry
    if not skip_dimensions:
        _sync_records(registry, _typed_records(registry, manifest.dimensions))
    # The types as registered (dimensions closed over what they imply).
    types = {t.name: registry.getDatasetType(t.name) for t in manifest.dataset_types}
    datasets = [
        FileDataset(
            file_path,
            [DatasetRef(types[r.datasetType.name], r.dataId, run=r.run, id=r.id) for r in refs],
            entry.formatter,
        )
        for (file_path, refs), entry in zip(files, manifest.files, strict=True)
    ]
    chosen = _register_files(butler, _ingest_items(datasets), None, skip_existing)
    imported = [ref for _, ref in chosen]
    for tag, ids in manifest.tags.items():
        wanted = set(ids)
        registry.registerCollection(tag, CollectionType.TAGGED)
        registry.associate(tag, [ref for ref in imported if ref.id in wanted])
    _certify_and_chain_own(registry, manifest, imported)
    return chosen


def _check_certified_types(manifest: Manifest) -> None:
    """Refuse a manifest that certifies datasets of a type it does not declare a calibration
    type (``is_calibration: false``): only calibrations can be certified."""
    types = {t.name: t for t in manifest.dataset_types}
    type_of = {ref.id: ref.dataset_type for entry in manifest.files for ref in entry.refs}
    for collection, ranges in manifest.calibrations.items():
        for _, ids in ranges:
            for dataset_id in ids:
                name = type_of.get(dataset_id)
                if name is not None and not types[name].isCalibration:
                    raise ExportFormatError(
                        f"{manifest.location}: calibrations[{collection!r}] certifies dataset "
                        f"{dataset_id} of dataset type {name!r}, which its 'dataset_types' "
                        "entry says is not a calibration type (is_calibration: false); only "
                        "calibrations can be certified. Set is_calibration: true for it, or "
                        "take the dataset out of 'calibrations'."
                    )


def _check_structure(registry: SqlRegistry, manifest: Manifest) -> None:
    """Refuse, before anything is imported, a manifest's collections that cannot be made:
    a name already used by another kind of collection, a chain here with other children,
    a child that is neither in the export nor here, chains that contain each other, or a
    new name this repository cannot register."""
    kinds = {ref.run: CollectionType.RUN for entry in manifest.files for ref in entry.refs}
    kinds.update({run: CollectionType.RUN for run in manifest.runs})
    kinds.update({tag: CollectionType.TAGGED for tag in manifest.tags})
    kinds.update({name: CollectionType.CALIBRATION for name in manifest.calibrations})
    kinds.update({chain: CollectionType.CHAINED for chain in manifest.chains})
    where = manifest.location
    for name, kind in kinds.items():
        try:
            here = _present_kind(registry, name)
        except InvalidNameError as exc:
            raise ExportFormatError(f"{where}: {exc}") from None
        if here is not None and here is not kind:
            raise ExportFormatError(
                f"{where}: collection {name!r} is {kind.name} in the export but "
                f"{here.name} here; rename one of them."
            )
    for chain, children in manifest.chains.items():
        missing = [c for c in children if c not in kinds and not registry.known_collection(c)]
        if missing:
            raise ExportFormatError(
                f"{where}: chain {chain!r} has child collection(s) {', '.join(missing)} that "
                "are neither in the export nor in this repository."
            )
        if registry.known_collection(chain):
            present = list(registry.getCollectionChain(chain))
            if present != children:
                raise ExportFormatError(
                    f"{where}: chain {chain!r} exists here with children {present}; the export "
                    f"has {children}. Rename or redefine one of them first."
                )
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(chain: str) -> None:
        if chain in done:
            return
        if chain in visiting:
            raise ExportFormatError(f"{where}: chain {chain!r} contains itself.")
        visiting.add(chain)
        for child in manifest.chains.get(chain, []):
            visit(child)
        visiting.discard(chain)
        done.add(chain)

    for chain in manifest.chains:
        visit(chain)


def _certify_and_chain_own(
    registry: SqlRegistry, manifest: Manifest, imported: list[DatasetRef]
) -> None:
    """Make the manifest's CALIBRATION collections (with their certifications), its runs
    without datasets and its chains (children first)."""
    for run in manifest.runs:
        registry.registerRun(run)
    by_id = {ref.id: ref for ref in imported}
    for collection, ranges in manifest.calibrations.items():
        with registry.transaction():
            registry.registerCollection(collection, CollectionType.CALIBRATION)
            for timespan, ids in ranges:
                members = [by_id[i] for i in ids if i in by_id]
                if members:
                    registry.certify(collection, members, timespan)
    made: set[str] = set()

    def make(chain: str) -> None:
        if chain in made:
            return
        made.add(chain)
        for child in manifest.chains[chain]:
            if child in manifest.chains:
                make(child)
        registry.registerCollection(chain, CollectionType.CHAINED)
        registry.setCollectionChain(chain, manifest.chains[chain])

    for chain in manifest.chains:
        make(chain)


def _typed_records(
    registry: SqlRegistry, dimensions: Mapping[str, list[dict[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """Manifest records with their times, timespans and bytes read back by the fields' types."""
    universe = registry.dimensions
    return {
        name: [
            record_from_plain(universe, name, row, f"dimensions[{name!r}][{i}]")
            for i, row in enumerate(rows)
        ]
        for name, rows in dimensions.items()
    }


def _safe_extract(archive_path: Path, directory: Path) -> None:
    """Extract a zip export, refusing corrupt archives and members that would leave ``directory``.

    Every member is checked before any is written; members are written as
    new plain files (links in the archive are not made, a name given twice
    is refused), directory entries only name directories.
    """
    root = directory.resolve()
    try:
        with zipfile.ZipFile(archive_path) as archive:
            members = [
                (info, _member_target(archive_path, root, info)) for info in archive.infolist()
            ]
            for info, target in members:
                if target is None:
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, open(target, "xb") as sink:
                    shutil.copyfileobj(source, sink)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        raise ExportFormatError(f"{archive_path} is not a readable zip file: {exc}") from None
    except (ValueError, RuntimeError) as exc:  # encrypted or otherwise unreadable members
        raise ExportFormatError(f"{archive_path} cannot be extracted: {exc}") from None
    except FileExistsError as exc:
        raise ExportFormatError(
            f"{archive_path} names {exc.filename} twice (or as a file and a directory); a "
            "databutler export names each file once."
        ) from None
    except OSError as exc:  # a member that is a file on the way to another one
        raise ExportFormatError(f"{archive_path} cannot be extracted: {exc}") from None


def _member_target(archive_path: Path, root: Path, info: zipfile.ZipInfo) -> Path | None:
    """Where the member ``info`` goes under ``root``; `None` for a directory entry."""
    name = info.filename
    parts = PurePosixPath(name).parts
    if not name or name.startswith(("/", "\\")) or "\\" in name or "\x00" in name or ".." in parts:
        raise ExportFormatError(
            f"Zip member {name!r} of {archive_path} would be written outside the import "
            "directory (or has no usable name); this archive is not a databutler export."
        )
    if (info.external_attr >> 16) & 0o170000 == 0o120000:
        raise ExportFormatError(
            f"Zip member {name!r} of {archive_path} is a symbolic link; a databutler export "
            "holds plain files only."
        )
    target = root.joinpath(*parts) if parts else root
    if not target.is_relative_to(root):  # pragma: no cover - excluded by the checks above
        raise ExportFormatError(f"Zip member {name!r} of {archive_path} leaves the archive.")
    if info.is_dir():
        return None
    if target == root:
        raise ExportFormatError(
            f"Zip member {name!r} of {archive_path} names the archive's top directory as a "
            "file; this archive is not a databutler export."
        )
    return target
