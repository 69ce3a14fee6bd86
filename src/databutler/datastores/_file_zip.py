"""Zip archives in a `FileDatastore`: many small datasets in one artifact.

Each dataset in an archive has its own record with the archive's ``path``
and its ``member`` name, so the trash keeps the archive until its last
member is emptied, then deletes it like any other artifact. Members are
stored uncompressed; a local archive is opened in place (reading only its
directory and the member), a remote one is read whole.
"""

from __future__ import annotations

import io
import os
import posixpath
import uuid
import zipfile
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from .._dataset_ref import DatasetRef
from .._exceptions import InvalidArgumentError, TransferModeError
from ._base import _id
from ._file_common import (
    FileDatastoreLike,
    StoredFileInfo,
    formatter_by_suffix,
    is_direct,
)
from ._file_ingest import transfer_new
from ._storage import check_put
from .formatters import formatter_for
from .resources import InvalidPathError, LocalStore, StorageError, check_relative_path
from .templates import sanitize_value

__all__ = ["check_member_name", "ingest_zip", "put_zip", "read_member"]

#: Where archives go, under the datastore root.
ZIP_DIRECTORY = "zips"


def check_member_name(name: Any) -> str:
    """Return ``name`` if it is a safe member name: a relative path without ``#``.

    Raises
    ------
    InvalidPathError
        If it is empty, absolute, has ``..``, ``.`` or empty segments, a
        backslash, a control character or ``#``.
    """
    if isinstance(name, str) and "#" in name:
        raise InvalidPathError(
            f"Zip member name {name!r} contains '#', which separates an archive from its "
            "member in URIs; rename the member."
        )
    try:
        return check_relative_path(name)
    except InvalidPathError as exc:
        raise InvalidPathError(
            f"Zip member name {name!r} is not a safe relative path ({exc}); name members by "
            "paths inside the archive, like 'run/thing/thing_1.json'."
        ) from None


def _archive_path(name: str | None) -> str:
    if name is None:
        name = uuid.uuid4().hex
    if not isinstance(name, str) or not name or "/" in name or "#" in name or name[0] == ".":
        raise InvalidArgumentError(
            f"Zip archive name {name!r} must be a plain file name without '/', '#' or a "
            "leading '.', like 'calibs-2024'; the archive goes to zips/<name>.zip."
        )
    return check_relative_path(f"{ZIP_DIRECTORY}/{name}.zip")


def put_zip(
    datastore: FileDatastoreLike, items: Iterable[tuple[Any, DatasetRef]], *, name: str | None
) -> str:
    """`FileDatastore.put_zip`."""
    path = _archive_path(name)
    refs: list[DatasetRef] = []
    infos: list[StoredFileInfo] = []
    members: dict[str, bytes] = {}
    for given, ref in items:
        _id(ref)  # an unresolved ref fails first, saying so
        obj, _ = check_put(datastore.storage_classes, given, ref)
        formatter = datastore._formatter(ref, obj)
        data = formatter.to_bytes(obj)  # serialise before touching storage
        member = datastore._template(ref).format(ref) + formatter.extension
        if member in members:
            raise InvalidArgumentError(
                f"Dataset {_id(ref)} is given twice (or shares member {member!r} with another); "
                "give each dataset once."
            )
        members[member] = data
        refs.append(ref)
        infos.append(
            StoredFileInfo.for_ref(
                ref,
                path,
                formatter.name,
                len(data),
                data=data if datastore._checksum else None,
                member=member,
            )
        )
    if not members:
        raise InvalidArgumentError(
            "put_zip needs at least one (object, ref) pair; nothing was stored."
        )
    archive = _zip_bytes(members)
    datastore._bring_in(refs, infos, [(path, partial(datastore._write_new, path, archive))])
    return f"{datastore.store.root.rstrip('/')}/{path}"


def _zip_bytes(members: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return buffer.getvalue()


def read_member(datastore: FileDatastoreLike, path: str, member: str) -> bytes:
    """The bytes of ``member`` of the archive at ``path`` (a store path or a direct URI).

    Raises
    ------
    FileNotFoundError
        If the archive or the member is missing.
    StorageError
        If the artifact is not a readable zip archive.
    """
    source: Any
    if is_direct(path):
        source = Path(path.removeprefix("file://"))
    elif isinstance(datastore.store, LocalStore):
        source = datastore.store.local_path(path)
    else:
        source = io.BytesIO(datastore.store.read(path))
    try:
        with zipfile.ZipFile(source) as archive:
            return archive.read(member)
    except KeyError:
        raise FileNotFoundError(f"Zip archive {path!r} has no member {member!r}.") from None
    except zipfile.BadZipFile as exc:
        raise StorageError(f"Artifact {path!r} is not a readable zip archive: {exc}") from exc


def ingest_zip(
    datastore: FileDatastoreLike,
    path: str | os.PathLike[str],
    refs_by_member: Mapping[str, DatasetRef],
    *,
    transfer: str | None,
) -> None:
    """`FileDatastore.ingest_zip`."""
    source = Path(path).absolute()
    mode = _check_mode(datastore, transfer, source)
    if not refs_by_member:
        raise InvalidArgumentError(
            f"No member of {source} is given a dataset; nothing was ingested."
        )
    names = [check_member_name(m) for m in refs_by_member]
    sizes, data = _read_members(source, names, datastore._checksum)
    stored = _stored_path(datastore, source, mode)
    refs = [refs_by_member[m] for m in names]
    infos = [
        _member_info(datastore, ref, stored, m, sizes[m], data.get(m))
        for m, ref in zip(names, refs, strict=True)
    ]
    if mode in (None, "direct"):
        datastore._bring_in(refs, infos, [])
    elif mode != "move":
        create = partial(transfer_new, datastore, source, stored, mode)
        datastore._bring_in(refs, infos, [(stored, create)])
    else:
        _ingest_moving(datastore, source, stored, refs, infos)


def _ingest_moving(
    datastore: FileDatastoreLike,
    source: Path,
    stored: str,
    refs: list[DatasetRef],
    infos: list[StoredFileInfo],
) -> None:
    """Move the archive in, and back out if recording fails or the transaction is rolled back."""
    assert isinstance(datastore.store, LocalStore)
    back = partial(_move_back, datastore.store, stored, source)
    if datastore._transaction is not None:
        datastore._transaction.registerUndo("move back", back)  # runs after the put's undo
    transfer_new(datastore, source, stored, "move")
    try:
        datastore._bring_in(refs, infos, [])
    except BaseException:
        back()  # never lose the user's file
        raise


def _move_back(store: LocalStore, stored: str, original: Path) -> None:
    local = store.local_path(stored)
    if local.exists() and not original.exists():
        os.replace(local, original)


def _check_mode(datastore: FileDatastoreLike, transfer: str | None, source: Path) -> str | None:
    """The transfer mode ``transfer`` resolves to for ``source``, checked."""
    modes = datastore.abilities.transfer_modes
    if transfer not in modes:
        valid = ", ".join(sorted(str(m) for m in modes))
        raise TransferModeError(f"Unknown transfer mode {transfer!r}; use one of {valid}.")
    if not source.is_file():
        raise FileNotFoundError(f"Cannot ingest {source}: no such file.")
    store = datastore.store
    inside = isinstance(store, LocalStore) and source.is_relative_to(store.directory)
    mode = transfer if transfer != "auto" else (None if inside else "copy")
    if mode is None and not inside:
        raise TransferModeError(
            f"{source} is outside the datastore root {store.root}; choose a transfer mode "
            "(copy, move, link, ...) to bring it in."
        )
    if mode not in (None, "direct", "copy") and not isinstance(store, LocalStore):
        raise TransferModeError(f"Transfer mode {mode!r} needs a local root, not {store.root}.")
    return mode


def _read_members(
    source: Path, names: list[str], checksum: bool
) -> tuple[dict[str, int], dict[str, bytes]]:
    """Sizes of the members ``names`` of ``source`` (and their bytes when ``checksum``)."""
    try:
        with zipfile.ZipFile(source) as archive:
            present = {info.filename: info.file_size for info in archive.infolist()}
            missing = [m for m in names if m not in present]
            if missing:
                raise InvalidArgumentError(
                    f"Zip archive {source} has no member(s) {', '.join(map(repr, missing[:3]))}; "
                    f"its members are {', '.join(map(repr, list(present)[:5]))}"
                    f"{', ...' if len(present) > 5 else ''}."
                )
            data = {m: archive.read(m) for m in names} if checksum else {}
    except zipfile.BadZipFile as exc:
        raise InvalidArgumentError(
            f"{source} is not a zip archive ({exc}); give a .zip file."
        ) from exc
    return {m: present[m] for m in names}, data


def _stored_path(datastore: FileDatastoreLike, source: Path, mode: str | None) -> str:
    if mode is None:
        assert isinstance(datastore.store, LocalStore)
        return source.relative_to(datastore.store.directory).as_posix()
    if mode == "direct":
        return source.as_uri()
    stem = sanitize_value(source.stem)
    return check_relative_path(f"{ZIP_DIRECTORY}/{stem}-{uuid.uuid4().hex[:12]}.zip")


def _member_info(
    datastore: FileDatastoreLike,
    ref: DatasetRef,
    stored: str,
    member: str,
    size: int,
    data: bytes | None,
) -> StoredFileInfo:
    name = datastore._configured_formatter(ref) or formatter_by_suffix(
        posixpath.splitext(member)[1]
    )
    formatter_for(name)
    return StoredFileInfo.for_ref(ref, stored, name, size, data=data, member=member)
