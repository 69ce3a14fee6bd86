"""A real child process killed (SIGKILL) at many points: nothing acknowledged is lost.

The child (forked, one per kill point, by a process that imported databutler
once) runs ``put_many``, ``ingest`` (copy, then move), ``prune(purge=True)``,
``remove_runs``, and a trash emptied by ``empty_trash``, writing each
operation's result once it returns (acknowledged). It counts events — every
SQL statement, every artifact write, delete and ingest, every crash point of
the file datastore — and kills itself at the k-th. The parent then reopens
the repository, runs ``verify(repair=True, delete_unknown=True)`` (the
documented clean-up) and checks: every acknowledged dataset is there and
readable, every acknowledged removal holds, no user file is lost or left in
the repository, no move journal is left, and ``verify()`` is ok. On SQLite
and on PostgreSQL, with artifacts on local disk (moves need one).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from databutler import Butler
from databutler.testing.butler import file_datastore, populate
from databutler.testing.database import postgresql_uri

#: Kill points per configuration, spread evenly over all the child's events.
POINTS = 16

# Imports databutler once, then forks one child per request (a line of JSON on
# stdin): each child is a real process, killed for real, without paying for
# the imports again. The zygote answers with the child's fate.
ZYGOTE = r"""
import json, os, signal, sys, traceback
from sqlalchemy import event
from sqlalchemy.engine import Engine

import databutler.datastores.file as file_module
from databutler import Butler, FileDataset, UnresolvedRef
from databutler.datastores.resources import LocalStore

args = {}
count = 0
armed = False
acks = None


def tick(*_):
    global count
    if armed:
        count += 1
        if count == args["kill"]:
            os.kill(os.getpid(), signal.SIGKILL)


event.listen(Engine, "before_cursor_execute", tick)
file_module.crash_hook = tick
for name in ("write", "delete", "ingest"):
    original = getattr(LocalStore, name)

    def wrapper(self, *a, _original=original, **k):
        tick()
        result = _original(self, *a, **k)
        tick()
        return result

    setattr(LocalStore, name, wrapper)


def ack(step, **values):
    acks.write(json.dumps({"step": step, **values}) + "\n")
    acks.flush()  # in the kernel's hands: a SIGKILL cannot lose it


def thing(d):
    return UnresolvedRef("thing", {"instrument": "HSC", "detector": d})


def scenario():
    global armed
    butler = Butler(args["repo"], writeable=True, run="main")
    armed = True
    refs = butler.put_many(
        [({"d": d}, "thing", {"instrument": "HSC", "detector": d}) for d in (0, 1, 2)]
    )
    ack("put", ids={str(r.id): {"d": d} for d, r in zip((0, 1, 2), refs)})
    copied = butler.ingest(
        *(FileDataset(args["copy"][i], [thing(3 + i)]) for i in range(2)), transfer="copy"
    )
    ack("ingest", ids={str(r.id): {"copied": i} for i, r in enumerate(copied)})
    moved = butler.ingest(
        *(FileDataset(args["move"][i], [thing(5 + i)]) for i in range(2)), transfer="move"
    )
    ack("ingest", ids={str(r.id): {"moved": i} for i, r in enumerate(moved)})
    ack("removing", ids=[str(refs[0].id)])
    butler.prune([refs[0]], purge=True)
    ack("removed", ids=[str(refs[0].id)])
    ack("removing", ids=args["scratch"])
    butler.remove_runs(["scratch"])
    ack("removed", ids=args["scratch"])
    ack("removing", ids=[str(refs[1].id)])
    with butler.transaction():  # phase one only: the next call empties the trash
        butler.datastore.trash([refs[1]])
        butler.registry.removeDatasets([refs[1]])
    ack("removed", ids=[str(refs[1].id)])
    butler.empty_trash()
    ack("emptied")
    armed = False
    ack("events", count=count)


for line in sys.stdin:
    args = json.loads(line)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            with open(args["acks"], "w") as acks:
                scenario()
        except BaseException:
            traceback.print_exc()
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    killed = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    print(json.dumps({"signal": killed, "code": code}), flush=True)
"""


@pytest.fixture(scope="module")
def zygote() -> Iterator[subprocess.Popen[str]]:
    # Its stderr is the test's (captured): a failing child's traceback shows there.
    process = subprocess.Popen(
        [sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        yield process
    finally:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()
        process.wait(timeout=60)
        process.stdout.close()


def _configurations() -> Iterator[str]:
    yield "sqlite"
    yield "postgresql"


@pytest.fixture(params=list(_configurations()))
def kind(request: pytest.FixtureRequest) -> Iterator[str]:
    schemas: list[str] = []
    request.node.schemas = schemas
    yield request.param
    if schemas:
        engine = sqlalchemy.create_engine(postgresql_uri())
        with engine.begin() as connection:
            for schema in schemas:
                connection.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


def _setup(kind: str, directory: Path, schemas: list[str]) -> dict[str, Any]:
    """A repository with a baseline, user files to ingest; the child's arguments."""
    arguments: dict[str, Any] = {}
    if kind == "postgresql":
        schema = f"crash_{uuid.uuid4().hex[:16]}"
        schemas.append(schema)
        arguments = {"db": postgresql_uri(), "namespace": schema}
    repo = directory / "repo"
    with Butler.create(str(repo), run="main", **arguments) as butler:
        populate(butler)
        butler.registry.registerRun("main")
        base = butler.put({"base": 9}, "thing", instrument="HSC", detector=9)
        scratch = butler.put({"scratch": 8}, "thing", instrument="HSC", detector=8, run="scratch")
    user = directory / "user"
    user.mkdir()
    copies, moves = [], []
    for i in range(2):
        copies.append(user / f"copy{i}.json")
        copies[-1].write_text(json.dumps({"copied": i}))
        moves.append(user / f"move{i}.json")
        moves[-1].write_text(json.dumps({"moved": i}))
    return {
        "repo": str(repo),
        "copy": [str(p) for p in copies],
        "move": [str(p) for p in moves],
        "scratch": [str(scratch.id)],
        "base": {str(base.id): {"base": 9}},
    }


def _run(
    zygote: subprocess.Popen[str], arguments: dict[str, Any], kill: int
) -> tuple[int | None, list[dict[str, Any]]]:
    """Run the scenario in a new child killed at event ``kill``: its signal, its acks."""
    acks = Path(arguments["repo"]).parent / f"acks-{kill}.jsonl"
    assert zygote.stdin is not None and zygote.stdout is not None
    zygote.stdin.write(json.dumps({**arguments, "kill": kill, "acks": str(acks)}) + "\n")
    zygote.stdin.flush()
    fate = json.loads(zygote.stdout.readline())
    assert fate["code"] in (None, 0), (
        f"the child failed (its traceback is in the captured stderr): {fate}"
    )
    lines = acks.read_text().splitlines() if acks.exists() else []
    return fate["signal"], [json.loads(line) for line in lines]


def _check(arguments: dict[str, Any], acks: list[dict[str, Any]]) -> None:
    stored: dict[str, Any] = dict(arguments["base"])
    removed: set[str] = set()
    removing: set[str] = set()  # removals under way when the child died: either outcome
    for ack in acks:
        if ack["step"] in ("put", "ingest"):
            stored.update(ack["ids"])
        elif ack["step"] == "removed":
            removed.update(ack["ids"])
        elif ack["step"] == "removing":
            removing.update(ack["ids"])
    with Butler(arguments["repo"], writeable=True) as butler:
        butler.verify(repair=True, delete_unknown=True)
        refs = {str(r.id): r for r in butler.query_datasets("thing", collections=["main", "*"])}
        for dataset_id, content in stored.items():
            if dataset_id not in removing:
                assert dataset_id in refs, f"acknowledged dataset {dataset_id} lost"
                assert butler.get(refs[dataset_id]) == content
        assert not removed & set(refs), "an acknowledged removal came back"
        for ref in refs.values():  # whatever is there can be read
            butler.get(ref)
        # User files: copies untouched; each moved file at its source or ingested.
        for i, path in enumerate(arguments["copy"]):
            assert json.loads(Path(path).read_text()) == {"copied": i}
        contents = [butler.get(r) for r in refs.values()]
        for i, path in enumerate(arguments["move"]):
            if Path(path).exists():
                assert json.loads(Path(path).read_text()) == {"moved": i}
                assert {"moved": i} not in contents
            else:
                assert contents.count({"moved": i}) == 1, f"user file {path} lost"
        root = Path(file_datastore(butler).store.root.removeprefix("file://"))
        assert not list((root / ".databutler").rglob("*.json")), "a move journal was left"
        report = butler.verify()
        assert report.ok, report.problems


def test_killed_anywhere(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest, zygote: subprocess.Popen[str]
) -> None:
    schemas: list[str] = request.node.schemas
    # A run to the end counts the events (and checks the happy path).
    arguments = _setup(kind, tmp_path / "full", schemas)
    killed, acks = _run(zygote, arguments, kill=0)
    assert killed is None and acks[-1]["step"] == "events", acks
    _check(arguments, acks)
    events = acks[-1]["count"]
    points = sorted({1 + (events - 1) * n // (POINTS - 1) for n in range(POINTS)})
    for kill in points:
        arguments = _setup(kind, tmp_path / f"kill{kill}", schemas)
        killed, acks = _run(zygote, arguments, kill)
        assert killed == signal.SIGKILL, (kill, acks)
        _check(arguments, acks)
