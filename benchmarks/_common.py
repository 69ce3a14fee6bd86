"""What the benchmarks share: argument types, the phase line, timing, the verdict, a warm-up,
and a schema of their own on a shared PostgreSQL database.

Only the standard library at import: `upstream.py` runs this in daf_butler's
environment too.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

__all__ = [
    "client_counts",
    "non_negative_int",
    "positive_float",
    "positive_int",
    "report",
    "scratch_schema",
    "timed",
    "user_errors",
    "verdict",
    "warm_up",
]

_N = TypeVar("_N", int, float)


def positive_int(text: str) -> int:
    """An argument type: a whole number of at least 1."""
    value = _number(int, text, "a whole number")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not positive; give 1 or more")
    return value


def non_negative_int(text: str) -> int:
    """An argument type: a whole number of at least 0."""
    value = _number(int, text, "a whole number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative; give 0 or more")
    return value


def positive_float(text: str) -> float:
    """An argument type: a finite number above 0 (seconds, say)."""
    value = _number(float, text, "a number")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number above 0")
    return value


def client_counts(text: str) -> list[int]:
    """An argument type: client counts separated by commas, each at least 1 (``1,2,4,8``)."""
    parts = [part.strip() for part in text.split(",")]
    if not any(parts):
        raise argparse.ArgumentTypeError("no client count given; write them like 1,2,4,8")
    counts = []
    for part in parts:
        if not part:
            raise argparse.ArgumentTypeError(f"{text!r} has an empty count; write 1,2,4,8")
        counts.append(positive_int(part))
    return counts


def _number(kind: Callable[[str], _N], text: str, what: str) -> _N:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn databutler's errors for what the user gave (a database URI that cannot be
    reached, a repository that exists already) into a usage error: one line on standard
    error and exit status 2, as for a bad option, no traceback. Anything else propagates."""
    try:
        yield
    except Exception as exc:
        if not _is_databutler_error(exc):
            raise
        print(f"{Path(sys.argv[0]).name}: error: {exc}", file=sys.stderr)
        sys.exit(2)


def _is_databutler_error(error: Exception) -> bool:
    try:
        from databutler import DatabutlerError
    except ImportError:  # daf_butler's environment (upstream.py)
        return False
    return isinstance(error, DatabutlerError)


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
    except BaseException:
        # The run's own error says what went wrong (a server that cannot be reached,
        # say); a failure to drop the schema too must not replace it.
        with suppress(Exception):
            _drop_schema(db, namespace)
        raise
    _drop_schema(db, namespace)


def _drop_schema(db: str, namespace: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(db.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        drop = sqlalchemy.schema.DropSchema(namespace, cascade=True, if_exists=True)
        with engine.begin() as connection:
            connection.execute(drop)
    finally:
        engine.dispose()
