"""Reading a daf_butler repository as it is on disk: `DafButlerRepository`.

The repository's ``butler.yaml`` says where its registry and datastore are;
its registry is read directly (`._daf_butler_db`: SQLite opened read-only,
or PostgreSQL in one read-only snapshot, in the schema ``registry.namespace``
names), in the layout of daf_butler's default managers of recent
releases (their classes and schema versions are checked first, from
``butler_attributes``): the dimension tables named by the universe in
``config:dimensions.json``, ``collection``/``run``/``collection_chain``,
``dataset_type`` and ``dimension_graph_definition``, ``dataset`` with the
dynamic ``dataset_tags_*``/``dataset_calibs_*`` tables, the bridge's
``dataset_location``/``dataset_location_trash`` and the datastore's records
table. Large tables are read in keyset pages. On PostgreSQL daf_butler
keeps dataset ids as ``uuid`` and timespans as one ``int8range`` column;
both layouts are read (`._daf_butler_db.as_uuid`, ``range_bounds``). `._migrate` writes what
this reads into a databutler repository.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .._collection_type import CollectionType, Timespan
from .._dataset_type import DatasetType
from .._exceptions import (
    DatabutlerError,
    IncompatibleVersionError,
    InvalidArgumentError,
    InvalidNameError,
    RepositoryError,
    RepositoryNotFoundError,
)
from ..dimensions import DimensionUniverse
from ..registry.collections import validate_collection_name
from ._config import read_regular_file
from ._daf_butler_db import (
    NS_MAX,
    NS_MIN,
    PostgreSQLSource,
    SourceDatabase,
    SQLiteSource,
    as_uuid,
    range_bounds,
)
from ._daf_butler_export import FORMATTERS, _Region, tai_to_utc

__all__ = ["NO_COMPONENT", "DafButlerRepository", "DatasetRow", "DatasetTypeTables"]

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
_T = TypeVar("_T")
# daf_butler's CollectionType values.
_COLLECTION_TYPES = {1: CollectionType.RUN, 2: CollectionType.TAGGED, 3: CollectionType.CHAINED,
                     4: CollectionType.CALIBRATION}  # fmt: skip
#: The component daf_butler records for a dataset stored whole.
NO_COMPONENT = "__NULL_STRING__"
_EPOCH = datetime.datetime(1970, 1, 1)
# -- the repository -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DatasetTypeTables:
    """A dataset type of the repository, with its key and its tags and calibs tables."""

    key: int
    dataset_type: DatasetType
    dimensions: tuple[str, ...]
    tags: str
    calibs: str | None


#: A dataset as `DafButlerRepository.datasets` gives it: its id (32 hex digits), type, run
#: key, data ID values (in the type's dimension order) and, when the datastore holds it,
#: its (path, formatter class, component).
DatasetRow = tuple[str, DatasetTypeTables, int, tuple[Any, ...], tuple[Any, ...] | None]


class DafButlerRepository:
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
        if "databutler" in self.config:
            # Its registry is not daf_butler's; reading it would only fail later (and a
            # read-only open of its WAL-mode database would still add files beside it).
            raise RepositoryError(
                f"{path} is a databutler repository, not a daf_butler one: there is nothing "
                "to migrate. Open it with Butler(...), or copy datasets from it with "
                "transfer_from / 'databutler transfer-datasets'."
            )
        self.datastore_root, self.records_table = self._datastore()
        self._root_text = os.fspath(self.datastore_root)  # `artifact` joins strings
        self.db = self._open_database()
        try:
            self.tables = self._tables()
            self.attributes = self._attributes()
            self._check_managers()
            self.universe_config = self._universe_config()
        except BaseException:
            self.db.close()
            raise

    def _attributes(self) -> dict[str, str]:
        """``butler_attributes``: names and values are text, or the registry is damaged."""
        attributes = {}
        for name, value in self._fetch("SELECT name, value FROM butler_attributes"):
            if not isinstance(name, str) or not isinstance(value, str):
                raise RepositoryError(
                    f"butler_attributes of the daf_butler repository {self.root} holds "
                    f"{name!r:.80}: {value!r:.80}, where names and values are text: the "
                    "registry is damaged. Repair it (or restore it from a backup), then "
                    "migrate again."
                )
            attributes[name] = value
        return attributes

    def close(self) -> None:
        self.db.close()

    def _tables(self) -> set[str]:
        try:
            return self.db.tables()
        except self.db.errors as exc:
            raise RepositoryError(
                f"The registry of the daf_butler repository {self.root} ({self.db.where}) "
                f"cannot be read: {exc}"
            ) from None

    def _fetch(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        try:
            return self.db.fetch(sql, parameters)
        except self.db.errors as exc:
            raise RepositoryError(
                f"The registry of the daf_butler repository {self.root} is not laid out as "
                f"databutler reads it ({exc}); it may be damaged, or made by managers this "
                "migration does not read."
            ) from None

    def _read_config(self, file: Path) -> Mapping[str, Any]:
        import yaml

        try:  # refused unless a regular file: a named pipe would block the read
            config = yaml.safe_load(read_regular_file(file, str(file)).decode())
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

    def _open_database(self) -> SourceDatabase:
        registry = self._section("registry")
        uri = registry.get("db", f"sqlite:///{_ROOT_TOKEN}/gen3.sqlite3")
        if not isinstance(uri, str):
            raise RepositoryError(f"{self.root}/butler.yaml: registry.db is not a string.")
        uri = uri.replace(_ROOT_TOKEN, str(self.root))
        scheme = uri.partition(":")[0].partition("+")[0].lower()
        if scheme in ("postgresql", "postgres"):
            namespace = registry.get("namespace")
            if namespace is not None and not isinstance(namespace, str):
                raise RepositoryError(
                    f"{self.root}/butler.yaml: registry.namespace is not a schema name."
                )
            if scheme == "postgres":
                uri = "postgresql" + uri.removeprefix("postgres")
            return PostgreSQLSource(uri, namespace, self.root)
        if scheme != "sqlite" or not uri.startswith("sqlite:///"):
            raise RepositoryError(
                f"{self.root}/butler.yaml: registry.db is {uri!r}; only SQLite "
                "(sqlite:///path) and PostgreSQL (postgresql://...) registries are migrated."
            )
        path = Path(uri.removeprefix("sqlite:///"))
        if not path.is_absolute():
            path = self.root / path
        if not path.is_file():
            raise RepositoryError(
                f"The registry of the daf_butler repository {self.root}, {path}, does not "
                "exist; restore it (registry.db in butler.yaml names it)."
            )
        return SQLiteSource(path, self.root)

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
                columns, cursor = self.db.cursor(f'SELECT * FROM "{element}"')
                rows = found.setdefault(element, [])
                for n, values in enumerate(cursor):
                    rows.append(self._record(element, n, columns, values, hashes, flags))
            except self.db.errors as exc:
                raise RepositoryError(
                    f"The {element} table of the daf_butler repository {self.root} cannot be "
                    f"read ({exc}); it may be damaged."
                ) from None
        return found, unknown

    def _record(
        self,
        element: str,
        n: int,
        columns: list[str],
        values: tuple[Any, ...],
        hashes: set[str],
        flags: set[str],
    ) -> tuple[str, dict[str, Any]]:
        where = f"{self.root}: {element} record {n}"
        record: dict[str, Any] = {}
        for column, value in zip(columns, values, strict=True):
            if column == "timespan":  # PostgreSQL's layout: one int8range
                bounds = range_bounds(value, where)
                begin, end = (None, None) if bounds is None else bounds
                record["datetime_begin"] = None if begin is None else self._time(begin, where)
                record["datetime_end"] = None if end is None else self._time(end, where)
                continue
            if column in ("timespan_begin", "timespan_end"):
                column = "datetime_" + column.removeprefix("timespan_")
                value = None if value is None else self._time(value, where)
            elif column == "region" and value is not None:
                value = _Region("region", self._decoded(value, f"{where}, region").hex())
            elif column in hashes and isinstance(value, str):
                value = self._decoded(value, f"{where}, {column}")
            elif column in flags and value is not None:
                value = bool(value)
            record[column] = value
        return where, record

    def _decoded(self, value: Any, where: str) -> bytes:
        """The bytes of a base64 column (a region, a hash), as daf_butler's SQLite layout
        stores them; a `RepositoryError` for a value that is not base64."""
        try:
            return base64.b64decode(value)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise RepositoryError(
                f"{where} is not base64 ({exc}): the daf_butler registry is damaged. Repair "
                "it (or restore it from a backup), then migrate again."
            ) from None

    def _time(self, ns: int, where: str) -> datetime.datetime:
        seconds, rest = divmod(self._nanoseconds(ns, where), 1_000_000_000)
        text = (_EPOCH + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")
        try:
            return tai_to_utc(f"{text}.{rest:09d}")
        except ValueError as exc:
            raise RepositoryError(f"{where}: time {text} (TAI): {exc}") from None

    def _nanoseconds(self, value: Any, where: str) -> int:
        """A time column's value: whole nanoseconds (SQLite's layout), or the registry is
        damaged (SQLite keeps whatever was written to a column)."""
        if isinstance(value, bool) or not isinstance(value, int):
            raise RepositoryError(
                f"{where}: time {value!r} is not a whole number of nanoseconds: the daf_butler "
                "registry is damaged. Repair it (or restore it from a backup), then migrate "
                "again."
            )
        return value

    def timespan(self, begin: int, end: int, where: str) -> Timespan:
        for bound in (begin, end):
            if bound is not None:
                self._nanoseconds(bound, where)
        try:
            return Timespan(
                None if begin is None or begin <= NS_MIN else self._time(begin, where),
                None if end is None or end >= NS_MAX else self._time(end, where),
            )
        except InvalidArgumentError as exc:  # an end not after its begin
            raise RepositoryError(
                f"{where}: {exc} The daf_butler registry is damaged; repair it (or restore "
                "it from a backup), then migrate again."
            ) from None

    # -- collections and dataset types ------------------------------------------------------

    def collections(self) -> list[tuple[int, str, CollectionType, str | None]]:
        out = []
        for key, name, kind, doc in self._fetch(
            "SELECT collection_id, name, type, doc FROM collection ORDER BY collection_id"
        ):
            if not isinstance(name, str) or not isinstance(doc, str | None):
                raise RepositoryError(
                    f"Collection {key!r} of the daf_butler repository {self.root} has name "
                    f"{name!r} and documentation {doc!r}, where both are text: the registry is "
                    "damaged. Repair it (or restore it from a backup), then migrate again."
                )
            try:
                validate_collection_name(name)
            except InvalidNameError as exc:
                raise RepositoryError(
                    f"Collection {name!r} of the daf_butler repository {self.root} cannot be "
                    f"a databutler collection: {exc} Rename it in daf_butler (or migrate a "
                    "copy without it)."
                ) from None
            if kind not in _COLLECTION_TYPES:
                raise RepositoryError(
                    f"Collection {name!r} of the daf_butler repository {self.root} has type "
                    f"{kind}, which is none of daf_butler's (1-4)."
                )
            out.append((key, name, _COLLECTION_TYPES[kind], doc or None))
        return out

    def referenced(self, found: Mapping[Any, _T], key: Any, what: str, where: str) -> _T:
        """``found[key]``: what a row of the registry (``where``) refers to by ``key``, as
        ``what`` (``"collection"``); a `RepositoryError` if the registry holds no such thing.
        Its foreign keys guard this, but not in a database copied or edited without them."""
        try:
            return found[key]
        except (KeyError, TypeError):
            raise RepositoryError(
                f"{where} of the daf_butler repository {self.root} refers to {what} {key!r}, "
                "which its registry does not hold: the registry is damaged. Repair it (or "
                "restore it from a backup), then migrate again."
            ) from None

    def chains(self, names: Mapping[int, str]) -> dict[str, list[str]]:
        chains: dict[str, list[str]] = {}
        for parent, _, child in self._fetch(
            "SELECT parent, position, child FROM collection_chain ORDER BY parent, position"
        ):
            where = "A row of collection_chain"
            chains.setdefault(self.referenced(names, parent, "collection id", where), []).append(
                self.referenced(names, child, "collection id", where)
            )
        return chains

    def dataset_types(self, universe: DimensionUniverse) -> list[DatasetTypeTables]:
        groups: dict[int, list[str]] = {}
        for key, name in self._fetch(
            "SELECT dimension_graph_id, dimension_name FROM dimension_graph_definition"
        ):
            groups.setdefault(key, []).append(name)
        # The empty group has a key and no definition rows: every key is one of these.
        keys = {key: key for (key,) in self._fetch("SELECT id FROM dimension_graph_key")}
        out = []
        for key, name, storage_class, group, tags, calibs in self._fetch(
            "SELECT id, name, storage_class, dimensions_key, tag_association_table, "
            "calibration_association_table FROM dataset_type ORDER BY id"
        ):
            self.referenced(keys, group, "dimension group", f"Dataset type {name!r}")
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
            out.append(DatasetTypeTables(key, dataset_type, dimensions, tags, calibs))
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
            (NO_COMPONENT,),
        )
        if parts:
            raise RepositoryError(
                f"Dataset {as_uuid(parts[0][0])} of the daf_butler repository {self.root} "
                f"is stored in parts (component {parts[0][1]!r}); disassembled composites are "
                "not migrated yet. Remove those datasets in daf_butler (or migrate a copy "
                "without them)."
            )

    def count(self) -> int:
        return int(self._fetch("SELECT count(*) FROM dataset")[0][0])

    def trashed(self) -> int:
        return int(self._fetch("SELECT count(*) FROM dataset_location_trash")[0][0])

    def band_values(self, types: list[DatasetTypeTables]) -> set[str]:
        values: set[str] = set()
        for t in types:
            if "band" in t.dimensions:
                values.update(v for (v,) in self._fetch(f'SELECT DISTINCT band FROM "{t.tags}"'))
        return values

    # -- datasets, in pages -----------------------------------------------------------------

    def datasets(
        self, types: Mapping[int, DatasetTypeTables], size: int
    ) -> Iterator[
        list[tuple[str, DatasetTypeTables, int, tuple[Any, ...], tuple[Any, ...] | None]]
    ]:
        """Pages of ``(id, type, run_id, data ID values, (path, formatter, component) or None)``.

        One keyset walk of ``dataset`` by id (its primary key), each row with
        its datastore record and whether the bridge holds it (joined by
        primary key); each page's data IDs are read by range of ids over the
        tags tables' primary keys: a query per page and dataset type, each
        reading only the page's rows, whatever the repository's size.
        """
        select = (
            "SELECT d.id, d.dataset_type_id, d.run_id, r.path, r.formatter, r.component, "
            "EXISTS (SELECT 1 FROM dataset_location l WHERE l.dataset_id = d.id) "
            f'FROM dataset d LEFT JOIN "{self.records_table}" r ON r.dataset_id = d.id'
        )
        page = self._fetch(f"{select} ORDER BY d.id LIMIT ?", (size,))
        while True:
            if not page:
                return
            last = page[-1][0]
            span = (page[0][0], last)
            data_ids: dict[tuple[Any, int], tuple[Any, ...]] = {}
            for row in {row[1]: row for row in page}.values():  # each type of the page once
                self.referenced(types, row[1], "dataset type id", f"Dataset {as_uuid(row[0])}")
            tables = {types[row[1]].tags: types[row[1]].dimensions for row in page}
            for table, dimensions in tables.items():
                columns = "".join(f', "{d}"' for d in dimensions)
                for row in self._fetch(
                    f'SELECT dataset_id, collection_id{columns} FROM "{table}" '
                    "WHERE dataset_id BETWEEN ? AND ?",
                    span,
                ):
                    data_ids[(row[0], row[1])] = row[2:]
            out = []
            for dataset_id, key, run, path, formatter, component, located in page:
                values = data_ids.get((dataset_id, run))
                if values is None:
                    raise RepositoryError(
                        f"Dataset {as_uuid(dataset_id)} of the daf_butler repository "
                        f"{self.root} has no data ID in {types[key].tags} for its run; the "
                        "registry is damaged."
                    )
                stored = (path, formatter, component) if located and path is not None else None
                out.append((dataset_id, types[key], run, values, stored))
            yield out
            page = self._fetch(f"{select} WHERE d.id > ? ORDER BY d.id LIMIT ?", (last, size))

    def members(self, table: str, collection: int, size: int) -> Iterator[list[Any]]:
        """Pages of the ids of datasets in ``collection``, by rowid on SQLite (daf_butler's
        index on ``collection_id`` keeps them in that order, so that no page sorts the
        collection), by dataset id on PostgreSQL (which has no rowid)."""
        if not self.db.rowid:
            yield from self._members_by_id(table, collection, size)
            return
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

    def _members_by_id(self, table: str, collection: int, size: int) -> Iterator[list[Any]]:
        query = f'SELECT dataset_id FROM "{table}" WHERE collection_id = ?'
        ids = [
            row[0]
            for row in self._fetch(f"{query} ORDER BY dataset_id LIMIT ?", (collection, size))
        ]
        while ids:
            yield ids
            ids = [
                row[0]
                for row in self._fetch(
                    f"{query} AND dataset_id > ? ORDER BY dataset_id LIMIT ?",
                    (collection, ids[-1], size),
                )
            ]

    def certifications(self, table: str, size: int) -> Iterator[list[tuple[Any, ...]]]:
        """Pages of ``(id, dataset id, collection key, begin, end)`` (TAI ns; `None` or
        daf_butler's bounds for unbounded), by id."""
        ranged = "timespan" in self._columns(table)  # PostgreSQL's layout: one int8range
        timespan = "timespan" if ranged else "timespan_begin, timespan_end"
        last = -1
        while True:
            page = self._fetch(
                f"SELECT id, dataset_id, collection_id, {timespan} "
                f'FROM "{table}" WHERE id > ? ORDER BY id LIMIT ?',
                (last, size),
            )
            if not page:
                return
            if ranged:
                page = [self._certification(row) for row in page]
            yield page
            last = page[-1][0]

    def _certification(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        where = f"{self.root}: validity range of dataset {as_uuid(row[1])}"
        bounds = range_bounds(row[3], where)
        if bounds is None:
            raise RepositoryError(f"{where} is NULL; the registry is damaged.")
        return (*row[:3], *bounds)

    def _columns(self, table: str) -> list[str]:
        try:
            return self.db.columns(table)
        except self.db.errors as exc:
            raise RepositoryError(
                f"The {table} table of the daf_butler repository {self.root} cannot be read "
                f"({exc}); it may be damaged."
            ) from None

    def artifact(self, path: str) -> str:
        """The local path of an artifact (strings: pathlib would intern every file name)."""
        if path.startswith("file://"):
            return path.removeprefix("file://")
        if "://" in path:
            raise RepositoryError(
                f"The daf_butler repository {self.root} records an artifact at {path}; only "
                "local files are migrated. Copy it to the datastore first."
            )
        root = self._root_text
        if path and not path.startswith("/") and root and not root.endswith("/"):
            return f"{root}/{path}"  # what os.path.join gives, without its checks
        return os.path.join(root, path)
