"""Tests for databutler.datastores.formatters: round trips, partial reads, errors, the registry."""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning
from hypothesis import given
from hypothesis import strategies as st

from databutler._exceptions import ConfigurationError, DatabutlerError
from databutler.datastores import FileDatastore
from databutler.datastores.formatters import (
    FORMATTERS,
    BytesFormatter,
    FitsFormatter,
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
from databutler.registry import SqlRegistry
from databutler.testing.datastore import make_refs


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
        ("parquet", {"a": 1}, r"type 'dict' \(Cannot convert an object of type 'dict' to an Arrow"),
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
    [
        ("json", "none"),
        ("npy", "'slice'"),
        ("parquet", "'columns', 'rows'"),
        ("fits", "'hdu'"),
        ("bytes", "none"),
    ],
)
def test_unknown_parameter(formatter: str, supported: str) -> None:
    with pytest.raises(
        FormatterError,
        match=rf"'{formatter}' formatter does not support parameter\(s\) 'zoom'; "
        rf"supported parameters: {supported}\.",
    ):
        formatter_for(formatter).from_bytes(b"", parameters={"zoom": 2})


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


# -- FITS -----------------------------------------------------------------------------------

IMAGE = np.arange(12, dtype=np.float32).reshape(3, 4)


def catalog() -> Table:
    return Table({"id": [1, 2, 3], "band": ["g", "r", "i"]}, meta={"EXTNAME": "CAT"})


def assert_same_hdus(result: Any, expected: fits.HDUList) -> None:
    assert isinstance(result, fits.HDUList)
    assert [(type(h), h.name) for h in result] == [(type(h), h.name) for h in expected]
    for got, want in zip(result, expected, strict=True):
        if want.data is None:
            assert got.data is None
        else:
            np.testing.assert_array_equal(got.data, want.data)


def test_fits_hdulist_round_trip() -> None:
    f = FitsFormatter()
    hdus = fits.HDUList(
        [fits.PrimaryHDU(IMAGE), fits.ImageHDU(IMAGE * 2, name="VAR"), fits.table_to_hdu(catalog())]
    )
    assert_same_hdus(f.from_bytes(f.to_bytes(hdus)), hdus)


def test_fits_single_hdus() -> None:
    f = FitsFormatter()
    primary = f.from_bytes(f.to_bytes(fits.PrimaryHDU(IMAGE)))
    assert_same_hdus(primary, fits.HDUList([fits.PrimaryHDU(IMAGE)]))
    # An extension HDU goes after an empty primary HDU, as FITS requires.
    extension = f.from_bytes(f.to_bytes(fits.ImageHDU(IMAGE, name="SCI")))
    assert_same_hdus(extension, fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(IMAGE, name="SCI")]))


def test_fits_array_round_trip() -> None:
    f = FitsFormatter()
    data = f.to_bytes(IMAGE)
    result = f.from_bytes(data)
    assert len(result) == 1
    assert isinstance(result[0], fits.PrimaryHDU)
    np.testing.assert_array_equal(result[0].data, IMAGE)
    primary = f.from_bytes(data, component="primary")
    assert primary.dtype == IMAGE.dtype and primary.dtype.isnative  # not FITS's big-endian
    np.testing.assert_array_equal(primary, IMAGE)
    primary[0, 0] = -1  # an ordinary array in memory, not tied to the bytes


def test_fits_table_round_trip() -> None:
    f = FitsFormatter()
    data = f.to_bytes(catalog())
    result = f.from_bytes(data)
    assert [type(h) for h in result] == [fits.PrimaryHDU, fits.BinTableHDU]
    assert f.from_bytes(data, component="primary") is None
    table = f.from_bytes(data, component="table")
    assert isinstance(table, Table)
    assert table.colnames == ["id", "band"]
    assert list(table["id"]) == [1, 2, 3]
    assert list(table["band"]) == ["g", "r", "i"]


def test_fits_read_is_detached() -> None:
    # Everything is read while the file is open; the list holds no open file afterwards.
    result = FitsFormatter().from_bytes(FitsFormatter().to_bytes(fits.ImageHDU(IMAGE, name="SCI")))
    assert result._file is None or result._file.closed
    np.testing.assert_array_equal(result["SCI"].data, IMAGE)
    # What was read can be written again.
    assert_same_hdus(FitsFormatter().from_bytes(FitsFormatter().to_bytes(result)), result)


def test_fits_header_component() -> None:
    f = FitsFormatter()
    primary = fits.PrimaryHDU(IMAGE)
    primary.header["OBJECT"] = "M31"
    primary.header["EXPTIME"] = (30.0, "seconds")
    primary.header["COMMENT"] = "first"
    primary.header["COMMENT"] = "second"
    primary.header["HISTORY"] = "made by a test"
    header = f.from_bytes(f.to_bytes(primary), component="header")
    assert type(header) is dict
    assert header["OBJECT"] == "M31"
    assert header["EXPTIME"] == 30.0
    assert header["NAXIS1"] == 4
    assert header["COMMENT"] == ["first", "second"]
    assert header["HISTORY"] == ["made by a test"]


def test_fits_hdu_parameter() -> None:
    f = FitsFormatter()
    hdus = fits.HDUList(
        [fits.PrimaryHDU(IMAGE), fits.ImageHDU(IMAGE * 2, name="VAR"), fits.table_to_hdu(catalog())]
    )
    data = f.to_bytes(hdus)
    np.testing.assert_array_equal(f.from_bytes(data, parameters={"hdu": 0}), IMAGE)
    np.testing.assert_array_equal(f.from_bytes(data, parameters={"hdu": "VAR"}), IMAGE * 2)
    np.testing.assert_array_equal(f.from_bytes(data, parameters={"hdu": "var"}), IMAGE * 2)
    assert list(f.from_bytes(data, parameters={"hdu": 2})["band"]) == ["g", "r", "i"]
    available = r"available HDUs: 0 \('PRIMARY'\), 1 \('VAR'\), 2 \('CAT'\)\."
    with pytest.raises(FormatterError, match=r"'fits' formatter has no HDU 3 in this dataset; "):
        f.from_bytes(data, parameters={"hdu": 3})
    with pytest.raises(FormatterError, match=r"no HDU 'SCI' in this dataset; " + available):
        f.from_bytes(data, parameters={"hdu": "SCI"})


@pytest.mark.parametrize("hdu", [1.0, True, None, ["VAR"]])
def test_fits_bad_hdu_parameter(hdu: Any) -> None:
    with pytest.raises(
        FormatterError,
        match=r"'fits' formatter's 'hdu' parameter must be an HDU index \(int\) or EXTNAME",
    ):
        FitsFormatter().from_bytes(FitsFormatter().to_bytes(IMAGE), parameters={"hdu": hdu})


def test_fits_bad_component() -> None:
    f = FitsFormatter()
    with pytest.raises(
        FormatterError,
        match=r"'fits' formatter has no component 'image'; "
        r"available components: 'header', 'primary', 'table'\.",
    ):
        f.from_bytes(b"", component="image")  # refused before the bytes are read
    with pytest.raises(FormatterError, match=r"takes a component or the 'hdu' parameter, not both"):
        f.from_bytes(f.to_bytes(IMAGE), component="primary", parameters={"hdu": 0})
    with pytest.raises(
        FormatterError,
        match=r"no component 'table' in this dataset: it has no table HDU "
        r"\(its HDUs: PrimaryHDU, ImageHDU\)",
    ):
        f.from_bytes(f.to_bytes(fits.ImageHDU(IMAGE)), component="table")


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([1, 2], r"type 'list'; it writes astropy.io.fits.HDUList and HDUs, numpy.ndarray"),
        (np.array([{}]), r"type 'numpy.ndarray' of object dtype; use the 'pickle'"),
        (np.array(["a"]), r"type 'numpy.ndarray' \(no FITS image type for dtype 'str32'\)"),
        (
            fits.HDUList([fits.ImageHDU(IMAGE)]),
            r"type '.*HDUList' \(Verification reported errors: HDUList's 0th element is not",
        ),
    ],
)
def test_fits_unwritable(obj: Any, message: str) -> None:
    with pytest.raises(FormatterError, match=r"The 'fits' formatter cannot write an object of "):
        FitsFormatter().to_bytes(obj)
    with pytest.raises(FormatterError, match=message):
        FitsFormatter().to_bytes(obj)


@pytest.mark.parametrize(
    "data",
    [b"", b"SIMPLE  = nonsense" * 200, FitsFormatter().to_bytes(IMAGE)[:-100]],
    ids=["empty", "garbage", "truncated"],
)
def test_fits_corrupt_bytes(data: bytes) -> None:
    with pytest.raises(FormatterError, match=r"The 'fits' formatter cannot read these bytes"):
        FitsFormatter().from_bytes(data)


def test_fits_refuses_a_partly_read_file() -> None:
    # astropy reads the first HDU of a file cut inside the second, with a warning only.
    f = FitsFormatter()
    data = f.to_bytes(fits.HDUList([fits.PrimaryHDU(IMAGE), fits.ImageHDU(IMAGE, name="SCI")]))
    assert len(data) == 4 * 2880  # two HDUs, each a header block and a data block
    with (
        pytest.warns(AstropyUserWarning, match="Error validating header for HDU #1"),
        pytest.raises(FormatterError, match=r"its 1 HDU\(s\) end at byte 5760, but there are 7000"),
    ):
        f.from_bytes(data[:7000])
    with (
        pytest.warns(AstropyUserWarning, match="truncated"),
        pytest.raises(FormatterError, match=r"2 HDU\(s\) end at byte 11520, but there are 11510"),
    ):
        f.from_bytes(data[:-10])
    with pytest.raises(FormatterError, match=r"cannot read these bytes"):
        f.from_bytes(data + b"\0" * 2880)


def test_fits_missing_astropy(monkeypatch: pytest.MonkeyPatch) -> None:
    data = FitsFormatter().to_bytes(IMAGE)
    # A None entry in sys.modules makes the module unfindable and unimportable.
    monkeypatch.setitem(sys.modules, "astropy", None)
    f = formatter_for("fits")
    message = (
        r"'fits' formatter needs the optional package 'astropy'; "
        r"install it with `pip install 'databutler\[fits\]'`\."
    )
    with pytest.raises(ConfigurationError, match=message):
        f.from_bytes(data)
    with pytest.raises(ConfigurationError, match=message):
        f.to_bytes(IMAGE)


def test_fits_through_a_file_datastore(tmp_path: Path) -> None:
    registry = SqlRegistry.create("sqlite://")
    # The storage class, not the object's type, picks the formatter (issue 11): the
    # datasets are of storage class Fits, whose components are image, mask, variance
    # and header, and whose 'hdu' parameter selects one HDU as an HDUList of its own.
    hdus_ref, image_ref = (ref.override_storage_class("Fits") for ref in make_refs(registry, 2))
    datastore = FileDatastore("files", registry.datastore_bridges, str(tmp_path / "store"))
    hdus = fits.HDUList([fits.PrimaryHDU(IMAGE), fits.ImageHDU(IMAGE * 2, name="VAR")])
    hdus[0].header["OBJECT"] = "M31"
    datastore.put(hdus, hdus_ref)
    assert datastore.get_uri(hdus_ref).endswith(".fits")
    assert_same_hdus(datastore.get(hdus_ref), hdus)
    np.testing.assert_array_equal(datastore.get(hdus_ref, component="image"), IMAGE)
    assert datastore.get(hdus_ref, component="header")["OBJECT"] == "M31"
    selected = datastore.get(hdus_ref, parameters={"hdu": "VAR"})
    assert isinstance(selected, fits.HDUList) and len(selected) == 1
    np.testing.assert_array_equal(selected[0].data, IMAGE * 2)
    # A FITS file from elsewhere is read by its extension.
    source = tmp_path / "calexp.fit"
    fits.PrimaryHDU(IMAGE).writeto(source)
    datastore.ingest([(source, image_ref)], transfer="copy")
    np.testing.assert_array_equal(datastore.get(image_ref, component="image"), IMAGE)


# -- registry -------------------------------------------------------------------------------


def test_registry() -> None:
    expected = {
        "json": ".json",
        "yaml": ".yaml",
        "pickle": ".pickle",
        "npy": ".npy",
        "parquet": ".parquet",
        "fits": ".fits",
        "bytes": ".bin",
        "text": ".txt",
    }
    assert {name: cls.extension for name, cls in FORMATTERS.items()} == expected
    for name, cls in FORMATTERS.items():
        assert issubclass(cls, Formatter)
        assert cls.name == name
        assert isinstance(formatter_for(name), cls)
    with pytest.raises(
        ConfigurationError,
        match=r"No formatter is named 'hdf5'; valid names: 'bytes', 'fits', 'json', 'npy', "
        r"'parquet', 'pickle', 'text', 'yaml'\.",
    ):
        formatter_for("hdf5")


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (b"raw", BytesFormatter),
        (bytearray(b"raw"), BytesFormatter),
        (np.zeros(3), NumpyFormatter),
        (np.array([None]), PickleFormatter),
        (pa.table({"a": [1]}), ParquetFormatter),
        (pd.DataFrame({"a": [1]}), ParquetFormatter),
        (fits.HDUList([fits.PrimaryHDU(np.zeros(2))]), FitsFormatter),
        (fits.PrimaryHDU(np.zeros(2)), FitsFormatter),
        (fits.ImageHDU(np.zeros(2)), FitsFormatter),
        (fits.BinTableHDU(Table({"a": [1]})), FitsFormatter),
        (Table({"a": [1]}), PickleFormatter),
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


def test_fits_images_come_back_in_native_byte_order() -> None:
    import numpy as np

    formatter = formatter_for("fits")
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    data = formatter.to_bytes(image)
    for read in (
        formatter.from_bytes(data, component="primary"),
        formatter.from_bytes(data, parameters={"hdu": 0}),
    ):
        assert read.dtype.isnative and read.dtype == np.dtype("float32")
        assert np.array_equal(read, image)
