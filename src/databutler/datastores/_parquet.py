"""The Parquet formatter: tables through pyarrow (`pyarrow.Table`, `pandas.DataFrame`, ...)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from .._exceptions import StorageClassError
from ..storage_classes._conversions import column_names, row_numbers
from ._formatter_base import Formatter, FormatterError, _is_instance, _quoted, _require

__all__ = ["ParquetFormatter"]

#: Schema metadata key marking a table that was written from a pandas DataFrame.
_PYTHON_TYPE_KEY = b"databutler.python_type"
_PANDAS_DATAFRAME = b"pandas.DataFrame"


class ParquetFormatter(Formatter):
    """Parquet through pyarrow, for a `pyarrow.Table` or a `pandas.DataFrame`.

    Other tables (an `astropy.table.Table`, a structured `numpy.ndarray`, a
    `dict` of columns) are written through their Arrow form (astropy units
    and descriptions as field metadata). Reads return a `pyarrow.Table`, or
    a `pandas.DataFrame` if one was written (marked in the schema metadata).
    The ``columns`` parameter, a list of column names, reads only those
    columns; ``rows``, a `slice` or a list of row numbers, only those rows.
    The derived components ``columns``, ``rowcount`` and ``schema`` are read
    from the file's footer alone.
    """

    name = "parquet"
    extension = ".parquet"
    supported_parameters = frozenset({"columns", "rows"})
    reads_parts = True
    pushdown_parameters = frozenset({"columns", "rows"})
    derived_components = frozenset({"columns", "rowcount", "schema"})

    def to_bytes(self, obj: Any) -> bytes:
        # docstring inherited
        from ..storage_classes._conversions import table_kind, to_arrow

        is_frame = _is_instance(obj, "pandas", "DataFrame")
        if table_kind(obj) is None:
            raise self._cannot_write(
                obj,
                "; it writes pyarrow.Table, pandas.DataFrame, astropy.table.Table, a "
                "structured numpy.ndarray and a dict of columns",
            )
        pa = _require("pyarrow", "pyarrow", self.name)
        pq = _require("pyarrow.parquet", "pyarrow", self.name)
        try:
            table = pa.Table.from_pandas(obj) if is_frame else to_arrow(obj)
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

    def read_derived(self, data: bytes, component: str, pytype: str | None) -> Any:
        # docstring inherited
        return self._derived(data, component, pytype)

    def read_file_derived(self, file: BinaryIO, component: str, pytype: str | None) -> Any:
        # docstring inherited; the footer only
        return self._derived(file, component, pytype)

    def read_file(
        self,
        file: BinaryIO,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        # docstring inherited; the footer, then the chunks of the columns asked for
        return self._read(file, component, parameters)

    def _source(self, data: bytes | BinaryIO) -> Any:
        pa = _require("pyarrow", "pyarrow", self.name)
        if isinstance(data, bytes | bytearray | memoryview):
            return pa.BufferReader(data)
        data.seek(0)
        return pa.PythonFile(data, mode="r")

    def _derived(self, data: bytes | BinaryIO, component: str, pytype: str | None) -> Any:
        if component not in self.derived_components:
            return super().read_derived(b"", component, pytype)  # refuses it
        pa = _require("pyarrow", "pyarrow", self.name)
        pq = _require("pyarrow.parquet", "pyarrow", self.name)
        try:
            metadata = pq.read_metadata(self._source(data))
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise self._cannot_read(exc) from exc
        if component == "rowcount":
            return int(metadata.num_rows)
        schema = metadata.schema.to_arrow_schema()
        if component == "schema":
            return schema
        pandas_metadata = schema.pandas_metadata or {}
        index = {i for i in pandas_metadata.get("index_columns", []) if isinstance(i, str)}
        names = [name for name in schema.names if name not in index]
        if pytype == "pandas.DataFrame":
            pd = _require("pandas", "pandas", self.name)
            return pd.Index(names)
        return names

    def from_bytes(
        self,
        data: bytes,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        # docstring inherited
        return self._read(data, component, parameters)

    def _read(
        self,
        data: bytes | BinaryIO,
        component: str | None,
        parameters: Mapping[str, Any] | None,
    ) -> Any:
        parameters = self.check_read_options(component, parameters)
        pa = _require("pyarrow", "pyarrow", self.name)
        pq = _require("pyarrow.parquet", "pyarrow", self.name)
        try:
            # One footer read for the schema and the columns' places; the
            # chunks of the columns asked for are then fetched together.
            parquet = pq.ParquetFile(self._source(data), pre_buffer=True)
            schema = parquet.schema_arrow
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise self._cannot_read(exc) from exc
        is_frame = (schema.metadata or {}).get(_PYTHON_TYPE_KEY) == _PANDAS_DATAFRAME
        columns = parameters.get("columns")
        if columns is not None:
            columns = self._check_columns(columns, schema.names)
        rows = parameters.get("rows")
        if is_frame:
            # Fail before reading the data if it cannot be returned.
            _require("pandas", "pandas", self.name)
        try:
            table = parquet.read(columns=columns, use_pandas_metadata=is_frame)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise self._cannot_read(exc) from exc
        if rows is not None:
            table = self._rows(table, rows)
        return table.to_pandas() if is_frame else table

    def _parameter(self, check: Callable[..., Any], *args: Any) -> Any:
        """``check(*args)``, the check of a read parameter shared with the storage classes,
        its error raised as this formatter's."""
        try:
            return check(*args)
        except StorageClassError as exc:
            raise FormatterError(f"The {self.name!r} formatter cannot read that: {exc}") from None

    def _rows(self, table: Any, rows: Any) -> Any:
        numbers = self._parameter(row_numbers, rows, table.num_rows)
        if isinstance(numbers, range) and numbers.step == 1:
            return table.slice(numbers.start, len(numbers))  # a view: no copy
        return table.take(list(numbers))

    def _check_columns(self, columns: Any, available: list[str]) -> list[str]:
        columns = self._parameter(column_names, columns)
        unknown = set(columns) - set(available)
        if unknown:
            raise FormatterError(
                f"The {self.name!r} formatter has no column(s) {_quoted(unknown)} in this "
                f"dataset; available columns: {_quoted(available)}."
            )
        return list(columns)
