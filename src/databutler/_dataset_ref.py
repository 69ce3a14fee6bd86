"""Dataset identifiers and references: pure values, no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from ._dataset_type import DatasetType, StorageClass
from ._exceptions import AmbiguousDatasetError, ArgumentTypeError, InvalidDatasetIdError

if TYPE_CHECKING:
    from .dimensions import DataCoordinate

__all__ = ["DatasetId", "DatasetRef", "UnresolvedRef", "require_dataset_id"]

DatasetId: TypeAlias = uuid.UUID
"""A dataset's identity: a `uuid.UUID`, unique across repositories."""


def require_dataset_id(ref: Any) -> DatasetId:
    """Return ``ref.id``, checked to be a `uuid.UUID`.

    Parameters
    ----------
    ref : `DatasetRef` or `FakeDatasetRef` or any object with ``id``
        The reference to read.

    Raises
    ------
    AmbiguousDatasetError
        If ``ref`` is an `UnresolvedRef`, or ``ref.id`` is `None`.
    InvalidDatasetIdError
        If ``ref`` has no ``id`` or it is not a `uuid.UUID`.
    """
    if isinstance(ref, UnresolvedRef):
        raise AmbiguousDatasetError(
            f"{ref!r} has no id: it is ingest input the registry has not resolved; "
            "pass the DatasetRef that ingest (or a query) returned."
        )
    try:
        value = ref.id
    except AttributeError:
        raise InvalidDatasetIdError(
            f"Expected a dataset reference with an 'id' attribute, got {ref!r} "
            f"({type(ref).__name__}); pass DatasetRef or FakeDatasetRef objects."
        ) from None
    if value is None:
        raise AmbiguousDatasetError(
            f"Dataset reference {ref!r} has no id; resolve it through the registry first."
        )
    if not isinstance(value, uuid.UUID):
        raise InvalidDatasetIdError(
            f"Dataset id {value!r} is a {type(value).__name__}, not a uuid.UUID; "
            "convert it with uuid.UUID(...)."
        )
    return value


def _plain_data_id(data_id: Any, owner: str) -> tuple[Any, Any]:
    """``data_id`` as stored (a copy unless a `DataCoordinate`) and its hashable key."""
    if hasattr(data_id, "required"):  # a DataCoordinate: hashable as it is
        return data_id, data_id
    try:
        plain = dict(data_id)
    except (TypeError, ValueError):
        raise ArgumentTypeError(
            f"{owner} data ID must be a mapping of dimension name to value (or a "
            f"DataCoordinate), not {type(data_id).__name__}."
        ) from None
    return plain, tuple(sorted(plain.items()))


@dataclass(frozen=True, slots=True, init=False)
class DatasetRef:
    """A reference to one resolved dataset: its type, data ID, run and id.

    The registry makes these (`~SqlRegistry.insertDatasets`, queries,
    ``Butler.put`` and ``Butler.ingest``); a file to ingest that the
    registry has not resolved yet is described by an `UnresolvedRef`.

    Parameters
    ----------
    datasetType : `DatasetType`
        The dataset type (not its name: look it up with
        ``registry.getDatasetType(name)``).
    dataId : `~collections.abc.Mapping`
        Data ID, dimension name to value (or a `DataCoordinate`).
    run : `str` or `None`
        Name of the RUN collection the dataset belongs to.
    id : `uuid.UUID`
        The dataset id; required (the parameter defaults to `None` only to
        refuse its absence with a clear error).

    Raises
    ------
    ArgumentTypeError
        If ``datasetType`` is not a `DatasetType` (a name, say), or
        ``dataId`` is not a mapping.
    AmbiguousDatasetError
        If ``id`` is not given.
    InvalidDatasetIdError
        If ``id`` is not a `uuid.UUID`.
    """

    datasetType: DatasetType
    dataId: Mapping[str, Any] | DataCoordinate = field(hash=False, compare=False)
    run: str | None
    id: DatasetId
    _data_id_key: Any = field(init=False, repr=False)

    def __init__(
        self,
        datasetType: DatasetType,
        dataId: Mapping[str, Any] | DataCoordinate,
        run: str | None = None,
        id: DatasetId | None = None,
    ) -> None:
        object.__setattr__(self, "datasetType", datasetType)
        object.__setattr__(self, "dataId", dataId)
        object.__setattr__(self, "run", run)
        object.__setattr__(self, "id", id)
        self.__post_init__()

    def __str__(self) -> str:
        """The dataset as messages name it: type, data ID, storage class, run and id
        (``thing@{instrument: 'HSC', detector: 1} [sc=StructuredDataDict] (run=r id=...)``,
        upstream's form); `repr` gives the constructor's form."""
        return (
            f"{self.datasetType.name}@{self.dataId} [sc={self.datasetType.storageClass}] "
            f"(run={self.run} id={self.id})"
        )

    def __post_init__(self) -> None:
        dataset_type: object = self.datasetType
        if not isinstance(dataset_type, DatasetType):
            hint = (
                f"registry.getDatasetType({dataset_type!r})"
                if isinstance(dataset_type, str)
                else "the registered DatasetType"
            )
            raise ArgumentTypeError(
                f"DatasetRef needs a DatasetType, not {type(dataset_type).__name__} "
                f"{dataset_type!r}: pass {hint}; to ingest a file the registry has not "
                "resolved yet, describe it with UnresolvedRef(dataset_type, data_id, run)."
            )
        data_id, key = _plain_data_id(self.dataId, "DatasetRef")
        object.__setattr__(self, "dataId", data_id)
        object.__setattr__(self, "_data_id_key", key)
        dataset_id: object = self.id
        if dataset_id is None:
            raise AmbiguousDatasetError(
                f"DatasetRef({dataset_type.name!r}, {data_id!r}) has no id: a "
                "DatasetRef is a resolved dataset, as the registry returns it (insertDatasets, "
                "queries, put, ingest); to ingest a file not yet in the registry, describe it "
                "with UnresolvedRef(dataset_type, data_id, run)."
            )
        if not isinstance(dataset_id, uuid.UUID):
            raise InvalidDatasetIdError(
                f"Dataset id {dataset_id!r} is a {type(dataset_id).__name__}, not a uuid.UUID; "
                "convert it with uuid.UUID(...)."
            )

    @classmethod
    def _from_checked(
        cls, datasetType: DatasetType, dataId: DataCoordinate, run: str, id: DatasetId
    ) -> DatasetRef:
        """A ref of parts its caller made checked (a `DatasetType`, a `DataCoordinate`, a
        `uuid.UUID`): bulk paths that build thousands skip the constructor's checks."""
        self = object.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(self, "datasetType", datasetType)
        setattr_(self, "dataId", dataId)
        setattr_(self, "run", run)
        setattr_(self, "id", id)
        setattr_(self, "_data_id_key", dataId)  # a DataCoordinate is hashable as it is
        return self

    def override_storage_class(self, storage_class: str | StorageClass) -> DatasetRef:
        """This dataset, to be read as another storage class.

        Parameters
        ----------
        storage_class : `str` or `StorageClass`
            The storage class (or its name) ``get`` is to return the dataset as.

        Returns
        -------
        ref : `DatasetRef`
            A new ref: same id, data ID and run; its dataset type has the
            same name, dimensions and calibration flag, and ``storage_class``.
            A datastore reading it converts what it stored (see
            ``Butler.get``); whether the two storage classes convert is
            checked there, against the datastore's storage classes.

        Raises
        ------
        ArgumentTypeError
            If ``storage_class`` is neither a name nor a `StorageClass`.
        InvalidNameError
            If the name is malformed.
        """
        if not isinstance(storage_class, str | StorageClass):
            raise ArgumentTypeError(
                f"storage_class must be a storage class name or a StorageClass, not "
                f"{type(storage_class).__name__} {storage_class!r}."
            )
        parent = self.datasetType
        dataset_type = DatasetType(
            parent.name, parent.dimensions, storage_class, isCalibration=parent.isCalibration
        )
        if dataset_type == parent:
            return self
        return DatasetRef(dataset_type, self.dataId, self.run, self.id)


@dataclass(frozen=True, slots=True)
class UnresolvedRef:
    """A dataset to ingest that the registry has not resolved yet: no id.

    Give these to `FileDataset` for ``Butler.ingest``; ingest registers the
    dataset (in ``run``, else the run given to ingest, else the Butler's)
    and returns its resolved `DatasetRef`.

    Parameters
    ----------
    dataset_type : `str` or `DatasetType`
        The registered dataset type, or its name.
    data_id : `~collections.abc.Mapping`
        Data ID, dimension name to value (or a `DataCoordinate`).
    run : `str` or `None`, optional
        The RUN collection to ingest into; `None` for ingest's default.

    Raises
    ------
    ArgumentTypeError
        If ``dataset_type`` is neither a name nor a `DatasetType`, ``data_id``
        is not a mapping, or ``run`` is not a string.
    """

    dataset_type: str | DatasetType
    data_id: Mapping[str, Any] | DataCoordinate = field(hash=False, compare=False)
    run: str | None = None
    _data_id_key: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        dataset_type: object = self.dataset_type
        if not isinstance(dataset_type, str | DatasetType) or not dataset_type:
            raise ArgumentTypeError(
                "UnresolvedRef dataset_type must be a dataset type name or a DatasetType, "
                f"not {type(dataset_type).__name__} {dataset_type!r}."
            )
        run: object = self.run
        if run is not None and not isinstance(run, str):
            raise ArgumentTypeError(
                f"UnresolvedRef run must be a RUN collection name or None, not "
                f"{type(run).__name__} {run!r}."
            )
        data_id, key = _plain_data_id(self.data_id, "UnresolvedRef")
        object.__setattr__(self, "data_id", data_id)
        object.__setattr__(self, "_data_id_key", key)

    @property
    def dataset_type_name(self) -> str:
        """The name of the dataset type."""
        dataset_type = self.dataset_type
        return dataset_type if isinstance(dataset_type, str) else dataset_type.name
