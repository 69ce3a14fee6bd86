"""The bulk ``direct`` ingest (what a migration in place uses) checks and records as `_place` did.

Each directory and the datastore root are resolved once per call, and a
file is resolved on its own only when it is a symbolic link; what is
recorded is the directory-resolved path with the file's own name, a file
that really lies inside the root is refused, and a prune never deletes a
file ingested ``direct``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from databutler import Butler, FileDataset, UnresolvedRef, UnsafePathError
from databutler.testing.butler import file_datastore, populate


@pytest.fixture
def butler(tmp_path: Path) -> Butler:
    butler = Butler.create(str(tmp_path / "repo"), run="r")
    populate(butler)
    butler.registry.registerRun("r")
    return butler


def _root(butler: Butler) -> Path:
    return Path(file_datastore(butler).store.root.removeprefix("file://"))


def _datasets(paths: list[str | Path]) -> list[FileDataset]:
    return [
        FileDataset(str(p), [UnresolvedRef("thing", {"instrument": "HSC", "detector": d})])
        for d, p in enumerate(paths)
    ]


def _recorded(butler: Butler) -> dict[int, str]:
    refs = butler.query_datasets("thing", collections="r")
    records = file_datastore(butler).records
    return {
        int(ref.dataId["detector"]): next(iter(records.fetch(dataset_id=ref.id)))["path"]
        for ref in refs
    }


def test_many_files_in_many_directories_are_recorded_as_resolved(
    butler: Butler, tmp_path: Path
) -> None:
    real = tmp_path / "real"
    for sub in ("a", "b"):
        (real / sub).mkdir(parents=True)
    (tmp_path / "alias").symlink_to(real, target_is_directory=True)
    given: list[str | Path] = []
    for d in range(3):
        (real / "a" / f"{d}.json").write_text(f'{{"d": {d}}}')
        given.append(tmp_path / "alias" / "a" / f"{d}.json")  # through a link outside the root
    (real / "b" / "3.json").write_text('{"d": 3}')
    given.append(f"{tmp_path}/real/a/../b/3.json")
    (real / "b" / "target.json").write_text('{"d": 4}')
    (real / "b" / "4.json").symlink_to(real / "b" / "target.json")  # a link leading outside
    given.append(real / "b" / "4.json")
    refs = butler.ingest(*_datasets(given), transfer="direct")
    assert _recorded(butler) == {
        0: f"{real}/a/0.json",
        1: f"{real}/a/1.json",
        2: f"{real}/a/2.json",
        3: f"{real}/b/3.json",
        4: f"{real}/b/4.json",
    }
    assert [butler.get(ref) for ref in refs] == [{"d": d} for d in range(5)]
    assert butler.verify().ok
    butler.prune(refs, purge=True)
    assert sorted(p.name for p in (real / "a").iterdir()) == ["0.json", "1.json", "2.json"]
    assert sorted(p.name for p in (real / "b").iterdir()) == ["3.json", "4.json", "target.json"]
    assert butler.verify(repair=True).ok


def _refused(butler: Butler, paths: list[str | Path], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        butler.ingest(*_datasets(paths), transfer="direct")
    assert list(butler.query_datasets("thing", collections="r")) == []
    assert list(file_datastore(butler).records.fetch()) == []


def test_a_file_reached_through_a_link_into_the_root_is_refused(
    butler: Butler, tmp_path: Path
) -> None:
    (tmp_path / "fine.json").write_text("{}")
    (_root(butler) / "inside").mkdir()
    (_root(butler) / "inside" / "x.json").write_text("{}")
    (tmp_path / "door").symlink_to(_root(butler) / "inside", target_is_directory=True)
    _refused(
        butler, [tmp_path / "fine.json", tmp_path / "door" / "x.json"], UnsafePathError, "inside"
    )


def test_a_file_that_is_a_link_into_the_root_is_refused(butler: Butler, tmp_path: Path) -> None:
    (_root(butler) / "y.json").write_text("{}")
    (tmp_path / "y.json").symlink_to(_root(butler) / "y.json")
    _refused(butler, [tmp_path / "y.json"], UnsafePathError, "inside the root")


def test_missing_files_directories_and_dangling_links_are_refused(
    butler: Butler, tmp_path: Path
) -> None:
    (tmp_path / "ok.json").write_text("{}")
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "dangling.json").symlink_to(tmp_path / "nowhere.json")
    (tmp_path / "loop.json").symlink_to(tmp_path / "loop.json")
    for bad in ("gone.json", "dir.json", "dangling.json", "loop.json", "ok.json/x"):
        _refused(butler, [tmp_path / "ok.json", tmp_path / bad], FileNotFoundError, "no such file")
    assert os.path.isfile(tmp_path / "ok.json")


def test_the_bulk_records_are_the_ones_a_single_ingest_writes(
    butler: Butler, tmp_path: Path
) -> None:
    """A batch's rows (written as plain tuples) hold what `StoredFileInfo` gives one file."""
    from databutler.datastores._file_common import StoredFileInfo

    files = []
    for d in range(3):
        path = tmp_path / f"{d}.json"
        path.write_text(f'{{"d": {d}}}')
        files.append(path)
    refs = butler.ingest(*_datasets(list(files)), transfer="direct")
    records = file_datastore(butler).records
    for ref, path in zip(refs, files, strict=True):
        (row,) = records.fetch(dataset_id=ref.id)
        expected = StoredFileInfo.for_ref(
            ref, str(path), row["formatter"], path.stat().st_size
        ).to_record()
        assert row == expected
        assert row["component"] == "__NULL_STRING__" and row["checksum"] is None
        assert row["storage_class"] == ref.datasetType.storageClass
