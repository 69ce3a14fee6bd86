"""The query face of the `Butler`: the mixin `ButlerQueries`.

It holds the searches of a repository: `query_datasets` (dataset types and
collections may be globs; ``find_first``), `query_data_ids`,
`query_dimension_records` (all three with ``order_by`` and ``limit``, done
in SQL) and `query_collections`, and `_check_where`, which checks a query's
``where`` and ``bind`` whole at the call, before any query runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain, islice
from typing import Any

from .._collection_type import CollectionType
from .._dataset_ref import DatasetRef
from .._dataset_type import DatasetType
from .._exceptions import ArgumentConflictError
from ..dimensions import DataCoordinate
from ..registry.queries import check_bind, check_limit, parse_order_by, parse_where
from ._arguments import (
    require_bool,
    require_collection_types,
    require_collections,
    require_str,
    require_strs,
    require_type,
)
from ._butler_base import ButlerBase

__all__ = ["ButlerQueries"]


class ButlerQueries(ButlerBase):
    """Stream what a repository holds: datasets, data IDs, records, collections.

    Not used on its own: `Butler` inherits it.
    """

    def query_datasets(
        self,
        dataset_type: str | DatasetType,
        *,
        collections: str | Sequence[str] | None = None,
        where: str | None = "",
        bind: Mapping[str, Any] | None = None,
        in_datastore: str | None = None,
        not_in_datastore: str | None = None,
        find_first: bool = False,
        order_by: str | Iterable[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[DatasetRef]:
        """Stream the datasets of one type in ``collections`` matching ``where``.

        ``dataset_type`` may be a glob (``"calexp*"``); ``collections`` too
        (``"*"`` for all). With ``find_first=True`` each data ID gives only
        the dataset of the first collection, in the order given (chains
        flattened in order), that has one; the collections must then be
        names, not globs. ``order_by`` is a name or a list of names to sort
        by — dimensions (``"detector"``), record fields
        (``"exposure.obs_id"``), ``"run"``, ``"ingest_date"`` — each with
        ``-`` in front to sort descending; ties are ordered by the data ID,
        then the dataset id. ``limit`` is the most datasets returned (`None`:
        all of them). The ordering and the limit are done by the database and
        rows stream. With a glob matching several dataset types, the types
        come one after the other (by name), ``limit`` counting over all.

        Arguments are checked at the call, not when the results are first
        read.

        Raises
        ------
        ArgumentConflictError
            If ``find_first`` is asked with a glob in ``collections``.
        ArgumentTypeError
            If an argument has the wrong type (``limit`` not an `int`).
        InvalidArgumentError
            If an ``order_by`` name is unknown to the dataset type, or
            ``limit`` is negative.
        """
        require_type(
            dataset_type, "dataset_type", (str, DatasetType), "a dataset type name or a DatasetType"
        )
        collections = require_collections(collections)
        _check_where(where, bind)
        require_str(in_datastore, "in_datastore", optional=True)
        require_str(not_in_datastore, "not_in_datastore", optional=True)
        require_bool(find_first, "find_first")
        terms = parse_order_by(order_by)
        count = check_limit(limit)
        if find_first:
            globs = [c for c in self._search(collections) if _is_glob(c)]
            if globs:
                raise ArgumentConflictError(
                    f"find_first=True needs collections in search order, but {globs[0]!r} is a "
                    "glob, whose matches have no order; list the collections (or a CHAINED "
                    "collection) by name, or pass find_first=False."
                )
        search = self._search_globbed(collections)
        streams = [
            self.registry.stream_datasets(
                name,
                collections=search,
                where=where,
                bind=bind,
                in_datastore=in_datastore,
                not_in_datastore=not_in_datastore,
                find_first=find_first,
                order_by=[str(term) for term in terms],
                limit=count,
            )
            for name in self._dataset_type_names(dataset_type)
        ]
        found = chain.from_iterable(streams)
        return found if count is None else islice(found, count)

    def _dataset_type_names(self, dataset_type: str | DatasetType) -> list[str]:
        if isinstance(dataset_type, DatasetType):
            return [dataset_type.name]
        if _is_glob(dataset_type):
            return sorted(t.name for t in self.registry.queryDatasetTypes(dataset_type))
        self.registry.getDatasetType(dataset_type)  # unknown names fail here
        return [dataset_type]

    def _search_globbed(self, collections: str | Sequence[str] | None) -> list[str]:
        search = self._search(collections)
        found: list[str] = []
        for item in search:
            if _is_glob(item):
                found.extend(self.registry.queryCollections(item))
            else:
                found.append(item)
        return list(dict.fromkeys(found))

    def query_data_ids(
        self,
        dimensions: Iterable[str] | str,
        *,
        where: str | None = "",
        bind: Mapping[str, Any] | None = None,
        order_by: str | Iterable[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[DataCoordinate]:
        """Stream the data IDs of ``dimensions`` the dimension records allow, matching ``where``.

        ``order_by`` names dimensions and record fields (``"-exposure"``,
        ``"exposure.obs_id"``); ties, and everything without it, are ordered
        by the data ID. ``limit`` is the most data IDs returned. Arguments
        are checked at the call (`InvalidArgumentError` for an unknown
        ``order_by`` name or a negative ``limit``).
        """
        names = require_strs(dimensions, "dimensions")
        _check_where(where, bind)
        return self.registry.stream_data_ids(
            names, where=where, bind=bind, order_by=order_by, limit=limit
        )

    def query_dimension_records(
        self,
        element: str,
        *,
        where: str | None = "",
        bind: Mapping[str, Any] | None = None,
        order_by: str | Iterable[str] | None = None,
        limit: int | None = None,
    ) -> Iterator[Any]:
        """Stream the records of one dimension matching ``where``.

        ``order_by`` names the element's own fields (``"obs_id"``), and
        dimensions and record fields (``"-exposure.exposure_time"``); ties,
        and everything without it, are ordered by the record's key.
        ``limit`` is the most records returned. Arguments are checked at the
        call.
        """
        require_str(element, "element")
        _check_where(where, bind)
        return self.registry.stream_dimension_records(
            element, where=where, bind=bind, order_by=order_by, limit=limit
        )

    def query_collections(
        self,
        pattern: str | None = None,
        types: CollectionType | Iterable[CollectionType] | None = None,
    ) -> list[str]:
        """Collection names matching a glob and types (one `CollectionType` or several)."""
        require_str(pattern, "pattern", optional=True)
        return self.registry.queryCollections(pattern, require_collection_types(types))


def _is_glob(name: str) -> bool:
    return any(c in name for c in "*?[")


def _check_where(where: object, bind: object) -> None:
    """Check a query's ``where`` and ``bind`` whole, before any query runs.

    Raises `~databutler.ExpressionError` (a databutler error) for a ``where``
    that is not a `str` or `None` or does not parse, or a ``bind`` that is
    not a mapping of names to supported values.
    """
    parse_where(where)
    check_bind(bind)
