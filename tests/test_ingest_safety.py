"""In-place ingest is resolved before it is recorded: no link, no ``..``, nothing outside the root.

A path through a symbolic link inside the root, or one that resolves
outside it, is refused (`UnsafePathError`) with nothing changed; a path with
``..`` that stays inside is recorded normalised, so that get, prune, the
trash and verify keep working. A ``direct`` ingest never deletes the user's
file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from databutler import (
    Butler,
    ConflictError,
    DatabutlerError,
    FileDataset,
    TransferModeError,
    UnresolvedRef,
    UnsafePathError,
)
from databutler.testing.butler import RepositoryFactory, S3Environment, file_datastore, populate
from databutler.testing.s3 import make_bucket


@pytest.fixture
def butler(tmp_path: Path) -> Butler:
    butler = Butler.create(str(tmp_path / "repo"), run="r")
    populate(butler)
    butler.registry.registerRun("r")
    return butler


def _root(butler: Butler) -> Path:
    store = file_datastore(butler).store
    return Path(store.root.removeprefix("file://"))


def _dataset(path: str | Path, detector: int = 0) -> FileDataset:
    return FileDataset(
        str(path), [UnresolvedRef("thing", {"instrument": "HSC", "detector": detector})]
    )


def _unchanged(butler: Butler) -> None:
    assert list(butler.query_datasets("thing", collections="r")) == []
    assert butler.verify().ok


@pytest.mark.parametrize("transfer", [None, "auto"])
def test_symlinked_directory_inside_the_root_is_refused(
    butler: Butler, tmp_path: Path, transfer: str | None
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    precious = outside / "precious.json"
    precious.write_text('{"mine": 1}')
    (_root(butler) / "shortcut").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="transfer='copy'"):
        butler.ingest(_dataset(_root(butler) / "shortcut" / "precious.json"), transfer=transfer)
    (_root(butler) / "shortcut").unlink()
    _unchanged(butler)
    assert precious.read_text() == '{"mine": 1}'


def test_symlinked_directory_staying_inside_and_linked_file_are_refused(
    butler: Butler, tmp_path: Path
) -> None:
    root = _root(butler)
    (root / "real").mkdir()
    (root / "real" / "a.json").write_text('{"a": 1}')
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    (root / "link.json").symlink_to(root / "real" / "a.json")
    for path in (root / "alias" / "a.json", root / "link.json"):
        with pytest.raises(UnsafePathError, match="symbolic link"):
            butler.ingest(_dataset(path), transfer=None)
    assert list(butler.query_datasets("thing", collections="r")) == []


def test_dot_dot_leaving_the_root_through_a_link_is_refused(butler: Butler, tmp_path: Path) -> None:
    outside = tmp_path / "far" / "deep"
    outside.mkdir(parents=True)
    (tmp_path / "far" / "f.json").write_text("{}")
    root = _root(butler)
    (root / "f.json").write_text('{"inside": true}')  # the lexical reading of the path
    (root / "hop").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="outside the datastore root"):
        butler.ingest(_dataset(f"{root}/hop/../f.json"), transfer=None)
    assert (tmp_path / "far" / "f.json").read_text() == "{}"


@pytest.mark.parametrize("transfer", [None, "auto"])
def test_dot_dot_inside_is_recorded_normalised(
    butler: Butler, tmp_path: Path, transfer: str | None
) -> None:
    root = _root(butler)
    (root / "sub" / "dir").mkdir(parents=True)
    (root / "sub" / "x.json").write_text('{"x": 1}')
    (ref,) = butler.ingest(_dataset(f"{root}/sub/dir/../x.json"), transfer=transfer)
    assert butler.get(ref) == {"x": 1}
    datastore = file_datastore(butler)
    (record,) = datastore.records.fetch(dataset_id=ref.id)
    assert record["path"] == "sub/x.json"
    assert butler.verify().ok
    butler.prune([ref], purge=True)
    assert not (root / "sub" / "x.json").exists()
    assert butler.empty_trash() == 0
    assert butler.verify(repair=True).ok


def test_relative_path_with_dot_dot_from_another_directory(
    butler: Butler, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _root(butler)
    (root / "a.json").write_text('{"a": 2}')
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (ref,) = butler.ingest(_dataset(os.path.relpath(root / "a.json")), transfer=None)
    (record,) = file_datastore(butler).records.fetch(dataset_id=ref.id)
    assert record["path"] == "a.json"
    assert butler.get(ref) == {"a": 2}


def test_outside_the_root_in_place_is_refused(butler: Butler, tmp_path: Path) -> None:
    outside = tmp_path / "o.json"
    outside.write_text("{}")
    with pytest.raises(UnsafePathError, match="outside the datastore root"):
        butler.ingest(_dataset(outside), transfer=None)
    root = _root(butler)
    with pytest.raises(UnsafePathError, match="outside the datastore root"):
        butler.ingest(_dataset(f"{root}/../../o.json"), transfer=None)
    _unchanged(butler)
    assert outside.exists()


def test_journal_and_temporaries_are_not_datasets(butler: Butler) -> None:
    root = _root(butler)
    (root / ".databutler").mkdir()
    (root / ".databutler" / "j.json").write_text("{}")
    (root / ".half.json.1-2.tmp").write_text("{}")
    for name in (".databutler/j.json", ".half.json.1-2.tmp"):
        with pytest.raises(UnsafePathError, match="databutler's own"):
            butler.ingest(_dataset(root / name), transfer=None)


def test_link_modes_from_inside_the_root_are_refused(butler: Butler) -> None:
    root = _root(butler)
    (root / "in.json").write_text("{}")
    for transfer in ("symlink", "relsymlink", "direct"):
        with pytest.raises(UnsafePathError, match="inside the root"):
            butler.ingest(_dataset(root / "in.json"), transfer=transfer)
    assert list(butler.query_datasets("thing", collections="r")) == []


def test_direct_ingest_never_deletes_the_users_file(butler: Butler, tmp_path: Path) -> None:
    (tmp_path / "my data").mkdir()
    mine = tmp_path / "my data" / "keep me.json"
    mine.write_text('{"keep": true}')
    (ref,) = butler.ingest(
        _dataset(f"{tmp_path}/my data/../my data/keep me.json"), transfer="direct"
    )
    assert butler.get(ref) == {"keep": True}
    assert butler.verify().ok
    butler.prune([ref], purge=True)
    assert mine.read_text() == '{"keep": true}'
    assert butler.verify(repair=True).ok


def test_move_of_a_recorded_artifact_is_refused(butler: Butler) -> None:
    ref = butler.put({"a": 1}, "thing", instrument="HSC", detector=1)
    uri = butler.get_uris([ref])[ref.id]
    artifact = Path(uri.removeprefix("file://"))
    with pytest.raises(ConflictError, match="take it away"):
        butler.ingest(_dataset(artifact, detector=2), transfer="move")
    assert butler.get(ref) == {"a": 1}
    assert json.loads(artifact.read_text()) == {"a": 1}


# -- URIs as sources -------------------------------------------------------------


def test_file_uris_are_paths(butler: Butler, tmp_path: Path) -> None:
    (tmp_path / "with space").mkdir()
    outside = tmp_path / "with space" / "u.json"
    outside.write_text('{"u": 1}')
    (copied,) = butler.ingest(_dataset(outside.as_uri(), detector=0), transfer="copy")
    assert butler.get(copied) == {"u": 1}
    root = _root(butler)
    (root / "in place.json").write_text('{"p": 2}')
    (inside,) = butler.ingest(
        _dataset((root / "in place.json").as_uri(), detector=1), transfer=None
    )
    (record,) = file_datastore(butler).records.fetch(dataset_id=inside.id)
    assert record["path"] == "in place.json" and butler.get(inside) == {"p": 2}
    with pytest.raises(DatabutlerError, match="host 'elsewhere'"):
        butler.ingest(_dataset("file://elsewhere/u.json", detector=2), transfer="copy")
    with pytest.raises(DatabutlerError, match="scheme 'http'"):
        butler.ingest(_dataset("http://127.0.0.1:9/u.json", detector=2), transfer="copy")
    assert butler.verify().ok


def test_s3_uris_are_copied_in(butler: Butler, s3_env: S3Environment) -> None:
    bucket = make_bucket(s3_env.client)
    s3_env.client.put_object(Bucket=bucket, Key="incoming/s.json", Body=b'{"s": 3}')
    with s3_env.active():
        (ref,) = butler.ingest(_dataset(f"s3://{bucket}/incoming/s.json"), transfer="auto")
        assert butler.get(ref) == {"s": 3}
        with pytest.raises(DatabutlerError, match="use transfer='copy'"):
            butler.ingest(_dataset(f"s3://{bucket}/incoming/s.json", detector=1), transfer="move")
        with pytest.raises(FileNotFoundError):
            butler.ingest(_dataset(f"s3://{bucket}/incoming/none.json", detector=1))
    # The object stays where it was; the repository has its own copy.
    assert s3_env.client.get_object(Bucket=bucket, Key="incoming/s.json")["Body"].read() == (
        b'{"s": 3}'
    )
    assert butler.verify().ok


def test_ingest_files_command_takes_uris(butler: Butler, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from databutler.cli import main

    data = tmp_path / "d.json"
    data.write_text('{"cli": 1}')
    table = tmp_path / "files.csv"
    table.write_text(f"file,detector\n{data.as_uri()},4\n")
    repo = str(_root(butler).parent)
    butler.close()
    result = CliRunner().invoke(
        main, ["ingest-files", repo, "thing", "r", str(table), "--data-id", "instrument=HSC"]
    )
    assert result.exit_code == 0, result.output
    with Butler(repo) as reopened:
        (ref,) = reopened.query_datasets("thing", collections="r")
        assert reopened.get(ref) == {"cli": 1}


@pytest.mark.parametrize("bad", ["", "a\x00b.json", "bad\udcff\ud800.json"])
def test_unusable_names_are_databutler_errors(butler: Butler, bad: str) -> None:
    datastore = file_datastore(butler)
    (ref,) = butler.registry.insertDatasets("thing", [{"instrument": "HSC", "detector": 0}], "r")
    with pytest.raises(DatabutlerError):
        datastore.ingest([(bad, ref)], transfer="copy")
    with pytest.raises(TypeError, match="path or a URI"):
        datastore.ingest([(5, ref)], transfer="copy")  # type: ignore[list-item]
    assert not datastore.knows(ref)


def test_s3_root_never_ingests_in_place(tmp_path: Path, s3_env: S3Environment) -> None:
    factory = RepositoryFactory("postgresql-s3", tmp_path, s3_env)
    try:
        butler = factory.create("s3repo", run="r")
        populate(butler)
        butler.registry.registerRun("r")
        (tmp_path / "d").mkdir()
        source = tmp_path / "f.json"
        source.write_text('{"f": 1}')
        with pytest.raises(UnsafePathError, match="not on local disk"):
            butler.ingest(_dataset(source), transfer=None)
        for transfer in ("move", "symlink"):
            with pytest.raises(TransferModeError, match="needs a local root"):
                butler.ingest(_dataset(source), transfer=transfer)
        # ".." in a local source is resolved before the copy.
        (ref,) = butler.ingest(_dataset(f"{tmp_path}/d/../f.json"), transfer="auto")
        assert butler.get(ref) == {"f": 1}
        assert source.exists() and butler.verify().ok
    finally:
        factory.close()


def test_only_downloads_make_a_scratch_directory(
    butler: Butler, tmp_path: Path, s3_env: S3Environment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local ingest makes no temporary directory: a process killed midway leaves none."""
    import tempfile

    from databutler.datastores import file as file_module

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    seen: list[list[str]] = []
    monkeypatch.setattr(
        file_module,
        "crash_hook",
        lambda point: seen.append(sorted(os.listdir(scratch))) if point == "after_write" else None,
    )
    for detector, transfer in enumerate(("copy", "move", "hardlink", "auto")):
        source = tmp_path / f"{transfer}.json"
        source.write_text(f'{{"n": {detector}}}')
        (ref,) = butler.ingest(_dataset(source, detector), transfer=transfer)
        assert butler.get(ref) == {"n": detector}
    assert seen == [[]] * 4  # nothing in the temporary folder, even midway
    bucket = make_bucket(s3_env.client)
    s3_env.client.put_object(Bucket=bucket, Key="s.json", Body=b'{"s": 3}')
    with s3_env.active():
        (ref,) = butler.ingest(_dataset(f"s3://{bucket}/s.json", 9), transfer="copy")
    assert len(seen) == 5 and len(seen[-1]) == 1  # the download's directory, while it is in use
    assert os.listdir(scratch) == [] and butler.get(ref) == {"s": 3}
    assert butler.verify().ok
