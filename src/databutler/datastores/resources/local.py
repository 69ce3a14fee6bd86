"""Artifacts in a directory on a local (or mounted) file system."""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import shutil
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from ..._exceptions import (
    AlreadyExistsError,
    ArtifactCorruptedError,
    ConfigurationError,
    DatabutlerError,
    SourceNotFoundError,
    SourcePermissionError,
)
from ._base import (
    ResourceStore,
    StorageError,
    check_relative_path,
    cpu_count,
    file_kind,
    storage_error,
)

__all__ = ["LocalStore"]


class LocalStore(ResourceStore):
    """Artifacts under the directory ``root``.

    Writes go to a temporary file in the destination directory, then are
    renamed into place, so a crash never leaves a partial artifact under its
    final name. Only regular files are read: anything else where an artifact
    should be (a FIFO, a socket, a device) is refused without being opened
    for reading, so a read never blocks.

    Parameters
    ----------
    root : `str` or `os.PathLike`
        The directory.
    fsync : `bool`, optional
        Flush every artifact to the device before it gets its final name.
        Off by default, like the SQLite registry's ``synchronous=NORMAL``:
        a crashed process loses nothing, and only a power cut or kernel
        crash can lose the latest writes. Costs about 0.3 ms per artifact.
    create : `bool`, optional
        Whether to make a missing ``root`` now (`True`), or only when
        something is first written there (`False`). By default a missing
        root is made now, except where its parent directory holds a
        repository (a ``butler.yaml``): that is the datastore directory of a
        repository that exists, and opening a repository creates nothing
        (see `store_for`); it is made again by the first write.

    Raises
    ------
    ConfigurationError
        If ``root`` is there but is not a directory.
    """

    link_modes = frozenset({"link", "hardlink", "symlink", "relsymlink"})
    # File creation overlaps in the kernel, up to the CPUs there are; an unlink
    # is so cheap that a plain loop beats any thread pool.
    concurrency = min(8, cpu_count())
    delete_concurrency = 1

    def __init__(
        self, root: str | os.PathLike[str], *, fsync: bool = False, create: bool | None = None
    ) -> None:
        self._root = Path(root).absolute()
        self._root_text = str(self._root)
        self.fsync = fsync
        self._temporary_names = itertools.count()
        try:
            status: os.stat_result | None = os.stat(self._root_text)
        except (FileNotFoundError, NotADirectoryError):
            status = None
        if status is not None and not stat.S_ISDIR(status.st_mode):
            raise ConfigurationError(_not_a_directory(self._root_text))
        if status is None:
            if create is None:
                create = not os.path.lexists(
                    os.path.join(os.path.dirname(self._root_text), _CONFIG)
                )
            if create:
                self._make_directory(self._root)

    def _make_directory(self, directory: Path) -> list[Path]:
        """Make ``directory`` (a directory in this store, or its root) and its missing parents;
        the ones made, deepest last, for `remove_empty` to take back (in reverse)."""
        made: list[Path] = []
        missing = directory
        while not os.path.isdir(missing) and missing != missing.parent:
            made.append(missing)
            missing = missing.parent
        made.reverse()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            blocker = next(
                (p for p in made if os.path.lexists(p) and not os.path.isdir(p)), directory
            )
            if blocker == self._root:
                raise ConfigurationError(_not_a_directory(self._root_text)) from None
            raise StorageError(
                f"Cannot make directory {directory} in {self.root}: {blocker} is a file, not a "
                "directory; move it away."
            ) from None
        return made

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
        # docstring inherited; a string path and the descriptor itself (this runs once per
        # dataset read). Raises ArtifactCorruptedError for a FIFO, socket or device where
        # the artifact is. O_NONBLOCK changes nothing for a regular file.
        descriptor, size = self._open_regular(path)
        try:
            data = os.read(descriptor, size + 1)  # all of it, unless it grew meanwhile
            if len(data) <= size:
                return data
            parts = [data]
            while chunk := os.read(descriptor, 1 << 20):
                parts.append(chunk)
            return b"".join(parts)
        finally:
            os.close(descriptor)

    def open(self, path: str) -> BinaryIO:
        # docstring inherited; the file itself, refused unless it is a regular file.
        descriptor, _ = self._open_regular(path)
        try:
            os.set_blocking(descriptor, True)
            return open(descriptor, "rb", closefd=True)
        except BaseException:
            os.close(descriptor)
            raise

    def _open_regular(self, path: str) -> tuple[int, int]:
        """A descriptor of the regular file at ``path``, and its size. Opened without
        blocking (a FIFO would wait for a writer), then refused unless a regular file."""
        local = os.path.join(self._root_text, check_relative_path(path))
        descriptor = os.open(local, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            status = os.fstat(descriptor)
            if stat.S_ISDIR(status.st_mode):
                raise FileNotFoundError(f"{path!r} is a directory, not an artifact.")
            if not stat.S_ISREG(status.st_mode):
                raise ArtifactCorruptedError(
                    f"The artifact {path!r} in {self.root} is {file_kind(status.st_mode)}, not a "
                    "regular file; it was not read. Remove it and put the original file back "
                    "from a copy, or remove the dataset (prune --purge) and put or ingest it "
                    "again."
                )
        except BaseException:
            os.close(descriptor)
            raise
        return descriptor, status.st_size

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
        except BaseException as failure:
            temporary.unlink(missing_ok=True)
            if isinstance(failure, OSError) and not isinstance(failure, DatabutlerError):
                raise _cannot_write(path, self.root, failure) from failure
            raise

    def _create_temporary(self, target: Path) -> tuple[Path, int]:
        """A new, exclusively created temporary file next to ``target``, and its descriptor."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        for attempt in range(3):
            for _ in range(100):
                name = f".{target.name}.{os.getpid()}-{next(self._temporary_names)}.tmp"
                temporary = target.with_name(name)
                try:
                    return temporary, os.open(temporary, flags, 0o644)
                except FileExistsError:
                    continue  # left by an earlier process with our pid
                except FileNotFoundError:
                    if attempt == 2:
                        raise
                    break
            self._make_directory(target.parent)
        raise StorageError(f"Could not create a temporary file next to {target}.")

    def size(self, path: str) -> int:
        # docstring inherited; one stat of a string path (this runs once per `exists`).
        status = os.stat(os.path.join(self._root_text, check_relative_path(path)))
        if stat.S_ISDIR(status.st_mode):
            raise FileNotFoundError(f"{path!r} is a directory, not an artifact.")
        return status.st_size

    def arrived(self, path: str) -> float | None:
        # docstring inherited; a hard link or a rename changes the file's status time too.
        try:
            return os.lstat(os.path.join(self._root_text, check_relative_path(path))).st_ctime
        except (FileNotFoundError, NotADirectoryError):
            return None

    def delete(self, path: str) -> bool:
        # docstring inherited; string paths: this runs once per artifact of a prune.
        try:
            os.unlink(os.path.join(self._root_text, check_relative_path(path)))
        except FileNotFoundError:
            return False
        return True

    def remove_empty_directories(self, paths: Iterable[str]) -> None:
        # docstring inherited; the deepest first, each chain up to the first that is not empty
        # (another writer's file) or gone. A writer that loses its new directory this way
        # makes it again (`_create_temporary`).
        directories = {self.local_path(path).parent for path in paths}
        for directory in sorted(directories, key=lambda d: len(d.parts), reverse=True):
            while directory != self._root and directory.is_relative_to(self._root):
                try:
                    os.rmdir(directory)
                except OSError:
                    break
                directory = directory.parent

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
        self._make_directory(target.parent)
        os.replace(source_path, target)

    def ingest(self, source: str | os.PathLike[str], destination: str, mode: str) -> None:
        """Bring the outside file ``source`` in at ``destination`` by ``mode``.

        All or nothing: a failure leaves no artifact, nor any directory this
        call made, and never touches ``source`` (a move that cannot remove
        its source takes its copy back).

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
        SourceNotFoundError
            If ``source`` is not a regular file (a `FileNotFoundError`).
        SourcePermissionError
            If ``source`` cannot be read (``copy``), or removed from its
            directory (``move``); a `PermissionError`.
        FileExistsError
            If ``destination`` exists.
        ValueError
            If ``mode`` is not one of those.
        """
        source_path = Path(source).absolute()
        if not source_path.is_file():
            raise SourceNotFoundError(
                f"Cannot ingest {source_path}: there is no regular file there; give the path "
                "of a file."
            )
        if mode == "copy":
            # `write` refuses an existing artifact (its link() fails, dangling links included)
            # and makes the directories; reading follows any link to the file's bytes.
            try:
                stream = open(source_path, "rb")  # noqa: SIM115
            except PermissionError:
                raise _unreadable(source_path) from None
            with stream:
                self.write(destination, stream.read())
            return
        target = self.local_path(destination)
        if target.exists() or target.is_symlink():
            raise AlreadyExistsError(f"Artifact {destination!r} exists already in {self.root}.")
        made = self._make_directory(target.parent)
        try:
            self._link_in(source_path, target, destination, mode)
            if not os.path.lexists(target):
                raise StorageError(
                    f"Ingest of {source_path} by {mode} left no artifact at {destination!r}."
                )
        except BaseException as failure:
            remove_empty(reversed(made))
            if isinstance(failure, OSError) and failure.errno in _TARGET_ERRNOS:
                raise _cannot_write(destination, self.root, failure) from failure
            raise

    def _link_in(self, source: Path, target: Path, destination: str, mode: str) -> None:
        """`ingest` of ``source`` to ``target`` (whose directory exists) by a mode but copy."""
        resolved = source.resolve()  # a link to a link points at the original
        if mode == "move":
            self._move_in(source, target, destination)
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

    def _move_in(self, source: Path, target: Path, destination: str) -> None:
        """Move ``source`` to ``target``: renamed, else copied and the source removed.

        If the source cannot be removed, the copy is deleted again, so that
        the file is in one place only, where it was.
        """
        try:
            os.rename(source, target)
            return
        except OSError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM) and not os.access(
                source.parent, os.W_OK | os.X_OK
            ):
                raise _cannot_remove(source, exc) from None
            # Another file system (or one that renames nothing): a copy, then the unlink.
        temporary, descriptor = self._create_temporary(target)
        os.close(descriptor)
        try:
            try:
                shutil.copy2(source, temporary)
            except PermissionError:
                raise _unreadable(source) from None
            if self.fsync:
                fsync_path(temporary)
            try:
                os.link(temporary, target)  # no silent overwrite
            except FileExistsError:
                raise AlreadyExistsError(
                    f"Artifact {destination!r} exists already in {self.root}."
                ) from None
        finally:
            temporary.unlink(missing_ok=True)
        try:
            os.unlink(source)
        except OSError as exc:
            target.unlink(missing_ok=True)  # the file stays where it was, and only there
            raise _cannot_remove(source, exc) from None


def absent_directories(root: Path, wanted: Iterable[Path]) -> list[Path]:
    """Those of the directories ``wanted`` (``root`` or below it), and of the directories
    between them and ``root`` (included), that are not there yet, deepest first: what a
    write there makes, for `remove_empty` to take back after a failure."""
    absent: set[Path] = set()
    known: set[Path] = set()
    for directory in wanted:
        while directory not in known and directory.is_relative_to(root):
            known.add(directory)
            if os.path.isdir(directory):
                break
            absent.add(directory)
            directory = directory.parent
    return sorted(absent, key=lambda d: len(d.parts), reverse=True)


def remove_empty(directories: Iterable[Path]) -> None:
    """Remove ``directories``, in the order given (deepest first), those that are empty; one
    that holds something (another writer's file) or is gone stays as it is."""
    for directory in directories:
        with contextlib.suppress(OSError):
            os.rmdir(directory)


def fsync_path(path: Path) -> None:
    """Flush the file or directory at ``path`` to the disk (a directory: its entries)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _unreadable(source: Path) -> SourcePermissionError:
    return SourcePermissionError(
        f"Cannot ingest {source}: it cannot be read (permission denied); give this user read "
        "permission on it, or ingest it as a user who has it."
    )


def _cannot_remove(source: Path, exc: OSError) -> SourcePermissionError:
    return SourcePermissionError(
        f"Cannot move {source} into the datastore: it cannot be removed from "
        f"{source.parent} ({exc.strerror or exc}); nothing was moved. Use transfer='copy', "
        "or fix the permissions of that directory."
    )


#: A repository's configuration: a store whose parent holds one is that repository's datastore.
_CONFIG = "butler.yaml"


def _not_a_directory(root: str) -> str:
    return (
        f"The datastore directory {root} is a file, not a directory; move that file away "
        "(or restore the directory from a backup) and try again."
    )


def _write_all(descriptor: int, data: bytes) -> None:
    """Write all of ``data`` to an open file descriptor."""
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view) :]


#: Errors of writing where the artifact goes (not of the source handed over): the disk,
#: the quota, a read-only or failing file system.
_TARGET_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO})


def _cannot_write(path: str, root: str, error: OSError) -> StorageError:
    """``error`` of writing the artifact ``path`` under ``root``, named (`storage_error`)."""
    return storage_error(f"Cannot write artifact {path!r} in {root}", error)
