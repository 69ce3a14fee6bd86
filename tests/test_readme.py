"""The README's Python example runs as written."""

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"


def test_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert blocks, "the README has no Python example"
    monkeypatch.chdir(tmp_path)
    os.mkdir("repo")
    namespace: dict[str, object] = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    files = namespace["files"]
    ids = namespace["ids"]
    # The example trashed and emptied the first dataset; the others stay stored.
    assert files.check(ids) == set(ids[1:])  # type: ignore[attr-defined]
    assert (tmp_path / "repo" / "registry.sqlite3").exists()
