"""Pieces of `emptyTrash` shared by every bridge."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from ..interfaces._database import chunked

__all__ = ["check_empty_trash_arguments", "check_record_column", "selected_id_batches"]


def check_empty_trash_arguments(
    records_table: Any, record_class: Any, record_column: str | None
) -> None:
    """Refuse argument combinations `emptyTrash` cannot honour, before touching anything.

    Raises
    ------
    ValueError
        If ``records_table`` comes without ``record_class``, or ``record_column``
        without ``records_table``, or ``record_column`` is not one of its columns.
    """
    if records_table is not None and record_class is None:
        raise ValueError(
            f"emptyTrash was given records table {records_table.name!r} but no record_class to "
            "build item infos from its rows; pass record_class=."
        )
    if record_column is None:
        return
    if records_table is None:
        raise ValueError(
            f"emptyTrash was given record_column={record_column!r} without a records table; "
            "pass records_table= too, or drop record_column."
        )
    check_record_column(records_table, record_column)


def selected_id_batches(
    selected: list[uuid.UUID] | None, size: int
) -> Iterator[list[uuid.UUID] | None]:
    """Batches of ``selected``; one `None` batch (meaning "all") when it is `None`."""
    if selected is None:
        yield None
        return
    yield from chunked(selected, size)


def check_record_column(records_table: Any, record_column: str) -> None:
    """Refuse a ``record_column`` that a records table with a known schema does not have.

    Raises
    ------
    ValueError
        If ``records_table`` has an SQL table without that column.
    """
    table = getattr(records_table, "table", None)
    if table is not None and record_column not in table.columns:
        raise ValueError(
            f"Records table {records_table.name!r} has no column {record_column!r}; its columns "
            f"are {', '.join(table.columns.keys())}."
        )
