"""Ingesting existing files into a file datastore, in every transfer mode, all-or-nothing.

Every file is checked and planned before anything is transferred; then the
files are transferred, then recorded (bridge and records rows together). A
failure deletes what was copied or linked and gives moved files back.

Files ingested in place are resolved first: what is recorded is the real
file, by its normalised path relative to the root; a path that resolves
outside the root, or reaches its file through a symbolic link, is refused
(`UnsafePathError`). Moves are journaled (see `_file_journal`): a process
killed in the middle leaves nothing that a later ``verify(repair=True)``
cannot give back.

Whatever the transfer mode, a source must be a regular file this process
can read (`SourceNotFoundError`, `SourcePermissionError`), and may not be one
of the repository's own files (`UnsafePathError`): databutler's files under
the datastore root (the move journal, unfinished writes), the registry's
SQLite database with its ``-wal``, ``-shm`` and ``-journal`` files, and the
``butler.yaml`` and ``registry.sqlite3*`` next to the datastore directory or
next to that database (the repository root, in the usual layout). A file a
``move`` cannot remove from its directory, or that is named twice, is refused
before anything moves.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .._dataset_ref import DatasetRef
from .._exceptions import (
    AlreadyExistsError,
    ArgumentTypeError,
    ConflictError,
    SourceFileError,
    SourceNotFoundError,
    SourcePermissionError,
    TransferModeError,
    UnsafePathError,
)
from ..registry.databases.sqlite import SQLITE_FILE_SUFFIXES
from ..registry.opaque import ByNameOpaqueTableStorage
from ._file_common import (
    NO_COMPONENT,
    FileDatastoreLike,
    StoredFileInfo,
    delete_after_failure,
    formatter_by_suffix,
)
from ._file_journal import (
    INTERNAL_PREFIX,
    MoveJournal,
    is_internal,
    journaled_paths,
    move_back,
    recover,
)
from .formatters import formatter_for
from .resources import (
    InvalidPathError,
    LocalStore,
    ResourceStore,
    absent_directories,
    check_relative_path,
    file_kind,
    remove_empty,
)

__all__ = ["ingest_files", "transfer_new"]

_LOG = logging.getLogger(__name__)


def ingest_files(
    datastore: FileDatastoreLike,
    items: Iterable[tuple[str | os.PathLike[str], DatasetRef]],
    *,
    transfer: str | None,
    formatter: str | None,
) -> None:
    """See `FileDatastore.ingest` (which has checked ``transfer`` against its abilities)."""
    local = isinstance(datastore.store, LocalStore)
    if local:
        recover(datastore)  # files an interrupted move left here go back first
    with _Downloads() as downloads:
        _ingest(datastore, items, transfer, formatter, downloads)


class _Downloads:
    """Scratch directories for the ``s3://`` sources of one ingest, made only if there are any.

    Ingesting local files makes no directory at all, so a process killed in
    the middle of one leaves nothing behind in the system's temporary folder.
    """

    def __init__(self) -> None:
        self._directory: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> _Downloads:
        return self

    def __exit__(self, *failure: object) -> None:
        if self._directory is not None:
            self._directory.cleanup()

    def new(self) -> Path:
        """A new empty directory for one download."""
        if self._directory is None:
            self._directory = tempfile.TemporaryDirectory(prefix="databutler-ingest-")
        return Path(tempfile.mkdtemp(dir=self._directory.name))


def _ingest(
    datastore: FileDatastoreLike,
    items: Iterable[tuple[str | os.PathLike[str], DatasetRef]],
    transfer: str | None,
    formatter: str | None,
    downloads: _Downloads,
) -> None:
    if transfer == "direct":
        _ingest_direct(datastore, items, formatter)
        return
    plans = []
    resolver = _Resolver(datastore)  # the root and each directory resolved once for the call
    moving: dict[Path, int] = {}
    for source, ref in items:
        path, mode, stored = _place(
            datastore,
            _local_source(datastore, source, transfer, downloads),
            ref,
            transfer,
            resolver,
        )
        if mode == "move":
            moving[path] = moving.get(path, 0) + 1
        name = formatter or datastore._configured_formatter(ref) or formatter_by_suffix(path.suffix)
        formatter_for(name)
        data = path.read_bytes() if datastore._checksum else None
        plans.append((path, ref, mode, stored, name, data))
    _refuse_moving_twice(moving)
    _check_targets(datastore, plans)
    written: list[str] = []
    moved: list[tuple[str, Path]] = []
    refs = [ref for _, ref, _, _, _, _ in plans]
    recorded: list[DatasetRef] = []  # filled only once this call has recorded them
    transaction = datastore._transaction
    if transaction is not None:
        transaction.registerUndo("ingest", datastore._undo_put, recorded, written)
    journal = None
    made = _absent_directories(datastore.store, plans)  # to remove again after a failure
    moves = [(path, stored) for path, _, mode, stored, _, _ in plans if mode == "move"]
    if moves:
        assert isinstance(datastore.store, LocalStore)
        journal = MoveJournal.begin(datastore.store, moves)  # durable before the first move
        datastore._crash_point("journal_written")
        if transaction is not None:
            transaction.registerUndo(
                "ingest moves", _give_back, datastore, moved, journal, made=made
            )
    try:
        infos = []
        for path, ref, mode, stored, name, data in plans:
            size = path.stat().st_size
            if mode not in (None, "direct"):
                assert mode is not None
                transfer_new(datastore, path, stored, mode)
                if mode == "move":
                    moved.append((stored, path))
                    datastore._crash_point("moved")
                else:
                    written.append(stored)
            infos.append(StoredFileInfo.for_ref(ref, stored, name, size, data=data))
        datastore._crash_point("after_write")
        datastore._record(refs, infos)
        recorded.extend(refs)
        datastore._crash_point("recorded")
    except BaseException as failure:
        delete_after_failure(datastore.store, written, failure)
        if journal is not None:
            _give_back(datastore, moved, journal, failure)
        if not moved:  # every file is back (and any journal gone): so go the new directories
            remove_empty(made)
        raise
    if journal is not None:
        if transaction is None:
            journal.finish()
        else:  # the moves hold only once the enclosing transaction commits
            transaction.register_commit(partial(_finish_after_commit, datastore, journal))


def _ingest_direct(
    datastore: FileDatastoreLike,
    items: Iterable[tuple[str | os.PathLike[str], DatasetRef]],
    formatter: str | None,
) -> None:
    """Record files as they are (``direct``), many at a time: the bulk path of `_place`.

    The same checks and the same recorded paths as `_place` gives a ``direct``
    ingest (the directories resolved, the file's own name kept; a file that
    really is inside the datastore root refused), with each directory and the
    root resolved once per call, containment compared on the resolved strings,
    and the file itself resolved only when it is a symbolic link. Nothing is
    written but the records: the files are never deleted by databutler.
    """
    resolver = _Resolver(datastore)
    checked: set[str] = set()
    unused = _Downloads()  # never makes a directory: an s3:// source is refused for ``direct``
    records = datastore.records
    # A registry's records table takes plain rows (no StoredFileInfo, no dictionary a row);
    # recorded checksums need the file read, and go the general way.
    lean = isinstance(records, ByNameOpaqueTableStorage) and not datastore._checksum
    infos = []
    rows: list[tuple[str, str, str, str, None, int, str]] = []
    refs = []
    for source, ref in items:
        given = os.fspath(_local_source(datastore, source, "direct", unused))
        stored, size = resolver.direct(given)
        name = formatter or datastore._configured_formatter(ref)
        if name is None:
            name = formatter_by_suffix(os.path.splitext(stored)[1])
        if name not in checked:
            formatter_for(name)
            checked.add(name)
        if lean:
            # The columns of `StoredFileInfo.for_ref` (whole dataset, no checksum).
            rows.append((NO_COMPONENT, stored, name, ref.datasetType.storageClass, None, size, ""))
        else:
            data = Path(stored).read_bytes() if datastore._checksum else None
            infos.append(StoredFileInfo.for_ref(ref, stored, name, size, data=data))
        refs.append(ref)
    recorded: list[DatasetRef] = []  # filled only once this call has recorded them
    transaction = datastore._transaction
    if transaction is not None:
        transaction.registerUndo("ingest", datastore._undo_put, recorded, [])
    datastore._crash_point("after_write")
    if lean:
        assert isinstance(records, ByNameOpaqueTableStorage)
        with records.database.transaction():  # the bridge's and the records' rows together
            datastore.bridge.insert(refs)
            records.insert_by_id([ref.id for ref in refs], _RECORD_COLUMNS, rows)
    else:
        datastore._record(refs, infos)
    recorded.extend(refs)
    datastore._crash_point("recorded")


#: The records columns `_ingest_direct` writes besides ``dataset_id``.
_RECORD_COLUMNS = (
    "component",
    "path",
    "formatter",
    "storage_class",
    "checksum",
    "file_size",
    "member",
)


class _Resolver:
    """Resolves files to record in place for one ingest: each directory once, strings only."""

    def __init__(self, datastore: FileDatastoreLike) -> None:
        self.datastore = datastore
        self.cwd = os.getcwd()
        store = datastore.store
        self.real_root: str | None = None
        if isinstance(store, LocalStore):
            self.real_root = os.path.realpath(store.directory)
        self.directories: dict[str, str] = {}
        self.own = _repository_files(datastore)

    def refuse_own(self, given: str, path: str, real: str) -> None:
        """Refuse the file ``given`` (at ``path``, really at ``real``) if it is one of the
        repository's own files: databutler's under the root, the registry, ``butler.yaml``.

        Raises
        ------
        UnsafePathError
            Naming the file and what it is.
        """
        what = None
        if path in self.own or real in self.own:
            what = self.own.get(path) or self.own[real]
        elif self.real_root is not None and self.inside(real) and real != self.real_root:
            relative = real[len(self.real_root) :].lstrip("/")
            name = relative.rpartition("/")[2]
            if is_internal(relative) or (name.startswith(".") and name.endswith(".tmp")):
                what = (
                    f"one of databutler's own files in datastore {self.datastore.name!r} (a "
                    "journal, an unfinished write, or a repository's configuration or registry)"
                )
        if what is not None:
            raise UnsafePathError(
                f"{given} is {what}, not a dataset; it cannot be ingested (in any transfer "
                "mode: moving or linking it would damage the repository). Ingest a copy of "
                "the data under another name if that is what you mean."
            )

    def inside(self, real: str) -> bool:
        """Whether the resolved path ``real`` is the root or inside it."""
        return self.real_root is not None and _within(real, self.real_root)

    def _resolve(self, directory: str) -> str:
        """``os.path.realpath(directory)``, from its parent's when that is known already:
        one `os.lstat` for a directory that is not a link (siblings share the parent)."""
        parent, name = os.path.split(directory)
        resolved = None
        if name not in ("", ".", "..") and parent != directory:
            real_parent = self.directories.get(parent)
            if real_parent is not None:
                candidate = os.path.join(real_parent, name)
                status = file_status(os.lstat, candidate)
                if status is not None and stat.S_ISDIR(status.st_mode):
                    resolved = candidate  # a real directory, no link: nothing to follow
        if resolved is None:
            resolved = os.path.realpath(directory)
            if parent != directory and parent not in self.directories:
                self.directories[parent] = os.path.realpath(parent)
        if len(self.directories) > _DIRECTORIES:
            self.directories.clear()
        self.directories[directory] = resolved
        return resolved

    def direct(self, given: str) -> tuple[str, int]:
        """The path to record for ``given`` ingested ``direct``, and the file's size."""
        if not given:
            raise InvalidPathError(f"A file to ingest must be a non-empty path, not {given!r}.")
        absolute = given if given.startswith("/") else os.path.join(self.cwd, given)
        path, real, size = self.file(given, absolute)
        if self.inside(real):
            self.refuse_own(given, path, real)
            raise _inside_root(given, self.datastore, "direct")
        if path in self.own or real in self.own:
            self.refuse_own(given, path, real)
        return path, size

    def file(self, given: str, absolute: str) -> tuple[str, str, int]:
        """The regular file at ``absolute`` (``given`` made absolute) as the kernel sees it:
        its path with every directory resolved and its own name kept, where it really is
        (resolved too when it is itself a link), and its size.

        Raises
        ------
        SourceNotFoundError
            If no regular file is there (naming ``given`` and what is there).
        SourcePermissionError
            If it cannot be read, or its directory cannot be searched.
        SourceFileError
            If its name is too long, or looking at it fails otherwise.
        """
        try:
            # os.path.split and os.path.join, without their work where the plain string
            # operations give the same (a directory not ending in a slash, a name).
            directory, _, name = absolute.rpartition("/")
            if not directory or directory.endswith("/"):
                directory, name = os.path.split(absolute)
            real_directory = self.directories.get(directory)
            if real_directory is None:
                real_directory = self._resolve(directory)
            if not name:
                path = real_directory
            elif real_directory.endswith("/"):
                path = real_directory + name
            else:
                path = f"{real_directory}/{name}"
            status = file_status(os.lstat, path)
            real = path
            if status is not None and stat.S_ISLNK(status.st_mode):
                real = os.path.realpath(path)  # the file itself is a link: where does it lead?
                status = file_status(os.stat, path)
        except OSError as exc:
            raise _unusable(given, exc) from None
        if status is None or not stat.S_ISREG(status.st_mode):
            raise SourceNotFoundError(
                f"Cannot ingest {given}: no such file ({_not_a_file(path, status)}); give the "
                "path of a regular file."
            )
        if not os.access(path, os.R_OK):
            raise SourcePermissionError(
                f"Cannot ingest {given}: it cannot be read (permission denied); give this user "
                "read permission on it, or ingest it as a user who has it."
            )
        return path, real, status.st_size


def _not_a_file(path: str, status: os.stat_result | None) -> str:
    """What is at ``path`` instead of a regular file (``status``: `os.stat` of it, if any)."""
    if status is None:
        try:
            linked = stat.S_ISLNK(os.lstat(path).st_mode)
        except OSError as exc:
            if exc.errno == errno.ENOTDIR:
                return "a directory on its path is a file"
            return "nothing is there"
        if linked:
            return "it is a symbolic link that leads to no file: dangling, or a loop"
        return "nothing is there"
    if stat.S_ISDIR(status.st_mode):
        return "it is a directory: ingest the files in it one by one"
    return f"it is {file_kind(status.st_mode)}, not a regular file"


def _unusable(given: str, exc: OSError) -> SourceFileError:
    """The error for a file to ingest that could not be looked at (``exc``)."""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return SourcePermissionError(
            f"Cannot ingest {given}: a directory on its path cannot be searched (permission "
            "denied); give this user access to it, or ingest it as a user who has it."
        )
    if exc.errno == errno.ENAMETOOLONG:
        return SourceFileError(
            f"Cannot ingest {given}: its name (or a name on its path) is too long for the file "
            "system; rename it to a shorter name."
        )
    return SourceFileError(f"Cannot ingest {given}: {exc.strerror or exc}; check the path.")


def _repository_files(datastore: FileDatastoreLike) -> dict[str, str]:
    """The repository's own files outside databutler's directory, by resolved path: what each is.

    The datastore does not know its repository's root; it knows its own root
    and its registry's database. The repository root is the parent of the
    datastore directory (the default layout) or the directory of the SQLite
    registry (its default place): a ``butler.yaml`` and ``registry.sqlite3*``
    there are the repository's. The registry database itself, with its
    companions, is refused wherever it is.
    """
    own: dict[str, str] = {}
    directories = []
    store = datastore.store
    if isinstance(store, LocalStore):
        directories.append(os.path.dirname(os.path.realpath(store.directory)))
        directories.append(os.path.realpath(os.path.dirname(os.path.abspath(store.directory))))
    database = _registry_file(datastore)
    if database is not None:
        real = os.path.realpath(database)
        for suffix in SQLITE_FILE_SUFFIXES:
            own[real + suffix] = "the registry database of this repository (or its SQLite log)"
        directories.append(os.path.dirname(real))
    for directory in directories:
        own.setdefault(
            os.path.join(directory, "butler.yaml"), "the configuration of this repository"
        )
        for suffix in SQLITE_FILE_SUFFIXES:
            own.setdefault(
                os.path.join(directory, f"registry.sqlite3{suffix}"),
                "the registry database of this repository (or its SQLite log)",
            )
    return own


def _registry_file(datastore: FileDatastoreLike) -> str | None:
    """The SQLite file of the registry that holds the datastore's records, if that is one."""
    records = datastore.records
    if not isinstance(records, ByNameOpaqueTableStorage):
        return None
    database = records.database
    if database.dialect_name != "sqlite":
        return None
    import sqlalchemy

    path = sqlalchemy.engine.make_url(str(database)).database
    if not path or path == ":memory:":
        return None
    return os.path.abspath(path)


def _refuse_moving_twice(moving: dict[Path, int]) -> None:
    """Refuse a ``move`` of a file named more than once (its first move would take it)."""
    twice = [path for path, count in moving.items() if count > 1]
    if twice:
        path = twice[0]
        raise TransferModeError(
            f"{path} is given for {moving[path]} datasets, and transfer='move' can move it "
            "only once. Use transfer='copy' (each dataset gets its own copy), or give it "
            "once; datasets can share one file ingested in place (transfer=None, for a file "
            "inside the datastore root) or with transfer='direct'."
        )


def _absent_directories(store: ResourceStore, plans: list[Any]) -> list[Path]:
    """The directories of a local store that ``plans`` would write into (their artifacts',
    a move journal's, the root) and that are not there yet, deepest first."""
    if not isinstance(store, LocalStore):
        return []
    root = store.directory
    wanted = {root / INTERNAL_PREFIX / "journal"}  # as `MoveJournal.begin` makes it
    wanted.update(
        (root / stored).parent for _, _, mode, stored, _, _ in plans if mode not in (None, "direct")
    )
    return absent_directories(root, wanted)


def _inside_root(given: str, datastore: FileDatastoreLike, mode: str) -> UnsafePathError:
    """The refusal of a file inside the datastore root for a mode that would link to it."""
    return UnsafePathError(
        f"{given} is inside the root of datastore {datastore.name!r}; transfer={mode!r} "
        "would make an artifact that deleting another dataset can break. Ingest it in "
        "place (transfer=None) or use transfer='copy'."
    )


#: How many resolved directories one ingest keeps.
_DIRECTORIES = 100_000

#: What `os.stat` fails with for a path that is no file (as `pathlib.Path.is_file` treats it).
_NO_FILE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})


def file_status(call: Callable[[str], os.stat_result], path: str) -> os.stat_result | None:
    """``call(path)`` (`os.stat` or `os.lstat`), or None where there is no such file."""
    try:
        return call(path)
    except OSError as exc:
        if exc.errno in _NO_FILE:
            return None
        raise


def _finish_after_commit(datastore: FileDatastoreLike, journal: MoveJournal) -> None:
    datastore._crash_point("committed")
    journal.finish()


def _local_source(
    datastore: FileDatastoreLike,
    source: str | os.PathLike[str],
    transfer: str | None,
    downloads: _Downloads,
) -> str | os.PathLike[str]:
    """``source`` as a local path: ``file://`` URIs decoded, ``s3://`` objects downloaded.

    Raises
    ------
    InvalidPathError
        For another scheme, a ``file://`` URI of another host, or an ``s3://``
        source with a transfer mode other than ``auto`` or ``copy``.
    FileNotFoundError
        If the S3 object does not exist.
    """
    try:
        given = os.fspath(source)
    except TypeError:
        raise ArgumentTypeError(
            f"A file to ingest is a path or a URI string, not {type(source).__name__}."
        ) from None
    if not isinstance(given, str):
        raise ArgumentTypeError(f"A file to ingest is a path or a URI string, not {given!r}.")
    try:
        if not given.isascii():  # ASCII always encodes
            os.fsencode(given)  # names the file system cannot hold fail here, not deep inside
    except UnicodeEncodeError:
        raise InvalidPathError(
            f"File name {given!r} is not valid text (a lone surrogate); rename the file."
        ) from None
    if not given or "\x00" in given:
        raise InvalidPathError(f"{given!r} is not a file name: it is empty or has a NUL character.")
    if "://" not in given:
        return given
    scheme = given.partition("://")[0].lower()
    if scheme == "file":
        parts = urlsplit(given)
        if parts.netloc not in ("", "localhost"):
            raise InvalidPathError(
                f"{given} names a file on host {parts.netloc!r}; give a file:/// URI or a path "
                "of this machine."
            )
        return unquote(parts.path)
    if scheme != "s3":
        raise InvalidPathError(
            f"Cannot ingest {given}: scheme {scheme!r} is not supported; give a path, a "
            "file:// or an s3:// URI."
        )
    if transfer not in ("auto", "copy"):
        raise TransferModeError(
            f"Cannot ingest {given} with transfer={transfer!r}: objects on S3 are copied in; "
            "use transfer='copy' (or 'auto')."
        )
    from .resources.s3 import S3Store

    parent, _, name = given.rstrip("/").rpartition("/")
    if not name or parent == "s3:/":
        raise InvalidPathError(f"{given} names no object; give s3://bucket/key.")
    client = datastore.store._client if isinstance(datastore.store, S3Store) else None
    local = downloads.new() / name
    local.write_bytes(S3Store(parent, client=client).read(name))
    return local


def _give_back(
    datastore: FileDatastoreLike,
    moved: list[tuple[str, Path]],
    journal: MoveJournal,
    failure: BaseException | None = None,
    made: list[Path] | None = None,
) -> None:
    """Move the files this ingest moved in back where they were: never lose one.

    The journal goes only when every file is back; otherwise it stays for
    `recover` (the next ingest, or ``verify(repair=True)``). Then the
    directories the ingest made (``made``, see `_absent_directories`) go too,
    those left empty: an ingest undone by its transaction leaves none behind.
    """
    assert isinstance(datastore.store, LocalStore)
    left = []
    for stored, original in moved:
        problem = move_back(datastore.store, os.fspath(original), stored)
        if problem is not None:
            left.append((stored, original))
            message = f"Could not move {stored!r} back to {original}: {problem}"
            if failure is not None:
                failure.add_note(message)
            _LOG.warning("%s", message)
    moved[:] = left
    if left:
        journal.release()
    else:
        journal.finish()
        remove_empty(made or [])


def _place(
    datastore: FileDatastoreLike,
    source: str | os.PathLike[str],
    ref: DatasetRef,
    transfer: str | None,
    resolver: _Resolver,
) -> tuple[Path, str | None, str]:
    """The checked source file, the transfer mode used for it and the path to record.

    In-place ingests (``None``, or ``auto`` for a file inside the root) are
    resolved, so that what is recorded is the real file inside the root,
    named by its normalised relative path; one that resolves outside the
    root or reaches its file through a symbolic link is refused, because
    purging the dataset would delete the file the link leads to. Paths are
    strings until the end (``resolver`` resolves the root and each directory
    once a call; the file itself only when it is a symbolic link).
    """
    given = os.fspath(source)
    if not isinstance(given, str) or not given:
        raise InvalidPathError(f"A file to ingest must be a non-empty path, not {source!r}.")
    absolute = os.path.join(resolver.cwd, given)
    # As the kernel sees it: every directory resolved (".." after a link included),
    # the file's own name kept.
    path, real, _ = resolver.file(given, absolute)
    resolver.refuse_own(given, path, real)
    store = datastore.store
    local_root = os.fspath(store.directory) if isinstance(store, LocalStore) else None
    inside_real = resolver.inside(real)
    lexical = os.path.normpath(absolute)  # ".." collapsed by name only
    inside_name = local_root is not None and (
        _within(lexical, local_root)
        or (resolver.real_root is not None and _within(lexical, resolver.real_root))
    )
    mode = transfer
    if transfer == "auto":
        mode = None if (inside_real or inside_name) else "copy"
    if mode is None:
        stored = _in_place_path(datastore, given, Path(lexical), Path(real), inside_real)
        return Path(path), None, stored
    if mode not in ("direct", "copy") and local_root is None:
        raise TransferModeError(
            f"Transfer mode {mode!r} needs a local root, not {store.root}; use "
            "transfer='copy' (or 'direct' to leave the file where it is)."
        )
    if inside_real and mode in ("direct", "symlink", "relsymlink"):
        raise _inside_root(given, datastore, mode)
    if mode == "move" and real != path:  # the file itself is a symbolic link
        raise TransferModeError(
            f"Cannot move {given} into datastore {datastore.name!r}: it is a symbolic link "
            f"(to {real}), so the datastore would hold the link, not the data, and the file it "
            "leads to could change or go (a relative link would lead nowhere from there). "
            "Nothing was moved. Use transfer='copy' (the link and its file stay), or move "
            "the file it leads to."
        )
    if mode == "move" and not os.access(os.path.dirname(path), os.W_OK | os.X_OK):
        raise SourcePermissionError(
            f"Cannot move {given} into datastore {datastore.name!r}: it cannot be removed "
            f"from {os.path.dirname(path)} (this user may not write that directory); "
            "nothing was moved. Use transfer='copy', or fix the permissions of that directory."
        )
    if mode == "direct":
        return Path(path), mode, path
    return Path(path), mode, datastore._template(ref).format(ref) + _suffix(path)


def _within(path: str, root: str) -> bool:
    """Whether the normalised absolute ``path`` is ``root`` or below it (by name)."""
    return path == root or path.startswith(root if root.endswith("/") else root + "/")


def _suffix(path: str) -> str:
    """``pathlib.PurePath(path).suffix``, of a string."""
    name = path.rpartition("/")[2]
    i = name.rfind(".")
    return name[i:] if 0 < i < len(name) - 1 else ""


def _in_place_path(
    datastore: FileDatastoreLike, given: str, lexical: Path, real: Path, inside_real: bool
) -> str:
    """The normalised path, relative to the root, of a file ingested in place."""
    store = datastore.store
    if not isinstance(store, LocalStore):
        raise UnsafePathError(
            f"{given} cannot be ingested in place: datastore {datastore.name!r} is at "
            f"{store.root}, not on local disk; use transfer='copy'."
        )
    real_root = Path(os.path.realpath(store.directory))
    if not inside_real:
        raise UnsafePathError(
            f"{given} resolves to {real}, outside the datastore root {real_root} "
            f"({datastore.name!r}); use transfer='copy', 'move' or 'direct' to bring it in."
        )
    relative = real.relative_to(real_root)
    named = [
        lexical.relative_to(r) for r in (store.directory, real_root) if lexical.is_relative_to(r)
    ]
    if relative not in named:
        raise UnsafePathError(
            f"{given} reaches its file {real} through a symbolic link; a dataset recorded "
            "there could later delete a file it does not own. Give the real path, or use "
            "transfer='copy', 'move' or 'direct'."
        )
    stored = relative.as_posix()
    try:
        check_relative_path(stored)
    except InvalidPathError as exc:
        raise UnsafePathError(
            f"{given} cannot be recorded as an artifact path ({exc}); rename it, or use "
            "transfer='copy' or 'move'."
        ) from None
    if is_internal(stored) or (real.name.startswith(".") and real.name.endswith(".tmp")):
        raise UnsafePathError(
            f"{given} is one of databutler's own files (a journal, an unfinished write, or a "
            "repository's configuration or registry), not a dataset; it cannot be ingested."
        )
    if len(stored) > _MAX_PATH:
        raise UnsafePathError(
            f"{given} has a path of {len(stored)} characters inside the datastore root; at "
            f"most {_MAX_PATH} can be recorded. Use transfer='copy' or 'move'."
        )
    return stored


#: Longest artifact path the records table holds.
_MAX_PATH = 1024


def _check_targets(datastore: FileDatastoreLike, plans: list[Any]) -> None:
    """Refuse, before anything moves, plans that would use one path twice or steal an artifact."""
    seen: dict[str, Path] = {}
    for path, _, mode, stored, _, _ in plans:
        if mode in (None, "direct"):
            continue
        if stored in seen and seen[stored] != path:
            raise ConflictError(
                f"Files {seen[stored]} and {path} would both be stored at {stored!r} in "
                f"datastore {datastore.name!r}; check the file template: it must give each "
                "dataset its own path."
            )
        seen[stored] = path
    movers = [path for path, _, mode, _, _, _ in plans if mode == "move"]
    if movers and isinstance(datastore.store, LocalStore):
        real_root = Path(os.path.realpath(datastore.store.directory))
        inside = {
            Path(os.path.realpath(p)).relative_to(real_root).as_posix(): p
            for p in movers
            if Path(os.path.realpath(p)).is_relative_to(real_root)
        }
        taken = {row["path"] for row in datastore.records.fetch(path=list(inside))}
        if taken:
            first = sorted(taken)[0]
            raise ConflictError(
                f"{inside[first]} is the artifact of a dataset of datastore "
                f"{datastore.name!r}; moving it would take it away. Use transfer='copy'."
            )


def transfer_new(datastore: FileDatastoreLike, source: Path, stored: str, mode: str) -> None:
    """Transfer ``source`` to ``stored``; an artifact there that no record uses is replaced."""
    for attempt in range(2):
        try:
            if isinstance(datastore.store, LocalStore):
                datastore.store.ingest(source, stored, mode)
            else:  # only "copy" reaches a remote store
                datastore.store.write(stored, source.read_bytes())
            return
        except FileExistsError:
            if attempt or next(datastore.records.fetch(path=stored), None) is not None:
                raise
            if stored in journaled_paths(datastore.store):
                raise AlreadyExistsError(
                    f"{stored!r} in datastore {datastore.name!r} holds a file an interrupted "
                    "ingest(transfer='move') left; run verify(repair=True) (databutler verify "
                    "--repair) to move it back first."
                ) from None
            # Left by an ingest that died between transferring and recording.
            datastore.store.delete(stored)
