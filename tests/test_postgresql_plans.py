"""No hot query depends on fresh planner statistics: bulk-load, then prune and read at once.

Statistics of a freshly loaded PostgreSQL repository say its tables are tiny;
a query whose plan depends on them (a correlated EXISTS over the records
table, say) then runs in nested loops, and pruning half of 10,000 datasets
took minutes. The bound below is generous (the work takes about a second);
what it catches is a plan that goes quadratic.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from databutler import Butler
from databutler.testing.butler import registry_arguments

N = 10_000


@pytest.mark.postgresql
def test_prune_and_read_right_after_a_bulk_load(tmp_path: Path) -> None:
    with registry_arguments("postgresql") as arguments:
        with Butler.create(str(tmp_path / "repo"), run="r", **arguments) as butler:
            butler.insert_dimension_records("instrument", {"instrument": "Cam"})
            butler.insert_dimension_records(
                "detector", *({"instrument": "Cam", "detector": d} for d in range(N))
            )
            butler.register_dataset_type("thing", ["detector"], "StructuredDataDict")
            refs = butler.put_many(
                [({"d": d}, "thing", {"instrument": "Cam", "detector": d}) for d in range(N)]
            )
            start = time.perf_counter()
            result = butler.prune(refs[: N // 2], purge=True)
            pruned = time.perf_counter() - start
            assert result.purged == N // 2
            start = time.perf_counter()
            for ref in refs[N // 2 :: 10]:
                assert butler.get(ref) == {"d": ref.dataId["detector"]}
            read = time.perf_counter() - start
            start = time.perf_counter()
            for d in range(N // 2, N, 10):  # found and read with the records in one statement
                assert butler.get("thing", instrument="Cam", detector=d) == {"d": d}
            found = time.perf_counter() - start
            assert butler.verify().ok
        assert pruned < 20, f"pruning {N // 2} fresh datasets took {pruned:.1f} s"
        assert read < 20, f"reading {N // 20} fresh datasets took {read:.1f} s"
        assert found < 20, f"reading {N // 20} fresh datasets by data ID took {found:.1f} s"


def _reltuples(butler: Butler, namespace: str, table: str) -> float:
    """The planner's row estimate of ``table`` (-1 until it was first analyzed)."""
    sql = (
        "SELECT c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        f"WHERE n.nspname = '{namespace}' AND c.relname = '{table}'"
    )
    with butler.registry.db.query_raw(sql, []) as rows:
        return float(rows[0][0])


@pytest.mark.postgresql
def test_bulk_loads_leave_fresh_statistics(tmp_path: Path) -> None:
    """Implied values join the exposure records: with statistics of empty tables the
    planner took a secondary index and filtered every exposure per row (seconds for
    10,000 refs). The library analyzes what it bulk-loads, after the commit."""
    exposures, detectors = 500, 20
    with registry_arguments("postgresql") as arguments:
        namespace = arguments["namespace"]
        with Butler.create(str(tmp_path / "repo"), run="r", **arguments) as butler:
            butler.insert_dimension_records("instrument", {"instrument": "Cam"})
            butler.insert_dimension_records("band", {"band": "r"})
            butler.insert_dimension_records(
                "physical_filter", {"instrument": "Cam", "physical_filter": "R", "band": "r"}
            )
            butler.insert_dimension_records("day_obs", {"instrument": "Cam", "day_obs": 20261204})
            butler.insert_dimension_records("group", {"instrument": "Cam", "group": "g"})
            butler.insert_dimension_records(
                "detector", *({"instrument": "Cam", "detector": d} for d in range(detectors))
            )
            assert _reltuples(butler, namespace, "exposure") == -1  # never analyzed
            butler.insert_dimension_records(
                "exposure",
                *(
                    {
                        "instrument": "Cam",
                        "exposure": e,
                        "physical_filter": "R",
                        "group": "g",
                        "day_obs": 20261204,
                    }
                    for e in range(exposures)
                ),
            )
            butler.register_dataset_type("raw", ["exposure", "detector"], "StructuredDataDict")
            data_ids = [
                {"instrument": "Cam", "exposure": e, "detector": d}
                for e in range(exposures)
                for d in range(detectors)
            ]
            with pytest.raises(RuntimeError), butler.transaction():
                butler.registry.insertDatasets("raw", data_ids, "r")
                raise RuntimeError("rolled back: nothing was loaded, nothing to analyze")
            assert _reltuples(butler, namespace, "dataset") == -1
            butler.registry.insertDatasets("raw", data_ids, "r")
            assert _reltuples(butler, namespace, "exposure") == exposures
            assert _reltuples(butler, namespace, "dataset") == exposures * detectors
            start = time.perf_counter()
            refs = list(butler.query_datasets("raw", collections="r"))
            queried = time.perf_counter() - start
        assert len(refs) == exposures * detectors
        assert {ref.dataId["band"] for ref in refs} == {"r"}
        assert {ref.dataId["group"] for ref in refs} == {"g"}
        assert queried < 20, f"reading {len(refs)} fresh refs took {queried:.1f} s"
