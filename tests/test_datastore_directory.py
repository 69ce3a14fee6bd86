"""A new repository's datastore directory holds nothing of the user's, and never the
repository itself: `verify` could otherwise report the user's files (or the registry) as
unknown artifacts, and ``delete_unknown`` delete them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from databutler import (
    AlreadyExistsError,
    Butler,
    ConfigurationError,
    DatabutlerError,
    RepositoryError,
)
from databutler.cli import main
from databutler.testing.butler import populate


def _tree(path: Path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))


def test_a_non_empty_datastore_directory_is_refused(tmp_path: Path) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "precious.txt").write_text("precious")
    with pytest.raises(AlreadyExistsError, match=r"mine is not empty \(it holds 'precious.txt'\)"):
        Butler.create(tmp_path / "repo", datastore=str(mine))
    assert not (tmp_path / "repo").exists()
    assert _tree(mine) == ["precious.txt"]
    result = CliRunner().invoke(main, ["create", str(tmp_path / "repo2"), "--datastore", str(mine)])
    assert result.exit_code != 0 and "is not empty" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "repo2").exists() and _tree(mine) == ["precious.txt"]


def test_an_empty_or_new_datastore_directory_is_taken(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for name in ("empty", "new"):
        with Butler.create(tmp_path / f"repo-{name}", datastore=str(tmp_path / name), run="r") as b:
            populate(b)
            b.put({"a": 1}, "thing", instrument="HSC", detector=1)
            assert b.verify().ok


def test_the_replaced_repository_keeps_its_datastore_directory(tmp_path: Path) -> None:
    """With overwrite, the old repository's own (explicit) datastore directory is not the
    user's: creating again over it is allowed."""
    store = str(tmp_path / "store")
    with Butler.create(tmp_path / "repo", datastore=store, run="r") as b:
        populate(b)
        b.put({"a": 1}, "thing", instrument="HSC", detector=1)
    Butler.create(tmp_path / "repo", datastore=store, overwrite=True).close()


@pytest.mark.parametrize("inside", ["", "sub"], ids=["same", "above"])
def test_a_datastore_directory_holding_the_repository_is_refused(
    tmp_path: Path, inside: str
) -> None:
    root = tmp_path / "repo" / inside if inside else tmp_path / "repo"
    with pytest.raises(ConfigurationError, match="holds the repository"):
        Butler.create(root, datastore=str(tmp_path / "repo"))
    assert not (tmp_path / "repo").exists()


def test_verify_never_takes_the_repository_files_for_artifacts(tmp_path: Path) -> None:
    """A repository made before the refusal, whose datastore shares its root: its
    butler.yaml and registry are neither unknown nor deleted."""
    root = tmp_path / "repo"
    with Butler.create(root, run="r") as made:
        populate(made)
        made.put({"a": 1}, "thing", instrument="HSC", detector=1)
    config = yaml.safe_load((root / "butler.yaml").read_text())
    # Move the one artifact to where a datastore rooted at the repository finds it.
    old = root / "files"
    for path in [p for p in old.rglob("*") if p.is_file()]:
        target = root / path.relative_to(old)
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target)
    config["datastore"]["root"] = str(root)
    (root / "butler.yaml").write_text(yaml.safe_dump(config))
    with Butler(root, writeable=True) as butler:
        assert butler.get("thing", instrument="HSC", detector=1, collections="r") == {"a": 1}
        report = butler.verify(delete_unknown=True)
        assert not [p for p in report.problems if p.kind == "unknown_artifact"]
    assert (root / "butler.yaml").exists() and (root / "registry.sqlite3").exists()


def _stored(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    with Butler.create(root, run="r") as made:
        populate(made)
        made.put({"a": 1}, "thing", instrument="HSC", detector=1)
    return root


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("writeable", [False, True])
def test_a_records_table_the_registry_lost_is_not_made_again(
    tmp_path: Path, writeable: bool
) -> None:
    """Made empty again on a writeable open, every artifact would look unknown to verify."""
    import sqlite3

    root = _stored(tmp_path)
    connection = sqlite3.connect(root / "registry.sqlite3")
    connection.execute("DROP TABLE files_records")
    connection.commit()
    connection.close()
    files = _files(root)
    with pytest.raises(RepositoryError, match=r"'files_records' .* is missing .* damaged"):
        Butler(root, writeable=writeable)
    connection = sqlite3.connect(root / "registry.sqlite3")
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    connection.close()
    assert "files_records" not in tables and _files(root) == files


def test_delete_unknown_refuses_a_datastore_that_records_nothing(tmp_path: Path) -> None:
    """A datastore renamed in butler.yaml is new to the registry, over another's files: none
    of them is deleted as unknown, and nothing is repaired."""
    root = _stored(tmp_path)
    config = yaml.safe_load((root / "butler.yaml").read_text())
    config["datastore"].update(name="other", root=str(root / "files"))
    (root / "butler.yaml").write_text(yaml.safe_dump(config))
    files = _files(root / "files")
    with Butler(root, writeable=True) as butler:
        assert butler.verify().counts() == {"unknown_artifact": 1}
        with pytest.raises(RepositoryError, match="records no stored artifact"):
            butler.verify(repair=True, delete_unknown=True)
    assert _files(root / "files") == files


@pytest.mark.parametrize(
    "new",
    [
        {"db": "garbage"},
        {"db": "postgresql://127.0.0.1:1/x"},
        {"datastore": "occupied"},
    ],
    ids=["malformed-db", "unreachable-db", "occupied-datastore"],
)
def test_a_failed_overwrite_leaves_the_replaced_repository_whole(
    tmp_path: Path, new: dict[str, Any]
) -> None:
    """The old registry and datastore are set aside, not deleted, until the new repository
    stands: a creation that fails puts them back."""
    root = _stored(tmp_path)
    before = _files(root)
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "mine.txt").write_text("mine")
    if "datastore" in new:
        new = {"datastore": str(tmp_path / new["datastore"])}
    with pytest.raises(DatabutlerError):
        Butler.create(root, overwrite=True, **new)
    assert _files(root) == before
    assert not [p for p in root.iterdir() if p.name.startswith(".")]
    with Butler(root) as butler:
        assert butler.get("thing", instrument="HSC", detector=1, collections="r") == {"a": 1}
        assert butler.verify().ok
    with Butler.create(root, overwrite=True) as fresh:  # and a good overwrite replaces it
        assert not list(fresh.query_datasets("*", collections="*"))
    assert not [p for p in root.iterdir() if p.name.startswith(".")]
