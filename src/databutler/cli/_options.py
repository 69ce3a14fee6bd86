"""Options and arguments shared by several commands, defined once."""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ._output import FORMATS, track

if TYPE_CHECKING:
    from .._dataset_ref import DatasetRef
    from ..butler import Butler

__all__ = [
    "DatasetQuery",
    "confirm_options",
    "dataset_query_options",
    "dry_run_option",
    "format_option",
    "parse_iso_datetime",
    "parse_key_values",
    "path_type",
    "repo_argument",
    "split_commas",
    "transfer_option",
    "yes_option",
]

F = TypeVar("F", bound=Callable[..., Any])


def split_commas(values: Iterable[str]) -> list[str]:
    """Values of a repeatable option, each of which may also be comma-separated."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def parse_key_values(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[tuple[str, str], ...]:
    """``NAME=VALUE`` option values as ``(name, value)`` pairs of strings."""
    pairs = []
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{value!r} is not NAME=VALUE (e.g. instrument=HSC).")
        pairs.append((key.strip(), text.strip()))
    return tuple(pairs)


def parse_iso_datetime(
    ctx: click.Context, param: click.Parameter, value: str | None
) -> datetime.datetime | None:
    """An ISO 8601 date or date and time; without a time zone it is UTC."""
    if value is None:
        return None
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO date or date-time (e.g. 2024-01-31 or "
            "2024-01-31T12:00:00+00:00)."
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)


class _PathType(click.Path):
    """`click.Path` that refuses an empty string (which the file system would read as the
    current directory, a place the user never named)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and not value:
            self.fail("is empty: give a path (use . for the current directory).", param, ctx)
        return super().convert(value, param, ctx)


def path_type(**kwargs: Any) -> click.Path:
    """A path parameter type (`click.Path` with ``kwargs``) that refuses an empty path."""
    return _PathType(**kwargs)


repo_argument = click.argument("repo", metavar="REPO")
"""The repository: a directory, ``s3://bucket/prefix``, or its ``butler.yaml``."""

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="table",
    show_default=True,
    help="Output: a table for people, or json (one list of objects) / csv (header + rows).",
)

dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Print what would be done, change nothing."
)

yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")


def confirm_options(f: F) -> F:
    """``--dry-run`` and ``--yes``, for destructive commands."""
    return dry_run_option(yes_option(f))


def transfer_option(default: str | None) -> Callable[[F], F]:
    """``--transfer/-t MODE``: how artifacts move (``none`` means `None`)."""
    return click.option(
        "--transfer",
        "-t",
        default=default,
        show_default=True,
        callback=lambda _ctx, _param, value: None if value in (None, "none") else value,
        help="How to move artifacts: auto, copy, move, link, hardlink, symlink, relsymlink, "
        "direct or none (where the mode applies).",
    )


@dataclass(frozen=True)
class DatasetQuery:
    """The datasets the query options select."""

    dataset_type: str
    collections: tuple[str, ...]
    """Names or globs; empty for every collection."""
    where: str
    in_datastore: str | None
    not_in_datastore: str | None

    def refs(self, butler: Butler) -> list[DatasetRef]:
        """Run the query (one streamed call), counting on a terminal."""
        found = butler.query_datasets(
            self.dataset_type,
            collections=list(self.collections) or "*",
            where=self.where,
            in_datastore=self.in_datastore,
            not_in_datastore=self.not_in_datastore,
        )
        return list(track(found, "Finding datasets"))

    @property
    def filtered(self) -> bool:
        """Whether anything but collections narrows the selection."""
        return bool(
            self.dataset_type != "*" or self.where or self.in_datastore or self.not_in_datastore
        )


def dataset_query_options(*, required: bool = True) -> Callable[[F], F]:
    """``DATASET_TYPE`` and the options that select datasets, passed as ``query=DatasetQuery``.

    Parameters
    ----------
    required : `bool`, optional
        Whether ``DATASET_TYPE`` must be given; otherwise it defaults to every type.
    """
    options: Sequence[Callable[[Any], Any]] = (
        click.argument("dataset_type", metavar="DATASET_TYPE")
        if required
        else click.argument("dataset_type", metavar="[DATASET_TYPE]", required=False, default="*"),
        click.option(
            "--collections",
            "-c",
            multiple=True,
            help="Collections to search (repeatable, comma-separated, globs); all by default.",
        ),
        click.option(
            "--where", default="", help='Expression on the data ID, e.g. "detector IN (1, 2)".'
        ),
        click.option(
            "--in-datastore", metavar="NAME", help="Only datasets the named datastore holds."
        ),
        click.option(
            "--not-in-datastore",
            metavar="NAME",
            help="Only datasets the named datastore does not hold.",
        ),
    )

    def decorator(f: F) -> F:
        @functools.wraps(f)
        def wrapper(
            *args: Any,
            dataset_type: str,
            collections: tuple[str, ...],
            where: str,
            in_datastore: str | None,
            not_in_datastore: str | None,
            **kwargs: Any,
        ) -> Any:
            query = DatasetQuery(
                dataset_type,
                tuple(split_commas(collections)),
                where,
                in_datastore,
                not_in_datastore,
            )
            return f(*args, query=query, **kwargs)

        wrapped: Any = wrapper
        for option in reversed(options):
            wrapped = option(wrapped)
        return wrapped  # type: ignore[no-any-return]

    return decorator
