"""Type checks of the arguments of the public methods of `Butler` and `SqlRegistry`, before
anything is changed.

Each helper checks one kind of argument and returns it in the form the
method goes on with (an iterable of refs becomes a list, read once), or
raises `~databutler.ArgumentTypeError` (a `TypeError` and a
`~databutler.DatabutlerError`, so that the command line tells it from a bug)
naming the argument, what it must be, and what it got:
``refs must be DatasetRef objects (from put or a query), got int 1``.

Values are checked by type only: whether a name, data ID or ``where``
expression is valid is for the registry to say. A path is also refused when no file
system could hold it (a NUL character, a name over 255 bytes): the operating system's
error would name neither the argument nor the fix.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable, Mapping
from typing import Any

from ._collection_type import CollectionType
from ._dataset_ref import DatasetRef
from ._dataset_type import DatasetType
from ._exceptions import ArgumentTypeError, InvalidArgumentError
from ._file_dataset import FileDataset
from .dimensions import DataCoordinate

__all__ = [
    "merged_data_id",
    "path_problem",
    "require_bool",
    "require_collection_types",
    "require_collections",
    "require_data_id",
    "require_data_ids",
    "require_dataset",
    "require_file_datasets",
    "require_mapping",
    "require_path",
    "require_put_items",
    "require_refs",
    "require_seconds",
    "require_str",
    "require_strs",
    "require_timestamp",
    "require_type",
]

_REF_HINT = "DatasetRef objects (from put or a query)"


def describe(value: object) -> str:
    """``int 1``: the type and a short repr, for a message."""
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{type(value).__name__} {shown}"


def _refuse(name: str, what: str, value: object) -> ArgumentTypeError:
    return ArgumentTypeError(f"{name} must be {what}, got {describe(value)}.")


def require_str(value: object, name: str, *, optional: bool = False) -> Any:
    """``value`` if it is a `str` (or `None` when ``optional``)."""
    if isinstance(value, str) or (optional and value is None):
        return value
    raise _refuse(name, "a string" + (" or None" if optional else ""), value)


def require_bool(value: object, name: str, *, optional: bool = False) -> Any:
    """``value`` if it is a `bool` (or `None` when ``optional``); ``1`` is not ``True``."""
    if isinstance(value, bool) or (optional and value is None):
        return value
    raise _refuse(name, "True or False" + (" or None" if optional else ""), value)


def require_type(value: object, name: str, types: type | tuple[type, ...], what: str) -> Any:
    """``value`` if it is an instance of ``types``; ``what`` says it in words."""
    if isinstance(value, types):
        return value
    raise _refuse(name, what, value)


def require_path(
    value: object, name: str, *, optional: bool = False, what: str = "a path", holdable: bool = True
) -> Any:
    """``value`` if it is a path (`str` or `os.PathLike` of `str`), or `None` when ``optional``.

    ``what`` names the kind of path in the message (``"a directory path"``). With
    ``holdable``, a path no file system can hold (see `path_problem`) is an
    `InvalidArgumentError`; a caller that checks the text itself passes `False`.
    """
    if optional and value is None:
        return value
    text = os.fspath(value) if isinstance(value, os.PathLike) else value
    if not isinstance(text, str):
        raise _refuse(
            name, f"{what} (a str or pathlib.Path)" + (" or None" if optional else ""), value
        )
    problem = path_problem(text) if holdable else None
    if problem is not None:
        raise InvalidArgumentError(f"{name} {problem}.")
    return value


#: The most bytes a file system takes in one name, and in a whole path (Linux).
NAME_MAX = 255
PATH_MAX = 4095


def path_problem(text: str) -> str | None:
    """Why no file system can hold the path ``text``, as ``"<the path> <why>; <fix>"``, or
    `None`: a NUL anywhere; locally, a name of more than `NAME_MAX` bytes or a path of
    more than `PATH_MAX` (an S3 key's parts have no such limit)."""
    shown = repr(text) if len(text) <= 80 else f"{text[:60]!r}... ({len(text)} characters)"
    if "\0" in text:
        return f"{shown} contains a NUL character, which no path can hold; remove it"
    if "://" in text and not text.startswith("file://"):
        return None
    encoded = os.fsencode(text)
    long = next((part for part in encoded.split(b"/") if len(part) > NAME_MAX), None)
    if long is not None:
        return (
            f"{shown} has a name of {len(long)} bytes, and a file system takes at most "
            f"{NAME_MAX} in one name; shorten it"
        )
    if len(encoded) > PATH_MAX:
        return (
            f"{shown} is {len(encoded)} bytes long, and a path holds at most {PATH_MAX}; shorten it"
        )
    return None


def require_seconds(value: object, name: str) -> float:
    """``value`` as a finite number of seconds, 0 or more (an `int` or a `float`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _refuse(name, "a number of seconds (0 or more)", value)
    try:
        seconds = float(value)
    except OverflowError:  # an int too large for a float
        seconds = float("inf")
    if not 0 <= seconds < float("inf"):  # NaN fails both
        raise InvalidArgumentError(f"{name} must be a number of seconds, 0 or more, not {value!r}.")
    return seconds


def require_mapping(value: object, name: str, *, optional: bool = True) -> Any:
    """``value`` if it is a `~collections.abc.Mapping` with `str` keys (or `None`)."""
    if optional and value is None:
        return value
    if not isinstance(value, Mapping):
        raise _refuse(name, "a mapping (dict)" + (" or None" if optional else ""), value)
    bad = next((key for key in value if not isinstance(key, str)), None)
    if bad is not None:
        raise ArgumentTypeError(f"{name} must have string keys, got key {describe(bad)}.")
    return value


def require_data_id(value: object, name: str = "data_id") -> Any:
    """A data ID: a mapping from dimension names to values, a `DataCoordinate`, or `None`."""
    if isinstance(value, DataCoordinate):
        return value
    return require_mapping(value, name)


def merged_data_id(
    value: object, keywords: Mapping[str, Any], name: str = "data_id"
) -> dict[str, Any]:
    """A data ID (checked by `require_data_id`) with the keyword values added; they win."""
    return dict(require_data_id(value, name) or {}, **keywords)


def require_data_ids(value: object, name: str = "dataIds", *, optional: bool = False) -> Any:
    """Data IDs (mappings or `DataCoordinate` objects) from an iterable, as a list (`None`
    when ``optional``)."""
    if optional and value is None:
        return None
    items = _items(value, name, "an iterable of data IDs (mappings of dimension names to values)")
    for item in items:
        if not isinstance(item, Mapping | DataCoordinate):
            raise _refuse(name, "data IDs (mappings of dimension names to values)", item)
    return items


def _items(value: object, name: str, what: str) -> list[Any]:
    """The items of an iterable (read once), refusing strings, bytes and mappings."""
    if isinstance(value, (str, bytes, bytearray, Mapping)) or not isinstance(value, Iterable):
        raise _refuse(name, what, value)
    return list(value)


def require_refs(value: object, name: str = "refs") -> list[DatasetRef]:
    """An iterable of `DatasetRef`, as a list."""
    if isinstance(value, DatasetRef):
        raise ArgumentTypeError(f"{name} must be an iterable of {_REF_HINT}; pass [ref] for one.")
    refs = _items(value, name, f"an iterable of {_REF_HINT}")
    for ref in refs:
        if not isinstance(ref, DatasetRef):
            raise ArgumentTypeError(f"{name} must be {_REF_HINT}, got {describe(ref)}.")
    return refs


def require_strs(value: object, name: str, *, optional: bool = False) -> Any:
    """An iterable of `str` as a list; one `str` is a list of itself (`None` when ``optional``)."""
    if optional and value is None:
        return value
    if isinstance(value, str):
        return [value]
    items = _items(value, name, "a string or an iterable of strings")
    for item in items:
        if not isinstance(item, str):
            raise ArgumentTypeError(f"{name} must be strings, got {describe(item)}.")
    return items


def require_collections(value: object, name: str = "collections") -> Any:
    """Collections to search: `None`, one name (kept a `str`), or an iterable of names."""
    if value is None or isinstance(value, str):
        return value
    return tuple(require_strs(value, name))


def require_collection_types(value: object, name: str = "types") -> Any:
    """Collection types: `None`, one `CollectionType`, or an iterable of them (a list then)."""
    if value is None:
        return value
    if isinstance(value, CollectionType):
        return [value]
    what = "a CollectionType or an iterable of CollectionType values"
    types = _items(value, name, what)
    for item in types:
        if not isinstance(item, CollectionType):
            raise ArgumentTypeError(f"{name} must be CollectionType values, got {describe(item)}.")
    return types


def require_dataset(value: object, name: str = "dataset") -> Any:
    """A dataset: a `DatasetRef`, or a dataset type (its name or a `DatasetType`)."""
    return require_type(
        value,
        name,
        (str, DatasetType, DatasetRef),
        "a DatasetRef, a DatasetType or a dataset type name",
    )


def require_timestamp(value: object, name: str) -> Any:
    """A `datetime.datetime` or `None` (unbounded)."""
    return require_type(value, name, (datetime.datetime, type(None)), "a datetime.datetime or None")


def require_put_items(value: object, name: str = "items") -> list[tuple[Any, Any, Any]]:
    """``(obj, dataset type or ref, data ID)`` triples, as a list."""
    what = "an iterable of (obj, dataset type or DatasetRef, data ID) tuples"
    items = _items(value, name, what)
    for item in items:
        if not isinstance(item, (tuple, list)) or len(item) != 3:
            raise ArgumentTypeError(
                f"Each of {name} must be a tuple (obj, dataset, data_id), got {describe(item)}."
            )
        require_dataset(item[1], f"the dataset of each of {name}")
        require_data_id(item[2], f"the data ID of each of {name}")
    return items


def require_file_datasets(value: tuple[Any, ...], name: str = "datasets") -> tuple[Any, ...]:
    """Each positional argument a `FileDataset`."""
    for item in value:
        if not isinstance(item, FileDataset):
            raise ArgumentTypeError(
                f"{name} must be FileDataset objects (a file and the datasets it holds), "
                f"got {describe(item)}."
            )
    return value
