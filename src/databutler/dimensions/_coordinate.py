"""Data coordinates: checked, normalised data IDs."""

from __future__ import annotations

import types
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from typing import Any, TypeAlias

from ._elements import Dimension, Immutable
from ._exceptions import DataIdError
from ._group import DimensionGroup
from ._universe import DimensionUniverse
from ._values import check_value

__all__ = ["DataCoordinate", "DataIdLike", "DataIdValue"]

DataIdValue: TypeAlias = int | str
"""The value of one dimension in a data ID: an `int` or a `str`, per its key type."""


class DataCoordinate(Immutable):
    """A data ID checked against its dimensions: ``{instrument: 'HSC', detector: 12}``.

    Usually made with `standardize`, which accepts a mapping, keyword
    arguments, or both, and works out the dimensions from the keys.

    Parameters
    ----------
    dimensions : `DimensionGroup`
        The dimensions of the data ID.
    values : `~collections.abc.Mapping` [`str`, `~typing.Any`]
        A value for every required dimension of ``dimensions``, and for any
        of its implied dimensions; no other keys.

    Raises
    ------
    DataIdError
        If a required value is missing, a key is not a dimension of the
        group, or a value does not have its dimension's key type. The
        message names the dimension.

    Notes
    -----
    A coordinate reads like a mapping of every value it knows (``coord[name]``,
    `get`, `keys`, `items`, ``len``). `required` holds just the values that
    identify it, `mapping` all it knows; `has_full` says whether that
    includes every implied value. Two coordinates are equal when their
    dimensions and required values are; implied values are ignored, as they
    follow from the required ones. Instances are immutable and hashable.
    """

    __slots__ = ("_dimensions", "_hash", "_mapping", "_required")

    _dimensions: DimensionGroup
    _mapping: dict[str, DataIdValue]
    _required: dict[str, DataIdValue]
    _hash: int | None

    def __init__(self, dimensions: DimensionGroup, values: Mapping[str, Any]) -> None:
        universe = dimensions.universe
        for key in values:
            if key not in dimensions:
                if key in universe:
                    raise DataIdError(
                        f"Data ID key {key!r} is not one of its dimensions {dimensions}."
                    )
                raise DataIdError(_unknown_key_message(key, universe))
        missing = [name for name in dimensions.required if name not in values]
        if missing:
            raise DataIdError(_missing_message(missing, values, dimensions))
        mapping = {
            name: _check_value(universe[name], values[name])
            for name in dimensions.names
            if name in values
        }
        required = {name: mapping[name] for name in dimensions.required}
        setattr_ = object.__setattr__
        setattr_(self, "_dimensions", dimensions)
        setattr_(self, "_mapping", mapping)
        setattr_(self, "_required", required)
        setattr_(self, "_hash", hash((dimensions, tuple(required.values()))))

    @classmethod
    def from_required(
        cls,
        dimensions: DimensionGroup,
        values: Mapping[str, Any] | tuple[Any, ...],
        *,
        check: bool = True,
    ) -> DataCoordinate:
        """A coordinate from exactly the required values of ``dimensions``, checked.

        The fast path for bulk work: ``values`` is a mapping with just the
        required keys, or a tuple in ``dimensions.required`` order. Anything
        else is handed to the general constructor (and its errors). With
        ``check=False`` the values are trusted: the registry reading back
        what it checked when storing it.
        """
        required_names = dimensions.required
        pairs: Iterable[tuple[str, Any]]
        if isinstance(values, tuple):
            if len(values) != len(required_names):
                raise DataIdError(
                    f"Expected {len(required_names)} values for {dimensions}, got {len(values)}."
                )
            pairs = zip(required_names, values, strict=True)
        elif len(values) == len(required_names) and all(n in values for n in required_names):
            pairs = ((n, values[n]) for n in required_names)
        else:
            return cls(dimensions, values)
        if check:
            universe = dimensions.universe
            required = {name: _check_value(universe[name], value) for name, value in pairs}
        else:  # values read back from the registry, checked when they went in
            required = dict(pairs)
        self = object.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(self, "_dimensions", dimensions)
        setattr_(self, "_mapping", required)  # never mutated: sharing is safe
        setattr_(self, "_required", required)
        setattr_(self, "_hash", None)
        return self

    @classmethod
    def standardize(
        cls,
        mapping: Mapping[str, Any] | DataCoordinate | None = None,
        /,
        *,
        universe: DimensionUniverse,
        dimensions: DimensionGroup | Iterable[str] | None = None,
        **kwargs: Any,
    ) -> DataCoordinate:
        """Check and normalise a data ID.

        Parameters
        ----------
        mapping : `~collections.abc.Mapping` [`str`, `~typing.Any`], optional
            Dimension name to value, e.g. ``{"instrument": "HSC", "detector": 12}``
            (a `DataCoordinate` is accepted too).
        universe : `DimensionUniverse`
            The dimensions the names refer to.
        dimensions : `DimensionGroup` or `~collections.abc.Iterable` [`str`], optional
            The dimensions of the result. By default, the group of the given
            keys. When given, values of other dimensions are dropped, which
            takes a subset of a larger data ID.
        **kwargs
            More values, by dimension name; they override ``mapping``.

        Returns
        -------
        coordinate : `DataCoordinate`
            The checked data ID. ``int`` keys hold `int` values (anything with
            ``__index__``, such as a numpy integer, is converted), ``string``
            keys `str` values.

        Raises
        ------
        DataIdError
            If a key is not a dimension (the message lists the valid ones), a
            required value is missing (the message names the dimension), or a
            value has the wrong type (a `bool` or `float` for an ``int`` key,
            anything but `str` for a ``string`` key).
        UnknownDimensionError
            If ``dimensions`` names something that is not a dimension.
        """
        values: dict[str, Any] = {}
        if isinstance(mapping, DataCoordinate):
            values.update(mapping.mapping)
        elif isinstance(mapping, Mapping):
            values.update(mapping)
        elif mapping is not None:
            raise DataIdError(
                f"A data ID is a mapping of dimension names to values, not {mapping!r}."
            )
        values.update(kwargs)
        for key in values:
            if key not in universe:
                raise DataIdError(_unknown_key_message(key, universe))
        if dimensions is None:
            group = universe.group(values)
        else:
            if isinstance(dimensions, DimensionGroup):
                group = dimensions
                if group.universe != universe:
                    raise DataIdError(
                        f"The dimensions {group} belong to another universe than the one given."
                    )
            else:
                group = universe.group(dimensions)
            values = {key: value for key, value in values.items() if key in group}
        return cls(group, values)

    @classmethod
    def from_simple(cls, data: Any, universe: DimensionUniverse) -> DataCoordinate:
        """Rebuild a coordinate from `to_simple` output.

        Parameters
        ----------
        data : `dict` [`str`, `int` | `str`]
            The known values, by dimension name.
        universe : `DimensionUniverse`
            The universe of the coordinate.

        Returns
        -------
        coordinate : `DataCoordinate`
            An equal coordinate, with the same known values.

        Raises
        ------
        DataIdError
            If ``data`` is not such a mapping, or not a valid data ID.
        """
        if not isinstance(data, Mapping):
            raise DataIdError(f"A serialised data ID is a JSON object, not {data!r}.")
        return cls.standardize(data, universe=universe)

    def to_simple(self) -> dict[str, DataIdValue]:
        """A JSON-able form: every known value by dimension name.

        The dimensions are not stored: they are the group of the required
        values' names, and `from_simple` recomputes them.

        Returns
        -------
        data : `dict` [`str`, `int` | `str`]
            A new dictionary.
        """
        return dict(self._mapping)

    @property
    def dimensions(self) -> DimensionGroup:
        """The dimensions of this data ID (`DimensionGroup`)."""
        return self._dimensions

    @property
    def universe(self) -> DimensionUniverse:
        """The universe of the dimensions (`DimensionUniverse`)."""
        return self._dimensions.universe

    @property
    def required(self) -> Mapping[str, DataIdValue]:
        """The values of the required dimensions, in universe order."""
        return types.MappingProxyType(self._required)

    @property
    def required_values(self) -> tuple[DataIdValue, ...]:
        """The required values alone, in the order of ``dimensions.required``."""
        return tuple(self._required.values())

    @property
    def mapping(self) -> Mapping[str, DataIdValue]:
        """Every known value: the required ones and any implied ones, in universe order."""
        return types.MappingProxyType(self._mapping)

    def has_full(self) -> bool:
        """Whether the values of all implied dimensions are known.

        Returns
        -------
        full : `bool`
            `True` if `mapping` has a value for every dimension.
        """
        return len(self._mapping) == len(self._dimensions)

    def fill_implied(self, values: Mapping[str, Any]) -> DataCoordinate:
        """A coordinate with more implied values (from dimension records).

        Parameters
        ----------
        values : `~collections.abc.Mapping` [`str`, `~typing.Any`]
            Values of dimensions of this coordinate. A value it knows already
            must be the same.

        Returns
        -------
        coordinate : `DataCoordinate`
            A new coordinate, equal to this one, that knows the values too.

        Raises
        ------
        DataIdError
            If a key is not one of the dimensions, a value has the wrong type,
            or differs from the value already known.
        """
        merged = dict(self._mapping)
        universe = self.universe
        for key, value in values.items():
            if key not in self._dimensions:
                if key in universe:
                    raise DataIdError(
                        f"Cannot fill {key!r} into {self}: it is not one of its dimensions "
                        f"{self._dimensions}."
                    )
                raise DataIdError(_unknown_key_message(key, universe))
            checked = _check_value(universe[key], value)
            if merged.get(key, checked) != checked:
                raise DataIdError(
                    f"Cannot fill {key}={checked!r} into {self}: it has {key}={merged[key]!r}."
                )
            merged[key] = checked
        return DataCoordinate(self._dimensions, merged)

    def subset(self, dimensions: DimensionGroup | Iterable[str]) -> DataCoordinate:
        """The data ID of some of these dimensions.

        Parameters
        ----------
        dimensions : `DimensionGroup` or `~collections.abc.Iterable` [`str`]
            A group within this coordinate's dimensions.

        Returns
        -------
        coordinate : `DataCoordinate`
            The known values of those dimensions.

        Raises
        ------
        DataIdError
            If ``dimensions`` is not within this coordinate's dimensions, or
            needs a value this coordinate does not know (an implied one not
            filled in).
        """
        group = (
            dimensions
            if isinstance(dimensions, DimensionGroup)
            else self.universe.group(dimensions)
        )
        if not group.issubset(self._dimensions):
            raise DataIdError(f"{group} is not a subset of the dimensions {self._dimensions}.")
        return DataCoordinate.standardize(self._mapping, universe=self.universe, dimensions=group)

    def __getitem__(self, key: str) -> DataIdValue:
        try:
            return self._mapping[key]
        except KeyError:
            if key in self._dimensions:
                raise KeyError(
                    f"{self} has no value for the implied dimension {key!r}; fill it in "
                    "with fill_implied."
                ) from None
            raise KeyError(f"{key!r} is not one of the dimensions {self._dimensions}.") from None

    def get(self, key: str, default: Any = None) -> Any:
        """The value of dimension ``key``, or ``default`` if it is not known."""
        return self._mapping.get(key, default)

    def keys(self) -> KeysView[str]:
        """The names of the dimensions whose values are known, in universe order."""
        return self._mapping.keys()

    def values(self) -> ValuesView[DataIdValue]:
        """The known values, in universe order."""
        return self._mapping.values()

    def items(self) -> ItemsView[str, DataIdValue]:
        """``(name, value)`` of every known value, in universe order."""
        return self._mapping.items()

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping)

    def __len__(self) -> int:
        return len(self._mapping)

    def __contains__(self, key: object) -> bool:
        return key in self._mapping

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, DataCoordinate):
            return NotImplemented
        return self._dimensions == other._dimensions and self._required == other._required

    def __hash__(self) -> int:
        value = self._hash
        if value is None:  # computed on first use (bulk reads often never hash)
            value = hash((self._dimensions, tuple(self._required.values())))
            object.__setattr__(self, "_hash", value)
        return value

    def __str__(self) -> str:
        return "{" + ", ".join(f"{key}: {value!r}" for key, value in self._mapping.items()) + "}"

    def __repr__(self) -> str:
        return f"DataCoordinate({self})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (DataCoordinate, (self._dimensions, self._mapping))


def _check_value(dimension: Dimension, value: Any) -> DataIdValue:
    """Convert ``value`` to ``dimension``'s key type, or say why it cannot be."""
    key = dimension.key
    checked: DataIdValue = check_value(
        key.dtype, key.length, value, f"Data ID value {{value}} for {dimension.name!r}"
    )
    return checked


def _unknown_key_message(key: object, universe: DimensionUniverse) -> str:
    valid = ", ".join(universe.names)
    return f"Data ID key {key!r} is not a dimension; valid dimensions are: {valid}."


def _missing_message(
    missing: list[str], values: Mapping[str, Any], dimensions: DimensionGroup
) -> str:
    given = "{" + ", ".join(f"{key}: {value!r}" for key, value in values.items()) + "}"
    if len(missing) == 1:
        return (
            f"Data ID {given} has no value for the required dimension {missing[0]!r} "
            f"(its dimensions are {dimensions})."
        )
    return (
        f"Data ID {given} has no values for the required dimensions "
        f"{', '.join(map(repr, missing))} (its dimensions are {dimensions})."
    )


#: A data ID as the public methods take it: a mapping of dimension names to values, or a
#: `DataCoordinate` (a ref's ``dataId``).
DataIdLike: TypeAlias = Mapping[str, Any] | DataCoordinate
