"""`DimensionRecord`: one row of a dimension table, as an immutable value."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from typing import Any

from ..dimensions import (
    DataCoordinate,
)

__all__ = ["DimensionRecord"]


class DimensionRecord:
    """One row of a dimension's table: its key, implied values and metadata.

    Made by `StaticDimensionRecordStorageManager`; immutable and hashable.

    Parameters
    ----------
    element : `str`
        The dimension's name (``detector``).
    data_id : `DataCoordinate`
        The record's key values, with the values it implies.
    values : `~collections.abc.Mapping` [`str`, `~typing.Any`]
        Every field by column name, in table order. Datetimes are aware, in UTC.

    Notes
    -----
    Fields read as attributes (``record.full_name``, ``record.detector``,
    and ``record.id`` for the key under its own name) unless the name is one
    of ``element``, ``data_id``, ``values`` or ``to_dict``; ``record.values``
    has them all. Two records are equal when their element and values are.
    """

    __slots__ = ("_data_id", "_element", "_hash", "_values")

    _element: str
    _data_id: DataCoordinate
    _values: types.MappingProxyType[str, Any]
    _hash: int

    def __init__(self, element: str, data_id: DataCoordinate, values: Mapping[str, Any]) -> None:
        frozen = dict(values)
        setattr_ = object.__setattr__
        setattr_(self, "_element", element)
        setattr_(self, "_data_id", data_id)
        setattr_(self, "_values", types.MappingProxyType(frozen))
        setattr_(self, "_hash", hash((element, tuple(frozen.items()))))

    @property
    def element(self) -> str:
        """The name of the dimension this record belongs to (`str`)."""
        return self._element

    @property
    def data_id(self) -> DataCoordinate:
        """The record's data ID: its key values and the values it implies."""
        return self._data_id

    @property
    def values(self) -> Mapping[str, Any]:
        """Every field by column name, in table order (read-only)."""
        return self._values

    def to_dict(self) -> dict[str, Any]:
        """The fields as a new `dict`, ready to insert elsewhere.

        Returns
        -------
        fields : `dict` [`str`, `~typing.Any`]
            Column name to value.
        """
        return dict(self._values)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails; object.__getattribute__ never
        # recurses here, which keeps half-built (unpickling) instances safe.
        try:
            values = object.__getattribute__(self, "_values")
            element = object.__getattribute__(self, "_element")
            data_id = object.__getattribute__(self, "_data_id")
        except AttributeError:
            raise AttributeError(name) from None
        if name in values:
            return values[name]
        dimension = data_id.universe.get(element)
        if dimension is not None and name == dimension.key.name and element in values:
            return values[element]
        raise AttributeError(
            f"The {element} record has no field {name!r}; its fields are {', '.join(values)}."
        )

    def __setattr__(self, name: str, value: object) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, DimensionRecord):
            return NotImplemented
        return self._element == other._element and self._values == other._values

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={value!r}" for name, value in self._values.items())
        return f"DimensionRecord({self._element}: {fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (DimensionRecord, (self._element, self._data_id, dict(self._values)))
