"""The query face of the `Butler`: the mixin `ButlerQueries`.

It holds the searches of a repository: `query_datasets` (dataset types and
collections may be globs; ``find_first``), `query_data_ids`,
`query_dimension_records` (all three with ``order_by`` and ``limit``, done
in SQL) and `query_collections`, and `_check_where`, which checks a query's
``where`` and ``bind`` whole at the call, before any query runs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from itertools import chain, islice
from typing import Any

from .._arguments import (
    describe,
    merged_data_id,
    require_bool,
    require_collection_types,
    require_collections,
    require_str,
    require_strs,
    require_type,
)
from .._collection_type import CollectionType
from .._dataset_ref import DatasetRef
from .._dataset_type import DatasetType, StorageClass
from .._exceptions import (
    ArgumentConflictError,
    ArgumentTypeError,
    InvalidArgumentError,
    InvalidDatasetIdError,
)
from ..dimensions import DataCoordinate, DataIdLike
from ..registry.queries import (
    DatasetAssociation,
    check_bind,
    check_limit,
    parse_order_by,
    parse_where,
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
        with_dimension_records: bool = False,
        data_id: DataIdLike | None = None,
        **kwargs: Any,
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
        A CALIBRATION collection gives each dataset certified in it once
        (`query_dataset_associations` gives their validity ranges);
        ``find_first=True`` is refused there for a calibration type, whose
        first dataset depends on a time. ``where`` may also compare
        ``ingest_date`` (with an aware datetime or a ``T'...'`` literal).

        Each ref's data ID has its implied values; with
        ``with_dimension_records=True`` it also carries its dimensions' records
        (``ref.dataId.records["exposure"].timespan``), fetched a batch at a time.
        For a calibration type searched in CALIBRATION collections, a ``where``
        naming a dimension whose records have a timespan (``exposure IN (...)``)
        looks the calibrations up by time, in one statement: one ref per
        (data ID, exposure), the dataset valid over the exposure's timespan
        (with ``find_first=True``, that of the first collection that has one;
        two valid at once in that collection are a `CollectionError`).

        ``data_id`` (a mapping or a `DataCoordinate`) and keywords naming
        dimensions (``instrument="HSC", detector=2``) keep the datasets with
        those values, as daf_butler's queries take them; they join ``where``
        with ``AND``.

        Arguments are checked at the call, not when the results are first
        read.

        Raises
        ------
        ArgumentConflictError
            If ``find_first`` is asked with a glob in ``collections``, or
            for a calibration type with a CALIBRATION collection searched.
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
        where, bind = self._with_data_id(where, bind, data_id, kwargs)
        require_str(in_datastore, "in_datastore", optional=True)
        require_str(not_in_datastore, "not_in_datastore", optional=True)
        require_bool(find_first, "find_first")
        require_bool(with_dimension_records, "with_dimension_records")
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
        with self.registry.caches_checked_once():
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
                    with_dimension_records=with_dimension_records,
                )
                for name in self._dataset_type_names(dataset_type, queried=True)
            ]
        found = chain.from_iterable(streams)
        return found if count is None else islice(found, count)

    def _dataset_type_names(
        self, dataset_type: str | DatasetType, *, queried: bool = False
    ) -> list[str]:
        """The names ``dataset_type`` stands for (a glob's matches); an unknown name is
        refused here, or, when it is ``queried`` (by `SqlRegistry.stream_datasets`), by
        the query, which also carries the coherence check (no lookup first)."""
        if isinstance(dataset_type, DatasetType):
            return [dataset_type.name]
        if _is_glob(dataset_type):
            return sorted(t.name for t in self.registry.queryDatasetTypes(dataset_type))
        if not queried:
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
        datasets: str | DatasetType | Iterable[str | DatasetType] | None = None,
        collections: str | Sequence[str] | None = None,
        where: str | None = "",
        bind: Mapping[str, Any] | None = None,
        order_by: str | Iterable[str] | None = None,
        limit: int | None = None,
        with_dimension_records: bool = False,
        data_id: DataIdLike | None = None,
        **kwargs: Any,
    ) -> Iterator[DataCoordinate]:
        """Stream the data IDs of ``dimensions`` the dimension records allow, matching ``where``.

        Each data ID has its implied values (an exposure's ``physical_filter``
        and ``band``); with ``with_dimension_records=True`` it also carries the
        record of each of its dimensions (``data_id.records["exposure"].timespan``),
        fetched a batch of data IDs at a time.

        With ``datasets`` (a dataset type, a glob, or several), only the data
        IDs for which a dataset of each type exists in ``collections`` (names
        or globs; the Butler's collections by default): the dataset has the
        data ID's values of the dimensions they share, any value of the
        others (``detector`` with ``datasets="raw"``: the detectors with a
        raw of any exposure). ``order_by`` names dimensions and record
        fields (``"-exposure"``, ``"exposure.obs_id"``); ties, and everything
        without it, are ordered by the data ID. ``limit`` is the most data
        IDs returned. ``data_id`` and keywords naming dimensions constrain
        the values as in `query_datasets`. Arguments are checked at the call
        (`InvalidArgumentError` for an unknown ``order_by`` name or a
        negative ``limit``, `MissingDatasetTypeError` for an unknown type).
        """
        names = require_strs(dimensions, "dimensions")
        types, search = self._dataset_constraint(datasets, collections)
        _check_where(where, bind)
        where, bind = self._with_data_id(where, bind, data_id, kwargs)
        require_bool(with_dimension_records, "with_dimension_records")
        return self.registry.stream_data_ids(
            names,
            where=where,
            bind=bind,
            order_by=order_by,
            limit=limit,
            datasets=types,
            collections=search,
            with_dimension_records=with_dimension_records,
        )

    def query_dimension_records(
        self,
        element: str,
        *,
        datasets: str | DatasetType | Iterable[str | DatasetType] | None = None,
        collections: str | Sequence[str] | None = None,
        where: str | None = "",
        bind: Mapping[str, Any] | None = None,
        order_by: str | Iterable[str] | None = None,
        limit: int | None = None,
        data_id: DataIdLike | None = None,
        **kwargs: Any,
    ) -> Iterator[Any]:
        """Stream the records of one dimension matching ``where``.

        ``datasets`` and ``collections`` keep only the records for which a
        dataset of each type exists there, as for `query_data_ids`.
        ``order_by`` names the element's own fields (``"obs_id"``), and
        dimensions and record fields (``"-exposure.exposure_time"``); ties,
        and everything without it, are ordered by the record's key.
        ``limit`` is the most records returned. ``data_id`` and keywords
        naming dimensions constrain the values as in `query_datasets`.
        Arguments are checked at the call.
        """
        require_str(element, "element")
        types, search = self._dataset_constraint(datasets, collections)
        _check_where(where, bind)
        where, bind = self._with_data_id(where, bind, data_id, kwargs)
        return self.registry.stream_dimension_records(
            element,
            where=where,
            bind=bind,
            order_by=order_by,
            limit=limit,
            datasets=types,
            collections=search,
        )

    def _with_data_id(
        self,
        where: str | None,
        bind: Mapping[str, Any] | None,
        data_id: object,
        kwargs: Mapping[str, Any],
    ) -> tuple[str | None, Mapping[str, Any] | None]:
        """``where`` and ``bind`` with a data ID's values (``data_id`` and keywords) as
        ``dimension = :value`` terms joined with ``AND``; checked whole (`_check_where`)."""
        given = merged_data_id(data_id, kwargs)
        if not given:
            return where, bind
        universe = self.registry.dimensions
        values = dict(bind or {})
        terms = []
        for name, value in given.items():
            if name not in universe:
                known = ", ".join(sorted(universe.names))
                what = "is not an argument of this query, nor" if name in kwargs else "is not"
                raise InvalidArgumentError(
                    f"data_id: {name!r} {what} a dimension; a data ID (data_id= or keywords) "
                    f"names dimensions ({known}), and other constraints go in where=."
                )
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise ArgumentTypeError(
                    f"data_id: the value of {name!r} must be one int or str, got "
                    f"{describe(value)}; for several values write where='{name} IN (:values)' "
                    "with bind={'values': [...]}."
                )
            key = f"data_id_{name}"
            while key in values:
                key += "_"
            values[key] = value
            terms.append(f"{name} = :{key}")
        joined = " AND ".join(terms)
        where = f"({where}) AND {joined}" if where and where.strip() else joined
        _check_where(where, values)
        return where, values

    def _dataset_constraint(
        self,
        datasets: object,
        collections: object,
    ) -> tuple[list[str] | None, list[str] | None]:
        """The dataset type names and collections (globs expanded) a query must find datasets in.

        `None` twice when there is no ``datasets``; ``collections`` without
        ``datasets`` is an `ArgumentConflictError` (it would mean nothing).
        """
        search: str | Sequence[str] | None = require_collections(collections)
        if datasets is None:
            if search is not None:
                raise ArgumentConflictError(
                    "collections= says where to look for datasets=, which is not given: pass "
                    "datasets=[dataset type, ...] too, or leave collections out."
                )
            return None, None
        what = "a dataset type name or DatasetType, or an iterable of them"
        if isinstance(datasets, str | DatasetType):
            items: list[Any] = [datasets]
        elif isinstance(datasets, Iterable) and not isinstance(datasets, bytes | Mapping):
            items = list(datasets)
        else:
            raise ArgumentTypeError(f"datasets must be {what}, got {describe(datasets)}.")
        if not items:
            raise InvalidArgumentError(
                "datasets is empty: name at least one dataset type, or pass datasets=None."
            )
        names: list[str] = []
        for item in items:
            require_type(item, "datasets", (str, DatasetType), what)
            found = self._dataset_type_names(item)
            if not found:
                raise InvalidArgumentError(
                    f"datasets: no dataset type matches {item!r}; query_dataset_types() lists them."
                )
            names.extend(found)
        return list(dict.fromkeys(names)), self._search_globbed(search)

    def query_dataset_associations(
        self,
        dataset_type: str | DatasetType,
        collections: str | Sequence[str] | None = None,
        *,
        collection_types: CollectionType | Iterable[CollectionType] | None = None,
        flatten_chains: bool = False,
    ) -> Iterator[DatasetAssociation]:
        """Stream each dataset of one type in each collection, with its validity range there.

        daf_butler's ``Registry.queryDatasetAssociations``: for each of
        ``collections`` (names or globs, in order; the Butler's own by
        default) of one of ``collection_types`` (all by default), a
        `~databutler.DatasetAssociation` ``(ref, collection, timespan)`` per
        dataset it holds, ordered by data ID. ``timespan`` is the range over
        which the dataset is certified in a CALIBRATION collection (one
        association per range), `None` in RUN and TAGGED ones. A CHAINED
        collection holds nothing itself; with ``flatten_chains=True`` its
        members are listed in its place. Arguments are checked at the call.

        Raises
        ------
        MissingDatasetTypeError
            If ``dataset_type`` is not registered.
        MissingCollectionError
            If a collection named (not a glob) does not exist.
        ArgumentTypeError
            If an argument has the wrong type.
        """
        require_type(
            dataset_type, "dataset_type", (str, DatasetType), "a dataset type name or a DatasetType"
        )
        search = self._search(collections)
        types = require_collection_types(collection_types, "collection_types")
        require_bool(flatten_chains, "flatten_chains")
        return self.registry.queryDatasetAssociations(
            dataset_type,
            search,
            collectionTypes=tuple(CollectionType) if types is None else types,
            flattenChains=flatten_chains,
        )

    def get_dataset(
        self,
        id: uuid.UUID | str,
        *,
        storage_class: str | StorageClass | None = None,
        dimension_records: bool = False,
        datastore_records: bool = False,
    ) -> DatasetRef | None:
        """The dataset with this id, or `None` if the repository has none.

        As daf_butler's ``Butler.get_dataset``: ``id`` is a `uuid.UUID` or its
        string form; the `DatasetRef` has the full data ID (implied values
        filled), its run and dataset type. ``storage_class`` gives the ref
        that storage class (a `get` with it converts). ``datastore_records``
        is accepted for daf_butler's signature; databutler's refs never carry
        datastore records (the datastore reads its own), so it changes
        nothing. ``dimension_records=True`` is refused: databutler's data IDs
        do not carry records.

        Raises
        ------
        InvalidDatasetIdError
            If ``id`` is not a `uuid.UUID` nor a string that is one.
        ArgumentTypeError
            If another argument has the wrong type.
        InvalidArgumentError
            If ``dimension_records`` is `True`.
        """
        dataset_id = _dataset_id(id)
        require_type(
            storage_class,
            "storage_class",
            (str, StorageClass, type(None)),
            "a storage class name, a StorageClass or None",
        )
        require_bool(dimension_records, "dimension_records")
        require_bool(datastore_records, "datastore_records")
        if dimension_records:
            raise InvalidArgumentError(
                "dimension_records=True is not supported: databutler data IDs do not carry "
                "dimension records; read them with query_dimension_records(element, "
                "where=...) for the ref's data ID."
            )
        ref = self.registry.getDataset(dataset_id)
        if ref is None:
            return None
        data_id = ref.dataId
        if isinstance(data_id, DataCoordinate) and not data_id.has_full():
            (full,) = self.registry.expand_data_ids([data_id])
            ref = DatasetRef(ref.datasetType, full, run=ref.run, id=ref.id)
        if storage_class is not None:
            ref = ref.override_storage_class(storage_class)
        return ref

    def query_collections(
        self,
        pattern: str | None = None,
        types: CollectionType | Iterable[CollectionType] | None = None,
    ) -> list[str]:
        """Collection names matching a glob and types (one `CollectionType` or several)."""
        require_str(pattern, "pattern", optional=True)
        return self.registry.queryCollections(pattern, require_collection_types(types))


def _dataset_id(value: object) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        try:
            return uuid.UUID(value)
        except ValueError:
            pass
    raise InvalidDatasetIdError(
        f"A dataset id is a uuid.UUID or its string form "
        f"('2f0e4c9a-5b1d-4e0a-9c3e-7d6b8a1f2e3d'), got {describe(value)}; pass the id of a "
        "DatasetRef (ref.id) or copy it as query-datasets prints it."
    )


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
