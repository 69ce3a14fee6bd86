"""Commands that change what the registry knows: dataset types, dimension records, collections."""

from __future__ import annotations

import datetime
from pathlib import Path

import click

from ._app import confirm, main, open_butler
from ._inputs import read_records, typed_record
from ._options import (
    DatasetQuery,
    confirm_options,
    dataset_query_options,
    parse_iso_datetime,
    path_type,
    repo_argument,
)
from ._output import progress

CHAIN_MODES = ("redefine", "extend", "prepend", "remove", "pop")


@main.command("register-dataset-type")
@repo_argument
@click.argument("name")
@click.argument("storage_class")
@click.argument("dimensions", nargs=-1)
@click.option("--is-calibration", is_flag=True, help="Its datasets can be certified.")
def register_dataset_type(
    repo: str, name: str, storage_class: str, dimensions: tuple[str, ...], is_calibration: bool
) -> None:
    """Register a dataset type.

    NAME gets STORAGE_CLASS and DIMENSIONS.
    Registering an identical type again is fine; a different one of the same
    name is an error.
    """
    with open_butler(repo, writeable=True) as butler:
        new = butler.register_dataset_type(
            name, dimensions, storage_class, is_calibration=is_calibration
        )
    click.echo(f"Registered dataset type {name!r}." if new else f"{name!r} was registered already.")


@main.command("remove-dataset-type")
@repo_argument
@click.argument("name")
@confirm_options
def remove_dataset_type(repo: str, name: str, dry_run: bool, yes: bool) -> None:
    """Remove a dataset type that has no datasets."""
    with open_butler(repo, writeable=not dry_run) as butler:
        dataset_type = butler.registry.getDatasetType(name)
        click.echo(f"Would remove dataset type {dataset_type}.")
        if dry_run:
            return
        confirm(f"Remove dataset type {name!r}?", yes=yes)
        butler.remove_dataset_type(name)
    click.echo(f"Removed dataset type {name!r}.")


@main.command("insert-dimension-records")
@repo_argument
@click.argument("file", type=path_type(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--element",
    "-e",
    metavar="DIMENSION",
    help="The dimension (or other element, e.g. visit_definition) of the records (CSV, or a "
    "YAML list).",
)
@click.option("--skip-existing", is_flag=True, help="Skip records identical to stored ones.")
def insert_dimension_records(
    repo: str, file: Path, element: str | None, skip_existing: bool
) -> None:
    """Insert dimension records from YAML or CSV.

    All records go in, or none do.

    \b
    YAML: a list of records (with --element), or a mapping of dimension
          name to a list of records, inserted in file order.
    CSV:  a header naming the fields, then one record per row (with --element).

    Text values are typed by the element's fields (integer keys, floats,
    true/false, ISO dates). A timespan field is {begin, end} with ISO
    date-times or null for unbounded (in CSV, that mapping as JSON text);
    region and bytes fields are hexadecimal text. Elements that are not
    dimensions (visit_definition, visit_system_membership, ...) take
    records the same way.
    """
    groups = read_records(file, element)
    with open_butler(repo, writeable=True) as butler:
        typed = [
            (name, [typed_record(butler.dimensions, name, r, f"{file}, {name}") for r in records])
            for name, records in groups
        ]
        with butler.transaction():
            counts = [
                (name, butler.insert_dimension_records(name, *records, skip_existing=skip_existing))
                for name, records in typed
            ]
    for name, count in counts:
        click.echo(f"Inserted {count} {name} record(s).")


@main.command("collection-chain")
@repo_argument
@click.argument("parent")
@click.argument("children", nargs=-1)
@click.option(
    "--mode",
    type=click.Choice(CHAIN_MODES),
    default="redefine",
    show_default=True,
    help="redefine (replace), extend (append), prepend, remove (these children), "
    "pop (children at these positions).",
)
def collection_chain(repo: str, parent: str, children: tuple[str, ...], mode: str) -> None:
    """Set the children of a CHAINED collection.

    PARENT is created if new; CHILDREN are collection names (positions for
    --mode pop). Prints the new chain.
    """
    with open_butler(repo, writeable=True) as butler:
        chain = butler.collection_chain(parent, children, mode=mode)
    click.echo(f"{parent}: {', '.join(chain) if chain else '(empty)'}")


@main.command()
@repo_argument
@click.argument("tag")
@dataset_query_options()
def associate(repo: str, tag: str, query: DatasetQuery) -> None:
    """Tag the datasets selected into TAG.

    TAG is a TAGGED collection, created if new.
    """
    with open_butler(repo, writeable=True) as butler:
        refs = query.refs(butler)
        with progress(f"Tagging {len(refs)} datasets"):
            butler.associate(tag, refs)
    click.echo(f"Tagged {len(refs)} dataset(s) into {tag!r}.")


@main.command("certify-calibrations")
@repo_argument
@click.argument("collection")
@dataset_query_options()
@click.option(
    "--begin",
    metavar="ISO",
    callback=parse_iso_datetime,
    help="Start of validity (ISO); unbounded if omitted.",
)
@click.option(
    "--end",
    metavar="ISO",
    callback=parse_iso_datetime,
    help="End of validity (ISO, excluded); unbounded too.",
)
def certify_calibrations(
    repo: str,
    collection: str,
    query: DatasetQuery,
    begin: datetime.datetime | None,
    end: datetime.datetime | None,
) -> None:
    """Certify calibrations over a validity range.

    The datasets selected become valid over [--begin, --end) in CALIBRATION
    collection COLLECTION (created if new). Dates without a time zone are UTC.
    """
    with open_butler(repo, writeable=True) as butler:
        refs = query.refs(butler)
        with progress(f"Certifying {len(refs)} datasets"):
            butler.certify(collection, refs, begin, end)
    span = f"[{begin.isoformat() if begin else '-inf'}, {end.isoformat() if end else '+inf'})"
    click.echo(f"Certified {len(refs)} dataset(s) into {collection!r} over {span}.")
