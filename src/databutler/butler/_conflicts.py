"""Precise errors for a failed dataset insert: which record is missing, which dataset exists.

The registry reports a failed insert as one `ConflictError` (the database
does not say which row broke which constraint). After the transaction has
rolled back, this finds the first cause, in a few queries per dataset type,
and raises an error that names it and the fix.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .._exceptions import ConflictError, DataIdError
from ..dimensions import DataCoordinate
from ..registry import SqlRegistry

__all__ = ["explaining_conflicts"]


@contextmanager
def explaining_conflicts(
    registry: SqlRegistry, inserts: Mapping[str, list[Mapping[str, Any]]], run: str | None
) -> Iterator[None]:
    """Turn a `ConflictError` from the block into a precise error, if a cause is found.

    Wrap the whole transaction: the causes are looked for once it has rolled back.
    """
    try:
        yield
    except ConflictError as exc:
        # Inside a caller's transaction nothing has rolled back yet (and on PostgreSQL
        # the transaction accepts no more queries): the plain error must do.
        if run is not None and not registry.db.isInTransaction():
            for dataset_type, data_ids in inserts.items():
                explain(registry, dataset_type, data_ids, run, exc)
        raise


def explain(
    registry: SqlRegistry,
    dataset_type: str,
    data_ids: list[Mapping[str, Any]],
    run: str,
    exc: Exception,
) -> None:
    """Raise `DataIdError` or `ConflictError` naming the first cause found; else return."""
    universe = registry.dimensions
    dimensions = registry.getDatasetType(dataset_type).dimensions
    required = [
        dict(DataCoordinate.standardize(d, universe=universe, dimensions=dimensions).required)
        for d in data_ids
    ]
    if not required:
        return
    for name in required[0]:
        keys = universe.group([name]).required
        wanted = {tuple(r[k] for k in keys): {k: r[k] for k in keys} for r in required}
        found = registry.queryDimensionRecords(name, list(wanted.values()))
        known = {tuple(record.data_id[k] for k in keys) for record in found}
        for key, values in wanted.items():
            if key not in known:
                owners = ", ".join(f"{n} {v!r}" for n, v in values.items() if n != name)
                of = f" of {owners}" if owners else ""
                raise DataIdError(
                    f"{name} {values[name]!r} is not a known {name}{of}; insert its record "
                    f"with butler.insert_dimension_records({name!r}, {{...}}) or "
                    "'databutler insert-dimension-records'."
                ) from exc
    given: set[tuple[Any, ...]] = set()
    for values in required:
        seen = _key(values)
        if seen in given:
            raise ConflictError(
                f"The data ID {values} is given twice for {dataset_type!r}; a run holds one "
                "dataset per type and data ID."
            ) from exc
        given.add(seen)
    if run not in registry.queryCollections(run):
        return  # a new run, registered in the failed transaction: nothing in it to blame
    for ref in registry.stream_datasets(dataset_type, collections=run):
        existing = dict(DataCoordinate.standardize(ref.dataId, universe=universe).required)
        if ref.run == run and _key(existing) in given:
            raise ConflictError(
                f"Run {run!r} already has a {dataset_type!r} dataset with data ID "
                f"{existing}; put it in another run, or prune the existing one first."
            ) from exc


def _key(values: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(values.items(), key=lambda item: item[0]))
