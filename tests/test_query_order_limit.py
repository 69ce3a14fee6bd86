"""``order_by``, ``limit`` and ``find_first`` of the Butler's queries, in the API and the CLI.

Every test runs on SQLite and on PostgreSQL against the same small repository
and expects the same exact answers: lists of data IDs (or runs) in order.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from databutler import Butler, CollectionType
from databutler._exceptions import (
    ArgumentConflictError,
    ArgumentTypeError,
    DatabutlerError,
    InvalidArgumentError,
)
from databutler.cli import main
from databutler.testing.butler import CHAINED
from databutler.testing.exposures import filled_repository, insert_filters

DOCS = Path(__file__).resolve().parent.parent / "docs"

# Detector names that a locale collation orders differently from code points ("B" < "a").
FULL_NAMES = {0: "b", 1: "B", 2: "a", 3: None}
# exposure: (obs_id, exposure_time, physical_filter, day_obs)
EXPOSURES = {
    10: ("c", 30.0, "HSC-R", 20240101),
    11: ("a", 15.0, "HSC-G", 20240101),
    12: ("b", 30.0, "HSC-G", 20240102),
}
RAW = "raw"
ALL_KEYS = [(e, d) for e in EXPOSURES for d in FULL_NAMES]


def _fill(butler: Butler) -> None:
    insert_filters(butler)
    butler.insert_dimension_records(
        "day_obs",
        {"instrument": "HSC", "day_obs": 20240101},
        {"instrument": "HSC", "day_obs": 20240102},
    )
    butler.insert_dimension_records(
        "detector",
        *(
            {"instrument": "HSC", "detector": d, "full_name": name, "purpose": "science"}
            for d, name in FULL_NAMES.items()
        ),
    )
    butler.insert_dimension_records("group", {"instrument": "HSC", "group": "g"})
    butler.insert_dimension_records(
        "exposure",
        *(
            {
                "instrument": "HSC",
                "exposure": e,
                "group": "g",
                "obs_id": obs_id,
                "exposure_time": seconds,
                "physical_filter": physical_filter,
                "day_obs": day_obs,
            }
            for e, (obs_id, seconds, physical_filter, day_obs) in EXPOSURES.items()
        ),
    )
    butler.register_dataset_type(RAW, ["exposure", "detector"], "StructuredDataDict")
    registry = butler.registry
    for run in ("r1", "r2"):
        registry.registerRun(run)
    every = [{"instrument": "HSC", "exposure": e, "detector": d} for e, d in ALL_KEYS]
    registry.insertDatasets(RAW, every, "r1")
    time.sleep(0.05)  # r2's datasets are ingested later than r1's
    registry.insertDatasets(
        RAW,
        [
            {"instrument": "HSC", "exposure": e, "detector": d}
            for e, d in ((10, 1), (11, 2), (12, 3))
        ],
        "r2",
    )
    registry.registerCollection("tagged", CollectionType.TAGGED)
    registry.associate("tagged", butler.registry.queryDatasets(RAW, collections="r1")[:2])
    registry.registerCollection("chain", CollectionType.CHAINED)
    registry.setCollectionChain("chain", ["r2", "r1"])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def repo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The root of a filled repository, on SQLite or PostgreSQL (a fresh schema)."""
    root = tmp_path_factory.mktemp(f"order-{request.param}") / "repo"
    with filled_repository(request.param, root, _fill) as filled:
        yield filled


@pytest.fixture
def butler(repo: str) -> Iterator[Butler]:
    with Butler(repo) as opened:
        yield opened


def keys(refs: Any) -> list[tuple[int, int]]:
    """(exposure, detector) of each dataset, in order."""
    return [(ref.dataId["exposure"], ref.dataId["detector"]) for ref in refs]


def with_runs(refs: Any) -> list[tuple[int, int, str]]:
    return [(ref.dataId["exposure"], ref.dataId["detector"], ref.run) for ref in refs]


ALL_R1 = ALL_KEYS


# -- order_by and limit on datasets ------------------------------------------------------


def test_order_by_dimension_descending_then_ascending(butler: Butler) -> None:
    found = butler.query_datasets(RAW, collections="r1", order_by=["-exposure", "detector"])
    assert keys(found) == [(e, d) for e in (12, 11, 10) for d in (0, 1, 2, 3)]
    found = butler.query_datasets(RAW, collections="r1", order_by=["detector", "-exposure"])
    assert keys(found) == [(e, d) for d in (0, 1, 2, 3) for e in (12, 11, 10)]


def test_limit_is_exact_and_applies_after_ordering(butler: Butler) -> None:
    found = butler.query_datasets(RAW, collections="r1", order_by="-exposure", limit=5)
    assert keys(found) == [(12, 0), (12, 1), (12, 2), (12, 3), (11, 0)]
    assert list(butler.query_datasets(RAW, collections="r1", limit=0)) == []
    # A limit without order_by keeps the first rows in data ID order (detector, exposure).
    assert keys(butler.query_datasets(RAW, collections="r1", limit=4)) == [
        (10, 0),
        (11, 0),
        (12, 0),
        (10, 1),
    ]
    assert sorted(keys(butler.query_datasets(RAW, collections="r1", limit=100))) == ALL_R1
    assert sorted(keys(butler.query_datasets(RAW, collections="r1"))) == ALL_R1


def test_order_by_record_field_with_ties_broken_by_data_id(butler: Butler) -> None:
    found = butler.query_datasets(RAW, collections="r1", order_by=["exposure.obs_id", "-detector"])
    assert keys(found) == [(e, d) for e in (11, 12, 10) for d in (3, 2, 1, 0)]
    # exposure_time ties (10 and 12) fall back to the data ID: detector, then exposure.
    found = butler.query_datasets(
        RAW, collections="r1", order_by="-exposure.exposure_time", limit=6
    )
    assert keys(found) == [(10, 0), (12, 0), (10, 1), (12, 1), (10, 2), (12, 2)]


def test_strings_order_by_code_point_and_nulls_last(butler: Butler) -> None:
    # "B" < "a" < "b" by code point on both backends; NULL after every value ascending.
    found = butler.query_datasets(RAW, collections="r1", order_by=["detector.full_name"])
    assert keys(found) == [(e, d) for d in (1, 2, 0, 3) for e in (10, 11, 12)]
    found = butler.query_datasets(
        RAW, collections="r1", order_by=["-detector.full_name", "-exposure"]
    )
    assert keys(found) == [(e, d) for d in (3, 0, 2, 1) for e in (12, 11, 10)]


def test_order_by_implied_dimension(butler: Butler) -> None:
    # band comes through physical_filter through exposure: 11 and 12 are g, 10 is r.
    found = butler.query_datasets(RAW, collections="r1", order_by=["band", "-detector"], limit=5)
    assert keys(found) == [(11, 3), (12, 3), (11, 2), (12, 2), (11, 1)]


def test_order_by_run_and_ingest_date(butler: Butler) -> None:
    found = butler.query_datasets(RAW, collections=["r1", "r2"], order_by=["-run"], limit=4)
    assert with_runs(found) == [(10, 1, "r2"), (11, 2, "r2"), (12, 3, "r2"), (10, 0, "r1")]
    found = butler.query_datasets(RAW, collections=["r1", "r2"], order_by=["-ingest_date"], limit=3)
    assert with_runs(found) == [(10, 1, "r2"), (11, 2, "r2"), (12, 3, "r2")]
    # One insert, one ingest_date: ties fall back to the data ID.
    found = butler.query_datasets(RAW, collections=["r1", "r2"], order_by=["ingest_date"], limit=2)
    assert with_runs(found) == [(10, 0, "r1"), (11, 0, "r1")]


def test_several_collections_report_each_dataset_once_in_order(butler: Butler) -> None:
    # "tagged" holds two of r1's datasets: DISTINCT and ORDER BY together.
    found = butler.query_datasets(
        RAW, collections=["tagged", "r1"], order_by=["-exposure.obs_id"], limit=5
    )
    assert keys(found) == [(10, 0), (10, 1), (10, 2), (10, 3), (12, 0)]


def test_bare_field_names_belong_to_the_one_dimension_that_has_them(butler: Butler) -> None:
    found = butler.query_datasets(RAW, collections="r1", order_by=["obs_id", "-detector"], limit=5)
    assert keys(found) == [(11, 3), (11, 2), (11, 1), (11, 0), (12, 3)]
    data_ids = butler.query_data_ids(["exposure", "detector"], order_by=["-full_name"], limit=4)
    assert [(d["exposure"], d["detector"]) for d in data_ids] == [
        (10, 3),
        (11, 3),
        (12, 3),
        (10, 0),
    ]
    with pytest.raises(InvalidArgumentError, match=r"exposure, visit all have a field"):
        butler.query_data_ids(["exposure", "visit"], order_by="exposure_time")


def test_arguments_are_checked_at_the_call(butler: Butler) -> None:
    with pytest.raises(InvalidArgumentError, match=r"valid names are run, ingest_date, .*exposure"):
        butler.query_datasets(RAW, collections="r1", order_by=["bogus"])
    with pytest.raises(InvalidArgumentError, match=r"exposure\.obs_id"):
        butler.query_datasets(RAW, collections="r1", order_by=["exposure.nope"])
    with pytest.raises(InvalidArgumentError, match="'visit'"):
        butler.query_datasets(RAW, collections="r1", order_by=["visit"])


@pytest.mark.parametrize(
    ("limit", "error", "match"),
    [
        (-1, InvalidArgumentError, "limit must be 0 or more"),
        (True, ArgumentTypeError, "got bool True"),
        ("3", ArgumentTypeError, "got str '3'"),
        (2.0, ArgumentTypeError, "got float 2.0"),
    ],
)
def test_bad_limits(butler: Butler, limit: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        butler.query_datasets(RAW, collections="r1", limit=limit)
    with pytest.raises(error, match=match):
        butler.query_data_ids(["detector"], limit=limit)
    with pytest.raises(error, match=match):
        butler.query_dimension_records("detector", limit=limit)


@pytest.mark.parametrize(
    ("order_by", "error", "match"),
    [
        ([3], ArgumentTypeError, "got int 3"),
        (7, ArgumentTypeError, "got int 7"),
        (["a b"], InvalidArgumentError, "is not a name"),
        (["-"], InvalidArgumentError, "is not a name"),
        ([""], InvalidArgumentError, "is not a name"),
        (["exposure.obs_id.x"], InvalidArgumentError, "is not a name"),
        (["not"], InvalidArgumentError, "is not a name"),
    ],
)
def test_bad_order_by(butler: Butler, order_by: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        butler.query_datasets(RAW, collections="r1", order_by=order_by)
    with pytest.raises(error, match=match):
        butler.query_data_ids(["detector"], order_by=order_by)


def test_limit_counts_over_every_type_of_a_glob(tmp_path: Path) -> None:
    with Butler.create(str(tmp_path / "types"), run="r") as butler:
        butler.insert_dimension_records("instrument", {"instrument": "HSC"})
        butler.insert_dimension_records(
            "detector", *({"instrument": "HSC", "detector": d} for d in range(3))
        )
        for name in ("calexp", "bias"):
            butler.register_dataset_type(name, ["detector"], "StructuredDataDict")
            butler.registry.insertDatasets(
                name, [{"instrument": "HSC", "detector": d} for d in range(3)], "r"
            )
        found = butler.query_datasets("*", collections="r", order_by="-detector", limit=4)
        assert [(ref.datasetType.name, ref.dataId["detector"]) for ref in found] == [
            ("bias", 2),
            ("bias", 1),
            ("bias", 0),
            ("calexp", 2),
        ]
        assert len(list(butler.query_datasets("*", collections="r", limit=None))) == 6


def test_limit_after_a_filter_on_an_in_memory_datastore(tmp_path: Path) -> None:
    # The memory child's holdings are not in SQL: the filter runs on the rows, the limit after.
    with Butler.create(str(tmp_path / "chained"), run="r", datastore=CHAINED) as butler:
        butler.insert_dimension_records("instrument", {"instrument": "HSC"})
        butler.insert_dimension_records(
            "detector", *({"instrument": "HSC", "detector": d} for d in range(5))
        )
        butler.register_dataset_type("thing", ["detector"], "StructuredDataDict")
        refs = [butler.put({"d": d}, "thing", instrument="HSC", detector=d) for d in range(5)]
        cache = butler.datastore.children[1]  # type: ignore[attr-defined]
        cache.forget([refs[4], refs[2]])
        found = butler.query_datasets(
            "thing", collections="r", in_datastore="cache", order_by="-detector", limit=2
        )
        assert [ref.dataId["detector"] for ref in found] == [3, 1]
        found = butler.query_datasets(
            "thing", collections="r", not_in_datastore="cache", order_by="detector", limit=1
        )
        assert [ref.dataId["detector"] for ref in found] == [2]


def test_results_stream(butler: Butler) -> None:
    found = butler.query_datasets(RAW, collections="r1", order_by="detector", limit=2)
    assert isinstance(found, Iterator) and not isinstance(found, list)
    assert isinstance(butler.query_data_ids("detector", limit=2), Iterator)
    assert isinstance(butler.query_dimension_records("detector", limit=2), Iterator)


# -- find_first ----------------------------------------------------------------------------


def test_find_first_takes_each_data_id_from_the_first_collection(butler: Butler) -> None:
    expected = [(e, d, "r2" if (e, d) in {(10, 1), (11, 2), (12, 3)} else "r1") for e, d in ALL_R1]
    found = butler.query_datasets(
        RAW, collections=["r2", "r1"], find_first=True, order_by=["exposure", "detector"]
    )
    assert with_runs(found) == expected
    # A chain is searched in its order, like the list it stands for.
    found = butler.query_datasets(RAW, collections="chain", find_first=True, order_by="exposure")
    assert with_runs(found) == expected
    # The other order: r1 has every data ID.
    found = butler.query_datasets(RAW, collections=["r1", "r2"], find_first=True)
    assert sorted(with_runs(found)) == [(e, d, "r1") for e, d in ALL_R1]
    # Without find_first, both of each pair.
    assert len(list(butler.query_datasets(RAW, collections="chain"))) == 15


def test_find_first_with_where_order_by_and_limit(butler: Butler) -> None:
    found = butler.query_datasets(
        RAW,
        collections="chain",
        find_first=True,
        where="detector IN (1, 2)",
        order_by=["-run", "-exposure"],
        limit=3,
    )
    assert with_runs(found) == [(11, 2, "r2"), (10, 1, "r2"), (12, 1, "r1")]


def test_find_first_with_a_glob_is_an_error(butler: Butler) -> None:
    with pytest.raises(ArgumentConflictError, match=r"'r\*' is a glob"):
        butler.query_datasets(RAW, collections=["r*"], find_first=True)
    with pytest.raises(ArgumentTypeError, match="find_first must be True or False"):
        butler.query_datasets(RAW, collections="r1", find_first=1)  # type: ignore[arg-type]


# -- data IDs and dimension records ----------------------------------------------------------


def test_data_ids_ordered_and_limited(butler: Butler) -> None:
    found = butler.query_data_ids(
        ["exposure", "detector"], order_by=["-exposure.exposure_time", "exposure.obs_id"], limit=6
    )
    assert [(d["exposure"], d["detector"]) for d in found] == [
        (12, 0),
        (12, 1),
        (12, 2),
        (12, 3),
        (10, 0),
        (10, 1),
    ]
    found = butler.query_data_ids("exposure", order_by=["-band", "-exposure"])
    assert [d["exposure"] for d in found] == [10, 12, 11]
    found = butler.query_data_ids("detector", order_by="detector.full_name", where="detector < 3")
    assert [d["detector"] for d in found] == [1, 2, 0]
    assert [d["detector"] for d in butler.query_data_ids("detector", limit=2)] == [0, 1]


def test_dimension_records_ordered_by_own_fields(butler: Butler) -> None:
    found = butler.query_dimension_records("exposure", order_by=["-exposure_time", "obs_id"])
    assert [r.values["exposure"] for r in found] == [12, 10, 11]
    found = butler.query_dimension_records("exposure", order_by="-exposure.obs_id", limit=2)
    assert [r.values["exposure"] for r in found] == [10, 12]
    found = butler.query_dimension_records("detector", order_by="-full_name", limit=3)
    assert [r.values["detector"] for r in found] == [3, 0, 2]
    with pytest.raises(InvalidArgumentError, match=r"valid names are .*obs_id"):
        butler.query_dimension_records("exposure", order_by="bogus")


def test_registry_lists_take_the_same_arguments(butler: Butler) -> None:
    registry = butler.registry
    records = registry.queryDimensionRecords("detector", order_by=["-detector"], limit=2)
    assert [r.values["detector"] for r in records] == [3, 2]
    data_ids = registry.queryDataIds(["detector"], order_by="-detector", limit=1)
    assert [d["detector"] for d in data_ids] == [3]
    refs = registry.queryDatasets(RAW, collections="r1", order_by="-detector", limit=1)
    assert keys(refs) == [(10, 3)]


# -- the command line ----------------------------------------------------------------------


def cli(*args: Any, code: int = 0) -> Any:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    if code == 0:
        assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


def test_cli_order_by_and_limit(repo: str) -> None:
    out = cli(
        "query-datasets", repo, RAW, "-c", "r1", "--order-by", "-exposure",
        "--order-by", "detector.full_name", "--limit", "5", "--format", "json",
    )  # fmt: skip
    rows = json.loads(out.stdout)
    assert [(r["exposure"], r["detector"]) for r in rows] == [
        (12, 1),
        (12, 2),
        (12, 0),
        (12, 3),
        (11, 1),
    ]
    out = cli(
        "query-datasets", repo, RAW, "-c", "chain", "--find-first",
        "--order-by", "-run,exposure", "--limit", "2", "--format", "json",
    )  # fmt: skip
    assert [(r["exposure"], r["detector"], r["run"]) for r in json.loads(out.stdout)] == [
        (10, 1, "r2"),
        (11, 2, "r2"),
    ]
    out = cli(
        "query-data-ids", repo, "detector", "--order-by", "-detector", "--limit", "2",
        "--format", "json",
    )  # fmt: skip
    assert [r["detector"] for r in json.loads(out.stdout)] == [3, 2]
    out = cli(
        "query-dimension-records", repo, "exposure", "--order-by", "-exposure_time,obs_id",
        "--format", "json",
    )  # fmt: skip
    assert [r["exposure"] for r in json.loads(out.stdout)] == [12, 10, 11]


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["query-datasets", "{repo}", RAW, "-c", "r1", "--order-by", "nope"], "valid names are"),
        (["query-datasets", "{repo}", RAW, "-c", "r1", "--limit", "-1"], "limit must be 0"),
        (["query-datasets", "{repo}", RAW, "-c", "r*", "--find-first"], "is a glob"),
        (["query-data-ids", "{repo}", "detector", "--order-by", "a b"], "is not a name"),
        (["query-dimension-records", "{repo}", "detector", "--limit", "-2"], "limit must be 0"),
    ],
)
def test_cli_errors_have_no_traceback(repo: str, args: list[str], match: str) -> None:
    result = cli(*(a.format(repo=repo) for a in args), code=1)
    assert result.stderr.startswith("Error: "), result.stderr
    assert match in result.stderr
    assert "Traceback" not in result.stderr
    assert isinstance(result.exception, SystemExit)


def test_cli_limit_must_be_a_number(repo: str) -> None:
    result = cli("query-data-ids", repo, "detector", "--limit", "three", code=2)
    assert "'three' is not a valid integer" in result.stderr


# -- the docs' examples run ----------------------------------------------------------------


def test_query_docs_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (DOCS / "queries.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 3
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "docs/queries.md", "exec"), namespace)


def test_errors_are_databutler_errors() -> None:
    for error in (InvalidArgumentError, ArgumentTypeError, ArgumentConflictError):
        assert issubclass(error, DatabutlerError)
