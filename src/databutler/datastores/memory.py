"""`InMemoryDatastore`: objects kept in this process, for tests and pipelines."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._dataset_ref import DatasetId, DatasetRef
from .._exceptions import ConflictError
from ..registry.interfaces import DatasetIdRef, DatastoreRegistryBridgeManager
from ._base import DatasetNotStoredError, Datastore, DatastoreAbilities, _id

__all__ = ["ABILITIES", "InMemoryDatastore"]

#: What every `InMemoryDatastore` can do: its objects die with the process; no ingest.
ABILITIES = DatastoreAbilities(ephemeral=True, supports_ingest=False)


class InMemoryDatastore(Datastore):
    """Keeps objects in memory; its bridge is ephemeral, so `findDatastores` reports it.

    Parameters
    ----------
    name : `str`
        The datastore's name.
    bridge_manager : `DatastoreRegistryBridgeManager`
        The registry's bridge manager.
    copy_on_get : `bool`, optional
        Return copies from `get` (the default), so callers cannot change what
        is stored; ``False`` returns the stored objects themselves.

    Notes
    -----
    There are no files: `retrieve_artifacts` and `export` write each object
    serialised by the formatter its type calls for (`formatter_for_object`:
    JSON for plain data, ``.npy`` for arrays, Parquet for tables, bytes as
    they are, pickle for anything else) at the default file template's path
    (``<run>/<type>/<type>_<id>.<ext>``); `get_uris` gives ``mem://`` URIs.
    """

    def __init__(
        self, name: str, bridge_manager: DatastoreRegistryBridgeManager, *, copy_on_get: bool = True
    ) -> None:
        super().__init__(name, bridge_manager, abilities=ABILITIES)
        self._objects: dict[DatasetId, Any] = {}
        self._lock = threading.Lock()
        self._copy_on_get = copy_on_get

    def put_many(self, items: Iterable[tuple[Any, DatasetRef]]) -> None:
        # docstring inherited
        stored = [(_id(ref), ref, copy.deepcopy(obj)) for obj, ref in items]
        with self._lock:
            taken = [str(i) for i, _, _ in stored if i in self._objects]
            if taken:
                raise ConflictError(
                    f"Datastore {self.name!r} holds dataset(s) {', '.join(taken[:3])} already."
                )
            for dataset_id, _, obj in stored:
                self._objects[dataset_id] = obj
        ids = [i for i, _, _ in stored]
        try:
            self.bridge.insert(ref for _, ref, _ in stored)
        except BaseException:
            self._drop(ids)
            raise
        if self._transaction is not None:
            self._transaction.registerUndo("put", self._undo_put, [ref for _, ref, _ in stored])

    def _undo_put(self, refs: list[DatasetRef]) -> None:
        self.bridge.forget(refs)
        self._drop([_id(r) for r in refs])

    def _drop(self, ids: Iterable[DatasetId]) -> None:
        with self._lock:
            for dataset_id in ids:
                self._objects.pop(dataset_id, None)

    def get(
        self,
        ref: DatasetRef,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        # docstring inherited
        dataset_id = _id(ref)
        if not self.bridge.check([dataset_id]):
            raise DatasetNotStoredError(f"Datastore {self.name!r} does not hold {ref}.")
        obj = self._objects[dataset_id]
        if component is not None:
            obj = _component(obj, component)
        if parameters:
            raise ValueError(
                f"InMemoryDatastore supports no read parameters, got {sorted(parameters)}."
            )
        return copy.deepcopy(obj) if self._copy_on_get else obj

    def knows_many(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, bool]:
        # docstring inherited
        return {_id(r): _id(r) in self._objects for r in refs}

    def exists_many(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, bool]:
        # docstring inherited
        ids = [_id(r) for r in refs]
        held = self.bridge.check(ids)
        return {i: i in held and i in self._objects for i in ids}

    def get_uris(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, str]:
        # docstring inherited; ``mem://<datastore name>/<dataset id>``.
        held = self.exists_many(refs)
        return {i: f"mem://{self.name}/{i}" for i, found in held.items() if found}

    def empty_trash(
        self, *, refs: Iterable[DatasetIdRef] | None = None, dry_run: bool = False
    ) -> list[DatasetId]:
        # docstring inherited
        selected = None if refs is None else [_id(r) for r in refs]
        emptied: list[DatasetId] = []
        with self.bridge.emptyTrash(selected_ids=selected, dry_run=dry_run) as (pairs, _):
            for ref, _info in pairs:
                emptied.append(_id(ref))
        if not dry_run:
            self._drop(emptied)
        return emptied

    def _forget_artifacts(self, refs: Sequence[DatasetIdRef]) -> None:
        # docstring inherited; memory has no artifact to keep apart from the
        # object itself, which forgetting drops.
        self._drop(_id(r) for r in refs)


def _component(obj: Any, component: str) -> Any:
    if isinstance(obj, Mapping) and component in obj:
        return obj[component]
    if hasattr(obj, component):
        return getattr(obj, component)
    raise ValueError(f"Stored object of type {type(obj).__name__} has no component {component!r}.")
