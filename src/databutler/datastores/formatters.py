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
    "bytes"    .bin       bytes, bytearray                    -

The optional packages are imported only when a formatter needs them; a missing
one raises `ConfigurationError` saying what to install. Every failure to write
or read raises `FormatterError` (a `ValueError`), never the backend's own error.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import json
import pickle
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import MappingProxyType, ModuleType
from typing import Any, ClassVar

from .._exceptions import ConfigurationError, DatabutlerError

__all__ = [
    "FORMATTERS",
    "BytesFormatter",
    "Formatter",
    "FormatterError",
    "JsonFormatter",
    "NumpyFormatter",
    "ParquetFormatter",
    "PickleFormatter",
    "YamlFormatter",
    "formatter_for",
    "formatter_for_object",
]


class FormatterError(DatabutlerError, ValueError):
    """An object cannot be written, or bytes cannot be read, by a formatter.

    The message names the formatter and the object's type, component or
    parameter at fault.
    """


def _require(module: str, package: str, formatter: str) -> ModuleType:
    """Import ``module`` (from distribution ``package``) for ``formatter``.

    Raises `ConfigurationError`, saying what to install, if it cannot be imported.
    """
    message = (
        f"The {formatter!r} formatter needs the optional package {package!r}; "
        f"install it with `pip install {package}`."
    )
    # find_spec on a dotted name imports the parent, so ask about the top level only.
    if importlib.util.find_spec(module.partition(".")[0]) is None:
        raise ConfigurationError(message)
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(message) from exc


def _is_instance(obj: Any, module: str, type_name: str) -> bool:
    """Whether ``obj`` is a ``module.type_name``, without importing ``module``.

    An object of a type from a module that was never imported cannot exist, so
    only modules already in `sys.modules` are looked at.
    """
    loaded = sys.modules.get(module)
    if loaded is None:
        return False
    cls = getattr(loaded, type_name, None)
    return isinstance(cls, type) and isinstance(obj, cls)


def _type_name(obj: Any) -> str:
    kind = type(obj)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _quoted(names: Any) -> str:
    listed = ", ".join(repr(name) for name in sorted(names, key=str))
    return listed or "none"


class Formatter(ABC):
    """Turns one kind of in-memory object into bytes and back.

    Subclasses implement `to_bytes` and `from_bytes`, and declare their
    registered `name`, file `extension`, the read `supported_parameters` and
    whether reads may ask for a component (`supports_components`). Formatters
    hold no state.
    """

    #: Short registered name (``"json"``), as used by `formatter_for`.
    name: ClassVar[str]

    #: File name extension, with the leading dot (``".json"``).
    extension: ClassVar[str]

    #: Parameters `from_bytes` accepts.
    supported_parameters: ClassVar[frozenset[str]] = frozenset()

    #: Whether `from_bytes` accepts a ``component``.
    supports_components: ClassVar[bool] = False

    @abstractmethod
    def to_bytes(self, obj: Any) -> bytes:
        """Serialize an object.

        Parameters
        ----------
        obj : `object`
            The object to write.

        Returns
        -------
        data : `bytes`
            Its serialized form.

        Raises
        ------
        FormatterError
            Raised if this formatter cannot write an object of that type (or
            that content).
        ConfigurationError
            Raised if an optional package the formatter needs is not installed.
        """
        raise NotImplementedError()

    @abstractmethod
    def from_bytes(
        self,
        data: bytes,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """Deserialize an object, or part of it.

        Parameters
        ----------
        data : `bytes`
            Bytes written by `to_bytes`.
        component : `str`, optional
            Return only this component of the stored object.
        parameters : `~collections.abc.Mapping` [`str`, `object`], optional
            Read options; their names must be in `supported_parameters`.

        Returns
        -------
        obj : `object`
            The object (or component, or subset) read.

        Raises
        ------
        FormatterError
            Raised if the bytes are not valid for this formatter, or the
            component or a parameter is unknown or unusable.
        ConfigurationError
            Raised if an optional package the formatter needs is not installed.
        """
        raise NotImplementedError()

    def check_read_options(
        self, component: str | None, parameters: Mapping[str, Any] | None
    ) -> Mapping[str, Any]:
        """Check a read's component and parameter names against what is supported.

        Parameters
        ----------
        component : `str` or `None`
            The component asked for.
        parameters : `~collections.abc.Mapping` [`str`, `object`] or `None`
            The parameters given.

        Returns
        -------
        parameters : `~collections.abc.Mapping` [`str`, `object`]
            The parameters, empty if `None` was given.

        Raises
        ------
        FormatterError
            Raised if a component is asked for and this formatter has none, or
            if a parameter is not supported; the message lists what is.
        """
        if component is not None and not self.supports_components:
            raise FormatterError(
                f"The {self.name!r} formatter has no component {component!r}; "
                "it supports no components."
            )
        parameters = {} if parameters is None else parameters
        unknown = set(parameters) - self.supported_parameters
        if unknown:
            raise FormatterError(
                f"The {self.name!r} formatter does not support parameter(s) {_quoted(unknown)}; "
                f"supported parameters: {_quoted(self.supported_parameters)}."
            )
        return parameters

    def _cannot_write(self, obj: Any, hint: str = "") -> FormatterError:
        return FormatterError(
            f"The {self.name!r} formatter cannot write an object of type {_type_name(obj)!r}{hint}."
        )

    def _cannot_read(self, exc: BaseException) -> FormatterError:
        return FormatterError(f"The {self.name!r} formatter cannot read these bytes: {exc}")

    def _mapping_component(self, value: Any, component: str | None) -> Any:
        """Return one key's value of a stored mapping, or all of it."""
        if component is None:
            return value
        if not isinstance(value, dict):
            raise FormatterError(
                f"The {self.name!r} formatter has no component {component!r}: components "
                f"are the keys of a stored mapping, and this dataset is a {_type_name(value)!r}."
            )
        try:
            return value[component]
        except KeyError:
            raise FormatterError(
                f"The {self.name!r} formatter has no component {component!r} in this dataset; "
                f"available components: {_quoted(value)}."
            ) from None


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
            return bytes(yaml.safe_dump(obj, sort_keys=False).encode("utf-8"))
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
            value = yaml.safe_load(data)
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


# -- Parquet ------------------------------------------------------------------------------

#: Schema metadata key marking a table that was written from a pandas DataFrame.
_PYTHON_TYPE_KEY = b"databutler.python_type"
_PANDAS_DATAFRAME = b"pandas.DataFrame"


class ParquetFormatter(Formatter):
    """Parquet through pyarrow, for a `pyarrow.Table` or a `pandas.DataFrame`.

    Reads return a `pyarrow.Table`, or a `pandas.DataFrame` if one was
    written (marked in the schema metadata). The ``columns`` parameter, a
    list of column names, reads only those columns.
    """

    name = "parquet"
    extension = ".parquet"
    supported_parameters = frozenset({"columns"})

    def to_bytes(self, obj: Any) -> bytes:
        # docstring inherited
        is_frame = _is_instance(obj, "pandas", "DataFrame")
        if not is_frame and not _is_instance(obj, "pyarrow", "Table"):
            raise self._cannot_write(obj, "; it writes pyarrow.Table and pandas.DataFrame")
        pa = _require("pyarrow", "pyarrow", self.name)
        pq = _require("pyarrow.parquet", "pyarrow", self.name)
        try:
            table = pa.Table.from_pandas(obj) if is_frame else obj
            metadata = dict(table.schema.metadata or {})
            metadata.pop(_PYTHON_TYPE_KEY, None)
            if is_frame:
                metadata[_PYTHON_TYPE_KEY] = _PANDAS_DATAFRAME
            table = table.replace_schema_metadata(metadata or None)
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink)
        except (pa.ArrowException, ValueError, TypeError) as exc:
            raise self._cannot_write(obj, f" ({exc})") from exc
        return bytes(sink.getvalue().to_pybytes())

    def from_bytes(
        self,
        data: bytes,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        # docstring inherited
        parameters = self.check_read_options(component, parameters)
        pa = _require("pyarrow", "pyarrow", self.name)
        pq = _require("pyarrow.parquet", "pyarrow", self.name)
        try:
            schema = pq.read_schema(pa.BufferReader(data))
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise self._cannot_read(exc) from exc
        is_frame = (schema.metadata or {}).get(_PYTHON_TYPE_KEY) == _PANDAS_DATAFRAME
        columns = parameters.get("columns")
        if columns is not None:
            columns = self._check_columns(columns, schema.names)
        if is_frame:
            # Fail before reading the data if it cannot be returned.
            _require("pandas", "pandas", self.name)
        try:
            table = pq.read_table(
                pa.BufferReader(data), columns=columns, use_pandas_metadata=is_frame
            )
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise self._cannot_read(exc) from exc
        return table.to_pandas() if is_frame else table

    def _check_columns(self, columns: Any, available: list[str]) -> list[str]:
        if isinstance(columns, str) or not all(isinstance(c, str) for c in columns):
            raise FormatterError(
                f"The {self.name!r} formatter's 'columns' parameter must be a list of "
                f"column names, not {columns!r}."
            )
        unknown = set(columns) - set(available)
        if unknown:
            raise FormatterError(
                f"The {self.name!r} formatter has no column(s) {_quoted(unknown)} in this "
                f"dataset; available columns: {_quoted(available)}."
            )
        return list(columns)


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
            BytesFormatter,
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
        `pyarrow.Table` or `pandas.DataFrame`; ``"json"`` for values that
        `JsonFormatter` writes; ``"pickle"`` for anything else.
    """
    if isinstance(obj, bytes | bytearray):
        return BytesFormatter()
    if _is_instance(obj, "numpy", "ndarray") and not obj.dtype.hasobject:
        return NumpyFormatter()
    if _is_instance(obj, "pyarrow", "Table") or _is_instance(obj, "pandas", "DataFrame"):
        return ParquetFormatter()
    try:
        if _json_problem(obj) is None:
            return JsonFormatter()
    except RecursionError:
        pass
    return PickleFormatter()
