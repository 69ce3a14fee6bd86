"""The query face of the `Butler`: the mixin `ButlerQueries`.

It holds the searches of a repository: `query_datasets` (dataset types and
collections may be globs), `query_data_ids`, `query_dimension_records` and
`query_collections`, and `_check_where`, which checks a query's ``where``
and ``bind`` whole at the call, before any query runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from .._collection_type import CollectionType
from .._dataset_ref import DatasetRef
from .._dataset_type import DatasetType
from ..dimensions import DataCoordinate
from ..registry.queries import check_bind, parse_where
from ._arguments import (
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
    ) -> Iterator[DatasetRef]:
        """Stream the datasets of one type in ``collections`` matching ``where``.

        ``dataset_type`` may be a glob (``"calexp*"``); ``collections`` too
        (``"*"`` for all). Arguments are checked at the call, not when the
        results are first read.
        """
        require_type(
            dataset_type, "dataset_type", (str, DatasetType), "a dataset type name or a DatasetType"
        )
        collections = require_collections(collections)
        _check_where(where, bind)
        require_str(in_datastore, "in_datastore", optional=True)
        require_str(not_in_datastore, "not_in_datastore", optional=True)
        return self._stream_datasets(
            dataset_type, collections, where, bind, in_datastore, not_in_datastore
        )

    def _stream_datasets(
        self,
        dataset_type: str | DatasetType,
        collections: str | Sequence[str] | None,
        where: str | None,
        bind: Mapping[str, Any] | None,
        in_datastore: str | None,
        not_in_datastore: str | None,
    ) -> Iterator[DatasetRef]:
        search = self._search_globbed(collections)
        names = self._dataset_type_names(dataset_type)
        for name in names:
            yield from self.registry.stream_datasets(
                name,
                collections=search,
                where=where,
                bind=bind,
                in_datastore=in_datastore,
                not_in_datastore=not_in_datastore,
            )

    def _dataset_type_names(self, dataset_type: str | DatasetType) -> list[str]:
        if isinstance(dataset_type, DatasetType):
            return [dataset_type.name]
        if any(c in dataset_type for c in "*?["):
            return sorted(t.name for t in self.registry.queryDatasetTypes(dataset_type))
        self.registry.getDatasetType(dataset_type)  # unknown names fail here
        return [dataset_type]

    def _search_globbed(self, collections: str | Sequence[str] | None) -> list[str]:
        search = self._search(collections)
        found: list[str] = []
        for item in search:
            if any(c in item for c in "*?["):
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
    ) -> Iterator[DataCoordinate]:
        """Stream the data IDs of ``dimensions`` the dimension records allow, matching ``where``."""
        names = require_strs(dimensions, "dimensions")
        _check_where(where, bind)
        return iter(self.registry.queryDataIds(names, where=where, bind=bind))

    def query_dimension_records(
        self, element: str, *, where: str | None = "", bind: Mapping[str, Any] | None = None
    ) -> Iterator[Any]:
        """Stream the records of one dimension matching ``where``."""
        require_str(element, "element")
        _check_where(where, bind)
        return iter(self.registry.queryDimensionRecords(element, where=where, bind=bind))

    def query_collections(
        self,
        pattern: str | None = None,
        types: CollectionType | Iterable[CollectionType] | None = None,
    ) -> list[str]:
        """Collection names matching a glob and types (one `CollectionType` or several)."""
        require_str(pattern, "pattern", optional=True)
        return self.registry.queryCollections(pattern, require_collection_types(types))


def _check_where(where: object, bind: object) -> None:
    """Check a query's ``where`` and ``bind`` whole, before any query runs.

    Raises `~databutler.ExpressionError` (a databutler error) for a ``where``
    that is not a `str` or `None` or does not parse, or a ``bind`` that is
    not a mapping of names to supported values.
    """
    parse_where(where)
    check_bind(bind)
