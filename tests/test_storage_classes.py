"""Storage classes decide what is stored and what comes back (issue 11).

Every test runs on SQLite + local files, PostgreSQL + S3 (moto on 127.0.0.1)
and SQLite + a chained datastore, and looks at the artifacts themselves (their
extension and first bytes) and at how many bytes a read fetched.
"""

from __future__ import annotations

import re
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import Table

from databutler import (
    Butler,
    ConfigurationError,
    DatasetType,
    StorageClass,
    StorageClassError,
    StorageClassRegistry,
)
from databutler.datastores.resources import LocalStore
from databutler.registry.dataset_types import DatasetTypeConflictError
from databutler.testing.butler import RepositoryFactory, artifact_of, file_datastore, populate

TYPES = {
    "table": "ArrowTable",
    "frame": "DataFrame",
    "astropy": "AstropyTable",
    "arrow_astropy": "ArrowAstropy",
    "arrow_numpy": "ArrowNumpy",
    "array": "NumpyArray",
    "image": "Fits",
    "exposure": "ExposureLike",
    "text": "Text",
    "blob": "Bytes",
    "pickled": "Pickle",
    "listing": "StructuredDataList",
    "legacy": "ExposureF",  # a storage class databutler does not know
}


@pytest.fixture
def butler(repositories: RepositoryFactory) -> Butler:
    created = repositories.create(run="r1")
    populate(created, detectors=5)
    for name, storage_class in TYPES.items():
        created.register_dataset_type(name, ["detector"], storage_class)
    return created


def put(butler: Butler, obj: Any, name: str, detector: int = 0) -> Any:
    return butler.put(obj, name, instrument="HSC", detector=detector)


def get(butler: Butler, name: str, detector: int = 0, **kwargs: Any) -> Any:
    return butler.get(name, instrument="HSC", detector=detector, **kwargs)


def artifact(butler: Butler, ref: Any) -> tuple[str, bytes]:
    """The artifact's path and its bytes, read straight from the storage."""
    store, path = artifact_of(butler, ref)
    return path, store.read(path)


def state(butler: Butler) -> tuple[Any, ...]:
    """What a refused put must leave as it was: every dataset and every artifact."""
    datasets = sorted(
        str(ref.id) for name in TYPES for ref in butler.query_datasets(name, collections="r1")
    )
    return datasets, sorted(file_datastore(butler).store.list())


@contextmanager
def bytes_read(butler: Butler) -> Iterator[list[int]]:
    """Count the bytes this process reads from the artifacts during the block.

    S3: the bytes of every GetObject response (boto3's event hook on the
    store's client). Local files: the kernel's count of bytes read by this
    process (``rchar`` of /proc/self/io).
    """
    store = file_datastore(butler).store
    counted = [0]
    if isinstance(store, LocalStore):
        before = _rchar()
        yield counted
        counted[0] = _rchar() - before
        return
    client = store._client  # type: ignore[attr-defined]

    def count(http_response: Any, parsed: Any, **_: Any) -> None:
        counted[0] += int(parsed.get("ContentLength") or 0)

    client.meta.events.register("after-call.s3.GetObject", count)
    try:
        yield counted
    finally:
        client.meta.events.unregister("after-call.s3.GetObject", count)


def _rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def wide_table(rows: int = 2_000, columns: int = 6) -> pa.Table:
    rng = np.random.default_rng(11)
    return pa.table({f"c{i}": rng.random(rows) for i in range(columns)})


# -- the registry ---------------------------------------------------------------------


def test_shipped_storage_classes() -> None:
    registry = StorageClassRegistry()
    expected = {
        "StructuredDataDict": ("dict", "json"),
        "StructuredDataList": ("list", "json"),
        "NumpyArray": ("numpy.ndarray", "npy"),
        "ArrowTable": ("pyarrow.Table", "parquet"),
        "DataFrame": ("pandas.DataFrame", "parquet"),
        "AstropyTable": ("astropy.table.Table", "fits"),
        "ArrowAstropy": ("astropy.table.Table", "parquet"),
        "ArrowNumpy": ("numpy.ndarray", "parquet"),
        "ArrowNumpyDict": ("dict", "parquet"),
        "Fits": ("astropy.io.fits.HDUList", "fits"),
        "ExposureLike": ("astropy.io.fits.HDUList", "fits"),
        "Bytes": ("bytes", "bytes"),
        "Text": ("str", "text"),
        "Pickle": ("object", "pickle"),
    }
    for name, (pytype, formatter) in expected.items():
        assert (registry[name].pytype, registry[name].formatter) == (pytype, formatter), name
    assert registry["ArrowTable"].parameters == {"columns", "rows"}
    assert registry["NumpyArray"].parameters == {"slice"}
    assert registry["Fits"].parameters == {"hdu"}
    assert set(registry["Fits"].derived_components) == {"header", "image", "mask", "variance"}
    assert registry["DataFrame"].derived_components == {
        "columns": "DataFrameIndex",
        "rowcount": "int",
        "schema": "ArrowSchema",
    }
    assert registry["ArrowTable"].converters["pandas.DataFrame"] == "arrow"


def test_import_databutler_imports_no_optional_package() -> None:
    import subprocess

    code = (
        "import sys, databutler\n"
        "from databutler import StorageClassRegistry\n"
        "StorageClassRegistry()['ArrowTable']\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'pyarrow', 'astropy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_configured_storage_classes() -> None:
    registry = StorageClassRegistry().with_config(
        {
            "SourceTable": {"inherits": "ArrowTable"},
            "Notes": {"pytype": "str", "formatter": "text"},
        }
    )
    assert registry["SourceTable"].pytype == "pyarrow.Table"
    assert registry["SourceTable"].parameters == {"columns", "rows"}
    assert registry["Notes"] == StorageClass("Notes", "str", formatter="text")
    with pytest.raises(ConfigurationError, match=r"Unknown key\(s\) 'colour'.*valid keys are"):
        StorageClassRegistry().with_config({"X": {"colour": "red"}})
    with pytest.raises(ConfigurationError, match=r"formatter 'hdf5'; valid formatters: 'bytes'"):
        StorageClassRegistry().with_config({"X": {"formatter": "hdf5"}})
    with pytest.raises(ConfigurationError, match=r"inherits from 'Nope'.*known: "):
        StorageClassRegistry().with_config({"X": {"inherits": "Nope"}})
    with pytest.raises(ConfigurationError, match=r"'parameters' .* among 'columns', 'hdu'"):
        StorageClassRegistry().with_config({"X": {"parameters": ["zoom"]}})


# -- put: the storage class picks the formatter ------------------------------------------


def test_put_writes_the_storage_class_format(butler: Butler) -> None:
    table = wide_table(10, 3)
    cases: list[tuple[str, Any, str, bytes]] = [
        ("table", table, ".parquet", b"PAR1"),
        ("frame", table.to_pandas(), ".parquet", b"PAR1"),
        ("astropy", Table({"x": [1.0, 2.0]}), ".fits", b"SIMPLE  ="),
        ("arrow_astropy", Table({"x": [1.0, 2.0]}), ".parquet", b"PAR1"),
        (
            "arrow_numpy",
            np.array([(1, 2.0)], dtype=[("a", "i8"), ("b", "f8")]),
            ".parquet",
            b"PAR1",
        ),
        ("array", np.arange(6), ".npy", b"\x93NUMPY"),
        ("image", fits.HDUList([fits.PrimaryHDU(np.ones((2, 2)))]), ".fits", b"SIMPLE  ="),
        ("text", "héllo", ".txt", "héllo".encode()),
        ("blob", b"\x00\x01", ".bin", b"\x00\x01"),
        ("pickled", {1, 2}, ".pickle", b"\x80"),
        ("listing", [1, "a"], ".json", b'[1, "a"]'),
        # An unknown storage class: as before, the object's type picks (a dict: JSON).
        ("legacy", {"a": 1}, ".json", b'{"a": 1}'),
    ]
    for name, obj, extension, magic in cases:
        ref = put(butler, obj, name)
        path, data = artifact(butler, ref)
        assert path.endswith(extension), (name, path)
        assert data.startswith(magic), (name, data[:10])


def test_put_converts_with_a_registered_converter(butler: Butler) -> None:
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    ref = put(butler, frame, "table")  # a DataFrame into an ArrowTable dataset
    back = get(butler, "table")
    assert type(back) is pa.Table
    assert back.to_pydict() == {"a": [1, 2], "b": ["x", "y"]}
    assert artifact(butler, ref)[0].endswith(".parquet")
    put(butler, bytearray(b"abc"), "blob")
    assert get(butler, "blob") == b"abc" and type(get(butler, "blob")) is bytes
    put(butler, (1, 2), "listing")
    assert get(butler, "listing") == [1, 2]
    put(butler, [1.5, 2.5], "array")
    np.testing.assert_array_equal(get(butler, "array"), np.array([1.5, 2.5]))


@pytest.mark.parametrize(
    ("name", "obj", "message"),
    [
        (
            "table",
            "not a table",
            r"Storage class 'ArrowTable' holds 'pyarrow.Table', but the object put as "
            r"dataset 'table' .* is a 'str'; give an object of type 'pyarrow.Table' or "
            r"'pandas.DataFrame'",
        ),
        (
            "array",
            {"a": 1},
            r"Storage class 'NumpyArray' holds 'numpy.ndarray', but .* is a 'dict'",
        ),
        (
            "text",
            b"bytes",
            r"Storage class 'Text' holds 'str', but .* is a 'bytes'; give an object of type 'str'",
        ),
        (
            "table",
            {"a": 1},
            r"Storage class 'ArrowTable' \('pyarrow.Table'\): .* is a 'dict' that cannot be "
            r"converted",
        ),
    ],
)
def test_put_refuses_an_object_of_another_type(
    butler: Butler, name: str, obj: Any, message: str
) -> None:
    before = state(butler)
    with pytest.raises(StorageClassError, match=message):
        put(butler, obj, name)
    assert state(butler) == before  # no dataset row, no artifact


def test_configured_formatter_still_wins(repositories: RepositoryFactory) -> None:
    if repositories.kind == "sqlite-chained":
        pytest.skip("the configuration below is a file datastore's")
    arguments = repositories.create_arguments("configured")
    arguments["datastore"] = {
        "kind": "file",
        "name": "files",
        "formatters": {"ArrowTable": "pickle"},
        "storage_classes": {"Notes": {"pytype": "str", "formatter": "text"}},
    }
    butler = Butler.create(**arguments, run="r1")
    try:
        populate(butler, 2)
        butler.register_dataset_type("table", ["detector"], "ArrowTable")
        butler.register_dataset_type("notes", ["detector"], "Notes")
        ref = put(butler, wide_table(3, 2), "table")
        assert artifact(butler, ref)[0].endswith(".pickle")
        assert get(butler, "table").equals(wide_table(3, 2))
        ref = put(butler, "a note", "notes")
        assert artifact(butler, ref)[1] == b"a note"
        with pytest.raises(StorageClassError, match=r"Storage class 'Notes' holds 'str'"):
            put(butler, 3, "notes", detector=1)
    finally:
        butler.close()


# -- get: conversion and parameters -------------------------------------------------------


def test_get_converts_tables(butler: Butler) -> None:
    table = pa.table({"a": [1, 2, 3], "b": [0.5, 1.5, 2.5]})
    put(butler, table, "table")
    frame = get(butler, "table", storage_class="DataFrame")
    assert type(frame) is pd.DataFrame
    assert frame.to_dict("list") == {"a": [1, 2, 3], "b": [0.5, 1.5, 2.5]}
    astropy = get(butler, "table", storage_class="AstropyTable")
    assert type(astropy) is Table and list(astropy["a"]) == [1, 2, 3]
    structured = get(butler, "table", storage_class="ArrowNumpy")
    assert structured.dtype.names == ("a", "b") and structured["b"].tolist() == [0.5, 1.5, 2.5]
    columns = get(butler, "table", storage_class="ArrowNumpyDict")
    assert sorted(columns) == ["a", "b"] and columns["a"].tolist() == [1, 2, 3]
    # And back: a DataFrame dataset read as an ArrowTable.
    put(butler, pd.DataFrame({"q": [1.0, 2.0]}), "frame")
    arrow = get(butler, "frame", storage_class="ArrowTable")
    assert type(arrow) is pa.Table and arrow.column("q").to_pylist() == [1.0, 2.0]
    # Through a ref, as override_storage_class makes it.
    ref = butler.find_dataset("table", instrument="HSC", detector=0)
    assert ref is not None
    as_frame = ref.override_storage_class("DataFrame")
    assert (as_frame.id, as_frame.datasetType.storageClass) == (ref.id, "DataFrame")
    assert ref.datasetType.storageClass == "ArrowTable"  # a new ref; the old one unchanged
    assert type(butler.get(as_frame)) is pd.DataFrame
    assert [type(x) for x in butler.get_many([as_frame, ref])] == [pd.DataFrame, pa.Table]


def test_a_fits_table_converts_to_every_table_kind(butler: Butler) -> None:
    # FITS stores columns big-endian; Arrow takes only the machine's byte order.
    put(butler, Table({"n": [1, 2], "x": [0.5, 1.5], "s": ["a", "bb"]}), "astropy")
    arrow = get(butler, "astropy", storage_class="ArrowTable")
    assert type(arrow) is pa.Table
    assert arrow.to_pydict() == {"n": [1, 2], "x": [0.5, 1.5], "s": ["a", "bb"]}
    frame = get(butler, "astropy", storage_class="DataFrame")
    assert type(frame) is pd.DataFrame and frame["n"].tolist() == [1, 2]
    structured = get(butler, "astropy", storage_class="ArrowNumpy")
    assert structured["x"].tolist() == [0.5, 1.5]


def test_get_refuses_a_storage_class_nobody_defines(butler: Butler) -> None:
    ref = put(butler, pa.table({"a": [1]}), "table")
    message = r"cannot be read as storage class 'DataFrme': no storage class has that name"
    with pytest.raises(StorageClassError, match=message):
        get(butler, "table", storage_class="DataFrme")
    with pytest.raises(StorageClassError, match=message):
        butler.get(ref.override_storage_class("DataFrme"))


def test_units_survive_astropy_through_parquet(butler: Butler) -> None:
    table = Table({"flux": [1.0, 2.0]})
    table["flux"].unit = u.Jy
    table["flux"].description = "total flux"
    put(butler, table, "arrow_astropy")
    back = get(butler, "arrow_astropy")
    assert type(back) is Table and back["flux"].unit == u.Jy
    assert back["flux"].description == "total flux" and list(back["flux"]) == [1.0, 2.0]
    put(butler, table, "astropy")  # FITS keeps units too
    assert get(butler, "astropy")["flux"].unit == u.Jy


def test_get_refuses_an_unsupported_conversion(butler: Butler) -> None:
    put(butler, pa.table({"a": [1]}), "table")
    with pytest.raises(
        StorageClassError,
        match=r"of storage class 'ArrowTable' cannot be read as 'Bytes': no converter from "
        r"'pyarrow.Table' to 'bytes'; it can be read as 'ArrowAstropy', 'ArrowNumpy', "
        r"'ArrowNumpyDict', 'ArrowTable', 'AstropyTable', 'DataFrame', 'NumpyArray'\.",
    ):
        get(butler, "table", storage_class="Bytes")


def test_read_parameters(butler: Butler) -> None:
    table = pa.table({"a": [10, 11, 12, 13], "b": ["w", "x", "y", "z"], "c": [0.0] * 4})
    put(butler, table, "table")
    part = get(butler, "table", parameters={"columns": ["b", "a"], "rows": slice(1, 3)})
    assert part.column_names == ["b", "a"] and part.to_pydict() == {"b": ["x", "y"], "a": [11, 12]}
    picked = get(butler, "table", parameters={"rows": [3, 0]}, storage_class="DataFrame")
    assert type(picked) is pd.DataFrame and picked["a"].tolist() == [13, 10]
    put(butler, np.arange(12).reshape(3, 4), "array")
    np.testing.assert_array_equal(
        get(butler, "array", parameters={"slice": (slice(None), 1)}), [1, 5, 9]
    )
    hdus = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.full((2, 2), 7.0), name="SCI")])
    put(butler, hdus, "image")
    selected = get(butler, "image", parameters={"hdu": "SCI"})
    assert type(selected) is fits.HDUList and len(selected) == 1
    np.testing.assert_array_equal(selected[0].data, np.full((2, 2), 7.0))
    put(butler, Table({"x": [1, 2, 3], "y": [4, 5, 6]}), "astropy")
    narrow = get(butler, "astropy", parameters={"columns": ["y"], "rows": [2]})
    assert type(narrow) is Table and narrow.colnames == ["y"] and list(narrow["y"]) == [6]


@pytest.mark.parametrize(
    ("name", "parameters", "message"),
    [
        (
            "table",
            {"slice": 1},
            r"Storage class 'ArrowTable' of dataset 'table' .* has no read parameter\(s\) "
            r"'slice'; its parameters: 'columns', 'rows'\.",
        ),
        (
            "table",
            {"columns": ["a", "nope"]},
            r"no column\(s\) 'nope' in this dataset; available columns: 'a', 'b', 'c'",
        ),
        ("array", {"columns": ["a"]}, r"'NumpyArray' .* its parameters: 'slice'\."),
        ("image", {"hdu": "NOPE"}, r"No HDU 'NOPE' in this FITS dataset; available HDUs: 0"),
    ],
)
def test_bad_read_parameters(butler: Butler, name: str, parameters: Any, message: str) -> None:
    put(butler, pa.table({"a": [1], "b": [2], "c": [3]}), "table")
    put(butler, np.arange(3), "array")
    put(butler, fits.HDUList([fits.PrimaryHDU(np.zeros(2))]), "image")
    with pytest.raises((StorageClassError, ValueError), match=message):
        get(butler, name, parameters=parameters)


def test_parquet_reads_only_the_requested_columns(butler: Butler) -> None:
    table = wide_table(rows=100_000, columns=6)  # 800 kB a column, incompressible
    ref = put(butler, table, "table")
    size = len(artifact(butler, ref)[1])
    with bytes_read(butler) as everything:
        assert get(butler, "table").num_columns == 6
    with bytes_read(butler) as some:
        part = get(butler, "table", parameters={"columns": ["c4"]})
    assert part.column_names == ["c4"]
    assert part.column("c4").to_pylist() == table.column("c4").to_pylist()
    assert everything[0] >= size
    # One column of six, the footer and a little more: well under a third of the file.
    assert some[0] < size / 3, (some[0], size)
    with bytes_read(butler) as footer:
        assert get(butler, "table", component="rowcount") == 100_000
    assert footer[0] < size / 20, (footer[0], size)


# -- components ---------------------------------------------------------------------------


def test_derived_components(butler: Butler) -> None:
    put(butler, pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]}), "table")
    assert get(butler, "table", component="columns") == ["a", "b"]
    assert get(butler, "table.rowcount") == 3
    schema = get(butler, "table", component="schema")
    assert type(schema) is pa.Schema and schema.names == ["a", "b"]
    put(butler, pd.DataFrame({"q": [1.0], "r": [2.0]}), "frame")
    columns = get(butler, "frame", component="columns")
    assert type(columns) is pd.Index and list(columns) == ["q", "r"]
    assert get(butler, "frame", component="rowcount", parameters={"rows": slice(0, 0)}) == 0
    primary = fits.PrimaryHDU(np.arange(4.0).reshape(2, 2))
    primary.header["OBJECT"] = "M31"
    hdus = fits.HDUList(
        [
            primary,
            fits.ImageHDU(np.eye(2, dtype=np.int16), name="MASK"),
            fits.ImageHDU(np.ones((2, 2)), name="VARIANCE"),
        ]
    )
    put(butler, hdus, "exposure")
    np.testing.assert_array_equal(get(butler, "exposure", component="image"), [[0, 1], [2, 3]])
    mask = get(butler, "exposure.mask")
    assert mask.dtype == np.int16 and mask.tolist() == [[1, 0], [0, 1]]
    np.testing.assert_array_equal(get(butler, "exposure", component="variance"), np.ones((2, 2)))
    assert get(butler, "exposure", component="header")["OBJECT"] == "M31"
    with pytest.raises(
        StorageClassError,
        match=r"Storage class 'ExposureLike' of dataset 'exposure' .* has no component 'psf'; "
        r"its components: 'header', 'image', 'mask', 'variance'\.",
    ):
        get(butler, "exposure", component="psf")


def test_storage_class_unknown_to_databutler_keeps_old_behaviour(butler: Butler) -> None:
    put(butler, np.arange(3), "legacy")  # ExposureF: the object's type picks the formatter
    np.testing.assert_array_equal(get(butler, "legacy"), [0, 1, 2])
    put(butler, {"a": 1, "b": 2}, "legacy", detector=1)
    assert get(butler, "legacy", detector=1, component="b") == 2


# -- dataset types ------------------------------------------------------------------------


def test_compatible_redefinition(butler: Butler) -> None:
    registry = butler.registry
    assert not registry.registerDatasetType(DatasetType("table", ["detector"], "DataFrame"))
    assert not registry.registerDatasetType(DatasetType("table", ["detector"], "AstropyTable"))
    assert registry.getDatasetType("table").storageClass == "ArrowTable"  # unchanged
    with pytest.raises(DatasetTypeConflictError, match=r"storage class: registered 'ArrowTable'"):
        registry.registerDatasetType(DatasetType("table", ["detector"], "Bytes"))
    with pytest.raises(DatasetTypeConflictError, match=r"storage class: registered 'ExposureF'"):
        registry.registerDatasetType(DatasetType("legacy", ["detector"], "ArrowTable"))


def test_memory_datastore_checks_and_converts(tmp_path: Path) -> None:
    butler = Butler.create(
        str(tmp_path / "mem"), datastore={"kind": "memory", "name": "mem"}, run="r1"
    )
    try:
        populate(butler, 2)
        butler.register_dataset_type("table", ["detector"], "ArrowTable")
        put(butler, pd.DataFrame({"a": [1, 2, 3]}), "table")  # converted on put
        assert type(get(butler, "table")) is pa.Table
        frame = get(butler, "table", storage_class="DataFrame", parameters={"rows": [2]})
        assert type(frame) is pd.DataFrame and frame["a"].tolist() == [3]
        assert get(butler, "table", component="rowcount") == 3
        with pytest.raises(StorageClassError, match=r"holds 'pyarrow.Table', but"):
            put(butler, "text", "table", detector=1)
        assert len(list(butler.query_datasets("table", collections="r1"))) == 1
    finally:
        butler.close()


def test_docs_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = Path(__file__).parent.parent / "docs" / "storage-classes.md"
    blocks = re.findall(r"```python\n(.*?)```", docs.read_text(), re.S)
    assert len(blocks) >= 6
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # its mkdtemp() leaves nothing
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, str(docs), "exec"), namespace)
    closing = namespace.get("butler")
    if hasattr(closing, "close"):
        closing.close()


# -- composites stored as one artifact per component ---------------------------------------


def make_composite(repositories: RepositoryFactory, name: str) -> Butler:
    """A repository whose ``Calexp`` (an ExposureLike) is disassembled: ``calexp`` is of it."""
    arguments = repositories.create_arguments(name)
    base = arguments.get("datastore", {"kind": "file", "name": "files"})
    arguments["datastore"] = {
        **base,
        "storage_classes": {"Calexp": {"inherits": "ExposureLike", "disassemble": True}},
    }
    butler = Butler.create(**arguments, run="r1")
    populate(butler, 3)
    butler.register_dataset_type("calexp", ["detector"], "Calexp")
    return butler


@pytest.fixture
def composite_butler(repositories: RepositoryFactory) -> Iterator[Butler]:
    butler = make_composite(repositories, "composite")
    try:
        yield butler
    finally:
        butler.close()


def exposure(scale: float = 1.0) -> fits.HDUList:
    primary = fits.PrimaryHDU(np.arange(6.0).reshape(2, 3) * scale)
    primary.header["OBJECT"] = "M31"
    primary.header["EXPTIME"] = 30.0
    primary.header.add_history("flat-fielded")
    return fits.HDUList(
        [
            primary,
            fits.ImageHDU(np.array([[0, 1, 0], [2, 0, 0]], dtype=np.int32), name="MASK"),
            fits.ImageHDU(np.full((2, 3), 0.25), name="VARIANCE"),
        ]
    )


def records_of(butler: Butler, ref: Any) -> dict[str, tuple[str, str, str]]:
    """Component to (path, formatter, storage class) of the records rows of ``ref``."""
    rows = file_datastore(butler).records.fetch(dataset_id=[ref.id])
    return {r["component"]: (r["path"], r["formatter"], r["storage_class"]) for r in rows}


def test_disassembled_put_writes_one_artifact_per_component(composite_butler: Butler) -> None:
    butler = composite_butler
    ref = put(butler, exposure(), "calexp")
    records = records_of(butler, ref)
    assert sorted(records) == ["header", "image", "mask", "variance"]
    store = file_datastore(butler).store
    magic = {".json": b"{", ".npy": b"\x93NUMPY"}
    for component, (path, formatter, storage_class) in records.items():
        extension = ".json" if component == "header" else ".npy"
        assert path.endswith(f".{component}{extension}"), path
        assert formatter == ("json" if component == "header" else "npy")
        assert storage_class == "Calexp"
        assert store.read(path).startswith(magic[extension])
    assert sorted(p for p in store.list() if str(ref.id) in p) == sorted(
        path for path, _, _ in records.values()
    )
    # The whole dataset comes back assembled.
    back = get(butler, "calexp")
    assert type(back) is fits.HDUList and [h.name for h in back] == ["PRIMARY", "MASK", "VARIANCE"]
    np.testing.assert_array_equal(back[0].data, np.arange(6.0).reshape(2, 3))
    assert back[0].header["OBJECT"] == "M31" and back[0].header["EXPTIME"] == 30.0
    assert list(back[0].header["HISTORY"]) == ["flat-fielded"]
    assert back["MASK"].data.dtype == np.int32 and back["MASK"].data.tolist() == [
        [0, 1, 0],
        [2, 0, 0],
    ]
    selected = get(butler, "calexp", parameters={"hdu": "VARIANCE"})
    np.testing.assert_array_equal(selected[0].data, np.full((2, 3), 0.25))
    assert butler.verify().ok


def test_disassembled_component_reads_only_its_artifact(composite_butler: Butler) -> None:
    butler = composite_butler
    ref = put(butler, exposure(), "calexp")
    records = records_of(butler, ref)
    # The image's artifact gone: its other components still read, from their own files.
    file_datastore(butler).store.delete(records["image"][0])
    assert get(butler, "calexp", component="mask").tolist() == [[0, 1, 0], [2, 0, 0]]
    assert get(butler, "calexp.header")["OBJECT"] == "M31"
    np.testing.assert_array_equal(
        get(butler, "calexp", component="variance", parameters={"slice": (0, slice(0, 2))}),
        [0.25, 0.25],
    )
    with pytest.raises(
        StorageClassError, match=r"Component 'mask' .* no read parameter\(s\) 'hdu'"
    ):
        get(butler, "calexp", component="mask", parameters={"hdu": 1})
    if len(butler.datastore.leaves) > 1:  # the chain's memory datastore has it whole
        assert get(butler, "calexp")[0].header["OBJECT"] == "M31"
        return
    with pytest.raises(LookupError, match=r"artifact .*\.image\.npy' is missing"):
        get(butler, "calexp")


def test_disassembled_prune_removes_every_artifact(composite_butler: Butler) -> None:
    butler = composite_butler
    ref = put(butler, exposure(), "calexp")
    kept = put(butler, exposure(2.0), "calexp", detector=1)
    store = file_datastore(butler).store
    paths = [path for path, _, _ in records_of(butler, ref).values()]
    butler.prune([ref], purge=True)
    assert not any(store.exists(path) for path in paths)
    assert records_of(butler, ref) == {}
    assert len(records_of(butler, kept)) == 4
    np.testing.assert_array_equal(get(butler, "calexp", detector=1)[0].data[0], [0.0, 2.0, 4.0])
    assert butler.verify().ok


def test_disassembled_put_refuses_a_bad_component(composite_butler: Butler) -> None:
    butler = composite_butler
    before = sorted(file_datastore(butler).store.list())
    with pytest.raises(StorageClassError, match=r"Storage class 'Calexp' holds"):
        put(butler, "not an exposure", "calexp")
    assert sorted(file_datastore(butler).store.list()) == before
    assert list(butler.query_datasets("calexp", collections="r1")) == []


def test_disassemble_needs_an_assembler() -> None:
    with pytest.raises(ConfigurationError, match=r"'disassemble: true' but no assembler"):
        StorageClassRegistry().with_config({"X": {"inherits": "Fits", "disassemble": True}})


def test_disassembled_transfer_and_export(
    composite_butler: Butler, repositories: RepositoryFactory, tmp_path: Path
) -> None:
    butler = composite_butler
    ref = put(butler, exposure(), "calexp")
    # To a repository of the same configuration: the component artifacts, as they are.
    target = make_composite(repositories, "target")
    try:
        assert [r.id for r in target.transfer_from(butler, [ref])] == [ref.id]
        assert sorted(records_of(target, ref)) == ["header", "image", "mask", "variance"]
        assert get(target, "calexp.mask").tolist() == [[0, 1, 0], [2, 0, 0]]
        assert get(target, "calexp")[0].header["OBJECT"] == "M31"
    finally:
        target.close()
    # Exported (and retrieved), it is one FITS file of the whole dataset.
    (retrieved,) = butler.retrieve_artifacts([ref], tmp_path / "out", preserve_path=False)
    assert retrieved.name.endswith(".fits") and retrieved.read_bytes().startswith(b"SIMPLE  =")
    export = butler.export(tmp_path / "export", refs=[ref])
    plain = repositories.create("plain")
    (imported,) = plain.import_(export)
    whole = plain.get(imported)
    assert type(whole) is fits.HDUList and whole[0].header["OBJECT"] == "M31"
    np.testing.assert_array_equal(whole["MASK"].data, [[0, 1, 0], [2, 0, 0]])
