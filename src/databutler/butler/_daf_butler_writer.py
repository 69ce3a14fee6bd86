"""Writing an export in daf_butler's format, for lsst-daf-butler's ``butler import``.

The document is the one `._daf_butler_export` reads (see its docstring),
written as daf_butler's current reader (format 1.0.x) expects it::

    description: Butler Data Repository Export
    version: 1.0.2
    universe_version: 8
    universe_namespace: daf_butler
    data: [dimension ..., collection ..., dataset_type / dataset ..., associations ...]

Everything is checked before a byte is written (`plan_daf_butler_export`):
databutler's records are mapped onto daf_butler's default dimension universe,
and a dimension, a dimension's shape (what it requires or implies) or a
record field with a value that universe has no place for is an
`ExportFormatError` naming it; so are storage classes only databutler has,
and detectors or exposures daf_butler's file templates would name alike
(its import would then keep one dataset per file). The mapping is the
inverse of the import's:

- a record's own key goes back to daf_butler's field name (``name`` or ``id``);
- times become TAI (``!butler_time/tai/iso``, nanosecond digits);
- a record's ``timespan`` (databutler's version-2 universe, or a daf_butler one),
  or its ``datetime_begin``/``datetime_end`` (version 1), is written as the two
  times ``datetime_begin`` and ``datetime_end`` daf_butler's exports hold;
- a ``region`` (its encoded bytes here) becomes sphgeom's tagged mapping
  (``!<lsst.sphgeom.ConvexPolygon> {encoded: hex}``, the class from its first byte);
- ``skymap.hash`` (bytes, or hexadecimal digits in version 1) becomes bytes (``!!binary``);
- ``band`` records are not written (daf_butler derives bands from physical filters);
- daf_butler's exposures each belong to a ``group``, which databutler's version-1
  universe does not have: there every exposure is given the group named after its
  id, as daf_butler's metadata translators do by default, and the import drops such
  groups again. A universe with groups writes its own.

Formatters map back to daf_butler's classes (`formatter_class`); a file whose
formatter daf_butler has no counterpart of is refused too, by `render`, before
the export appears at its destination.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from .._collection_type import CollectionType, Timespan
from .._dataset_ref import DatasetRef
from .._exceptions import ExportFormatError
from .._file_dataset import FileDataset
from .._leap_seconds import tai_from_utc
from ..dimensions import DataCoordinate, DimensionUniverse
from ..registry import SqlRegistry
from ._daf_butler_export import DESCRIPTION

__all__ = [
    "FORMAT_VERSION",
    "UNIVERSE_NAMESPACE",
    "UNIVERSE_VERSION",
    "DafButlerPlan",
    "formatter_class",
    "plan_daf_butler_export",
    "utc_to_tai",
]

#: The export format version written: daf_butler reads 1.0.x (its writer says 1.0.2).
FORMAT_VERSION = "1.0.2"
#: The daf_butler dimension universe the records are mapped onto.
UNIVERSE_NAMESPACE = "daf_butler"
UNIVERSE_VERSION = 8

#: databutler formatters and the daf_butler formatter class that reads their files.
_FORMATTER_CLASSES: Mapping[str, str] = {
    "json": "lsst.daf.butler.formatters.json.JsonFormatter",
    "yaml": "lsst.daf.butler.formatters.yaml.YamlFormatter",
    "pickle": "lsst.daf.butler.formatters.pickle.PickleFormatter",
    "parquet": "lsst.daf.butler.formatters.parquet.ParquetFormatter",
}
# FITS files go back with the formatter daf_butler's own configuration gives
# their storage class (lsst.obs.base's, for the afw types the import brought in).
_OBS_BASE = "lsst.obs.base.formatters"
_FITS_FORMATTER_CLASSES: Mapping[str, str] = {
    **{
        name: f"{_OBS_BASE}.fitsExposure.FitsExposureFormatter"
        for name in ("Exposure", "ExposureF", "ExposureI", "DecoratedImageU")
    },
    **{
        name: f"{_OBS_BASE}.fitsExposure.FitsImageFormatter"
        for name in ("Image", "ImageF", "ImageU")
    },
    "Mask": f"{_OBS_BASE}.fitsExposure.FitsMaskFormatter",
    "MaskX": f"{_OBS_BASE}.fitsExposure.FitsMaskFormatter",
    "MaskedImageF": f"{_OBS_BASE}.fitsExposure.FitsMaskedImageFormatter",
}

# The one file extension each of those formatters accepts (daf_butler checks it at ingest).
_EXTENSIONS: Mapping[str, str] = {
    _FORMATTER_CLASSES["json"]: ".json",
    _FORMATTER_CLASSES["yaml"]: ".yaml",
    _FORMATTER_CLASSES["pickle"]: ".pickle",
    _FORMATTER_CLASSES["parquet"]: ".parq",
}
# databutler's own storage classes that daf_butler's configuration does not define
# (daf_butler accepts any name at import, and fails only when the dataset is read).
_NOT_UPSTREAM = frozenset({"float", "Pickle", "Text", "Bytes", "Fits", "ExposureLike"})
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_FIXES = (
    "Export without those datasets (select them with refs=... or --where), or export in "
    "databutler's own format (format='yaml')."
)


@dataclass(frozen=True, slots=True)
class _Element:
    """A dimension of daf_butler's default universe, as its export records write it."""

    key: str
    key_type: type
    requires: frozenset[str] = frozenset()
    implies: frozenset[str] = frozenset()
    fields: frozenset[str] = frozenset()
    temporal: bool = False
    #: Whether daf_butler keeps records of it (band is a view of physical_filter).
    stored: bool = True


def _element(
    key: str,
    key_type: type,
    requires: Iterable[str] = (),
    implies: Iterable[str] = (),
    fields: str = "",
    *,
    temporal: bool = False,
    stored: bool = True,
) -> _Element:
    return _Element(
        key,
        key_type,
        frozenset(requires),
        frozenset(implies),
        frozenset(fields.split()),
        temporal,
        stored,
    )


# The dimensions of daf_butler's default universe (version 8) that have a
# key; join tables (visit_definition, ...) have none and cannot come from here.
_UNIVERSE: Mapping[str, _Element] = {
    "instrument": _element(
        "name", str, fields="visit_max visit_system exposure_max detector_max class_name"
    ),
    "band": _element("name", str, stored=False),
    "physical_filter": _element("name", str, ["instrument"], ["band"]),
    "subfilter": _element("id", int, ["band"]),
    "detector": _element("id", int, ["instrument"], fields="full_name name_in_raft raft purpose"),
    "group": _element("name", str, ["instrument"]),
    "day_obs": _element("id", int, ["instrument"], temporal=True),
    "visit": _element(
        "id",
        int,
        ["instrument"],
        ["physical_filter", "day_obs"],
        "name seq_num exposure_time target_name observation_reason science_program "
        "azimuth zenith_angle region",
        temporal=True,
    ),
    "exposure": _element(
        "id",
        int,
        ["instrument"],
        ["physical_filter", "group", "day_obs"],
        "obs_id exposure_time dark_time observation_type observation_reason seq_num "
        "seq_start seq_end target_name science_program tracking_ra tracking_dec sky_angle "
        "azimuth zenith_angle has_simulated can_see_sky",
        temporal=True,
    ),
    "skymap": _element("name", str, fields="hash tract_max patch_nx_max patch_ny_max"),
    "tract": _element("id", int, ["skymap"], fields="region"),
    "patch": _element("id", int, ["skymap", "tract"], fields="cell_x cell_y region"),
    "visit_system": _element("id", int, ["instrument"], fields="name"),
}
# What databutler lacks and this module makes up (see the module docstring).
_MADE_UP = {("exposure", "group")}
_TIME_FIELDS = ("datetime_begin", "datetime_end")
# sphgeom's region classes by the first byte of their encoding.
_REGION_CLASSES = {
    ord("b"): "Box",
    ord("c"): "Circle",
    ord("p"): "ConvexPolygon",
    ord("e"): "Ellipse",
    ord("u"): "UnionRegion",
    ord("i"): "IntersectionRegion",
}
# The fields daf_butler's file templates name files by (see _check_file_names).
_FILE_NAMES = {"detector": "full_name", "exposure": "obs_id"}


# -- YAML values ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Tai:
    """A time written as ``!butler_time/tai/iso``."""

    text: str


@dataclass(frozen=True, slots=True)
class _Region:
    """A region written as sphgeom's ``!<lsst.sphgeom.CLASS> {encoded: hex}``."""

    kind: str
    encoded: bytes


@dataclass(frozen=True, slots=True)
class _Span:
    """A validity range written as ``!lsst.daf.butler.Timespan``."""

    begin: _Tai | None
    end: _Tai | None


def utc_to_tai(when: datetime.datetime) -> str:
    """The TAI time, ``YYYY-MM-DD HH:MM:SS.fffffffff``, of an aware UTC instant.

    The inverse of `~._daf_butler_export.tai_to_utc` (leap seconds up to 2017).

    Raises
    ------
    ValueError
        If ``when`` has no time zone, or is before 1972.
    """
    if when.tzinfo is None:
        raise ValueError(f"time {when.isoformat()} has no time zone")
    utc = when.astimezone(datetime.UTC)
    try:
        tai = tai_from_utc(utc)
    except ValueError:
        raise ValueError(
            f"time {utc.isoformat()} is before 1972, where TAI is not converted"
        ) from None
    return tai.strftime("%Y-%m-%d %H:%M:%S.") + f"{tai.microsecond:06d}000"


def _dump(document: Mapping[str, Any]) -> str:
    import yaml

    base: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    class Dumper(base):  # type: ignore[misc]
        """The safe dumper, and the three tags of daf_butler's exports."""

    def uuid_node(dumper: Any, value: uuid.UUID) -> Any:
        return dumper.represent_scalar("!uuid", str(value))

    def time_node(dumper: Any, value: _Tai) -> Any:
        return dumper.represent_scalar("!butler_time/tai/iso", value.text)

    def span_node(dumper: Any, value: _Span) -> Any:
        return dumper.represent_mapping(
            "!lsst.daf.butler.Timespan", {"begin": value.begin, "end": value.end}
        )

    # One dataset type entry precedes the datasets of each of its runs: written
    # out each time, as daf_butler does, not as YAML anchors and aliases.
    def region_node(dumper: Any, value: _Region) -> Any:
        return dumper.represent_mapping(
            f"lsst.sphgeom.{value.kind}", {"encoded": value.encoded.hex()}
        )

    Dumper.ignore_aliases = lambda self, data: True
    Dumper.add_representer(_Region, region_node)
    Dumper.add_representer(uuid.UUID, uuid_node)
    Dumper.add_representer(_Tai, time_node)
    Dumper.add_representer(_Span, span_node)
    text: str = yaml.dump(
        dict(document), Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100
    )
    return text


# -- the plan ---------------------------------------------------------------------------------


@dataclass
class DafButlerPlan:
    """A checked daf_butler export, less the files (`render` adds them).

    ``refs`` are the datasets to write; the rest is their context.
    """

    refs: list[DatasetRef]
    dimensions: list[dict[str, Any]]
    collections: list[dict[str, Any]]
    dataset_types: dict[str, dict[str, Any]]
    associations: list[dict[str, Any]]
    storage_classes: dict[str, str] = field(default_factory=dict)

    def render(self, files: Sequence[FileDataset]) -> tuple[str, dict[str, str]]:
        """The export's YAML, with the files the datastore exported for ``refs``.

        Returns
        -------
        text : `str`
            The YAML document.
        renames : `dict` [`str`, `str`]
            Exported files (paths relative to the export) to rename before the
            document is valid: daf_butler's formatters accept one file
            extension each (``.parq``, not ``.parquet``), and check it.

        Raises
        ------
        ExportFormatError
            If a file's formatter has no daf_butler counterpart, a file
            holds datasets of several types or runs, or a file outside the
            export (``transfer=None``) has an extension daf_butler refuses.
        """
        renames: dict[str, str] = {}
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for dataset in files:
            refs = sorted(
                (ref for ref in dataset.refs if isinstance(ref, DatasetRef)), key=lambda r: r.id
            )
            keys = {(ref.datasetType.name, ref.run or "") for ref in refs}
            if len(keys) != 1 or len(refs) != len(dataset.refs):
                raise ExportFormatError(
                    f"File {dataset.path} holds datasets of {len(keys)} dataset types or runs; "
                    "a daf_butler export lists each file under one dataset type and run."
                )
            (key,) = keys
            path = str(dataset.path)
            if "#" in path:
                raise ExportFormatError(
                    f"Artifact {path} is a member of a zip file, which daf_butler cannot read "
                    "in place; export with transfer='copy'."
                )
            formatter = formatter_class(
                dataset.formatter, self.storage_classes[key[0]], key[0], path
            )
            extension = _EXTENSIONS.get(formatter)
            if extension is not None and not path.endswith(extension):
                if "://" in path:
                    raise ExportFormatError(
                        f"Artifact {path} would have to be named *{extension} for daf_butler's "
                        f"{formatter.rsplit('.', 1)[-1]} to read it; export with a transfer "
                        "mode (transfer='copy'), which names the copies as daf_butler needs."
                    )
                renamed = str(PurePosixPath(path).with_suffix(extension))
                renames[path] = renamed
                path = renamed
            grouped.setdefault(key, []).append(
                {
                    "dataset_id": [ref.id for ref in refs],
                    "data_id": [_required(ref) for ref in refs],
                    "path": path,
                    "formatter": formatter,
                }
            )
        data: list[dict[str, Any]] = [*self.dimensions, *self.collections]
        for name, run in sorted(grouped):
            data.append(self.dataset_types[name])
            data.append(
                {"type": "dataset", "dataset_type": name, "run": run, "records": grouped[name, run]}
            )
        data.extend(self.associations)
        text = _dump(
            {
                "description": DESCRIPTION,
                "version": FORMAT_VERSION,
                "universe_version": UNIVERSE_VERSION,
                "universe_namespace": UNIVERSE_NAMESPACE,
                "data": data,
            }
        )
        taken = set(renames.values()) & {str(f.path) for f in files}
        if taken:
            raise ExportFormatError(
                f"Exported files would be renamed onto other exported files ({sorted(taken)[0]}) "
                "to get the extensions daf_butler's formatters need; export these datasets in "
                "separate exports."
            )
        return text, renames


def _required(ref: DatasetRef) -> dict[str, Any]:
    data_id = ref.dataId
    if isinstance(data_id, DataCoordinate):
        return dict(data_id.required.items())
    return dict(data_id)


def formatter_class(formatter: str | None, storage_class: str, dataset_type: str, path: str) -> str:
    """The daf_butler formatter class that reads a file databutler's ``formatter`` wrote.

    Raises
    ------
    ExportFormatError
        If daf_butler has no formatter for such files.
    """
    if formatter is not None and formatter in _FORMATTER_CLASSES:
        return _FORMATTER_CLASSES[formatter]
    if formatter == "fits" and storage_class in _FITS_FORMATTER_CLASSES:
        return _FITS_FORMATTER_CLASSES[storage_class]
    known = ", ".join(sorted(_FORMATTER_CLASSES))
    what = (
        f"FITS files of storage class {storage_class!r}"
        if formatter == "fits"
        else f"files of databutler's {formatter!r} formatter"
    )
    raise ExportFormatError(
        f"Dataset type {dataset_type!r} ({path}): daf_butler has no formatter that reads {what}; "
        f"a daf_butler export can hold files of the {known} formatters (and FITS files of "
        "afw images and exposures). Store those datasets with one of these formatters, or "
        + _FIXES[0].lower()
        + _FIXES[1:]
    )


def plan_daf_butler_export(
    registry: SqlRegistry,
    refs: list[DatasetRef],
    records: Mapping[str, list[dict[str, Any]]],
    collections: Sequence[str],
) -> DafButlerPlan:
    """Check and map what a daf_butler export of ``refs`` holds; nothing is written.

    Parameters
    ----------
    registry : `SqlRegistry`
        The repository's registry.
    refs : `list` [`DatasetRef`]
        The datasets to export (all stored).
    records : `~collections.abc.Mapping`
        The dimension records their data IDs need, by dimension.
    collections : `~collections.abc.Sequence` [`str`]
        The collections to export besides the datasets' runs (chains with
        their children, TAGGED and CALIBRATION ones with their members among
        ``refs``).

    Raises
    ------
    ExportFormatError
        If daf_butler's default universe has no place for a dimension,
        dimension shape or record field, a time is before 1972, a sky map's
        hash is not hexadecimal, detectors or exposures would give their
        datasets' files one name in daf_butler (a shared or missing
        ``full_name`` or ``obs_id``), or a storage class is databutler's own.
    """
    universe = registry.dimensions
    types = {
        name: registry.getDatasetType(name) for name in sorted({r.datasetType.name for r in refs})
    }
    lacking = {n: t.storageClass for n, t in types.items() if t.storageClass in _NOT_UPSTREAM}
    if lacking:
        raise ExportFormatError(
            "daf_butler has no storage class "
            + ", ".join(f"{c!r} (dataset type {n!r})" for n, c in sorted(lacking.items()))
            + ": it would import those datasets but could not read them. Nothing was "
            "written. " + _FIXES
        )
    used = {d for t in types.values() for d in universe.group(t.dimensions).names}
    used.update(records)
    _check_universe(universe, used, types)
    dimensions = _dimension_entries(universe, records)
    ids = {ref.id for ref in refs}
    entries, associations = _collection_entries(registry, refs, collections, ids)
    dataset_types = {
        name: {
            "type": "dataset_type",
            "name": name,
            "dimensions": sorted(t.dimensions),
            "storage_class": t.storageClass,
            "is_calibration": t.isCalibration,
        }
        for name, t in types.items()
    }
    return DafButlerPlan(
        refs,
        dimensions,
        entries,
        dataset_types,
        associations,
        {name: t.storageClass for name, t in types.items()},
    )


def _check_universe(
    universe: DimensionUniverse, used: Iterable[str], types: Mapping[str, Any]
) -> None:
    """Refuse dimensions daf_butler's default universe lacks, or has in another shape."""
    problems = []
    for name in sorted(used, key=lambda n: universe.names.index(n)):
        element = _UNIVERSE.get(name)
        users = sorted(t for t, dt in types.items() if name in universe.group(dt.dimensions).names)
        by = f" (used by dataset type(s) {', '.join(map(repr, users))})" if users else ""
        if element is None:
            problems.append(f"dimension {name!r}{by}, which it does not have")
            continue
        dimension = universe[name]
        key_type = dimension.key.python_type
        required = frozenset(dimension.required)
        implied = frozenset(dimension.implied)
        missing = element.implies - implied - {n for e, n in _MADE_UP if e == name}
        if required != element.requires or not implied <= element.implies or missing:
            problems.append(
                f"dimension {name!r}{by}, which requires {sorted(required)} and implies "
                f"{sorted(implied)} here but requires {sorted(element.requires)} and implies "
                f"{sorted(element.implies)} there"
            )
        elif key_type is not element.key_type:
            problems.append(
                f"dimension {name!r}{by}, whose values are {key_type.__name__}s here and "
                f"{element.key_type.__name__}s there"
            )
    if problems:
        raise ExportFormatError(
            "daf_butler's default dimension universe cannot hold "
            + "; ".join(problems)
            + ". Nothing was written. "
            + _FIXES
        )


def _dimension_entries(
    universe: DimensionUniverse, records: Mapping[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """``dimension`` entries: databutler's records in daf_butler's terms (in its order)."""
    problems: dict[str, int] = {}
    out: dict[str, list[dict[str, Any]]] = {}
    for name in universe.names:
        rows = records.get(name)
        if not rows or not _UNIVERSE[name].stored:
            continue
        element = _UNIVERSE[name]
        others = {*element.requires, *element.implies}
        mapped = []
        for row in rows:
            record: dict[str, Any] = {}
            for key, value in row.items():
                if key == name:
                    record[element.key] = value
                elif key in others:
                    record[key] = value
                elif value is None:
                    continue  # a null field carries nothing
                elif element.temporal and key in _TIME_FIELDS:
                    record[key] = _tai(value, f"{name}.{key} of {_key(row, name)}")
                elif element.temporal and key == "timespan" and isinstance(value, Timespan):
                    label = f"{name}.timespan of {_key(row, name)}"
                    for time_field, bound in zip(
                        _TIME_FIELDS, (value.begin, value.end), strict=True
                    ):
                        record[time_field] = None if bound is None else _tai(bound, label)
                elif key == "region" and key in element.fields:
                    record[key] = _region(value, f"{name}.region of {_key(row, name)}")
                elif key not in element.fields:
                    problems[f"{name}.{key}"] = problems.get(f"{name}.{key}", 0) + 1
                elif name == "skymap" and key == "hash":
                    record[key] = _hash_bytes(value, row)
                else:
                    record[key] = value
            if element.temporal and any(f in record for f in _TIME_FIELDS):
                # daf_butler reads the two as one timespan: both or neither (null: unbounded).
                for time_field in _TIME_FIELDS:
                    record.setdefault(time_field, None)
            if name == "exposure" and "group" not in universe:
                # daf_butler's default group of an exposure: its id (see the docstring).
                record["group"] = str(row[name])
                out.setdefault("group", [])
            mapped.append(record)
        out[name] = mapped
    if problems:
        raise ExportFormatError(
            "daf_butler's default dimension universe has no record field "
            + ", ".join(f"{f} (set in {n} record(s))" for f, n in sorted(problems.items()))
            + ". Nothing was written. Clear those fields, or "
            + _FIXES[0].lower()
            + _FIXES[1:]
        )
    _check_file_names(out)
    if "group" in out and "group" not in universe:
        groups = {(r["instrument"], r["group"]) for r in out["exposure"]}
        out["group"] = [{"instrument": i, "name": g} for i, g in sorted(groups)]
    order = [n for n in _UNIVERSE if n in out]
    return [{"type": "dimension", "element": n, "records": out[n]} for n in order]


def _check_file_names(records: Mapping[str, list[dict[str, Any]]]) -> None:
    """Refuse records daf_butler would name several datasets' files after.

    daf_butler's file templates name a file by its detector's ``full_name``
    and its exposure's ``obs_id`` (keys of those dimensions there, unique per
    instrument), writing a missing one as ``None``: its import of two
    datasets told apart by such records writes them to one file, silently
    keeping one.
    """
    problems = []
    for element, name in _FILE_NAMES.items():
        seen: dict[tuple[Any, str], list[Any]] = {}
        for row in records.get(element, ()):
            value = row.get(name)
            seen.setdefault((row["instrument"], str(value)), []).append(row["id"])
        for (instrument, value), ids in sorted(seen.items(), key=str):
            if len(ids) > 1:
                shown = ", ".join(map(str, sorted(ids)[:5])) + (", ..." if len(ids) > 5 else "")
                what = f"no {name}" if value == "None" else f"{name} {value!r}"
                problems.append(f"{element}s {shown} of instrument {instrument!r} have {what}")
    if problems:
        raise ExportFormatError(
            "daf_butler names the files of datasets by their detector's full_name and "
            "exposure's obs_id (keys of those dimensions there): "
            + "; ".join(problems)
            + ", so its import would write several datasets to one file. Nothing was "
            "written. Give those records distinct values (they are set when the records "
            "are inserted), or " + _FIXES[0].lower() + _FIXES[1:]
        )


def _key(row: Mapping[str, Any], name: str) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in row.items() if k == name or k in ("instrument",))


def _tai(value: Any, label: str) -> _Tai:
    if not isinstance(value, datetime.datetime):
        raise ExportFormatError(f"{label} is {value!r}, not a time.")
    try:
        return _Tai(utc_to_tai(value))
    except ValueError as exc:
        raise ExportFormatError(
            f"{label}: {exc}; daf_butler keeps times in TAI, which databutler converts "
            "from 1972 on. Correct the record, or leave it out of the export."
        ) from None


def _region(value: Any, label: str) -> _Region:
    kind = _REGION_CLASSES.get(value[0]) if isinstance(value, bytes) and value else None
    if kind is None:
        raise ExportFormatError(
            f"{label} is not the encoding of a sphgeom region (its first byte names none of "
            f"{', '.join(_REGION_CLASSES.values())}); daf_butler could not read it back. "
            "Correct the record, or clear its region."
        )
    return _Region(kind, value)


def _hash_bytes(value: Any, row: Mapping[str, Any]) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str) or _HEX.fullmatch(value) is None:
        raise ExportFormatError(
            f"skymap.hash of sky map {row.get('skymap')!r} is {value!r}; daf_butler keeps a "
            "sky map's hash as bytes, written here from hexadecimal digits (an even number "
            "of 0-9, a-f). Set it to the hash's hex digits, or clear it."
        )
    return bytes.fromhex(value)


def _span(timespan: Timespan) -> _Span:
    label = f"validity range {timespan}"
    return _Span(
        None if timespan.begin is None else _tai(timespan.begin, label),
        None if timespan.end is None else _tai(timespan.end, label),
    )


def _collection_entries(
    registry: SqlRegistry,
    refs: list[DatasetRef],
    collections: Sequence[str],
    ids: set[uuid.UUID],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``collection`` entries (runs first, chains after their children) and ``associations``."""
    runs = sorted({ref.run for ref in refs if ref.run})
    kinds = {run: CollectionType.RUN for run in runs}
    for name in collections:
        kinds.setdefault(name, registry.getCollectionType(name))
    chains = {
        n: registry.getCollectionChain(n) for n, k in kinds.items() if k is CollectionType.CHAINED
    }
    missing = sorted({c for children in chains.values() for c in children} - set(kinds))
    if missing:
        raise ExportFormatError(
            f"Chain(s) {', '.join(map(repr, sorted(chains)))} have child collection(s) "
            f"{', '.join(map(repr, missing))} that are not exported; daf_butler needs a chain's "
            "children in the same export. Export those collections too."
        )
    entries = []
    associations = []
    ordered = [n for n in runs] + sorted(n for n, k in kinds.items() if k is not CollectionType.RUN)
    for name in _children_first(ordered, chains):
        kind = kinds[name]
        entry: dict[str, Any] = {"type": "collection", "collection_type": kind.name, "name": name}
        doc = registry.getCollectionDocumentation(name)
        if doc:
            entry["doc"] = doc
        if kind is CollectionType.RUN:
            entry.update(host=None, timespan_begin=None, timespan_end=None)
        elif kind is CollectionType.CHAINED:
            entry["children"] = list(chains[name])
        elif kind is CollectionType.TAGGED:
            members = sorted(
                {
                    ref.id
                    for dataset_type in {r.datasetType.name for r in refs}
                    for ref in registry.stream_datasets(dataset_type, collections=name)
                    if ref.id in ids
                }
            )
            associations.append(
                {
                    "type": "associations",
                    "collection": name,
                    "collection_type": kind.name,
                    "dataset_ids": members,
                }
            )
        elif kind is CollectionType.CALIBRATION:
            ranges: dict[Timespan, list[uuid.UUID]] = {}
            for dataset_id, timespan in registry.query_certifications(name):
                if dataset_id in ids:
                    ranges.setdefault(timespan, []).append(dataset_id)
            if ranges:
                associations.append(
                    {
                        "type": "associations",
                        "collection": name,
                        "collection_type": kind.name,
                        "validity_ranges": [
                            {"timespan": _span(span), "dataset_ids": sorted(members)}
                            for span, members in sorted(ranges.items(), key=_range_order)
                        ],
                    }
                )
        entries.append(entry)
    return entries, associations


def _range_order(item: tuple[Timespan, list[uuid.UUID]]) -> tuple[Any, ...]:
    span = item[0]
    least = datetime.datetime.min.replace(tzinfo=datetime.UTC)
    most = datetime.datetime.max.replace(tzinfo=datetime.UTC)
    return (span.begin or least, span.end or most)


def _children_first(names: list[str], chains: Mapping[str, Sequence[str]]) -> list[str]:
    """``names`` with every chain after its children (daf_butler sets chains in file order)."""
    out: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        done.add(name)
        for child in chains.get(name, ()):
            visit(child)
        out.append(name)

    for name in names:
        visit(name)
    return out
