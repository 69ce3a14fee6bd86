"""Destructive commands: ``prune-datasets``, ``remove-runs``, ``empty-trash``.

Each prints what it would do, stops there with ``--dry-run``, and asks
before going on unless given ``--yes``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import click

from ._app import EXIT_ERROR, cli_wording, confirm, main, open_butler
from ._options import DatasetQuery, confirm_options, dataset_query_options, repo_argument
from ._output import dataset_row, progress

if TYPE_CHECKING:
    from .._dataset_ref import DatasetRef
    from ..butler import Butler, PruneResult
    from ..datastores import TrashFailure


def _summary(refs: Iterable[DatasetRef]) -> list[str]:
    """Lines counting datasets by type and run."""
    counts = Counter((row["type"], row["run"]) for row in map(dataset_row, refs))
    return [f"  {n:>8}  {name} in {run}" for (name, run), n in sorted(counts.items())]


@main.command("prune-datasets")
@repo_argument
@dataset_query_options()
@click.option(
    "--tag",
    "tags",
    multiple=True,
    metavar="TAG",
    help="Take the datasets out of TAGGED collection TAG (repeatable).",
)
@click.option("--unstore", is_flag=True, help="Delete their artifacts; the registry keeps them.")
@click.option("--purge", is_flag=True, help="Delete the datasets entirely (implies --unstore).")
@confirm_options
def prune_datasets(
    repo: str,
    query: DatasetQuery,
    tags: tuple[str, ...],
    unstore: bool,
    purge: bool,
    dry_run: bool,
    yes: bool,
) -> None:
    """Untag, unstore or purge datasets.

    The datasets are those DATASET_TYPE and the query options select. An
    artifact that cannot be deleted is reported and exits 1; its dataset stays
    in the trash for empty-trash once the cause is fixed.
    """
    # Pruning nothing checks the options (and the tags) exactly as the real call
    # will, and changes nothing: a read-only repository can be dry-run.
    with open_butler(repo, writeable=not dry_run) as butler:

        def prune(refs: list[DatasetRef]) -> PruneResult:
            return butler.prune(refs, tags=tags, unstore=unstore or None, purge=purge)

        prune([])
        refs = query.refs(butler)
        plan = [f"untag them from {', '.join(tags)}"] if tags else []
        plan += ["purge them"] if purge else ["unstore them"] if unstore else []
        click.echo(f"{len(refs)} dataset(s) selected; would {' and '.join(plan)}:")
        for line in _summary(refs):
            click.echo(line)
        if dry_run or not refs:
            return
        confirm(f"Prune {len(refs)} dataset(s) ({' and '.join(plan)})?", yes=yes)
        with progress(f"Pruning {len(refs)} datasets"):
            result = prune(refs)
    click.echo(
        f"Untagged {result.disassociated}, unstored {result.unstored}, "
        f"purged {result.purged} dataset(s)."
    )
    _report_failures(result.failures)


@main.command("remove-runs")
@repo_argument
@click.argument("runs", nargs=-1, required=True)
@click.option("--unlink", is_flag=True, help="Take the runs out of the chains that list them.")
@confirm_options
def remove_runs(repo: str, runs: tuple[str, ...], unlink: bool, dry_run: bool, yes: bool) -> None:
    """Delete runs with their datasets.

    RUNS are names or globs of RUN collections; their datasets' artifacts
    are deleted too. An artifact that cannot be deleted is reported and exits
    1; its dataset stays in the trash for empty-trash once the cause is fixed.
    """
    from .._collection_type import CollectionType

    with open_butler(repo, writeable=not dry_run) as butler:
        names: list[str] = []
        for run in runs:
            if any(c in run for c in "*?["):
                names += butler.query_collections(run, [CollectionType.RUN])
            else:
                butler.registry.getCollectionType(run)  # an unknown name fails here
                names.append(run)
        names = list(dict.fromkeys(names))
        refs = _run_datasets(butler, names)
        click.echo(f"Would remove {len(names)} run(s) and {len(refs)} dataset(s):")
        for name in names:
            click.echo(f"  {sum(ref.run == name for ref in refs):>8}  {name}")
        if dry_run or not names:
            return
        confirm(f"Remove {len(names)} run(s) and {len(refs)} dataset(s)?", yes=yes)
        with progress(f"Removing {len(names)} runs"):
            removed = butler.remove_runs(names, unlink_from_chains=unlink)
    click.echo(f"Removed {len(names)} run(s) and {removed} dataset(s).")
    _report_failures(removed.failures)


@main.command("empty-trash")
@repo_argument
@confirm_options
def empty_trash(repo: str, dry_run: bool, yes: bool) -> None:
    """Delete the artifacts of trashed datasets."""
    with open_butler(repo, writeable=not dry_run) as butler:
        waiting = butler.empty_trash(dry_run=True)
        click.echo(f"The trash holds {waiting} dataset(s).")
        if dry_run or not waiting:
            return
        confirm(f"Delete the artifacts of {waiting} trashed dataset(s)?", yes=yes)
        with progress("Emptying the trash"):
            emptied = butler.empty_trash()
    click.echo(f"Emptied {emptied} dataset(s) from the trash.")
    _report_failures(emptied.failures)


def _report_failures(failures: Sequence[TrashFailure]) -> None:
    """Each artifact that could not be deleted, as an error; exit with an error if any.

    The other artifacts went; these stay, with their datasets in the trash.
    """
    for failure in failures:
        click.echo(f"Error: {cli_wording(str(failure))}", err=True)
    if failures:
        raise click.exceptions.Exit(EXIT_ERROR)


def _run_datasets(butler: Butler, runs: list[str]) -> list[DatasetRef]:
    """The datasets whose RUN is one of ``runs``."""
    if not runs:
        return []
    return [ref for ref in butler.query_datasets("*", collections=runs) if ref.run in runs]
