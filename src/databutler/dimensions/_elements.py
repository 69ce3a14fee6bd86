"""The parts of a universe: record fields and dimensions."""

from __future__ import annotations

import dataclasses
import datetime
from dataclasses import dataclass
from typing import Any

from .._collection_type import Timespan

__all__ = ["FIELD_TYPES", "KEY_TYPES", "Dimension", "DimensionCombination", "DimensionField"]

FIELD_TYPES: dict[str, type] = {
    "string": str,
    "int": int,
    "float": float,
    "bool": bool,
    "datetime": datetime.datetime,
    "timespan": Timespan,
    "region": bytes,
    "bytes": bytes,
}
"""Field type names in a universe description, with their Python types.

A ``timespan`` field holds a `~databutler.Timespan` (stored as two integer
columns, see `databutler.registry.dimension_records`); a ``region`` field
holds a sky region as the opaque bytes of its encoding (sphgeom's
``Region.encode()``: stored and carried over, never interpreted); a
``bytes`` field holds a byte string (daf_butler's ``hash`` fields).
"""

KEY_TYPES = ("string", "int")
"""The field types a dimension's key may have."""


class Immutable:
    """Base for slotted classes whose instances never change after ``__init__``.

    ``__init__`` sets attributes with ``object.__setattr__``; anything later
    raises `dataclasses.FrozenInstanceError`, as a frozen dataclass would.
    """

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")


@dataclass(frozen=True, slots=True)
class DimensionField:
    """One field of a dimension record: the key or a metadata value.

    Parameters
    ----------
    name : `str`
        Field name (``id``, ``name``, ``exposure_time``, ...).
    dtype : `str`
        Type name in the description: ``string``, ``int``, ``float``,
        ``bool``, ``datetime``, ``timespan``, ``region`` or ``bytes``.
    length : `int`, optional
        Maximum length of a ``string`` field (characters) or a ``bytes``
        field (bytes); `None` for no limit.
    nullable : `bool`, optional
        Whether the field may be empty (never for a key).
    """

    name: str
    dtype: str
    length: int | None = None
    nullable: bool = False

    @property
    def python_type(self) -> type:
        """The Python type of the field's values."""
        return FIELD_TYPES[self.dtype]

    def to_config(self, *, key: bool = False) -> dict[str, Any]:
        """The field as it appears in a universe description.

        Parameters
        ----------
        key : `bool`, optional
            Whether this is a dimension's key, which has no ``nullable`` entry.

        Returns
        -------
        config : `dict` [`str`, `~typing.Any`]
            ``name``, ``type``, then ``length`` (if set) and ``nullable``.
        """
        config: dict[str, Any] = {"name": self.name, "type": self.dtype}
        if self.length is not None:
            config["length"] = self.length
        if not key:
            config["nullable"] = self.nullable
        return config


@dataclass(frozen=True, slots=True)
class _Element:
    """What a `Dimension` and a `DimensionCombination` share (documented on each)."""

    name: str
    required: tuple[str, ...]
    direct_required: tuple[str, ...]
    implied: tuple[str, ...]
    metadata: tuple[DimensionField, ...]
    doc: str = ""

    def __str__(self) -> str:
        return self.name

    def to_config(self) -> dict[str, Any]:
        """This element's entry in the ``elements`` of a universe description.

        Returns
        -------
        config : `dict` [`str`, `~typing.Any`]
            ``requires``, ``implies``, ``metadata`` and ``doc``, in that order.
        """
        return {
            "requires": list(self.direct_required),
            "implies": list(self.implied),
            "metadata": [field.to_config() for field in self.metadata],
            "doc": self.doc,
        }


@dataclass(frozen=True, slots=True)
class Dimension(_Element):
    """One dimension of a universe: how its values are keyed and what it depends on.

    Instances are made by `DimensionUniverse`; get them with ``universe[name]``.

    Parameters
    ----------
    name : `str`
        The dimension's name, also the key of its value in a data ID.
    key : `DimensionField`
        The field that identifies a value of this dimension, together with
        the values of the dimensions it requires (``detector`` is keyed by an
        ``int`` id within its ``instrument``).
    required : `tuple` [`str`, ...]
        Every dimension whose value is needed to identify a value of this
        one, closed recursively, in universe order; the dimension itself is
        not included.
    direct_required : `tuple` [`str`, ...]
        The required dimensions as declared in the description (a subset of
        ``required``).
    implied : `tuple` [`str`, ...]
        The dimensions whose values a value of this one determines, as
        declared (``exposure`` implies ``physical_filter`` and ``day_obs``).
        Dimensions implied by those are found by `DimensionGroup`.
    metadata : `tuple` [`DimensionField`, ...]
        The other fields of this dimension's records.
    doc : `str`, optional
        What the dimension means.
    """

    key: DimensionField = dataclasses.field(kw_only=True)

    def to_config(self) -> dict[str, Any]:
        """This dimension's entry in a universe description.

        Returns
        -------
        config : `dict` [`str`, `~typing.Any`]
            ``key``, ``requires``, ``implies``, ``metadata`` and ``doc``, in
            that order.
        """
        return {"key": self.key.to_config(key=True), **_Element.to_config(self)}


@dataclass(frozen=True, slots=True)
class DimensionCombination(_Element):
    """An element of a universe that has records but is not a dimension.

    Its records are identified by the values of the dimensions it requires,
    with no key of its own (``visit_definition`` relates an exposure to a
    visit; ``visit_detector_region`` holds the region of one detector in one
    visit). Its name is never a data ID key. Get one with
    ``universe.element(name)``.

    Parameters
    ----------
    name : `str`
        The element's name, also the name of its record table.
    required : `tuple` [`str`, ...]
        Every dimension whose value identifies a record, closed recursively,
        in universe order.
    direct_required : `tuple` [`str`, ...]
        The required dimensions as declared in the description.
    implied : `tuple` [`str`, ...]
        The dimensions whose values a record determines, as declared.
    metadata : `tuple` [`DimensionField`, ...]
        The other fields of its records.
    doc : `str`, optional
        What the element means.
    """
