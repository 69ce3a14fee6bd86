"""Deleting dataset rows, refused while a datastore still holds one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy

from ..._exceptions import ConflictError, OrphanedRecordError
from ..interfaces._bridge import as_dataset_ids
from ..interfaces._database import Database, chunked

__all__ = ["delete_dataset_rows"]


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
    total = 0
    what = f"delete rows of {table.name}"
    try:
        with db.transaction():
            for batch in chunked(as_dataset_ids(ids), db.IN_BATCH_SIZE):
                # Driver-level: a prune deletes tens of thousands of ids at once.
                keys = db.encode_ids(dict.fromkeys(batch))
                sql = f"DELETE FROM {db.quoted(table)} WHERE {db.sql_in_ids('id', len(keys))}"
                total += db.execute_raw(sql, db.in_ids_params(keys), what=what)
    except ConflictError as exc:
        raise OrphanedRecordError(
            "Cannot delete datasets that are still present in one or more datastores; "
            f"trash or forget them in those datastores first ({exc})."
        ) from exc
    return total
