"""The README's demo command runs and tells the truth about what it did."""

from pathlib import Path

import pytest

from databutler import Butler
from databutler.demo import main


def test_demo_walks_through_a_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "repo"
    assert main([str(root)]) == 0
    out = capsys.readouterr().out
    assert "found detectors [3, 4, 5]" in out
    assert "datastore 'files' holds 5 of 5 catalogs" in out
    assert "unstored 2, purged 2" in out
    assert "all good" in out
    assert "Done: 3 catalogs remain" in out
    # What it printed is what the repository holds.
    butler = Butler(root, collections="demo/run1")
    refs = list(butler.query_datasets("catalog"))
    assert sorted(r.dataId["detector"] for r in refs) == [3, 4, 5]
    assert butler.get("catalog", instrument="HSC", detector=4) == {"detector": 4, "sources": []}
    assert butler.verify().ok


def test_demo_refuses_an_existing_repository(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    main([str(root)])
    with pytest.raises(FileExistsError, match="holds a repository already"):
        main([str(root)])


def test_demo_in_a_temporary_directory(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "all good" in capsys.readouterr().out
