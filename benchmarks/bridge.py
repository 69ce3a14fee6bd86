"""Throughput benchmark of the persistent datastore-registry bridge.

Usage::

    python benchmarks/bridge.py --n 100000
    python benchmarks/bridge.py --n 100000 --db postgresql://postgres@127.0.0.1:55433/bench
    python benchmarks/bridge.py --n 10000 --phases insert,check --profile /tmp/prof

By default the repository is a fresh SQLite file in a temporary folder
(``sqlite:///<tmpdir>/bench.sqlite3``), removed at exit. ``--db`` takes any
database URI; on PostgreSQL the benchmark works in a fresh schema named
``bench_<random hex>`` and drops it (``CASCADE``) at exit, so runs never
collide with each other or with other users of the database.

Setup (not timed): create the repository, insert ``N`` random dataset ids
into the dataset table, register the datastore bridge ``"bench"`` and a
records table. Then each phase is timed with `time.perf_counter` and prints
exactly one line::

    phase=NAME n=N seconds=S ops_per_s=X

Phases, in order:

``insert``
    ``bridge.insert`` of all ``N`` refs in one call.
``check``
    ``bridge.check`` of all ``N`` ids in one call.
``locate``
    ``manager.locate`` of all ``N`` refs in one call.
``find_datastores``
    ``manager.findDatastores`` once per ref; above 10,000 refs a random
    sample of 10,000 refs is timed, and the line reports ``n=10000``.
``move_to_trash``
    ``bridge.moveToTrash`` of all ``N`` refs in one call (no datastore
    transaction).
``empty_trash``
    One records row per dataset is inserted first (untimed, in batches);
    the timed part opens ``bridge.emptyTrash(records, BenchRecord,
    record_column="path")``, iterates every pair and exits cleanly, which
    purges the trash and records rows.

Refs and ids are built before the timer starts and handed over as
iterators, so the bridge streams them. After each phase (untimed) the
benchmark checks the result and the database state with a few cheap queries
(row counts, ``check()`` empty after ``move_to_trash``, every trashed dataset
yielded once with its record); at the end it prints ``peak_rss_mib=...`` and
exits with status 1 if any check failed (the failures go to stderr).

``--phases`` restricts which phases are timed and printed; phases that a
selected phase depends on (``insert`` before everything, ``move_to_trash``
before ``empty_trash``) still run, untimed. ``--seed`` makes the dataset ids
repeatable. ``--profile DIR`` writes one `cProfile` file per timed phase
(``DIR/<phase>.prof``, read with ``python -m pstats``); profiling inflates the
printed timings.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any, TypeAlias

import sqlalchemy

from _common import (  # benchmarks/ is on the path when run as a script
    positive_int,
    report,
    scratch_schema,
    user_errors,
)
from databutler import ddl
from databutler.registry import RegistryManagerTypes, open_database
from databutler.registry.datasets import SimpleDatasetRecordStorageManager
from databutler.registry.interfaces import (
    Database,
    DatasetRecordStorageManager,
    DatastoreRegistryBridge,
    DatastoreRegistryBridgeManager,
    FakeDatasetRef,
    OpaqueTableStorage,
)

#: Every phase, in the order they run.
PHASES = ("insert", "check", "locate", "find_datastores", "move_to_trash", "empty_trash")

#: Phases that must have run (timed or not) before a phase can run.
PREREQUISITES: Mapping[str, tuple[str, ...]] = {
    "insert": (),
    "check": ("insert",),
    "locate": ("insert",),
    "find_datastores": ("insert",),
    "move_to_trash": ("insert",),
    "empty_trash": ("insert", "move_to_trash"),
}

#: Largest number of single-ref ``findDatastores`` calls timed.
FIND_SAMPLE = 10_000

#: Rows per call when filling the records table before ``empty_trash``.
RECORDS_BATCH = 10_000

DATASTORE_NAME = "bench"
RECORDS_TABLE = "bench_records"
COMPONENT = "__NULL_STRING__"


#: Makes the context manager that times one phase over ``n`` operations.
Timer: TypeAlias = Callable[[int], AbstractContextManager[None]]


@dataclass(frozen=True, slots=True)
class BenchRecord:
    """The item info ``emptyTrash`` builds from each records row."""

    dataset_id: uuid.UUID
    component: str
    path: str

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> BenchRecord:
        """Build the info from one row of the records table."""
        return cls(record["dataset_id"], record["component"], record["path"])


def path_for(dataset_id: uuid.UUID) -> str:
    """The artifact path stored for ``dataset_id`` (unique per dataset)."""
    return f"bench/{dataset_id.hex[:2]}/{dataset_id.hex}.fits"


def records_spec(datasets: type[DatasetRecordStorageManager]) -> ddl.TableSpec:
    """The spec of a file-datastore-like records table.

    Laid out like a file datastore's records: ``(dataset_id, component)`` is
    the primary key (so ``dataset_id`` lookups use it), ``path`` is indexed.
    No foreign-key constraint: a datastore's records outlive the dataset row,
    which the registry deletes in the transaction that trashes the dataset.
    """
    spec = ddl.TableSpec([], indexes=[ddl.IndexSpec("path")])
    datasets.addDatasetForeignKey(spec, primaryKey=True, constraint=False)
    spec.fields.add(ddl.FieldSpec("component", sqlalchemy.String, length=32, primaryKey=True))
    spec.fields.add(ddl.FieldSpec("path", sqlalchemy.String, length=1024, nullable=False))
    return spec


@dataclass
class Bench:
    """Everything the phases work on."""

    db: Database
    manager: DatastoreRegistryBridgeManager
    bridge: DatastoreRegistryBridge
    records: OpaqueTableStorage
    ids: list[uuid.UUID]
    refs: list[FakeDatasetRef]


class Failures:
    """Collects failed correctness checks."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def expect(self, condition: bool, message: str) -> None:
        """Record ``message`` unless ``condition`` holds."""
        if not condition:
            self.messages.append(message)


def count_rows(db: Database, name: str) -> int:
    """Number of rows in table ``name`` of the repository's namespace."""
    table = sqlalchemy.table(name, schema=db.namespace)
    sql = sqlalchemy.select(sqlalchemy.func.count()).select_from(table)
    with db.query(sql) as result:
        return int(result.scalar_one())


@contextmanager
def timed(phase: str, n: int, *, enabled: bool, profile_dir: str | None) -> Iterator[None]:
    """Time the block and print its phase line (only when ``enabled``)."""
    profiler = cProfile.Profile() if enabled and profile_dir is not None else None
    if profiler is not None:
        profiler.enable()
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - start
        if profiler is not None:
            profiler.disable()
    if profiler is not None:
        assert profile_dir is not None
        profiler.dump_stats(os.path.join(profile_dir, f"{phase}.prof"))
    if enabled:
        report(phase, n, seconds)


def phase_insert(bench: Bench, failures: Failures, timer: Timer) -> None:
    """``bridge.insert`` of every ref in one call."""
    n = len(bench.refs)
    with timer(n):
        bench.bridge.insert(iter(bench.refs))
    failures.expect(count_rows(bench.db, "dataset_location") == n, "insert: location rows != N")


def phase_check(bench: Bench, failures: Failures, timer: Timer) -> None:
    """``bridge.check`` of every id in one call."""
    n = len(bench.ids)
    with timer(n):
        found = bench.bridge.check(iter(bench.ids))
    failures.expect(found == set(bench.ids), f"check: found {len(found)} of {n} ids")


def phase_locate(bench: Bench, failures: Failures, timer: Timer) -> None:
    """``manager.locate`` of every ref in one call."""
    n = len(bench.refs)
    with timer(n):
        located = bench.manager.locate(iter(bench.refs))
    expected = {DATASTORE_NAME}
    failures.expect(
        len(located) == n and all(names == expected for names in located.values()),
        "locate: not every dataset is located in exactly the bench datastore",
    )


def phase_find_datastores(bench: Bench, failures: Failures, timer: Timer) -> None:
    """``manager.findDatastores`` once per ref, on at most `FIND_SAMPLE` refs."""
    refs = bench.refs
    if len(refs) > FIND_SAMPLE:
        refs = random.Random(0).sample(refs, FIND_SAMPLE)
    find = bench.manager.findDatastores
    with timer(len(refs)):
        found = [find(ref) for ref in refs]
    expected = frozenset({DATASTORE_NAME})
    failures.expect(
        all(names == expected for names in found),
        "find_datastores: a dataset is not found in exactly the bench datastore",
    )


def phase_move_to_trash(bench: Bench, failures: Failures, timer: Timer) -> None:
    """``bridge.moveToTrash`` of every ref in one call."""
    n = len(bench.refs)
    with timer(n):
        bench.bridge.moveToTrash(iter(bench.refs), None)
    failures.expect(
        count_rows(bench.db, "dataset_location") == 0, "move_to_trash: location not empty"
    )
    failures.expect(
        count_rows(bench.db, "dataset_location_trash") == n, "move_to_trash: trash rows != N"
    )
    failures.expect(not bench.bridge.check(iter(bench.ids)), "move_to_trash: check() not empty")


def fill_records(bench: Bench) -> None:
    """Insert one records row per dataset, in batches, in one transaction (untimed)."""
    with bench.db.transaction():
        for start in range(0, len(bench.ids), RECORDS_BATCH):
            bench.records.insert(
                *(
                    {"dataset_id": i, "component": COMPONENT, "path": path_for(i)}
                    for i in bench.ids[start : start + RECORDS_BATCH]
                )
            )


def phase_empty_trash(bench: Bench, failures: Failures, timer: Timer) -> None:
    """Iterate every trashed pair inside ``bridge.emptyTrash`` and let it purge."""
    fill_records(bench)
    n = len(bench.ids)
    yielded = 0
    bad_info = 0
    trash = bench.bridge.emptyTrash(bench.records, BenchRecord, record_column="path")
    with timer(n), trash as (pairs, keep):
        for ref, info in pairs:
            yielded += 1
            if info is None or info.dataset_id != ref.id:
                bad_info += 1
    failures.expect(yielded == n, f"empty_trash: yielded {yielded} pairs, expected {n}")
    failures.expect(bad_info == 0, f"empty_trash: {bad_info} pairs with a wrong info")
    failures.expect(keep == set(), f"empty_trash: keep should be empty, has {len(keep or ())}")
    failures.expect(
        count_rows(bench.db, "dataset_location_trash") == 0, "empty_trash: trash not empty"
    )
    failures.expect(count_rows(bench.db, RECORDS_TABLE) == 0, "empty_trash: records not empty")


PHASE_FUNCTIONS: Mapping[str, Callable[[Bench, Failures, Timer], None]] = {
    "insert": phase_insert,
    "check": phase_check,
    "locate": phase_locate,
    "find_datastores": phase_find_datastores,
    "move_to_trash": phase_move_to_trash,
    "empty_trash": phase_empty_trash,
}


def phases_to_run(selected: Iterable[str]) -> list[str]:
    """The selected phases plus their prerequisites, in run order."""
    needed = set(selected)
    for phase in list(needed):
        needed.update(PREREQUISITES[phase])
    return [p for p in PHASES if p in needed]


def open_bench_database(uri: str | None, stack: ExitStack) -> Database:
    """Open the benchmark database; register its clean-up on ``stack``."""
    if uri is None:
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="databutler-bench-"))
        uri = f"sqlite:///{folder}/bench.sqlite3"
    namespace = stack.enter_context(scratch_schema(uri))  # dropped after the dispose below
    db = open_database(uri, namespace=namespace)
    stack.callback(db.dispose)
    shown = sqlalchemy.engine.make_url(uri).render_as_string(hide_password=True)
    print(f"# database {shown} namespace={namespace}", file=sys.stderr)
    return db


def new_ids(n: int, seed: int | None) -> list[uuid.UUID]:
    """``n`` random version-4 dataset ids; repeatable when ``seed`` is given."""
    if seed is None:
        return [uuid.uuid4() for _ in range(n)]
    rng = random.Random(seed)
    return [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(n)]


def set_up(db: Database, ids: list[uuid.UUID]) -> Bench:
    """Create the repository, its datasets, the bridge and the records table."""
    managers = RegistryManagerTypes().makeRepo(db)
    datasets = managers.datasets
    if not isinstance(datasets, SimpleDatasetRecordStorageManager):
        raise TypeError(f"The benchmark needs a dataset manager with insert(), not {datasets!r}.")
    datasets.insert(iter(ids))
    if count_rows(db, "dataset") != len(ids):
        raise RuntimeError("Setup failed: the dataset table does not hold every dataset id.")
    bridge = managers.datastores.register(DATASTORE_NAME)
    records = managers.opaque.register(RECORDS_TABLE, records_spec(type(managers.datasets)))
    return Bench(
        db=db,
        manager=managers.datastores,
        bridge=bridge,
        records=records,
        ids=ids,
        refs=[FakeDatasetRef(i) for i in ids],
    )


def peak_rss_mib() -> float:
    """Peak resident set size of this process, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=positive_int, required=True, help="number of datasets")
    parser.add_argument(
        "--db", default=None, help="database URI (default: SQLite in a temporary folder)"
    )
    parser.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"comma-separated phases to time (default: all of {','.join(PHASES)})",
    )
    parser.add_argument(
        "--profile", default=None, metavar="DIR", help="write DIR/<phase>.prof cProfile files"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the dataset ids")
    args = parser.parse_args(argv)
    args.phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    unknown = sorted(set(args.phases) - set(PHASES))
    if unknown:
        parser.error(f"unknown phase(s) {', '.join(unknown)}; choose from {', '.join(PHASES)}")
    if args.profile is not None:
        os.makedirs(args.profile, exist_ok=True)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; return the process exit status."""
    args = parse_args(argv)
    failures = Failures()
    with ExitStack() as stack:
        with user_errors():
            db = open_bench_database(args.db, stack)
        bench = set_up(db, new_ids(args.n, args.seed))
        for phase in phases_to_run(args.phases):
            enabled = phase in args.phases

            def timer(
                n: int, phase: str = phase, enabled: bool = enabled
            ) -> AbstractContextManager[None]:
                return timed(phase, n, enabled=enabled, profile_dir=args.profile)

            PHASE_FUNCTIONS[phase](bench, failures, timer)
    print(f"peak_rss_mib={peak_rss_mib():.1f}", flush=True)
    for message in failures.messages:
        print(f"FAILED: {message}", file=sys.stderr)
    return 1 if failures.messages else 0


if __name__ == "__main__":
    sys.exit(main())
