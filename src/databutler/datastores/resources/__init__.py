"""Where a datastore's bytes live: local directories, S3 buckets, memory."""

from __future__ import annotations

import os

from ..._exceptions import ConfigurationError
from ._base import InvalidPathError, ResourceStore, StorageError, check_relative_path, run_all
from .local import LocalStore
from .memory import MemoryStore

__all__ = [
    "InvalidPathError",
    "LocalStore",
    "MemoryStore",
    "ResourceStore",
    "StorageError",
    "check_relative_path",
    "run_all",
    "store_for",
]


def store_for(root: str | os.PathLike[str]) -> ResourceStore:
    """The store for ``root``: ``s3://bucket/prefix``, ``mem://name``, ``file:///dir`` or a path.

    Raises
    ------
    ConfigurationError
        For an unsupported scheme, or S3 without boto3 installed.
    """
    root = os.fspath(root)
    if root.startswith("s3://"):
        from .s3 import S3Store

        return S3Store(root)
    if root.startswith("mem://"):
        return MemoryStore(root[len("mem://") :] or "memory")
    if root.startswith("file://"):
        return LocalStore(root[len("file://") :])
    if "://" in root:
        scheme = root.split("://", 1)[0]
        raise ConfigurationError(
            f"Unsupported storage scheme {scheme!r} in {root!r}; use a path, file://, s3:// or mem://."
        )
    return LocalStore(root)
