"""Throughput of the SQL registry: insert, find, query and remove datasets.

Usage::

    python benchmarks/registry.py --n 10000 [--db URI]

SQLite in a temporary folder by default; with ``--db`` any database URI (a
PostgreSQL run works in a fresh schema, dropped at the end). Prints one line
per phase, ``phase=NAME n=N seconds=S ops_per_s=X``:

- ``insert_many``: ``insertDatasets`` of N datasets (exposure x detector) in one call;
- ``find_by_data_id``: ``findDataset`` once per dataset (a sample of 10,000 above that, n=10000);
- ``query_all``: ``queryDatasets`` of the dataset type in its run, all N refs;
- ``query_where``: the same with ``where="exposure < <half>"`` (n = refs returned);
- ``order_by_limit``: ``stream_datasets`` (what ``Butler.query_datasets`` runs) with
  ``order_by=["-detector", "-exposure"]`` and ``limit=100``, repeated (n = queries; each
  returns exactly the 100 expected refs). Ordered and cut in SQL, read as a stream, so
  its time does not grow with N;
- ``remove_run``: ``removeCollection`` of the run, its N datasets with it;
- ``calib_lookup``: one calibration per exposure for 10,000 exposures (n=10000): a
  ``bias`` (instrument, detector) certified over 100 consecutive ranges in a
  CALIBRATION collection, found for each exposure through its record's timespan by
  one ``stream_datasets`` call (``where="exposure IN (...) AND detector = 0"``,
  ``find_first=True``), the temporal join done in SQL. Needs a universe whose
  exposures have a ``timespan`` (version 2); skipped otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (  # benchmarks/ is on the path when run as a script
    positive_int,
    report,
    scratch_schema,
    timed,
    user_errors,
    verdict,
    warm_up,
)
from databutler import CollectionType, DatasetType, Timespan
from databutler.registry import SqlRegistry, open_database

DETECTORS = 100
SAMPLE = 10_000
ORDERED_QUERIES = 200
LIMIT = 100
CALIB_EXPOSURES = 10_000
CALIB_RANGES = 100
CALIB_FIRST_EXPOSURE = 1_000_000
EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def set_up(registry: SqlRegistry, exposures: int) -> None:
    registry.insertDimensionData("instrument", {"instrument": "HSC", "detector_max": DETECTORS})
    registry.insertDimensionData("band", {"band": "r"})
    registry.insertDimensionData(
        "physical_filter", {"instrument": "HSC", "physical_filter": "HSC-R", "band": "r"}
    )
    registry.insertDimensionData("day_obs", {"instrument": "HSC", "day_obs": 20261126})
    registry.insertDimensionData(
        "detector", *({"instrument": "HSC", "detector": d} for d in range(DETECTORS))
    )
    if "group" in registry.dimensions:  # universe version 2: an exposure implies its group
        registry.insertDimensionData("group", {"instrument": "HSC", "group": "g"})
    registry.insertDimensionData("exposure", *(_exposure(registry, e) for e in range(exposures)))
    registry.registerDatasetType(DatasetType("raw", ["exposure", "detector"], "Exposure"))
    registry.registerRun("HSC/raw/all")


def _exposure(registry: SqlRegistry, exposure: int, **fields: Any) -> dict[str, Any]:
    """An exposure record of the set-up's instrument, filter and day (and group)."""
    record = {
        "instrument": "HSC",
        "exposure": exposure,
        "physical_filter": "HSC-R",
        "day_obs": 20261126,
        **fields,
    }
    if "group" in registry.dimensions:
        record["group"] = "g"
    return record


def run(n: int, uri: str | None) -> int:
    with (
        tempfile.TemporaryDirectory(prefix="databutler-registry-bench-") as tmp,
        scratch_schema(uri) as namespace,
    ):
        uri = uri or f"sqlite:///{Path(tmp) / 'registry.sqlite3'}"
        db = open_database(uri, namespace=namespace)
        warm_up(Path(tmp))
        try:
            return _phases(SqlRegistry.create(db), n)
        finally:
            db.dispose()


def _phases(registry: SqlRegistry, n: int) -> int:
    exposures = -(-n // DETECTORS)
    set_up(registry, exposures)
    data_ids: list[dict[str, Any]] = [
        {"instrument": "HSC", "exposure": e, "detector": d}
        for e in range(exposures)
        for d in range(DETECTORS)
    ][:n]

    with timed("insert_many", n):
        refs = registry.insertDatasets("raw", data_ids, "HSC/raw/all")

    sample = refs if n <= SAMPLE else random.Random(1).sample(refs, SAMPLE)
    with timed("find_by_data_id", len(sample)):
        found = [
            registry.findDataset("raw", ref.dataId, collections="HSC/raw/all") for ref in sample
        ]
    failures = sum(f is None or f.id != r.id for f, r in zip(found, sample, strict=True))

    with timed("query_all", n):
        everything = registry.queryDatasets("raw", collections="HSC/raw/all")
    failures += len(everything) != n

    half = exposures // 2
    start = time.perf_counter()
    some = registry.queryDatasets("raw", collections="HSC/raw/all", where=f"exposure < {half}")
    report("query_where", len(some), time.perf_counter() - start)
    failures += len(some) != sum(1 for d in data_ids if d["exposure"] < half)

    failures += _order_by_limit(registry, data_ids)

    with timed("remove_run", n):
        registry.removeCollection("HSC/raw/all")
    failures += registry.queryCollections() != []
    failures += _calib_lookup(registry)
    return verdict(failures)


def _calib_lookup(registry: SqlRegistry) -> int:
    """Time the ``calib_lookup`` phase; the number of wrong answers."""
    fields = {f.name for f in registry.dimensions["exposure"].metadata}
    if "timespan" not in fields:
        print("phase=calib_lookup skipped: this universe's exposures have no timespan")
        return 0
    # Exposures of 30 s, one a minute; 100 biases, each valid over 100 of them.
    minute = datetime.timedelta(minutes=1)
    registry.insertDimensionData(
        "exposure",
        *(
            _exposure(
                registry,
                CALIB_FIRST_EXPOSURE + i,
                timespan=Timespan(EPOCH + i * minute, EPOCH + i * minute + minute / 2),
            )
            for i in range(CALIB_EXPOSURES)
        ),
    )
    registry.registerDatasetType(DatasetType("bias", ["detector"], "Exposure", isCalibration=True))
    registry.registerCollection("HSC/calib", CollectionType.CALIBRATION)
    per_range = CALIB_EXPOSURES // CALIB_RANGES
    biases = []
    for r in range(CALIB_RANGES):  # one run per bias: a run holds one per data ID
        registry.registerRun(f"HSC/calib/{r}")
        biases += registry.insertDatasets(
            "bias", [{"instrument": "HSC", "detector": 0}], f"HSC/calib/{r}"
        )
    for r, ref in enumerate(biases):
        begin = None if r == 0 else EPOCH + r * per_range * minute
        end = None if r == CALIB_RANGES - 1 else EPOCH + (r + 1) * per_range * minute
        registry.certify("HSC/calib", [ref], Timespan(begin, end))
    last = CALIB_FIRST_EXPOSURE + CALIB_EXPOSURES - 1
    with timed("calib_lookup", CALIB_EXPOSURES):
        found = list(
            registry.stream_datasets(
                "bias",
                collections="HSC/calib",
                where=f"exposure IN ({CALIB_FIRST_EXPOSURE}..{last}) AND detector = 0",
                find_first=True,
            )
        )
    expected = [biases[i // per_range].id for i in range(CALIB_EXPOSURES)]
    return int([ref.id for ref in found] != expected)


def _order_by_limit(registry: SqlRegistry, data_ids: list[dict[str, Any]]) -> int:
    """Time the ``order_by_limit`` phase; the number of wrong answers."""
    expected = sorted(data_ids, key=lambda d: (d["detector"], d["exposure"]), reverse=True)
    expected_keys = [(d["detector"], d["exposure"]) for d in expected[:LIMIT]]
    failures = 0
    with timed("order_by_limit", ORDERED_QUERIES):
        for _ in range(ORDERED_QUERIES):
            refs = registry.stream_datasets(
                "raw",
                collections="HSC/raw/all",
                where="instrument = 'HSC'",
                order_by=["-detector", "-exposure"],
                limit=LIMIT,
            )
            keys = [(ref.dataId["detector"], ref.dataId["exposure"]) for ref in refs]
            failures += keys != expected_keys
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=positive_int, required=True, help="number of datasets")
    parser.add_argument("--db", default=None, help="database URI (default: SQLite in a temp dir)")
    args = parser.parse_args(argv)
    with user_errors():
        return run(args.n, args.db)


if __name__ == "__main__":
    sys.exit(main())
