"""Where a datastore's bytes live: local directories, S3 buckets, memory."""

from __future__ import annotations

import os

from ..._exceptions import ConfigurationError
from ._base import (
    InvalidPathError,
    ResourceStore,
    StorageError,
    check_relative_path,
    file_kind,
    run_all,
    storage_error,
)
from .local import LocalStore, absent_directories, remove_empty
from .memory import MemoryStore

__all__ = [
    "InvalidPathError",
    "LocalStore",
    "MemoryStore",
    "ResourceStore",
    "StorageError",
    "absent_directories",
    "check_relative_path",
    "file_kind",
    "remove_empty",
    "run_all",
    "storage_error",
    "store_for",
]


def store_for(root: str | os.PathLike[str], *, create: bool | None = None) -> ResourceStore:
    """The store for ``root``: ``s3://bucket/prefix``, ``mem://name``, ``file:///dir`` or a path.

    Parameters
    ----------
    root : `str` or `os.PathLike`
        Where the store is.
    create : `bool`, optional
        For a local directory that is missing: make it now (`True`), or only
        when something is first written there (`False`). By default it is
        made now unless it is the datastore directory of a repository that
        exists (its parent holds a ``butler.yaml``), so that opening a
        repository whose datastore directory is gone creates nothing.

    Raises
    ------
    ConfigurationError
        For an unsupported scheme, S3 without boto3 installed, or a local
        root that is a file.
    """
    root = os.fspath(root)
    if root.startswith("s3://"):
        from .s3 import S3Store

        return S3Store(root)
    if root.startswith("mem://"):
        return MemoryStore(root[len("mem://") :] or "memory")
    if root.startswith("file://"):
        return LocalStore(root[len("file://") :], create=create)
    if "://" in root:
        scheme = root.split("://", 1)[0]
        raise ConfigurationError(
            f"Unsupported storage scheme {scheme!r} in {root!r}; use a path, file://, s3:// or mem://."
        )
    return LocalStore(root, create=create)
