"""The datastore contract over a datastore databutler knows nothing about.

`JsonDirectoryDatastore` is written here as a third party would write one, on
the public `Datastore` base class only; the whole suite runs over it through
the one ``backend`` fixture, as the docstring of `databutler.testing.datastore`
describes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from databutler import ConflictError, DatasetId, DatasetRef
from databutler.datastores import DatasetNotStoredError, Datastore, DatastoreAbilities
from databutler.registry.interfaces import DatasetIdRef, DatastoreRegistryBridgeManager
from databutler.testing.datastore import DatastoreBackend, DatastoreTests


def _dataset_id(ref: DatasetRef | DatasetIdRef) -> DatasetId:
    return ref.id


class JsonDirectoryDatastore(Datastore):
    """Each dataset as ``<id>.json`` in one directory; JSON files are ingested by copying."""

    def __init__(
        self, name: str, bridge_manager: DatastoreRegistryBridgeManager, directory: Path
    ) -> None:
        abilities = DatastoreAbilities(
            supports_ingest=True, transfer_modes=frozenset({"auto", "copy"})
        )
        super().__init__(name, bridge_manager, abilities=abilities)
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def ingest(
        self,
        items: Iterable[tuple[str | os.PathLike[str], DatasetRef]],
        *,
        transfer: str | None = "auto",
        formatter: str | None = None,
    ) -> None:
        self._check_ingest(transfer)  # the declared transfer modes only
        self.put_many((json.loads(Path(source).read_text()), ref) for source, ref in items)

    def _path(self, dataset_id: DatasetId) -> Path:
        return self.directory / f"{dataset_id}.json"

    def put_many(self, items: Iterable[tuple[Any, DatasetRef]]) -> None:
        prepared = [(ref, json.dumps(obj).encode()) for obj, ref in items]
        taken = [ref for ref, _ in prepared if self._path(_dataset_id(ref)).exists()]
        if taken:
            raise ConflictError(f"{self.name} holds {taken[0]} already.")
        written: list[Path] = []
        refs = [ref for ref, _ in prepared]
        if self._transaction is not None:
            self._transaction.registerUndo("put", self._undo_put, refs, written)
        try:
            for ref, data in prepared:
                path = self._path(_dataset_id(ref))
                path.write_bytes(data)
                written.append(path)
            self.bridge.insert(refs)
        except BaseException:
            self._delete(written)
            raise

    def _undo_put(self, refs: list[DatasetRef], written: list[Path]) -> None:
        self.bridge.forget(refs)
        self._delete(written)

    def _delete(self, paths: Iterable[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)

    def get(
        self,
        ref: DatasetRef,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        dataset_id = _dataset_id(ref)
        if not self.bridge.check([dataset_id]):
            raise DatasetNotStoredError(f"{self.name} does not hold {ref}.")
        obj = json.loads(self._path(dataset_id).read_text())
        return obj if component is None else obj[component]

    def knows_many(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, bool]:
        return {_dataset_id(r): self._path(_dataset_id(r)).exists() for r in refs}

    def exists_many(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, bool]:
        ids = [_dataset_id(r) for r in refs]
        held = self.bridge.check(ids)
        return {i: i in held and self._path(i).exists() for i in ids}

    def get_uris(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, str]:
        held = self.exists_many(refs)
        return {i: self._path(i).as_uri() for i, found in held.items() if found}

    def empty_trash(
        self, *, refs: Iterable[DatasetIdRef] | None = None, dry_run: bool = False
    ) -> list[DatasetId]:
        selected = None if refs is None else [_dataset_id(r) for r in refs]
        with self.bridge.emptyTrash(selected_ids=selected, dry_run=dry_run) as (pairs, _):
            emptied = [_dataset_id(ref) for ref, _info in pairs]
        if not dry_run:
            self._delete(self._path(i) for i in emptied)
        return emptied

    def _forget_artifacts(self, refs: Sequence[DatasetIdRef]) -> None:
        self._delete(self._path(_dataset_id(r)) for r in refs)


def _files(datastore: JsonDirectoryDatastore) -> Mapping[str, Collection[Any]]:
    return {"files": sorted(p.name for p in datastore.directory.iterdir())}


class TestJsonDirectoryDatastore(DatastoreTests):
    @pytest.fixture
    def backend(self, tmp_path: Path) -> DatastoreBackend[JsonDirectoryDatastore]:
        return DatastoreBackend(
            make=lambda bridges, place: JsonDirectoryDatastore("json", bridges, tmp_path / place),
            backdoor=_files,
        )
