"""Calibration lookup by time: the temporal join of calibrations with dimension records.

A calibration dataset type (``bias``: instrument, detector) is certified in
CALIBRATION collections over validity ranges. A data ID that also names a
dimension whose records carry a ``timespan`` (``exposure``, ``visit``,
``day_obs``) gives the time: the calibration valid over that record's
timespan is the one found. Both sides are stored as nanosecond pairs
(``validity_begin``/``validity_end`` and ``timespan_begin``/``timespan_end``,
half-open), so the overlap of ``[a, b)`` and ``[c, d)`` is ``a < d AND c < b``
in plain integer SQL, the same on SQLite and PostgreSQL.

`record_timespan` reads one record's timespan (for ``find_dataset`` and
``get``); `temporal_select` builds the one statement of the bulk form
(``query_datasets`` with ``where="exposure IN (...)"``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy

from ..._collection_type import CollectionType, Timespan
from ..._exceptions import CollectionError, DataIdError, InvalidArgumentError
from ...dimensions import DataCoordinate, DimensionGroup, DimensionUniverse
from ..collections import CollectionRecord
from ..interfaces._database import Database
from ..queries._time import MAX_NS, MIN_NS
from .calibs import from_ns

__all__ = [
    "AMBIGUOUS",
    "ambiguity_error",
    "check_order",
    "record_time",
    "temporal_element",
    "temporal_rows",
]

TableOf = Callable[[str], sqlalchemy.Table]

AMBIGUOUS = "ambiguous"
"""The label of the column counting the candidates valid in the winning collection."""


def temporal_element(table_of: TableOf, names: Iterable[str]) -> str | None:
    """The first of ``names`` whose records have a ``timespan`` (stored as two columns)."""
    for name in names:
        columns = table_of(name).c
        if "timespan_begin" in columns and "timespan_end" in columns:
            return name
    return None


def record_time(
    db: Database,
    universe: DimensionUniverse,
    table_of: TableOf,
    element: str,
    data_id: Mapping[str, Any],
) -> tuple[Timespan, dict[str, Any]]:
    """The timespan of ``element``'s record for ``data_id``, and the values the record
    implies (an exposure's ``physical_filter``).

    Raises
    ------
    DataIdError
        If the data ID lacks a key of ``element``, there is no such record,
        or the record has no timespan.
    """
    coordinate = DataCoordinate.standardize(data_id, universe=universe, dimensions=[element])
    table = table_of(element)
    keys = coordinate.dimensions.required
    implied = list(universe[element].implied)
    sql = sqlalchemy.select(
        table.c.timespan_begin, table.c.timespan_end, *(table.c[k] for k in implied)
    ).where(*(table.c[k] == coordinate[k] for k in keys))
    with db.query(sql) as result:
        row = result.first()
    shown = ", ".join(f"{k}={coordinate[k]!r}" for k in keys)
    if row is None:
        raise DataIdError(
            f"No {element} record for {shown}, so no time to look a calibration up at; insert "
            f"the record first (butler.insert_dimension_records({element!r}, ...)) or pass "
            "timespan=... instead."
        )
    if row[0] is None or row[1] is None:
        raise DataIdError(
            f"The {element} record for {shown} has no timespan, so no time to look a "
            f"calibration up at; give the record a timespan, or pass timespan=... instead."
        )
    values = {k: v for k, v in zip(implied, row[2:], strict=True) if v is not None}
    return Timespan(from_ns(row[0]), from_ns(row[1])), values


def ambiguity_error(
    type_name: str, row_keys: Mapping[str, Any], candidates: int
) -> CollectionError:
    """The error for a lookup where several certified datasets are valid at once."""
    shown = ", ".join(f"{k}={v!r}" for k, v in row_keys.items())
    return CollectionError(
        f"{candidates} {type_name!r} datasets certified in one collection are valid over the "
        f"timespan of {shown}; decertify all but one over that time (or search with a "
        "narrower timespan)."
    )


def temporal_rows(
    *,
    universe: DimensionUniverse,
    table_of: TableOf,
    type_key: int,
    group: DimensionGroup,
    tags: sqlalchemy.Table,
    calibs: sqlalchemy.Table | None,
    searched: Sequence[CollectionRecord],
    element: str,
    where: Callable[[Mapping[str, sqlalchemy.ColumnElement[Any]]], Any],
    find_first: bool,
) -> tuple[sqlalchemy.Subquery, list[str]]:
    """The rows of a temporal join: each dataset of the type (in ``searched``) valid over
    the timespan of an ``element`` record that shares its keys, as a subquery of
    ``dataset_id``, the type's required dimensions, ``element``'s keys the type lacks
    and, with ``find_first``, only the first collection's dataset per row (with
    `AMBIGUOUS`, how many datasets that collection has valid then).

    ``where(base)`` receives the columns of every dimension key of the join and
    returns the select's ``(condition, apply)``: the ``where`` condition (or `None`)
    and a function adding the record joins it needs.
    """
    record = table_of(element).alias(f"temporal_{element}")
    required = list(group.required)
    extra = [k for k in universe.group([element]).required if k not in required]
    places = {c.key: i for i, c in enumerate(searched)}
    parts = []
    if calibs is not None:
        calib_keys = [c.key for c in searched if c.type is CollectionType.CALIBRATION]
        if calib_keys:
            parts.append(
                sqlalchemy.select(
                    calibs.c.dataset_id,
                    calibs.c.collection_id,
                    *(calibs.c[n] for n in required),
                    calibs.c.validity_begin,
                    calibs.c.validity_end,
                ).where(
                    calibs.c.dataset_type_id == type_key, calibs.c.collection_id.in_(calib_keys)
                )
            )
    keys = [
        c.key
        for c in searched
        if c.type not in (CollectionType.CALIBRATION, CollectionType.CHAINED)
    ]
    if keys:
        # Datasets of RUN and TAGGED collections are valid at every time.
        parts.append(
            sqlalchemy.select(
                tags.c.dataset_id,
                tags.c.collection_id,
                *(tags.c[n] for n in required),
                sqlalchemy.literal(MIN_NS, sqlalchemy.BigInteger()).label("validity_begin"),
                sqlalchemy.literal(MAX_NS, sqlalchemy.BigInteger()).label("validity_end"),
            ).where(tags.c.dataset_type_id == type_key, tags.c.collection_id.in_(keys))
        )
    if not parts:
        raise LookupError("nothing to search")
    found = (sqlalchemy.union_all(*parts) if len(parts) > 1 else parts[0]).subquery("candidates")
    # The record agrees with the dataset on the keys they share, and on the values it
    # implies that the type requires (an exposure's physical_filter for a flat).
    shared = [k for k in required if k in record.c and k != element]
    base: dict[str, sqlalchemy.ColumnElement[Any]] = {n: found.c[n] for n in required}
    base.update({k: record.c[k] for k in extra})
    condition, apply = where(base)
    partition = [found.c[n] for n in required] + [record.c[k] for k in extra]
    columns: list[Any] = [found.c.dataset_id, *partition]
    if find_first:
        rank = sqlalchemy.case(places, value=found.c.collection_id)
        columns.append(
            sqlalchemy.func.row_number()
            .over(partition_by=partition, order_by=rank)
            .label("search_rank")
        )
        columns.append(
            sqlalchemy.func.count()
            .over(partition_by=[*partition, found.c.collection_id])
            .label(AMBIGUOUS)
        )
    sql = (
        sqlalchemy.select(*columns)
        .select_from(found)
        .join(
            record,
            sqlalchemy.and_(
                sqlalchemy.true(),
                *(record.c[k] == found.c[k] for k in shared),
                record.c.timespan_begin < found.c.validity_end,
                found.c.validity_begin < record.c.timespan_end,
            ),
        )
    )
    if condition is not None:
        sql = sql.where(condition)
    sql = apply(sql)
    return sql.subquery("temporal"), extra


def check_order(order_by: Sequence[Any], names: Sequence[str]) -> None:
    """Temporal lookups order by data ID only; refuse other ``order_by`` terms."""
    for term in order_by:
        if term.name not in names or term.identifier.field is not None:
            raise InvalidArgumentError(
                f"Cannot order a calibration lookup by {str(term)!r}; order it by the data "
                f"ID's dimensions ({', '.join(names)})."
            )
