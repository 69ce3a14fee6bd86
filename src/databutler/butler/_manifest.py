"""Reading an export's manifest as the untrusted input it is.

An export may come from anyone. Before an import touches the repository,
`read_manifest` checks every field's presence and type and turns the
manifest into typed values, and `artifact_path` decides where each artifact
may be read from:

- ``artifacts: inside`` (the default): every path is relative, has no
  ``..``, and resolves, links followed, to a regular file inside the export.
- ``artifacts: linked`` (an export made with a link transfer): the paths are
  relative and their directories stay inside the export, but the files
  themselves are links to the exporting repository's artifacts; they are
  copied, never moved, through the link.
- ``artifacts: external`` (an export made with ``transfer=None``): every path
  is a ``file://`` or ``s3://`` URI of an artifact where it is; again copied,
  never moved.

Any violation is an `ExportFormatError` naming the entry and the field.
"""

from __future__ import annotations

import datetime
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote

from .. import _yaml
from .._arguments import path_problem
from .._collection_type import Timespan
from .._dataset_ref import DatasetRef
from .._dataset_type import DatasetType
from .._exceptions import DatabutlerError, ExportFormatError
from ..datastores.resources import check_relative_path
from ..dimensions import DataCoordinate, DimensionGroup, DimensionUniverse

__all__ = [
    "ARTIFACT_MODES",
    "EXPORT_VERSION",
    "Manifest",
    "ManifestFile",
    "ManifestRef",
    "artifact_path",
    "as_list",
    "as_mapping",
    "as_record",
    "as_string",
    "check_records",
    "read_manifest",
    "record_from_plain",
    "record_to_plain",
    "resolve_refs",
    "shortened",
]

#: The manifest layout version.
EXPORT_VERSION = 1

#: How an export holds its artifacts (the manifest's ``artifacts`` key).
ARTIFACT_MODES = ("inside", "linked", "external")

_FORMATS = ("yaml", "json")
_KEYS = {
    "databutler_export",
    "artifacts",
    "dataset_types",
    "dimensions",
    "runs",
    "tags",
    "files",
    "chains",
    "calibrations",
}
_CERTIFICATION_KEYS = {"begin", "end", "ids"}
_SCALARS = (str, int, float, bool, type(None))
# Record values of databutler's own manifests: a timespan is a mapping (record_to_plain).
_RECORD_VALUES = (*_SCALARS, dict)
_RECORD_VALUES_TEXT = "strings, numbers, booleans, null or (timespans) mappings of begin and end"
_TYPE_KEYS = {"name", "dimensions", "storage_class", "is_calibration"}
_FILE_KEYS = {"path", "formatter", "refs"}
_REF_KEYS = {"id", "dataset_type", "run", "data_id"}


@dataclass(frozen=True, slots=True)
class ManifestRef:
    """One dataset of a manifest's file entry."""

    id: uuid.UUID
    dataset_type: str
    run: str
    data_id: dict[str, int | str]


@dataclass(frozen=True, slots=True)
class ManifestFile:
    """One artifact of a manifest and the datasets it holds."""

    path: str
    formatter: str | None
    refs: tuple[ManifestRef, ...]


@dataclass(frozen=True, slots=True)
class Manifest:
    """A checked manifest: every field present and of its type."""

    location: Path
    artifacts: str
    dataset_types: tuple[DatasetType, ...]
    dimensions: dict[str, list[dict[str, Any]]]
    runs: tuple[str, ...]
    tags: dict[str, list[uuid.UUID]]
    files: tuple[ManifestFile, ...]
    chains: dict[str, list[str]] = field(default_factory=dict)
    """CHAINED collections and their children, in order."""
    calibrations: dict[str, list[tuple[Timespan, list[uuid.UUID]]]] = field(default_factory=dict)
    """CALIBRATION collections: the datasets certified in each, by validity range."""


def read_manifest(directory: Path) -> Manifest:
    """Read and check the manifest of the export in ``directory``.

    Raises
    ------
    ExportFormatError
        If there is no manifest, it cannot be parsed, or any field is
        missing or of the wrong type.
    """
    candidate, data = _load(directory)
    where = str(candidate)
    top = as_mapping(data, where, "the manifest")
    if top.get("databutler_export") != EXPORT_VERSION:
        raise ExportFormatError(
            f"{where} is not a databutler export of version {EXPORT_VERSION} "
            f"(its 'databutler_export' is {top.get('databutler_export')!r})."
        )
    unknown = sorted(str(k) for k in top if k not in _KEYS)
    if unknown:
        raise ExportFormatError(
            f"{where} has unknown key(s) {', '.join(unknown)}; expected only {sorted(_KEYS)}."
        )
    artifacts = top.get("artifacts", "inside")
    if artifacts not in ARTIFACT_MODES:
        raise ExportFormatError(
            f"{where}: 'artifacts' is {artifacts!r}; expected one of {', '.join(ARTIFACT_MODES)}."
        )
    types = tuple(
        _dataset_type(entry, f"{where}: dataset_types[{i}]")
        for i, entry in enumerate(as_list(top.get("dataset_types"), where, "'dataset_types'"))
    )
    declared = {t.name for t in types}
    files = tuple(
        _file(entry, f"{where}: files[{i}]", declared)
        for i, entry in enumerate(as_list(top.get("files"), where, "'files'"))
    )
    dimensions: dict[str, list[dict[str, Any]]] = {}
    for name, rows in as_mapping(top.get("dimensions") or {}, where, "'dimensions'").items():
        label = f"dimensions[{name!r}]"
        as_string(name, where, f"a key of {label}")
        dimensions[name] = [
            as_record(row, where, f"{label}[{i}]", _RECORD_VALUES, _RECORD_VALUES_TEXT)
            for i, row in enumerate(as_list(rows, where, label))
        ]
    runs = tuple(
        as_string(run, where, f"runs[{i}]")
        for i, run in enumerate(as_list(top.get("runs") or [], where, "'runs'"))
    )
    tags: dict[str, list[uuid.UUID]] = {}
    for tag, ids in as_mapping(top.get("tags") or {}, where, "'tags'").items():
        as_string(tag, where, "a key of 'tags'")
        tags[tag] = [
            _uuid(i, where, f"tags[{tag!r}][{n}]")
            for n, i in enumerate(as_list(ids, where, f"tags[{tag!r}]"))
        ]
    ids = {ref.id for entry in files for ref in entry.refs}
    for tag, members in tags.items():
        strangers = [str(i) for i in members if i not in ids]
        if strangers:
            raise ExportFormatError(
                f"{where}: tags[{tag!r}] names dataset(s) {', '.join(strangers[:3])} that no "
                "entry of 'files' holds; a tag may only name datasets of the export."
            )
    chains: dict[str, list[str]] = {}
    for chain, children in as_mapping(top.get("chains") or {}, where, "'chains'").items():
        as_string(chain, where, "a key of 'chains'")
        chains[chain] = [
            as_string(child, where, f"chains[{chain!r}][{n}]")
            for n, child in enumerate(as_list(children, where, f"chains[{chain!r}]"))
        ]
    calibrations: dict[str, list[tuple[Timespan, list[uuid.UUID]]]] = {}
    entries = as_mapping(top.get("calibrations") or {}, where, "'calibrations'")
    for collection, ranges in entries.items():
        as_string(collection, where, "a key of 'calibrations'")
        label = f"calibrations[{collection!r}]"
        calibrations[collection] = [
            _certification(entry, where, f"{label}[{n}]", ids)
            for n, entry in enumerate(as_list(ranges, where, label))
        ]
    return Manifest(
        candidate, artifacts, types, dimensions, runs, tags, files, chains, calibrations
    )


def _certification(
    entry: Any, where: str, label: str, known: set[uuid.UUID]
) -> tuple[Timespan, list[uuid.UUID]]:
    """One validity range of a CALIBRATION collection: ``{begin, end, ids}``."""
    found = as_mapping(entry, where, label)
    unknown = sorted(str(k) for k in found if k not in _CERTIFICATION_KEYS)
    if unknown:
        raise ExportFormatError(
            f"{where}: {label} has unknown key(s) {', '.join(unknown)}; expected begin, end "
            "and ids."
        )
    bounds = [_instant(found.get(side), where, f"{label}.{side}") for side in ("begin", "end")]
    try:
        timespan = Timespan(bounds[0], bounds[1])
    except ValueError as exc:
        raise ExportFormatError(f"{where}: {label}: {exc}") from None
    ids = [
        _uuid(i, where, f"{label}.ids[{n}]")
        for n, i in enumerate(as_list(found.get("ids"), where, f"{label}.ids"))
    ]
    strangers = [str(i) for i in ids if i not in known]
    if strangers:
        raise ExportFormatError(
            f"{where}: {label} certifies dataset(s) {', '.join(strangers[:3])} that no entry "
            "of 'files' holds; a certification may only name datasets of the export."
        )
    return timespan, ids


def _instant(value: Any, where: str, label: str) -> datetime.datetime | None:
    """A validity bound: an ISO time with its UTC offset, or null for unbounded."""
    if value is None:
        return None
    text = as_string(value, where, label)
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        when = None
    if when is None or when.utcoffset() is None:
        raise ExportFormatError(
            f"{where}: {label} is {text!r}; expected an ISO time with its UTC offset "
            "(2026-01-01T00:00:00+00:00), or null for unbounded."
        )
    return when


def artifact_path(directory: Path, manifest: Manifest, entry: ManifestFile) -> str:
    """Where to read ``entry``'s artifact from, checked against the manifest's ``artifacts`` mode.

    Raises
    ------
    ExportFormatError
        If the path is absolute or a URI in an export holding its artifacts,
        leaves the export through ``..`` or a link, or is not a regular file.
    """
    path = entry.path
    problem = path_problem(path)  # an s3:// key's parts have no length limit
    if problem is not None:
        raise ExportFormatError(
            f"A file path of {manifest.location} is not one a file system holds: {problem}."
        )
    if manifest.artifacts == "external":
        if not path.startswith(("file://", "s3://")):
            raise ExportFormatError(
                f"File {path!r} of {manifest.location} is not a file:// or s3:// URI, but the "
                "manifest says its artifacts are external (an export made with transfer=None)."
            )
        if path.startswith("s3://"):
            bucket, _, key = path.removeprefix("s3://").partition("/")
            try:
                check_relative_path(key)
            except DatabutlerError:
                raise ExportFormatError(
                    f"File URI {path!r} of {manifest.location} is malformed; expected "
                    "s3://bucket/key without '.', '..' or empty segments."
                ) from None
            if not bucket or "\x00" in path:
                raise ExportFormatError(f"File URI {path!r} of {manifest.location} is malformed.")
            return path  # its existence is checked by the importer, which has the client
        local = Path(unquote(path.removeprefix("file://")))
        if not local.is_absolute() or ".." in local.parts:
            raise ExportFormatError(f"File URI {path!r} of {manifest.location} is malformed.")
        if not local.is_file():
            raise ExportFormatError(
                f"File {path!r} of {manifest.location} is missing or not a regular file."
            )
        return str(local)
    if "://" in path or path.startswith(("/", "\\")) or os.path.isabs(path) or "\x00" in path:
        raise ExportFormatError(
            f"File {path!r} of {manifest.location} is absolute; an export holds its artifacts "
            "under relative paths. Refusing to read a file outside the export."
        )
    parts = PurePosixPath(path).parts
    if tuple(parts) in (("export.yaml",), ("export.json",)):
        raise ExportFormatError(
            f"File {path!r} of {manifest.location} is the manifest itself, not an artifact."
        )
    if not parts or ".." in parts or "\\" in path:
        raise ExportFormatError(
            f"File {path!r} of {manifest.location} leaves the export directory; relative "
            "paths must stay inside it, without '..'."
        )
    root = Path(os.path.realpath(directory))
    target = directory.joinpath(*parts)
    # Directories on the way must stay inside the export, whatever the mode.
    parent = Path(os.path.realpath(target.parent))
    resolved = Path(os.path.realpath(target))
    leaves = not parent.is_relative_to(root)
    if manifest.artifacts == "inside":
        leaves = leaves or not resolved.is_relative_to(root)
    if leaves:
        raise ExportFormatError(
            f"File {path!r} of {manifest.location} reaches outside the export through a "
            "symbolic link; refusing to read it. Re-export with transfer='copy'."
        )
    if not resolved.is_file():
        raise ExportFormatError(
            f"File {path!r} of {manifest.location} is missing or not a regular file; the "
            "export is incomplete."
        )
    # Read the file itself, not a link to it: a move never takes a link away
    # and leaves the file, a hard link never links a link, links made by the
    # import do not go through the export, and two names of one file are one.
    return str(resolved)


def resolve_refs(manifest: Manifest, universe: DimensionUniverse) -> list[list[DatasetRef]]:
    """The datasets of each file entry, their data IDs checked against ``universe``.

    Only reads: nothing is registered. A data ID must name exactly the
    required dimensions of its dataset type.

    Raises
    ------
    ExportFormatError
        If a dataset type names an unknown dimension, or a data ID misses,
        adds or mistypes a value; the message names the entry.
    """
    types: dict[str, DatasetType] = {}
    groups: dict[str, DimensionGroup] = {}
    for i, dataset_type in enumerate(manifest.dataset_types):
        try:
            groups[dataset_type.name] = universe.group(dataset_type.dimensions)
        except DatabutlerError as exc:
            raise ExportFormatError(
                f"{manifest.location}: dataset_types[{i}] ({dataset_type.name!r}): {exc}"
            ) from None
        types[dataset_type.name] = dataset_type
    resolved = []
    for i, entry in enumerate(manifest.files):
        refs = []
        for j, ref in enumerate(entry.refs):
            where = f"{manifest.location}: files[{i}].refs[{j}]"
            group = groups[ref.dataset_type]
            extra = sorted(set(ref.data_id) - set(group.required))
            if extra:
                raise ExportFormatError(
                    f"{where}: 'data_id' has key(s) {', '.join(extra)} that are not required "
                    f"dimensions of {ref.dataset_type!r} ({', '.join(group.required)})."
                )
            try:
                data_id = DataCoordinate.standardize(
                    ref.data_id, universe=universe, dimensions=group
                )
            except DatabutlerError as exc:
                raise ExportFormatError(f"{where}: 'data_id' is not valid: {exc}") from None
            refs.append(DatasetRef(types[ref.dataset_type], data_id, run=ref.run, id=ref.id))
        resolved.append(refs)
    return resolved


def check_records(manifest: Manifest, universe: DimensionUniverse) -> None:
    """Check that every dimension record names a dimension element and has its key values.

    Raises
    ------
    ExportFormatError
        For an unknown element or a record without a required value.
    """
    for name, rows in manifest.dimensions.items():
        element = universe.get_element(name)
        if element is None:
            raise ExportFormatError(
                f"{manifest.location}: dimensions has records of {name!r}, which is not a "
                f"dimension element; valid elements are: {', '.join(universe.elements)}."
            )
        required = universe.group([name]).required if name in universe.names else element.required
        for i, row in enumerate(rows):
            missing = [key for key in required if key not in row]
            if missing:
                raise ExportFormatError(
                    f"{manifest.location}: dimensions[{name!r}][{i}] has no value for "
                    f"{', '.join(missing)}; every {name} record needs {', '.join(required)}."
                )


def record_to_plain(row: Mapping[str, Any]) -> dict[str, Any]:
    """A dimension record's values as JSON and YAML hold them.

    Datetimes become ISO 8601 text, a `Timespan` a mapping ``{begin, end}``
    of ISO text or null (unbounded), bytes (regions, hashes) hexadecimal
    text. `record_from_plain` reads them back by the fields' types.
    """
    return {name: _plain_value(value) for name, value in row.items()}


def _plain_value(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, Timespan):
        return {
            "begin": None if value.begin is None else value.begin.isoformat(),
            "end": None if value.end is None else value.end.isoformat(),
        }
    if isinstance(value, bytes):
        return value.hex()
    return value


def record_from_plain(
    universe: DimensionUniverse, element: str, row: Mapping[str, Any], where: str
) -> dict[str, Any]:
    """The inverse of `record_to_plain`, typed by ``element``'s fields in ``universe``.

    Values of fields the element does not have pass unchanged (the registry
    names them when it refuses the record); values of the wrong shape are
    an `ExportFormatError` naming ``where`` and the field.
    """
    found = universe.get_element(element)
    types = {} if found is None else {field.name: field.dtype for field in found.metadata}
    out: dict[str, Any] = {}
    for name, value in row.items():
        dtype = types.get(name)
        if value is None or dtype is None or isinstance(value, bytes | Timespan):
            out[name] = value  # bytes and timespans come typed from daf_butler's exports
        elif dtype == "datetime":
            out[name] = _plain_time(value, where, name)
        elif dtype == "timespan":
            if not isinstance(value, Mapping) or set(value) != {"begin", "end"}:
                raise ExportFormatError(
                    f"{where}: {name} is a timespan, a mapping of 'begin' and 'end' (ISO times "
                    f"or null), not {shortened(value)}."
                )
            begin = _plain_time(value["begin"], where, f"{name}.begin")
            end = _plain_time(value["end"], where, f"{name}.end")
            try:
                out[name] = Timespan(begin, end)
            except ValueError as exc:
                raise ExportFormatError(f"{where}: {name}: {exc}") from None
        elif dtype in ("region", "bytes"):
            try:
                out[name] = bytes.fromhex(as_string(value, where, name))
            except ValueError:
                raise ExportFormatError(
                    f"{where}: {name} holds bytes, written as hexadecimal text, not "
                    f"{shortened(value)}."
                ) from None
        else:
            out[name] = value
    return out


def _plain_time(value: Any, where: str, label: str) -> datetime.datetime | None:
    if value is None or isinstance(value, datetime.datetime):
        return value  # YAML may have read an ISO time as a timestamp already
    if isinstance(value, str):
        try:
            return datetime.datetime.fromisoformat(value)
        except ValueError:
            pass
    raise ExportFormatError(
        f"{where}: {label} must be an ISO 8601 time with a time zone, not {shortened(value)}."
    )


# -- reading and checking ----------------------------------------------------------------


def _load(directory: Path) -> tuple[Path, Any]:
    for format in _FORMATS:
        candidate = directory / f"export.{format}"
        if not candidate.is_file():
            continue
        try:
            text = candidate.read_text(encoding="utf-8")
            if format == "json":
                return candidate, json.loads(text)
            return candidate, _yaml.load(text)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ExportFormatError(f"{candidate} cannot be parsed: {exc}") from None
        except Exception as exc:  # yaml.YAMLError, without importing yaml eagerly
            if type(exc).__module__.startswith("yaml"):
                raise ExportFormatError(f"{candidate} cannot be parsed: {exc}") from None
            raise
    raise ExportFormatError(
        f"{directory} has no export.yaml or export.json; is it a databutler export?"
    )


def _dataset_type(entry: Any, where: str) -> DatasetType:
    fields = as_mapping(entry, where, "the entry")
    _known_keys(fields, _TYPE_KEYS, where)
    name = as_string(fields.get("name"), where, "'name'")
    dimensions = [
        as_string(d, where, f"dimensions[{i}]")
        for i, d in enumerate(as_list(fields.get("dimensions"), where, "'dimensions'"))
    ]
    storage_class = as_string(fields.get("storage_class"), where, "'storage_class'")
    is_calibration = fields.get("is_calibration", False)
    if not isinstance(is_calibration, bool):
        raise ExportFormatError(f"{where}: 'is_calibration' must be true or false.")
    try:
        dataset_type = DatasetType(name, dimensions, storage_class, isCalibration=is_calibration)
    except (DatabutlerError, ValueError, TypeError) as exc:
        raise ExportFormatError(f"{where}: dataset type {name!r} is not valid: {exc}") from None
    if dataset_type.isComponent():
        raise ExportFormatError(
            f"{where}: {name!r} names a component; an export holds parent dataset types only."
        )
    return dataset_type


def _file(entry: Any, where: str, declared: set[str]) -> ManifestFile:
    fields = as_mapping(entry, where, "the entry")
    _known_keys(fields, _FILE_KEYS, where)
    path = as_string(fields.get("path"), where, "'path'")
    formatter = fields.get("formatter")
    if formatter is not None:
        as_string(formatter, where, "'formatter'")
    refs = tuple(
        _ref(r, f"{where}.refs[{i}]", declared)
        for i, r in enumerate(as_list(fields.get("refs"), where, "'refs'"))
    )
    if not refs:
        raise ExportFormatError(f"{where}: 'refs' is empty; every file holds a dataset.")
    return ManifestFile(path, formatter, refs)


def _ref(entry: Any, where: str, declared: set[str]) -> ManifestRef:
    fields = as_mapping(entry, where, "the entry")
    _known_keys(fields, _REF_KEYS, where)
    dataset_id = _uuid(fields.get("id"), where, "'id'")
    dataset_type = as_string(fields.get("dataset_type"), where, "'dataset_type'")
    if dataset_type not in declared:
        raise ExportFormatError(
            f"{where}: dataset type {dataset_type!r} is not among the manifest's dataset_types."
        )
    run = as_string(fields.get("run"), where, "'run'")
    data_id = as_mapping(fields.get("data_id"), where, "'data_id'")
    for key, value in data_id.items():
        as_string(key, where, "a data ID key")
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ExportFormatError(
                f"{where}: data ID value {key}={value!r} must be an integer or a string."
            )
    return ManifestRef(dataset_id, dataset_type, run, dict(data_id))


def as_record(
    row: Any,
    where: str,
    label: str,
    kinds: tuple[type, ...] = _SCALARS,
    described: str = "strings, numbers, booleans or null",
) -> dict[str, Any]:
    """``row`` as a dimension record: string keys, values of ``kinds`` (``described``), or
    an `ExportFormatError` naming ``where`` and ``label``."""
    fields = as_mapping(row, where, label)
    for key, value in fields.items():
        as_string(key, where, f"a key of {label}")
        if not isinstance(value, kinds):
            raise ExportFormatError(
                f"{where}: {label}.{key} is a {type(value).__name__}; record values are "
                f"{described}."
            )
    return dict(fields)


def _known_keys(fields: Mapping[Any, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(repr(k) for k in fields if k not in allowed)
    if unknown:
        raise ExportFormatError(
            f"{where}: unknown key(s) {', '.join(unknown)}; an entry here has only "
            f"{', '.join(sorted(allowed))}."
        )


def as_mapping(value: Any, where: str, label: str) -> Mapping[Any, Any]:
    """``value`` if it is a mapping, else an `ExportFormatError` naming ``where`` and ``label``."""
    if not isinstance(value, Mapping):
        raise ExportFormatError(
            f"{where}: {label} must be a mapping, not {type(value).__name__} {shortened(value)}."
        )
    return value


def as_list(value: Any, where: str, label: str) -> list[Any]:
    """``value`` if it is a list, else an `ExportFormatError` naming ``where`` and ``label``."""
    if not isinstance(value, list):
        raise ExportFormatError(
            f"{where}: {label} must be a list, not {type(value).__name__} {shortened(value)}."
        )
    return value


def as_string(value: Any, where: str, label: str) -> str:
    """``value`` if it is a non-empty string without NUL, else an `ExportFormatError`."""
    if not isinstance(value, str) or not value or "\x00" in value:
        raise ExportFormatError(
            f"{where}: {label} must be a non-empty string, not {type(value).__name__} "
            f"{shortened(value)}."
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ExportFormatError(f"{where}: {label} is not valid UTF-8 text.") from None
    if "\x00" in value:
        raise ExportFormatError(f"{where}: {label} contains a NUL character.")
    return value


def _uuid(value: Any, where: str, label: str) -> uuid.UUID:
    text = as_string(value, where, label)
    try:
        return uuid.UUID(text)
    except ValueError:
        raise ExportFormatError(f"{where}: {label} {shortened(text)} is not a UUID.") from None


def shortened(value: Any) -> str:
    """``repr(value)``, cut to 60 characters for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
