"""``migrate``: a daf_butler repository into a databutler one, resumable, with progress."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from ._app import EXIT_PROBLEMS, main
from ._output import interactive
from ._verify import PROBLEM_COLUMNS


@main.command()
@click.argument("source", metavar="SOURCE")
@click.argument("dest", metavar="DEST")
@click.option(
    "--transfer",
    type=click.Choice(["direct", "copy"]),
    default="direct",
    show_default=True,
    help="direct: the artifacts stay where they are, in the daf_butler datastore; "
    "copy: they are copied into DEST's datastore.",
)
@click.option(
    "--universe",
    type=click.Choice(["source", "default"]),
    default="source",
    show_default=True,
    help="Dimension universe of a new DEST: source (the daf_butler repository's own: data "
    "IDs and records carry over unchanged) or default (databutler's). An existing DEST keeps "
    "its own.",
)
@click.option(
    "--db",
    metavar="URI",
    help="Registry database of a new DEST (postgresql://...); SQLite in DEST by default.",
)
@click.option("--namespace", metavar="SCHEMA", help="PostgreSQL schema of a new DEST's registry.")
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=10_000,
    show_default=True,
    help="Datasets read and written per transaction.",
)
@click.option(
    "--skip-missing",
    is_flag=True,
    help="Leave out datasets whose artifact is missing (listed at the end) instead of stopping.",
)
@click.option(
    "--skip-unknown-fields",
    is_flag=True,
    help="Leave out dimension records and record fields that databutler's dimensions have "
    "no place for.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def migrate(
    source: str,
    dest: str,
    transfer: str,
    universe: str,
    db: str | None,
    namespace: str | None,
    batch_size: int,
    skip_missing: bool,
    skip_unknown_fields: bool,
    quiet: bool,
) -> None:
    """Migrate the daf_butler repository SOURCE into the databutler repository DEST.

    SOURCE is a daf_butler repository root (SQLite or PostgreSQL registry, file
    datastore); it is only read. DEST is created unless it exists: running the same
    command again continues an interrupted migration, skipping the datasets
    already migrated. Dimension records, dataset types, collections (RUN,
    TAGGED, CHAINED, CALIBRATION, with their validity ranges) and datasets
    keep their names, data IDs and ids. DEST is verified at the end; exits
    with 3 if it has problems.
    """
    from ..butler import Butler

    with _progress(quiet) as tick:
        report = Butler.migrate_from(
            source,
            dest,
            transfer=transfer,
            universe=universe,
            db=db,
            namespace=namespace,
            batch_size=batch_size,
            skip_missing=skip_missing,
            skip_unknown_fields=skip_unknown_fields,
            progress=tick,
        )
    click.echo(
        f"Migrated {report.migrated} dataset(s) of {report.total} from {report.source} to "
        f"{report.destination} ({report.already} there already"
        + (f", {report.registry_only} without a file" if report.registry_only else "")
        + ")."
    )
    for path in report.missing:
        click.echo(f"Missing artifact, left out: {path}", err=True)
    if report.trashed:
        click.echo(
            f"{report.trashed} artifact(s) in the source's trash were not carried.", err=True
        )
    if report.ok:
        click.echo(f"Verified: no problems ({report.verify.checked} record(s) checked).")
        return
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(report.verify.counts().items()))
    click.echo(f"Verified: {len(report.verify.problems)} problem(s): {counts}.")
    for problem in report.verify.problems:
        click.echo("  " + " ".join(str(getattr(problem, c)) for c in PROBLEM_COLUMNS), err=True)
    raise click.exceptions.Exit(EXIT_PROBLEMS)


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar of datasets on stderr, when a person watches and --quiet is not given."""
    if quiet or not interactive():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("Migrating", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield tick
