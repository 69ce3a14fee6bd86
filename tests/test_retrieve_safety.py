"""Copying artifacts out never writes into a datastore's root, nor makes a file point at itself."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from databutler import Butler, DatasetRef, FileDataset, UnsafePathError
from databutler.testing.butler import RepositoryFactory, file_datastore, populate

MODES = ["copy", "auto", "link", "hardlink", "symlink", "relsymlink"]


def snapshot(root: Path) -> dict[str, tuple[bool, bytes]]:
    """Every file under ``root``: whether it is a link, and its bytes (links not followed)."""
    seen: dict[str, tuple[bool, bytes]] = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            link = path.is_symlink()
            seen[str(path.relative_to(root))] = (
                link,
                os.readlink(path).encode() if link else path.read_bytes(),
            )
    return seen


@pytest.fixture(params=["sqlite-local", "sqlite-chained"])
def local(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Butler, list[DatasetRef], Path]:
    factory = RepositoryFactory(request.param, tmp_path)
    request.addfinalizer(factory.close)
    butler = factory.create(run="r1")
    populate(butler)
    refs = [butler.put({"detector": d}, "thing", instrument="HSC", detector=d) for d in range(3)]
    return butler, refs, file_datastore(butler).store.directory  # type: ignore[attr-defined]


def assert_untouched(
    butler: Butler, refs: list[DatasetRef], before: dict[str, tuple[bool, bytes]], root: Path
) -> None:
    assert snapshot(root) == before
    assert [butler.get(ref) for ref in refs] == [{"detector": d} for d in range(3)]
    assert butler.verify().ok


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("where", ["root", "inside", "run"])
def test_destination_inside_the_root_is_refused(
    local: tuple[Butler, list[DatasetRef], Path], mode: str, where: str
) -> None:
    butler, refs, root = local
    destination = {"root": root, "inside": root / "new" / "dir", "run": root / "r1"}[where]
    before = snapshot(root)
    for preserve in (True, False):
        with pytest.raises(UnsafePathError, match="inside the datastore root"):
            butler.retrieve_artifacts(
                refs, destination, transfer=mode, overwrite=True, preserve_path=preserve
            )
    assert not (root / "new").exists()
    assert_untouched(butler, refs, before, root)


@pytest.mark.parametrize("mode", ["symlink", "relsymlink", "copy"])
def test_destination_reaching_the_root_through_a_link_is_refused(
    local: tuple[Butler, list[DatasetRef], Path], tmp_path: Path, mode: str
) -> None:
    butler, refs, root = local
    before = snapshot(root)
    alias = tmp_path / "alias"
    alias.symlink_to(root, target_is_directory=True)
    with pytest.raises(UnsafePathError):
        butler.retrieve_artifacts(refs, alias, transfer=mode, overwrite=True)
    # A subdirectory of an outside destination that is a link into the root.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "r1").symlink_to(root / "r1", target_is_directory=True)
    with pytest.raises(UnsafePathError, match="would write"):
        butler.retrieve_artifacts(refs, outside, transfer=mode, overwrite=True)
    assert_untouched(butler, refs, before, root)


def test_export_into_the_root_is_refused(local: tuple[Butler, list[DatasetRef], Path]) -> None:
    butler, refs, root = local
    before = snapshot(root)
    with pytest.raises(UnsafePathError):
        butler.export(root / "export", refs=refs)
    assert_untouched(butler, refs, before, root)


def test_a_direct_artifact_is_never_replaced_by_a_link_to_itself(
    local: tuple[Butler, list[DatasetRef], Path], tmp_path: Path
) -> None:
    butler, _, _ = local
    data = tmp_path / "data"
    data.mkdir()
    # Named as the datastore's template would name it, so retrieving the artifact
    # without its directories into ``data`` targets the original file itself.
    thing = butler.registry.getDatasetType("thing")
    new = DatasetRef(thing, {"instrument": "HSC", "detector": 3}, "r1", uuid.uuid4())
    original = data / f"thing_{new.id}.json"
    original.write_text('{"detector": 3}')
    [ref] = butler.ingest(FileDataset(str(original), [new]), transfer="direct")
    for mode in ("symlink", "relsymlink", "hardlink", "link", "copy"):
        with pytest.raises(UnsafePathError, match="itself"):
            butler.retrieve_artifacts(
                [ref], data, transfer=mode, overwrite=True, preserve_path=False
            )
    assert not original.is_symlink()
    assert original.read_text() == '{"detector": 3}'
    assert butler.get(ref) == {"detector": 3}
    assert butler.verify().ok


@pytest.mark.parametrize("mode", MODES)
def test_outside_destinations_still_work(
    local: tuple[Butler, list[DatasetRef], Path], tmp_path: Path, mode: str
) -> None:
    butler, refs, root = local
    before = snapshot(root)
    out = tmp_path / "out"
    written = butler.retrieve_artifacts(refs, out, transfer=mode)
    assert len(written) == 3
    assert {p.read_bytes() for p in written} == {v for _, v in before.values()}
    # Retrieving again over the same files (hard links to the artifacts included) is fine.
    assert butler.retrieve_artifacts(refs, out, transfer=mode, overwrite=True) == written
    assert_untouched(butler, refs, before, root)


@pytest.mark.parametrize("mode", MODES)
def test_a_link_to_the_root_is_refused_in_every_mode(
    local: tuple[Butler, list[DatasetRef], Path], tmp_path: Path, mode: str
) -> None:
    butler, refs, root = local
    before = snapshot(root)
    alias = tmp_path / "alias"
    alias.symlink_to(root, target_is_directory=True)
    for destination in (alias, alias / "r1", alias / "new"):
        with pytest.raises(UnsafePathError, match="inside the datastore root"):
            butler.retrieve_artifacts(refs, destination, transfer=mode, overwrite=True)
    assert not (root / "new").exists()
    assert_untouched(butler, refs, before, root)


@pytest.mark.parametrize("destination", [None, 5, 1.5, ["out"], b"out"])
def test_a_destination_that_is_not_a_path_is_a_type_error(
    local: tuple[Butler, list[DatasetRef], Path], destination: object
) -> None:
    butler, refs, root = local
    before = snapshot(root)
    for retrieve in (butler.retrieve_artifacts, butler.datastore.retrieve_artifacts):
        with pytest.raises(TypeError, match="directory path"):
            retrieve(refs, destination)  # type: ignore[operator, arg-type]
    assert_untouched(butler, refs, before, root)


def test_the_command_line_refuses_the_root_in_one_line(
    local: tuple[Butler, list[DatasetRef], Path],
) -> None:
    from click.testing import CliRunner

    from databutler.cli import main

    butler, refs, root = local
    before = snapshot(root)
    repo = str(butler.root)
    butler.close()
    runner = CliRunner()
    for mode in ("symlink", "relsymlink", "copy"):
        result = runner.invoke(
            main,
            ["retrieve-artifacts", repo, str(root), "thing", "--transfer", mode, "--overwrite"],
        )
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert "inside the datastore root" in result.output
    assert snapshot(root) == before
    again = Butler(repo)
    assert [again.get(ref) for ref in refs] == [{"detector": d} for d in range(3)]
    assert again.verify().ok
    again.close()


def test_retrieving_from_every_configuration(
    repositories: RepositoryFactory, tmp_path: Path
) -> None:
    """Local, S3 and chained repositories copy out; S3 artifacts cannot be linked to."""
    butler = repositories.create(run="r1")
    populate(butler)
    refs = [butler.put({"detector": d}, "thing", instrument="HSC", detector=d) for d in range(3)]
    written = butler.retrieve_artifacts(refs, tmp_path / "out")
    assert sorted(json.loads(p.read_text())["detector"] for p in written) == [0, 1, 2]
    store = file_datastore(butler).store
    if repositories.kind == "postgresql-s3":
        with pytest.raises(ValueError, match="copy"):
            butler.retrieve_artifacts(refs, tmp_path / "linked", transfer="symlink")
        assert not (tmp_path / "linked").exists()
    else:
        root = store.directory  # type: ignore[attr-defined]
        with pytest.raises(UnsafePathError):
            butler.retrieve_artifacts(refs, root, transfer="symlink", overwrite=True)
    assert [butler.get(ref) for ref in refs] == [{"detector": d} for d in range(3)]
    assert butler.verify().ok


def test_a_ref_returned_by_ingest_retrieves_with_its_paths(
    local: tuple[Butler, list[DatasetRef], Path], tmp_path: Path
) -> None:
    butler, _, _ = local
    data = tmp_path / "data"
    data.mkdir()
    original = data / "x.json"
    original.write_text('{"detector": 4}')
    thing = butler.registry.getDatasetType("thing")
    given = DatasetRef(thing, {"instrument": "HSC", "detector": 4}, "r1", uuid.uuid4())
    [ref] = butler.ingest(FileDataset(str(original), [given]), transfer="direct")
    assert ref.id == given.id and ref.datasetType == thing
    [written] = butler.retrieve_artifacts([ref], tmp_path / "out", transfer="symlink")
    assert written.relative_to(tmp_path / "out").parts[0] == "r1"
    assert json.loads(written.read_text()) == {"detector": 4}
    assert not original.is_symlink() and butler.verify().ok
