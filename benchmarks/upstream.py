"""The same per-call work through daf_butler and through databutler, for side-by-side figures.

Usage (daf_butler in a scratch virtualenv of its own: ``pip install lsst-daf-butler``)::

    /path/to/daf-venv/bin/python benchmarks/upstream.py --system daf_butler --n 1000 --db URI
    .venv/bin/python benchmarks/upstream.py --system databutler --n 1000 --db URI

Each run makes a new repository (a fresh schema of ``--db`` when given, else
SQLite in a temporary folder), registers one instrument, N detectors and one
dataset type of small dictionaries, and prints one line per phase,
``phase=NAME n=N seconds=S ops_per_s=X``: ``put`` (one call each),
``get_by_ref``, ``get_by_data_id``, ``stored`` and ``find_datastores`` (one
ref per call; the registry's bridge manager) and ``prune_half`` (purge, one
call). Interleave runs of the two systems on one
machine to compare them; the test suite does not run this script.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from typing import Any

from _common import (  # benchmarks/ is on the path when run as a script
    positive_int,
    scratch_schema,
    timed,
    user_errors,
)

PAYLOAD = {"name": "x" * 60, "value": 1.5, "flags": [1, 2, 3]}


def upstream(root: str, db: str | None, namespace: str | None, n: int) -> Any:
    """A daf_butler repository with the benchmark's dimensions and dataset type."""
    from lsst.daf.butler import Butler, Config, DatasetType

    config = Config()
    if db:
        config["registry", "db"] = db.replace("postgresql://", "postgresql+psycopg2://", 1)
    if namespace:
        config["registry", "namespace"] = namespace
    Butler.makeRepo(root, config=config)
    butler = Butler.from_config(root, writeable=True, run="bench")
    butler.registry.insertDimensionData(
        "instrument",
        {"name": "Cam", "visit_max": 10, "exposure_max": 10, "detector_max": n + 1},
    )
    butler.registry.insertDimensionData(
        "detector", *({"instrument": "Cam", "id": d, "full_name": f"d{d}"} for d in range(n))
    )
    butler.registry.registerDatasetType(
        DatasetType(
            "thing", ["instrument", "detector"], "StructuredDataDict", universe=butler.dimensions
        )
    )
    return butler


def ours(root: str, db: str | None, namespace: str | None, n: int) -> Any:
    from databutler import Butler

    butler = Butler.create(root, db=db, namespace=namespace, run="bench")
    butler.insert_dimension_records("instrument", {"instrument": "Cam"})
    butler.insert_dimension_records(
        "detector", *({"instrument": "Cam", "detector": d} for d in range(n))
    )
    butler.register_dataset_type("thing", ["detector"], "StructuredDataDict")
    return butler


def run(system: str, n: int, db: str | None) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="databutler-upstream-") as root,
        scratch_schema(db, "cmp") as namespace,
    ):
        butler = (upstream if system == "daf_butler" else ours)(root, db, namespace, n)
        stored: Callable[[Any], bool] = (
            butler.stored if system == "daf_butler" else lambda ref: bool(butler.exists(ref))
        )
        # The bridge manager of each registry (daf_butler keeps it on its private registry).
        bridges = (
            butler._registry._managers.datastores
            if system == "daf_butler"
            else butler.registry.datastore_bridges
        )
        try:
            with timed("put", n):
                refs = [
                    butler.put(PAYLOAD, "thing", instrument="Cam", detector=d) for d in range(n)
                ]
            with timed("get_by_ref", n):
                for ref in refs:
                    assert butler.get(ref) == PAYLOAD
            with timed("get_by_data_id", n):
                for d in range(n):
                    got = butler.get("thing", instrument="Cam", detector=d, collections="bench")
                    assert got == PAYLOAD
            with timed("stored", n):
                for ref in refs:
                    assert stored(ref)
            with timed("find_datastores", n):
                for ref in refs:
                    assert list(bridges.findDatastores(ref))  # upstream answers lazily
            with timed("prune_half", n // 2):
                if system == "daf_butler":
                    butler.pruneDatasets(refs[: n // 2], purge=True, unstore=True)
                else:
                    butler.prune(refs[: n // 2], purge=True)
        finally:
            close = getattr(butler, "close", None)
            if close is not None:
                close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--system", choices=["daf_butler", "databutler"], required=True)
    parser.add_argument("--n", type=positive_int, default=1000)
    parser.add_argument("--db", default=None, help="postgresql://... (a fresh schema is used)")
    args = parser.parse_args()
    with user_errors():
        run(args.system, args.n, args.db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
