"""Ingesting existing files into a file datastore, in every transfer mode, all-or-nothing.

Every file is checked and planned before anything is transferred; then the
files are transferred, then recorded (bridge and records rows together). A
failure deletes what was copied or linked and gives moved files back.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .._dataset_ref import DatasetRef
from ._base import _id
from .formatters import formatter_for
from .resources import LocalStore

if TYPE_CHECKING:
    from .file import FileDatastore

__all__ = ["ingest_files", "transfer_new"]


def ingest_files(
    datastore: FileDatastore,
    items: Iterable[tuple[str | os.PathLike[str], DatasetRef]],
    *,
    transfer: str | None,
    formatter: str | None,
) -> None:
    """See `FileDatastore.ingest`."""
    from .file import (
        NO_COMPONENT,
        StoredFileInfo,
        _crash_point,
        _delete_after_failure,
        _formatter_by_suffix,
    )

    modes = {None, "auto", "direct", *datastore.transfer_modes}
    if transfer not in modes:
        valid = ", ".join(sorted(str(m) for m in modes))
        raise ValueError(f"Unknown transfer mode {transfer!r}; use one of {valid}.")
    local_root = datastore.store.directory if isinstance(datastore.store, LocalStore) else None
    plans = []
    for source, ref in items:
        path = Path(source).absolute()
        if not path.is_file():
            raise FileNotFoundError(f"Cannot ingest {path}: no such file.")
        inside = local_root is not None and path.is_relative_to(local_root)
        mode = transfer if transfer != "auto" else (None if inside else "copy")
        if mode is None and not inside:
            raise ValueError(
                f"{path} is outside the datastore root {datastore.store.root}; choose a transfer "
                "mode (copy, move, link, ...) to bring it in."
            )
        if mode not in (None, "direct", "copy") and not isinstance(datastore.store, LocalStore):
            raise ValueError(
                f"Transfer mode {mode!r} needs a local root, not {datastore.store.root}."
            )
        name = (
            formatter or datastore._configured_formatter(ref) or _formatter_by_suffix(path.suffix)
        )
        formatter_for(name)
        if mode is None:
            assert local_root is not None
            stored = path.relative_to(local_root).as_posix()
        elif mode == "direct":
            stored = path.as_uri()
        else:
            stored = datastore._template(ref).format(ref) + path.suffix
        data = path.read_bytes() if datastore._checksum else None
        plans.append((path, ref, mode, stored, name, data))
    written: list[str] = []
    moved: list[tuple[str, Path]] = []
    refs = [ref for _, ref, _, _, _, _ in plans]
    recorded: list[DatasetRef] = []  # filled only once this call has recorded them
    if datastore._transaction is not None:
        datastore._transaction.registerUndo("ingest", datastore._undo_put, recorded, written)
    try:
        infos = []
        for path, ref, mode, stored, name, data in plans:
            size = path.stat().st_size
            if mode not in (None, "direct"):
                assert mode is not None
                transfer_new(datastore, path, stored, mode)
                if mode == "move":
                    moved.append((stored, path))
                else:
                    written.append(stored)
            infos.append(
                StoredFileInfo(
                    dataset_id=_id(ref),
                    component=NO_COMPONENT,
                    path=stored,
                    formatter=name,
                    storage_class=str(getattr(ref.datasetType, "storageClass", "")),
                    checksum=hashlib.sha256(data).hexdigest() if data is not None else None,
                    file_size=size,
                )
            )
        _crash_point("after_write")
        datastore._record(refs, infos)
        recorded.extend(refs)
    except BaseException as failure:
        _delete_after_failure(datastore.store, written, failure)
        for stored, original in moved:  # give moved files back: never lose one
            assert isinstance(datastore.store, LocalStore)
            os.replace(datastore.store.local_path(stored), original)
        raise


def transfer_new(datastore: FileDatastore, source: Path, stored: str, mode: str) -> None:
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
            # Left by an ingest that died between transferring and recording.
            datastore.store.delete(stored)
