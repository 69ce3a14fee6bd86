"""Commands for whole repositories: ``create``, ``config-dump``, ``demo``."""

from __future__ import annotations

from pathlib import Path

import click

from ._app import main, open_butler
from ._inputs import read_universe
from ._options import path_type, repo_argument


@main.command()
@repo_argument
@click.option("--db", metavar="URI", help="Registry database (postgresql://...); SQLite in REPO.")
@click.option(
    "--datastore",
    metavar="DIR|URI",
    help="Where artifacts go: a directory or s3://bucket/prefix; REPO/files by default.",
)
@click.option(
    "--universe",
    type=path_type(exists=True, dir_okay=False, path_type=Path),
    help="Dimension universe description (JSON); the packaged default otherwise.",
)
@click.option("--namespace", metavar="SCHEMA", help="PostgreSQL schema for the registry tables.")
@click.option("--overwrite", is_flag=True, help="Replace a repository already at REPO.")
def create(
    repo: str,
    db: str | None,
    datastore: str | None,
    universe: Path | None,
    namespace: str | None,
    overwrite: bool,
) -> None:
    """Create a repository.

    By default the registry is an SQLite file in REPO and artifacts go to
    REPO/files.
    """
    from ..butler import Butler

    dimensions = None
    if universe is not None:
        dimensions = read_universe(universe)
    with Butler.create(
        repo,
        db=db,
        datastore=datastore,
        universe=dimensions,
        namespace=namespace,
        overwrite=overwrite,
    ) as butler:
        click.echo(f"Created a repository at {butler.root}.")


@main.command("config-dump")
@repo_argument
def config_dump(repo: str) -> None:
    """Print the repository's butler.yaml."""
    with open_butler(repo) as butler:
        click.echo(butler.config.to_yaml(), nl=False)


@main.command()
@click.argument("directory", required=False, type=path_type(file_okay=False, path_type=Path))
def demo(directory: Path | None) -> None:
    """Build a demo repository and walk through it.

    The repository is made in DIRECTORY (a temporary one, removed afterwards,
    when none is given); each step is printed as it runs.
    """
    import tempfile

    from ..demo import run_demo

    if directory is not None:
        run_demo(directory, echo=click.echo)
        return
    with tempfile.TemporaryDirectory(prefix="databutler-demo-") as tmp:
        run_demo(Path(tmp) / "repo", echo=click.echo)
    click.echo("The repository was temporary and is gone; run 'databutler demo DIR' to keep one.")
