"""The Parquet formatter: `pyarrow.Table` and `pandas.DataFrame` through pyarrow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._formatter_base import Formatter, FormatterError, _is_instance, _quoted, _require

__all__ = ["ParquetFormatter"]

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
