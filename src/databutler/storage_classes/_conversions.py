"""What storage classes do to objects in memory: converters, derived components, read parameters.

Every function imports the optional package it needs (numpy, pandas,
pyarrow, astropy) when called, never before: `import databutler` stays light.
Tables convert through Arrow: any table kind becomes a `pyarrow.Table`
(`to_arrow`), and a `pyarrow.Table` becomes any table kind. Units and
descriptions of astropy columns travel as Arrow field metadata.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType, ModuleType
from typing import Any

from .._exceptions import ConfigurationError, StorageClassError
from ._storage_class import loaded_type, type_name

__all__ = [
    "ASSEMBLERS",
    "CONVERTERS",
    "DERIVED_COMPONENTS",
    "PARAMETERS",
    "apply_parameters",
    "column_names",
    "convert",
    "derived_component",
    "row_numbers",
    "table_kind",
]

#: Arrow field metadata keys carrying astropy column attributes.
_UNIT = b"unit"
_DESCRIPTION = b"description"

#: Table kinds by qualified type name, in the order they are tried.
_TABLE_TYPES = (
    ("arrow", "pyarrow.Table"),
    ("pandas", "pandas.DataFrame"),
    ("astropy", "astropy.table.Table"),
    ("numpy", "numpy.ndarray"),
    ("dict", "dict"),
)


def _module(name: str, package: str) -> ModuleType:
    if importlib.util.find_spec(name.partition(".")[0]) is None:
        raise ConfigurationError(
            f"This storage class needs the optional package {package!r}; "
            f"install it with `pip install {package}`."
        )
    return importlib.import_module(name)


def _is(obj: Any, qualified: str) -> bool:
    cls = loaded_type(qualified)
    return cls is not None and isinstance(obj, cls)


def table_kind(obj: Any) -> str | None:
    """``"arrow"``, ``"pandas"``, ``"astropy"``, ``"numpy"`` (structured) or ``"dict"``
    (of columns) for a table, else `None`."""
    for kind, qualified in _TABLE_TYPES:
        if _is(obj, qualified):
            if kind == "numpy" and obj.dtype.names is None:
                return None
            return kind
    return None


def _refuse(obj: Any, target: str, why: str = "") -> StorageClassError:
    return StorageClassError(
        f"Cannot convert an object of type {type_name(obj)!r} to {target}{why}."
    )


# -- tables ---------------------------------------------------------------------------


def to_arrow(obj: Any) -> Any:
    """Any table as a `pyarrow.Table`."""
    pa = _module("pyarrow", "pyarrow")
    kind = table_kind(obj)
    try:
        if kind == "arrow":
            return obj
        if kind == "pandas":
            return pa.Table.from_pandas(obj)
        if kind == "astropy":
            fields, arrays = [], []
            for name in obj.colnames:
                column = obj[name]
                mask = getattr(column, "mask", None)
                data = _native(column.data.data if mask is not None else column.data)
                array = pa.array(data, mask=mask) if mask is not None else pa.array(data)
                metadata = {}
                if column.unit is not None:
                    metadata[_UNIT] = column.unit.to_string().encode()
                if column.description:
                    metadata[_DESCRIPTION] = str(column.description).encode()
                fields.append(pa.field(name, array.type, metadata=metadata or None))
                arrays.append(array)
            return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
        if kind == "numpy":
            return pa.table({name: _native(obj[name]) for name in obj.dtype.names})
        if kind == "dict":
            return pa.table(dict(obj))
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise _refuse(obj, "an Arrow table", f" ({exc})") from exc
    raise _refuse(
        obj,
        "an Arrow table",
        "; tables are pyarrow.Table, pandas.DataFrame, astropy.table.Table, a structured "
        "numpy.ndarray or a dict of columns",
    )


def _column_array(column: Any) -> Any:
    """An Arrow column as a numpy array (strings as a unicode array, not objects)."""
    np = _module("numpy", "numpy")
    array = column.to_numpy(zero_copy_only=False)
    if array.dtype == object:
        array = np.asarray(array.tolist())
    return array


def to_pandas(obj: Any) -> Any:
    """Any table as a `pandas.DataFrame`."""
    _module("pandas", "pandas")
    if table_kind(obj) == "pandas":
        return obj
    return to_arrow(obj).to_pandas()


def to_astropy(obj: Any) -> Any:
    """Any table as an `astropy.table.Table` (units and descriptions kept through Arrow)."""
    table_module = _module("astropy.table", "astropy")
    if table_kind(obj) == "astropy":
        return obj
    if _is(obj, "astropy.io.fits.HDUList"):
        return _fits_table(obj, table_module)
    arrow = to_arrow(obj)
    result = table_module.Table()
    for field, column in zip(arrow.schema, arrow.columns, strict=True):
        metadata = field.metadata or {}
        unit = metadata.get(_UNIT)
        description = metadata.get(_DESCRIPTION)
        result[field.name] = table_module.Column(
            _column_array(column),
            name=field.name,
            unit=unit.decode() if unit else None,
            description=description.decode() if description else None,
        )
    return result


def _fits_table(hdus: Any, table_module: ModuleType) -> Any:
    """The first table HDU of an HDU list as an astropy table."""
    fits = _module("astropy.io.fits", "astropy")
    for hdu in hdus:
        if isinstance(hdu, fits.BinTableHDU | fits.TableHDU) and not isinstance(
            hdu, fits.CompImageHDU
        ):
            return table_module.Table.read(hdu, format="fits")
    kinds = ", ".join(type(hdu).__name__ for hdu in hdus)
    raise _refuse(hdus, "an astropy table", f"; it has no table HDU (its HDUs: {kinds})")


def to_structured_array(obj: Any) -> Any:
    """Any table as a structured `numpy.ndarray` (one named field per column)."""
    np = _module("numpy", "numpy")
    if table_kind(obj) == "numpy":
        return obj
    arrow = to_arrow(obj)
    columns = {name: _column_array(arrow.column(name)) for name in arrow.column_names}
    dtype = [(name, array.dtype, array.shape[1:]) for name, array in columns.items()]
    result = np.empty(arrow.num_rows, dtype=dtype)
    for name, array in columns.items():
        result[name] = array
    return result


def to_numpy_dict(obj: Any) -> dict[str, Any]:
    """Any table as a `dict` of column name to 1-D `numpy.ndarray`."""
    arrow = to_arrow(obj)
    return {name: _column_array(arrow.column(name)) for name in arrow.column_names}


# -- other converters -------------------------------------------------------------------


def to_numpy(obj: Any) -> Any:
    """A list (or tuple) of numbers as a `numpy.ndarray`."""
    np = _module("numpy", "numpy")
    try:
        array = np.asarray(obj)
    except (ValueError, TypeError) as exc:
        raise _refuse(obj, "a numpy.ndarray", f" ({exc})") from exc
    if array.dtype.hasobject:
        raise _refuse(obj, "a numpy.ndarray", " (its items are not numbers of one shape)")
    return array


def to_hdulist(obj: Any) -> Any:
    """An image array, an HDU or an astropy table as an `astropy.io.fits.HDUList`."""
    fits = _module("astropy.io.fits", "astropy")
    if isinstance(obj, fits.HDUList):
        return obj
    if isinstance(obj, fits.PrimaryHDU):
        return fits.HDUList([obj])
    if _is(obj, "numpy.ndarray") and obj.dtype.names is None:
        return fits.HDUList([fits.PrimaryHDU(obj)])
    if isinstance(obj, fits.hdu.base.ExtensionHDU):
        return fits.HDUList([fits.PrimaryHDU(), obj])
    if table_kind(obj) is not None:
        return fits.HDUList([fits.PrimaryHDU(), fits.table_to_hdu(to_astropy(obj))])
    raise _refuse(obj, "an astropy.io.fits.HDUList")


def to_bytes(obj: Any) -> bytes:
    """A `bytearray` or `memoryview` as `bytes`."""
    return bytes(obj)


def to_list(obj: Any) -> list[Any]:
    """A `tuple` as a `list`."""
    return list(obj)


#: Converters by registered name, as storage classes name them.
CONVERTERS: Mapping[str, Callable[[Any], Any]] = MappingProxyType(
    {
        "arrow": to_arrow,
        "pandas": to_pandas,
        "astropy": to_astropy,
        "structured_array": to_structured_array,
        "numpy_dict": to_numpy_dict,
        "numpy": to_numpy,
        "hdulist": to_hdulist,
        "bytes": to_bytes,
        "list": to_list,
    }
)


def convert(obj: Any, converter: str) -> Any:
    """Apply the converter registered as ``converter`` to ``obj``.

    Raises
    ------
    StorageClassError
        If the object cannot be converted (the message says why), also where the library
        that converts it fails on it (astropy on an array of Python objects).
    """
    try:
        return CONVERTERS[converter](obj)
    except StorageClassError:
        raise
    except (ArithmeticError, LookupError, TypeError, ValueError) as exc:
        raise _refuse(obj, f"what converter {converter!r} makes", f" ({exc!r})") from exc


# -- derived components -------------------------------------------------------------------


def _columns(obj: Any) -> Any:
    kind = table_kind(obj)
    if kind == "pandas":
        return obj.columns
    if kind == "arrow":
        return list(obj.column_names)
    if kind == "astropy":
        return list(obj.colnames)
    if kind == "numpy":
        return list(obj.dtype.names)
    if kind == "dict":
        return list(obj)
    raise _refuse(obj, "a list of columns", "; it is not a table")


def _rowcount(obj: Any) -> int:
    kind = table_kind(obj)
    if kind == "arrow":
        return int(obj.num_rows)
    if kind == "dict":
        return len(next(iter(obj.values()))) if obj else 0
    if kind is None:
        raise _refuse(obj, "a row count", "; it is not a table")
    return len(obj)


def _schema(obj: Any) -> Any:
    if table_kind(obj) is None:
        raise _refuse(obj, "an Arrow schema", "; it is not a table")
    return to_arrow(obj).schema


def _image_hdu(obj: Any, extname: str | None) -> Any:
    fits = _module("astropy.io.fits", "astropy")
    for hdu in to_hdulist(obj):
        if not isinstance(hdu, fits.PrimaryHDU | fits.ImageHDU | fits.CompImageHDU):
            continue
        if extname is None and hdu.data is not None:
            return hdu
        if extname is not None and hdu.name == extname:
            return hdu
    return None


def _native(data: Any) -> Any:
    """An array in this machine's byte order (FITS stores big-endian; Arrow takes only native)."""
    dtype = getattr(data, "dtype", None)
    if dtype is None or dtype.isnative or dtype.byteorder == "|":
        return data
    return data.astype(dtype.newbyteorder("="))


def _image(obj: Any) -> Any:
    hdu = _image_hdu(obj, None)
    return None if hdu is None else _native(hdu.data)


def _named_image(extname: str) -> Callable[[Any], Any]:
    def read(obj: Any) -> Any:
        hdu = _image_hdu(obj, extname)
        if hdu is None:
            names = ", ".join(repr(h.name) for h in to_hdulist(obj))
            raise StorageClassError(
                f"This FITS dataset has no image HDU named {extname!r} (its HDUs: {names})."
            )
        return _native(hdu.data)

    return read


#: Header keywords that may repeat: `header_dict` gathers their values in a list.
_COMMENTARY = frozenset({"COMMENT", "HISTORY"})


def header_dict(header: Any, fits: ModuleType) -> dict[str, Any]:
    """Return a FITS header as a `dict` of keyword to value.

    ``COMMENT`` and ``HISTORY`` map to lists of their cards' text; undefined
    values are `None`; blank cards, which only lay the header out, are left out.
    """
    values: dict[str, Any] = {}
    for card in header.cards:
        keyword = card.keyword
        if keyword in _COMMENTARY:
            values.setdefault(keyword, []).append(str(card.value))
        elif keyword:
            values[keyword] = None if isinstance(card.value, fits.card.Undefined) else card.value
    return values


def _header(obj: Any) -> dict[str, Any]:
    fits = _module("astropy.io.fits", "astropy")
    return header_dict(to_hdulist(obj)[0].header, fits)


#: Derived components computed in memory, by component name.
DERIVED_COMPONENTS: Mapping[str, Callable[[Any], Any]] = MappingProxyType(
    {
        "columns": _columns,
        "rowcount": _rowcount,
        "schema": _schema,
        "header": _header,
        "image": _image,
        "mask": _named_image("MASK"),
        "variance": _named_image("VARIANCE"),
    }
)


def derived_component(obj: Any, component: str) -> Any:
    """The derived component ``component`` of ``obj``, computed in memory."""
    return DERIVED_COMPONENTS[component](obj)


# -- composites: split into stored components, and put back together ----------------------

#: Header keywords astropy derives from the data: not carried in a ``header`` component.
_STRUCTURAL = re.compile(r"SIMPLE|BITPIX|NAXIS\d*|EXTEND|PCOUNT|GCOUNT|XTENSION")


def split_hdulist(obj: Any) -> dict[str, Any]:
    """An HDU list's ``image`` (primary data), ``header`` (primary header as a `dict`),
    and ``mask`` and ``variance`` (the image HDUs of those names) where present."""
    hdus = to_hdulist(obj)
    parts = {"header": _header(hdus)}
    readers = (
        ("image", _image),
        ("mask", _named_image("MASK")),
        ("variance", _named_image("VARIANCE")),
    )
    for name, read in readers:
        try:
            value = read(hdus)
        except StorageClassError:  # no such HDU: no such component
            continue
        if value is not None:
            parts[name] = value
    return parts


def assemble_hdulist(parts: Mapping[str, Any]) -> Any:
    """The HDU list `split_hdulist` made ``parts`` from (header values, not card layout)."""
    fits = _module("astropy.io.fits", "astropy")
    primary = fits.PrimaryHDU(parts.get("image"))
    for keyword, value in (parts.get("header") or {}).items():
        if _STRUCTURAL.fullmatch(keyword):
            continue
        if keyword in _COMMENTARY:
            for text in value:
                primary.header.append((keyword, text))
        else:
            primary.header[keyword] = value
    hdus = fits.HDUList([primary])
    for name in ("MASK", "VARIANCE"):
        if parts.get(name.lower()) is not None:
            hdus.append(fits.ImageHDU(parts[name.lower()], name=name))
    return hdus


#: Split and assemble functions of composite storage classes, by registered name.
ASSEMBLERS: Mapping[str, tuple[Callable[[Any], dict[str, Any]], Callable[[Any], Any]]] = (
    MappingProxyType({"hdulist": (split_hdulist, assemble_hdulist)})
)


# -- read parameters --------------------------------------------------------------------


def column_names(columns: Any) -> list[str]:
    """The names a ``columns`` read parameter lists.

    Raises
    ------
    StorageClassError
        If it is not an iterable (a list) of strings.
    """
    names = (
        list(columns)
        if isinstance(columns, Iterable) and not isinstance(columns, str | bytes | Mapping)
        else None
    )
    if names is None or not all(isinstance(c, str) for c in names):
        raise StorageClassError(
            f"The 'columns' parameter must be a list of column names, not {columns!r}."
        )
    return names


def row_numbers(rows: Any, count: int) -> range | list[int]:
    """The row numbers (0 to ``count - 1``, in the order given) a ``rows`` read parameter
    selects of a table of ``count`` rows: a slice of whole numbers, its step not 0 (a `range`
    then), or a list of row numbers (negative from the end).

    Raises
    ------
    StorageClassError
        If it is neither, or names a row the table does not have.
    """
    if isinstance(rows, slice):
        bounds = (rows.start, rows.stop, rows.step)
        if any(b is not None and (isinstance(b, bool) or not isinstance(b, int)) for b in bounds):
            raise StorageClassError(
                f"The 'rows' slice {rows!r} must have whole numbers (or None) for its start, "
                "stop and step."
            )
        if rows.step == 0:
            raise StorageClassError(
                f"The 'rows' slice {rows!r} has step 0; give a step of 1 or more (or below 0)."
            )
        return range(count)[rows]
    if isinstance(rows, list | tuple) and all(
        isinstance(r, int) and not isinstance(r, bool) for r in rows
    ):
        bad = [r for r in rows if not -count <= r < count]
        if bad:
            raise StorageClassError(
                f"No row(s) {bad[:3]} in this dataset of {count} rows; rows are numbered 0 to "
                f"{count - 1} (or -1 to -{count} from the end)."
            )
        return [r % count for r in rows]
    raise StorageClassError(
        f"The 'rows' parameter must be a slice or a list of row numbers, not {rows!r}."
    )


def _check_column_names(obj: Any, columns: Any) -> list[str]:
    columns = column_names(columns)
    available = [str(c) for c in _columns(obj)]
    unknown = sorted(set(columns) - set(available))
    if unknown:
        raise StorageClassError(
            f"No column(s) {', '.join(map(repr, unknown))} in this dataset; "
            f"available columns: {', '.join(map(repr, available))}."
        )
    return list(columns)


def _select_columns(obj: Any, columns: Any) -> Any:
    names = _check_column_names(obj, columns)
    kind = table_kind(obj)
    if kind == "arrow":
        return obj.select(names)
    if kind == "dict":
        return {name: obj[name] for name in names}
    return obj[names]


def _select_rows(obj: Any, rows: Any) -> Any:
    kind = table_kind(obj)
    if kind is None:
        raise _refuse(obj, "selected rows", "; it is not a table")
    if kind == "arrow":
        return obj.take(list(row_numbers(rows, obj.num_rows)))
    if kind == "pandas":
        return obj.iloc[list(row_numbers(rows, len(obj)))]
    if kind == "dict":
        count = min((len(column) for column in obj.values()), default=0)
        index = list(row_numbers(rows, count))
        return {name: _select_rows_of(column, index) for name, column in obj.items()}
    return obj[list(row_numbers(rows, len(obj)))]


def _select_rows_of(column: Any, index: list[int]) -> Any:
    if _is(column, "numpy.ndarray"):
        return column[index]
    return [column[i] for i in index]


def _slice(obj: Any, index: Any) -> Any:
    try:
        return obj[index]
    except (IndexError, TypeError, ValueError) as exc:
        raise StorageClassError(
            f"Cannot apply slice {index!r} to an object of type {type_name(obj)!r}"
            f"{f' of shape {obj.shape}' if hasattr(obj, 'shape') else ''}: {exc}"
        ) from exc


def _hdu(obj: Any, key: Any) -> Any:
    fits = _module("astropy.io.fits", "astropy")
    hdus = to_hdulist(obj)
    if isinstance(key, bool) or not isinstance(key, int | str):
        raise StorageClassError(
            f"The 'hdu' parameter must be an HDU index (int) or EXTNAME (str), not {key!r}."
        )
    try:
        hdu = hdus[key]
    except (IndexError, KeyError):
        available = ", ".join(f"{i} ({h.name!r})" for i, h in enumerate(hdus))
        raise StorageClassError(
            f"No HDU {key!r} in this FITS dataset; available HDUs: {available}."
        ) from None
    if isinstance(hdu, fits.PrimaryHDU):
        return fits.HDUList([hdu])
    if isinstance(hdu, fits.ImageHDU):
        return fits.HDUList([fits.PrimaryHDU(hdu.data, hdu.header)])
    return fits.HDUList([fits.PrimaryHDU(), hdu])


#: Read parameters applied in memory, by name.
PARAMETERS: Mapping[str, Callable[[Any, Any], Any]] = MappingProxyType(
    {"columns": _select_columns, "rows": _select_rows, "slice": _slice, "hdu": _hdu}
)


def apply_parameters(obj: Any, parameters: Mapping[str, Any]) -> Any:
    """``obj`` with each read parameter applied (columns before rows); one given as `None`
    selects nothing out (as formatters that read only part of a file take it)."""
    for name in sorted(parameters, key=lambda n: (n != "columns", n)):
        if parameters[name] is not None:
            obj = PARAMETERS[name](obj, parameters[name])
    return obj
