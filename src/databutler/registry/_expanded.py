"""Query results with their dimension records: ``data_id.records["exposure"].timespan``.

`DataCoordinateWithRecords` is a `DataCoordinate` (equal to, and hashing as,
the plain one) that also carries the record of each of its dimensions.
`expand_in_bulk` makes them for a batch of data IDs with a few queries per
dimension (never one per data ID): the implied values first, then every
dimension's records by their keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import islice
from typing import TYPE_CHECKING, Any

import sqlalchemy

from ..dimensions import DataCoordinate, DimensionGroup, DimensionUniverse

if TYPE_CHECKING:
    from ._dimension_record import DimensionRecord
    from .dimension_records import StaticDimensionRecordStorageManager

__all__ = [
    "BATCH",
    "DataCoordinateWithRecords",
    "expand_in_bulk",
    "full_in_bulk",
    "implied_columns",
    "trusted_full",
]

BATCH = 1_000
"""Data IDs expanded together (a few queries per dimension for each batch)."""


class DataCoordinateWithRecords(DataCoordinate):
    """A data ID with every implied value and the record of each of its dimensions.

    ``records[name]`` is the `DimensionRecord` of dimension ``name`` (required
    or implied) for this data ID, or `None` for an implied dimension without a
    value. Compares and hashes as the plain `DataCoordinate`.
    """

    __slots__ = ("_records",)

    _records: Mapping[str, DimensionRecord | None]

    @classmethod
    def of(
        cls, coordinate: DataCoordinate, records: Mapping[str, DimensionRecord | None]
    ) -> DataCoordinateWithRecords:
        """``coordinate`` (with its implied values) carrying ``records``."""
        self = object.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(self, "_dimensions", coordinate.dimensions)
        setattr_(self, "_mapping", dict(coordinate.mapping))
        setattr_(self, "_required", dict(coordinate.required))
        setattr_(self, "_hash", None)
        setattr_(self, "_records", dict(records))
        return self

    @property
    def records(self) -> Mapping[str, DimensionRecord | None]:
        """The record of each dimension of the data ID, by dimension name."""
        return self._records

    def __repr__(self) -> str:
        return f"DataCoordinateWithRecords({self})"


def full_in_bulk(
    manager: StaticDimensionRecordStorageManager, coordinates: Iterable[DataCoordinate]
) -> Iterator[DataCoordinate]:
    """``coordinates`` with their implied values filled, a batch at a time."""
    stream = iter(coordinates)
    while batch := list(islice(stream, BATCH)):
        if all(c.has_full() for c in batch):
            yield from batch
        else:
            yield from manager.fill_implied(batch)


def expand_in_bulk(
    manager: StaticDimensionRecordStorageManager, coordinates: Iterable[DataCoordinate]
) -> Iterator[DataCoordinateWithRecords]:
    """``coordinates`` with their implied values and records, a batch at a time."""
    stream = iter(coordinates)
    while batch := manager.fill_implied(list(islice(stream, BATCH))):
        found: dict[str, dict[tuple[Any, ...], DimensionRecord]] = {}
        names = dict.fromkeys(n for c in batch for n in c.dimensions.names)
        for name in names:
            keys = manager.universe.group([name]).required
            wanted = {
                tuple(c.mapping[k] for k in keys): {k: c.mapping[k] for k in keys}
                for c in batch
                if all(k in c.mapping for k in keys)
            }
            records = manager.fetch(name, list(wanted.values())) if wanted else []
            found[name] = {tuple(r.data_id[k] for k in keys): r for r in records}
        for coordinate in batch:
            records_of: dict[str, DimensionRecord | None] = {}
            for name in coordinate.dimensions.names:
                required = manager.universe.group([name]).required
                key = tuple(coordinate.mapping.get(k) for k in required)
                records_of[name] = found[name].get(key)
            yield DataCoordinateWithRecords.of(coordinate, records_of)


def implied_columns(
    universe: DimensionUniverse,
    table_of: Callable[[str], sqlalchemy.Table],
    base: Mapping[str, sqlalchemy.ColumnElement[Any]],
    wanted: Iterable[str],
) -> tuple[list[str], list[sqlalchemy.ColumnElement[Any]], list[tuple[Any, Any]]]:
    """The columns of a query's implied dimensions, read from the records that imply them.

    ``base`` holds the columns of the query's required dimensions; ``wanted`` names
    the implied ones (an exposure's ``physical_filter``, that filter's ``band``).
    Returns their names, their columns, and the ``(table, onclause)`` pairs to
    LEFT OUTER JOIN (a record without an implied value leaves it NULL, and keeps its
    row).
    """
    values: dict[str, sqlalchemy.ColumnElement[Any]] = dict(base)
    pending = [name for name in wanted if name not in values]
    joins: list[tuple[Any, Any]] = []
    holders = list(values)
    for holder in holders:  # grows as it goes: breadth first
        dimension = universe[holder]
        here = [m for m in dimension.implied if m in pending and m not in values]
        keys = (*dimension.required, holder)
        if here and all(k in values for k in keys):
            table = table_of(holder).alias(f"implied_{holder}")
            joins.append((table, sqlalchemy.and_(*(table.c[k] == values[k] for k in keys))))
            for name in here:
                values[name] = table.c[name]
                holders.append(name)
    names = [name for name in pending if name in values]
    return names, [values[name] for name in names], joins


def trusted_full(
    group: DimensionGroup, required: tuple[Any, ...], implied: Mapping[str, Any]
) -> DataCoordinate:
    """A coordinate from values read back from the registry (checked when stored):
    ``required`` in ``group.required`` order, ``implied`` values (`None` ones left out)."""
    known = {k: v for k, v in implied.items() if v is not None}
    if not known:
        return DataCoordinate.from_required(group, required, check=False)
    values = dict(zip(group.required, required, strict=True))
    mapping = {**values, **known}
    self = object.__new__(DataCoordinate)
    setattr_ = object.__setattr__
    setattr_(self, "_dimensions", group)
    setattr_(self, "_mapping", mapping)
    setattr_(self, "_required", values)
    setattr_(self, "_hash", None)
    return self
