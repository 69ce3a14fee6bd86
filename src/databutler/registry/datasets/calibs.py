"""CALIBRATION collections: datasets certified as valid over a time range.

One ``dataset_calibs_<digest>`` table per set of required dimensions:
``(calib_id, dataset_type_id, dataset_id, collection_id, <data ID columns>,
validity_begin, validity_end)``. Validity ranges are half-open and stored as
nanoseconds since 1970 (UTC), with sentinels for "unbounded". For one
collection, dataset type and data ID, ranges never overlap: certifying over
an occupied range is refused, and decertifying cuts ranges back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy

from ... import ddl
from ..._collection_type import CollectionType, Timespan
from ..._dataset_ref import DatasetRef
from ..._exceptions import CollectionError, ConflictError
from ..._timespan_ns import MAX_NS as _MAX
from ..._timespan_ns import MIN_NS as _MIN
from ..._timespan_ns import from_ns, to_ns
from ...dimensions import DataCoordinate, DimensionGroup, DimensionUniverse
from .._dimension_values import COLUMN_TYPES
from ..collections import SimpleCollectionManager
from ..interfaces._database import Database, chunked

__all__ = ["CalibrationStorage", "from_ns", "to_ns"]

#: Data IDs whose overlaps one query of `CalibrationStorage.certify` looks for.
_CHECK_BATCH = 200


def calibs_table_name(group: DimensionGroup) -> str:
    """The calibs table of datasets whose types have ``group``'s required dimensions."""
    digest = hashlib.sha1(",".join(group.required).encode()).hexdigest()[:12]
    return f"dataset_calibs_{digest}"


class CalibrationStorage:
    """Certifies, decertifies and finds datasets in CALIBRATION collections.

    Parameters
    ----------
    db : `Database`
        The database.
    universe : `DimensionUniverse`
        The dimensions.
    collections : `SimpleCollectionManager`
        The collections.
    """

    def __init__(
        self, db: Database, universe: DimensionUniverse, collections: SimpleCollectionManager
    ) -> None:
        self._db = db
        self._universe = universe
        self._collections = collections

    def _spec(self, group: DimensionGroup) -> ddl.TableSpec:
        fields = [
            ddl.FieldSpec("calib_id", sqlalchemy.BigInteger, primaryKey=True, autoincrement=True),
            ddl.FieldSpec("dataset_type_id", sqlalchemy.BigInteger, nullable=False),
            ddl.FieldSpec("dataset_id", ddl.GUID, nullable=False),
            ddl.FieldSpec("collection_id", sqlalchemy.BigInteger, nullable=False),
        ]
        for name in group.required:
            key = self._universe[name].key
            fields.append(
                ddl.FieldSpec(name, COLUMN_TYPES[key.dtype], length=key.length, nullable=False)
            )
        fields += [
            ddl.FieldSpec("validity_begin", sqlalchemy.BigInteger, nullable=False),
            ddl.FieldSpec("validity_end", sqlalchemy.BigInteger, nullable=False),
        ]
        return ddl.TableSpec(
            fields,
            indexes=[ddl.IndexSpec("dataset_type_id", "collection_id", *group.required)],
            foreignKeys=[
                ddl.ForeignKeySpec("dataset_type", ("dataset_type_id",), ("dataset_type_id",)),
                ddl.ForeignKeySpec("dataset", ("dataset_id",), ("id",), onDelete="CASCADE"),
                ddl.ForeignKeySpec(
                    "collection", ("collection_id",), ("collection_id",), onDelete="CASCADE"
                ),
            ],
            doc=f"Datasets with dimensions {group} certified in CALIBRATION collections.",
        )

    def table(self, group: DimensionGroup) -> sqlalchemy.Table:
        """The calibs table for ``group`` (created when missing; not inside a transaction)."""
        return self._db.ensureTableExists(calibs_table_name(group), self._spec(group))

    def existing_table(self, group: DimensionGroup) -> sqlalchemy.Table | None:
        """The calibs table for ``group``, or `None` if nothing was ever certified with it.

        For queries: unlike `table`, it never creates the table.
        """
        return self._db.getExistingTable(calibs_table_name(group), self._spec(group))

    def _collection(self, name: str) -> int:
        record = self._collections.find(name)
        if record.type is not CollectionType.CALIBRATION:
            raise CollectionError(
                f"Datasets are certified into CALIBRATION collections; {name!r} is "
                f"{record.type.name}."
            )
        return record.key

    def _same_data_id(
        self,
        table: sqlalchemy.Table,
        group: DimensionGroup,
        data_id: Mapping[str, Any] | DataCoordinate,
    ) -> list[sqlalchemy.ColumnElement[bool]]:
        return [table.c[n] == data_id[n] for n in group.required]

    def certify(
        self,
        collection: str,
        type_key: int,
        group: DimensionGroup,
        refs: Iterable[DatasetRef],
        timespan: Timespan,
    ) -> None:
        """Make ``refs`` valid in ``collection`` over ``timespan`` (all-or-nothing).

        The overlaps are looked for a batch of data IDs a query, with the table
        locked against other writers until the rows are in (so that two clients
        cannot both certify the same data ID over overlapping ranges); a ref
        given twice is certified once.

        Raises
        ------
        ConflictError
            If another (or the same) dataset of that type and data ID is
            already valid somewhere in ``timespan``, or two of ``refs`` have
            the same data ID; nothing changes.
        """
        key = self._collection(collection)
        table = self.table(group)
        begin = to_ns(timespan.begin, unbounded=_MIN)
        end = to_ns(timespan.end, unbounded=_MAX)
        dims = list(group.required)
        by_data_id: dict[tuple[Any, ...], DatasetRef] = {}
        for ref in {ref.id: ref for ref in refs}.values():
            values = tuple(ref.dataId[n] for n in dims)
            other = by_data_id.setdefault(values, ref)
            if other is not ref:
                raise ConflictError(
                    f"Datasets {other.id} and {ref.id} have the same data ID "
                    f"{dict(zip(dims, values, strict=True))}: only one of them can be valid "
                    f"in {collection!r} over {timespan}; certify them over ranges that do not "
                    "overlap, one call each."
                )
        if not by_data_id:
            return
        rows = [
            {
                "dataset_type_id": type_key,
                "dataset_id": ref.id,
                "collection_id": key,
                "validity_begin": begin,
                "validity_end": end,
                **dict(zip(dims, values, strict=True)),
            }
            for values, ref in by_data_id.items()
        ]
        columns = [table.c[n] for n in dims]
        with self._db.transaction(lock=[table]):
            for batch in chunked(list(by_data_id), _CHECK_BATCH):
                where = [
                    table.c.dataset_type_id == type_key,
                    table.c.collection_id == key,
                    table.c.validity_begin < end,
                    table.c.validity_end > begin,
                ]
                if dims:
                    where.append(
                        sqlalchemy.or_(
                            *(
                                sqlalchemy.and_(
                                    *(c == v for c, v in zip(columns, values, strict=True))
                                )
                                for values in batch
                            )
                        )
                    )
                overlapping = sqlalchemy.select(*columns, sqlalchemy.literal(1)).where(*where)
                with self._db.query(overlapping.limit(1)) as result:
                    clash = result.first()
                if clash is not None:
                    raise ConflictError(
                        f"{collection!r} already has a dataset valid for data ID "
                        f"{dict(zip(dims, clash[: len(dims)], strict=True))} within {timespan}; "
                        "certify over a range that does not overlap it, or decertify that "
                        "range first (SqlRegistry.decertify)."
                    )
            self._db.insert(table, *rows)

    def decertify(
        self,
        collection: str,
        type_key: int,
        group: DimensionGroup,
        timespan: Timespan,
        data_ids: Iterable[DataCoordinate] | None = None,
    ) -> int:
        """Remove validity within ``timespan`` (for the given data IDs, or all).

        Ranges that stick out of ``timespan`` are cut back to the part outside
        it (split in two when it is inside them). Returns how many ranges changed.
        """
        key = self._collection(collection)
        table = self.table(group)
        begin = to_ns(timespan.begin, unbounded=_MIN)
        end = to_ns(timespan.end, unbounded=_MAX)
        where = [
            table.c.dataset_type_id == type_key,
            table.c.collection_id == key,
            table.c.validity_begin < end,
            table.c.validity_end > begin,
        ]
        if data_ids is not None:
            wanted = [sqlalchemy.and_(*self._same_data_id(table, group, d)) for d in data_ids]
            if not wanted:
                return 0
            where.append(sqlalchemy.or_(*wanted))
        with self._db.transaction():
            with self._db.query(sqlalchemy.select(table).where(*where)) as result:
                hits = [dict(row) for row in result.mappings()]
            if not hits:
                return 0
            self._db.delete(table, ["calib_id"], *({"calib_id": h["calib_id"]} for h in hits))
            keep = []
            for hit in hits:
                del hit["calib_id"]
                if hit["validity_begin"] < begin:
                    keep.append({**hit, "validity_end": begin})
                if hit["validity_end"] > end:
                    keep.append({**hit, "validity_begin": end})
            self._db.insert(table, *keep)
        return len(hits)

    def certifications(
        self, collection: str, groups: Iterable[DimensionGroup]
    ) -> list[tuple[Any, Timespan]]:
        """``(dataset id, validity range)`` of every certification in ``collection``.

        ``groups`` are the dimensions of the repository's calibration dataset
        types (one calibs table each); one query per table.
        """
        key = self._collection(collection)
        out: list[tuple[Any, Timespan]] = []
        for group in groups:
            table = self.table(group)
            sql = (
                sqlalchemy.select(table.c.dataset_id, table.c.validity_begin, table.c.validity_end)
                .where(table.c.collection_id == key)
                .order_by(table.c.calib_id)
            )
            with self._db.query(sql) as result:
                out.extend((row[0], Timespan(from_ns(row[1]), from_ns(row[2]))) for row in result)
        return out

    def find(
        self,
        collection_key: int,
        type_key: int,
        group: DimensionGroup,
        data_id: DataCoordinate,
        when: Timespan,
    ) -> list[tuple[Any, Any]]:
        """``(dataset_id, run_id)`` of datasets valid in the collection at any time of ``when``."""
        table = self.table(group)
        begin = to_ns(when.begin, unbounded=_MIN)
        end = to_ns(when.end, unbounded=_MAX)
        sql = sqlalchemy.select(table.c.dataset_id).where(
            table.c.dataset_type_id == type_key,
            table.c.collection_id == collection_key,
            *self._same_data_id(table, group, data_id),
            table.c.validity_begin < end,
            table.c.validity_end > begin,
        )
        with self._db.query(sql) as result:
            return [(row[0], None) for row in result]
