"""Inputs at the edges that used to end in a raw exception: each now gets a databutler error
naming the problem, and the repository stays as it was (SQLite + local files)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from databutler import (
    ArgumentTypeError,
    Butler,
    CollectionType,
    ConfigurationError,
    DatabutlerError,
    ExpressionError,
    InvalidArgumentError,
    InvalidNameError,
    PositionError,
    StorageClassError,
    Timespan,
)
from databutler.registry.queries import MAX_DEPTH

UTC = datetime.UTC


def _zone(hours: int) -> datetime.timezone:
    return datetime.timezone(datetime.timedelta(hours=hours))


@pytest.fixture(scope="module")
def butler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Butler]:
    root = tmp_path_factory.mktemp("edges") / "repo"
    with Butler.create(root, run="night1") as made:
        made.insert_dimension_records("instrument", {"instrument": "HSC"})
        made.insert_dimension_records(
            "detector", *({"instrument": "HSC", "detector": d} for d in range(4))
        )
        made.register_dataset_type("catalog", ["detector"], "StructuredDataDict")
        made.register_dataset_type("bias", ["detector"], "StructuredDataDict", is_calibration=True)
        made.put({"a": 1}, "catalog", instrument="HSC", detector=1)
        bias = made.put({"b": 2}, "bias", instrument="HSC", detector=1)
        made.registry.registerCollection("calib", CollectionType.CALIBRATION)
        made.certify("calib", [bias], datetime.datetime(2020, 1, 1, tzinfo=UTC), None)
        made.registry.registerCollection("latest", CollectionType.CHAINED)
        made.registry.setCollectionChain("latest", ["night1"])
        yield made


def _state(butler: Butler) -> tuple[Any, ...]:
    registry = butler.registry
    return (
        sorted(registry.queryCollections()),
        registry.getCollectionChain("latest"),
        registry.getCollectionDocumentation("night1"),
        sorted(str(ref.id) for ref in butler.query_datasets("catalog", collections="night1")),
    )


# -- the where language ------------------------------------------------------------------


@pytest.mark.parametrize("op", ["+", "*"])
@pytest.mark.parametrize("field_first", [True, False], ids=["field", "constants"])
def test_a_long_arithmetic_chain_is_refused_as_too_deep(
    butler: Butler, op: str, field_first: bool
) -> None:
    """A chain of operators nests one level per operator: within `MAX_DEPTH` it is answered,
    past it refused by the parser, never a recursion error further down."""
    fitting = f" {op} 1" * (MAX_DEPTH - 1)
    where = f"detector{fitting} = 1" if field_first else f"1{fitting} = detector"
    butler.query_data_ids(["detector"], where=where, instrument="HSC")
    for terms in (MAX_DEPTH + 1, 300, 1000):
        chain = f" {op} 1" * terms
        where = f"detector{chain} = 1" if field_first else f"1{chain} = detector"
        with pytest.raises(ExpressionError, match="nested too deeply"):
            butler.query_data_ids(["detector"], where=where, instrument="HSC")


@pytest.mark.parametrize(
    "where",
    [
        " AND ".join(["detector = 1"] * 1000),
        " AND ".join(f"detector > {-i}" for i in range(1, 1001)),
        " OR ".join(f"detector < {-i}" for i in range(1, 1001)) + " OR detector = 1",
    ],
    ids=["same", "distinct", "or"],
)
def test_a_long_chain_on_a_calibration_search_is_answered(butler: Butler, where: str) -> None:
    """SQLite splits a WHERE through parentheses and ANDs the terms again where it pushes them
    into a subquery (the calibration search has one): the grouped chain stays shallow."""
    found = list(butler.query_datasets("bias", collections="calib", where=where))
    assert [ref.dataId["detector"] for ref in found] == [1]


@pytest.mark.parametrize(
    "literal", ["T'0001-01-01/tt'", "T'mjd/-678575/tt'", "T'0001-01-01T00:00:10/tt'"]
)
def test_a_tt_time_before_year_one_as_tai_is_refused(butler: Butler, literal: str) -> None:
    with pytest.raises(ExpressionError, match="TAI time before 1972"):
        list(butler.query_datasets("catalog", where=f"ingest_date < {literal}"))


# -- times ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "when",
    [
        datetime.datetime(9999, 12, 31, 20, tzinfo=_zone(-5)),
        datetime.datetime(1, 1, 1, 2, tzinfo=_zone(5)),
    ],
    ids=["after-9999", "before-1"],
)
def test_a_timespan_bound_outside_the_utc_years_is_refused(butler: Butler, when: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="outside the years 1-9999 in UTC"):
        Timespan(when, None)
    before = _state(butler)
    with pytest.raises(InvalidArgumentError, match="outside the years 1-9999 in UTC"):
        butler.certify("calib", butler.query_datasets("bias", collections="night1"), None, when)
    assert _state(butler) == before


def test_finding_at_the_last_datetime_is_refused_by_the_time_scale(butler: Butler) -> None:
    last = datetime.datetime.max.replace(tzinfo=UTC)
    with pytest.raises(InvalidArgumentError, match="outside the range a time range can store"):
        butler.registry.findDataset(
            "bias", instrument="HSC", detector=1, collections="calib", timespan=last
        )


# -- collections ---------------------------------------------------------------------------


@pytest.mark.parametrize("children", [None, 0, b"night1", {"night1": 1}])
def test_chain_members_that_are_not_names_are_refused(butler: Butler, children: Any) -> None:
    before = _state(butler)
    with pytest.raises(ArgumentTypeError, match="Chain members must be a sequence of names"):
        butler.registry.setCollectionChain("latest", children)
    assert _state(butler) == before


def test_popping_a_position_a_chain_lacks_is_a_position_error(butler: Butler) -> None:
    before = _state(butler)
    with pytest.raises(PositionError, match=r"no position 5 \(pop takes 0 to 0") as raised:
        butler.collection_chain("latest", ["5"], mode="pop")
    assert isinstance(raised.value, IndexError)  # what the call documented before
    assert isinstance(raised.value, DatabutlerError)
    assert _state(butler) == before


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.registry.registerRun("docrun", "\ud800"),
        lambda b: b.registry.registerCollection("doctag", doc="x\udfff"),
        lambda b: b.registry.setCollectionDocumentation("night1", "ok \ud800"),
    ],
    ids=["run", "collection", "set"],
)
def test_documentation_with_a_lone_surrogate_is_refused(butler: Butler, call: Any) -> None:
    before = _state(butler)
    with pytest.raises(InvalidArgumentError, match="lone surrogate"):
        call(butler)
    assert _state(butler) == before


@pytest.mark.parametrize("argument", ["in_datastore", "not_in_datastore"])
@pytest.mark.parametrize("name", ["\ud800", "", "a b"])
def test_a_datastore_filter_no_datastore_can_be_named_is_refused(
    butler: Butler, argument: str, name: str
) -> None:
    filters: dict[str, Any] = {argument: name}
    with pytest.raises(InvalidNameError, match="Datastore name"):
        list(butler.query_datasets("catalog", collections="night1", **filters))


# -- read parameters and conversions -------------------------------------------------------


@pytest.fixture(scope="module")
def tables_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tables") / "repo"


@pytest.fixture(scope="module")
def tables(tables_root: Path) -> Iterator[Butler]:
    pytest.importorskip("pyarrow")
    pd = pytest.importorskip("pandas")
    astropy_table = pytest.importorskip("astropy.table")
    with Butler.create(tables_root, run="night1") as made:
        made.insert_dimension_records("instrument", {"instrument": "HSC"})
        made.insert_dimension_records("detector", {"instrument": "HSC", "detector": 0})
        made.register_dataset_type("frame", ["detector"], "DataFrame")
        made.register_dataset_type("astropy", ["detector"], "AstropyTable")
        made.register_dataset_type("image", ["detector"], "Fits")
        made.put(
            pd.DataFrame({"a": [1, 2, 3], "b": [4, 5, 6]}), "frame", instrument="HSC", detector=0
        )
        made.put(
            astropy_table.Table({"a": [1, 2, 3], "b": [4, 5, 6]}),
            "astropy",
            instrument="HSC",
            detector=0,
        )
        yield made


def _column_a(obj: Any) -> list[int]:
    return [int(v) for v in obj["a"]]


@pytest.mark.parametrize("name", ["frame", "astropy"])
@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (slice(1, 3), [2, 3]),
        (slice(None, None, -1), [3, 2, 1]),
        (slice(0, 3, 2), [1, 3]),
        ([2, -3], [3, 1]),
        (None, [1, 2, 3]),
    ],
)
def test_rows_select_the_same_on_every_table_kind(
    tables: Butler, name: str, rows: Any, expected: list[int]
) -> None:
    """Parquet (read in part) and FITS (selected in memory) take ``rows`` alike."""
    got = tables.get(name, instrument="HSC", detector=0, parameters={"rows": rows})
    assert _column_a(got) == expected


@pytest.mark.parametrize("name", ["frame", "astropy"])
@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"rows": slice(0, 1, 0)}, "has step 0"),
        ({"rows": slice("a", "b")}, "must have whole numbers"),
        ({"rows": slice(0, 1.5)}, "must have whole numbers"),
        ({"rows": [0, 5]}, r"No row\(s\) \[5\] in this dataset of 3 rows"),
        ({"rows": [-4]}, r"No row\(s\) \[-4\]"),
        ({"rows": [True]}, "must be a slice or a list of row numbers"),
        ({"rows": "0"}, "must be a slice or a list of row numbers"),
        ({"columns": "a"}, "must be a list of column names"),
        ({"columns": [1]}, "must be a list of column names"),
        ({"columns": 3}, "must be a list of column names"),
    ],
)
def test_bad_rows_and_columns_are_refused_alike(
    tables: Butler, name: str, parameters: dict[str, Any], message: str
) -> None:
    """The same check and message; Parquet's reader says it as its formatter's error."""
    with pytest.raises(DatabutlerError, match=message) as raised:
        tables.get(name, instrument="HSC", detector=0, parameters=parameters)
    assert isinstance(raised.value, ValueError)


def test_an_object_array_put_as_fits_is_refused_before_anything_is_written(
    tables: Butler, tables_root: Path
) -> None:
    np = pytest.importorskip("numpy")
    files = sorted(str(p) for p in tables_root.rglob("*") if "registry" not in p.name)
    with pytest.raises(StorageClassError, match="cannot be converted"):
        tables.put(np.array([object()]), "image", instrument="HSC", detector=0)
    assert not list(tables.query_datasets("image", collections="night1"))
    assert sorted(str(p) for p in tables_root.rglob("*") if "registry" not in p.name) == files


# -- paths no file system can hold ---------------------------------------------------------

_UNHOLDABLE = {
    "nul": ("a\0b", "contains a NUL character"),
    "long name": ("n" * 256, "has a name of 256 bytes, and a file system takes at most 255"),
    "long path": ("/".join(["d" * 200] * 21), "and a path holds at most 4095; shorten it"),
}


@pytest.mark.parametrize("kind", sorted(_UNHOLDABLE))
@pytest.mark.parametrize(
    "call",
    ["create", "create_datastore", "open", "export", "import_", "retrieve", "migrate_from"],
)
def test_a_path_no_file_system_holds_is_refused_by_name(
    butler: Butler, tmp_path: Path, call: str, kind: str
) -> None:
    """The operating system's ``ValueError`` or ``ENAMETOOLONG`` named neither the argument
    nor the fix; nothing is made."""
    text, message = _UNHOLDABLE[kind]
    path = str(tmp_path / text) if kind != "long path" else f"/{text}"
    ref = next(iter(butler.query_datasets("catalog", collections="night1")))
    before = _state(butler)
    calls = {
        "create": lambda: Butler.create(path),
        "create_datastore": lambda: Butler.create(tmp_path / "repo", datastore=path),
        "open": lambda: Butler(path),
        "export": lambda: butler.export(path, refs=[ref]),
        "import_": lambda: butler.import_(path),
        "retrieve": lambda: butler.retrieve_artifacts([ref], path),
        "migrate_from": lambda: Butler.migrate_from(path, tmp_path / "new"),
    }
    roots = {"create", "open"}  # a repository root: a configuration error
    with pytest.raises(ConfigurationError if call in roots else InvalidArgumentError) as raised:
        calls[call]()
    assert message in str(raised.value)
    assert list(tmp_path.iterdir()) == []
    assert _state(butler) == before
