"""The README's demo command runs and tells the truth about what it did."""

from pathlib import Path

import pytest

from databutler.demo import main


def test_demo_runs_and_empties_the_trash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["--root", str(tmp_path / "repo")])
    out = capsys.readouterr().out
    assert "files now holds 4 of 6" in out
    assert "keep   bundle.zip" in out
    assert "delete raw_2.fits" in out
    assert "'files' holds 4 datasets; trash rows left: 0" in out
    assert (tmp_path / "repo" / "registry.sqlite3").exists()
