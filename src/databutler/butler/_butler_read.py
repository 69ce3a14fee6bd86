"""The reading face of the `Butler`: the mixin `ButlerReads`.

It holds what finds and reads datasets: `find_dataset`, `get` and
`get_many`, `exists`, `exists_many` and `stored_many` (what the registry and
the datastore each know of a dataset), `where` (which datastores hold it),
`get_uris` and `retrieve_artifacts` (the artifacts themselves), and the
resolution of a dataset type and data ID into a ref that they share.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._arguments import (
    require_bool,
    require_collections,
    require_data_id,
    require_dataset,
    require_mapping,
    require_path,
    require_refs,
    require_str,
    require_type,
)
from .._collection_type import Timespan
from .._dataset_ref import DatasetId, DatasetRef
from .._dataset_type import DatasetType, StorageClass
from .._exceptions import InvalidArgumentError
from .._gc import collection_paused
from ..dimensions import DataIdLike
from ..registry.interfaces import FindRider
from ._butler_base import ButlerBase
from ._values import DatasetExistence, DatasetNotFoundError

__all__ = ["ButlerReads"]


class ButlerReads(ButlerBase):
    """Find and read datasets, and ask whether they exist.

    Not used on its own: `Butler` inherits it.
    """

    def find_dataset(
        self,
        dataset_type: str | DatasetType,
        data_id: DataIdLike | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        timespan: Timespan | datetime.datetime | None = None,
        **kwargs: Any,
    ) -> DatasetRef | None:
        """The first matching dataset in the search collections, or `None`.

        CALIBRATION collections are searched for a calibration type when a
        time is known: ``timespan`` (a `Timespan`, or an aware instant), or
        else a dimension of the data ID whose record has a timespan
        (``exposure=...``: the calibration valid over that exposure).

        Raises
        ------
        CollectionError
            If several datasets certified in one collection are valid then
            (the message names them).
        DataIdError
            If the data ID names an exposure without a record or whose
            record has no timespan.
        """
        require_type(
            dataset_type, "dataset_type", (str, DatasetType), "a dataset type name or a DatasetType"
        )
        require_data_id(data_id)
        collections = require_collections(collections)
        require_type(
            timespan,
            "timespan",
            (Timespan, datetime.datetime, type(None)),
            "a Timespan or an aware datetime",
        )
        if isinstance(timespan, datetime.datetime) and timespan.utcoffset() is None:
            raise InvalidArgumentError(
                f"timespan {timespan!r} has no time zone, so names no instant; give an aware "
                "datetime (tzinfo=datetime.UTC) or a Timespan."
            )
        name = dataset_type.name if isinstance(dataset_type, DatasetType) else dataset_type
        parent = name.partition(".")[0]
        return self.registry.findDataset(
            parent, data_id, collections=self._search(collections), timespan=timespan, **kwargs
        )

    def _resolve(
        self,
        dataset: str | DatasetType | DatasetRef,
        data_id: DataIdLike | None,
        collections: str | Sequence[str] | None,
        kwargs: dict[str, Any],
        rider: FindRider | None,
    ) -> tuple[DatasetRef, str | None, list[dict[str, Any]] | None]:
        """The ref to read, the component named in the dataset type (if any), and
        ``rider``'s rows of the dataset, read by its find (`None`: not read, for a ref,
        without a ``rider``, or where the find could not carry them)."""
        require_dataset(dataset)
        require_data_id(data_id)
        collections = require_collections(collections)
        if isinstance(dataset, DatasetRef):
            return dataset, None, None
        name = dataset.name if isinstance(dataset, DatasetType) else dataset
        parent, _, component = name.partition(".")
        search = self._search(collections)
        records = None
        if rider is None:
            ref = self.registry.findDataset(parent, data_id, collections=search, **kwargs)
        else:
            ref, records = self.registry.find_dataset_riding(
                parent, dict(data_id or {}, **kwargs), collections=search, rider=rider
            )
        if ref is None:
            shown = dict(data_id or {}, **kwargs)
            raise DatasetNotFoundError(
                f"No {parent!r} dataset with data ID {shown} in collections {list(search)}; "
                "check the data ID, or search other collections (collections=...)."
            )
        return ref, component or None, records

    def get(
        self,
        dataset: str | DatasetType | DatasetRef,
        data_id: DataIdLike | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        storage_class: str | StorageClass | None = None,
        **kwargs: Any,
    ) -> Any:
        """Read a dataset: by ref, or by dataset type and data ID (a mapping or keywords).

        Parameters
        ----------
        dataset : `str`, `DatasetType` or `DatasetRef`
            What to read: a ref, or a dataset type (``"type.component"``
            names a component) found with ``data_id`` in ``collections``.
        data_id : `~collections.abc.Mapping`, optional
            The data ID (or give it as keywords).
        collections : `str` or `~collections.abc.Sequence` [`str`], optional
            Where to search; the butler's collections by default.
        component : `str`, optional
            Read only this component (``"rowcount"``, ``"header"``, ...; see
            the storage class's components).
        parameters : `~collections.abc.Mapping` [`str`, `object`], optional
            Read parameters of the stored storage class (``columns`` and
            ``rows`` of tables, ``slice`` of arrays, ``hdu`` of FITS), applied
            before any conversion, while reading where the formatter can.
        storage_class : `str` or `StorageClass`, optional
            Return the dataset as this storage class (``"DataFrame"`` for an
            ``ArrowTable`` dataset); `DatasetRef.override_storage_class`
            does the same for a ref.

        Raises
        ------
        DatasetNotFoundError
            If no dataset matches.
        DatasetNotStoredError
            If the dataset exists but its datastore does not hold it.
        StorageClassError
            If the dataset cannot be read as ``storage_class``, or its
            storage class has no such component or parameter (the message
            lists the valid ones).
        """
        require_str(component, "component", optional=True)
        require_mapping(parameters, "parameters")
        require_type(
            storage_class,
            "storage_class",
            (str, StorageClass, type(None)),
            "a storage class name or a StorageClass",
        )
        rider = None if isinstance(dataset, DatasetRef) else self.datastore.records_rider()
        ref, named, records = self._resolve(dataset, data_id, collections, kwargs, rider)
        if storage_class is not None:
            ref = ref.override_storage_class(storage_class)
        if records is not None:  # read with the find: one statement for both
            return self.datastore.get_found(
                ref, records, component=component or named, parameters=parameters
            )
        return self.datastore.get(ref, component=component or named, parameters=parameters)

    def get_many(self, refs: Iterable[DatasetRef]) -> list[Any]:
        """Read many datasets by ref, in order: one records query per batch, then the artifacts.

        Raises
        ------
        DatasetNotStoredError
            If a dataset is not held by the datastore; nothing is returned.
        """
        refs = require_refs(refs)
        with collection_paused():  # the rows and paths of a batch go by reference counting
            return self.datastore.get_many(refs)

    def exists(
        self,
        dataset: str | DatasetType | DatasetRef,
        data_id: DataIdLike | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        full_check: bool = True,
        **kwargs: Any,
    ) -> DatasetExistence:
        """What the registry and datastore know of one dataset.

        Returns
        -------
        existence : `DatasetExistence`
            True only when the dataset can be read: `DatasetExistence.VERIFIED`
            (artifact found), or `DatasetExistence.KNOWN` with
            ``full_check=False`` (recorded, artifact not looked for). A
            dataset only in the registry (`DatasetExistence.RECORDED`) is
            false; ``DatasetExistence.RECORDED in flags`` tells it apart from
            `DatasetExistence.NONE`.
        """
        require_bool(full_check, "full_check")
        try:
            ref, _, _ = self._resolve(dataset, data_id, collections, kwargs, None)
        except DatasetNotFoundError:
            return DatasetExistence.NONE
        return self._existence([ref], full_check=full_check)[ref.id]

    def _existence(
        self, refs: list[DatasetRef], *, full_check: bool
    ) -> dict[DatasetId, DatasetExistence]:
        answers = self.datastore.existence_many(refs, full_check=full_check)
        # The registry is asked only about datasets the datastore cannot vouch for.
        nothing = (False, False, False)
        ids = [r.id for r in refs if not answers.get(r.id, nothing)[2]]
        recorded = self.registry.existing_dataset_ids(ids) if ids else set()
        result: dict[DatasetId, DatasetExistence] = {}
        for ref in refs:
            flags = DatasetExistence.NONE
            known, present, registered = answers.get(ref.id, nothing)
            if registered or ref.id in recorded:
                flags |= DatasetExistence.RECORDED
            if known:
                flags |= DatasetExistence.DATASTORE
            if present:
                flags |= DatasetExistence.ARTIFACT
            elif not full_check and DatasetExistence.DATASTORE in flags:
                flags |= DatasetExistence.ASSUMED
            result[ref.id] = flags
        return result

    def exists_many(
        self, refs: Iterable[DatasetRef], *, full_check: bool = True
    ) -> dict[DatasetRef, DatasetExistence]:
        """Registry and datastore state of many refs (`exists` for each), in a few queries."""
        refs = require_refs(refs)
        require_bool(full_check, "full_check")
        flags = self._existence(refs, full_check=full_check)
        return {ref: flags[ref.id] for ref in refs}

    def stored_many(
        self, refs: Iterable[DatasetRef], *, full_check: bool = True
    ) -> dict[DatasetRef, bool]:
        """Whether the datastore holds each ref (and, with ``full_check``, its artifact exists)."""
        refs = require_refs(refs)
        require_bool(full_check, "full_check")
        wanted = DatasetExistence.DATASTORE | (
            DatasetExistence.ARTIFACT if full_check else DatasetExistence.NONE
        )
        return {
            ref: wanted in flags
            for ref, flags in self.exists_many(refs, full_check=full_check).items()
        }

    def where(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, set[str]]:
        """Which datastores hold each dataset (every given id is a key)."""
        return self.registry.datastore_bridges.locate(require_refs(refs))

    def retrieve_artifacts(
        self,
        refs: Iterable[DatasetRef],
        destination: str | os.PathLike[str],
        *,
        transfer: str = "copy",
        preserve_path: bool = True,
        overwrite: bool = False,
    ) -> list[Path]:
        """Copy the artifacts of ``refs`` into a local directory; return the files written."""
        refs = require_refs(refs)
        require_path(destination, "destination", what="a directory path")
        require_str(transfer, "transfer")
        require_bool(preserve_path, "preserve_path")
        require_bool(overwrite, "overwrite")
        return self.datastore.retrieve_artifacts(
            refs, destination, transfer=transfer, preserve_path=preserve_path, overwrite=overwrite
        )

    def get_uris(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, str]:
        """Where the artifact of each stored dataset is."""
        return self.datastore.get_uris(require_refs(refs))
