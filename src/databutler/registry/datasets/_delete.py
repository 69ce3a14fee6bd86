"""Deleting dataset rows, refused while a datastore still holds one."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy

from ..._exceptions import ConflictError, OrphanedRecordError
from ..interfaces._bridge import as_dataset_ids
from ..interfaces._database import Database, chunked

__all__ = ["delete_dataset_rows", "queue_dataset_row_deletes"]


def delete_dataset_rows(db: Database, table: sqlalchemy.Table, ids: Iterable[Any]) -> int:
    """Delete rows of the ``dataset`` table by id, in batches, all-or-nothing.

    Returns
    -------
    count : `int`
        How many existed.

    Raises
    ------
    OrphanedRecordError
        If a datastore still holds one of them (the bridge's foreign key);
        nothing is deleted.
    """
    with db.transaction():
        return queue_dataset_row_deletes(db, table, ids)()


def queue_dataset_row_deletes(
    db: Database, table: sqlalchemy.Table, ids: Iterable[Any]
) -> Callable[[], int]:
    """`delete_dataset_rows` as writes of the enclosing transaction, sent with its COMMIT
    where the backend pipelines; returns a function that gives how many existed.

    The `OrphanedRecordError` comes when the deletes are sent.
    """
    what = f"delete rows of {table.name}"
    counts = []
    for batch in chunked(as_dataset_ids(ids), db.IN_BATCH_SIZE):
        # Driver-level: a prune deletes tens of thousands of ids at once.
        keys = db.encode_ids(dict.fromkeys(batch))
        sql = f"DELETE FROM {db.quoted(table)} WHERE {db.sql_in_ids('id', len(keys))}"
        counts.append(db.counted_later(sql, db.in_ids_params(keys), what=what, explain=_orphaned))
    return lambda: sum(count() for count in counts)


def _orphaned(exc: ConflictError) -> OrphanedRecordError:
    return OrphanedRecordError(
        "Cannot delete datasets that are still present in one or more datastores; "
        f"trash or forget them in those datastores first ({exc})."
    )
