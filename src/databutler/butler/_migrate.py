"""Migrating a daf_butler repository: read its registry directly, write databutler's.

`migrate` reads a daf_butler (LSST's Data Butler) repository — its
``butler.yaml``, its SQLite or PostgreSQL registry made by the default
managers of recent releases, and its file datastore — and writes a
databutler repository:

1. The source is checked before anything is written: the registry managers
   and their versions (``butler_attributes``), the datastore (a file
   datastore), the dataset types (dimensions the universe has, storage
   classes, formatters) and the dimension records. A new destination gets the
   source's own universe (``universe="source"``: its ``config:dimensions.json``
   translated, so records and data IDs carry over unchanged) or databutler's
   default one (``"default"``); an existing destination keeps its own. The
   records are mapped onto that universe as `._daf_butler_export` maps an
   export's (``skip_unknown_fields`` the same choice, with the same kind of
   error).
2. Dimension records, dataset types and collections are written (existing
   identical ones are kept: a second run continues the first).
3. Datasets stream in keyset pages of ``batch_size`` (one walk of the
   ``dataset`` table by id); each page is one transaction (registry rows,
   datastore records, bridge rows, each batched), datasets the destination has
   already are skipped. Artifacts stay where they are (``direct``: the
   datastore's bulk path, which resolves each directory once) or are copied
   (``copy``).
4. TAGGED memberships and certifications, in pages; then the chains.
5. The destination is verified.

The source is only read (`._daf_butler_repository` reads it, through
`._daf_butler_db`): SQLite opened read-only, PostgreSQL in one read-only
transaction; a destination that is the source, or another daf_butler
repository, is refused.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

from .._collection_type import CollectionType, Timespan
from .._dataset_ref import DatasetRef
from .._dataset_type import DatasetType
from .._exceptions import (
    ConflictError,
    DatabutlerError,
    DataIdError,
    DimensionConfigError,
    ExportFormatError,
    InvalidArgumentError,
    RepositoryError,
)
from .._gc import collection_paused
from ..dimensions import DataCoordinate, DimensionGroup, DimensionUniverse, check_value
from ..registry.dimension_records import check_records
from ._butler_write import ButlerWrites
from ._daf_butler_db import as_uuid
from ._daf_butler_export import (
    FORMATTERS,
    _add_recordless,
    _drop_default_groups,
    _map_records,
)
from ._daf_butler_repository import (
    NO_COMPONENT,
    DafButlerRepository,
    DatasetRow,
    DatasetTypeTables,
)
from ._exchange import _sync_records
from ._verify import VerifyReport, verify_datastore

__all__ = ["MigrationReport", "migrate"]

_LOG = logging.getLogger(__name__)

#: The transfer modes of a migration: artifacts left in place, or copied.
TRANSFERS = ("direct", "copy")
#: The universes of a new destination: the source's own, or databutler's default.
UNIVERSES = ("source", "default")

_SKIP_HINT = (
    "Pass skip_unknown_fields=True (databutler migrate --skip-unknown-fields) to migrate "
    "without them."
)

#: How many checked data ID values `_Migration._data_id` keeps.
_CHECKED_VALUES = 100_000
_UNSEEN = object()

#: Called with (datasets done, datasets in the source) as pages commit.
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class MigrationReport:
    """What `Butler.migrate_from` did: counts of datasets, and the destination's check."""

    source: str
    destination: str
    total: int
    """Datasets in the source registry."""
    migrated: int
    """Datasets written by this call."""
    already: int
    """Datasets the destination had already (an earlier, interrupted run wrote them)."""
    missing: tuple[str, ...]
    """Artifacts not found and left out (``skip_missing``)."""
    registry_only: int
    """Datasets the source's datastore holds no file of: registered without one."""
    skipped_fields: dict[str, int]
    """What ``skip_unknown_fields`` left out: dimension, or dimension.field, to a count."""
    verify: VerifyReport
    universe: tuple[str, int] = ("", 0)
    """The source's dimension universe: namespace and version."""
    trashed: int = 0
    """Artifacts in the source's trash (their datasets were removed): not carried."""

    @property
    def ok(self) -> bool:
        """Whether the destination verified clean."""
        return self.verify.ok


# -- the migration ------------------------------------------------------------------------


def migrate(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    open_destination: Callable[[], ButlerWrites | None],
    create_destination: Callable[[DimensionUniverse], ButlerWrites],
    transfer: str = "direct",
    universe: str = "source",
    batch_size: int = 10_000,
    skip_missing: bool = False,
    skip_unknown_fields: bool = False,
    progress: Progress | None = None,
) -> MigrationReport:
    """See `Butler.migrate_from`, which opens the destination (``open_destination``: `None`
    when there is no repository there yet) or creates it with a universe
    (``create_destination``, only once the source is found readable); either is released
    (``dispose``) at the end."""
    if universe not in UNIVERSES:
        raise InvalidArgumentError(
            f"universe={universe!r}: a new destination gets the source's dimension universe "
            "('source') or databutler's default one ('default')."
        )
    if transfer not in TRANSFERS:
        raise InvalidArgumentError(
            f"transfer={transfer!r}: a migration leaves the artifacts in place ('direct') or "
            "copies them ('copy')."
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be a positive integer, not {batch_size!r}.")
    upstream = DafButlerRepository(source)
    try:
        _check_destination(upstream, destination)
        butler = open_destination()
        try:
            # Everything about the source is checked before a new destination is made.
            if butler is not None:
                dimensions = butler.dimensions  # an existing destination keeps its own
            elif universe == "source":
                dimensions = _source_universe(upstream)
            else:
                dimensions = DimensionUniverse()
            plan = _Plan.make(upstream, dimensions, skip_unknown_fields)
            fresh = butler is None
            _check_records(upstream, dimensions, plan, fresh)
            if butler is None:
                butler = create_destination(dimensions)
            migration = _Migration(upstream, plan, butler, transfer, batch_size, progress)
            migration.fresh = fresh
            try:
                return migration.run(skip_missing)
            except DatabutlerError as exc:
                # Said on the command line too (its one line carries an error's notes).
                exc.add_note(
                    f"The migration stopped there: {os.fspath(destination)} holds what was "
                    "migrated until then, a valid repository. Run the same migration again "
                    "once the cause is mended to continue, or delete it to start over."
                )
                raise
        finally:
            if butler is not None:
                butler.registry.db.dispose()
    finally:
        upstream.close()


def _check_records(
    source: DafButlerRepository, universe: DimensionUniverse, plan: _Plan, fresh: bool
) -> None:
    """Refuse the source's records before anything is written if the destination would:
    a value of the wrong type, or (into a new destination, which holds none) a record
    naming one the source lacks. Only a registry edited without its foreign keys and
    column types holds such records."""
    try:
        check_records(universe, plan.records, complete=fresh)
    except (DataIdError, ConflictError) as exc:
        raise RepositoryError(
            f"The dimension records of the daf_butler repository {source.root} cannot be "
            f"migrated: {exc} Its registry is damaged; repair it (or restore it from a "
            "backup), then migrate again."
        ) from None


def _source_universe(source: DafButlerRepository) -> DimensionUniverse:
    """The source's own dimension universe (its ``config:dimensions.json``), translated."""
    try:
        return DimensionUniverse.from_daf_butler_config(source.universe_config)
    except DimensionConfigError as exc:
        raise RepositoryError(
            f"The dimension universe of the daf_butler repository {source.root} "
            f"({'/'.join(map(str, source.universe))}) cannot be used by databutler: {exc} "
            "Pass universe='default' (databutler migrate --universe default) to migrate into "
            "databutler's default universe instead."
        ) from None


def _check_destination(source: DafButlerRepository, destination: str | os.PathLike[str]) -> None:
    """Refuse a destination that is the source, inside it, or another daf_butler repository.

    Opening one as a databutler repository would write to its registry; one
    inside the source would write into the source's directories.
    """
    given = os.fspath(destination)
    if "://" in given and not given.startswith("file://"):
        return
    path = Path(given.removeprefix("file://")).absolute()
    if path.name == "butler.yaml":
        path = path.parent
    config = path / "butler.yaml"
    source_root = Path(os.fspath(source.root).removeprefix("file://")).resolve()
    inside = path.resolve().is_relative_to(source_root)
    if inside and not (path.exists() and os.path.samefile(path, source.root)):
        raise RepositoryError(
            f"The destination {path} is inside the source {source_root}; a migration leaves "
            "the source as it is. Give a directory outside it as the destination."
        )
    same = path.exists() and os.path.samefile(path, source.root)
    if same or (config.is_file() and "lsst.daf.butler" in config.read_text(errors="replace")):
        raise RepositoryError(
            f"The destination {path} is {'the source' if same else 'a daf_butler repository'}; "
            "a migration writes a new databutler repository beside the daf_butler one and "
            "leaves the source as it is. Give another directory as the destination."
        )


@dataclass(frozen=True, slots=True)
class _Plan:
    """What is read from the source before anything is written, all of it checked."""

    types: list[DatasetTypeTables]
    collections: list[tuple[int, str, CollectionType, str | None]]
    chains: dict[str, list[str]]
    records: dict[str, list[dict[str, Any]]]
    skipped: dict[str, int]

    @property
    def names(self) -> dict[int, str]:
        return {key: name for key, name, _, _ in self.collections}

    @classmethod
    def make(
        cls, source: DafButlerRepository, universe: DimensionUniverse, skip_unknown: bool
    ) -> _Plan:
        types = source.dataset_types(universe)
        source.check_records()
        collections = source.collections()
        chains = source.chains({key: name for key, name, _, _ in collections})
        skipped: dict[str, int] = {}
        found, unknown = source.records(universe)
        _drop_default_groups(universe, found)
        try:
            records = _map_records(universe, found, True, skipped)
        except ExportFormatError as exc:
            raise RepositoryError(str(exc)) from None
        skipped.update(unknown)
        if skipped and not skip_unknown:
            problems = [
                f"{n} record(s) of dimension {name!r}" if "." not in name
                else f"field {name} (set in {n} record(s))"
                for name, n in sorted(skipped.items())
            ]  # fmt: skip
            raise RepositoryError(
                f"The daf_butler repository {source.root} has dimension data databutler's "
                f"universe has no place for: {'; '.join(problems)}. {_SKIP_HINT}"
            )
        if skipped:
            _LOG.warning(
                "Left out of the migration of %s (skip_unknown_fields): %s.",
                source.root,
                ", ".join(f"{name} ({n} record(s))" for name, n in sorted(skipped.items())),
            )
        _add_recordless(universe, records, [{"band": b} for b in source.band_values(types)])
        return cls(types, collections, chains, records, skipped)


class _Migration:
    def __init__(
        self,
        source: DafButlerRepository,
        plan: _Plan,
        butler: ButlerWrites,
        transfer: str,
        batch_size: int,
        progress: Progress | None,
    ) -> None:
        self.source = source
        self.plan = plan
        self.butler = butler
        self.registry = butler.registry
        self.transfer = transfer
        self.batch_size = batch_size
        self.progress = progress
        self.total = source.count()
        self.done = 0
        self.fresh = False
        self._checked: dict[tuple[str, type, Any], Any] = {}
        self._orders: dict[tuple[DimensionGroup, tuple[str, ...]], tuple[tuple[str, int], ...]] = {}

    def run(self, skip_missing: bool) -> MigrationReport:
        source, plan = self.source, self.plan
        # The repository's frame first: records, types, collections (each idempotent).
        try:
            _sync_records(self.registry, plan.records)
        except DatabutlerError as exc:  # its words are those of an insert: say whose records
            exc.add_note(
                f"(The dimension records of the daf_butler repository {source.root} were being "
                "written: its registry may be damaged, or its records differ from this "
                "destination's. No record was written.)"
            )
            raise
        for t in plan.types:
            self.registry.registerDatasetType(t.dataset_type)
        for _, name, kind, doc in plan.collections:
            if kind is CollectionType.RUN:
                self.registry.registerRun(name, doc=doc)
            else:
                self.registry.registerCollection(name, kind, doc=doc)
        names = plan.names
        missing: list[str] = []
        migrated = already = registry_only = 0
        self._tick()
        registered = {
            t.key: (
                self.registry.getDatasetType(t.dataset_type.name),
                self.butler.dimensions.group(t.dataset_type.dimensions),
            )
            for t in plan.types
        }
        by_key = {t.key: t for t in plan.types}
        pages = source.datasets(by_key, self.batch_size)
        while True:
            with collection_paused():  # a page's objects go by reference counting
                page = next(pages, None)
                if page is None:
                    break
                m, a, r = self._page(registered, page, names, skip_missing, missing)
            migrated, already, registry_only = migrated + m, already + a, registry_only + r
        for t in plan.types:
            for key, name, kind, _ in plan.collections:
                if kind is CollectionType.TAGGED:
                    for ids in source.members(t.tags, key, self.batch_size):
                        self._associate(name, ids)
            if t.calibs is not None:
                self._certify(t.calibs, names)
        for chain, children in plan.chains.items():
            self.registry.setCollectionChain(chain, children)
        with collection_paused():
            report = verify_datastore(
                self.registry.db,
                self.butler.datastore,
                repair=False,
                delete_unknown=False,
                checksums=False,
            )
        return MigrationReport(
            source=str(source.root),
            destination=self.butler.root,
            total=self.total,
            migrated=migrated,
            already=already,
            missing=tuple(missing),
            registry_only=registry_only,
            skipped_fields=plan.skipped,
            verify=report,
            universe=source.universe,
            trashed=source.trashed(),
        )

    def _tick(self) -> None:
        if self.progress is not None:
            self.progress(self.done, self.total)

    def _page(
        self,
        registered: Mapping[int, tuple[DatasetType, DimensionGroup]],
        page: list[DatasetRow],
        runs: Mapping[int, str],
        skip_missing: bool,
        missing: list[str],
    ) -> tuple[int, int, int]:
        """Write one page of datasets in one transaction: (migrated, already, registry-only).

        The bulk path: the ids already in the destination are read once, the
        data IDs are built checked (each distinct value once), and the new
        datasets go to the registry (`import_datasets`) and the datastore
        (``ingest``, per formatter) directly, in batches.
        """
        ids = [as_uuid(row[0]) for row in page]
        for row in {row[2]: row for row in page}.values():  # each run of the page once
            self.source.referenced(runs, row[2], "run id", f"Dataset {as_uuid(row[0])}")
        # A destination this run created holds only what it wrote: nothing to look up.
        known = set() if self.fresh else self.registry.existing_dataset_ids(ids)
        files: dict[str, list[tuple[str, DatasetRef]]] = {}
        refs: list[DatasetRef] = []
        plain = self._plain_types(registered, page)
        from_required = DataCoordinate.from_required
        make_ref = DatasetRef._from_checked  # each part checked here
        for dataset_id, (_, t, run, values, stored) in zip(ids, page, strict=True):
            if dataset_id in known:
                continue
            dataset_type, group = registered[t.key]
            # A complete data ID, so that the writes below need not standardize it again.
            if t.key in plain:  # every value of the page checked already, and kept as it is
                order = plain[t.key]
                ordered = values if order is None else order(values)
                data_id = from_required(group, ordered, check=False)
            else:
                data_id = self._data_id(group, t.dimensions, values)
            ref = make_ref(dataset_type, data_id, runs[run], dataset_id)
            if stored is None:
                refs.append(ref)
                continue
            path, formatter, component = stored
            if component != NO_COMPONENT:
                raise RepositoryError(
                    f"Dataset {dataset_id} ({t.dataset_type.name}) of the daf_butler repository "
                    f"{self.source.root} is stored in parts (component {component!r}); "
                    "disassembled composites are not migrated yet. Remove those datasets, or "
                    "migrate a copy without them."
                )
            mapped = FORMATTERS.get(formatter)
            if mapped is None:
                readers = ", ".join(sorted(set(FORMATTERS.values())))
                raise RepositoryError(
                    f"Dataset {dataset_id} of the daf_butler repository {self.source.root} is "
                    f"in {path!r}, written by the daf_butler formatter {formatter!r}, which "
                    f"databutler has no counterpart of (it reads files of {readers} here). "
                    "Convert those datasets in daf_butler, or remove them, and migrate again."
                )
            artifact = self.source.artifact(path)
            if skip_missing and not os.path.isfile(artifact):
                missing.append(artifact)
                continue
            refs.append(ref)
            files.setdefault(mapped, []).append((artifact, ref))
        if refs:
            try:
                with self.butler.transaction():
                    self.registry.import_datasets(refs)
                    for formatter, pairs in files.items():
                        self.butler.datastore.ingest(
                            pairs, transfer=self.transfer, formatter=formatter
                        )
            except FileNotFoundError:
                # Rolled back; which artifact is gone (looked for only now: one stat per file
                # for every page would cost as much as recording them).
                for pairs in files.values():
                    for artifact, ref in pairs:
                        if not os.path.isfile(artifact):
                            raise RepositoryError(
                                f"Artifact {artifact} of dataset {ref.id} "
                                f"({ref.datasetType.name}) is missing from the daf_butler "
                                f"repository {self.source.root}. Restore it, or pass "
                                "skip_missing=True (databutler migrate --skip-missing) to leave "
                                "such datasets out."
                            ) from None
                raise
        self.done += len(page)
        self._tick()
        registry_only = len(refs) - sum(len(pairs) for pairs in files.values())
        return len(refs), len(known), registry_only

    def _plain_types(
        self,
        registered: Mapping[int, tuple[DatasetType, DimensionGroup]],
        page: list[DatasetRow],
    ) -> dict[int, Callable[[tuple[Any, ...]], tuple[Any, ...]] | None]:
        """The dataset types of ``page`` whose data ID values are all valid as they are, each
        with what puts a row's values in the order of its dimensions' required ones (`None`:
        in that order already). Each distinct value of each column is checked once here
        (`_data_id`'s checks, a column at a time), so that their rows need no per-value
        work."""
        by_type: dict[int, list[tuple[Any, ...]]] = {}
        types = {}
        for _, t, _, values, _ in page:
            by_type.setdefault(t.key, []).append(values)
            types[t.key] = t
        plain: dict[int, Callable[[tuple[Any, ...]], tuple[Any, ...]] | None] = {}
        for key, rows in by_type.items():
            required = tuple(registered[key][1].required)
            names = types[key].dimensions
            if len(names) != len(required) or set(names) != set(required):
                continue  # not the dimensions' required ones: `_data_id` says what is wrong
            if all(self._column_plain(name, rows, i) for i, name in enumerate(names)):
                if names == required:
                    plain[key] = None
                else:  # two names or more: itemgetter gives a tuple
                    plain[key] = itemgetter(*(names.index(n) for n in required))
        return plain

    def _column_plain(self, name: str, rows: list[tuple[Any, ...]], index: int) -> bool:
        """Whether every value of column ``index`` of ``rows`` is a valid ``name`` value as it
        is (checked: each distinct value once); a value that is not raises, as in `_data_id`."""
        column = [row[index] for row in rows]
        classes = set(map(type, column))
        if len(classes) != 1:
            return False  # 1 and True, 1 and 1.0 would meet in one set: a row at a time
        (cls,) = classes
        for value in set(column):
            found = self._checked_value(name, value)
            if found is not value and (type(found) is not cls or found != value):
                return False  # stored converted: a row at a time
        return True

    def _checked_value(self, name: str, value: Any) -> Any:
        """``value`` checked as a value of dimension ``name`` (as it is stored), each
        distinct value once (there are far fewer exposures and detectors than datasets)."""
        key = (name, value.__class__, value)  # bool and int, 1 and 1.0: told apart
        cache = self._checked
        found = cache.get(key, _UNSEEN)
        if found is _UNSEEN:
            if len(cache) > _CHECKED_VALUES:
                cache.clear()  # memory stays bounded, whatever the number of exposures
            dimension_key = self.butler.dimensions[name].key
            found = cache[key] = check_value(
                dimension_key.dtype,
                dimension_key.length,
                value,
                f"Data ID value {{value}} for {name!r}",
            )
        return found

    def _data_id(
        self, group: DimensionGroup, names: tuple[str, ...], values: tuple[Any, ...]
    ) -> DataCoordinate:
        """The data ID of ``values`` (of the dimensions ``names``), each distinct value
        checked once (there are far fewer instruments, detectors and exposures than datasets)."""
        order = self._orders.get((group, names))
        if order is None:
            required = group.required
            if len(names) != len(required) or set(names) != set(required):
                return DataCoordinate.from_required(group, dict(zip(names, values, strict=True)))
            order = self._orders[(group, names)] = tuple(
                (name, names.index(name)) for name in required
            )
        checked = tuple(self._checked_value(name, values[index]) for name, index in order)
        return DataCoordinate.from_required(group, checked, check=False)

    def _associate(self, tag: str, ids: list[Any]) -> None:
        refs = self.registry.get_datasets([as_uuid(i) for i in ids])
        if refs:
            self.registry.associate(tag, list(refs.values()))

    def _certify(self, table: str, names: Mapping[int, str]) -> None:
        existing: dict[str, set[tuple[uuid.UUID, Timespan]]] = {}
        for page in self.source.certifications(table, self.batch_size):
            refs = self.registry.get_datasets({as_uuid(row[1]) for row in page})
            groups: dict[tuple[str, Timespan], list[DatasetRef]] = {}
            for _, dataset_id, collection, begin, end in page:
                name = self.source.referenced(names, collection, "collection id", f"A {table} row")
                if name not in existing:
                    existing[name] = set(self.registry.query_certifications(name))
                where = f"{self.source.root}: {table} row of dataset {dataset_id}"
                timespan = self.source.timespan(begin, end, where)
                ref = refs.get(as_uuid(dataset_id))
                if ref is None or (ref.id, timespan) in existing[name]:
                    continue  # left out (a missing artifact), or certified by an earlier run
                groups.setdefault((name, timespan), []).append(ref)
            with self.registry.transaction():
                for (name, timespan), members in groups.items():
                    self.registry.certify(name, members, timespan)
