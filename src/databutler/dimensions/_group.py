"""Dimension groups: the closed sets of dimensions that data IDs are made of."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ._elements import Immutable
from ._exceptions import UnknownDimensionError

if TYPE_CHECKING:
    from ._universe import DimensionUniverse

__all__ = ["DimensionGroup"]


class DimensionGroup(Immutable):
    """A set of dimensions, closed over what they require and imply.

    ``universe.group(names)`` is the usual way to make one.

    Parameters
    ----------
    universe : `DimensionUniverse`
        The universe the names belong to.
    names : `~collections.abc.Iterable` [`str`] or `str`, optional
        Dimension names (a single name may be given as a string). The group
        also holds every dimension they require or imply, recursively.

    Raises
    ------
    UnknownDimensionError
        If a name is not a dimension of ``universe`` (a `KeyError`); the
        message lists the valid names.

    Notes
    -----
    A dimension of the group is *implied* if another dimension of the group
    implies it and none requires it; the others are *required*: their values
    identify a data ID, and the implied values follow from them
    (``{instrument, exposure}`` implies ``physical_filter``, ``day_obs`` and,
    through ``physical_filter``, ``band``). All name tuples are in universe
    order. Groups are immutable and hashable, and equal when their universes
    and names are.
    """

    __slots__ = ("_hash", "_implied", "_names", "_required", "_universe")

    _universe: DimensionUniverse
    _names: tuple[str, ...]
    _required: tuple[str, ...]
    _implied: tuple[str, ...]
    _hash: int

    def __init__(self, universe: DimensionUniverse, names: Iterable[str] | str = ()) -> None:
        given = (names,) if isinstance(names, str) else tuple(names)
        for name in given:
            if name not in universe:
                raise UnknownDimensionError(universe._unknown_message(name))
        members: set[str] = set()
        pending = list(given)
        while pending:
            name = pending.pop()
            if name not in members:
                members.add(name)
                dimension = universe[name]
                pending.extend(dimension.required)
                pending.extend(dimension.implied)
        implied_by_members = {other for name in members for other in universe[name].implied}
        required_by_members = {other for name in members for other in universe[name].required}
        only_implied = implied_by_members - required_by_members
        ordered = tuple(name for name in universe.names if name in members)
        setattr_ = object.__setattr__
        setattr_(self, "_universe", universe)
        setattr_(self, "_names", ordered)
        setattr_(self, "_required", tuple(name for name in ordered if name not in only_implied))
        setattr_(self, "_implied", tuple(name for name in ordered if name in only_implied))
        setattr_(self, "_hash", hash(ordered))

    @property
    def universe(self) -> DimensionUniverse:
        """The universe of these dimensions (`DimensionUniverse`)."""
        return self._universe

    @property
    def names(self) -> tuple[str, ...]:
        """Every dimension of the group, in universe order."""
        return self._names

    @property
    def required(self) -> tuple[str, ...]:
        """The dimensions whose values identify a data ID of this group."""
        return self._required

    @property
    def implied(self) -> tuple[str, ...]:
        """The dimensions whose values follow from the required ones."""
        return self._implied

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def issubset(self, other: DimensionGroup) -> bool:
        """Whether every dimension of this group is in ``other``."""
        return set(self._names).issubset(other._names)

    def issuperset(self, other: DimensionGroup) -> bool:
        """Whether every dimension of ``other`` is in this group."""
        return set(self._names).issuperset(other._names)

    def union(self, *others: DimensionGroup) -> DimensionGroup:
        """The group of the dimensions in this group or any of ``others``.

        Raises
        ------
        ValueError
            If one of ``others`` belongs to another universe.
        """
        names = list(self._names)
        for other in others:
            if other._universe != self._universe:
                raise ValueError(f"Cannot combine {self} and {other}: their universes differ.")
            names.extend(other._names)
        return DimensionGroup(self._universe, names)

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, DimensionGroup):
            return NotImplemented
        return self._names == other._names and self._universe == other._universe

    def __hash__(self) -> int:
        return self._hash

    def __str__(self) -> str:
        return "{" + ", ".join(self._names) + "}"

    def __repr__(self) -> str:
        return f"DimensionGroup({self})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (DimensionGroup, (self._universe, self._names))
