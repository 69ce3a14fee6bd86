"""`FileDataset`: one file (a local path or a URI) and the datasets it holds."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from ._dataset_ref import DatasetRef, UnresolvedRef
from ._exceptions import ArgumentTypeError, InvalidArgumentError

__all__ = ["FileDataset"]


@dataclass(frozen=True, slots=True)
class FileDataset:
    """One file holding one or more datasets, as `export` writes and ``ingest`` reads them.

    Parameters
    ----------
    path : `str` or `os.PathLike`
        The file: a path (relative to an export directory, or absolute) or a
        URI (``file:///...``, ``s3://...``; ``...zip#member`` for a member of
        a zip archive).
    refs : `list` [`DatasetRef` or `UnresolvedRef`]
        The datasets the file holds (more than one when they share it):
        resolved `DatasetRef` objects keep their ids when ingested (as an
        export lists them); `UnresolvedRef` objects (a dataset type, a data
        ID, optionally a run) are registered by ingest with new ids.
    formatter : `str`, optional
        Name of the formatter that reads the file (``json``, ``npy``, ...);
        `None` to choose by the file extension.

    Raises
    ------
    ArgumentTypeError
        If ``path`` is not a string or path, ``refs`` is not a list (`None`, a
        string, a number) or holds something other than `DatasetRef` or
        `UnresolvedRef` objects (also a `TypeError`).
    ValueError
        If ``path`` is empty or ``refs`` is empty.
    """

    path: str
    refs: list[DatasetRef | UnresolvedRef]
    formatter: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.path, str | os.PathLike):
            raise ArgumentTypeError(
                f"FileDataset path must be a string or path, not {type(self.path).__name__}."
            )
        path = os.fspath(self.path)
        if not isinstance(path, str) or not path:
            raise InvalidArgumentError("FileDataset path must be a non-empty string.")
        if isinstance(self.refs, DatasetRef | UnresolvedRef):
            refs = [self.refs]
        elif isinstance(self.refs, str | bytes) or not isinstance(self.refs, Iterable):
            raise ArgumentTypeError(
                f"FileDataset {path!r} refs must be a list of DatasetRef or UnresolvedRef "
                f"objects (or one of them), not {type(self.refs).__name__}; give the datasets "
                "the file holds."
            )
        else:
            refs = list(self.refs)
        if not refs:
            raise InvalidArgumentError(
                f"FileDataset {path!r} has no refs; give the datasets the file holds."
            )
        bad = [type(r).__name__ for r in refs if not isinstance(r, DatasetRef | UnresolvedRef)]
        if bad:
            raise ArgumentTypeError(
                f"FileDataset {path!r} refs must be DatasetRef or UnresolvedRef objects, got "
                f"{', '.join(bad[:3])}."
            )
        object.__setattr__(self, "path", path)
        object.__setattr__(self, "refs", refs)
