"""The documentation builds, covers the API, and its examples run."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

from databutler import Butler

DOCS = Path(__file__).parent.parent / "docs"


def test_every_public_butler_method_is_documented() -> None:
    text = (DOCS / "python-api.md").read_text()
    public = [
        name
        for name, member in inspect.getmembers(Butler)
        if not name.startswith("_") and callable(member)
    ]
    missing = [n for n in public if not re.search(rf"`(Butler\.)?{re.escape(n)}\(", text)]
    assert not missing, f"docs/python-api.md does not describe {missing}"


def test_quick_start_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / "index.md").read_text(), re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "docs/index.md", "exec"), namespace)
    assert (tmp_path / "my-repo" / "butler.yaml").is_file()


def test_site_builds(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=DOCS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "concepts" / "index.html").is_file()
