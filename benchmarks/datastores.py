"""Throughput of the file datastore with small JSON datasets.

Usage::

    python benchmarks/datastores.py --n 2000 [--root URI] [--s3]

Local disk with an SQLite registry by default (both in a temporary folder);
``--root`` puts the artifacts elsewhere (a directory or ``s3://bucket/prefix``
with the standard AWS settings); ``--s3`` starts a moto S3 server on
127.0.0.1 and uses it. One line per phase, ``phase=NAME n=N seconds=S
ops_per_s=X``: ``put_many``, ``put`` (one at a time), ``get`` (one at a
time), ``ingest_copy``, ``ingest_direct``, ``trash_empty`` (trash all, then
empty_trash). On local disk it first prints ``baseline_plain_python``: the
same files and one row each written by plain Python, the floor this machine
allows at that moment (its disk speed varies several-fold from minute to
minute).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from _common import (  # benchmarks/ is on the path when run as a script
    positive_int,
    timed,
    user_errors,
    verdict,
    warm_up,
)
from databutler import DatasetType
from databutler.datastores import FileDatastore
from databutler.registry import SqlRegistry


def make_refs(registry: SqlRegistry, run: str, n: int) -> list[Any]:
    registry.registerRun(run)
    return registry.insertDatasets(
        "thing", [{"instrument": "Cam", "detector": d} for d in range(n)], run
    )


def plain_python_puts(directory: Path, payload: Any, n: int) -> None:
    """The floor for a put on this machine: the same file and one row, with no databutler.

    Each object is written as JSON to a temporary name and renamed, and a
    row is inserted and committed with the sqlite3 module, one at a time.
    """
    directory.mkdir()
    connection = sqlite3.connect(directory / "rows.sqlite3", isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute("CREATE TABLE stored (id BLOB PRIMARY KEY, path TEXT) WITHOUT ROWID")
    for i in range(n):
        path = directory / f"thing_{i}.json"
        temporary = directory / f".thing_{i}.json.tmp"
        temporary.write_text(json.dumps(payload))
        os.replace(temporary, path)
        connection.execute("INSERT INTO stored VALUES (?, ?)", (uuid.uuid4().bytes, str(path)))
    connection.close()


def run(n: int, root: str | None, s3: bool, table_rows: int = 100_000) -> int:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="databutler-ds-bench-")))
        registry = SqlRegistry.create(f"sqlite:///{tmp / 'registry.sqlite3'}")
        registry.insertDimensionData("instrument", {"instrument": "Cam"})
        registry.insertDimensionData(
            "detector", *({"instrument": "Cam", "detector": d} for d in range(n))
        )
        registry.registerDatasetType(DatasetType("thing", ["detector"], "StructuredDataDict"))
        target: Any = root if root is not None else str(tmp / "store")
        if s3:
            from databutler.datastores.resources.s3 import S3Store
            from databutler.testing.s3 import make_bucket, s3_endpoint

            client = stack.enter_context(s3_endpoint())
            target = S3Store(f"s3://{make_bucket(client)}/store", client=client)
        datastore = FileDatastore(
            "files", registry.datastore_bridges, target, formatters={"thing": "json"}
        )
        payload = {"name": "x" * 60, "value": 1.5, "flags": [1, 2, 3]}  # ~100 bytes of JSON
        warm_up(tmp)
        if root is None and not s3:
            with timed("baseline_plain_python", n):
                plain_python_puts(tmp / "baseline", payload, n)

        bulk = make_refs(registry, "bulk", n)
        with timed("put_many", n):
            datastore.put_many((payload, ref) for ref in bulk)

        single = make_refs(registry, "single", n)
        with timed("put", n):
            for ref in single:
                datastore.put(payload, ref)

        with timed("get", n):
            failures = sum(datastore.get(ref) != payload for ref in single)

        sources = tmp / "incoming"
        sources.mkdir()
        files = []
        for i in range(n):
            path = sources / f"f{i}.json"
            path.write_text('{"name": "%s", "value": 1.5}' % ("x" * 70))
            files.append(path)
        copied = make_refs(registry, "copied", n)
        with timed("ingest_copy", n):
            datastore.ingest(zip(files, copied, strict=True), transfer="copy")
        direct = make_refs(registry, "direct", n)
        with timed("ingest_direct", n):
            datastore.ingest(zip(files, direct, strict=True), transfer="direct")

        everything = bulk + single + copied + direct
        with timed("trash_empty", len(everything)):
            with registry.transaction():
                datastore.trash(everything)
            emptied = datastore.empty_trash()
        failures += len(emptied) != len(everything)
        failures += sum(not f.exists() for f in files)  # direct ingests are never deleted
        failures += table_phases(registry, datastore, min(n, 20), table_rows)
        return verdict(failures)


def table_phases(registry: SqlRegistry, datastore: FileDatastore, reads: int, rows: int) -> int:
    """``get_all``, ``get_columns`` and ``convert`` on one wide Parquet table; failed checks."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    registry.registerDatasetType(DatasetType("table", ["detector"], "ArrowTable"))
    registry.registerRun("tables")
    (ref,) = registry.insertDatasets("table", [{"instrument": "Cam", "detector": 0}], "tables")
    rng = np.random.default_rng(11)
    table = pa.table({f"c{i:02d}": rng.random(rows) for i in range(50)})
    datastore.put(table, ref)
    wanted = ["c07", "c31"]
    start = time.perf_counter()
    with timed("get_all", reads):
        failures: int = sum(datastore.get(ref).num_columns != 50 for _ in range(reads))
    everything = time.perf_counter() - start
    start = time.perf_counter()
    with timed("get_columns", reads):
        for _ in range(reads):
            part = datastore.get(ref, parameters={"columns": wanted})
            failures += bool(part.column_names != wanted or part.num_rows != rows)
    some = time.perf_counter() - start
    print(f"get_columns_speedup={everything / some:.1f}", flush=True)
    as_frame = ref.override_storage_class("DataFrame")
    with timed("convert", reads):
        for _ in range(reads):
            frame = datastore.get(as_frame)
            failures += bool(not isinstance(frame, pd.DataFrame) or frame.shape != (rows, 50))
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=positive_int, required=True, help="datasets per phase")
    parser.add_argument("--root", default=None, help="artifact root (directory or s3://...)")
    parser.add_argument("--s3", action="store_true", help="use a moto S3 server on 127.0.0.1")
    parser.add_argument(
        "--table-rows", type=positive_int, default=100_000, help="rows of the Parquet table phases"
    )
    args = parser.parse_args(argv)
    with user_errors():
        return run(args.n, args.root, args.s3, args.table_rows)


if __name__ == "__main__":
    sys.exit(main())
