"""Fault tests of `FileDatastore`: whatever fails, no orphan artifact and no dangling row.

Each test breaks one thing for real — a formatter, the disk (full, no
permission), S3 (HTTP 500 through `databutler.testing.faults`), the record
insert, the process itself (killed between writing and recording) — then
checks through backdoors (the directory or the bucket, and raw SQL on the
SQLite file) that what is on storage and in the tables agree, and that a
retry succeeds.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import databutler.datastores.resources.local as local_module
from databutler import ConflictError
from databutler.datastores import FileDatastore
from databutler.datastores.formatters import FormatterError
from databutler.datastores.resources import StorageError
from databutler.datastores.resources.s3 import S3Store
from databutler.registry import SqlRegistry
from databutler.testing.datastore import make_refs
from databutler.testing.faults import S3FaultProxy, s3_fault_proxy
from databutler.testing.s3 import make_bucket, s3_endpoint

NAME = "files"
PREFIX = "repo"


@pytest.fixture(scope="module")
def s3_client() -> Iterator[Any]:
    with s3_endpoint() as client:
        yield client


@pytest.fixture(scope="module")
def proxy(s3_client: Any) -> Iterator[S3FaultProxy]:
    with s3_fault_proxy(s3_client.meta.endpoint_url) as proxy:
        yield proxy


@dataclass
class State:
    """What the backdoors see."""

    artifacts: list[str]  # every file or object under the root, temporaries included
    records: dict[uuid.UUID, str]  # dataset id -> recorded path
    held: set[uuid.UUID]  # dataset_location rows of the datastore
    trashed: set[uuid.UUID]  # dataset_location_trash rows of the datastore


@dataclass
class Repo:
    """A registry in an SQLite file and a file datastore on local disk or S3 (via the proxy)."""

    backend: str
    registry: SqlRegistry
    datastore: FileDatastore
    db_path: Path
    root: Path | None = None
    s3: Any = None  # a client straight to the S3 server, past the proxy
    bucket: str = ""

    def artifacts(self) -> list[str]:
        if self.root is not None:
            return sorted(
                Path(directory, name).relative_to(self.root).as_posix()
                for directory, _, names in os.walk(self.root)
                for name in names
            )
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        return sorted(k.removeprefix(f"{PREFIX}/") for k in keys)

    def state(self) -> State:
        table = self.datastore.records.table.name  # type: ignore[attr-defined]
        with closing(sqlite3.connect(self.db_path)) as connection:

            def ids(sql: str) -> set[uuid.UUID]:
                rows = connection.execute(sql, (NAME,)).fetchall()
                return {uuid.UUID(bytes=row[0]) for row in rows}

            held = ids("SELECT dataset_id FROM dataset_location WHERE datastore_name = ?")
            trashed = ids("SELECT dataset_id FROM dataset_location_trash WHERE datastore_name = ?")
            records = {
                uuid.UUID(bytes=dataset_id): path
                for dataset_id, path in connection.execute(
                    f"SELECT dataset_id, path FROM {table}"
                ).fetchall()
            }
        return State(self.artifacts(), records, held, trashed)

    def another_datastore(self, **kwargs: Any) -> FileDatastore:
        """A second `FileDatastore` of the same name on the same storage."""
        return FileDatastore(NAME, self.registry.datastore_bridges, self.datastore.store, **kwargs)


def assert_consistent(repo: Repo) -> State:
    """No orphan artifact, no dangling row, every held dataset's artifact present."""
    state = repo.state()
    assert set(state.records) == state.held | state.trashed, "records and bridge rows disagree"
    assert not state.held & state.trashed
    orphans = set(state.artifacts) - set(state.records.values())
    assert not orphans, f"orphan artifacts (or temporaries) {sorted(orphans)}"
    missing = {state.records[i] for i in state.held} - set(state.artifacts)
    assert not missing, f"held datasets without artifacts {sorted(missing)}"
    return state


def assert_stored(repo: Repo, stored: dict[Any, Any]) -> None:
    """Exactly ``stored`` (ref -> object) is held, each in one artifact, nothing else."""
    state = assert_consistent(repo)
    assert state.held == {ref.id for ref in stored}
    assert not state.trashed
    assert len(state.artifacts) == len(stored)
    for ref, obj in stored.items():
        assert repo.datastore.get(ref) == obj


def assert_untouched(repo: Repo) -> None:
    """Storage and tables are empty."""
    assert repo.state() == State([], {}, set(), set())


@pytest.fixture(params=["local", "s3"])
def repo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Repo]:
    db_path = tmp_path / "r.sqlite3"
    registry = SqlRegistry.create(f"sqlite:///{db_path}")
    if request.param == "local":
        root = tmp_path / "store"
        datastore = FileDatastore(
            NAME, registry.datastore_bridges, str(root), formatters={"thing": "json"}
        )
        yield Repo("local", registry, datastore, db_path, root=root)
        return
    proxy: S3FaultProxy = request.getfixturevalue("proxy")
    s3 = request.getfixturevalue("s3_client")
    bucket = make_bucket(s3)
    proxy.injected.clear()
    store = S3Store(f"s3://{bucket}/{PREFIX}", client=proxy.client())
    datastore = FileDatastore(NAME, registry.datastore_bridges, store, formatters={"thing": "json"})
    try:
        yield Repo("s3", registry, datastore, db_path, s3=s3, bucket=bucket)
    finally:
        proxy.heal()


def objects(n: int) -> list[dict[str, Any]]:
    return [{"i": i, "padding": "x" * 200} for i in range(n)]


def store(repo: Repo, items: list[tuple[Any, Any]], operation: str, tmp_path: Path) -> None:
    """Store ``items`` by ``put_many`` or by ``ingest(transfer="copy")`` of JSON files."""
    if operation == "put":
        repo.datastore.put_many(items)
        return
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    sources = []
    for obj, ref in items:
        source = outside / f"{ref.id}.json"
        source.write_text(json.dumps(obj))
        sources.append((source, ref))
    repo.datastore.ingest(sources, transfer="copy")
    for source, _ in sources:  # a copy never touches the original, even when it fails
        assert source.is_file()


def fail_on_call(function: Callable[..., Any], call: int, error: Exception) -> Callable[..., Any]:
    """``function``, except that its ``call``-th call raises ``error``."""
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == call:
            raise error
        return function(*args, **kwargs)

    return wrapper


# -- formatter and write failures --------------------------------------------


def test_unserialisable_object_mid_batch(repo: Repo) -> None:
    refs = make_refs(repo.registry, 3)
    good = objects(3)
    with pytest.raises(FormatterError, match="json"):
        repo.datastore.put_many(
            [(good[0], refs[0]), ({"bad": {1, 2}}, refs[1]), (good[2], refs[2])]
        )
    assert_untouched(repo)
    repo.datastore.put_many(zip(good, refs, strict=True))
    assert_stored(repo, dict(zip(refs, good, strict=True)))


def test_items_fail_partway(repo: Repo) -> None:
    refs = make_refs(repo.registry, 3)
    good = objects(3)

    def items() -> Iterator[tuple[Any, Any]]:
        yield good[0], refs[0]
        yield good[1], refs[1]
        raise RuntimeError("the producer of the third object failed")

    with pytest.raises(RuntimeError, match="third object"):
        repo.datastore.put_many(items())
    assert_untouched(repo)
    repo.datastore.put_many(zip(good, refs, strict=True))
    assert_stored(repo, dict(zip(refs, good, strict=True)))


@pytest.mark.parametrize("operation", ["put", "ingest"])
def test_write_fails_on_second_of_three(
    repo: Repo, operation: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = make_refs(repo.registry, 3)
    good = objects(3)
    write = repo.datastore.store.write
    monkeypatch.setattr(
        repo.datastore.store, "write", fail_on_call(write, 2, OSError("injected write failure"))
    )
    with pytest.raises(OSError, match="injected write failure"):
        store(repo, list(zip(good, refs, strict=True)), operation, tmp_path)
    assert_untouched(repo)  # the first artifact was deleted again
    monkeypatch.setattr(repo.datastore.store, "write", write)
    store(repo, list(zip(good, refs, strict=True)), operation, tmp_path)
    assert_stored(repo, dict(zip(refs, good, strict=True)))


class _FaultyOs:
    """The `os` module as the local store sees it, with one call failing.

    ``ENOSPC``: the ``fail_call``-th file written fills the disk halfway.
    ``EACCES``: the ``fail_call``-th file created is refused (as in a
    read-only directory; chmod cannot show that when the tests run as root).
    """

    def __init__(self, fault: str, fail_call: int) -> None:
        self.fault = fault
        self.fail_call = fail_call
        self.calls = 0
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    def open(self, path: Any, flags: int, mode: int = 0o777) -> int:
        if self.fault == "EACCES" and flags & os.O_CREAT:
            self.calls += 1
            if self.calls == self.fail_call:
                self.failed += 1
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
        return os.open(path, flags, mode)

    def write(self, descriptor: int, data: Any) -> int:
        if self.fault == "ENOSPC":
            self.calls += 1
            if self.calls == self.fail_call:
                self.failed += 1
                os.write(descriptor, bytes(data[: len(data) // 2]))  # half is on disk
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.write(descriptor, data)


@pytest.mark.parametrize("repo", ["local"], indirect=True)
@pytest.mark.parametrize("operation", ["put", "ingest"])
@pytest.mark.parametrize("fault", ["ENOSPC", "EACCES"])
def test_disk_full_or_permission_denied(
    repo: Repo, operation: str, fault: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = make_refs(repo.registry, 3)
    good = objects(3)
    faulty = _FaultyOs(fault, fail_call=2)
    monkeypatch.setattr(local_module, "os", faulty)
    with pytest.raises(OSError) as raised:
        store(repo, list(zip(good, refs, strict=True)), operation, tmp_path)
    assert raised.value.errno == getattr(errno, fault)
    assert faulty.failed == 1
    assert_untouched(repo)  # no partial temporary file, no first artifact, no row
    monkeypatch.setattr(local_module, "os", os)
    store(repo, list(zip(good, refs, strict=True)), operation, tmp_path)
    assert_stored(repo, dict(zip(refs, good, strict=True)))


# -- S3 answering 500 ---------------------------------------------------------


@pytest.mark.parametrize("repo", ["s3"], indirect=True)
@pytest.mark.parametrize("operation", ["put", "ingest"])
@pytest.mark.parametrize("skip", [0, 1], ids=["first-put", "second-put"])
def test_s3_500_on_put(
    repo: Repo, proxy: S3FaultProxy, operation: str, skip: int, tmp_path: Path
) -> None:
    refs = make_refs(repo.registry, 3)
    good = objects(3)
    proxy.fail("PUT", skip=skip)
    with pytest.raises(StorageError, match="InternalError"):
        store(repo, list(zip(good, refs, strict=True)), operation, tmp_path)
    assert [method for method, _ in proxy.injected] == ["PUT"]
    assert_untouched(repo)  # with skip=1 the first object was deleted again
    proxy.heal()
    store(repo, list(zip(good, refs, strict=True)), operation, tmp_path)
    assert_stored(repo, dict(zip(refs, good, strict=True)))


@pytest.mark.parametrize("repo", ["s3"], indirect=True)
def test_s3_500_on_put_and_on_cleanup(repo: Repo, proxy: S3FaultProxy) -> None:
    refs = make_refs(repo.registry, 3)
    good = objects(3)
    proxy.fail("PUT", skip=1)
    proxy.fail("DELETE")  # the cleanup cannot delete the first object either
    with pytest.raises(StorageError, match="Cannot write") as raised:
        repo.datastore.put_many(zip(good, refs, strict=True))
    assert [method for method, _ in proxy.injected] == ["PUT", "DELETE"]
    assert "Could not delete" in "\n".join(getattr(raised.value, "__notes__", []))
    state = repo.state()
    # Nothing recorded; the first object is left behind, with no record pointing at it ...
    assert (state.records, state.held, state.trashed) == ({}, set(), set())
    assert len(state.artifacts) == 1
    proxy.heal()
    # ... and the retry takes its place.
    repo.datastore.put_many(zip(good, refs, strict=True))
    assert_stored(repo, dict(zip(refs, good, strict=True)))


@pytest.mark.parametrize("repo", ["s3"], indirect=True)
def test_s3_transient_500_is_retried(repo: Repo, proxy: S3FaultProxy) -> None:
    (ref,) = make_refs(repo.registry, 1)
    patient = repo.another_datastore(formatters={"thing": "json"})
    patient.store = S3Store(f"s3://{repo.bucket}/{PREFIX}", client=proxy.client(max_attempts=3))
    proxy.fail("PUT", times=1)
    patient.put({"v": 1}, ref)
    assert [method for method, _ in proxy.injected] == ["PUT"]
    assert_stored(repo, {ref: {"v": 1}})


# -- failures while deleting --------------------------------------------------


def _fail_after(function: Callable[..., Any], skip: int, error: Exception) -> Callable[..., Any]:
    """``function`` for the first ``skip`` calls, then ``error`` on every call."""
    calls = 0

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls > skip:
            raise error
        return function(*args, **kwargs)

    return wrapper


@pytest.mark.parametrize("skip", [0, 1], ids=["first-delete", "second-delete"])
def test_delete_fails_while_emptying_trash(
    repo: Repo, skip: int, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = make_refs(repo.registry, 3)
    good = objects(3)
    repo.datastore.put_many(zip(good, refs, strict=True))
    with repo.registry.transaction():
        repo.datastore.trash(refs[:2])
    if repo.backend == "s3":
        proxy: S3FaultProxy = request.getfixturevalue("proxy")
        # The trash is emptied with DeleteObjects (POST ?delete); one key a request
        # here, so that the second deletion can fail on its own.
        monkeypatch.setattr("databutler.datastores.resources.s3.DELETE_BATCH", 1)
        proxy.fail("POST", skip=skip, path_contains="delete")
    else:
        delete = repo.datastore.store.delete
        error = PermissionError(errno.EACCES, "injected: cannot unlink")
        monkeypatch.setattr(repo.datastore.store, "delete", _fail_after(delete, skip, error))
    trashed = {ref.id for ref in refs[:2]}
    # Never raises: what cannot be deleted is reported and stays in the trash.
    emptied = set(repo.datastore.empty_trash())
    stuck = {i for f in repo.datastore.trash_failures for i in f.dataset_ids}
    assert emptied | stuck == trashed and not emptied & stuck
    if repo.backend == "s3":
        assert stuck == set()  # batch requests failed; one-by-one deletes got through
    else:
        assert stuck == trashed  # every unlink failed after the first `skip`
        assert all("injected" in f.reason for f in repo.datastore.trash_failures)
    state = assert_consistent(repo)
    assert (state.held, state.trashed) == ({refs[2].id}, stuck)
    assert set(state.records) == {refs[2].id} | stuck
    # Heal, and the retry finishes the job.
    if repo.backend == "s3":
        proxy.heal()
    else:
        monkeypatch.setattr(repo.datastore.store, "delete", delete)
    assert set(repo.datastore.empty_trash()) == stuck
    assert_stored(repo, {refs[2]: good[2]})
    assert repo.datastore.empty_trash() == []


# -- failures of the record insert --------------------------------------------


@pytest.mark.parametrize("operation", ["put", "ingest"])
def test_record_of_unknown_dataset_refused(repo: Repo, operation: str, tmp_path: Path) -> None:
    refs = make_refs(repo.registry, 3)
    good = objects(3)
    repo.registry.removeDatasets([refs[2]])  # the bridge's foreign key refuses it
    with pytest.raises(Exception, match="not a dataset of the registry"):
        store(repo, list(zip(good, refs, strict=True)), operation, tmp_path)
    assert_untouched(repo)  # all three artifacts were written, then deleted
    store(repo, list(zip(good[:2], refs[:2], strict=True)), operation, tmp_path)
    assert_stored(repo, dict(zip(refs[:2], good[:2], strict=True)))


def test_record_of_stored_dataset_conflicts(repo: Repo) -> None:
    first, second = make_refs(repo.registry, 2)
    repo.datastore.put({"v": 1}, first)
    before = repo.artifacts()
    # Another configuration of the same datastore writes YAML: new paths, so the
    # artifacts are written, and recording ``first`` a second time conflicts.
    yaml_datastore = repo.another_datastore(formatters={"thing": "yaml"})
    with pytest.raises(ConflictError):
        yaml_datastore.put_many([({"v": 2}, second), ({"v": 3}, first)])
    assert repo.artifacts() == before  # both YAML artifacts deleted again
    assert_stored(repo, {first: {"v": 1}})
    yaml_datastore.put({"v": 2}, second)
    assert_stored(repo, {first: {"v": 1}, second: {"v": 2}})
    assert repo.artifacts() == sorted(repo.state().records.values())
    assert repo.state().records[second.id].endswith(".yaml")


# -- failures inside a transaction --------------------------------------------


@pytest.mark.parametrize("outer", ["datastore", "registry+datastore"])
def test_failure_after_put_in_transaction(repo: Repo, outer: str) -> None:
    kept, undone = make_refs(repo.registry, 2)
    repo.datastore.put({"v": 1}, kept)
    registry_transaction = repo.registry.transaction() if "registry" in outer else nullcontext()
    with (
        pytest.raises(RuntimeError, match="later step"),
        registry_transaction,
        repo.datastore.transaction(),
    ):
        repo.datastore.put({"v": 2}, undone)
        assert len(repo.artifacts()) == 2  # the put really happened
        raise RuntimeError("a later step failed")
    assert_stored(repo, {kept: {"v": 1}})
    repo.datastore.put({"v": 3}, undone)
    assert_stored(repo, {kept: {"v": 1}, undone: {"v": 3}})


# -- a process killed between writing and recording ---------------------------

CHILD = """
import json, os, sys
import databutler.datastores.file as file_module
from databutler.datastores import FileDatastore
from databutler.registry import SqlRegistry

args = json.loads(sys.argv[1])
registry = SqlRegistry.open(args["uri"])
ref = registry.findDataset("thing", instrument="Cam", detector=args["detector"], collections="run")
if args["root"] is not None:
    root = args["root"]
else:
    import boto3
    from databutler.datastores.resources.s3 import S3Store
    from databutler.testing.s3 import CREDENTIALS
    client = boto3.client("s3", endpoint_url=args["endpoint"], **CREDENTIALS)
    root = S3Store(f"s3://{args['bucket']}/repo", client=client)
datastore = FileDatastore("files", registry.datastore_bridges, root, formatters={"thing": "json"})
file_module.crash_hook = lambda point: os._exit(9)
if args["operation"] == "put":
    datastore.put({"from": "the killed process"}, ref)
else:
    datastore.ingest([(args["source"], ref)], transfer="copy")
sys.exit(0)  # not reached: the hook kills the process
"""


@pytest.mark.parametrize("operation", ["put", "ingest"])
def test_killed_between_write_and_record(repo: Repo, operation: str, tmp_path: Path) -> None:
    (ref,) = make_refs(repo.registry, 1)
    source = tmp_path / "killed.json"
    source.write_text(json.dumps({"from": "the killed process"}))
    args = {
        "uri": f"sqlite:///{repo.db_path}",
        "detector": ref.dataId["detector"],
        "root": None if repo.root is None else str(repo.root),
        "endpoint": None if repo.s3 is None else repo.s3.meta.endpoint_url,
        "bucket": repo.bucket,
        "operation": operation,
        "source": str(source),
    }
    child = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True
    )
    assert child.returncode == 9, child.stderr
    # The child wrote its artifact and died before recording it.
    state = repo.state()
    assert (state.records, state.held, state.trashed) == ({}, set(), set())
    assert len(state.artifacts) == 1 and not state.artifacts[0].endswith(".tmp")
    # The retry replaces the leftover artifact.
    obj = {"from": "the retry"}
    store(repo, [(obj, ref)], operation, tmp_path)
    assert_stored(repo, {ref: obj})
    assert repo.artifacts() == state.artifacts  # the same path, replaced
