"""The `Datastore` interface: put, get, trash and empty the trash of datasets' artifacts."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar

from .._dataset_ref import DatasetId, DatasetRef
from .._exceptions import DatabutlerError
from ..registry.interfaces import (
    DatastoreRegistryBridge,
    DatastoreRegistryBridgeManager,
    FakeDatasetRef,
)
from ..transaction import DatastoreTransaction

__all__ = ["DatasetNotStoredError", "Datastore"]


class DatasetNotStoredError(DatabutlerError, LookupError):
    """The datastore does not hold the dataset asked for."""


class Datastore(ABC):
    """Where datasets' artifacts are kept; it tells the registry through its bridge.

    Subclasses implement a handful of bulk primitives; the one-dataset forms
    here call them. A datastore reaches the registry only through the
    `DatastoreRegistryBridgeManager` it is given.

    Parameters
    ----------
    name : `str`
        The datastore's name, as recorded in the registry.
    bridge_manager : `DatastoreRegistryBridgeManager`
        The registry's bridge manager.
    """

    #: Whether the artifacts die with the process.
    is_ephemeral: ClassVar[bool] = False

    #: Transfer modes `ingest` accepts.
    transfer_modes: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, name: str, bridge_manager: DatastoreRegistryBridgeManager) -> None:
        self._bridge = bridge_manager.register(name, ephemeral=self.is_ephemeral)
        self.name = self._bridge.datastoreName
        self._bridge_manager = bridge_manager
        self._transaction: DatastoreTransaction | None = None

    @property
    def bridge(self) -> DatastoreRegistryBridge:
        """This datastore's bridge to the registry."""
        return self._bridge

    # -- transactions --------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[DatastoreTransaction]:
        """Group operations: on an error, their undo actions run newest first.

        Nested blocks hand their undo actions to the enclosing one when they
        succeed. The enclosing transaction is restored however the block
        ends (the upstream system left a dead one behind after an error).
        """
        parent = self._transaction
        self._transaction = DatastoreTransaction(parent)
        try:
            yield self._transaction
        except BaseException:
            self._transaction.rollback()
            raise
        else:
            self._transaction.commit()
        finally:
            self._transaction = parent

    # -- primitives subclasses implement ----------------------------------------

    @abstractmethod
    def put_many(self, items: Iterable[tuple[Any, DatasetRef]]) -> None:
        """Store each object as the dataset its ref names (all-or-nothing)."""
        raise NotImplementedError()

    @abstractmethod
    def get(
        self,
        ref: DatasetRef,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """The stored object (or one component of it, or a subset by ``parameters``).

        Raises
        ------
        DatasetNotStoredError
            If this datastore does not hold ``ref``.
        """
        raise NotImplementedError()

    @abstractmethod
    def knows_many(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, bool]:
        """Whether the datastore has a record of each dataset (trashed ones included)."""
        raise NotImplementedError()

    @abstractmethod
    def exists_many(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, bool]:
        """Whether each dataset is held and its artifact can be read."""
        raise NotImplementedError()

    @abstractmethod
    def emptyTrash(
        self, *, refs: Iterable[DatasetRef] | None = None, dry_run: bool = False
    ) -> list[DatasetId]:
        """Delete the artifacts of trashed datasets (only ``refs``' when given).

        Returns
        -------
        emptied : `list` [`DatasetId`]
            The datasets whose artifacts were (or, with ``dry_run``, would be) deleted.
        """
        raise NotImplementedError()

    @abstractmethod
    def _forget_artifacts(self, refs: list[DatasetRef]) -> None:
        """Drop what the datastore keeps about ``refs`` (records), keeping the artifacts."""
        raise NotImplementedError()

    # -- built on the primitives ------------------------------------------------

    def put(self, obj: Any, ref: DatasetRef) -> None:
        """Store ``obj`` as dataset ``ref``."""
        self.put_many([(obj, ref)])

    def knows(self, ref: DatasetRef) -> bool:
        """Whether the datastore has a record of ``ref``."""
        return self.knows_many([ref])[_id(ref)]

    def exists(self, ref: DatasetRef) -> bool:
        """Whether ``ref`` is held and readable."""
        return self.exists_many([ref])[_id(ref)]

    def trash(self, refs: Iterable[DatasetRef] | DatasetRef) -> None:
        """Mark datasets for deletion; `emptyTrash` deletes their artifacts later.

        Run it in the same transaction as the registry's removal of the datasets.
        """
        items = [refs] if isinstance(refs, DatasetRef) else list(refs)
        self._bridge.moveToTrash(items, self._transaction)

    def forget(self, refs: Iterable[DatasetRef] | DatasetRef) -> None:
        """Forget datasets without deleting their artifacts."""
        items = [refs] if isinstance(refs, DatasetRef) else list(refs)
        self._bridge.forget(items)
        self._forget_artifacts(items)

    def remove(self, refs: Iterable[DatasetRef] | DatasetRef) -> None:
        """Trash datasets and delete their artifacts now."""
        items = [refs] if isinstance(refs, DatasetRef) else list(refs)
        self.trash(items)
        self.emptyTrash(refs=items)


def _id(ref: DatasetRef | FakeDatasetRef) -> DatasetId:
    if ref.id is None:
        from .._exceptions import AmbiguousDatasetError

        raise AmbiguousDatasetError(f"{ref!r} has no id; resolve it through the registry first.")
    return ref.id
