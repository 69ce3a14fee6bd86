"""What ingest takes as a source, in every transfer mode, and what it refuses before writing.

A source is a regular file this process can read, that is not one of the
repository's own files (its ``butler.yaml``, its SQLite registry and that
database's ``-wal``/``-shm``/``-journal`` files, databutler's files under
the datastore root). Anything else (missing, a directory, a FIFO, a socket,
a device, a dangling or looping link, a name too long, unreadable, a file a
move cannot remove, a file moved twice) is a `DatabutlerError` naming the
file, what it is and the fix, and leaves the repository (its registry dump
and its files with their sizes) and the source as they were. Also here:
`FileDataset` without refs, a FIFO where an artifact should be (refused,
never read), and opening a repository whose datastore directory is gone or
is a file (nothing is created).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from databutler import (
    ArgumentTypeError,
    ArtifactCorruptedError,
    Butler,
    DatabutlerError,
    DatasetRef,
    FileDataset,
    RepositoryError,
    SourceFileError,
    SourceNotFoundError,
    SourcePermissionError,
    TransferModeError,
    UnresolvedRef,
    UnsafePathError,
)
from databutler.testing.butler import artifact_of, file_datastore, populate

MODES = ["move", "copy", "hardlink", "symlink", "relsymlink", "link", "direct", "auto", None]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    with Butler.create(str(root), run="r") as butler:
        populate(butler, detectors=3)
        butler.put({"a": 1}, "thing", {"instrument": "HSC", "detector": 0})
    return root


@pytest.fixture
def butler(repo: Path) -> Iterator[Butler]:
    with Butler(str(repo), run="r", writeable=True) as butler:
        yield butler


def _dataset(path: str | Path, *detectors: int) -> FileDataset:
    refs: list[DatasetRef | UnresolvedRef] = [
        UnresolvedRef("thing", {"instrument": "HSC", "detector": d}) for d in detectors or (1,)
    ]
    return FileDataset(str(path), refs)


def _state(root: Path, database: Path | None = None) -> tuple[list[str], list[tuple[str, int]]]:
    """The registry's SQL dump, and every file and directory under ``root`` with its size.

    The SQLite log files come and go with checkpoints; their content is in the dump.
    """
    connection = sqlite3.connect(database or root / "registry.sqlite3")
    try:
        dump = list(connection.iterdump())
    finally:
        connection.close()
    files = sorted(
        (p.relative_to(root).as_posix(), -1 if p.is_dir() else p.lstat().st_size)
        for p in root.rglob("*")
        if not p.name.startswith("registry.sqlite3-")
    )
    return dump, files


def _source(path: Path) -> tuple[bool, bytes | None]:
    return os.path.lexists(path), path.read_bytes() if path.is_file() else None


@contextmanager
def _unchanged(root: Path, *sources: Path, database: Path | None = None) -> Iterator[None]:
    before = _state(root, database), [_source(s) for s in sources]
    yield
    assert (_state(root, database), [_source(s) for s in sources]) == before


# -- the repository's own files ------------------------------------------------


@pytest.mark.parametrize("transfer", MODES)
@pytest.mark.parametrize(
    "name", ["butler.yaml", "registry.sqlite3", "registry.sqlite3-wal", "registry.sqlite3-shm"]
)
def test_repository_files_are_refused_in_every_mode(
    butler: Butler, repo: Path, name: str, transfer: str | None
) -> None:
    source = repo / name
    assert source.is_file()
    with _unchanged(repo, source), pytest.raises(UnsafePathError, match=name) as caught:
        butler.ingest(_dataset(source), transfer=transfer)
    assert "not a dataset" in str(caught.value) or "outside the datastore root" in str(caught.value)


@pytest.mark.parametrize("transfer", ["move", "copy", "symlink", "direct"])
def test_a_link_to_the_registry_is_refused(
    butler: Butler, repo: Path, tmp_path: Path, transfer: str
) -> None:
    link = tmp_path / "innocent.sqlite3"
    link.symlink_to(repo / "registry.sqlite3")
    with _unchanged(repo, link), pytest.raises(UnsafePathError, match="registry database"):
        butler.ingest(_dataset(link), transfer=transfer)


@pytest.mark.parametrize("transfer", ["move", "copy", "hardlink", "direct"])
def test_a_registry_elsewhere_is_refused(tmp_path: Path, transfer: str) -> None:
    (tmp_path / "db").mkdir()
    database = tmp_path / "db" / "my.db"
    root = tmp_path / "repo"
    with Butler.create(str(root), db=f"sqlite:///{database}", run="r") as butler:
        populate(butler, detectors=2)
        with (
            _unchanged(root, database, database=database),
            pytest.raises(UnsafePathError, match="registry database of this repository"),
        ):
            butler.ingest(_dataset(database), transfer=transfer)


@pytest.mark.parametrize("transfer", ["move", "copy", "hardlink"])
def test_an_unfinished_write_in_the_root_is_refused(
    butler: Butler, repo: Path, transfer: str
) -> None:
    unfinished = repo / "files" / ".half.json.123-0.tmp"
    unfinished.write_text('{"a": 1}')
    with _unchanged(repo, unfinished), pytest.raises(UnsafePathError, match="own files"):
        butler.ingest(_dataset(unfinished), transfer=transfer)


# -- sources that are no readable regular file ---------------------------------


def _make(kind: str, where: Path) -> tuple[Path | str, type[DatabutlerError], str]:
    """A source of ``kind`` under ``where``, the error it gets, and words of the message."""
    if kind == "missing":
        return where / "missing.json", SourceNotFoundError, "no such file .nothing is there"
    if kind == "directory":
        (where / "d").mkdir()
        return where / "d", SourceNotFoundError, "is a directory"
    if kind == "dot":
        return ".", SourceNotFoundError, "is a directory"
    if kind == "fifo":
        os.mkfifo(where / "pipe")
        return where / "pipe", SourceNotFoundError, "FIFO"
    if kind == "socket":
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(where / "sock"))
        listener.close()
        return where / "sock", SourceNotFoundError, "socket"
    if kind == "device":
        return "/dev/null", SourceNotFoundError, "device"
    if kind == "dangling":
        (where / "dangling").symlink_to(where / "nowhere")
        return where / "dangling", SourceNotFoundError, "symbolic link"
    if kind == "loop":
        (where / "loop").symlink_to(where / "loop")
        return where / "loop", SourceNotFoundError, "symbolic link"
    assert kind == "long"
    return where / ("x" * 300 + ".json"), SourceFileError, "too long"


@pytest.mark.parametrize("transfer", ["move", "copy", "link", "symlink", "direct", "auto"])
@pytest.mark.parametrize(
    "kind", ["missing", "directory", "dot", "fifo", "socket", "device", "dangling", "loop", "long"]
)
def test_no_regular_file_is_refused_before_writing(
    butler: Butler,
    repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    transfer: str,
) -> None:
    where = tmp_path / "sources"
    where.mkdir()
    monkeypatch.chdir(where)
    source, error, words = _make(kind, where)
    with _unchanged(repo, where), pytest.raises(error, match=words) as caught:
        butler.ingest(_dataset(source), transfer=transfer)
    assert str(source) in str(caught.value)
    # Still the builtin errors they were before they were databutler's.
    assert isinstance(caught.value, FileNotFoundError if kind != "long" else OSError)
    assert os.path.lexists(where / "pipe") == (kind == "fifo")


@pytest.mark.parametrize("together", [True, False])
def test_one_file_moved_twice_is_refused(
    butler: Butler, repo: Path, tmp_path: Path, together: bool
) -> None:
    source = tmp_path / "shared.json"
    source.write_text('{"a": 1}')
    datasets = [_dataset(source, 1, 2)] if together else [_dataset(source, 1), _dataset(source, 2)]
    with _unchanged(repo, source), pytest.raises(TransferModeError, match="only once") as caught:
        butler.ingest(*datasets, transfer="move")
    assert str(source) in str(caught.value) and "transfer='copy'" in str(caught.value)
    butler.ingest(*datasets, transfer="copy")  # what the message offers works
    assert len(list(butler.query_datasets("thing", collections="r"))) == 3


@pytest.mark.parametrize("relative", [True, False])
def test_moving_a_symbolic_link_is_refused(
    butler: Butler, repo: Path, tmp_path: Path, relative: bool
) -> None:
    """A move would store the link, not the data: a relative one leads nowhere from the
    datastore, an absolute one to a file the user may change or delete."""
    real = tmp_path / "real.json"
    real.write_text('{"a": 1}')
    link = tmp_path / "link.json"
    link.symlink_to("real.json" if relative else real)
    with _unchanged(repo, link, real), pytest.raises(TransferModeError, match="symbolic link"):
        butler.ingest(_dataset(link), transfer="move")
    assert os.path.islink(link)
    (ref,) = butler.ingest(_dataset(link), transfer="copy")  # what the message offers works
    assert butler.get(ref) == {"a": 1}
    store, path = artifact_of(butler, ref)
    assert not Path(store.root.removeprefix("file://"), path).is_symlink()


def test_direct_datasets_share_one_file(butler: Butler, tmp_path: Path) -> None:
    source = tmp_path / "shared.json"
    source.write_text('{"a": 1}')
    butler.ingest(_dataset(source, 1, 2), transfer="direct")  # as the refusal above says
    for detector in (1, 2):
        assert butler.get("thing", {"instrument": "HSC", "detector": detector}) == {"a": 1}


def test_file_dataset_without_refs_is_an_argument_type_error() -> None:
    for refs in (None, 5, "thing"):
        with pytest.raises(ArgumentTypeError, match="refs must be"):
            FileDataset("a.json", refs)  # type: ignore[arg-type]


# -- permissions (as root: without the capabilities that override them) ---------

_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from databutler import Butler, DatabutlerError, FileDataset, UnresolvedRef

    root, source, transfer = sys.argv[1:]
    ref = UnresolvedRef("thing", {"instrument": "HSC", "detector": 1})
    with Butler(root, run="r", writeable=True) as butler:
        try:
            butler.ingest(FileDataset(source, [ref]), transfer=transfer)
        except Exception as exc:
            print(json.dumps([type(exc).__name__, str(exc), isinstance(exc, DatabutlerError)]))
        else:
            print(json.dumps(["ok", "", True]))
    """
)

_DROPPED = "-dac_override,-dac_read_search,-fowner"


def _ingest_without_privileges(repo: Path, source: Path, transfer: str) -> list[Any]:
    """Ingest ``source`` in another process that permissions bind (root without the
    capabilities that override them); what it raised."""
    command = [sys.executable, "-c", _SCRIPT, str(repo), str(source), transfer]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv is not None, "setpriv (util-linux) is needed to test permissions as root"
        command = [setpriv, f"--inh-caps={_DROPPED}", f"--bounding-set={_DROPPED}", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result: list[Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture
def closed_repo(repo: Path) -> Path:
    """The repository, left open by no one here (another process ingests into it)."""
    return repo


def test_move_from_a_directory_the_user_cannot_write_is_refused(
    closed_repo: Path, tmp_path: Path
) -> None:
    directory = tmp_path / "readonly"
    directory.mkdir()
    source = directory / "data.json"
    source.write_text('{"a": 1}')
    directory.chmod(0o555)
    try:
        with _unchanged(closed_repo, source):
            name, message, ours = _ingest_without_privileges(closed_repo, source, "move")
    finally:
        directory.chmod(0o755)
    assert (name, ours) == (SourcePermissionError.__name__, True)
    assert str(source) in message and "transfer='copy'" in message
    assert not (closed_repo / "files" / ".databutler").exists()


def test_move_that_cannot_remove_its_source_takes_its_copy_back(
    closed_repo: Path, tmp_path: Path
) -> None:
    """A sticky directory of another user, anyone may write, holding that user's file: it
    passes for writable, the rename and the unlink fail, and the copy made between
    them goes again (the local store's move is all or nothing)."""
    if os.geteuid() != 0:
        pytest.skip("needs a file of another user: run as root")  # pragma: no cover
    directory = tmp_path / "sticky"
    directory.mkdir()
    directory.chmod(0o1777)
    source = directory / "data.json"
    source.write_text('{"a": 1}')
    os.chown(source, 65534, 65534)
    os.chown(directory, 65534, 65534)  # neither the file nor the directory is root's
    with _unchanged(closed_repo, source):
        name, message, ours = _ingest_without_privileges(closed_repo, source, "move")
    assert (name, ours) == (SourcePermissionError.__name__, True)
    assert str(source) in message and "transfer='copy'" in message
    assert not (closed_repo / "files" / ".databutler").exists()  # nor an empty journal


@pytest.mark.parametrize("transfer", ["copy", "move", "direct", "symlink"])
def test_an_unreadable_file_is_refused(closed_repo: Path, tmp_path: Path, transfer: str) -> None:
    source = tmp_path / "secret.json"
    source.write_text('{"a": 1}')
    source.chmod(0o000)
    try:
        with _unchanged(closed_repo, source):
            name, message, ours = _ingest_without_privileges(closed_repo, source, transfer)
    finally:
        source.chmod(0o644)
    assert (name, ours) == (SourcePermissionError.__name__, True)
    assert str(source) in message and "cannot be read" in message


# -- a FIFO where an artifact should be ----------------------------------------


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Fail (rather than hang) a block that blocks for longer than ``seconds``."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"blocked for {seconds} seconds")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize(
    "read",
    [
        lambda b, ref: b.get(ref),
        lambda b, ref: b.get_many([ref]),
        lambda b, ref: b.get_deferred(ref).get(),
    ],
    ids=["get", "get_many", "get_deferred"],
)
def test_a_fifo_in_place_of_an_artifact_is_refused_without_blocking(
    butler: Butler, repo: Path, read: Callable[[Butler, Any], Any]
) -> None:
    ref = next(iter(butler.query_datasets("thing", collections="r")))
    store, path = artifact_of(butler, ref)
    artifact = Path(store.root.removeprefix("file://")) / path
    artifact.unlink()
    os.mkfifo(artifact)
    with _unchanged(repo), _deadline(10), pytest.raises(ArtifactCorruptedError, match="FIFO"):
        read(butler, ref)


def test_a_fifo_in_place_of_a_file_ingested_in_place_is_refused_without_blocking(
    butler: Butler, repo: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text('{"b": 2}')
    (ref,) = butler.ingest(_dataset(outside, 2), transfer="direct")
    assert butler.get(ref) == {"b": 2}
    outside.unlink()
    os.mkfifo(outside)
    with _unchanged(repo), _deadline(10), pytest.raises(ArtifactCorruptedError, match="FIFO"):
        butler.get(ref)


# -- the datastore directory when a repository is opened -----------------------


def test_opening_creates_no_missing_datastore_directory(repo: Path) -> None:
    shutil.rmtree(repo / "files")
    with _unchanged(repo):
        with Butler(str(repo)) as butler:
            assert list(butler.query_datasets("thing", collections="r"))
        with Butler(str(repo), writeable=True):
            pass
    with Butler(str(repo), run="r", writeable=True) as butler:  # the first write makes it
        butler.put({"b": 2}, "thing", {"instrument": "HSC", "detector": 1})
        assert butler.get("thing", {"instrument": "HSC", "detector": 1}) == {"b": 2}


def test_a_datastore_directory_that_is_a_file_is_named(repo: Path) -> None:
    shutil.rmtree(repo / "files")
    (repo / "files").write_text("not a directory")
    with _unchanged(repo), pytest.raises(RepositoryError, match="is a file, not a directory"):
        Butler(str(repo))


def test_a_failed_move_into_a_new_datastore_directory_leaves_none(
    repo: Path, tmp_path: Path
) -> None:
    """The journal directory (and the datastore root) a failed move made go again."""
    shutil.rmtree(repo / "files")
    source = tmp_path / "data.json"
    source.write_text('{"a": 1}')
    with Butler(str(repo), run="r", writeable=True) as butler:
        datastore = file_datastore(butler)

        def broken(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("the registry went away")

        datastore._record = broken  # type: ignore[method-assign]
        with _unchanged(repo, source), pytest.raises(RuntimeError, match="went away"):
            butler.ingest(_dataset(source), transfer="move")
    assert not (repo / "files").exists()
