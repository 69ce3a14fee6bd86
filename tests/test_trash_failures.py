"""One artifact that cannot be deleted never wedges the trash, prune or repair.

A directory in an artifact's place, or a recorded path that is not valid,
is reported (`Butler.empty_trash` ``failures``, ``verify`` problems), keeps
its trash row, and everything else is emptied.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import databutler.datastores._file_trash as trash_module
from databutler import Butler, DatasetRef
from databutler.testing.butler import artifact_of, file_datastore, populate


@pytest.fixture
def butler(tmp_path: Path) -> Butler:
    butler = Butler.create(str(tmp_path / "repo"), run="r")
    populate(butler)
    return butler


def _put(butler: Butler, n: int) -> list[DatasetRef]:
    return [butler.put({"d": d}, "thing", instrument="HSC", detector=d) for d in range(n)]


def _root(butler: Butler) -> Path:
    return Path(file_datastore(butler).store.root.removeprefix("file://"))


def _block(butler: Butler, ref: DatasetRef) -> str:
    """Put a directory in the place of ``ref``'s artifact; its path."""
    _, path = artifact_of(butler, ref)
    target = _root(butler) / path
    target.unlink()
    target.mkdir()
    (target / "inner").write_text("x")
    return path


def _remaining(butler: Butler) -> list[str]:
    root = _root(butler)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("chunk", [2, 10_000])
def test_a_directory_in_place_of_an_artifact(
    butler: Butler, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trash_module, "CHUNK", chunk)
    refs = _put(butler, 5)
    path = _block(butler, refs[2])
    target = _root(butler) / path
    result = butler.prune(refs, purge=True)  # does not raise
    assert result.purged == 5 and result.unstored == 4
    assert _remaining(butler) == [f"{path}/inner"]
    again = butler.empty_trash()
    assert again == 0 and not again.ok
    (failure,) = again.failures
    assert failure.path == path and failure.dataset_ids == (refs[2].id,)
    assert "directory" in str(failure) and "empty the trash again" in str(failure)
    report = butler.verify(repair=True)  # does not raise either
    assert report.counts()["stale_trash"] == 1
    kinds = sorted(p.kind for p in report.unrepaired)
    assert kinds == ["stale_trash", "undeletable_artifact", "unknown_artifact"]  # + inner
    shutil.rmtree(target)
    fixed = butler.empty_trash()
    assert fixed == 1 and fixed.ok
    assert butler.verify().ok and _remaining(butler) == []


def test_an_invalid_recorded_path(butler: Butler) -> None:
    refs = _put(butler, 3)
    datastore = file_datastore(butler)
    table = datastore.records.table  # type: ignore[attr-defined]
    _, good_path = artifact_of(butler, refs[0])
    db = butler.registry.db
    with db.transaction():
        db.execute_raw(
            f"UPDATE {db.quoted(table)} SET path = {db.PLACEHOLDER} "
            f"WHERE dataset_id = {db.PLACEHOLDER}",
            ["a/../b.json", *db.encode_ids([r.id for r in refs[:1]])],
            what="damage a record",
        )
    butler.prune(refs, purge=True)
    result = butler.empty_trash()
    assert result == 0
    (failure,) = result.failures
    assert failure.path == "a/../b.json" and "not valid" in failure.reason
    assert _remaining(butler) == [good_path]  # the others went; this file is unknown now
    report = butler.verify()
    assert report.counts() == {"stale_trash": 1, "unknown_artifact": 1}


def test_the_command_line_reports_what_it_could_not_delete(butler: Butler) -> None:
    from click.testing import CliRunner

    from databutler.cli import main

    refs = _put(butler, 2)
    _, path = artifact_of(butler, refs[0])
    target = _root(butler) / path
    target.unlink()
    target.mkdir()
    with butler.transaction():  # phase one only: both datasets wait in the trash
        butler.datastore.trash(refs)
        butler.registry.removeDatasets(refs)
    butler.close()
    result = CliRunner().invoke(main, ["empty-trash", str(_root(butler).parent), "--yes"])
    assert result.exit_code == 1, result.output
    assert "Emptied 1 dataset(s)" in result.stdout
    assert f"Could not delete artifact {path!r}" in result.stderr
    assert "a directory is in its place" in result.stderr


def test_repair_names_exactly_the_trash_it_could_not_empty(butler: Butler) -> None:
    refs = _put(butler, 4)
    _, path = artifact_of(butler, refs[1])
    (_root(butler) / path).unlink()
    (_root(butler) / path).mkdir()
    with butler.transaction():  # phase one only: all four wait in the trash
        butler.datastore.trash(refs)
        butler.registry.removeDatasets(refs)
    report = butler.verify(repair=True)
    assert report.counts()["stale_trash"] == 4 and report.repaired["stale_trash"] == 3
    (left, undeletable) = report.unrepaired
    assert (left.kind, left.dataset_id) == ("stale_trash", refs[1].id)
    assert (undeletable.kind, undeletable.path) == ("undeletable_artifact", path)
    assert _remaining(butler) == []


@pytest.mark.parametrize("chunk", [1, 5_000])
def test_prune_and_remove_runs_report_what_they_could_not_delete(
    butler: Butler, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The result carries the failures of every chunk (`ok` is false); the rest went."""
    import databutler.butler._delete as delete_module

    monkeypatch.setattr(delete_module, "PRUNE_CHUNK", chunk)
    refs = _put(butler, 4)
    blocked = _block(butler, refs[1])
    result = butler.prune(refs[:3], purge=True)
    assert not result.ok and result.purged == 3 and result.unstored == 2
    (failure,) = result.failures
    assert failure.path == blocked and failure.dataset_ids == (refs[1].id,)
    butler.registry.registerRun("other")
    kept = butler.put({"d": 9}, "thing", instrument="HSC", detector=9, run="other")
    second = _block(butler, kept)
    removed = butler.remove_runs(["other"])
    assert removed == 1 and not removed.ok
    assert [f.path for f in removed.failures] == [second]
    assert butler.prune(refs[3:], purge=True).ok  # nothing stale from before is reported
    assert butler.remove_runs(["r"]).ok


@pytest.mark.parametrize("command", ["prune-datasets", "remove-runs"])
def test_the_command_line_fails_a_prune_that_could_not_delete(butler: Butler, command: str) -> None:
    from click.testing import CliRunner

    from databutler.cli import main

    refs = _put(butler, 2)
    path = _block(butler, refs[0])
    butler.close()
    repo = str(_root(butler).parent)
    args = ["thing", "--collections", "r", "--purge"] if command == "prune-datasets" else ["r"]
    result = CliRunner().invoke(main, [command, repo, *args, "--yes"])
    assert result.exit_code == 1, result.output
    done = "unstored 1, purged 2" if command == "prune-datasets" else "1 run(s) and 2 dataset"
    assert done in result.stdout
    assert f"Could not delete artifact {path!r}" in result.stderr
    assert "verify(repair=True)" not in result.stderr  # the command-line fix, not the Python one
    assert "Traceback" not in result.output


def test_the_command_line_shows_library_warnings_in_its_own_words(butler: Butler) -> None:
    """A warning the library logs reaches stderr once, as ``Warning:``, with the command
    line's option names; the artifacts a command reports as errors are not repeated."""
    import logging

    from click.testing import CliRunner

    from databutler.cli import main

    refs = _put(butler, 1)
    path = _block(butler, refs[0])
    butler.close()
    repo = str(_root(butler).parent)
    runner = CliRunner()
    result = runner.invoke(main, ["prune-datasets", repo, "thing", "--purge", "--yes"])
    assert result.exit_code == 1
    assert result.stderr.count(path) == 1 and "Warning:" not in result.stderr
    result = runner.invoke(main, ["query-collections", repo])
    assert result.exit_code == 0
    with runner.isolation() as streams:  # (stdout, stderr, ...): stderr is the second
        logging.getLogger("databutler.butler").warning("pass overwrite=True to replace it")
        shown = streams[1].getvalue().decode()
    assert shown == "Warning: pass --overwrite to replace it\n"
