"""`InMemoryDatastore`: objects kept in this process, for tests and pipelines."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._dataset_ref import DatasetId, DatasetRef
from .._exceptions import ConflictError, InvalidArgumentError
from ..registry.interfaces import DatasetIdRef, DatastoreRegistryBridgeManager
from ..storage_classes import StorageClassRegistry
from ._base import DatasetNotStoredError, Datastore, DatastoreAbilities, _id
from ._storage import DatasetReader, check_put, read_dataset

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
        is stored; ``False`` returns the stored objects themselves (unless a
        read converts them or applies parameters).
    storage_classes : `StorageClassRegistry`, optional
        The storage classes it knows; the shipped defaults when not given.

    Notes
    -----
    ``put`` checks (or converts) each object against its storage class, as a
    file datastore does, and ``get`` converts, applies parameters and
    computes derived components in memory. There are no files:
    `retrieve_artifacts` and `export` write each object serialised by its
    storage class's formatter (for an unknown storage class, the one its
    type calls for: `formatter_for_object`) at the default file template's
    path (``<run>/<type>/<type>_<id>.<ext>``); `get_uris` gives ``mem://`` URIs.
    """

    def __init__(
        self,
        name: str,
        bridge_manager: DatastoreRegistryBridgeManager,
        *,
        copy_on_get: bool = True,
        storage_classes: StorageClassRegistry | None = None,
    ) -> None:
        super().__init__(name, bridge_manager, abilities=ABILITIES, storage_classes=storage_classes)
        #: Each dataset's object and the storage class it was put as.
        self._objects: dict[DatasetId, tuple[Any, str]] = {}
        self._lock = threading.Lock()
        self._copy_on_get = copy_on_get

    def put_many(self, items: Iterable[tuple[Any, DatasetRef]]) -> None:
        # docstring inherited
        stored = [
            (
                _id(ref),
                ref,
                (
                    copy.deepcopy(check_put(self.storage_classes, obj, ref)[0]),
                    ref.datasetType.storageClass,
                ),
            )
            for obj, ref in items
        ]
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
        obj, stored_as = self._objects[dataset_id]

        def legacy(component: str | None, parameters: Mapping[str, Any] | None) -> Any:
            if parameters:
                raise InvalidArgumentError(
                    f"InMemoryDatastore supports no read parameters for a dataset of storage "
                    f"class {stored_as!r} (one it does not know), got {sorted(parameters)}."
                )
            return obj if component is None else _component(obj, component)

        reader = DatasetReader(whole=lambda _: obj, legacy=legacy)
        result = read_dataset(
            self.storage_classes,
            reader,
            stored_as=stored_as,
            ref=ref,
            component=component,
            parameters=parameters,
        )
        return copy.deepcopy(result) if self._copy_on_get else result

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
    raise InvalidArgumentError(
        f"Stored object of type {type(obj).__name__} has no component {component!r}."
    )
