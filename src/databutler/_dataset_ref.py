"""Dataset identifiers and references: pure values, no I/O."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from ._exceptions import AmbiguousDatasetError, InvalidDatasetIdError

if TYPE_CHECKING:
    from .dimensions import DataCoordinate

__all__ = ["DatasetId", "DatasetRef", "require_dataset_id"]

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
        If ``ref.id`` is `None` (an unresolved reference).
    InvalidDatasetIdError
        If ``ref`` has no ``id`` or it is not a `uuid.UUID`.
    """
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


def _check_id(value: Any) -> DatasetId | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    raise InvalidDatasetIdError(
        f"Dataset id {value!r} is a {type(value).__name__}, not a uuid.UUID; "
        "convert it with uuid.UUID(...)."
    )


@dataclass(frozen=True, slots=True)
class DatasetRef:
    """A reference to one dataset: its type, data ID, run and id.

    This is the minimal form the bridge needs; the registry grows it.

    Parameters
    ----------
    datasetType : `DatasetType` or `str`
        The dataset type (or its name).
    dataId : `~collections.abc.Mapping`
        Data ID, dimension name to value.
    run : `str` or `None`
        Name of the RUN collection the dataset belongs to.
    id : `uuid.UUID` or `None`, optional
        The dataset id; `None` for an unresolved reference.
    """

    datasetType: Any
    dataId: Mapping[str, Any] | DataCoordinate = field(hash=False, compare=False)
    run: str | None = None
    id: DatasetId | None = None
    _data_id_key: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_id(self.id)
        if hasattr(self.dataId, "required"):  # a DataCoordinate: hashable as it is
            object.__setattr__(self, "_data_id_key", self.dataId)
        else:
            object.__setattr__(self, "dataId", dict(self.dataId))
            object.__setattr__(self, "_data_id_key", tuple(sorted(self.dataId.items())))
