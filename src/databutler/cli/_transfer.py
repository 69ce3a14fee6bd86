"""Commands that move artifacts in or out: ingest, transfer, export, import, retrieve."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._app import main, open_butler
from ._inputs import merge_data_id, read_file_table, typed_data_id
from ._options import (
    DatasetQuery,
    dataset_query_options,
    dry_run_option,
    format_option,
    parse_key_values,
    path_type,
    repo_argument,
    transfer_option,
)
from ._output import emit, progress

if TYPE_CHECKING:
    from ..butler import Butler


@main.command("ingest-files")
@repo_argument
@click.argument("dataset_type")
@click.argument("run")
@click.argument("table_file", type=path_type(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--prefix",
    type=path_type(file_okay=False, path_type=Path),
    help="Directory that relative file paths start from; the table's own directory otherwise.",
)
@click.option(
    "--data-id",
    "data_id",
    metavar="NAME=VALUE",
    multiple=True,
    callback=parse_key_values,
    help="A data ID value every file shares, e.g. instrument=HSC (repeatable).",
)
@transfer_option("auto")
@click.option("--formatter", help="Formatter that reads the files (json, npy, ...); by extension.")
@click.option("--skip-existing", is_flag=True, help="Skip files whose datasets exist already.")
def ingest_files(
    repo: str,
    dataset_type: str,
    run: str,
    table_file: Path,
    prefix: Path | None,
    data_id: tuple[tuple[str, str], ...],
    transfer: str | None,
    formatter: str | None,
    skip_existing: bool,
) -> None:
    """Ingest files listed in a CSV/TSV table.

    Each file becomes a DATASET_TYPE dataset in RUN.
    TABLE_FILE is CSV or TSV with a header: the first column is the file (a
    path or URI), the others are data ID values (e.g. path,detector).
    """
    from .. import FileDataset, UnresolvedRef

    entries = read_file_table(table_file, prefix)
    with open_butler(repo, writeable=True) as butler:
        datasets = [
            FileDataset(
                file,
                [
                    UnresolvedRef(
                        dataset_type,
                        typed_data_id(
                            butler.dimensions,
                            merge_data_id(data_id, values, f"{table_file}, row {line}"),
                        ),
                    )
                ],
                formatter,
            )
            for line, (file, values) in enumerate(entries, start=2)
        ]
        with progress(f"Ingesting {len(datasets)} files"):
            refs = butler.ingest(*datasets, transfer=transfer, run=run, skip_existing=skip_existing)
    click.echo(f"Ingested {len(refs)} {dataset_type!r} dataset(s) into {run!r}.")


@main.command("transfer-datasets")
@click.argument("source", metavar="SOURCE")
@click.argument("dest", metavar="DEST")
@dataset_query_options(required=False)
@transfer_option("auto")
@click.option(
    "--register-dataset-types/--no-register-dataset-types",
    default=True,
    show_default=True,
    help="Register missing dataset types in DEST.",
)
@click.option(
    "--transfer-dimensions/--no-transfer-dimensions",
    default=True,
    show_default=True,
    help="Copy the dimension records the data IDs need.",
)
@dry_run_option
def transfer_datasets(
    source: str,
    dest: str,
    query: DatasetQuery,
    transfer: str | None,
    register_dataset_types: bool,
    transfer_dimensions: bool,
    dry_run: bool,
) -> None:
    """Copy datasets to another repository.

    The datasets selected in repository SOURCE go to repository DEST, with
    their ids, dataset types and dimension records.
    """
    with open_butler(source) as origin, open_butler(dest, writeable=not dry_run) as target:
        refs = query.refs(origin)
        with progress(f"Transferring {len(refs)} datasets"):
            moved = target.transfer_from(
                origin,
                refs,
                transfer=transfer or "auto",
                register_dataset_types=register_dataset_types,
                transfer_dimensions=transfer_dimensions,
                dry_run=dry_run,
            )
    verb = "Would transfer" if dry_run else "Transferred"
    click.echo(f"{verb} {len(moved)} of {len(refs)} dataset(s) selected.")


@main.command()
@repo_argument
@click.argument("destination", type=path_type(path_type=Path))
@dataset_query_options(required=False)
@click.option(
    "--format",
    "--manifest-format",
    "manifest_format",
    type=click.Choice(("yaml", "json", "daf_butler")),
    default="yaml",
    show_default=True,
    help="Format of the export: databutler's manifest in YAML or JSON, or daf_butler's "
    "export (for lsst-daf-butler's 'butler import').",
)
@transfer_option("copy")
def export(
    repo: str, destination: Path, query: DatasetQuery, manifest_format: str, transfer: str | None
) -> None:
    """Export datasets to a directory or zip.

    DESTINATION is a new directory or a .zip file.
    Without DATASET_TYPE, --where or datastore options, whole collections are
    exported (every one by default) with their structure, in either format:
    TAGGED membership, chains with their children, and CALIBRATION
    collections with their validity ranges.
    """
    with open_butler(repo) as butler:
        if query.filtered:
            refs, names = query.refs(butler), None
        else:
            refs, names = None, _collections(butler, query.collections)
        with progress("Exporting"):
            written = butler.export(
                destination, refs=refs, collections=names, format=manifest_format, transfer=transfer
            )
    click.echo(f"Exported to {written}.")


def _collections(butler: Butler, patterns: tuple[str, ...]) -> list[str]:
    """The collections named or matched by ``patterns`` (all of them if none)."""
    return [name for pattern in patterns or ("*",) for name in butler.query_collections(pattern)]


@main.command("import")
@repo_argument
@click.argument("source", type=path_type(exists=True, path_type=Path))
@transfer_option("auto")
@click.option("--skip-dimensions", is_flag=True, help="Do not import dimension records.")
@click.option(
    "--skip-existing",
    is_flag=True,
    help="Leave out datasets that exist here already, identical (same id, type, run, data ID).",
)
@click.option(
    "--skip-unknown-fields",
    is_flag=True,
    help="Leave out dimension records and record fields (of a daf_butler export) that this "
    "repository's dimensions have no place for.",
)
def import_(
    repo: str,
    source: Path,
    transfer: str | None,
    skip_dimensions: bool,
    skip_existing: bool,
    skip_unknown_fields: bool,
) -> None:
    """Import an export directory or zip.

    SOURCE is what export wrote: a directory or a .zip file; or a daf_butler
    export (its directory or its YAML file). The export is checked whole
    before anything changes; paths that leave it are refused.
    """
    with open_butler(repo, writeable=True) as butler, progress("Importing"):
        refs = butler.import_(
            source,
            transfer=transfer,
            skip_dimensions=skip_dimensions,
            skip_existing=skip_existing,
            skip_unknown_fields=skip_unknown_fields,
        )
    click.echo(f"Imported {len(refs)} dataset(s).")


@main.command("retrieve-artifacts")
@repo_argument
@click.argument("destination", type=path_type(file_okay=False, path_type=Path))
@dataset_query_options(required=False)
@transfer_option("copy")
@click.option(
    "--preserve-path/--no-preserve-path",
    default=True,
    show_default=True,
    help="Keep the datastore's directory layout under DESTINATION.",
)
@click.option("--overwrite", is_flag=True, help="Replace files already at DESTINATION.")
@format_option
def retrieve_artifacts(
    repo: str,
    destination: Path,
    query: DatasetQuery,
    transfer: str | None,
    preserve_path: bool,
    overwrite: bool,
    fmt: str,
) -> None:
    """Copy datasets' artifacts to a directory.

    The artifacts of the datasets selected go into DESTINATION; the files
    written are listed. A DESTINATION that resolves (links followed) into
    the repository's datastore is refused before anything is written. With
    --transfer hardlink, link, symlink or relsymlink the files written are
    the repository's own artifacts under another name: changing one changes
    the dataset. Use the default, copy, for files to edit.
    """
    with open_butler(repo) as butler:
        refs = query.refs(butler)
        with progress(f"Retrieving {len(refs)} artifacts"):
            paths = butler.retrieve_artifacts(
                refs,
                destination,
                transfer=transfer or "copy",
                preserve_path=preserve_path,
                overwrite=overwrite,
            )
    emit([{"path": path} for path in paths], fmt, columns=("path",), empty="No artifacts.")
