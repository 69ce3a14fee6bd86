"""Trust mode of `FileDatastore`: find the artifacts of datasets that have no record.

Records can be lost, or a registry imported without them; the artifacts are
still where the file templates put them. For a dataset with no record at
all (a trashed one keeps its record, so it is never guessed back), the
artifact is looked for at its template path with the configured formatter's
extension, then with each known extension, and read by that extension.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable

from .._dataset_ref import DatasetId, DatasetRef
from ._base import _id
from ._file_common import FileDatastoreLike, StoredFileInfo, formatter_by_suffix
from .formatters import formatter_for

__all__ = ["TRUSTED_SUFFIXES", "find_untracked"]

#: Extensions looked for, in this order, after the configured formatter's
#: (``""``: a file without extension, read as bytes).
TRUSTED_SUFFIXES = (".json", ".yaml", ".pickle", ".npy", ".parquet", ".bin", "")

#: From this many datasets in one directory on, it is listed once instead
#: of probing every candidate path.
LIST_AT = 16


def find_untracked(
    datastore: FileDatastoreLike, refs: list[DatasetRef]
) -> dict[DatasetId, list[StoredFileInfo]]:
    """The artifacts found for those of ``refs`` that have no record at all.

    Returns
    -------
    found : `dict` [`DatasetId`, `list` [`StoredFileInfo`]]
        A predicted record (``file_size`` as found, no checksum) for each
        dataset whose artifact exists; the others are left out.
    """
    recorded = datastore._infos([_id(r) for r in refs])
    untracked = [r for r in refs if _id(r) not in recorded]
    candidates = {_id(r): _candidates(datastore, r) for r in untracked}
    sizes = _sizes(datastore, [path for paths in candidates.values() for path in paths])
    found: dict[DatasetId, list[StoredFileInfo]] = {}
    for ref in untracked:
        for path, formatter in candidates[_id(ref)].items():
            if path in sizes:
                name = formatter or formatter_by_suffix(posixpath.splitext(path)[1])
                info = StoredFileInfo.for_ref(ref, path, name, sizes[path])
                found[_id(ref)] = [info]
                break
    return found


def _candidates(datastore: FileDatastoreLike, ref: DatasetRef) -> dict[str, str | None]:
    """Candidate paths of ``ref``'s artifact, in order, with the formatter to read each by."""
    base = datastore._template(ref).format(ref)
    paths: dict[str, str | None] = {}
    configured = datastore._configured_formatter(ref)
    if configured is not None:
        paths[base + formatter_for(configured).extension] = configured
    for suffix in TRUSTED_SUFFIXES:
        paths.setdefault(base + suffix, None)
    return paths


def _sizes(datastore: FileDatastoreLike, paths: Iterable[str]) -> dict[str, int]:
    """Sizes of those of ``paths`` that exist: listing busy directories, probing the rest."""
    by_directory: dict[str, list[str]] = {}
    for path in paths:
        by_directory.setdefault(posixpath.dirname(path), []).append(path)
    sizes: dict[str, int] = {}
    store = datastore.store
    for directory, wanted in by_directory.items():
        if directory and len(wanted) >= LIST_AT * len(TRUSTED_SUFFIXES):
            listed = set(store.list(directory))  # one listing instead of many probes
            wanted = [p for p in wanted if p in listed]
        for path in wanted:
            try:
                sizes[path] = store.size(path)
            except FileNotFoundError:
                continue
    return sizes
