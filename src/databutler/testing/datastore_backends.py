"""Backdoors of the built-in datastores, for `~databutler.testing.datastore.DatastoreTests`.

Each reads what one kind of datastore holds without asking it: the files of
a `FileDatastore` and the rows of its records table, the objects of an
`InMemoryDatastore`, and, for a `ChainedDatastore`, its children's, each by
the backdoor of its kind.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from ..datastores import ChainedDatastore, FileDatastore, InMemoryDatastore

__all__ = ["chained_backdoor", "file_backdoor", "memory_backdoor"]

#: What a backdoor returns: collections of what a datastore holds, by kind.
Found = Mapping[str, Collection[Any]]


def file_backdoor(datastore: FileDatastore) -> Found:
    """The artifacts under the datastore's root and the rows of its records table."""
    return {"files": list(datastore.store.list()), "records": list(datastore.records.fetch())}


def memory_backdoor(datastore: InMemoryDatastore) -> Found:
    """The ids of the objects the datastore keeps."""
    return {"objects": list(datastore._objects)}


def chained_backdoor(*children: Callable[[Any], Found]) -> Callable[[ChainedDatastore], Found]:
    """The backdoor of a chain whose children, in order, are read by ``children``.

    What each child holds is keyed ``<child name>:<kind>``.
    """

    def read(chain: ChainedDatastore) -> Found:
        found: dict[str, Collection[Any]] = {}
        for child, backdoor in zip(chain.children, children, strict=True):
            found.update({f"{child.name}:{kind}": v for kind, v in backdoor(child).items()})
        return found

    return read
