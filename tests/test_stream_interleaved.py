"""Reading and writing while a query streams its results.

The most common loop there is: iterate over a query and `get` (or `put`)
each result. Results stream in batches; on PostgreSQL through a server-side
cursor that lives in a transaction. A `get` or `put` on the connection that
transaction belongs to used to end it, and the stream failed after its first
batch ("cursor ... does not exist"). The batches are made tiny here so that a
dozen results cross several of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import databutler.registry.datasets.by_dimensions as by_dimensions
import databutler.registry.dimension_records as dimension_records
import databutler.registry.sql_registry as sql_registry
from databutler import Butler
from databutler.testing.butler import populate, registry_arguments

N = 12


@pytest.fixture(params=["sqlite", "postgresql"])
def butler(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: Any) -> Iterator[Butler]:
    monkeypatch.setattr(by_dimensions, "_STREAM_BATCH", 5)
    monkeypatch.setattr(dimension_records, "_STREAM_BATCH", 5)
    monkeypatch.setattr(sql_registry, "EXPANSION_BATCH", 3)  # refs completed a few at a time
    with registry_arguments(request.param) as arguments:
        made = Butler.create(str(tmp_path / "repo"), run="run", **arguments)
        try:
            populate(made, detectors=2 * N)
            made.put_many(
                [({"d": d}, "thing", {"instrument": "HSC", "detector": d}) for d in range(N)]
            )
            yield made
        finally:
            made.close()


def test_get_and_put_while_datasets_stream(butler: Butler) -> None:
    seen = []
    for ref in butler.query_datasets("thing", collections="run"):
        detector = ref.dataId["detector"]
        assert butler.get(ref) == {"d": detector}
        butler.put({"again": detector}, "thing", instrument="HSC", detector=detector, run="more")
        seen.append(detector)
    assert sorted(seen) == list(range(N))
    again = {
        r.dataId["detector"]: butler.get(r)
        for r in butler.query_datasets("thing", collections="more")
    }
    assert again == {d: {"again": d} for d in range(N)}


def test_puts_into_the_streamed_collection_are_not_streamed(butler: Butler) -> None:
    # The stream reads what was there when it started: a dataset put into the very
    # collection (and dataset type) being read is not read back, so such a loop ends.
    seen = []
    for ref in butler.query_datasets("thing", collections="run"):
        seen.append(ref.dataId["detector"])
        butler.put({"new": len(seen)}, "thing", instrument="HSC", detector=N - 1 + len(seen))
        assert len(seen) <= N
    assert sorted(seen) == list(range(N))
    assert len(list(butler.query_datasets("thing", collections="run"))) == 2 * N


def test_records_while_dimension_records_stream(butler: Butler) -> None:
    seen = []
    for record in butler.query_dimension_records("detector"):
        seen.append(record.id)
        butler.insert_dimension_records("band", {"band": f"b{record.id}"})
        assert butler.get("thing", instrument="HSC", detector=record.id % N) == {"d": record.id % N}
    assert sorted(seen) == list(range(2 * N))
    bands = {r.name for r in butler.query_dimension_records("band")}
    assert bands == {f"b{d}" for d in range(2 * N)}


def test_a_stream_inside_a_transaction_sees_its_writes(butler: Butler) -> None:
    with butler.transaction():
        butler.put({"new": 1}, "thing", instrument="HSC", detector=N, run="run")
        found = sorted(
            r.dataId["detector"] for r in butler.query_datasets("thing", collections="run")
        )
    assert found == list(range(N + 1))
