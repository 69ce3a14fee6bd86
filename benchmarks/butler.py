"""Throughput of the `Butler` facade with small JSON datasets.

Usage::

    python benchmarks/butler.py --n 10000 [--repo URI] [--db URI]

A new repository in a temporary folder (SQLite and local files) by default;
``--repo`` puts it elsewhere (a new directory or ``s3://bucket/prefix``),
``--db`` uses another registry database (``postgresql://...``: the run
works in a fresh schema of it, dropped at the end). One line per phase,
``phase=NAME n=N seconds=S ops_per_s=X``:
``put`` (one at a time), ``get_by_data_id`` (one at a time), ``query_all``,
``where`` (all refs, one call), ``get_by_ref`` (one at a time), ``get_many``
(all refs, one call), ``exists`` (one ref a call), ``ingest``, ``prune_empty`` (prune with
unstore and purge, then empty the trash), ``verify``; then
``peak_rss_mb=M`` and ``import_seconds=S`` (``import databutler`` in a new
interpreter).
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import (  # benchmarks/ is on the path when run as a script
    positive_int,
    scratch_schema,
    timed,
    user_errors,
    verdict,
    warm_up,
)
from databutler import Butler, FileDataset, UnresolvedRef


def import_seconds() -> float:
    """Best of three wall-clock times of ``import databutler`` in a fresh interpreter."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import databutler"], check=True)
        best = min(best, time.perf_counter() - start)
    baseline = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        baseline = min(baseline, time.perf_counter() - start)
    return max(0.0, best - baseline)


def run(n: int, repo: str, db: str | None, namespace: str | None, tmp: Path) -> int:
    butler = Butler.create(repo, db=db, namespace=namespace, run="bench")
    butler.insert_dimension_records("instrument", {"instrument": "Cam"})
    butler.insert_dimension_records(
        "detector", *({"instrument": "Cam", "detector": d} for d in range(2 * n))
    )
    butler.register_dataset_type("thing", ["detector"], "StructuredDataDict")
    payload = {"name": "x" * 60, "value": 1.5, "flags": [1, 2, 3]}  # ~100 bytes of JSON
    failures = 0
    warm_up(tmp)

    with timed("put", n):
        for d in range(n):
            butler.put(payload, "thing", instrument="Cam", detector=d)

    with timed("get_by_data_id", n):
        for d in range(n):
            failures += butler.get("thing", instrument="Cam", detector=d) != payload

    with timed("query_all", n):
        refs = list(butler.query_datasets("thing"))
    failures += len(refs) != n

    with timed("where", n):
        places = butler.where(refs)
    failures += sum(places[r.id] != {"files"} for r in refs)

    with timed("get_by_ref", n):
        for ref in refs:
            failures += butler.get(ref) != payload

    with timed("get_many", n):
        objects = butler.get_many(refs)
    failures += sum(obj != payload for obj in objects)

    with timed("exists", n):
        for ref in refs:
            failures += not butler.exists(ref)

    incoming = tmp / "incoming"
    incoming.mkdir()
    datasets = []
    for d in range(n, 2 * n):
        path = incoming / f"f{d}.json"
        path.write_text('{"name": "%s", "value": 1.5}' % ("x" * 70))
        datasets.append(
            FileDataset(str(path), [UnresolvedRef("thing", {"instrument": "Cam", "detector": d})])
        )
    with timed("ingest", n):
        ingested = butler.ingest(*datasets, transfer="copy")
    failures += len(ingested) != n

    with timed("verify", 2 * n):
        verified = butler.verify()
    failures += not verified.ok

    everything = refs + ingested
    with timed("prune_empty", len(everything)):
        butler.prune(everything, purge=True)
        butler.empty_trash()
    failures += bool(list(butler.query_datasets("thing")))

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak_rss_mb={peak:.0f}", flush=True)
    print(f"import_seconds={import_seconds():.3f}", flush=True)
    butler.close()
    return verdict(failures)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=positive_int, default=10_000, help="datasets per phase")
    parser.add_argument("--repo", default=None, help="repository root (new directory or s3://)")
    parser.add_argument("--db", default=None, help="registry database URI (empty)")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="databutler-butler-bench-") as tmp,
        scratch_schema(args.db) as namespace,
    ):
        repo = args.repo or str(Path(tmp) / "repo")
        with user_errors():
            return run(args.n, repo, args.db, namespace, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
