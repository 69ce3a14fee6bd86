"""The README's Python examples run as written."""

import os
import re
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).parent.parent / "README.md"


def _run_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 3, "the README lost its Python examples"
    monkeypatch.chdir(tmp_path)
    os.mkdir("repo")
    namespaces = []
    for block in blocks:
        namespace: dict[str, Any] = {}
        exec(compile(block, str(README), "exec"), namespace)
        namespaces.append(namespace)
    return namespaces


def test_readme_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    butler, bridge, registry = _run_examples(tmp_path, monkeypatch)[:3]
    # The Butler example put one catalog, found it, and pruned it.
    assert [r.id for r in butler["refs"]] == [butler["ref"].id]
    assert list(butler["butler"].query_datasets("catalog")) == []
    assert not butler["butler"].exists(butler["ref"])
    assert (tmp_path / "repo" / "main" / "butler.yaml").exists()
    # The bridge example trashed and emptied the first dataset; the others stay stored.
    assert bridge["files"].check(bridge["ids"]) == set(bridge["ids"][1:])
    assert (tmp_path / "repo" / "registry.sqlite3").exists()
    # The registry example: the chain finds the run's dataset.
    found = registry["registry"].findDataset(
        "bias", instrument="HSC", detector=2, collections="HSC/calib"
    )
    assert found is not None and found.id == registry["refs"][2].id


def test_readme_shell_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shlex

    from click.testing import CliRunner

    from databutler.cli import main

    _run_examples(tmp_path, monkeypatch)  # the Python examples make the repository
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL)
    commands = [
        line.split("#")[0].strip()
        for block in blocks
        for line in block.splitlines()
        if line.startswith("databutler ")
    ]
    assert commands, "the README lost its databutler examples"
    for command in commands:
        result = CliRunner().invoke(main, shlex.split(command)[1:])
        assert result.exit_code == 0, f"{command}: {result.output}"
