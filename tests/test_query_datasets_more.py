"""More of issue 12's queries: CALIBRATION collections listed with their validity ranges,
``get_dataset`` by id, data IDs and records constrained by the existence of datasets.

Every test runs on SQLite and on PostgreSQL against the same small repository
and expects the same exact answers.
"""

from __future__ import annotations

import datetime
import json
import time
import traceback
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from databutler import (
    ArgumentConflictError,
    Butler,
    CollectionType,
    DatasetAssociation,
    ExpressionError,
    InvalidArgumentError,
    InvalidDatasetIdError,
    MissingCollectionError,
    Timespan,
)
from databutler.cli import main
from databutler.dimensions import DataCoordinate
from databutler.registry.dataset_types import MissingDatasetTypeError
from databutler.testing.exposures import filled_repository, insert_filters


def utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC)


JAN, FEB, OLD = utc("2024-01-01"), utc("2024-02-01"), utc("2023-01-01")
# raw datasets: (exposure, detector) in each run.
RAW = {"r1": [(10, 0), (10, 1), (11, 2), (12, 3)], "r2": [(11, 0)]}
# An instant between the ingestion of r1's raws and r2's, by repository root.
INGESTED: dict[str, datetime.datetime] = {}


def _fill(butler: Butler) -> None:
    insert_filters(butler)
    butler.insert_dimension_records("day_obs", {"instrument": "HSC", "day_obs": 20240101})
    butler.insert_dimension_records(
        "detector", *({"instrument": "HSC", "detector": d} for d in range(4))
    )
    butler.insert_dimension_records("group", {"instrument": "HSC", "group": "g"})
    butler.insert_dimension_records(
        "exposure",
        *(
            {
                "instrument": "HSC",
                "exposure": e,
                "group": "g",
                "obs_id": f"o{e}",
                "physical_filter": f,
                "day_obs": 20240101,
            }
            for e, f in ((10, "HSC-R"), (11, "HSC-G"), (12, "HSC-G"))
        ),
    )
    butler.register_dataset_type("raw", ["exposure", "detector"], "StructuredDataDict")
    butler.register_dataset_type("bias", ["detector"], "StructuredDataDict", is_calibration=True)
    registry = butler.registry
    for run, keys in RAW.items():
        if run == "r2":  # r2's raws are ingested after this instant
            time.sleep(0.01)
            INGESTED[butler.root] = datetime.datetime.now(datetime.UTC)
            time.sleep(0.01)
        registry.registerRun(run)
        registry.insertDatasets(
            "raw", [{"instrument": "HSC", "exposure": e, "detector": d} for e, d in keys], run
        )
    c1 = [butler.put({"d": d}, "bias", instrument="HSC", detector=d, run="c1") for d in range(3)]
    c2 = [butler.put({"d": d}, "bias", instrument="HSC", detector=d, run="c2") for d in range(2)]
    butler.certify("calib", c1, JAN, FEB)
    butler.certify("calib", c2, FEB, None)
    butler.certify("calib", c1[:1], None, OLD)
    butler.registry.registerCollection("empty_calib", CollectionType.CALIBRATION)
    registry.registerCollection("tagged", CollectionType.TAGGED)
    registry.associate("tagged", c1[2:])
    registry.registerCollection("defaults", CollectionType.CHAINED)
    registry.setCollectionChain("defaults", ["r1", "calib"])


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def repo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The root of a filled repository, on SQLite or PostgreSQL (a fresh schema)."""
    root = tmp_path_factory.mktemp(f"more-{request.param}") / "repo"
    with filled_repository(request.param, root, _fill) as filled:
        yield filled


@pytest.fixture
def butler(repo: str) -> Iterator[Butler]:
    with Butler(repo) as opened:
        yield opened


def detector_runs(refs: Any) -> list[tuple[int, str]]:
    return [(ref.dataId["detector"], ref.run) for ref in refs]


def run_cli(*args: Any, code: int = 0) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        pytest.fail("".join(traceback.format_exception(result.exception)))
    assert result.exit_code == code, result.output
    return result


# -- 1. CALIBRATION collections ------------------------------------------------------------


def test_query_datasets_lists_a_calibration_collection(butler: Butler) -> None:
    found = butler.query_datasets("bias", collections="calib", order_by=["detector", "run"])
    # c1's detector-0 bias is certified twice, and listed once.
    assert detector_runs(found) == [(0, "c1"), (0, "c2"), (1, "c1"), (1, "c2"), (2, "c1")]
    found = butler.query_datasets("bias", collections="calib", order_by="-detector", limit=2)
    assert detector_runs(found) == [(2, "c1"), (1, "c1")]
    found = butler.query_datasets("bias", collections="calib", where="detector IN (0, 2)")
    assert sorted(detector_runs(found)) == [(0, "c1"), (0, "c2"), (2, "c1")]
    assert list(butler.query_datasets("bias", collections="empty_calib")) == []


def test_calibration_and_other_collections_give_each_dataset_once(butler: Butler) -> None:
    found = butler.query_datasets("bias", collections=["calib", "c1", "tagged"], order_by="run")
    assert detector_runs(found) == [(0, "c1"), (1, "c1"), (2, "c1"), (0, "c2"), (1, "c2")]
    # Through a chain, and with a glob.
    found = butler.query_datasets("bias", collections="defaults", order_by=["detector", "run"])
    assert detector_runs(found) == [(0, "c1"), (0, "c2"), (1, "c1"), (1, "c2"), (2, "c1")]
    assert len(list(butler.query_datasets("bias", collections="cal*"))) == 5
    # A type that is not a calibration is never in a CALIBRATION collection.
    assert list(butler.query_datasets("raw", collections="calib")) == []


def test_find_first_refuses_calibration_collections(butler: Butler) -> None:
    with pytest.raises(ArgumentConflictError, match="pass find_first=False"):
        butler.query_datasets("bias", collections=["c1", "calib"], find_first=True)
    with pytest.raises(ArgumentConflictError, match="'calib'"):
        butler.query_datasets("bias", collections="defaults", find_first=True)
    # Other types go through the chain's CALIBRATION member untouched.
    found = butler.query_datasets("raw", collections="defaults", find_first=True)
    assert sorted((r.dataId["exposure"], r.dataId["detector"]) for r in found) == RAW["r1"]


def _associations(found: Any) -> list[tuple[Any, ...]]:
    out = []
    for a in found:
        assert isinstance(a, DatasetAssociation)
        span = (None, None) if a.timespan is None else (a.timespan.begin, a.timespan.end)
        out.append((a.ref.dataId["detector"], a.ref.run, a.collection, *span))
    return out


def test_query_dataset_associations_gives_validity_ranges(butler: Butler) -> None:
    assert _associations(butler.query_dataset_associations("bias", "calib")) == [
        (0, "c1", "calib", None, OLD),
        (0, "c1", "calib", JAN, FEB),
        (0, "c2", "calib", FEB, None),
        (1, "c1", "calib", JAN, FEB),
        (1, "c2", "calib", FEB, None),
        (2, "c1", "calib", JAN, FEB),
    ]
    # Other collections: the dataset is in it, no timespan; in the order given.
    assert _associations(butler.query_dataset_associations("bias", ["tagged", "c2"])) == [
        (2, "c1", "tagged", None, None),
        (0, "c2", "c2", None, None),
        (1, "c2", "c2", None, None),
    ]
    registry_found = butler.registry.queryDatasetAssociations("bias", "calib")
    assert all(a.timespan is not None for a in registry_found)


def test_query_dataset_associations_chains_and_types(butler: Butler) -> None:
    # A chain holds nothing itself; flattened, its members are listed.
    assert list(butler.query_dataset_associations("bias", "defaults")) == []
    found = butler.query_dataset_associations(
        "bias", "defaults", collection_types=CollectionType.CALIBRATION, flatten_chains=True
    )
    assert [(d, run, c) for d, run, c, *_ in _associations(found)] == [
        (0, "c1", "calib"),
        (0, "c1", "calib"),
        (0, "c2", "calib"),
        (1, "c1", "calib"),
        (1, "c2", "calib"),
        (2, "c1", "calib"),
    ]
    found = butler.query_dataset_associations(
        "raw", ["defaults"], collection_types=[CollectionType.RUN], flatten_chains=True
    )
    assert [(a.ref.dataId["exposure"], a.ref.dataId["detector"]) for a in found] == RAW["r1"]
    # Globs, and a type never certified anywhere.
    assert len(list(butler.query_dataset_associations("bias", "c*"))) == 11
    assert list(butler.query_dataset_associations("raw", "calib")) == []
    found = butler.query_dataset_associations("bias", "calib")
    assert {a.timespan for a in found} == {
        Timespan(None, OLD),
        Timespan(JAN, FEB),
        Timespan(FEB, None),
    }


def test_query_dataset_associations_refuses_unknown_names(butler: Butler) -> None:
    with pytest.raises(MissingCollectionError, match="nowhere"):
        butler.query_dataset_associations("bias", "nowhere")
    with pytest.raises(MissingDatasetTypeError, match="flat"):
        butler.query_dataset_associations("flat", "calib")
    with pytest.raises(ArgumentConflictError, match="No collections to search"):
        butler.query_dataset_associations("bias")


def test_cli_lists_a_calibration_collection_with_validity(repo: str) -> None:
    rows = json.loads(
        run_cli(
            "query-datasets",
            repo,
            "bias",
            "-c",
            "calib",
            "--order-by",
            "detector,run",
            "--format",
            "json",
        ).stdout
    )
    assert [
        (r["detector"], r["run"], r["collection"], r["valid_from"], r["valid_to"]) for r in rows
    ] == [
        (0, "c1", "calib", None, "2023-01-01T00:00:00+00:00"),
        (0, "c1", "calib", "2024-01-01T00:00:00+00:00", "2024-02-01T00:00:00+00:00"),
        (0, "c2", "calib", "2024-02-01T00:00:00+00:00", None),
        (1, "c1", "calib", "2024-01-01T00:00:00+00:00", "2024-02-01T00:00:00+00:00"),
        (1, "c2", "calib", "2024-02-01T00:00:00+00:00", None),
        (2, "c1", "calib", "2024-01-01T00:00:00+00:00", "2024-02-01T00:00:00+00:00"),
    ]
    # A RUN alone: no validity columns.
    rows = json.loads(
        run_cli("query-datasets", repo, "bias", "-c", "c2", "--format", "json").stdout
    )
    assert [sorted(r) for r in rows] == [["detector", "id", "instrument", "run", "type"]] * 2
    result = run_cli("query-datasets", repo, "bias", "-c", "calib", "--find-first", code=1)
    assert result.stderr.startswith("Error: --find-first cannot choose")
    assert "Traceback" not in result.stderr


# -- 2. get_dataset ------------------------------------------------------------------------


def test_get_dataset_by_uuid_or_string(butler: Butler) -> None:
    (ref,) = butler.query_datasets("raw", collections="r2")
    found = butler.get_dataset(ref.id)
    assert found == ref and found is not None
    assert found.run == "r2" and found.datasetType.name == "raw"
    # The full data ID: implied values filled.
    assert isinstance(found.dataId, DataCoordinate)
    assert dict(found.dataId.mapping) == {
        "instrument": "HSC",
        "band": "g",
        "day_obs": 20240101,
        "detector": 0,
        "group": "g",
        "physical_filter": "HSC-G",
        "exposure": 11,
    }
    assert butler.get_dataset(str(ref.id)) == ref
    assert butler.get_dataset(str(ref.id).upper()) == ref
    bias = butler.find_dataset("bias", instrument="HSC", detector=1, collections="c2")
    assert bias is not None and butler.get_dataset(bias.id) == bias
    assert butler.get_dataset(uuid.UUID(int=0)) is None
    assert butler.get_dataset(str(uuid.uuid4())) is None


def test_get_dataset_storage_class_and_records(butler: Butler) -> None:
    bias = butler.find_dataset("bias", instrument="HSC", detector=2, collections="c1")
    assert bias is not None
    found = butler.get_dataset(bias.id, storage_class="StructuredDataDict", datastore_records=True)
    assert found == bias and found is not None
    assert found.datasetType.storageClass == "StructuredDataDict"
    with pytest.raises(InvalidArgumentError, match="query_dimension_records"):
        butler.get_dataset(bias.id, dimension_records=True)


@pytest.mark.parametrize("bad", ["not-a-uuid", "", "1234", 12, None, b"\x00" * 16])
def test_get_dataset_refuses_what_is_not_an_id(butler: Butler, bad: Any) -> None:
    with pytest.raises(InvalidDatasetIdError, match=r"uuid\.UUID or its string form"):
        butler.get_dataset(bad)


def test_registry_get_dataset_and_get_datasets(butler: Butler) -> None:
    refs = list(butler.query_datasets("*", collections="*"))
    assert len(refs) == 10
    missing = uuid.uuid4()
    found = butler.registry.get_datasets([r.id for r in refs] + [missing])
    assert found == {r.id: r for r in refs}
    assert {r.run for r in found.values()} == {"r1", "r2", "c1", "c2"}
    assert butler.registry.getDataset(missing) is None


# -- 3. data IDs and records constrained by the existence of datasets ---------------------


def detectors(data_ids: Any) -> list[int]:
    return [d["detector"] for d in data_ids]


def test_query_data_ids_with_datasets(butler: Butler) -> None:
    def ids(dimensions: list[str], **kwargs: Any) -> list[tuple[Any, ...]]:
        found = butler.query_data_ids(dimensions, order_by=dimensions, **kwargs)
        return [tuple(d[n] for n in dimensions) for d in found]

    assert ids(["detector"]) == [(0,), (1,), (2,), (3,)]
    assert ids(["detector"], datasets="raw", collections="r2") == [(0,)]
    assert ids(["exposure"], datasets="raw", collections="r2") == [(11,)]
    assert ids(["exposure", "detector"], datasets="raw", collections=["r1", "r2"]) == [
        (10, 0),
        (10, 1),
        (11, 0),
        (11, 2),
        (12, 3),
    ]
    # Dimensions the dataset does not have are free: detectors with a raw of any exposure.
    assert ids(["detector"], datasets="raw", collections="r1") == [(0,), (1,), (2,), (3,)]
    # bias has no exposure: every exposure of the instrument.
    assert ids(["exposure"], datasets="bias", collections="c2") == [(10,), (11,), (12,)]
    # Several types: a dataset of each.
    assert ids(["detector"], datasets=["raw", "bias"], collections=["r2", "c2"]) == [(0,)]
    assert ids(["detector"], datasets=["raw", "bias"], collections=["r1", "c2"]) == [(0,), (1,)]


def test_query_data_ids_with_datasets_follows_implied_dimensions(butler: Butler) -> None:
    # Exposure 11 (HSC-G, band g) is the one raw of r2; exposure 10 is HSC-R.
    found = butler.query_data_ids(["physical_filter"], datasets="raw", collections="r2")
    assert [d["physical_filter"] for d in found] == ["HSC-G"]
    assert [
        d["band"] for d in butler.query_data_ids(["band"], datasets="raw", collections="r2")
    ] == ["g"]
    found = butler.query_data_ids(["band"], datasets="raw", collections="r1", order_by="band")
    assert [d["band"] for d in found] == ["g", "r"]


def test_query_data_ids_with_datasets_in_chains_calibrations_and_globs(butler: Butler) -> None:
    assert detectors(butler.query_data_ids(["detector"], datasets="bias", collections="calib")) == [
        0,
        1,
        2,
    ]
    assert (
        list(butler.query_data_ids(["detector"], datasets="bias", collections="empty_calib")) == []
    )
    assert list(butler.query_data_ids(["detector"], datasets="raw", collections="calib")) == []
    found = butler.query_data_ids(["exposure"], datasets="raw", collections="defaults")
    assert sorted(d["exposure"] for d in found) == [10, 11, 12]
    assert detectors(butler.query_data_ids(["detector"], datasets="b*", collections="c*")) == [
        0,
        1,
        2,
    ]
    assert detectors(butler.query_data_ids(["detector"], datasets="bias", collections="tag*")) == [
        2
    ]


def test_query_data_ids_with_datasets_where_order_limit(butler: Butler) -> None:
    found = butler.query_data_ids(
        ["detector"], datasets="raw", collections="r1", where="detector > 1"
    )
    assert detectors(found) == [2, 3]
    found = butler.query_data_ids(
        ["detector"], datasets="bias", collections="calib", order_by="-detector", limit=2
    )
    assert detectors(found) == [2, 1]
    registry = butler.registry
    assert detectors(registry.queryDataIds(["detector"], datasets="bias", collections=["c2"])) == [
        0,
        1,
    ]


def test_query_dimension_records_with_datasets(butler: Butler) -> None:
    found = butler.query_dimension_records("detector", datasets="bias", collections="c2")
    assert [r.values["detector"] for r in found] == [0, 1]
    found = butler.query_dimension_records(
        "exposure", datasets="raw", collections="r2", order_by="obs_id"
    )
    assert [r.values["obs_id"] for r in found] == ["o11"]
    found = butler.query_dimension_records("physical_filter", datasets="raw", collections="r2")
    assert [r.values["physical_filter"] for r in found] == ["HSC-G"]
    records = butler.registry.queryDimensionRecords("detector", datasets=["raw"], collections="r2")
    assert [r.values["detector"] for r in records] == [0]


def test_datasets_constraints_refuse_bad_input(butler: Butler) -> None:
    with pytest.raises(MissingDatasetTypeError, match="flat"):
        butler.query_data_ids(["detector"], datasets="flat", collections="r1")
    with pytest.raises(InvalidArgumentError, match=r"no dataset type matches 'fl\*'"):
        butler.query_data_ids(["detector"], datasets="fl*", collections="r1")
    with pytest.raises(InvalidArgumentError, match="datasets is empty"):
        butler.query_dimension_records("detector", datasets=[], collections="r1")
    with pytest.raises(MissingCollectionError, match="nowhere"):
        butler.query_dimension_records("detector", datasets="raw", collections="nowhere")
    with pytest.raises(ArgumentConflictError, match="pass datasets="):
        butler.query_data_ids(["detector"], collections="r1")
    with pytest.raises(ArgumentConflictError, match="No collections to search"):
        butler.query_data_ids(["detector"], datasets="raw")
    with pytest.raises(ArgumentConflictError, match="needs the collections"):
        butler.registry.queryDataIds(["detector"], datasets="raw")


def test_cli_datasets_and_collections(repo: str) -> None:
    def rows(*args: Any) -> Any:
        return json.loads(run_cli(*args, "--format", "json").stdout)

    found = rows("query-data-ids", repo, "detector", "--datasets", "raw", "-c", "r2")
    assert found == [{"instrument": "HSC", "detector": 0}]
    found = rows(
        "query-data-ids", repo, "detector", "--datasets", "raw,bias", "-c", "r1", "-c", "c2"
    )
    assert [r["detector"] for r in found] == [0, 1]
    # Every collection by default.
    found = rows("query-data-ids", repo, "exposure", "--datasets", "raw", "--order-by", "exposure")
    assert [r["exposure"] for r in found] == [10, 11, 12]
    found = rows(
        "query-dimension-records", repo, "detector", "--datasets", "bias", "--collections", "calib"
    )
    assert [r["detector"] for r in found] == [0, 1, 2]
    result = run_cli("query-data-ids", repo, "detector", "--datasets", "flat", code=1)
    assert result.stderr.startswith("Error: ") and "'flat'" in result.stderr
    result = run_cli("query-data-ids", repo, "detector", "--datasets", "fl*", code=1)
    assert "databutler query-dataset-types lists them" in result.stderr
    assert "query_dataset_types()" not in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli("query-data-ids", repo, "detector", "-c", "r1", code=2)
    assert "pass both" in result.stderr


# -- 4. ingest_date in where -----------------------------------------------------------------


def test_where_compares_ingest_date(butler: Butler) -> None:
    between = INGESTED[butler.root]

    def raws(where: str, bind: dict[str, Any]) -> list[tuple[Any, ...]]:
        found = butler.query_datasets("raw", collections=["r1", "r2"], where=where, bind=bind)
        return sorted((r.dataId["exposure"], r.dataId["detector"], r.run) for r in found)

    assert raws("ingest_date > :t", {"t": between}) == [(11, 0, "r2")]
    assert raws("raw.ingest_date < :t", {"t": between}) == [
        (10, 0, "r1"),
        (10, 1, "r1"),
        (11, 2, "r1"),
        (12, 3, "r1"),
    ]
    # An aware datetime in another time zone is the same instant.
    elsewhere = between.astimezone(datetime.timezone(datetime.timedelta(hours=-5)))
    assert raws("ingest_date > :t AND detector = 0", {"t": elsewhere}) == [(11, 0, "r2")]
    assert raws("ingest_date < :t", {"t": utc("2000-01-01")}) == []


def test_ingest_date_with_time_literals(butler: Butler, repo: str) -> None:
    found = butler.query_datasets(
        "raw", collections=["r1", "r2"], where="ingest_date > T'2000-01-01'"
    )
    assert len(list(found)) == 5
    found = butler.query_datasets("raw", collections="r1", where="ingest_date < T'51544.5/mjd'")
    assert list(found) == []
    # The literal for the instant between r1's and r2's ingestion (UTC ISO text).
    between = INGESTED[butler.root].replace(tzinfo=None).isoformat()
    found = butler.query_datasets(
        "raw", collections=["r1", "r2"], where=f"raw.ingest_date >= T'{between}'"
    )
    assert [(r.dataId["exposure"], r.run) for r in found] == [(11, "r2")]
    rows = json.loads(
        run_cli(
            "query-datasets",
            repo,
            "raw",
            "--where",
            f"ingest_date < T'{between}Z'",
            "--format",
            "json",
        ).stdout
    )
    assert sorted(r["run"] for r in rows) == ["r1"] * 4
    result = run_cli(
        "query-datasets", repo, "raw", "--where", "ingest_date > T'2026-02-30'", code=1
    )
    assert result.stderr.startswith("Error: ")
    assert "malformed time literal at column 14" in result.stderr
    assert "day is out of range for month" in result.stderr and "Traceback" not in result.stderr


def test_ingest_date_is_typed(butler: Butler) -> None:
    with pytest.raises(ExpressionError, match=r"cannot compare 'ingest_date' \(a datetime\)"):
        butler.query_datasets("raw", collections="r1", where="ingest_date > 5")
    with pytest.raises(ExpressionError, match="has no time zone"):
        butler.query_datasets(
            "raw",
            collections="r1",
            where="ingest_date > :t",
            bind={"t": datetime.datetime(2024, 1, 1)},
        )
    # Only datasets have one.
    with pytest.raises(ExpressionError, match="unknown identifier 'ingest_date'"):
        butler.query_data_ids(["detector"], where="ingest_date > :t", bind={"t": JAN})
