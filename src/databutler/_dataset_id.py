"""Dataset ids: random (time-ordered) or derived from what a dataset is."""

from __future__ import annotations

import enum
import os
import time
import uuid
from collections.abc import Mapping
from typing import Any

from ._exceptions import ArgumentTypeError, InvalidArgumentError

__all__ = ["DATASET_ID_NAMESPACE", "DatasetIdFactory", "DatasetIdGenEnum", "uuid7"]

#: Namespace of deterministic dataset ids: ``uuid5(NAMESPACE_DNS, "lsst.org")``,
#: the one the upstream system uses, so that ids derived here agree with its.
DATASET_ID_NAMESPACE = uuid.UUID("840b31d9-05cd-5161-b2c8-00d32b280d0f")


class DatasetIdGenEnum(enum.Enum):
    """How a new dataset gets its id."""

    UNIQUE = 0
    """Random, time-ordered (UUIDv7): new rows land near each other in an index."""

    DATAID_TYPE = 1
    """Derived (UUIDv5) from the dataset type and data ID: one dataset per pair."""

    DATAID_TYPE_RUN = 2
    """Derived (UUIDv5) from the dataset type, data ID and run."""


def uuid7(unix_ms: int | None = None) -> uuid.UUID:
    """A version-7 UUID: 48 bits of Unix time in milliseconds, then 74 random bits.

    Parameters
    ----------
    unix_ms : `int`, optional
        The timestamp to embed; now by default.
    """
    if unix_ms is None:
        unix_ms = time.time_ns() // 1_000_000
    if not 0 <= unix_ms < 1 << 48:
        raise ValueError(f"UUIDv7 timestamp {unix_ms} is outside 0 .. 2**48 - 1 milliseconds.")
    random = int.from_bytes(os.urandom(10), "big")
    rand_a = random >> 68  # 12 bits
    rand_b = random & ((1 << 62) - 1)  # 62 bits
    value = (unix_ms << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    return uuid.UUID(int=value)


def _required_values(data_id: Any) -> Mapping[str, Any]:
    required = getattr(data_id, "required", None)
    if isinstance(required, Mapping):
        return required
    if isinstance(data_id, Mapping):
        return data_id
    raise ArgumentTypeError(
        f"Expected a data ID mapping, got {data_id!r} ({type(data_id).__name__})."
    )


class DatasetIdFactory:
    """Makes dataset ids in each `DatasetIdGenEnum` mode.

    Deterministic ids hash ``dataset_type=<name>`` then, for
    `DatasetIdGenEnum.DATAID_TYPE_RUN`, ``,run=<run>``, then ``,<key>=<value>``
    for every required data ID key in sorted order. That field order is a
    contract shared with the upstream system: never change it.
    """

    def makeDatasetId(
        self,
        run: str,
        datasetType: Any,
        dataId: Any,
        idGenerationMode: DatasetIdGenEnum = DatasetIdGenEnum.UNIQUE,
    ) -> uuid.UUID:
        """The id of a new dataset.

        Parameters
        ----------
        run : `str`
            The RUN collection the dataset goes into.
        datasetType : `DatasetType` or `str`
            Its dataset type (or the type's name).
        dataId : `~collections.abc.Mapping`
            Its data ID; only the required keys count (``dataId.required``
            when it has that attribute, else every key).
        idGenerationMode : `DatasetIdGenEnum`, optional
            How to make the id.
        """
        if idGenerationMode is DatasetIdGenEnum.UNIQUE:
            return uuid7()
        name = datasetType if isinstance(datasetType, str) else datasetType.name
        items = [f"dataset_type={name}"]
        if idGenerationMode is DatasetIdGenEnum.DATAID_TYPE_RUN:
            items.append(f"run={run}")
        elif idGenerationMode is not DatasetIdGenEnum.DATAID_TYPE:
            raise InvalidArgumentError(f"Unknown id generation mode {idGenerationMode!r}.")
        required = _required_values(dataId)
        items.extend(f"{key}={required[key]}" for key in sorted(required))
        return uuid.uuid5(DATASET_ID_NAMESPACE, ",".join(items))
