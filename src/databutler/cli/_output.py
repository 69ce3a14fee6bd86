"""Printing results: rich tables on a terminal, JSON or CSV for scripts; progress displays.

rich is imported inside the functions that draw, so that importing the
command (and ``databutler --help``) stays fast.
"""

from __future__ import annotations

import csv
import datetime
import enum
import io
import json
import os
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import click

from .._collection_type import Timespan

if TYPE_CHECKING:
    from .._dataset_ref import DatasetRef

__all__ = ["FORMATS", "dataset_row", "emit", "interactive", "progress", "track"]

#: The values of ``--format``.
FORMATS = ("table", "json", "csv")

T = TypeVar("T")


def interactive() -> bool:
    """Whether a person is watching: standard output and error are both terminals."""
    return _is_terminal(sys.stdout) and _is_terminal(sys.stderr)


def _is_terminal(stream: TextIO | None) -> bool:
    """Whether ``stream`` is a terminal; not when closed (None when Python started without it)."""
    try:
        return stream is not None and stream.isatty()
    except ValueError:  # closed since
        return False


def emit(
    rows: Sequence[Mapping[str, Any]],
    fmt: str,
    *,
    columns: Sequence[str] = (),
    title: str | None = None,
    empty: str = "Nothing found.",
) -> None:
    """Print ``rows`` as a table, one JSON list of objects, or CSV with a header.

    Parameters
    ----------
    rows : `~collections.abc.Sequence` [`~collections.abc.Mapping`]
        One mapping per row.
    fmt : `str`
        ``table``, ``json`` or ``csv``.
    columns : `~collections.abc.Sequence` [`str`], optional
        Columns to show first (all of them when there are no rows); the other
        keys of the rows follow in order of appearance.
    title : `str`, optional
        Title of the table (``table`` only).
    empty : `str`, optional
        What ``table`` prints when there are no rows.
    """
    names = list(dict.fromkeys([*columns, *(key for row in rows for key in row)]))
    if fmt == "json":
        click.echo(json.dumps([{k: _plain(v) for k, v in row.items()} for row in rows], indent=2))
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(names)
        writer.writerows([_text(row.get(name)) for name in names] for row in rows)
        click.echo(buffer.getvalue(), nl=False)
    elif not rows:
        click.echo(empty)
    else:
        _print_table(rows, names, title)


def _print_table(rows: Sequence[Mapping[str, Any]], names: list[str], title: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    out = sys.stdout
    # Off a terminal, rich would fit the table into 80 columns and fold ids; don't.
    console = Console(file=out, highlight=False, width=None if _is_terminal(out) else 10_000)
    cells = [[_text(row.get(name)) for name in names] for row in rows]
    table = Table(title=title, title_justify="left")
    for name in names:
        table.add_column(name, overflow="fold")
    for row in cells:
        table.add_row(*row)
    if console.measure(table).maximum > console.width:
        # Too wide: long values (paths, URIs, details) share what the short ones leave.
        table = Table(title=title, title_justify="left", expand=True)
        for i, name in enumerate(names):
            widest = max(len(name), *(len(row[i]) for row in cells))
            long = widest > 40
            table.add_column(
                name, overflow="fold", ratio=1 if long else None, width=None if long else widest
            )
        for row in cells:
            table.add_row(*row)
    console.print(table)


def _plain(value: Any) -> Any:
    """``value`` as JSON can hold it."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, Timespan):  # a record's timespan; None is unbounded
        return {"begin": _plain(value.begin), "end": _plain(value.end)}
    if isinstance(value, bytes):  # a record's region or hash
        return value.hex()
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, uuid.UUID | os.PathLike):
        return str(value)
    return str(value)


def _text(value: Any) -> str:
    """``value`` in one table or CSV cell; lists are joined by spaces."""
    plain = _plain(value)
    if plain is None:
        return ""
    if isinstance(plain, list):
        return " ".join(_text(v) for v in plain)
    if isinstance(plain, bool):
        return "true" if plain else "false"
    if isinstance(plain, dict):
        return json.dumps(plain)
    return str(plain)


def dataset_row(ref: DatasetRef, **extra: Any) -> dict[str, Any]:
    """A dataset as one row: ``type``, ``run``, ``id``, its data ID values, then ``extra``."""
    data_id = getattr(ref.dataId, "mapping", ref.dataId)
    return {"type": ref.datasetType.name, "run": ref.run, "id": ref.id, **data_id, **extra}


@contextmanager
def progress(description: str) -> Iterator[None]:
    """Show a spinner with the elapsed time around a long call, on a terminal only."""
    if not interactive():
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        bar.add_task(description, total=None)
        yield


def track(items: Iterable[T], description: str) -> Iterator[T]:
    """Yield ``items``, counting them on a terminal as they stream in."""
    if not interactive():
        yield from items
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}: {task.completed}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=None)
        for item in items:
            yield item
            bar.advance(task)
