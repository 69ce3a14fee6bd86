"""Reading the files commands take: dimension records (YAML, CSV) and tables of files to ingest.

Text from CSV files and ``NAME=VALUE`` options is typed by the dimension
fields it fills: integers for integer keys (``detector``), floats, booleans,
and ISO dates for datetime fields (UTC when no time zone is given); a timespan
is ``{begin, end}`` (a YAML mapping, or that JSON in a CSV cell, as the query
commands print it; null for unbounded) and bytes (regions, hashes) are
hexadecimal text.
"""

from __future__ import annotations

import csv
import datetime
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._app import CommandError

if TYPE_CHECKING:
    from ..dimensions import DimensionUniverse

__all__ = ["read_file_table", "read_records", "typed_data_id", "typed_record"]

_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


def _typed(dtype: str, value: Any, where: str) -> Any:
    """``value`` converted to a field of type ``dtype`` (text is parsed; others pass)."""
    if dtype == "timespan":
        return _timespan(value, where)
    if dtype in ("region", "bytes") and isinstance(value, str) and value.strip():
        try:
            return bytes.fromhex(value.strip())
        except ValueError:
            raise CommandError(f"{where}: {value!r} is not hexadecimal bytes.") from None
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)
    if isinstance(value, datetime.date) and dtype == "datetime":
        return datetime.datetime(value.year, value.month, value.day, tzinfo=datetime.UTC)
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text:
        return None  # an empty CSV cell: no value
    if dtype == "string":
        return value
    try:
        if dtype == "int":
            return int(text)
        if dtype == "float":
            return float(text)
        if dtype == "datetime":
            return _typed(dtype, datetime.datetime.fromisoformat(text), where)
    except ValueError:
        kind = {"int": "an integer", "float": "a number", "datetime": "an ISO date-time"}[dtype]
        raise CommandError(f"{where}: {value!r} is not {kind}.") from None
    if dtype == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise CommandError(f"{where}: {value!r} is not true or false.")
    return value


def _timespan(value: Any, where: str) -> Any:
    """A timespan from ``{begin, end}`` (a mapping, or its JSON text); ISO times or null."""
    from .._collection_type import Timespan

    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, Mapping) or set(value) != {"begin", "end"}:
        raise CommandError(
            f"{where}: a timespan is {{begin, end}} with ISO times or null (unbounded), e.g. "
            '{"begin": "2024-01-01T03:00:00+00:00", "end": null}.'
        )
    bounds = [_typed("datetime", value[side], f"{where}.{side}") for side in ("begin", "end")]
    for bound in bounds:
        if bound is not None and not isinstance(bound, datetime.datetime):
            raise CommandError(f"{where}: {bound!r} is not an ISO date-time.")
    try:
        return Timespan(bounds[0], bounds[1])
    except ValueError as exc:
        raise CommandError(f"{where}: {exc}") from None


def typed_data_id(universe: DimensionUniverse, values: Mapping[str, Any]) -> dict[str, Any]:
    """A data ID with each value typed as its dimension's key (unknown names left alone)."""
    typed = {}
    for name, value in values.items():
        dimension = universe.get(name)
        typed[name] = (
            value if dimension is None else _typed(dimension.key.dtype, value, f"data ID {name}")
        )
    return typed


def typed_record(
    universe: DimensionUniverse, element: str, record: Mapping[str, Any], where: str
) -> dict[str, Any]:
    """A dimension record with each field typed as ``element`` declares it."""
    from ..dimensions import Dimension

    dimension = universe.element(element)
    types = {}
    if isinstance(dimension, Dimension):
        types = {element: dimension.key.dtype, dimension.key.name: dimension.key.dtype}
    for name in (*dimension.required, *dimension.implied):
        types[name] = universe[name].key.dtype
    types.update((field.name, field.dtype) for field in dimension.metadata)
    return {
        str(name): _typed(types.get(str(name), "string"), value, f"{where}, field {name}")
        for name, value in record.items()
    }


def read_records(path: Path, element: str | None) -> list[tuple[str, list[dict[str, Any]]]]:
    """Dimension records from a YAML or CSV/TSV file, as ``(element, records)`` in file order.

    YAML holds a list of mappings (then ``element`` names their dimension)
    or a mapping of dimension name to such a list; CSV's header names the fields.
    """
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        content = _load_yaml(path)
        if isinstance(content, list):
            groups = [(_need_element(element, path), content)]
        elif isinstance(content, dict) and all(isinstance(v, list) for v in content.values()):
            if element is not None:
                raise CommandError(
                    f"{path} maps dimension names to records; drop --element, or give a list."
                )
            groups = [(str(name), records) for name, records in content.items()]
        else:
            raise CommandError(
                f"{path} must hold a list of records (with --element) or a mapping of "
                "dimension name to a list of records."
            )
        for name, records in groups:
            for i, record in enumerate(records):
                if not isinstance(record, dict):
                    raise CommandError(f"{path}: {name} record {i + 1} is not a mapping.")
        return [(name, [dict(r) for r in records]) for name, records in groups]
    if suffix in (".csv", ".tsv"):
        name = _need_element(element, path)
        with path.open(newline="", encoding="utf-8") as stream:
            delimiter = "\t" if suffix == ".tsv" else ","
            return [(name, [dict(row) for row in csv.DictReader(stream, delimiter=delimiter)])]
    raise CommandError(f"{path}: give records as .yaml/.yml, .csv or .tsv (by its extension).")


def _need_element(element: str | None, path: Path) -> str:
    if element is None:
        raise CommandError(
            f"{path} does not say which dimension its records are of; pass --element."
        )
    return element


def _load_yaml(path: Path) -> Any:
    try:
        import yaml  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise CommandError(
            "Reading YAML needs PyYAML: pip install 'databutler[yaml]', or give a CSV file."
        ) from None
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CommandError(f"{path} is not valid YAML: {exc}") from None


def read_file_table(path: Path, prefix: Path | None) -> list[tuple[str, dict[str, str]]]:
    """Files and data ID values from a CSV/TSV table: ``(file, {column: text})`` per row.

    The header names the columns; the first column is the file, relative
    paths being taken from ``prefix`` or else the table's directory.
    """
    base = prefix if prefix is not None else path.parent
    with path.open(newline="", encoding="utf-8") as stream:
        text = stream.read()
    first = text.partition("\n")[0]
    tabbed = path.suffix.lower() in (".tsv", ".tab") or ("\t" in first and "," not in first)
    reader = csv.reader(text.splitlines(), delimiter="\t" if tabbed else ",")
    rows = [row for row in reader if any(cell.strip() for cell in row)]
    if not rows:
        raise CommandError(f"{path} is empty; its header names the file column and data ID keys.")
    header, body = [cell.strip() for cell in rows[0]], rows[1:]
    entries = []
    for line, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise CommandError(
                f"{path}, row {line}: {len(row)} columns where the header has {len(header)}."
            )
        file = row[0].strip()
        if not file:
            raise CommandError(f"{path}, row {line}: the file column is empty.")
        if "://" not in file and not Path(file).is_absolute():
            file = str(base / file)
        entries.append((file, {k: v.strip() for k, v in zip(header[1:], row[1:], strict=True)}))
    return entries


def merge_data_id(
    fixed: Iterable[tuple[str, str]], row: Mapping[str, str], where: str
) -> dict[str, str]:
    """The ``--data-id`` values with a table row's; a key given by both is an error."""
    merged = dict(fixed)
    for key, value in row.items():
        if key in merged:
            raise CommandError(f"{where}: {key!r} is given by both --data-id and the table.")
        merged[key] = value
    return merged
