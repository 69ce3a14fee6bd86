"""Tests for databutler.datastores.formatters: round trips, partial reads, errors, the registry."""

from __future__ import annotations

import pickle
import sys
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from databutler._exceptions import ConfigurationError, DatabutlerError
from databutler.datastores.formatters import (
    FORMATTERS,
    BytesFormatter,
    Formatter,
    FormatterError,
    JsonFormatter,
    NumpyFormatter,
    ParquetFormatter,
    PickleFormatter,
    YamlFormatter,
    formatter_for,
    formatter_for_object,
)


class Point:
    """A picklable object no other formatter writes."""

    def __init__(self, x: int) -> None:
        self.x = x

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and other.x == self.x

    __hash__ = None  # type: ignore[assignment]


def yaml_formatter() -> YamlFormatter:
    pytest.importorskip("yaml")
    return YamlFormatter()


NESTED = {"name": "calexp", "sizes": [1, 2.5, None], "flags": {"ok": True, "bad": False}}


# -- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("formatter", "obj"),
    [
        ("json", NESTED),
        ("json", [1, "two", None]),
        ("json", "text"),
        ("json", 3),
        ("json", None),
        ("yaml", NESTED),
        ("pickle", [Point(1), (1, 2), {3}]),
        ("bytes", b"\x00\xffraw"),
    ],
)
def test_round_trip(formatter: str, obj: Any) -> None:
    f = yaml_formatter() if formatter == "yaml" else formatter_for(formatter)
    data = f.to_bytes(obj)
    assert isinstance(data, bytes)
    assert f.from_bytes(data) == obj


def test_bytes_accepts_bytearray() -> None:
    f = BytesFormatter()
    result = f.from_bytes(f.to_bytes(bytearray(b"abc")))
    assert result == b"abc"
    assert type(result) is bytes


@pytest.mark.parametrize(
    "array",
    [np.arange(12, dtype=np.int32).reshape(3, 4), np.array([1.5, np.nan]), np.array(["a", "bc"])],
)
def test_numpy_round_trip(array: np.ndarray) -> None:
    f = NumpyFormatter()
    result = f.from_bytes(f.to_bytes(array))
    assert result.dtype == array.dtype
    np.testing.assert_array_equal(result, array)


def test_numpy_slice() -> None:
    f = NumpyFormatter()
    data = f.to_bytes(np.arange(12).reshape(3, 4))
    np.testing.assert_array_equal(
        f.from_bytes(data, parameters={"slice": (slice(1, 3), 0)}), [4, 8]
    )
    np.testing.assert_array_equal(f.from_bytes(data, parameters={"slice": 2}), [8, 9, 10, 11])
    with pytest.raises(FormatterError, match=r"cannot apply slice 7 to an array of shape \(3, 4\)"):
        f.from_bytes(data, parameters={"slice": 7})


def test_parquet_arrow_round_trip() -> None:
    f = ParquetFormatter()
    table = pa.table({"id": [1, 2, 3], "band": ["g", "r", "i"]})
    result = f.from_bytes(f.to_bytes(table))
    assert isinstance(result, pa.Table)
    assert result.equals(table)
    subset = f.from_bytes(f.to_bytes(table), parameters={"columns": ["band"]})
    assert subset.column_names == ["band"]
    assert subset.column("band").to_pylist() == ["g", "r", "i"]


def test_parquet_pandas_round_trip() -> None:
    f = ParquetFormatter()
    frame = pd.DataFrame(
        {"id": [1, 2], "flux": [0.5, 1.5]}, index=pd.Index(["a", "b"], name="source")
    )
    data = f.to_bytes(frame)
    result = f.from_bytes(data)
    assert isinstance(result, pd.DataFrame)
    pd.testing.assert_frame_equal(result, frame)
    pd.testing.assert_frame_equal(
        f.from_bytes(data, parameters={"columns": ["flux"]}), frame[["flux"]]
    )


def test_parquet_table_from_pandas_stays_a_table() -> None:
    # A table that came from pandas is still a table: only DataFrames read back as DataFrames.
    f = ParquetFormatter()
    table = pa.Table.from_pandas(pd.DataFrame({"x": [1]}))
    assert isinstance(f.from_bytes(f.to_bytes(table)), pa.Table)
    frame_table = pa.BufferReader(f.to_bytes(pd.DataFrame({"x": [1]})))
    assert isinstance(f.from_bytes(f.to_bytes(pq.read_table(frame_table))), pa.Table)


# -- components -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["json", "yaml"])
def test_mapping_components(name: str) -> None:
    f = yaml_formatter() if name == "yaml" else formatter_for(name)
    data = f.to_bytes(NESTED)
    assert f.from_bytes(data, component="sizes") == [1, 2.5, None]
    assert f.from_bytes(data, component="flags") == {"ok": True, "bad": False}
    with pytest.raises(
        FormatterError,
        match=rf"'{name}' formatter has no component 'size' in this dataset; "
        r"available components: 'flags', 'name', 'sizes'",
    ):
        f.from_bytes(data, component="size")
    with pytest.raises(FormatterError, match=r"keys of a stored mapping.*'list'"):
        f.from_bytes(f.to_bytes([1]), component="x")


@pytest.mark.parametrize("name", ["pickle", "npy", "parquet", "bytes"])
def test_no_components(name: str) -> None:
    with pytest.raises(
        FormatterError, match=rf"'{name}' formatter has no component 'x'; it supports no components"
    ):
        formatter_for(name).from_bytes(b"", component="x")


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({1, 2}, r"cannot write an object of type 'set'; use the 'pickle'"),
        ({"a": [(1, 2)]}, r"cannot write an object of type 'tuple' at \['a'\]\[0\]"),
        ({1: "a"}, r"cannot write a key of type 'int' \(JSON keys are str\)"),
        ([Point(1)], r"cannot write an object of type '.*Point' at \[0\]"),
        (np.int64(3), r"cannot write an object of type 'numpy.int64'"),
    ],
)
def test_json_refuses(obj: Any, message: str) -> None:
    with pytest.raises(FormatterError, match=r"The 'json' formatter " + message):
        JsonFormatter().to_bytes(obj)


def test_json_refuses_cycles_and_deep_nesting() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(FormatterError, match="a list that contains itself at \\[0\\]"):
        JsonFormatter().to_bytes(cycle)
    deep: list[Any] = []
    for _ in range(sys.getrecursionlimit() + 10):
        deep = [deep]
    with pytest.raises(FormatterError, match="nested too deeply"):
        JsonFormatter().to_bytes(deep)
    assert isinstance(formatter_for_object(cycle), PickleFormatter)


@pytest.mark.parametrize(
    ("formatter", "obj", "message"),
    [
        ("yaml", Point(1), r"type '.*Point' \(cannot represent"),
        ("pickle", lambda: None, r"type 'function'"),
        ("npy", [1, 2], r"type 'list'; it writes numpy.ndarray"),
        ("npy", np.array([{}]), r"type 'numpy.ndarray' of object dtype; use the 'pickle'"),
        ("parquet", {"a": [1]}, r"type 'dict'; it writes pyarrow.Table and pandas.DataFrame"),
        ("parquet", pd.DataFrame({"a": [1, "x"]}), r"type 'pandas.*DataFrame' \("),
        ("bytes", "text", r"type 'str'; it writes bytes and bytearray"),
    ],
)
def test_unwritable(formatter: str, obj: Any, message: str) -> None:
    f = yaml_formatter() if formatter == "yaml" else formatter_for(formatter)
    with pytest.raises(
        FormatterError, match=rf"The '{formatter}' formatter cannot write an object of {message}"
    ):
        f.to_bytes(obj)


@pytest.mark.parametrize(
    ("formatter", "data"),
    [
        ("json", b'{"a": '),
        ("json", b"\xff\xfe\xfa"),
        ("yaml", b"a: [1"),
        ("pickle", b"not a pickle"),
        ("pickle", pickle.dumps([1, 2])[:-3]),
        ("npy", b"PK\x03\x04 a zip"),
        ("npy", NumpyFormatter().to_bytes(np.arange(10))[:-8]),
        ("parquet", b"PAR1 nonsense PAR1"),
        ("parquet", b""),
    ],
)
def test_corrupt_bytes(formatter: str, data: bytes) -> None:
    f = yaml_formatter() if formatter == "yaml" else formatter_for(formatter)
    with pytest.raises(
        FormatterError, match=rf"The '{formatter}' formatter cannot read these bytes"
    ):
        f.from_bytes(data)


@pytest.mark.parametrize(
    ("formatter", "supported"),
    [("json", "none"), ("npy", "'slice'"), ("parquet", "'columns'"), ("bytes", "none")],
)
def test_unknown_parameter(formatter: str, supported: str) -> None:
    with pytest.raises(
        FormatterError,
        match=rf"'{formatter}' formatter does not support parameter\(s\) 'rows', 'zoom'; "
        rf"supported parameters: {supported}\.",
    ):
        formatter_for(formatter).from_bytes(b"", parameters={"zoom": 2, "rows": 1})


def test_parquet_bad_columns() -> None:
    f = ParquetFormatter()
    data = f.to_bytes(pa.table({"id": [1], "band": ["g"]}))
    with pytest.raises(
        FormatterError,
        match=r"no column\(s\) 'flux' in this dataset; available columns: 'band', 'id'",
    ):
        f.from_bytes(data, parameters={"columns": ["id", "flux"]})
    with pytest.raises(FormatterError, match=r"'columns' parameter must be a list of column names"):
        f.from_bytes(data, parameters={"columns": "id"})


def test_formatter_error_is_a_value_error() -> None:
    assert issubclass(FormatterError, DatabutlerError)
    assert issubclass(FormatterError, ValueError)


@pytest.mark.parametrize(
    ("module", "formatter", "package", "obj"),
    [
        ("yaml", "yaml", "pyyaml", {"a": 1}),
        ("numpy", "npy", "numpy", np.zeros(2)),
        ("pyarrow", "parquet", "pyarrow", pa.table({"a": [1]})),
    ],
)
def test_missing_optional_package(
    monkeypatch: pytest.MonkeyPatch, module: str, formatter: str, package: str, obj: Any
) -> None:
    # A None entry in sys.modules makes the module unfindable and unimportable.
    monkeypatch.setitem(sys.modules, module, None)
    f = formatter_for(formatter)
    message = (
        rf"'{formatter}' formatter needs the optional package '{package}'.*pip install {package}"
    )
    with pytest.raises(ConfigurationError, match=message):
        f.from_bytes(b"")
    if module == "yaml":  # with numpy or pyarrow "gone", their objects are not recognized
        with pytest.raises(ConfigurationError, match=message):
            f.to_bytes(obj)


def test_missing_pandas_for_a_dataframe(monkeypatch: pytest.MonkeyPatch) -> None:
    f = ParquetFormatter()
    data = f.to_bytes(pd.DataFrame({"a": [1]}))
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ConfigurationError, match=r"pip install pandas"):
        f.from_bytes(data)


# -- registry -------------------------------------------------------------------------------


def test_registry() -> None:
    expected = {
        "json": ".json",
        "yaml": ".yaml",
        "pickle": ".pickle",
        "npy": ".npy",
        "parquet": ".parquet",
        "bytes": ".bin",
    }
    assert {name: cls.extension for name, cls in FORMATTERS.items()} == expected
    for name, cls in FORMATTERS.items():
        assert issubclass(cls, Formatter)
        assert cls.name == name
        assert isinstance(formatter_for(name), cls)
    with pytest.raises(
        ConfigurationError,
        match=r"No formatter is named 'fits'; valid names: 'bytes', 'json', 'npy', 'parquet', "
        r"'pickle', 'yaml'\.",
    ):
        formatter_for("fits")


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (b"raw", BytesFormatter),
        (bytearray(b"raw"), BytesFormatter),
        (np.zeros(3), NumpyFormatter),
        (np.array([None]), PickleFormatter),
        (pa.table({"a": [1]}), ParquetFormatter),
        (pd.DataFrame({"a": [1]}), ParquetFormatter),
        (NESTED, JsonFormatter),
        ("text", JsonFormatter),
        (1.5, JsonFormatter),
        (None, JsonFormatter),
        ({"a": {1, 2}}, PickleFormatter),
        ((1, 2), PickleFormatter),
        (Point(1), PickleFormatter),
        (np.float64(1.0), PickleFormatter),
    ],
)
def test_formatter_for_object(obj: Any, expected: type[Formatter]) -> None:
    f = formatter_for_object(obj)
    assert type(f) is expected
    f.to_bytes(obj)  # whatever it chooses can write the object


# -- properties -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@given(json_values)
def test_json_round_trip_property(value: Any) -> None:
    f = formatter_for_object(value)
    assert isinstance(f, JsonFormatter)
    assert f.from_bytes(f.to_bytes(value)) == value
