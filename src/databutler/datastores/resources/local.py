"""Artifacts in a directory on a local (or mounted) file system."""

from __future__ import annotations

import itertools
import os
import shutil
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..._exceptions import AlreadyExistsError
from ._base import ResourceStore, StorageError, check_relative_path, cpu_count

__all__ = ["LocalStore"]


class LocalStore(ResourceStore):
    """Artifacts under the directory ``root`` (created when missing).

    Writes go to a temporary file in the destination directory, then are
    renamed into place, so a crash never leaves a partial artifact under its
    final name.

    Parameters
    ----------
    root : `str` or `os.PathLike`
        The directory.
    fsync : `bool`, optional
        Flush every artifact to the device before it gets its final name.
        Off by default, like the SQLite registry's ``synchronous=NORMAL``:
        a crashed process loses nothing, and only a power cut or kernel
        crash can lose the latest writes. Costs about 0.3 ms per artifact.
    """

    link_modes = frozenset({"link", "hardlink", "symlink", "relsymlink"})
    # File creation overlaps in the kernel, up to the CPUs there are; an unlink
    # is so cheap that a plain loop beats any thread pool.
    concurrency = min(8, cpu_count())
    delete_concurrency = 1

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self._root = Path(root).absolute()
        self._root_text = str(self._root)
        self._root.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._temporary_names = itertools.count()

    @property
    def directory(self) -> Path:
        """The root directory."""
        return self._root

    @property
    def root(self) -> str:
        # docstring inherited
        return self._root.as_uri()

    def local_path(self, path: str) -> Path:
        """The file system path of artifact ``path`` (checked to stay under the root)."""
        return self._root / check_relative_path(path)

    def read(self, path: str) -> bytes:
        # docstring inherited; a string path (this runs once per dataset read)
        try:
            with open(os.path.join(self._root_text, check_relative_path(path)), "rb") as file:
                return file.read()
        except IsADirectoryError:
            raise FileNotFoundError(f"{path!r} is a directory, not an artifact.") from None

    def open(self, path: str) -> BinaryIO:
        # docstring inherited; the file itself
        try:
            return open(os.path.join(self._root_text, check_relative_path(path)), "rb")
        except IsADirectoryError:
            raise FileNotFoundError(f"{path!r} is a directory, not an artifact.") from None

    def write(self, path: str, data: bytes, *, overwrite: bool = False) -> None:
        # docstring inherited
        target = self.local_path(path)
        temporary, descriptor = self._create_temporary(target)
        try:
            try:
                _write_all(descriptor, data)
                if self.fsync:
                    os.fsync(descriptor)
            finally:
                os.close(descriptor)
            if overwrite:
                os.replace(temporary, target)
            else:
                # link() fails if the target exists: no silent overwrite, no race.
                try:
                    os.link(temporary, target)
                except FileExistsError:
                    raise AlreadyExistsError(
                        f"Artifact {path!r} exists already in {self.root}."
                    ) from None
                os.unlink(temporary)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def _create_temporary(self, target: Path) -> tuple[Path, int]:
        """A new, exclusively created temporary file next to ``target``, and its descriptor."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        for attempt in range(2):
            for _ in range(100):
                name = f".{target.name}.{os.getpid()}-{next(self._temporary_names)}.tmp"
                temporary = target.with_name(name)
                try:
                    return temporary, os.open(temporary, flags, 0o644)
                except FileExistsError:
                    continue  # left by an earlier process with our pid
                except FileNotFoundError:
                    if attempt:
                        raise
                    break
            target.parent.mkdir(parents=True, exist_ok=True)
        raise StorageError(f"Could not create a temporary file next to {target}.")

    def size(self, path: str) -> int:
        # docstring inherited; one stat of a string path (this runs once per `exists`).
        status = os.stat(os.path.join(self._root_text, check_relative_path(path)))
        if stat.S_ISDIR(status.st_mode):
            raise FileNotFoundError(f"{path!r} is a directory, not an artifact.")
        return status.st_size

    def delete(self, path: str) -> bool:
        # docstring inherited; string paths: this runs once per artifact of a prune.
        try:
            os.unlink(os.path.join(self._root_text, check_relative_path(path)))
        except FileNotFoundError:
            return False
        return True

    def delete_many(self, paths: Iterable[str]) -> None:
        # docstring inherited; a plain loop: on a local disk, threads only add overhead.
        delete = self.delete
        for path in paths:
            delete(path)

    def list(self, prefix: str = "") -> Iterator[str]:
        # docstring inherited
        start = self.local_path(prefix) if prefix else self._root
        if not start.is_dir():
            return iter(())
        found = []
        for directory, _, files in os.walk(start):
            for name in files:
                if name.startswith(".") and name.endswith(".tmp"):
                    continue  # an unfinished write
                found.append(Path(directory, name).relative_to(self._root).as_posix())
        return iter(sorted(found))

    def list_sizes(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        # docstring inherited; one stat per file, sizes of links are their targets'
        start = self.local_path(prefix) if prefix else self._root
        found: list[tuple[str, int]] = []
        stack = [start] if start.is_dir() else []
        while stack:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif not (entry.name.startswith(".") and entry.name.endswith(".tmp")):
                        try:
                            size = entry.stat().st_size
                        except FileNotFoundError:
                            size = -1  # a dangling symbolic link: present, unreadable
                        relative = Path(entry.path).relative_to(self._root).as_posix()
                        found.append((relative, size))
        found.sort()
        return iter(found)

    def copy(self, source: str, destination: str, *, overwrite: bool = False) -> None:
        # docstring inherited
        source_path = self.local_path(source)
        if not source_path.is_file():
            raise FileNotFoundError(f"No artifact {source!r} in {self.root}.")
        with source_path.open("rb") as stream:
            self.write(destination, stream.read(), overwrite=overwrite)

    def move(self, source: str, destination: str, *, overwrite: bool = False) -> None:
        # docstring inherited
        source_path, target = self.local_path(source), self.local_path(destination)
        if not source_path.is_file():
            raise FileNotFoundError(f"No artifact {source!r} in {self.root}.")
        if not overwrite and target.exists():
            raise AlreadyExistsError(f"Artifact {destination!r} exists already in {self.root}.")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source_path, target)

    def ingest(self, source: str | os.PathLike[str], destination: str, mode: str) -> None:
        """Bring the outside file ``source`` in at ``destination`` by ``mode``.

        Parameters
        ----------
        source : `str` or `os.PathLike`
            An existing file.
        destination : `str`
            The artifact path in this store.
        mode : `str`
            ``copy``, ``move``, ``hardlink``, ``symlink`` (absolute target),
            ``relsymlink`` (relative target) or ``link`` (hard link, else symlink).

        Raises
        ------
        FileNotFoundError
            If ``source`` is not a file.
        FileExistsError
            If ``destination`` exists.
        ValueError
            If ``mode`` is not one of those.
        """
        source_path = Path(source).absolute()
        if not source_path.is_file():
            raise FileNotFoundError(f"Cannot ingest {source_path}: no such file.")
        if mode == "copy":
            # `write` refuses an existing artifact (its link() fails, dangling links included)
            # and makes the directories; reading follows any link to the file's bytes.
            with open(source_path, "rb") as stream:
                self.write(destination, stream.read())
            return
        target = self.local_path(destination)
        if target.exists() or target.is_symlink():
            raise AlreadyExistsError(f"Artifact {destination!r} exists already in {self.root}.")
        target.parent.mkdir(parents=True, exist_ok=True)
        resolved = source_path.resolve()  # a link to a link points at the original
        if mode == "move":
            shutil.move(os.fspath(source_path), target)
        elif mode == "hardlink":
            os.link(resolved, target)
        elif mode == "symlink":
            os.symlink(resolved, target)
        elif mode == "relsymlink":
            os.symlink(os.path.relpath(resolved, target.parent), target)
        elif mode == "link":
            try:
                os.link(resolved, target)
            except OSError:
                os.symlink(resolved, target)
        else:
            valid = "copy, move, hardlink, symlink, relsymlink, link"
            raise ValueError(f"Unknown transfer mode {mode!r}; use one of {valid}.")
        if not target.exists():
            raise StorageError(
                f"Ingest of {source_path} by {mode} left no artifact at {destination!r}."
            )


def _write_all(descriptor: int, data: bytes) -> None:
    """Write all of ``data`` to an open file descriptor."""
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]
