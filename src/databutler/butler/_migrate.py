"""Migrating a daf_butler repository: read its SQLite registry directly, write databutler's.

`migrate` reads a daf_butler (LSST's Data Butler) repository — its
``butler.yaml``, its SQLite registry made by the default managers of recent
releases, and its file datastore — and writes a databutler repository:

1. The source is checked before anything is written: the registry managers
   and their versions (``butler_attributes``), the datastore (a file
   datastore), the database (SQLite; PostgreSQL sources are not supported
   yet), the dataset types (dimensions the universe has, storage classes,
   formatters) and the dimension records, mapped onto the destination's
   universe as `._daf_butler_export` maps an export's (``skip_unknown_fields``
   the same choice, with the same kind of error).
2. Dimension records, dataset types and collections are written (existing
   identical ones are kept: a second run continues the first).
3. Datasets stream in keyset pages of ``batch_size`` per dataset type; each
   page is one transaction (registry rows, datastore records, bridge rows),
   datasets the destination has already are skipped. Artifacts stay where
   they are (``direct``) or are copied (``copy``).
4. TAGGED memberships and certifications, in pages; then the chains.
5. The destination is verified.

The source is only read: its database is opened read-only.
"""

from __future__ import annotations

import base64
import datetime
import json
import logging
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._collection_type import CollectionType, Timespan
from .._dataset_ref import DatasetRef
from .._dataset_type import DatasetType
from .._exceptions import (
    DatabutlerError,
    ExportFormatError,
    IncompatibleVersionError,
    InvalidArgumentError,
    RepositoryError,
    RepositoryNotFoundError,
)
from .._file_dataset import FileDataset
from ..dimensions import DataCoordinate, DimensionGroup, DimensionUniverse
from ._daf_butler_export import (
    FORMATTERS,
    _add_recordless,
    _drop_default_groups,
    _map_records,
    _Region,
    tai_to_utc,
)
from ._exchange import _sync_records

if TYPE_CHECKING:
    from ._butler import Butler
    from ._verify import VerifyReport

__all__ = ["MigrationReport", "migrate"]

_LOG = logging.getLogger(__name__)

#: The transfer modes of a migration: artifacts left in place, or copied.
TRANSFERS = ("direct", "copy")

#: The registry managers read here: their class names (as ``butler_attributes``
#: and ``butler.yaml`` spell them) and the (major, minor) schema versions.
_MANAGERS: Mapping[str, tuple[frozenset[str], tuple[int, int]]] = {
    "attributes": (
        frozenset({"lsst.daf.butler.registry.attributes.DefaultButlerAttributeManager"}),
        (1, 0),
    ),
    "dimensions": (
        frozenset(
            {"lsst.daf.butler.registry.dimensions.static.StaticDimensionRecordStorageManager"}
        ),
        (6, 0),
    ),
    "collections": (
        frozenset(
            {"lsst.daf.butler.registry.collections.synthIntKey.SynthIntKeyCollectionManager"}
        ),
        (2, 0),
    ),
    "datasets": (
        frozenset(
            {
                "lsst.daf.butler.registry.datasets.byDimensions."
                "ByDimensionsDatasetRecordStorageManagerUUID",
                "lsst.daf.butler.registry.datasets.byDimensions._manager."
                "ByDimensionsDatasetRecordStorageManagerUUID",
            }
        ),
        (2, 0),
    ),
    "opaque": (
        frozenset({"lsst.daf.butler.registry.opaque.ByNameOpaqueTableStorageManager"}),
        (0, 2),
    ),
    "datastores": (
        frozenset(
            {"lsst.daf.butler.registry.bridge.monolithic.MonolithicDatastoreRegistryBridgeManager"}
        ),
        (0, 2),
    ),
}
_FILE_DATASTORE = "lsst.daf.butler.datastores.fileDatastore.FileDatastore"
_ROOT_TOKEN = "<butlerRoot>"
# daf_butler's CollectionType values.
_COLLECTION_TYPES = {1: CollectionType.RUN, 2: CollectionType.TAGGED, 3: CollectionType.CHAINED,
                     4: CollectionType.CALIBRATION}  # fmt: skip
# The bounds daf_butler stores for a timespan unbounded at either end (TAI ns).
_NS_MIN = 0
_NS_MAX = 4102444800000000000
_NO_COMPONENT = "__NULL_STRING__"
_EPOCH = datetime.datetime(1970, 1, 1)
_SKIP_HINT = (
    "Pass skip_unknown_fields=True (databutler migrate --skip-unknown-fields) to migrate "
    "without them."
)

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


# -- the source -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Type:
    key: int
    dataset_type: DatasetType
    dimensions: tuple[str, ...]
    tags: str
    calibs: str | None


class _Source:
    """A daf_butler repository, read-only: its configuration, managers and tables."""

    def __init__(self, source: str | os.PathLike[str]) -> None:
        given = os.fspath(source)
        if "://" in given and not given.startswith("file://"):
            raise RepositoryError(
                f"{given}: only local daf_butler repositories are migrated; copy the "
                "repository (butler.yaml, registry and datastore) to a local directory first."
            )
        path = Path(given.removeprefix("file://")).absolute()
        if path.is_file():
            path = path.parent
        config_file = path / "butler.yaml"
        if not config_file.is_file():
            raise RepositoryNotFoundError(
                f"{path} is not a daf_butler repository: it has no butler.yaml. Give the "
                "repository's root directory (or its butler.yaml)."
            )
        self.root = path
        self.config = self._read_config(config_file)
        self.db_path = self._db_path()
        self.datastore_root, self.records_table = self._datastore()
        try:
            self.db = sqlite3.connect(f"{self.db_path.as_uri()}?mode=ro", uri=True)
            self.db.execute("SELECT 1 FROM sqlite_master").fetchall()
        except sqlite3.Error as exc:
            raise RepositoryError(
                f"The registry of the daf_butler repository {path} ({self.db_path}) cannot be "
                f"read as SQLite: {exc}. Check the file (and registry.db in butler.yaml)."
            ) from None
        try:
            self.tables = {
                row[0]
                for row in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            self.attributes = dict(self._fetch("SELECT name, value FROM butler_attributes"))
            self._check_managers()
            self.universe_config = self._universe_config()
        except BaseException:
            self.db.close()
            raise

    def close(self) -> None:
        self.db.close()

    def _fetch(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        try:
            return self.db.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise RepositoryError(
                f"The registry of the daf_butler repository {self.root} is not laid out as "
                f"databutler reads it ({exc}); it may be damaged, or made by managers this "
                "migration does not read."
            ) from None

    def _read_config(self, file: Path) -> Mapping[str, Any]:
        import yaml

        try:
            config = yaml.safe_load(file.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise RepositoryError(f"{file} is not valid YAML: {exc}") from None
        if not isinstance(config, Mapping):
            raise RepositoryError(f"{file} is not a daf_butler configuration (a mapping).")
        return config

    def _section(self, name: str) -> Mapping[str, Any]:
        section = self.config.get(name) or {}
        if not isinstance(section, Mapping):
            raise RepositoryError(f"{self.root}/butler.yaml: {name!r} is not a mapping.")
        return section

    def _db_path(self) -> Path:
        uri = self._section("registry").get("db", f"sqlite:///{_ROOT_TOKEN}/gen3.sqlite3")
        if not isinstance(uri, str):
            raise RepositoryError(f"{self.root}/butler.yaml: registry.db is not a string.")
        uri = uri.replace(_ROOT_TOKEN, str(self.root))
        scheme = uri.partition(":")[0].partition("+")[0].lower()
        if scheme in ("postgresql", "postgres"):
            raise RepositoryError(
                f"The daf_butler repository {self.root} keeps its registry in PostgreSQL "
                f"({uri.partition('@')[2] or uri}): PostgreSQL sources are not supported yet. "
                "Export it with daf_butler ('butler export') and import the export with "
                "'databutler import', or copy it into a SQLite daf_butler repository first."
            )
        if scheme != "sqlite" or not uri.startswith("sqlite:///"):
            raise RepositoryError(
                f"{self.root}/butler.yaml: registry.db is {uri!r}; only SQLite registries "
                "(sqlite:///path) are migrated."
            )
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_absolute():
            path = self.root / path
        if not path.is_file():
            raise RepositoryError(
                f"The registry of the daf_butler repository {self.root}, {path}, does not "
                "exist; restore it (registry.db in butler.yaml names it)."
            )
        return path

    def _datastore(self) -> tuple[Path, str]:
        section = self._section("datastore")
        cls = section.get("cls", _FILE_DATASTORE)
        if cls != _FILE_DATASTORE:
            raise RepositoryError(
                f"The daf_butler repository {self.root} has a datastore of class {cls!r}; only "
                f"a file datastore ({_FILE_DATASTORE}) is migrated. Migrate a repository "
                "whose datastore is one FileDatastore, or export the datasets with daf_butler "
                "and import the export."
            )
        root = str(section.get("root", _ROOT_TOKEN)).replace(_ROOT_TOKEN, str(self.root))
        if "://" in root and not root.startswith("file://"):
            raise RepositoryError(
                f"The datastore of the daf_butler repository {self.root} is at {root}; only "
                "local datastores are migrated. Copy the artifacts to a local directory first."
            )
        records = section.get("records", {})
        table = (
            records.get("table", "file_datastore_records") if isinstance(records, Mapping) else None
        )
        if not isinstance(table, str):
            raise RepositoryError(
                f"{self.root}/butler.yaml: datastore.records.table is not a name."
            )
        path = Path(root.removeprefix("file://"))
        return (path if path.is_absolute() else self.root / path), table

    def _check_managers(self) -> None:
        for name, value in sorted(self.attributes.items()):
            if not name.startswith("config:registry.managers."):
                continue
            kind = name.removeprefix("config:registry.managers.")
            known = _MANAGERS.get(kind)
            if known is None:
                raise IncompatibleVersionError(
                    f"The daf_butler repository {self.root} uses a {kind!r} registry manager "
                    f"({value}), which this migration does not read; it reads only the managers "
                    f"{', '.join(sorted(_MANAGERS))} of daf_butler's defaults."
                )
            classes, (major, minor) = known
            if value not in classes:
                raise IncompatibleVersionError(
                    f"The daf_butler repository {self.root} uses the {kind} manager {value}; "
                    f"this migration reads only {' or '.join(sorted(classes))} (the default of "
                    "recent daf_butler releases). Migrate the repository to the default "
                    "managers with daf_butler first, or export and import it."
                )
            version = self.attributes.get(f"version:{value}")
            parts = str(version).split(".")
            if version is None or len(parts) != 3 or not all(p.isdigit() for p in parts):
                raise IncompatibleVersionError(
                    f"The daf_butler repository {self.root} records no usable schema version of "
                    f"its {kind} manager {value} (found {version!r}) in butler_attributes."
                )
            if (int(parts[0]), int(parts[1])) != (major, minor):
                raise IncompatibleVersionError(
                    f"The {kind} manager {value} of the daf_butler repository {self.root} has "
                    f"schema version {version}; this migration reads version {major}.{minor}.x. "
                    "Upgrade the repository with daf_butler's migration tools "
                    "(daf_butler_migrate) to that version first."
                )
        for kind in ("collections", "datasets", "dimensions", "datastores", "opaque"):
            if f"config:registry.managers.{kind}" not in self.attributes:
                raise IncompatibleVersionError(
                    f"The daf_butler repository {self.root} records no {kind} manager in "
                    "butler_attributes; it is older than this migration reads (or not a "
                    "daf_butler registry)."
                )

    def _universe_config(self) -> Mapping[str, Any]:
        text = self.attributes.get("config:dimensions.json")
        try:
            config = json.loads(text) if text is not None else None
        except json.JSONDecodeError:
            config = None
        if not isinstance(config, Mapping) or not isinstance(config.get("elements"), Mapping):
            raise RepositoryError(
                f"The daf_butler repository {self.root} has no readable dimension universe "
                "(config:dimensions.json in butler_attributes)."
            )
        return config

    @property
    def universe(self) -> tuple[str, int]:
        return (
            str(self.universe_config.get("namespace", "daf_butler")),
            int(self.universe_config.get("version", 0)),
        )

    # -- dimension records ------------------------------------------------------------------

    def records(
        self, universe: DimensionUniverse
    ) -> tuple[dict[str, list[tuple[str, Mapping[str, Any]]]], dict[str, int]]:
        """The dimension records `_map_records` maps (times as UTC datetimes), and how many
        records each dimension the universe lacks has (counted, not read: those, such as
        ``visit_detector_region``, can be as many as the datasets). ``group`` is read:
        default groups are dropped rather than counted."""
        found: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
        unknown: dict[str, int] = {}
        for element, description in self.universe_config["elements"].items():
            if element not in self.tables or not isinstance(description, Mapping):
                continue  # no table of its own (a view, like band)
            if element not in universe and element != "group":
                (count,) = self._fetch(f'SELECT count(*) FROM "{element}"')[0]
                if count:
                    unknown[element] = count
                continue
            fields = [*description.get("keys", ()), *description.get("metadata", ())]
            hashes = {
                f["name"] for f in fields if isinstance(f, Mapping) and f.get("type") == "hash"
            }
            flags = {
                f["name"] for f in fields if isinstance(f, Mapping) and f.get("type") == "bool"
            }
            try:
                cursor = self.db.execute(f'SELECT * FROM "{element}"')
            except sqlite3.Error as exc:
                raise RepositoryError(
                    f"The {element} table of the daf_butler repository {self.root} cannot be "
                    f"read ({exc}); it may be damaged."
                ) from None
            columns = [c[0] for c in cursor.description]
            rows = found.setdefault(element, [])
            for n, values in enumerate(cursor):
                where = f"{self.root}: {element} record {n}"
                record: dict[str, Any] = {}
                for column, value in zip(columns, values, strict=True):
                    if column in ("timespan_begin", "timespan_end"):
                        column = "datetime_" + column.removeprefix("timespan_")
                        value = None if value is None else self._time(value, where)
                    elif column == "region" and value is not None:
                        value = _Region("region", base64.b64decode(value).hex())
                    elif column in hashes and isinstance(value, str):
                        value = base64.b64decode(value)
                    elif column in flags and value is not None:
                        value = bool(value)
                    record[column] = value
                rows.append((where, record))
        return found, unknown

    def _time(self, ns: int, where: str) -> datetime.datetime:
        seconds, rest = divmod(int(ns), 1_000_000_000)
        text = (_EPOCH + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")
        try:
            return tai_to_utc(f"{text}.{rest:09d}")
        except ValueError as exc:
            raise RepositoryError(f"{where}: time {text} (TAI): {exc}") from None

    def timespan(self, begin: int, end: int, where: str) -> Timespan:
        return Timespan(
            None if begin is None or begin <= _NS_MIN else self._time(begin, where),
            None if end is None or end >= _NS_MAX else self._time(end, where),
        )

    # -- collections and dataset types ------------------------------------------------------

    def collections(self) -> list[tuple[int, str, CollectionType, str | None]]:
        out = []
        for key, name, kind, doc in self._fetch(
            "SELECT collection_id, name, type, doc FROM collection ORDER BY collection_id"
        ):
            if kind not in _COLLECTION_TYPES:
                raise RepositoryError(
                    f"Collection {name!r} of the daf_butler repository {self.root} has type "
                    f"{kind}, which is none of daf_butler's (1-4)."
                )
            out.append((key, name, _COLLECTION_TYPES[kind], doc or None))
        return out

    def chains(self, names: Mapping[int, str]) -> dict[str, list[str]]:
        chains: dict[str, list[str]] = {}
        for parent, _, child in self._fetch(
            "SELECT parent, position, child FROM collection_chain ORDER BY parent, position"
        ):
            chains.setdefault(names[parent], []).append(names[child])
        return chains

    def dataset_types(self, universe: DimensionUniverse) -> list[_Type]:
        groups: dict[int, list[str]] = {}
        for key, name in self._fetch(
            "SELECT dimension_graph_id, dimension_name FROM dimension_graph_definition"
        ):
            groups.setdefault(key, []).append(name)
        out = []
        for key, name, storage_class, group, tags, calibs in self._fetch(
            "SELECT id, name, storage_class, dimensions_key, tag_association_table, "
            "calibration_association_table FROM dataset_type ORDER BY id"
        ):
            dimensions = tuple(sorted(groups.get(group, ())))
            unknown = [d for d in dimensions if d not in universe]
            if unknown:
                raise RepositoryError(
                    f"Dataset type {name!r} of the daf_butler repository {self.root} has "
                    f"dimension(s) {', '.join(unknown)}, which databutler's dimension universe "
                    f"does not have ({', '.join(universe.names)}); its datasets cannot be "
                    "migrated. Remove the dataset type in daf_butler (or migrate a copy "
                    "without it)."
                )
            try:
                dataset_type = DatasetType(
                    name, dimensions, storage_class, isCalibration=calibs is not None
                )
            except (DatabutlerError, ValueError, TypeError) as exc:
                raise RepositoryError(
                    f"Dataset type {name!r} of the daf_butler repository {self.root} is not "
                    f"valid in databutler: {exc}"
                ) from None
            for table in (tags, calibs):
                if table is not None and table not in self.tables:
                    raise RepositoryError(
                        f"The daf_butler repository {self.root} names table {table} for "
                        f"dataset type {name!r}, and has no such table; it is damaged."
                    )
            out.append(_Type(key, dataset_type, dimensions, tags, calibs))
        return out

    def check_records(self) -> None:
        """Refuse formatters databutler has no counterpart of, and datasets stored in parts."""
        table = self.records_table
        if table not in self.tables:
            raise RepositoryError(
                f"The daf_butler repository {self.root} has no datastore records table "
                f"{table!r} (datastore.records.table in butler.yaml); it is damaged."
            )
        for (formatter,) in self._fetch(f'SELECT DISTINCT formatter FROM "{table}"'):
            if formatter not in FORMATTERS:
                (path,) = self._fetch(
                    f'SELECT path FROM "{table}" WHERE formatter = ? LIMIT 1', (formatter,)
                )[0]
                readers = ", ".join(sorted(set(FORMATTERS.values())))
                raise RepositoryError(
                    f"The daf_butler repository {self.root} has files written by the "
                    f"daf_butler formatter {formatter!r} (e.g. {path}), which databutler has "
                    f"no counterpart of (it reads files of {readers} here). Convert or "
                    "remove those datasets in daf_butler, then migrate."
                )
        parts = self._fetch(
            f'SELECT dataset_id, component FROM "{table}" WHERE component != ? LIMIT 1',
            (_NO_COMPONENT,),
        )
        if parts:
            raise RepositoryError(
                f"Dataset {uuid.UUID(parts[0][0])} of the daf_butler repository {self.root} "
                f"is stored in parts (component {parts[0][1]!r}); disassembled composites are "
                "not migrated yet. Remove those datasets in daf_butler (or migrate a copy "
                "without them)."
            )

    def count(self) -> int:
        return int(self._fetch("SELECT count(*) FROM dataset")[0][0])

    def trashed(self) -> int:
        return int(self._fetch("SELECT count(*) FROM dataset_location_trash")[0][0])

    def band_values(self, types: list[_Type]) -> set[str]:
        values: set[str] = set()
        for t in types:
            if "band" in t.dimensions:
                values.update(v for (v,) in self._fetch(f'SELECT DISTINCT band FROM "{t.tags}"'))
        return values

    # -- datasets, in pages -----------------------------------------------------------------

    def datasets(
        self, types: Mapping[int, _Type], size: int
    ) -> Iterator[list[tuple[str, _Type, int, tuple[Any, ...], tuple[Any, ...] | None]]]:
        """Pages of ``(id, type, run_id, data ID values, (path, formatter, component) or None)``.

        One keyset walk of ``dataset`` by id (its primary key); each page's data
        IDs, records and locations are read by range of ids over the primary
        keys of the other tables: a few queries per page, each reading only
        the page's rows, whatever the repository's size.
        """
        last = ""
        while True:
            page = self._fetch(
                "SELECT id, dataset_type_id, run_id FROM dataset WHERE id > ? ORDER BY id LIMIT ?",
                (last, size),
            )
            if not page:
                return
            first, last = page[0][0], page[-1][0]
            span = (first, last)
            records = {
                row[0]: row[1:]
                for row in self._fetch(
                    f'SELECT dataset_id, path, formatter, component FROM "{self.records_table}" '
                    "WHERE dataset_id BETWEEN ? AND ?",
                    span,
                )
            }
            located = {
                row[0]
                for row in self._fetch(
                    "SELECT dataset_id FROM dataset_location WHERE dataset_id BETWEEN ? AND ?",
                    span,
                )
            }
            data_ids: dict[tuple[str, int], tuple[Any, ...]] = {}
            tables = {types[key].tags: types[key].dimensions for _, key, _ in page}
            for table, dimensions in tables.items():
                columns = "".join(f', "{d}"' for d in dimensions)
                for row in self._fetch(
                    f'SELECT dataset_id, collection_id{columns} FROM "{table}" '
                    "WHERE dataset_id BETWEEN ? AND ?",
                    span,
                ):
                    data_ids[(row[0], row[1])] = row[2:]
            out = []
            for dataset_id, key, run in page:
                values = data_ids.get((dataset_id, run))
                if values is None:
                    raise RepositoryError(
                        f"Dataset {uuid.UUID(dataset_id)} of the daf_butler repository "
                        f"{self.root} has no data ID in {types[key].tags} for its run; the "
                        "registry is damaged."
                    )
                stored = records.get(dataset_id) if dataset_id in located else None
                out.append((dataset_id, types[key], run, values, stored))
            yield out

    def members(self, table: str, collection: int, size: int) -> Iterator[list[str]]:
        """Pages of the ids of datasets in ``collection``, by rowid: daf_butler's index on
        ``collection_id`` keeps them in that order, so that no page sorts the collection."""
        last = -1
        while True:
            rows = self._fetch(
                f'SELECT rowid, dataset_id FROM "{table}" WHERE collection_id = ? AND rowid > ? '
                "ORDER BY rowid LIMIT ?",
                (collection, last, size),
            )
            if not rows:
                return
            yield [row[1] for row in rows]
            last = rows[-1][0]

    def certifications(self, table: str, size: int) -> Iterator[list[tuple[Any, ...]]]:
        last = -1
        while True:
            page = self._fetch(
                "SELECT id, dataset_id, collection_id, timespan_begin, timespan_end "
                f'FROM "{table}" WHERE id > ? ORDER BY id LIMIT ?',
                (last, size),
            )
            if not page:
                return
            yield page
            last = page[-1][0]

    def artifact(self, path: str) -> str:
        """The local path of an artifact (strings: pathlib would intern every file name)."""
        if path.startswith("file://"):
            return path.removeprefix("file://")
        if "://" in path:
            raise RepositoryError(
                f"The daf_butler repository {self.root} records an artifact at {path}; only "
                "local files are migrated. Copy it to the datastore first."
            )
        return os.path.join(self.datastore_root, path)


# -- the migration ------------------------------------------------------------------------


def migrate(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    transfer: str = "direct",
    db: str | None = None,
    namespace: str | None = None,
    batch_size: int = 10_000,
    skip_missing: bool = False,
    skip_unknown_fields: bool = False,
    progress: Progress | None = None,
) -> MigrationReport:
    """See `Butler.migrate_from`."""
    from ._butler import Butler

    if transfer not in TRANSFERS:
        raise InvalidArgumentError(
            f"transfer={transfer!r}: a migration leaves the artifacts in place ('direct') or "
            "copies them ('copy')."
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(f"batch_size must be a positive integer, not {batch_size!r}.")
    upstream = _Source(source)
    try:
        _check_destination(upstream, destination)
        try:
            butler: Butler | None = Butler(destination, writeable=True)
        except RepositoryNotFoundError:
            butler = None
        try:
            # Everything about the source is checked before a new destination is made.
            universe = butler.dimensions if butler is not None else DimensionUniverse()
            plan = _Plan.make(upstream, universe, skip_unknown_fields)
            if butler is None:
                butler = Butler.create(destination, db=db, namespace=namespace)
            migration = _Migration(upstream, plan, butler, transfer, batch_size, progress)
            return migration.run(skip_missing)
        finally:
            if butler is not None:
                butler.close()
    finally:
        upstream.close()


def _check_destination(source: _Source, destination: str | os.PathLike[str]) -> None:
    """Refuse a destination that is the source, or another daf_butler repository.

    Opening one as a databutler repository would write to its registry.
    """
    given = os.fspath(destination)
    if "://" in given and not given.startswith("file://"):
        return
    path = Path(given.removeprefix("file://")).absolute()
    if path.name == "butler.yaml":
        path = path.parent
    config = path / "butler.yaml"
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

    types: list[_Type]
    collections: list[tuple[int, str, CollectionType, str | None]]
    chains: dict[str, list[str]]
    records: dict[str, list[dict[str, Any]]]
    skipped: dict[str, int]

    @property
    def names(self) -> dict[int, str]:
        return {key: name for key, name, _, _ in self.collections}

    @classmethod
    def make(cls, source: _Source, universe: DimensionUniverse, skip_unknown: bool) -> _Plan:
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
        source: _Source,
        plan: _Plan,
        butler: Butler,
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

    def run(self, skip_missing: bool) -> MigrationReport:
        source, plan = self.source, self.plan
        # The repository's frame first: records, types, collections (each idempotent).
        _sync_records(self.registry, plan.records)
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
        for page in source.datasets(by_key, self.batch_size):
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
        report = self.butler.verify()
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
        page: list[tuple[str, _Type, int, tuple[Any, ...], tuple[Any, ...] | None]],
        runs: Mapping[int, str],
        skip_missing: bool,
        missing: list[str],
    ) -> tuple[int, int, int]:
        """Write one page of datasets in one transaction: (migrated, already, registry-only)."""
        ids = [uuid.UUID(row[0]) for row in page]
        known = self.registry.existing_dataset_ids(ids)
        files: dict[tuple[str, str], list[DatasetRef]] = {}
        bare: list[DatasetRef] = []
        for dataset_id, (_, t, run, values, stored) in zip(ids, page, strict=True):
            if dataset_id in known:
                continue
            dataset_type, group = registered[t.key]
            # A complete data ID, so that the writes below need not standardize it again.
            values_by_name = dict(zip(t.dimensions, values, strict=True))
            data_id = DataCoordinate.from_required(group, values_by_name)
            ref = DatasetRef(dataset_type, data_id, run=runs[run], id=dataset_id)
            if stored is None:
                bare.append(ref)
                continue
            path, formatter, component = stored
            if component != _NO_COMPONENT:
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
            if not os.path.isfile(artifact):
                if skip_missing:
                    missing.append(artifact)
                    continue
                raise RepositoryError(
                    f"Artifact {artifact} of dataset {dataset_id} ({t.dataset_type.name}) is "
                    f"missing from the daf_butler repository {self.source.root}. Restore it, or "
                    "pass skip_missing=True (databutler migrate --skip-missing) to leave such "
                    "datasets out. Datasets migrated so far are kept; run again to continue."
                )
            files.setdefault((artifact, mapped), []).append(ref)
        if files or bare:
            with self.butler.transaction():
                if bare:
                    self.butler._import_refs(bare)
                if files:
                    datasets = [FileDataset(p, list(refs), f) for (p, f), refs in files.items()]
                    self.butler.ingest(*datasets, transfer=self.transfer)
        self.done += len(page)
        self._tick()
        migrated = sum(len(refs) for refs in files.values()) + len(bare)
        return migrated, len(known), len(bare)

    def _associate(self, tag: str, ids: list[str]) -> None:
        refs = self.registry.get_datasets([uuid.UUID(i) for i in ids])
        if refs:
            self.registry.associate(tag, list(refs.values()))

    def _certify(self, table: str, names: Mapping[int, str]) -> None:
        existing: dict[str, set[tuple[uuid.UUID, Timespan]]] = {}
        for page in self.source.certifications(table, self.batch_size):
            refs = self.registry.get_datasets({uuid.UUID(row[1]) for row in page})
            groups: dict[tuple[str, Timespan], list[DatasetRef]] = {}
            for _, dataset_id, collection, begin, end in page:
                name = names[collection]
                if name not in existing:
                    existing[name] = set(self.registry.query_certifications(name))
                where = f"{self.source.root}: {table} row of dataset {dataset_id}"
                timespan = self.source.timespan(begin, end, where)
                ref = refs.get(uuid.UUID(dataset_id))
                if ref is None or (ref.id, timespan) in existing[name]:
                    continue  # left out (a missing artifact), or certified by an earlier run
                groups.setdefault((name, timespan), []).append(ref)
            with self.registry.transaction():
                for (name, timespan), members in groups.items():
                    self.registry.certify(name, members, timespan)
