"""Artifacts leaving a datastore: what `retrieve_artifacts` and `export` write to local disk.

A datastore describes each artifact it holds as an `Artifact` (the datasets
in it, a relative path in the datastore's layout, its URI, its formatter and
how to read it); `write_local` puts a batch of them under a directory,
all-or-nothing: each is written to a temporary name first and renamed into
place only once every one has been written.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .._dataset_ref import DatasetRef
from .._exceptions import (
    AlreadyExistsError,
    ArgumentTypeError,
    ArtifactCorruptedError,
    DatabutlerError,
    InvalidArgumentError,
    TransferModeError,
    UnsafePathError,
)
from ._errors import DatasetNotStoredError
from .resources import (
    absent_directories,
    check_relative_path,
    file_kind,
    remove_empty,
    storage_error,
)

__all__ = [
    "RETRIEVE_MODES",
    "Artifact",
    "check_destination",
    "check_retrieve_mode",
    "check_sizes",
    "corrupted",
    "write_local",
]

#: Transfer modes of `write_local` (``auto`` is ``copy``).
RETRIEVE_MODES = frozenset({"auto", "copy", "link", "hardlink", "symlink", "relsymlink"})


@dataclass(frozen=True, slots=True)
class Artifact:
    """One artifact of a datastore, as seen from outside it.

    Attributes
    ----------
    refs : `tuple` [`DatasetRef`, ...]
        The datasets it holds (several when they share it).
    path : `str`
        Relative POSIX path in the datastore's layout (a zip member's name
        for a member of a zip archive).
    uri : `str`
        Where it is (``file:///...``, ``s3://...``, ``...zip#member``, ``mem://...``).
    formatter : `str`
        Name of the formatter that reads it.
    read : `~collections.abc.Callable` [[], `bytes`]
        Reads its content.
    local : `pathlib.Path` or `None`
        The local file holding exactly its content, which link modes link
        to; `None` for artifacts not on local disk and for zip members.
    extracted : `bool`
        Whether it is a member of an archive: always copied out, since no
        link can point inside a zip.
    size : `int`
        The recorded size of ``local`` in bytes, -1 when unknown; a copy or
        link of ``local`` of another size is refused (`read` checks itself).
    checksum : `str` or `None`
        The recorded SHA-256 of ``local``, checked likewise when not `None`.
    """

    refs: tuple[DatasetRef, ...]
    path: str
    uri: str
    formatter: str
    read: Callable[[], bytes]
    local: Path | None = None
    extracted: bool = False
    size: int = -1
    checksum: str | None = None


def corrupted(what: str, uri: str, detail: str) -> ArtifactCorruptedError:
    """The error for an artifact whose bytes differ from its record.

    Parameters
    ----------
    what : `str`
        The dataset(s) it holds, as the message should name them.
    uri : `str`
        Where the artifact is.
    detail : `str`
        What differs (``"recorded 10 bytes, found 4"``).
    """
    return ArtifactCorruptedError(
        f"The artifact {uri} of {what} is corrupted ({detail}); its bytes were not used. "
        "`databutler verify --checksums` (butler.verify(checksums=True)) lists every damaged "
        "artifact; verify --repair cannot restore altered bytes: put the original file back "
        "from a copy, or remove the dataset (prune --purge) and put or ingest it again."
    )


def check_retrieve_mode(transfer: str, artifacts: Sequence[Artifact]) -> None:
    """Refuse an unknown mode, or a link mode for an artifact that is not a local file.

    Raises
    ------
    ValueError
        Naming the mode (or artifact) and what to use instead.
    """
    if transfer not in RETRIEVE_MODES:
        valid = ", ".join(sorted(RETRIEVE_MODES))
        raise TransferModeError(
            f"Unknown transfer mode {transfer!r} for copying artifacts out of a datastore; "
            f"use one of {valid} (artifacts are never moved out of a datastore)."
        )
    if transfer in ("auto", "copy"):
        return
    for artifact in artifacts:
        if artifact.local is None and not artifact.extracted:
            raise TransferModeError(
                f"Transfer mode {transfer!r} links to local files, but artifact {artifact.uri} "
                "is not on local disk; use transfer='copy'."
            )


def check_destination(destination: object) -> None:
    """Refuse a destination that is not a path, before anything is read or written.

    Raises
    ------
    ArgumentTypeError
        If ``destination`` is not a `str` or `os.PathLike` (a `None` or a number).
    InvalidArgumentError
        If it contains a NUL character.
    """
    if isinstance(destination, os.PathLike):
        destination = os.fspath(destination)
    if not isinstance(destination, str):
        raise ArgumentTypeError(
            f"The destination must be a directory path (a str or pathlib.Path), not "
            f"{type(destination).__name__} {destination!r}."
        )
    if "\x00" in destination:
        raise InvalidArgumentError(
            f"The destination {destination!r} contains a NUL character, which no file name "
            "can hold; give a directory path without it."
        )


def write_local(
    destination: str | os.PathLike[str],
    placed: Sequence[tuple[str, Artifact]],
    *,
    transfer: str,
    overwrite: bool,
    forbidden: Sequence[Path] = (),
) -> list[Path]:
    """Write artifacts under ``destination`` at the given relative paths, all-or-nothing.

    Parameters
    ----------
    destination : `str` or `os.PathLike`
        A directory (created when missing).
    placed : `~collections.abc.Sequence` [`tuple` [`str`, `Artifact`]]
        Relative path under ``destination`` and the artifact to write there.
    transfer : `str`
        One of `RETRIEVE_MODES`.
    overwrite : `bool`
        Replace existing files instead of refusing.
    forbidden : `~collections.abc.Sequence` [`pathlib.Path`], optional
        Directories no target may resolve into (the datastore's own roots).

    Returns
    -------
    paths : `list` [`pathlib.Path`]
        The files written, in the order given.

    Raises
    ------
    UnsafePathError
        If a target resolves (through links) into a ``forbidden`` directory,
        or onto the very file it would be written from; nothing is written.
    AlreadyExistsError
        If ``destination``, or a directory a target needs, is a file (or a
        link to nothing), or a target exists and ``overwrite`` is false (or
        is a directory); nothing is written.
    DatasetNotStoredError
        If an artifact on local disk is missing (or a link to nothing);
        nothing is written.
    ArtifactCorruptedError
        If an artifact on local disk is not a regular file (a directory, a
        named pipe, a device), or differs from its record.
    InvalidArgumentError
        If two artifacts would go to the same path, or ``destination``
        contains a NUL character.
    TransferModeError
        For a bad mode.
    StorageError
        If a write fails (a full disk, a read-only file system), with the
        ``errno``; what was written is removed as below.

    Notes
    -----
    Everything is checked before anything is written; a failure while
    writing removes what this call wrote (and the directories it made), so
    that ``destination`` is left as it was, but for files ``overwrite``
    replaced already.
    """
    check_destination(destination)
    check_retrieve_mode(transfer, [artifact for _, artifact in placed])
    root = Path(destination).absolute()
    _check_outside(root, root, forbidden)
    _check_directories(root, [root])
    targets = _targets(root, placed, overwrite)
    _check_directories(root, [target.parent for target in targets])
    for target, (_, artifact) in zip(targets, placed, strict=True):
        _check_outside(root, target, forbidden)
        _check_not_source(target, artifact)
        _check_source(artifact)
    created = absent_directories(root, [target.parent for target in targets])
    temporaries: list[Path] = []
    done: list[Path] = []
    target = root
    try:
        for target, (_, artifact) in zip(targets, placed, strict=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
            temporaries.append(temporary)
            _produce(artifact, temporary, target, transfer)
        for temporary, target in zip(temporaries, targets, strict=True):
            os.replace(temporary, target)
            done.append(target)
    except BaseException as error:
        for path in temporaries:
            path.unlink(missing_ok=True)
        if not overwrite:  # files placed before the failure were new: take them away again
            for path in done:
                path.unlink(missing_ok=True)
        remove_empty(created)
        if isinstance(error, OSError) and not isinstance(error, DatabutlerError):
            # A full disk, a quota, a read-only file system: said with the file and the fix.
            raise storage_error(f"Cannot write {target}", error) from error
        raise
    return targets


def _targets(root: Path, placed: Sequence[tuple[str, Artifact]], overwrite: bool) -> list[Path]:
    """The absolute targets, checked to be distinct and (unless ``overwrite``) new."""
    targets: list[Path] = []
    seen: dict[Path, str] = {}
    for relative, artifact in placed:
        target = root / check_relative_path(relative)
        if target in seen:
            raise InvalidArgumentError(
                f"Artifacts {seen[target]} and {artifact.uri} would both be written to "
                f"{target}; keep the datastore's paths (preserve_path=True) to tell them apart."
            )
        seen[target] = artifact.uri
        targets.append(target)
    if not overwrite:
        existing = [str(t) for t in targets if t.exists() or t.is_symlink()]
        if existing:
            more = f" and {len(existing) - 3} more" if len(existing) > 3 else ""
            raise AlreadyExistsError(
                f"{', '.join(existing[:3])}{more} exist(s) already; nothing was written. "
                "Pass overwrite=True (--overwrite on the command line) to replace them, or "
                "choose another destination."
            )
    for target in targets:
        if target.is_dir() and not target.is_symlink():
            raise AlreadyExistsError(
                f"{target} is a directory, where an artifact would be written; overwrite=True "
                "replaces files only. Nothing was written; remove or rename that directory, "
                "or choose another destination."
            )
    return targets


def _check_directories(root: Path, directories: Sequence[Path]) -> None:
    """Refuse ``directories`` (``root`` or below it) if one, or a directory above one, is
    something else than a directory: a file, a link to nothing; a stat each, before any write."""
    checked: set[Path] = set()
    for directory in directories:
        for path in [directory, *directory.parents]:
            if path in checked:
                break  # it and the directories above it are checked already
            checked.add(path)
            try:
                mode = os.stat(path).st_mode
            except (FileNotFoundError, NotADirectoryError):
                if not os.path.islink(path):
                    continue  # made when writing, unless a file above it is found
                problem = "a symbolic link to nothing"
            else:
                if stat.S_ISDIR(mode):
                    break
                problem = file_kind(mode)
            where = f"The destination {root}" if path == root else f"{path}, on the way to {root},"
            raise AlreadyExistsError(
                f"{where} is {problem}, not a directory; nothing was written. Remove or rename "
                "it, or give a directory to write the artifacts into (or a path where one can "
                "be made)."
            )


def _check_source(artifact: Artifact) -> None:
    """Refuse an artifact on local disk that is missing, or not a regular file (a named
    pipe would block a read, a device never end one): a stat, before anything is written."""
    local = artifact.local
    if local is None:
        return
    what = ", ".join(str(ref) for ref in artifact.refs[:3]) or "a dataset"
    try:
        mode = os.stat(local).st_mode
    except (FileNotFoundError, NotADirectoryError):
        dangling = " (a symbolic link to nothing)" if os.path.islink(local) else ""
        raise DatasetNotStoredError(
            f"The artifact {artifact.uri} of {what} is missing{dangling}: the datastore has a "
            "record of it, but no file. Nothing was written. Put the file back from a copy, "
            "or let `databutler verify --repair` (butler.verify(repair=True)) forget the "
            "datasets whose artifacts are missing."
        ) from None
    if not stat.S_ISREG(mode):
        raise corrupted(what, artifact.uri, f"it is {file_kind(mode)}, not a regular file")


def _check_outside(destination: Path, target: Path, forbidden: Sequence[Path]) -> None:
    """Refuse ``target`` if it resolves, through any link, into a ``forbidden`` directory."""
    resolved = _where(target) if target != destination else Path(os.path.realpath(target))
    for directory in forbidden:
        root = Path(os.path.realpath(directory))
        if resolved == root or resolved.is_relative_to(root):
            where = "is" if target == destination else f"would write {target}, which is"
            raise UnsafePathError(
                f"Destination {destination} {where} inside the datastore root {directory}: "
                "copying or linking artifacts there would replace the repository's own files. "
                "Nothing was written; choose a directory outside the repository."
            )


def _check_not_source(target: Path, artifact: Artifact) -> None:
    """Refuse a target that is the very file the artifact would be copied or linked from."""
    if artifact.local is None:
        return
    # Another name for the same inode (a hard link made earlier) is harmless to replace.
    if _where(target) == Path(os.path.realpath(artifact.local)):
        raise UnsafePathError(
            f"Target {target} is the artifact {artifact.uri} itself: writing it would make the "
            "file point at (or overwrite) itself. Nothing was written; choose another destination."
        )


def _where(target: Path) -> Path:
    """Where writing to ``target`` lands: its directory resolved, its own name kept.

    ``os.replace`` onto a symbolic link replaces the link, not what it points at.
    """
    return Path(os.path.realpath(target.parent)) / target.name


def _produce(artifact: Artifact, temporary: Path, target: Path, transfer: str) -> None:
    """Make ``temporary`` hold (or link to) ``artifact``; ``target`` is its final name."""
    local = artifact.local
    if transfer in ("auto", "copy") or local is None:
        if local is not None:
            shutil.copyfile(local, temporary)
            _check_copy(artifact, temporary)
        else:
            temporary.write_bytes(artifact.read())
        return
    _check_copy(artifact, local)  # a link to an altered file would hand it out as well
    source = local.resolve()  # a link to a link points at the original
    if transfer == "hardlink":
        os.link(source, temporary)
    elif transfer == "symlink":
        os.symlink(source, temporary)
    elif transfer == "relsymlink":
        os.symlink(os.path.relpath(source, target.parent), temporary)
    else:  # link: a hard link where the file system allows one, else a symbolic link
        try:
            os.link(source, temporary)
        except OSError:
            os.symlink(source, temporary)


def check_sizes(artifacts: Sequence[Artifact]) -> None:
    """Refuse artifacts on local disk whose size differs from their record.

    For exports that point at the artifacts where they are (``transfer=None``):
    a stat each, no read. Artifacts not on local disk are not checked here.

    Raises
    ------
    ArtifactCorruptedError
        Naming the dataset(s) and the artifact.
    """
    for artifact in artifacts:
        if artifact.local is not None and artifact.size >= 0:
            _check_copy(replace(artifact, checksum=None), artifact.local)


def _check_copy(artifact: Artifact, path: Path) -> None:
    """Refuse ``path`` (a copy of ``artifact.local``, or that file) unless it is as recorded."""
    what = ", ".join(str(ref) for ref in artifact.refs[:3]) or "a dataset"
    if artifact.size >= 0:
        found = path.stat().st_size
        if found != artifact.size:
            raise corrupted(what, artifact.uri, f"recorded {artifact.size} bytes, found {found}")
    if artifact.checksum is not None:
        digest = hashlib.sha256()
        with path.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != artifact.checksum:
            raise corrupted(
                what, artifact.uri, "its SHA-256 checksum differs from the recorded one"
            )
