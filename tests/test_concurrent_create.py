"""Creating one repository from several processes at once: one makes it, nothing is lost.

Several jobs of a batch system may run ``databutler create`` on the same root
at the same moment. Before, each saw no repository there, all made the
registry, and a loser's clean-up removed the root directory that the winner
had just filled: the winner's repository was gone. A creation now holds a
locked file in the root; another one there at the same time is an
`AlreadyExistsError` that changes nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from databutler import AlreadyExistsError, Butler, ConfigurationError
from databutler.butler._repository import CREATING_NAME

CREATE = textwrap.dedent(
    """
    import json, sys, time
    from databutler import Butler
    root, start = sys.argv[1], float(sys.argv[2])
    time.sleep(max(0.0, start - time.time()))  # all at once
    try:
        Butler.create(root).close()
        print(json.dumps("ok"))
    except Exception as exc:
        print(json.dumps(type(exc).__name__))
    """
)


@pytest.mark.parametrize("nested", [False, True])
def test_creations_at_once_make_one_repository(tmp_path: Path, nested: bool) -> None:
    import time

    root = tmp_path / ("a/b/repo" if nested else "repo")  # directories made by the race too
    start = time.time() + 3.0  # after every interpreter has started
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CREATE, str(root), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        outcomes.append(json.loads(out))
    assert sorted(outcomes) == ["AlreadyExistsError"] * 3 + ["ok"], outcomes
    with Butler(root, writeable=True, run="r") as butler:
        assert butler.verify().ok
        assert butler.registry.getCollectionType("r").name == "RUN"
    assert not (root / CREATING_NAME).exists()
    assert sorted(p.name for p in root.iterdir() if not p.name.startswith("registry.sqlite3")) == [
        "butler.yaml",
        "files",
    ]


def test_a_creation_in_progress_is_not_disturbed(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    marker = root / CREATING_NAME
    descriptor = os.open(marker, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # as another process creating it holds it
        with pytest.raises(AlreadyExistsError, match="Another process is creating"):
            Butler.create(root)
        assert sorted(p.name for p in root.iterdir()) == [CREATING_NAME]
    finally:
        os.close(descriptor)


def test_a_marker_a_dead_creation_left_is_taken_over(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / CREATING_NAME).write_text("")  # its process died: nobody holds the lock
    with Butler.create(root) as butler:
        assert butler.verify().ok
    assert not (root / CREATING_NAME).exists()


def test_a_failed_creation_leaves_no_directory_it_made(tmp_path: Path) -> None:
    root = tmp_path / "a" / "repo"
    with pytest.raises(ConfigurationError, match="Cannot connect to PostgreSQL"):
        Butler.create(root, db="postgresql://nobody@127.0.0.1:1/none")  # a closed port
    assert not (tmp_path / "a").exists()
