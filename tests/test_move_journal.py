"""``ingest(transfer="move")`` killed at every point: the user's files are never lost or stranded.

A real child process ingests files by moving them and kills itself
(SIGKILL) at one point of the call: after writing the journal, after the
k-th move, after recording, after the commit. The parent then reopens the
repository and runs ``verify(repair=True)``: every file is either back at
its source (not ingested) or ingested and readable (gone from its source),
no journal and no unknown artifact is left, and the repository is ok.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from databutler import Butler, ConflictError, FileDataset, UnresolvedRef
from databutler.datastores.resources import LocalStore
from databutler.testing.butler import file_datastore, populate

FILES = 3

CHILD = """
import json, os, signal, sys
import databutler.datastores.file as file_module
from databutler import Butler, FileDataset, UnresolvedRef

args = json.loads(sys.argv[1])
seen = {}

def hook(point):
    seen[point] = seen.get(point, 0) + 1
    if [point, seen[point]] == args["kill"]:
        os.kill(os.getpid(), signal.SIGKILL)

file_module.crash_hook = hook
butler = Butler(args["repo"], writeable=True)
datasets = [
    FileDataset(path, [UnresolvedRef("thing", {"instrument": "HSC", "detector": d})])
    for d, path in enumerate(args["files"])
]
refs = butler.ingest(*datasets, transfer="move", run="r")
print(json.dumps([str(r.id) for r in refs]), flush=True)
"""

#: (point, occurrence) at which the child kills itself; None runs to the end.
POINTS = [
    ("journal_written", 1),
    *(("moved", k) for k in range(1, FILES + 1)),
    ("after_write", 1),
    ("recorded", 1),
    ("committed", 1),
    None,
]


def _setup(tmp_path: Path) -> tuple[Butler, list[Path]]:
    butler = Butler.create(str(tmp_path / "repo"), run="r")
    populate(butler)
    butler.registry.registerRun("r")
    user = tmp_path / "user"
    user.mkdir()
    files = []
    for d in range(FILES):
        path = user / f"file{d}.json"
        path.write_text(json.dumps({"detector": d}))
        files.append(path)
    butler.close()
    return butler, files


def _run_child(repo: Path, files: list[Path], kill: tuple[str, int] | None) -> list[str] | None:
    args = {"repo": str(repo), "files": [str(f) for f in files], "kill": kill}
    child = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True
    )
    if kill is None:
        assert child.returncode == 0, child.stderr
        return list(json.loads(child.stdout))
    assert child.returncode == -signal.SIGKILL, child.stderr
    return None


def _journals(butler: Butler) -> list[Path]:
    root = Path(file_datastore(butler).store.root.removeprefix("file://"))
    return sorted((root / ".databutler").rglob("*.json"))


def _assert_nothing_lost(butler: Butler, files: list[Path]) -> None:
    ingested = {
        ref.dataId["detector"]: ref for ref in butler.query_datasets("thing", collections="r")
    }
    for d, path in enumerate(files):
        if d in ingested:
            assert butler.get(ingested[d]) == {"detector": d}
            assert not path.exists()
        else:
            assert json.loads(path.read_text()) == {"detector": d}
    assert _journals(butler) == []
    report = butler.verify()
    assert report.ok, report.problems


@pytest.mark.parametrize("kill", POINTS, ids=lambda p: "none" if p is None else f"{p[0]}-{p[1]}")
def test_killed_move_ingest_is_rolled_back_or_kept(
    tmp_path: Path, kill: tuple[str, int] | None
) -> None:
    _, files = _setup(tmp_path)
    acknowledged = _run_child(tmp_path / "repo", files, kill)
    with Butler(str(tmp_path / "repo"), writeable=True) as butler:
        butler.verify(repair=True, delete_unknown=True)
        _assert_nothing_lost(butler, files)
        ingested = list(butler.query_datasets("thing", collections="r"))
        if acknowledged is not None:
            assert sorted(str(r.id) for r in ingested) == sorted(acknowledged)
        if kill is not None and kill[0] in ("journal_written", "moved", "after_write", "recorded"):
            assert ingested == []  # killed before the commit: every file went back
        # The files can be ingested again, and the journal lets nothing strand.
        if not ingested:
            refs = butler.ingest(
                *(_dataset(p, d) for d, p in enumerate(files)), transfer="move", run="r"
            )
            assert [butler.get(r) for r in refs] == [{"detector": d} for d in range(FILES)]
            assert _journals(butler) == [] and butler.verify().ok


def _dataset(path: Path, detector: int) -> FileDataset:
    return FileDataset(
        str(path), [UnresolvedRef("thing", {"instrument": "HSC", "detector": detector})]
    )


def test_a_taken_source_is_reported_and_the_file_never_deleted(tmp_path: Path) -> None:
    _, files = _setup(tmp_path)
    _run_child(tmp_path / "repo", files, ("moved", 2))
    files[0].write_text("someone else's file")  # the source path is taken again
    with Butler(str(tmp_path / "repo")) as reader:  # read-only: moves nothing
        assert reader.verify().counts() == {"unfinished_move": 2}  # not "unknown_artifact"
    assert not files[1].exists()
    with Butler(str(tmp_path / "repo"), writeable=True) as butler:  # moves back what it can
        assert json.loads(files[1].read_text()) == {"detector": 1}
        assert butler.verify().counts() == {"unfinished_move": 1}
        report = butler.verify(repair=True, delete_unknown=True)
        left = [p for p in report.unrepaired if p.kind == "unfinished_move"]
        assert len(left) == 1 and "exists again" in left[0].detail
        store = file_datastore(butler).store
        assert isinstance(store, LocalStore)
        stranded = store.local_path(left[0].path or "")
        assert json.loads(stranded.read_text()) == {"detector": 0}  # kept, not deleted
        assert json.loads(files[1].read_text()) == {"detector": 1}  # this one went back
        assert len(_journals(butler)) == 1
        # Once the way is clear, the next repair finishes the job.
        files[0].rename(tmp_path / "elsewhere.txt")
        butler.verify(repair=True)
        _assert_nothing_lost(butler, files)


def test_the_next_ingest_rolls_back_first(tmp_path: Path) -> None:
    _, files = _setup(tmp_path)
    _run_child(tmp_path / "repo", files, ("moved", FILES))
    assert not any(f.exists() for f in files)
    with Butler(str(tmp_path / "repo"), writeable=True) as butler:
        refs = butler.ingest(
            *(_dataset(p, d) for d, p in enumerate(files)), transfer="move", run="r"
        )
        assert [butler.get(r) for r in refs] == [{"detector": d} for d in range(FILES)]
        _assert_nothing_lost(butler, files)


def test_a_put_never_replaces_a_stranded_file(tmp_path: Path) -> None:
    _, files = _setup(tmp_path)
    _run_child(tmp_path / "repo", files[:1], ("moved", 1))
    files[0].write_text("taken")  # the file cannot go back
    with Butler(str(tmp_path / "repo"), writeable=True, run="r") as butler:
        (problem,) = butler.verify().problems
        store = file_datastore(butler).store
        assert isinstance(store, LocalStore)
        stranded = store.local_path(problem.path or "")
        # A put that finds a file at its path replaces it only if no record and no
        # journal names it (the default template has the dataset id: forced here).
        with pytest.raises(ConflictError, match="interrupted"):
            file_datastore(butler)._write_new(problem.path or "", b'{"detector": "put"}')
        assert json.loads(stranded.read_text()) == {"detector": 0}
