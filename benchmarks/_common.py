"""What the benchmarks share: arguments, the phase line, timing, the verdict, a warm-up,
and a schema of their own on a shared PostgreSQL database.

Only the standard library at import: `upstream.py` runs this in daf_butler's
environment too.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["parse", "report", "scratch_schema", "timed", "verdict", "warm_up"]


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The arguments, with ``--n`` (which every benchmark has) checked to be positive."""
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be positive")
    return args


def verdict(failures: int) -> int:
    """The exit status: 1, said on standard error, when a correctness check failed."""
    if failures:
        print(f"# {failures} correctness check(s) failed", file=sys.stderr)
        return 1
    return 0


def report(phase: str, n: int, seconds: float) -> None:
    """Print the one line a timed phase produces."""
    rate = int(n / seconds) if seconds > 0 else 0
    print(f"phase={phase} n={n} seconds={seconds:.4f} ops_per_s={rate}", flush=True)


@contextmanager
def timed(phase: str, n: int) -> Iterator[None]:
    """Time the block and print its phase line."""
    start = time.perf_counter()
    yield
    report(phase, n, time.perf_counter() - start)


def warm_up(directory: Path, seconds: float = 3.0) -> None:
    """Create and delete files in ``directory`` for a while before anything is timed.

    On the virtual machines these figures come from, the first thousands of
    files created in a new directory, and the first second or two of work
    after an idle spell, run several times slower (block-group bitmaps read
    in, clock and I/O ramp-up); without this, the first phase measures the
    machine waking up.
    """
    scratch = directory / "warm-up"
    scratch.mkdir()
    deadline = time.perf_counter() + seconds
    created: list[Path] = []
    while time.perf_counter() < deadline and len(created) < 20_000:
        path = scratch / f"{len(created)}.tmp"
        path.write_bytes(b"x" * 100)
        created.append(path)
    for path in created:
        path.unlink()
    scratch.rmdir()


@contextmanager
def scratch_schema(db: str | None, prefix: str = "bench") -> Iterator[str | None]:
    """A new schema name for one run in PostgreSQL database ``db``, dropped at exit.

    The run creates its tables in that schema, so runs never collide with
    each other or with other users of the database, and nothing is left in it
    afterwards, even when the run fails. ``None`` for SQLite or no ``db``:
    there the run's own temporary file is the scratch.
    """
    if db is None or not db.startswith("postgresql"):
        yield None
        return
    namespace = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        yield namespace
    finally:
        import sqlalchemy

        engine = sqlalchemy.create_engine(db.replace("postgresql://", "postgresql+psycopg://", 1))
        try:
            drop = sqlalchemy.schema.DropSchema(namespace, cascade=True, if_exists=True)
            with engine.begin() as connection:
                connection.execute(drop)
        finally:
            engine.dispose()
