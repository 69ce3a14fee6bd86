"""A disk that fills up, or fails, under a repository: named errors, nothing half-done.

A write past the process's file-size limit (``RLIMIT_FSIZE``, set in a child
process) fails as a full disk does, at the same calls: the artifact's write
and the registry's COMMIT. Each failure must be a databutler error naming
what could not be written and what to do; the failed call must leave no
dataset, no artifact and no temporary file; and the butler must go on
working once there is room again (a failed COMMIT used to leave SQLAlchemy's
transaction on the connection, and every later call failed).
"""

from __future__ import annotations

import errno
import json
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from databutler import Butler, DatabaseStorageError
from databutler.registry.databases.postgresql import _storage_failures as postgresql_failures
from databutler.registry.databases.sqlite import _check_file
from databutler.registry.databases.sqlite import _storage_failures as sqlite_failures
from databutler.testing.butler import populate

CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys
    from databutler import Butler, DatabaseStorageError
    from databutler.datastores.resources import StorageError

    root, limit = sys.argv[1], int(sys.argv[2])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, EFBIG
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    out = {"kept": [], "failed": [], "errors": {}, "big": None}
    with Butler(root, writeable=True, run="r") as butler:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        for d in range(300):
            try:
                ref = butler.put({"d": d}, "thing", instrument="HSC", detector=d)
                out["kept"].append([str(ref.id), d])
            except (DatabaseStorageError, StorageError) as exc:
                out["failed"].append(d)
                out["errors"][type(exc).__name__] = str(exc)
        try:
            butler.put({"big": "x" * (2 * limit)}, "thing", instrument="HSC", detector=300)
        except StorageError as exc:
            out["big"] = [exc.errno, str(exc)]
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        ref = butler.put({"d": 301}, "thing", instrument="HSC", detector=301)
        out["kept"].append([str(ref.id), 301])
    print(json.dumps(out))
    """
)


def run_child(code: str, *args: str) -> tuple[Any, str]:
    """Run ``code`` in a new Python process; what it printed (JSON), and its stderr."""
    child = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout), child.stderr


def test_a_full_disk_is_named_and_the_butler_goes_on(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    with Butler.create(root, run="r") as butler:
        populate(butler, 302)
    limit = (root / "registry.sqlite3").stat().st_size + 60_000  # room for a few commits
    out, stderr = run_child(CHILD, str(root), str(limit))
    # The registry's COMMIT failed: named, with the database and what to do.
    message = out["errors"]["DatabaseStorageError"]
    assert str(root / "registry.sqlite3") in message and "rolled back" in message
    assert "Traceback" not in stderr and "InvalidRequestError" not in stderr
    # An artifact too large to write: a StorageError with the errno, naming the artifact.
    code, text = out["big"]
    assert code == errno.EFBIG and text.startswith("Cannot write artifact 'r/thing/")
    assert out["failed"] and out["kept"][-1][1] == 301  # went on once there was room
    with Butler(root) as butler:
        stored = {str(ref.id): ref for ref in butler.query_datasets("thing", collections="r")}
        assert set(stored) == {dataset_id for dataset_id, _ in out["kept"]}
        for dataset_id, d in out["kept"]:
            assert butler.get(stored[dataset_id]) == {"d": d}
        assert butler.verify().ok  # no artifact of a failed put is left
    assert not list((root / "files").rglob("*.tmp"))


def test_a_write_ahead_log_holds_pages_the_file_lacks(tmp_path: Path) -> None:
    """A checkpoint that ran out of disk leaves the file's header counting pages that only
    the log has yet: that is not a truncated database (without a log it is)."""
    path = tmp_path / "registry.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE t (x)")
    connection.executemany("INSERT INTO t VALUES (?)", ((b"x" * 500,) for _ in range(100)))
    connection.commit()
    connection.close()
    whole = path.read_bytes()
    path.write_bytes(whole[:4096])
    with pytest.raises(Exception, match="truncated"):
        _check_file(str(path), allow_empty=False, writeable=True)
    Path(f"{path}-wal").write_bytes(b"\0" * 32)
    _check_file(str(path), allow_empty=False, writeable=True)  # SQLite reads the log


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("database or disk is full", "is full"),
        ("disk I/O error", "could not read or write"),
        ("database disk image is malformed", "is damaged"),
    ],
)
def test_sqlite_storage_failures_are_named(text: str, expected: str) -> None:
    named = sqlite_failures("/data/registry.sqlite3")(sqlite3.OperationalError(text))
    assert isinstance(named, DatabaseStorageError)
    assert expected in str(named) and "/data/registry.sqlite3" in str(named)
    assert sqlite_failures("/x")(sqlite3.OperationalError("no such table: t")) is None


@pytest.mark.parametrize(
    ("state", "expected"), [("53100", "disk is full"), ("58030", "I/O error"), ("XX001", "damaged")]
)
def test_postgresql_storage_failures_are_named(state: str, expected: str) -> None:
    name = postgresql_failures("postgresql://u@127.0.0.1:1/db")
    error = SimpleNamespace(sqlstate=state)
    named = name(error)  # type: ignore[arg-type]
    assert isinstance(named, DatabaseStorageError) and expected in str(named)
    assert name(SimpleNamespace(sqlstate="40001")) is None  # type: ignore[arg-type]


COPY_CHILD = textwrap.dedent(
    """
    import json, resource, signal, sys
    from databutler import Butler
    from databutler.datastores.resources import StorageError

    root, out_dir = sys.argv[1], sys.argv[2]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, EFBIG
    out = {}
    with Butler(root) as butler:
        refs = list(butler.query_datasets("thing", collections="r"))
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, hard))
        calls = {
            "export": lambda: butler.export(out_dir + "/export", refs=refs),
            "export_zip": lambda: butler.export(out_dir + "/export.zip", refs=refs),
            "retrieve": lambda: butler.retrieve_artifacts(refs, out_dir + "/retrieved"),
        }
        for name, call in calls.items():
            try:
                call()
                out[name] = None
            except StorageError as exc:
                out[name] = [exc.errno, str(exc)]
    print(json.dumps(out))
    """
)


def test_copies_out_of_the_repository_onto_a_full_disk_are_named(tmp_path: Path) -> None:
    """An export or a retrieve that runs out of room: a `StorageError` with the errno and
    the file, and nothing of the copy left (it was a bare OSError)."""
    root = tmp_path / "repo"
    with Butler.create(root, run="r") as butler:
        populate(butler, 3)
        for d in range(3):
            butler.put({"d": d, "pad": "x" * 20_000}, "thing", instrument="HSC", detector=d)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out, _ = run_child(COPY_CHILD, str(root), str(out_dir))
    for name in ("export", "export_zip", "retrieve"):
        assert out[name] is not None, name
        code, text = out[name]
        assert code == errno.EFBIG, (name, text)
        assert text.startswith(f"Cannot write {out_dir}/") and "File too large" in text, text
    assert list(out_dir.iterdir()) == []
