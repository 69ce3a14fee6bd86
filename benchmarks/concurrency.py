"""Many clients on one repository: aggregate throughput of a mixed workload, and nothing lost.

Usage::

    python benchmarks/concurrency.py --clients 1,2,4,8 --seconds 10 [--db URI] [--root DIR]
                                     [--min-rounds K]

For each client count K a new repository is made (SQLite and local files by
default; ``--db postgresql://...`` puts the registry in a fresh schema of that
database, dropped afterwards), then K processes run the same mix for
``--seconds``, each on its own run and data IDs:

- ``put`` a small JSON dataset (a new data ID each time);
- ``get`` it back by data ID and compare the bytes;
- every 4th round, ``query`` the client's run with a ``where`` expression;
- every 8th round, ``prune`` (purge) the client's four oldest datasets and
  ``empty_trash``;
- every 16th round, ``put`` into a new run of its own (a schema change that
  every other client's caches must notice while they keep putting).

Every call that returns counts as one acknowledged operation. Per K it prints::

    phase=mix clients=K n=OPS seconds=S ops_per_s=X
    errors clients=K total=E [Type=count ...]
    check clients=K acknowledged=A kept=B lost=L wrong=W resurrected=R

``check`` reopens the repository after the clients have stopped: every
acknowledged put that was not pruned must be there with its bytes (``lost``,
``wrong``), and no pruned one may be (``resurrected``). The exit status is 1
if anything was lost, wrong or resurrected, or if any error occurred.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _common import (  # benchmarks/ is on the path when run as a script
    client_counts,
    non_negative_int,
    positive_float,
    scratch_schema,
    user_errors,
)

#: Data IDs per client: more than any client reaches in a run of this length.
DETECTORS = 20_000
#: Seconds the clients and the parent wait for each other at the start.
BARRIER_TIMEOUT = 300.0


def payload(client: int, round_: int) -> dict[str, Any]:
    return {"client": client, "round": round_, "name": "x" * 40}


def client_main(
    root: str,
    client: int,
    run: str,
    seconds: float,
    out: str,
    min_rounds: int = 0,
    start: Any = None,
) -> None:
    """One client: the mix for ``seconds`` (and ``min_rounds`` at least); writes what was
    acknowledged to ``out``.

    The client imports databutler and opens the repository first, then waits at ``start`` (a
    barrier shared with the other clients and the parent), so that the clock measures the mix
    only, not process start-up.
    """
    from databutler import Butler

    errors: Counter[str] = Counter()
    ops = 0
    kept: dict[str, dict[str, Any]] = {}  # dataset id -> payload, acknowledged and not pruned
    pruned: list[str] = []
    runs: list[str] = []  # the new runs this client made
    order: list[Any] = []  # refs in put order, oldest first
    with Butler(root, run=run, writeable=True) as butler:
        if start is not None:
            # Another client failed to start: go on (the parent reports it).
            with contextlib.suppress(threading.BrokenBarrierError):
                start.wait(timeout=BARRIER_TIMEOUT)
        began = time.time()
        deadline = began + seconds
        round_ = 0
        while (time.time() < deadline or round_ < min_rounds) and round_ < DETECTORS:
            data = payload(client, round_)
            try:
                ref = butler.put(data, "thing", instrument="Cam", detector=round_)
                ops += 1
                kept[str(ref.id)] = data
                order.append(ref)
                ops += 1
                if butler.get("thing", instrument="Cam", detector=round_, collections=run) != data:
                    errors["WrongBytes"] += 1
                if round_ % 4 == 3:
                    found = butler.query_datasets(
                        "thing", collections=run, where=f"detector >= {max(0, round_ - 8)}"
                    )
                    list(found)
                    ops += 1
                if round_ % 8 == 7 and len(order) >= 4:
                    oldest, order = order[:4], order[4:]
                    butler.prune(oldest, purge=True)
                    for old in oldest:
                        pruned.append(str(old.id))
                        kept.pop(str(old.id), None)
                    ops += 1
                    butler.empty_trash()
                    ops += 1
                if round_ % 16 == 15:
                    extra = f"{run}-extra{round_}"
                    ref = butler.put(data, "thing", instrument="Cam", detector=round_, run=extra)
                    runs.append(extra)
                    kept[str(ref.id)] = data
                    ops += 1
            except Exception as exc:  # counted and reported: the benchmark goes on
                errors[type(exc).__name__] += 1
            round_ += 1
        took = time.time() - began
    Path(out).write_text(
        json.dumps(
            {
                "ops": ops,
                "seconds": took,
                "errors": errors,
                "kept": kept,
                "pruned": pruned,
                "runs": runs,
            }
        )
    )


def make_repository(base: Path, clients: int, db: str | None, namespace: str | None) -> str:
    """A new repository for one round, and its root."""
    from databutler import Butler

    root = str(base / f"repo-{clients}")
    with Butler.create(root, db=db, namespace=namespace) as butler:
        butler.insert_dimension_records("instrument", {"instrument": "Cam"})
        butler.insert_dimension_records(
            "detector", *({"instrument": "Cam", "detector": d} for d in range(DETECTORS))
        )
        butler.register_dataset_type("thing", ["detector"], "StructuredDataDict")
        for client in range(clients):
            butler.registry.registerRun(f"client{client}")
    return root


def check(root: str, results: list[dict[str, Any]]) -> dict[str, int]:
    """Reopen the repository: what was acknowledged is there, what was pruned is not."""
    from databutler import Butler

    counts = Counter(acknowledged=0, kept=0, lost=0, wrong=0, resurrected=0)
    with Butler(root) as butler:
        for client, result in enumerate(results):
            search = [f"client{client}", *result["runs"]]
            stored = {
                str(ref.id): ref for ref in butler.query_datasets("thing", collections=search)
            }
            counts["acknowledged"] += len(result["kept"]) + len(result["pruned"])
            counts["kept"] += len(result["kept"])
            for dataset_id, data in result["kept"].items():
                ref = stored.get(dataset_id)
                if ref is None:
                    counts["lost"] += 1
                elif butler.get(ref) != data:
                    counts["wrong"] += 1
            counts["resurrected"] += sum(i in stored for i in result["pruned"])
    return counts


def run_round(
    clients: int, seconds: float, db: str | None, base: Path, min_rounds: int = 0
) -> bool:
    """One round of ``clients`` processes; on PostgreSQL in a schema dropped afterwards."""
    with scratch_schema(db) as namespace:
        root = make_repository(base, clients, db, namespace)
        return _run_clients(root, clients, seconds, base, min_rounds)


def _run_clients(root: str, clients: int, seconds: float, base: Path, min_rounds: int) -> bool:
    context = multiprocessing.get_context("spawn")
    outs = [str(base / f"client-{clients}-{i}.json") for i in range(clients)]
    # The clock starts once every client has imported databutler and opened the
    # repository: the barrier has one party per client and one for this process.
    start = context.Barrier(clients + 1)
    processes = [
        context.Process(
            target=client_main,
            args=(root, i, f"client{i}", seconds, outs[i], min_rounds, start),
        )
        for i in range(clients)
    ]
    for process in processes:
        process.start()
    # A client that dies before the start is reported below as ClientCrashed.
    with contextlib.suppress(threading.BrokenBarrierError):
        start.wait(timeout=BARRIER_TIMEOUT)
    for process in processes:
        process.join()
    failed = [p.exitcode for p in processes if p.exitcode != 0]
    results = [json.loads(Path(o).read_text()) for o in outs if Path(o).exists()]
    ops = sum(r["ops"] for r in results)
    # The round lasts as long as its slowest client's mix (at least ``seconds``).
    elapsed = max([seconds, *(r["seconds"] for r in results)])
    errors: Counter[str] = Counter()
    for r in results:
        errors.update(r["errors"])
    if failed:
        errors["ClientCrashed"] += len(failed)
    rate = int(ops / elapsed) if elapsed > 0 else 0
    print(f"phase=mix clients={clients} n={ops} seconds={elapsed:.4f} ops_per_s={rate}")
    detail = " ".join(f"{k}={v}" for k, v in sorted(errors.items()))
    print(f"errors clients={clients} total={sum(errors.values())} {detail}".rstrip())
    counts = check(root, results)
    print(
        f"check clients={clients} "
        + " ".join(f"{k}={counts[k]}" for k in ("acknowledged", "kept", "lost", "wrong"))
        + f" resurrected={counts['resurrected']}",
        flush=True,
    )
    bad = counts["lost"] + counts["wrong"] + counts["resurrected"] + sum(errors.values())
    return bad == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clients", type=client_counts, default=[1, 2, 4, 8], help="client counts, e.g. 1,2,4,8"
    )
    parser.add_argument("--seconds", type=positive_float, default=10.0, help="length of each round")
    parser.add_argument("--db", default=None, help="registry database URI (postgresql://...)")
    parser.add_argument("--root", default=None, help="directory for the repositories")
    parser.add_argument(
        "--min-rounds",
        type=non_negative_int,
        default=0,
        help="rounds each client runs at least (checks)",
    )
    args = parser.parse_args()
    base = Path(args.root) if args.root else Path(tempfile.mkdtemp(prefix="databutler-conc-"))
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        parser.error(f"--root {args.root}: cannot make that directory ({exc.strerror})")
    ok = True
    try:
        with user_errors():
            for clients in args.clients:
                ok = run_round(clients, args.seconds, args.db, base, args.min_rounds) and ok
    finally:
        if not args.root:
            shutil.rmtree(base, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
