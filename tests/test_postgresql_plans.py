"""No hot query depends on fresh planner statistics: bulk-load, then prune and read at once.

Statistics of a freshly loaded PostgreSQL repository say its tables are tiny;
a query whose plan depends on them (a correlated EXISTS over the records
table, say) then runs in nested loops, and pruning half of 10,000 datasets
took minutes. The bound below is generous (the work takes about a second);
what it catches is a plan that goes quadratic.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy

from databutler import Butler
from databutler.testing.database import postgresql_uri

N = 10_000


@pytest.mark.postgresql
def test_prune_and_read_right_after_a_bulk_load(tmp_path: Path) -> None:
    db = postgresql_uri()
    namespace = f"test_{uuid.uuid4().hex[:16]}"
    try:
        with Butler.create(str(tmp_path / "repo"), db=db, namespace=namespace, run="r") as butler:
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
            assert butler.verify().ok
        assert pruned < 20, f"pruning {N // 2} fresh datasets took {pruned:.1f} s"
        assert read < 20, f"reading {N // 20} fresh datasets took {read:.1f} s"
    finally:
        engine = sqlalchemy.create_engine(db.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{namespace}" CASCADE'))
        engine.dispose()
