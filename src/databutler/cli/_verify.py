"""``verify``: compare registry, records and storage; optionally repair."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ._app import EXIT_PROBLEMS, confirm, main, open_butler
from ._options import confirm_options, format_option, repo_argument
from ._output import emit, progress

if TYPE_CHECKING:
    from ..butler import Butler, VerifyReport

PROBLEM_COLUMNS = ("kind", "datastore", "dataset_id", "path", "detail")


@main.command()
@repo_argument
@click.option(
    "--repair",
    is_flag=True,
    help=(
        "Fix what is safe: forget missing artifacts and stray locations, empty stale trash, "
        "move the files of an interrupted ingest-files --transfer move back."
    ),
)
@click.option(
    "--delete-unknown",
    is_flag=True,
    help=(
        "Also delete artifacts that no record mentions (implies --repair); never a file "
        "an interrupted move still has to give back."
    ),
)
@click.option("--checksums", is_flag=True, help="Read every artifact and compare checksums.")
@click.option(
    "--keep-newer",
    type=click.FloatRange(min=0, max=1e12),
    default=0,
    metavar="SECONDS",
    callback=lambda _ctx, _param, value: _seconds(value),
    help=(
        "With --delete-unknown, keep unknown artifacts written in the last SECONDS: another "
        "client's put or ingest still running records its files only when it commits. "
        "0 (the default) deletes them all."
    ),
)
@format_option
@confirm_options
def verify(
    repo: str,
    repair: bool,
    delete_unknown: bool,
    checksums: bool,
    keep_newer: float,
    fmt: str,
    dry_run: bool,
    yes: bool,
) -> None:
    """Check that registry, records and storage agree.

    Each problem found is listed.
    With --repair or --delete-unknown, the problems are listed first and
    repaired after confirmation. Exits with 3 if problems remain.
    """
    fixing = (repair or delete_unknown) and not dry_run
    with open_butler(repo, writeable=fixing) as butler:
        found = _check(butler, checksums=checksums)
        rows = [{name: getattr(p, name) for name in PROBLEM_COLUMNS} for p in found.problems]
        emit(rows, fmt, columns=PROBLEM_COLUMNS, empty="No problems found.")
        if found.unchecksummed:
            click.echo(
                f"Note: {found.unchecksummed} artifact(s) have no recorded checksum, so "
                "--checksums compared only their sizes (a datastore records checksums when "
                "its configuration says checksum: true).",
                err=True,
            )
        counts = found.counts()
        summary = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
        if counts:
            click.echo(f"Found {sum(counts.values())} problem(s): {summary}.", err=True)
        if not (fixing and counts):
            if counts:
                raise click.exceptions.Exit(EXIT_PROBLEMS)
            return
        confirm(f"Repair {sum(counts.values())} problem(s)?", yes=yes)
        with progress("Repairing"):
            report = butler.verify(
                repair=True,
                delete_unknown=delete_unknown,
                checksums=checksums,
                keep_newer=keep_newer,
            )
    left = {
        kind: n - report.repaired.get(kind, 0)
        for kind, n in report.counts().items()
        if n > report.repaired.get(kind, 0)
    }
    repaired = ", ".join(f"{n} {kind}" for kind, n in sorted(report.repaired.items()) if n)
    click.echo(f"Repaired {repaired or 'nothing'}.", err=True)
    if left:
        remaining = ", ".join(f"{n} {kind}" for kind, n in sorted(left.items()))
        click.echo(f"Not repaired: {remaining}.", err=True)
        raise click.exceptions.Exit(EXIT_PROBLEMS)


def _check(butler: Butler, *, checksums: bool) -> VerifyReport:
    with progress("Verifying"):
        return butler.verify(checksums=checksums)


def _seconds(value: float) -> float:
    if value != value:  # NaN passes a range check: no comparison holds for it
        raise click.BadParameter("nan is not a number of seconds.")
    return value
