"""Formatters: how a datastore turns in-memory Python objects into bytes and back.

A `Formatter` writes one kind of object (`to_bytes`) and reads it back
(`from_bytes`), optionally only a part of it: a *component* (one key of a
stored mapping) or a subset selected by *parameters* (a slice of an array, a
list of table columns). Formatters are chosen by short registered name
(`formatter_for`) or by the type of the object to write (`formatter_for_object`)::

    name       extension  writes                              needs
    "json"     .json      dict/list/str/int/float/bool/None   -
    "yaml"     .yaml      whatever ``yaml.safe_dump`` takes   pyyaml
    "pickle"   .pickle    any picklable object                -
    "npy"      .npy       numpy.ndarray (no object dtype)     numpy
    "parquet"  .parquet   pyarrow.Table, pandas.DataFrame     pyarrow (and pandas)
    "fits"     .fits      astropy HDUList or HDU, ndarray,    astropy
                          astropy.table.Table
    "bytes"    .bin       bytes, bytearray                    -
    "text"     .txt       str (UTF-8)                         -

The optional packages are imported only when a formatter needs them; a missing
one raises `ConfigurationError` saying what to install. Every failure to write
or read raises `FormatterError` (a `ValueError`), never the backend's own error.
"""

from __future__ import annotations

import io
import json
import pickle
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .. import _yaml
from .._exceptions import ConfigurationError
from ._fits import FitsFormatter, _is_fits_object
from ._formatter_base import (
    Formatter,
    FormatterError,
    _is_instance,
    _quoted,
    _require,
    _type_name,
)
from ._parquet import ParquetFormatter

__all__ = [
    "FORMATTERS",
    "BytesFormatter",
    "FitsFormatter",
    "Formatter",
    "FormatterError",
    "JsonFormatter",
    "NumpyFormatter",
    "ParquetFormatter",
    "PickleFormatter",
    "TextFormatter",
    "YamlFormatter",
    "formatter_for",
    "formatter_for_object",
]


# -- JSON ---------------------------------------------------------------------------------

_JSON_SCALAR_TYPES = frozenset({str, int, float, bool, type(None)})


def _json_problem(obj: Any, where: str = "", ancestors: frozenset[int] = frozenset()) -> str | None:
    """Say why ``obj`` would not read back from JSON as it is, or return `None`.

    Only exact builtin types qualify: subclasses (enums, ``OrderedDict``),
    tuples and non-`str` keys would come back as something else.
    """
    kind = type(obj)
    if kind in _JSON_SCALAR_TYPES:
        return None
    at = f" at {where}" if where else ""
    if kind is list or kind is dict:
        if id(obj) in ancestors:
            return f"a {kind.__qualname__} that contains itself{at}"
        ancestors = ancestors | {id(obj)}
        if kind is list:
            items = ((f"{where}[{i}]", item) for i, item in enumerate(obj))
        else:
            for key in obj:
                if type(key) is not str:
                    return f"a key of type {_type_name(key)!r}{at} (JSON keys are str)"
            items = ((f"{where}[{key!r}]", item) for key, item in obj.items())
        for item_where, item in items:
            problem = _json_problem(item, item_where, ancestors)
            if problem is not None:
                return problem
        return None
    return f"an object of type {_type_name(obj)!r}{at}"


class JsonFormatter(Formatter):
    """JSON, for `dict`, `list`, `str`, `int`, `float`, `bool` and `None`, nested.

    Components are the keys of a stored `dict`.

    Notes
    -----
    Only values that read back equal are written: tuples, non-`str` keys and
    subclasses of the builtin types are refused. Non-finite floats are
    written as ``NaN``/``Infinity``, which Python reads back but strict JSON
    parsers do not.
    """

    name = "json"
    extension = ".json"
    supports_components = True

    def to_bytes(self, obj: Any) -> bytes:
        # docstring inherited
        try:
            problem = _json_problem(obj)
            if problem is None:
                return json.dumps(obj).encode("ascii")
        except RecursionError:
            problem = "a value nested too deeply"
        raise FormatterError(
            f"The {self.name!r} formatter cannot write {problem}; use the 'pickle' formatter "
            "for other Python objects."
        )

    def from_bytes(
        self,
        data: bytes,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        # docstring inherited
        self.check_read_options(component, parameters)
        try:
            value = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise self._cannot_read(exc) from exc
        return self._mapping_component(value, component)


# -- YAML ---------------------------------------------------------------------------------


class YamlFormatter(Formatter):
    """YAML through PyYAML's safe dumper and loader (the optional ``pyyaml`` package).

    Components are the keys of a stored mapping.
    """

    name = "yaml"
    extension = ".yaml"
    supports_components = True

    def to_bytes(self, obj: Any) -> bytes:
        # docstring inherited
        yaml = _require("yaml", "pyyaml", self.name)
        try:
            return _yaml.dump(obj).encode("utf-8")
        except yaml.YAMLError as exc:
            # A RepresenterError's args are (reason, obj): show the reason only.
            reason = exc.args[0] if exc.args and isinstance(exc.args[0], str) else exc
            raise self._cannot_write(obj, f" ({reason}); use the 'pickle' formatter") from exc

    def from_bytes(
        self,
        data: bytes,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        # docstring inherited
        self.check_read_options(component, parameters)
        yaml = _require("yaml", "pyyaml", self.name)
        try:
            value = _yaml.load(data)
        except (yaml.YAMLError, ValueError) as exc:
            raise self._cannot_read(exc) from exc
        return self._mapping_component(value, component)


# -- pickle -------------------------------------------------------------------------------


class PickleFormatter(Formatter):
    """Python's pickle, for any picklable object.

    Notes
    -----
    Reading a pickle can run arbitrary code: read only bytes this process (or
    a trusted one) wrote.
    """

    name = "pickle"
    extension = ".pickle"

    def to_bytes(self, obj: Any) -> bytes:
        # docstring inherited
        try:
            return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise self._cannot_write(obj, f" ({exc})") from exc

    def from_bytes(
        self,
        data: bytes,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        # docstring inherited
        self.check_read_options(component, parameters)
        try:
            return pickle.loads(data)
        # Corrupt pickles fail in many ways (EOFError, KeyError, ImportError, ...).
        except Exception as exc:
            raise self._cannot_read(exc) from exc


# -- NumPy --------------------------------------------------------------------------------

_NPY_MAGIC = b"\x93NUMPY"


class NumpyFormatter(Formatter):
    """NumPy's ``.npy`` format, for a `numpy.ndarray` (the optional ``numpy`` package).

    Arrays of ``object`` dtype are refused, as reading them would need pickle.
    The ``slice`` parameter reads ``array[parameters["slice"]]``: an index,
    a `slice`, or a tuple of them.
    """

    name = "npy"
    extension = ".npy"
    supported_parameters = frozenset({"slice"})
    pushdown_parameters = frozenset({"slice"})

    def to_bytes(self, obj: Any) -> bytes:
        # docstring inherited
        if not _is_instance(obj, "numpy", "ndarray"):
            raise self._cannot_write(obj, "; it writes numpy.ndarray")
        np = _require("numpy", "numpy", self.name)
        if obj.dtype.hasobject:
            raise self._cannot_write(obj, " of object dtype; use the 'pickle' formatter")
        buffer = io.BytesIO()
        try:
            np.save(buffer, obj, allow_pickle=False)
        except ValueError as exc:
            raise self._cannot_write(obj, f" ({exc})") from exc
        return buffer.getvalue()

    def from_bytes(
        self,
        data: bytes,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        # docstring inherited
        parameters = self.check_read_options(component, parameters)
        np = _require("numpy", "numpy", self.name)
        # Checked here so numpy.load never takes the .npz or pickle paths.
        if not data.startswith(_NPY_MAGIC):
            raise FormatterError(f"The {self.name!r} formatter cannot read these bytes: not .npy")
        try:
            array = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise self._cannot_read(exc) from exc
        if "slice" not in parameters:
            return array
        index = parameters["slice"]
        try:
            return array[index]
        except (IndexError, TypeError, ValueError) as exc:
            raise FormatterError(
                f"The {self.name!r} formatter cannot apply slice {index!r} "
                f"to an array of shape {array.shape}: {exc}"
            ) from exc


# -- bytes --------------------------------------------------------------------------------


class BytesFormatter(Formatter):
    """Bytes as they are, for `bytes` and `bytearray`; reads return `bytes`."""

    name = "bytes"
    extension = ".bin"

    def to_bytes(self, obj: Any) -> bytes:
        # docstring inherited
        if not isinstance(obj, bytes | bytearray):
            raise self._cannot_write(obj, "; it writes bytes and bytearray")
        return bytes(obj)

    def from_bytes(
        self,
        data: bytes,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        # docstring inherited
        self.check_read_options(component, parameters)
        return bytes(data)


# -- text -------------------------------------------------------------------------------


class TextFormatter(Formatter):
    """A `str` as UTF-8 text."""

    name = "text"
    extension = ".txt"

    def to_bytes(self, obj: Any) -> bytes:
        # docstring inherited
        if not isinstance(obj, str):
            raise self._cannot_write(obj, "; it writes str")
        try:
            return obj.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates
            raise self._cannot_write(obj, f" ({exc})") from exc

    def from_bytes(
        self,
        data: bytes,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        # docstring inherited
        self.check_read_options(component, parameters)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._cannot_read(exc) from exc


# -- registry -----------------------------------------------------------------------------

#: Formatter classes by registered name.
FORMATTERS: Mapping[str, type[Formatter]] = MappingProxyType(
    {
        cls.name: cls
        for cls in (
            JsonFormatter,
            YamlFormatter,
            PickleFormatter,
            NumpyFormatter,
            ParquetFormatter,
            FitsFormatter,
            BytesFormatter,
            TextFormatter,
        )
    }
)


def formatter_for(name: str) -> Formatter:
    """Return a formatter by registered name.

    Parameters
    ----------
    name : `str`
        A key of `FORMATTERS` (``"json"``, ``"parquet"``, ...).

    Returns
    -------
    formatter : `Formatter`
        A new formatter of that name.

    Raises
    ------
    ConfigurationError
        Raised if no formatter has that name; the message lists valid names.
    """
    try:
        cls = FORMATTERS[name]
    except KeyError:
        raise ConfigurationError(
            f"No formatter is named {name!r}; valid names: {_quoted(FORMATTERS)}."
        ) from None
    return cls()


def formatter_for_object(obj: Any) -> Formatter:
    """Return the formatter that writes an object of that type best.

    Parameters
    ----------
    obj : `object`
        The object to write.

    Returns
    -------
    formatter : `Formatter`
        ``"bytes"`` for `bytes` and `bytearray`; ``"npy"`` for a
        `numpy.ndarray` (not of object dtype); ``"parquet"`` for a
        `pyarrow.Table` or `pandas.DataFrame`; ``"fits"`` for an astropy
        `~astropy.io.fits.HDUList` or HDU; ``"json"`` for values that
        `JsonFormatter` writes; ``"pickle"`` for anything else.
    """
    if isinstance(obj, bytes | bytearray):
        return BytesFormatter()
    if _is_instance(obj, "numpy", "ndarray") and not obj.dtype.hasobject:
        return NumpyFormatter()
    if _is_instance(obj, "pyarrow", "Table") or _is_instance(obj, "pandas", "DataFrame"):
        return ParquetFormatter()
    if _is_fits_object(obj):
        return FitsFormatter()
    try:
        if _json_problem(obj) is None:
            return JsonFormatter()
    except RecursionError:
        pass
    return PickleFormatter()
