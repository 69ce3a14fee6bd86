"""Reading the files commands take: dimension records, tables of files to ingest, universes.

Every file is read by `read_text`, as UTF-8 (a leading byte-order mark is
dropped), and parsed here; what is wrong with a file (its encoding, its
syntax, a field too long, nesting too deep, a date that does not exist) is a
`CommandError` that names the file and the fix, never a traceback.

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
import functools
import io
import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._app import CommandError

if TYPE_CHECKING:
    from ..dimensions import DimensionUniverse

__all__ = [
    "read_file_table",
    "read_records",
    "read_text",
    "read_universe",
    "typed_data_id",
    "typed_record",
]

#: What to tell someone whose file is nested past Python's recursion limit.
_TOO_DEEP = "is nested too deeply to read (lists or mappings inside one another, hundreds deep)"

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
        except (ValueError, RecursionError):
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


def read_text(path: Path) -> str:
    """The text of a file the user gave, decoded as UTF-8 (a leading byte-order mark dropped).

    Raises
    ------
    CommandError
        If the file is not UTF-8; the message names the first bad byte, its
        line, and how to convert the file.
    """
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CommandError(
            f"{path} is not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start} "
            f"(line {line}) is {exc.reason}; save the file as UTF-8, e.g. with "
            f"'iconv -f latin1 -t utf-8' if it is Latin-1."
        ) from None
    return text.removeprefix("\ufeff")  # a byte-order mark, as spreadsheets write


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
        delimiter = "\t" if suffix == ".tsv" else ","
        rows = _csv_rows(path, read_text(path), delimiter, long_hint="or give such records in YAML")
        header = next(rows, (1, []))[1]
        records = []
        for line, row in rows:
            if not row:
                continue
            if len(row) > len(header):
                raise CommandError(
                    f"{path}, row {line}: {len(row)} fields where the header has {len(header)}."
                )
            # A short row leaves its last fields without a value, as empty cells do.
            records.append(dict(zip(header, row + [""] * (len(header) - len(row)), strict=True)))
        return [(name, records)]
    raise CommandError(f"{path}: give records as .yaml/.yml, .csv or .tsv (by its extension).")


def _need_element(element: str | None, path: Path) -> str:
    if element is None:
        raise CommandError(
            f"{path} does not say which dimension its records are of; pass --element."
        )
    return element


def _csv_rows(
    path: Path, text: str, delimiter: str, *, long_hint: str = ""
) -> Iterator[tuple[int, list[str]]]:
    """The rows of ``text``, CSV/TSV read from ``path``, each with the line it ends on.

    ``long_hint`` is what else to suggest for a field longer than `csv` reads.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            yield reader.line_num, row
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise CommandError(
                f"{path}, line {reader.line_num}: a field is longer than "
                f"{csv.field_size_limit()} characters, the most a CSV field may hold; check for "
                f"a double quote that is not closed (it runs the field on to the next one)"
                f"{', ' + long_hint if long_hint else ''}."
            ) from None
        raise CommandError(f"{path}, line {reader.line_num} is not valid CSV: {exc}.") from None


def _load_yaml(path: Path) -> Any:
    try:
        import yaml  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        raise CommandError(
            "Reading YAML needs PyYAML: pip install 'databutler[yaml]', or give a CSV file."
        ) from None
    text = read_text(path)
    try:
        loader = _yaml_loader()(text)
    except yaml.reader.ReaderError as exc:  # a character YAML text may not hold, found at once
        raise CommandError(
            f"{path} is not valid YAML: character {exc.position + 1} is #x{exc.character:04x} "
            f"({exc.reason}); remove it (YAML text holds no control characters such as NUL)."
        ) from None
    loader.name = str(path)  # the file, in the marks of errors
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        # One line: where, then what; PyYAML's own text repeats the line under a caret.
        mark = getattr(exc, "problem_mark", None)
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
        detail = ", ".join(str(p) for p in parts if p) or " ".join(str(exc).split())
        raise CommandError(f"{path} is not valid YAML{where}: {detail}.") from None
    except RecursionError:
        raise CommandError(f"{path} {_TOO_DEEP}; records are flat mappings.") from None
    finally:
        loader.dispose()


@functools.cache
def _yaml_loader() -> Any:
    """PyYAML's safe loader, raising a `CommandError` that says where for a value it cannot build.

    PyYAML itself raises a bare `ValueError` for ``2024-13-45`` or ``0x_``,
    naming neither the value nor where it is. The loader's ``name`` is the file.
    """
    import yaml  # type: ignore[import-untyped,unused-ignore]

    def construct_object(self: Any, node: Any, deep: bool = False) -> Any:
        try:
            return yaml.SafeLoader.construct_object(self, node, deep)
        except (ValueError, TypeError, AttributeError) as exc:
            kind = node.tag.rpartition(":")[2]
            what = "a real date or time" if kind == "timestamp" else f"a valid {kind}"
            why = f" ({exc})" if isinstance(exc, ValueError) else ""  # others are PyYAML's
            mark = node.start_mark
            raise CommandError(
                f"{mark.name}, line {mark.line + 1}, column {mark.column + 1}: {node.value!r} "
                f"is not {what}{why}; correct it, or quote it to keep it as text."
            ) from None

    return type("_Loader", (yaml.SafeLoader,), {"construct_object": construct_object})


def read_universe(path: Path) -> DimensionUniverse:
    """The dimension universe a JSON file describes (``databutler create --universe``)."""
    from .._exceptions import DimensionConfigError
    from ..dimensions import DimensionUniverse

    text = read_text(path)
    try:
        return DimensionUniverse.from_json(text)
    except RecursionError:
        raise CommandError(f"{path} {_TOO_DEEP}.") from None
    except DimensionConfigError as exc:
        reason = exc.__cause__ if exc.__cause__ is not None else exc
        if isinstance(reason, json.JSONDecodeError):
            raise CommandError(f"{path} is not valid JSON: {reason}.") from None
        raise CommandError(
            f"{path} is not a dimension universe description: {reason}; it is a JSON object "
            "with 'namespace', 'version' and 'dimensions'."
        ) from None


def read_file_table(path: Path, prefix: Path | None) -> list[tuple[str, dict[str, str]]]:
    """Files and data ID values from a CSV/TSV table: ``(file, {column: text})`` per row.

    The header names the columns; the first column is the file, relative
    paths being taken from ``prefix`` or else the table's directory.
    """
    base = prefix if prefix is not None else path.parent
    text = read_text(path)
    first = text.partition("\n")[0]
    tabbed = path.suffix.lower() in (".tsv", ".tab") or ("\t" in first and "," not in first)
    rows = [
        (line, row)
        for line, row in _csv_rows(path, text, "\t" if tabbed else ",")
        if any(cell.strip() for cell in row)
    ]
    if not rows:
        raise CommandError(f"{path} is empty; its header names the file column and data ID keys.")
    header, body = [cell.strip() for cell in rows[0][1]], rows[1:]
    entries = []
    for line, row in body:
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
