"""Reading daf_butler's export format as the untrusted input it is.

daf_butler (LSST's Data Butler) writes an export as one YAML document,
``description: Butler Data Repository Export``, beside the files it copied::

    version: 1.0.2 | 0                 (0 is read as 1.0.0, its older layout)
    universe_version: 8                (optional) the dimension universe's version
    universe_namespace: daf_butler     (optional)
    data:                              a list of entries, each with a 'type':
    - {type: dimension, element, records: [{field: value}, ...]}
    - {type: collection, collection_type: RUN|TAGGED|CALIBRATION|CHAINED, name,
       doc?, host?, timespan_begin?, timespan_end?, children? (CHAINED)}
    - {type: run, name}                                         (version 0)
    - {type: dataset_type, name, dimensions, storage_class, is_calibration?}
    - {type: dataset, dataset_type, run,
       records: [{dataset_id: [id], data_id: [{dim: value}], path, formatter?}]}
    - {type: associations, collection, collection_type: TAGGED, dataset_ids}
    - {type: associations, collection, collection_type: CALIBRATION,
       validity_ranges: [{timespan, dataset_ids}]}  ({begin, end, dataset_ids} in 0)

with the YAML tags ``!uuid`` (a dataset id), ``!butler_time/tai/iso`` (an
instant, TAI, nanoseconds), ``!lsst.daf.butler.Timespan`` (a mapping of
``begin`` and ``end``, or ``EMPTY``) and, in records, sphgeom's regions
(``!<lsst.sphgeom.ConvexPolygon>`` and the like, a mapping of ``encoded``), with
``!!binary`` for byte fields (``skymap.hash``). Version-0 exports number datasets with
integers, which daf_butler turns into UUIDs (version 3, in a fixed
namespace); the same ids come out here.

`read_daf_butler_export` checks the whole document and turns it into the
`Manifest` databutler's own import works from, plus what that manifest has
no room for (collection types and documentation, chains, certifications).
Dimension records are mapped onto the repository's universe: each record's
own key (``name`` or ``id`` upstream) becomes the dimension's name, times
become UTC. A dimension, or a record field with a value, that the universe
does not have is an `ExportFormatError` naming it, unless the caller asks to
leave such data out (``skip_unknown_fields``); a field that is null in the
export carries nothing and is dropped silently.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .._collection_type import CollectionType, Timespan
from .._dataset_type import DatasetType
from .._exceptions import DatabutlerError, ExportFormatError
from .._leap_seconds import utc_from_tai
from ..dimensions import Dimension, DimensionUniverse
from ._manifest import (
    Manifest,
    ManifestFile,
    ManifestRef,
    as_list,
    as_mapping,
    as_record,
    as_string,
    shortened,
)

__all__ = [
    "DESCRIPTION",
    "FORMATTERS",
    "Certification",
    "DafButlerExport",
    "is_daf_butler_export",
    "read_daf_butler_export",
]

_LOG = logging.getLogger(__name__)

#: The ``description`` of every daf_butler export.
DESCRIPTION = "Butler Data Repository Export"

#: daf_butler formatter classes and the databutler formatter that reads their files.
FORMATTERS: Mapping[str, str] = {
    "lsst.daf.butler.formatters.json.JsonFormatter": "json",
    "lsst.daf.butler.formatters.yaml.YamlFormatter": "yaml",
    "lsst.daf.butler.formatters.pickle.PickleFormatter": "pickle",
    "lsst.daf.butler.formatters.parquet.ParquetFormatter": "parquet",
    # The same formatters under their module names of 2019-2021 (in version-0 exports).
    "lsst.daf.butler.formatters.jsonFormatter.JsonFormatter": "json",
    "lsst.daf.butler.formatters.yamlFormatter.YamlFormatter": "yaml",
    "lsst.daf.butler.formatters.pickleFormatter.PickleFormatter": "pickle",
    "lsst.daf.butler.formatters.parquetFormatter.ParquetFormatter": "parquet",
    "lsst.daf.butler.formatters.fitsExposureFormatter.FitsExposureFormatter": "fits",
    # Files of these are plain FITS: databutler reads them as astropy HDU lists.
    "lsst.obs.base.formatters.fitsExposure.FitsExposureFormatter": "fits",
    "lsst.obs.base.formatters.fitsExposure.FitsImageFormatter": "fits",
    "lsst.obs.base.formatters.fitsExposure.FitsMaskFormatter": "fits",
    "lsst.obs.base.formatters.fitsExposure.FitsMaskedImageFormatter": "fits",
    "lsst.obs.base.formatters.fitsGeneric.FitsGenericFormatter": "fits",
}

# The newest format version read: major 1, minor 0 (as daf_butler itself reads).
_MAJOR, _MINOR = 1, 0
# daf_butler's namespace for the UUIDs of version-0 integer dataset ids.
_V0_NAMESPACE = uuid.UUID("4d4851f4-2890-4d41-8779-5f38a3f5062b")
_ENTRY_TYPES = ("dimension", "collection", "run", "dataset_type", "dataset", "associations")
_TIME_TAG = "!butler_time/tai/iso"
_TIMESPAN_TAG = "!lsst.daf.butler.Timespan"
# sphgeom's regions, as daf_butler writes them in records (tag lsst.sphgeom.<class>).
_REGION_TAGS = tuple(
    f"lsst.sphgeom.{name}"
    for name in ("ConvexPolygon", "Ellipse", "Circle", "Box", "UnionRegion", "IntersectionRegion")
)
# Dimensions daf_butler keeps no records of, whose values databutler does keep
# as key-only records: made from the values the other records name.
_RECORDLESS = ("band",)
_TIME_TEXT = re.compile(r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?")
_SNIFF_BYTES = 65536
_SKIP_HINT = (
    "Pass skip_unknown_fields=True (databutler import --skip-unknown-fields) to import "
    "without them, or skip_dimensions=True (--skip-dimensions) to import no dimension "
    "records at all."
)


@dataclass(frozen=True, slots=True)
class Certification:
    """Datasets certified in a CALIBRATION collection over one validity range."""

    collection: str
    timespan: Timespan
    ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True, slots=True)
class DafButlerExport:
    """A checked daf_butler export, as databutler imports it.

    ``manifest`` holds the dataset types, dimension records (mapped to the
    universe), runs, files and tags; the rest is what it has no room for.
    """

    manifest: Manifest
    collections: dict[str, CollectionType]
    docs: dict[str, str]
    chains: dict[str, tuple[str, ...]]
    certifications: tuple[Certification, ...]
    #: What ``skip_unknown_fields`` left out: dimension, or dimension.field, to a count.
    skipped: dict[str, int] = field(default_factory=dict)


def is_daf_butler_export(file: Path) -> bool:
    """Whether ``file`` starts like a daf_butler export (its ``description`` line)."""
    try:
        with open(file, "rb") as stream:
            head = stream.read(_SNIFF_BYTES)
    except OSError:
        return False
    return re.search(rb"(?m)^description:\s*['\"]?Butler Data Repository Export", head) is not None


def read_daf_butler_export(
    file: Path,
    universe: DimensionUniverse,
    *,
    skip_dimensions: bool = False,
    skip_unknown_fields: bool = False,
) -> DafButlerExport:
    """Read and check the daf_butler export ``file``; its artifacts lie beside it.

    Parameters
    ----------
    file : `pathlib.Path`
        The export's YAML file.
    universe : `DimensionUniverse`
        The dimensions of the repository that imports it.
    skip_dimensions : `bool`, optional
        Leave the dimension records out (they are not checked either).
    skip_unknown_fields : `bool`, optional
        Leave out records of dimensions, and record fields, that ``universe``
        does not have, instead of refusing the export.

    Raises
    ------
    ExportFormatError
        If the file cannot be parsed, is of a version not read here, has an
        entry that is malformed, names a formatter databutler has no
        counterpart of, or has data the universe has no room for.
    """
    where = str(file)
    top = as_mapping(_load(file), where, "the export")
    if top.get("description") != DESCRIPTION:
        raise ExportFormatError(
            f"{where} is not a daf_butler export: its 'description' is "
            f"{shortened(top.get('description'))}, not {DESCRIPTION!r}."
        )
    legacy = _version(top.get("version"), where)
    reader = _Reader(where, universe, legacy)
    for i, entry in enumerate(as_list(top.get("data"), where, "'data'")):
        reader.entry(entry, f"{where}: data[{i}]")
    export = reader.finish(file.parent, skip_dimensions, skip_unknown_fields)
    if export.skipped:
        _LOG.warning(
            "Left out of the import of %s (skip_unknown_fields): %s.",
            where,
            ", ".join(f"{name} ({n} record(s))" for name, n in sorted(export.skipped.items())),
        )
    return export


# -- YAML -----------------------------------------------------------------------------------


def _load(file: Path) -> Any:
    import yaml

    # libyaml's CSafeLoader (when PyYAML has it) is SafeLoader's constructor on a C
    # parser, about six times faster on a large export; either knows only plain
    # YAML types, and the subclass adds daf_butler's three tags and nothing else.
    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc]
        """The safe loader, and daf_butler's three tags; any other tag is an error."""

    Loader.add_constructor("!uuid", _construct_uuid)
    Loader.add_constructor(_TIME_TAG, _construct_time)
    Loader.add_constructor(_TIMESPAN_TAG, _construct_timespan)
    for tag in _REGION_TAGS:
        Loader.add_constructor(tag, _construct_region)
    try:
        text = file.read_bytes()
        return yaml.load(text, Loader=Loader)
    except OSError as exc:
        raise ExportFormatError(f"{file} cannot be read: {exc.strerror or exc}.") from None
    except yaml.constructor.ConstructorError as exc:
        unknown = re.search(r"tag '([^']*)'", str(exc))
        if unknown and "could not determine a constructor" in str(exc):
            raise ExportFormatError(
                f"{file} uses the YAML tag {unknown.group(1)!r}{_mark(exc)}, which a daf_butler "
                f"export does not have (only !uuid, {_TIME_TAG}, {_TIMESPAN_TAG} and "
                "sphgeom regions); refusing to guess what it means. Re-export it with "
                "daf_butler."
            ) from None
        raise ExportFormatError(f"{file} has a malformed tagged value: {exc}") from None
    except yaml.YAMLError as exc:
        raise ExportFormatError(f"{file} is not valid YAML: {exc}") from None
    except (UnicodeDecodeError, RecursionError) as exc:
        raise ExportFormatError(f"{file} cannot be parsed: {exc}") from None


def _mark(exc: Any) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f" (line {mark.line + 1})" if mark is not None else ""


def _constructor_error(node: Any, problem: str) -> Exception:
    import yaml

    error: Exception = yaml.constructor.ConstructorError(None, None, problem, node.start_mark)
    return error


def _construct_uuid(loader: Any, node: Any) -> uuid.UUID:
    value = loader.construct_scalar(node)
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise _constructor_error(node, f"!uuid {shortened(value)} is not a UUID") from None


def _construct_time(loader: Any, node: Any) -> datetime.datetime:
    value = loader.construct_scalar(node)
    try:
        return tai_to_utc(str(value))
    except ValueError as exc:
        raise _constructor_error(node, f"{_TIME_TAG} {shortened(value)}: {exc}") from None


def _construct_timespan(loader: Any, node: Any) -> _Bounds:
    import yaml

    if isinstance(node, yaml.ScalarNode):
        if loader.construct_scalar(node) == "EMPTY":
            return _Bounds(None, None, empty=True)
        raise _constructor_error(node, f"{_TIMESPAN_TAG} is a mapping of begin and end, or EMPTY")
    if not isinstance(node, yaml.MappingNode):
        raise _constructor_error(node, f"{_TIMESPAN_TAG} is a mapping of begin and end, or EMPTY")
    bounds = loader.construct_mapping(node, deep=True)
    if set(bounds) - {"begin", "end"}:
        raise _constructor_error(node, f"{_TIMESPAN_TAG} has only 'begin' and 'end'")
    return _Bounds(bounds.get("begin"), bounds.get("end"))


def _construct_region(loader: Any, node: Any) -> _Region:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise _constructor_error(node, f"{node.tag} is a mapping with 'encoded'")
    fields = loader.construct_mapping(node)
    encoded = fields.get("encoded")
    if set(fields) != {"encoded"} or not isinstance(encoded, str):
        raise _constructor_error(node, f"{node.tag} is a mapping with 'encoded' only")
    return _Region(node.tag.removeprefix("lsst.sphgeom."), encoded)


@dataclass(frozen=True, slots=True)
class _Region:
    """A sphgeom region as written: its class and encoded bytes (hexadecimal)."""

    kind: str
    encoded: str


@dataclass(frozen=True, slots=True)
class _Bounds:
    """A ``!lsst.daf.butler.Timespan`` as written, its bounds still unchecked."""

    begin: Any
    end: Any
    empty: bool = False


def tai_to_utc(text: str) -> datetime.datetime:
    """The UTC instant (microseconds, aware) of a TAI time ``YYYY-MM-DD HH:MM:SS[.fffffffff]``.

    The time is rounded to the microsecond: databutler keeps times to the
    microsecond. Leap seconds are those announced up to 2017 (TAI - UTC = 37 s).

    Raises
    ------
    ValueError
        If the text is not such a time, or it is before 1972 (when UTC started
        counting whole leap seconds).
    """
    match = _TIME_TEXT.fullmatch(text.strip())
    if match is None:
        raise ValueError("expected a TAI time as 'YYYY-MM-DD HH:MM:SS.fffffffff'")
    day, clock, fraction = match.groups()
    nanoseconds = int((fraction or "0").ljust(9, "0"))
    tai = datetime.datetime.fromisoformat(f"{day}T{clock}").replace(
        tzinfo=datetime.UTC
    ) + datetime.timedelta(microseconds=round(nanoseconds / 1000))
    try:
        return utc_from_tai(tai)
    except ValueError:
        raise ValueError("times before 1972 (TAI) are not converted to UTC here") from None


def _utc(value: Any, where: str, label: str) -> datetime.datetime | None:
    """A bound or record time as an aware UTC datetime (plain YAML timestamps are UTC)."""
    if value is None or (isinstance(value, datetime.datetime) and value.tzinfo is datetime.UTC):
        return value
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=datetime.UTC)
        return value.astimezone(datetime.UTC)
    raise ExportFormatError(
        f"{where}: {label} must be a time ({_TIME_TAG} or a YAML timestamp), not "
        f"{type(value).__name__} {shortened(value)}."
    )


# -- the document ---------------------------------------------------------------------------


def _version(value: Any, where: str) -> bool:
    """Check the format version; whether it is the legacy version 0."""
    if value == 0 and not isinstance(value, bool):
        return True
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", str(value)) if isinstance(value, str) else None
    if match is None:
        raise ExportFormatError(
            f"{where}: 'version' is {shortened(value)}; a daf_butler export has version 0 or "
            "'MAJOR.MINOR.PATCH'."
        )
    major, minor = int(match.group(1)), int(match.group(2))
    if major != _MAJOR or minor > _MINOR:
        raise ExportFormatError(
            f"{where} is a daf_butler export of format version {value}; databutler reads "
            f"versions 0 and {_MAJOR}.{_MINOR}.x. Export it again with a daf_butler release "
            f"that writes {_MAJOR}.{_MINOR}.x."
        )
    return False


@dataclass
class _Dataset:
    id: uuid.UUID
    dataset_type: str
    run: str
    data_id: dict[str, int | str]


@dataclass
class _File:
    path: str
    formatter: str | None
    datasets: list[_Dataset]
    where: str


class _Reader:
    """Collects the entries of the ``data`` list, checking each."""

    def __init__(self, where: str, universe: DimensionUniverse, legacy: bool) -> None:
        self.where = where
        self.universe = universe
        self.legacy = legacy
        self.records: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
        self.collections: dict[str, CollectionType] = {}
        self.docs: dict[str, str] = {}
        self.chains: dict[str, tuple[str, ...]] = {}
        self.runs: list[str] = []
        self.types: dict[str, tuple[str, tuple[str, ...], str, bool]] = {}
        self.files: list[_File] = []
        self.tags: dict[str, list[tuple[str, uuid.UUID]]] = {}
        self.certifications: list[tuple[str, str, Timespan, list[uuid.UUID]]] = []

    def entry(self, entry: Any, where: str) -> None:
        fields = as_mapping(entry, where, "the entry")
        kind = fields.get("type")
        if kind not in _ENTRY_TYPES:
            raise ExportFormatError(
                f"{where}: 'type' is {shortened(kind)}; a daf_butler export has entries of type "
                f"{', '.join(_ENTRY_TYPES)}."
            )
        getattr(self, f"_{kind}")(fields, f"{where} ({kind})")

    def _dimension(self, fields: Mapping[Any, Any], where: str) -> None:
        element = as_string(fields.get("element"), where, "'element'")
        rows = self.records.setdefault(element, [])
        for i, row in enumerate(as_list(fields.get("records"), where, "'records'")):
            label = f"records[{i}]"
            values = "strings, numbers, booleans, bytes, times, regions or null"
            record = as_record(row, where, label, _RECORD_VALUES, values)
            rows.append((f"{where}: {label}", record))

    def _collection(self, fields: Mapping[Any, Any], where: str) -> None:
        name = as_string(fields.get("name"), where, "'name'")
        kind_name = fields.get("collection_type")
        kind = _collection_type(kind_name, where)
        self._declare(name, kind, where)
        doc = fields.get("doc")
        if doc is not None:
            self.docs[name] = as_string(doc, where, "'doc'")
        if kind is CollectionType.RUN:
            self.runs.append(name)
        elif kind is CollectionType.CHAINED:
            children = []
            for i, child in enumerate(as_list(fields.get("children"), where, "'children'")):
                # Old exports give [name, dataset type restriction]; restrictions are gone.
                if isinstance(child, list) and len(child) == 2:
                    child = child[0]
                children.append(as_string(child, where, f"children[{i}]"))
            self.chains[name] = tuple(children)

    def _run(self, fields: Mapping[Any, Any], where: str) -> None:
        name = as_string(fields.get("name"), where, "'name'")
        self._declare(name, CollectionType.RUN, where)
        self.runs.append(name)

    def _declare(self, name: str, kind: CollectionType, where: str) -> None:
        known = self.collections.setdefault(name, kind)
        if known is not kind:
            raise ExportFormatError(
                f"{where}: collection {name!r} is declared both {known.name} and {kind.name}."
            )

    def _dataset_type(self, fields: Mapping[Any, Any], where: str) -> None:
        name = as_string(fields.get("name"), where, "'name'")
        dimensions = tuple(
            as_string(d, where, f"dimensions[{i}]")
            for i, d in enumerate(as_list(fields.get("dimensions"), where, "'dimensions'"))
        )
        storage_class = as_string(fields.get("storage_class"), where, "'storage_class'")
        is_calibration = fields.get("is_calibration", False)
        if not isinstance(is_calibration, bool):
            raise ExportFormatError(f"{where}: 'is_calibration' must be true or false.")
        definition = (where, tuple(sorted(dimensions)), storage_class, is_calibration)
        known = self.types.setdefault(name, definition)
        if known[1:] != definition[1:]:
            raise ExportFormatError(
                f"{where}: dataset type {name!r} is defined differently in {known[0]}."
            )

    def _dataset(self, fields: Mapping[Any, Any], where: str) -> None:
        dataset_type = as_string(fields.get("dataset_type"), where, "'dataset_type'")
        run = as_string(fields.get("run"), where, "'run'")
        for i, row in enumerate(as_list(fields.get("records"), where, "'records'")):
            label = f"{where}: records[{i}]"
            record = as_mapping(row, label, "the record")
            ids = record.get("dataset_id")
            data_ids = record.get("data_id")
            # A file of one dataset may give its id and data ID alone, not in lists.
            ids = ids if isinstance(ids, list) else [ids]
            data_ids = data_ids if isinstance(data_ids, list) else [data_ids]
            if len(ids) != len(data_ids) or not ids:
                raise ExportFormatError(
                    f"{label}: 'dataset_id' and 'data_id' must list the same (non-zero) number "
                    "of datasets."
                )
            path = record.get("path")
            if path is None:
                raise ExportFormatError(
                    f"{label}: the dataset has no 'path': the export holds no file for it "
                    "(exported without a datastore?). Export it again with its files."
                )
            path = as_string(path, label, "'path'")
            formatter = record.get("formatter")
            if formatter is not None:
                formatter = _formatter(as_string(formatter, label, "'formatter'"), label, path)
            datasets = [
                _Dataset(
                    self._id(dataset_id, label, f"dataset_id[{n}]"),
                    dataset_type,
                    run,
                    _data_id(data_id, label, f"data_id[{n}]"),
                )
                for n, (dataset_id, data_id) in enumerate(zip(ids, data_ids, strict=True))
            ]
            self.files.append(_File(path, formatter, datasets, label))

    def _associations(self, fields: Mapping[Any, Any], where: str) -> None:
        collection = as_string(fields.get("collection"), where, "'collection'")
        kind = _collection_type(fields.get("collection_type"), where)
        if kind is CollectionType.TAGGED:
            ids = as_list(fields.get("dataset_ids"), where, "'dataset_ids'")
            members = self.tags.setdefault(collection, [])
            members.extend(
                (where, self._id(i, where, f"dataset_ids[{n}]")) for n, i in enumerate(ids)
            )
        elif kind is CollectionType.CALIBRATION:
            ranges = as_list(fields.get("validity_ranges"), where, "'validity_ranges'")
            for n, entry in enumerate(ranges):
                label = f"validity_ranges[{n}]"
                found = as_mapping(entry, where, label)
                timespan = self._timespan(found, where, label)
                ids = [
                    self._id(i, where, f"{label}.dataset_ids[{m}]")
                    for m, i in enumerate(as_list(found.get("dataset_ids"), where, label))
                ]
                self.certifications.append((where, collection, timespan, ids))
        else:
            raise ExportFormatError(
                f"{where}: associations are of TAGGED or CALIBRATION collections, not {kind.name}."
            )

    def _timespan(self, found: Mapping[Any, Any], where: str, label: str) -> Timespan:
        if "timespan" in found:
            bounds = found["timespan"]
            if not isinstance(bounds, _Bounds):
                raise ExportFormatError(
                    f"{where}: {label}.timespan must be tagged {_TIMESPAN_TAG}, not "
                    f"{type(bounds).__name__} {shortened(bounds)}."
                )
        else:  # the older form, 'begin' and 'end' beside the ids
            bounds = _Bounds(found.get("begin"), found.get("end"))
        if bounds.empty:
            raise ExportFormatError(
                f"{where}: {label} is an empty validity range; a certification needs a "
                "range with time in it. Remove it from the export."
            )
        begin = _utc(bounds.begin, where, f"{label} begin")
        end = _utc(bounds.end, where, f"{label} end")
        try:
            return Timespan(begin, end)
        except ValueError as exc:
            raise ExportFormatError(f"{where}: {label}: {exc}") from None

    def _id(self, value: Any, where: str, label: str) -> uuid.UUID:
        if isinstance(value, uuid.UUID):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and self.legacy:
            # Version 0 numbered datasets; daf_butler derives these UUIDs from the numbers.
            return uuid.uuid3(_V0_NAMESPACE, str(value))
        if isinstance(value, str):
            try:
                return uuid.UUID(value)
            except ValueError:
                pass
        raise ExportFormatError(
            f"{where}: {label} is {shortened(value)}; a dataset id is a !uuid"
            + (" or, in a version-0 export, an integer." if self.legacy else ".")
        )

    # -- putting it together ---------------------------------------------------------------

    def finish(
        self, directory: Path, skip_dimensions: bool, skip_unknown_fields: bool
    ) -> DafButlerExport:
        ids: dict[uuid.UUID, _Dataset] = {}
        for entry in self.files:
            for dataset in entry.datasets:
                if dataset.dataset_type not in self.types:
                    raise ExportFormatError(
                        f"{entry.where}: dataset type {dataset.dataset_type!r} has no "
                        "dataset_type entry in the export."
                    )
                if dataset.id in ids:
                    raise ExportFormatError(
                        f"{entry.where}: dataset {dataset.id} is listed twice in the export."
                    )
                ids[dataset.id] = dataset
                if dataset.run not in self.collections:
                    self.collections[dataset.run] = CollectionType.RUN
                    self.runs.append(dataset.run)
                elif self.collections[dataset.run] is not CollectionType.RUN:
                    raise ExportFormatError(
                        f"{entry.where}: datasets are in run {dataset.run!r}, which the export "
                        f"declares a {self.collections[dataset.run].name} collection."
                    )
        types = self._dataset_types()
        tags = self._tags(ids)
        certifications = self._certifications(ids, types)
        for chain, children in self.chains.items():
            if chain in children:
                raise ExportFormatError(f"{self.where}: chain {chain!r} names itself as a child.")
        skipped: dict[str, int] = {}
        records: dict[str, list[dict[str, Any]]] = {}
        if not skip_dimensions:
            _drop_default_groups(self.universe, self.records)
            records = _map_records(self.universe, self.records, skip_unknown_fields, skipped)
            _add_recordless(self.universe, records, [d.data_id for d in ids.values()])
        manifest = Manifest(
            location=Path(self.where),
            artifacts=_artifact_mode(directory, self.files, self.where),
            dataset_types=tuple(types.values()),
            dimensions=records,
            runs=tuple(dict.fromkeys(self.runs)),
            tags=tags,
            files=tuple(
                ManifestFile(
                    _manifest_path(entry.path),
                    entry.formatter,
                    tuple(
                        ManifestRef(d.id, d.dataset_type, d.run, d.data_id) for d in entry.datasets
                    ),
                )
                for entry in self.files
            ),
        )
        collections: dict[str, CollectionType] = {
            name: kind for name, kind in self.collections.items() if kind is not CollectionType.RUN
        }
        for tag in tags:
            collections.setdefault(tag, CollectionType.TAGGED)
        for certification in certifications:
            collections.setdefault(certification.collection, CollectionType.CALIBRATION)
        for name in list(tags) + [c.collection for c in certifications]:
            expected = CollectionType.TAGGED if name in tags else CollectionType.CALIBRATION
            if collections[name] is not expected:
                raise ExportFormatError(
                    f"{self.where}: collection {name!r} has {expected.name} associations but "
                    f"is declared {collections[name].name}."
                )
        return DafButlerExport(
            manifest, collections, self.docs, self.chains, tuple(certifications), skipped
        )

    def _dataset_types(self) -> dict[str, DatasetType]:
        """The dataset types on the universe.

        daf_butler lists a type's implied dimensions too; one the universe
        does not have is left out when no data ID of the type has a value for
        it (it was implied, and its value lives in records). A required one
        is an error: the datasets could not be identified.
        """
        keys: dict[str, set[str]] = {}
        for entry in self.files:
            for dataset in entry.datasets:
                keys.setdefault(dataset.dataset_type, set()).update(dataset.data_id)
        out = {}
        for name, (where, dimensions, storage_class, is_calibration) in self.types.items():
            unknown = [d for d in dimensions if d not in self.universe]
            needed = [d for d in unknown if name not in keys or d in keys[name]]
            if needed:
                raise ExportFormatError(
                    f"{where}: dataset type {name!r} has dimension(s) {', '.join(needed)}, "
                    "which databutler's dimension universe does not have "
                    f"({', '.join(self.universe.names)}); its datasets cannot be imported. "
                    "Leave them out of the export."
                )
            known = [d for d in dimensions if d in self.universe]
            try:
                out[name] = DatasetType(name, known, storage_class, isCalibration=is_calibration)
            except (DatabutlerError, ValueError, TypeError) as exc:
                raise ExportFormatError(
                    f"{where}: dataset type {name!r} is not valid here: {exc}"
                ) from None
        return out

    def _tags(self, ids: Mapping[uuid.UUID, _Dataset]) -> dict[str, list[uuid.UUID]]:
        tags: dict[str, list[uuid.UUID]] = {}
        for tag, members in self.tags.items():
            for where, dataset_id in members:
                if dataset_id not in ids:
                    raise ExportFormatError(
                        f"{where}: {tag!r} tags dataset {dataset_id}, which the export does not "
                        "hold; export the tagged datasets too."
                    )
            tags[tag] = list(dict.fromkeys(i for _, i in members))
        return tags

    def _certifications(
        self, ids: Mapping[uuid.UUID, _Dataset], types: Mapping[str, DatasetType]
    ) -> list[Certification]:
        out = []
        for where, collection, timespan, members in self.certifications:
            for dataset_id in members:
                dataset = ids.get(dataset_id)
                if dataset is None:
                    raise ExportFormatError(
                        f"{where}: {collection!r} certifies dataset {dataset_id}, which the "
                        "export does not hold; export the certified datasets too."
                    )
                if not types[dataset.dataset_type].isCalibration:
                    raise ExportFormatError(
                        f"{where}: {collection!r} certifies dataset {dataset_id} of "
                        f"{dataset.dataset_type!r}, which is not a calibration type."
                    )
            out.append(Certification(collection, timespan, tuple(members)))
        return out


_RECORD_VALUES = (str, int, float, bool, type(None), bytes, datetime.datetime, _Region, _Bounds)
# How daf_butler's exports write a record's timespan: two times beside the other fields.
_TIMESPAN_FIELDS = ("datetime_begin", "datetime_end")
# The type code (first byte) of sphgeom's encoded regions, by class.
_REGION_CODES = {
    "Box": b"b",
    "Circle": b"c",
    "ConvexPolygon": b"p",
    "Ellipse": b"e",
    "UnionRegion": b"u",
    "IntersectionRegion": b"i",
}


def _region_bytes(value: _Region, where: str, label: str) -> bytes:
    """A sphgeom region as its encoded bytes (what daf_butler's registry stores)."""
    try:
        data = bytes.fromhex(value.encoded)
    except ValueError:
        raise ExportFormatError(
            f"{where}: {label} ({value.kind}) has 'encoded' {shortened(value.encoded)}, which "
            "is not hexadecimal."
        ) from None
    if not data or data[:1] != _REGION_CODES.get(value.kind, data[:1]):
        raise ExportFormatError(
            f"{where}: {label} is tagged lsst.sphgeom.{value.kind} but its encoded bytes do "
            "not start with that class's type code."
        )
    return data


def _record_timespan(
    row: Mapping[str, Any], name: str, where: str
) -> tuple[Timespan | None, tuple[str, ...]]:
    """The timespan of a daf_butler record, and the export fields it came from."""
    if isinstance(row.get(name), _Bounds):
        bounds: _Bounds = row[name]
        used: tuple[str, ...] = (name,)
    elif any(row.get(f) is not None for f in _TIMESPAN_FIELDS):
        bounds = _Bounds(row.get(_TIMESPAN_FIELDS[0]), row.get(_TIMESPAN_FIELDS[1]))
        used = _TIMESPAN_FIELDS
    else:
        return None, tuple(f for f in (name, *_TIMESPAN_FIELDS) if f in row)
    if bounds.empty:
        return None, used
    begin = _utc(bounds.begin, where, f"{used[0]}")
    end = _utc(bounds.end, where, f"{used[-1]}")
    try:
        return Timespan(begin, end), used
    except ValueError as exc:
        raise ExportFormatError(f"{where}: {name}: {exc}") from None


def _map_records(
    universe: DimensionUniverse,
    found: Mapping[str, list[tuple[str, Mapping[str, Any]]]],
    skip_unknown: bool,
    skipped: dict[str, int],
) -> dict[str, list[dict[str, Any]]]:
    """daf_butler records as records of ``universe``; refuses (or skips) what has no place.

    A record's timespan (``datetime_begin`` and ``datetime_end`` in the
    export, or a ``timespan``) goes to the element's ``timespan`` field when
    it has one, and to ``datetime_begin``/``datetime_end`` fields otherwise
    (databutler's version-1 universe). Regions become their encoded bytes
    for ``region`` fields; ``bytes`` fields (``skymap.hash``) keep bytes,
    which string fields hold as hexadecimal.
    """
    problems: list[str] = []
    out: dict[str, list[dict[str, Any]]] = {}
    for element, rows in found.items():
        if not rows:
            continue
        dimension = universe.get_element(element)
        if dimension is None:
            if skip_unknown:
                skipped[element] = skipped.get(element, 0) + len(rows)
            else:
                problems.append(f"{len(rows)} record(s) of dimension {element!r}")
            continue
        own_key = dimension.key.name if isinstance(dimension, Dimension) else None
        types = {f.name: f.dtype for f in dimension.metadata}
        allowed = {element, *dimension.required, *dimension.implied, *types}
        timespans = [name for name, dtype in types.items() if dtype == "timespan"]
        unknown: dict[str, int] = {}
        mapped = []
        for where, row in rows:
            record: dict[str, Any] = {}
            taken: set[str] = set()
            for name in timespans[:1]:
                record[name], used = _record_timespan(row, name, where)
                taken.update(used)
            for key, value in row.items():
                if key in taken:
                    continue
                # The record's own key is 'name' or 'id' upstream (as in the
                # universe's description); the other dimensions go by name.
                name = element if key == own_key and element not in row else key
                if name not in allowed:
                    if value is not None:
                        unknown[name] = unknown.get(name, 0) + 1
                    continue
                dtype = types.get(name)
                if dtype == "datetime":
                    value = _utc(value, where, f"{key}")
                elif dtype == "region" and isinstance(value, _Region):
                    value = _region_bytes(value, where, key)
                elif isinstance(value, bytes) and dtype == "string":
                    value = value.hex()  # daf_butler's hash fields (skymap.hash) are bytes
                elif isinstance(value, bytes) and dtype == "bytes":
                    pass
                elif isinstance(value, datetime.datetime | bytes | _Region | _Bounds):
                    raise ExportFormatError(
                        f"{where}: {key} is a {type(value).__name__}, which {element}.{name} "
                        "cannot hold here."
                    )
                record[name] = value
            mapped.append(record)
        for name, count in unknown.items():
            if skip_unknown:
                skipped[f"{element}.{name}"] = count
            else:
                problems.append(f"field {element}.{name} (set in {count} record(s))")
        out[element] = mapped
    if problems:
        raise ExportFormatError(
            f"The export has dimension data databutler's universe has no place for: "
            f"{'; '.join(problems)}. {_SKIP_HINT}"
        )
    return out


def _drop_default_groups(
    universe: DimensionUniverse, found: dict[str, list[tuple[str, Mapping[str, Any]]]]
) -> None:
    """Leave out the groups that only name their exposure, when the universe has no groups.

    daf_butler puts every exposure in a ``group``; one named after the
    exposure's id is the default its metadata translators give (and what
    databutler writes in its daf_butler exports): it says nothing the
    exposure does not, so it is dropped rather than refused as unknown.
    """
    if "group" in universe or "exposure" not in found:
        return
    default: set[tuple[Any, Any]] = set()
    other: set[tuple[Any, Any]] = set()
    exposures = []
    for where, row in found["exposure"]:
        group = row.get("group")
        if group is not None and group == str(row.get("id")):
            default.add((row.get("instrument"), group))
            row = {k: v for k, v in row.items() if k != "group"}
        elif group is not None:
            other.add((row.get("instrument"), group))
        exposures.append((where, row))
    found["exposure"] = exposures
    if "group" in found:
        dropped = default - other
        found["group"] = [
            (where, row)
            for where, row in found["group"]
            if (row.get("instrument"), row.get("name")) not in dropped
            or set(row) != {"instrument", "name"}
        ]


def _add_recordless(
    universe: DimensionUniverse,
    records: dict[str, list[dict[str, Any]]],
    data_ids: Iterable[Mapping[str, Any]],
) -> None:
    """Key-only records of dimensions daf_butler keeps none of (band), from the values used."""
    for name in _RECORDLESS:
        if name not in universe or name in records:
            continue
        values = {row[name] for rows in records.values() for row in rows if name in row}
        values.update(d[name] for d in data_ids if name in d)
        if values:
            records[name] = [{name: value} for value in sorted(values, key=str)]


def _artifact_mode(directory: Path, files: list[_File], where: str) -> str:
    """How the export holds its files, in the terms of databutler's manifest.

    Relative paths are inside the export (``linked`` when a link among them
    leads out: those are copied, never moved); absolute paths and
    ``file://`` URIs are ``external``. An export mixes the two only if edited.
    """
    absolute = [f for f in files if _is_absolute(f.path)]
    if absolute and len(absolute) != len(files):
        raise ExportFormatError(
            f"{where}: some files are given by absolute path (e.g. {absolute[0].path!r}) and "
            "some relative to the export; export again with one transfer mode."
        )
    if absolute:
        return "external"
    root = Path(os.path.realpath(directory))
    for entry in files:
        parts = PurePosixPath(entry.path).parts
        if ".." in parts or "\x00" in entry.path:
            continue  # refused, naming the entry, when its path is resolved
        target = Path(os.path.realpath(directory.joinpath(*parts)))
        if not target.is_relative_to(root):
            return "linked"
    return "inside"


def _is_absolute(path: str) -> bool:
    return path.startswith(("/", "file://", "s3://")) or os.path.isabs(path)


def _manifest_path(path: str) -> str:
    if path.startswith("/"):
        return Path(path).as_uri()
    return path


def _formatter(name: str, where: str, path: str) -> str:
    mapped = FORMATTERS.get(name)
    if mapped is None:
        readers = ", ".join(sorted(set(FORMATTERS.values())))
        raise ExportFormatError(
            f"{where}: file {path!r} was written by the daf_butler formatter {name!r}, which "
            f"databutler has no counterpart of (it reads files of {readers} here). Convert "
            "those datasets in daf_butler to a storage class written by one of these (or "
            "leave them out of the export) and export again."
        )
    return mapped


def _collection_type(value: Any, where: str) -> CollectionType:
    names = [kind.name for kind in CollectionType]
    if not isinstance(value, str) or value not in names:
        raise ExportFormatError(
            f"{where}: 'collection_type' is {shortened(value)}; expected one of {', '.join(names)}."
        )
    return CollectionType[value]


def _data_id(value: Any, where: str, label: str) -> dict[str, int | str]:
    data_id = as_mapping(value, where, label)
    out: dict[str, int | str] = {}
    for key, item in data_id.items():
        as_string(key, where, f"a key of {label}")
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise ExportFormatError(
                f"{where}: {label} value {key}={shortened(item)} must be an integer or a string."
            )
        out[key] = item
    return out
