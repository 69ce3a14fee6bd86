"""Read-only listing commands: collections, dataset types, datasets, data IDs, records, where."""

from __future__ import annotations

import click

from ._app import main, open_butler
from ._options import (
    DatasetQuery,
    dataset_query_options,
    format_option,
    repo_argument,
    split_commas,
)
from ._output import dataset_row, emit, track

COLLECTION_TYPES = ("RUN", "TAGGED", "CHAINED", "CALIBRATION")
DATASET_COLUMNS = ("type", "run", "id")

order_by_option = click.option(
    "--order-by",
    "order_by",
    multiple=True,
    metavar="NAME",
    help="Sort by this dimension or record field (exposure.obs_id), '-' in front for "
    "descending (repeatable, comma-separated); ties are sorted by the data ID.",
)
limit_option = click.option(
    "--limit",
    type=int,
    default=None,
    help="Show at most this many results (0 or more); all of them by default.",
)


@main.command("query-collections")
@repo_argument
@click.argument("pattern", required=False)
@click.option(
    "--type",
    "types",
    multiple=True,
    type=click.Choice(COLLECTION_TYPES, case_sensitive=False),
    help="Only collections of this type (repeatable).",
)
@format_option
def query_collections(repo: str, pattern: str | None, types: tuple[str, ...], fmt: str) -> None:
    """List collections.

    Those matching glob PATTERN (all by default), with their type, chain
    children and documentation.
    """
    from .._collection_type import CollectionType

    kinds = [CollectionType[t.upper()] for t in types] or None
    with open_butler(repo) as butler:
        registry = butler.registry
        rows = []
        for name in butler.query_collections(pattern, kinds):
            kind = registry.getCollectionType(name)
            children = registry.getCollectionChain(name) if kind is CollectionType.CHAINED else ()
            rows.append(
                {
                    "name": name,
                    "type": kind.name,
                    "children": list(children),
                    "doc": registry.getCollectionDocumentation(name),
                }
            )
    emit(rows, fmt, columns=("name", "type", "children", "doc"), empty="No collections.")


@main.command("query-dataset-types")
@repo_argument
@click.argument("pattern", required=False)
@format_option
def query_dataset_types(repo: str, pattern: str | None, fmt: str) -> None:
    """List dataset types.

    Those matching glob PATTERN (all by default), with their dimensions and
    storage class.
    """
    with open_butler(repo) as butler:
        rows = [
            {
                "name": t.name,
                "dimensions": list(butler.dimensions.group(t.dimensions).names),
                "storage_class": t.storageClass,
                "is_calibration": t.isCalibration,
            }
            for t in butler.registry.queryDatasetTypes(pattern)
        ]
    columns = ("name", "dimensions", "storage_class", "is_calibration")
    emit(rows, fmt, columns=columns, empty="No dataset types.")


@main.command("query-datasets")
@repo_argument
@dataset_query_options(required=False)
@click.option(
    "--find-first",
    is_flag=True,
    help="For each data ID, only the dataset of the first collection (in the order given, "
    "chains flattened) that has one; collections must be names, not globs.",
)
@order_by_option
@limit_option
@click.option("--show-uri", is_flag=True, help="Add where each artifact is (a uri column).")
@format_option
def query_datasets(
    repo: str,
    query: DatasetQuery,
    find_first: bool,
    order_by: tuple[str, ...],
    limit: int | None,
    show_uri: bool,
    fmt: str,
) -> None:
    """List datasets.

    DATASET_TYPE is a name or glob (every type by default). Each row is the
    dataset's type, run, id and data ID; --order-by also takes run and ingest_date.
    """
    with open_butler(repo) as butler:
        found = butler.query_datasets(
            query.dataset_type,
            collections=list(query.collections) or "*",
            where=query.where,
            in_datastore=query.in_datastore,
            not_in_datastore=query.not_in_datastore,
            find_first=find_first,
            order_by=split_commas(order_by),
            limit=limit,
        )
        refs = list(track(found, "Finding datasets"))
        if not show_uri:
            rows = [dataset_row(ref) for ref in refs]
        else:
            uris = butler.get_uris(refs)
            rows = [dataset_row(ref, uri=uris.get(ref.id)) for ref in refs]
    emit(rows, fmt, columns=DATASET_COLUMNS, empty="No datasets.")


@main.command()
@repo_argument
@dataset_query_options(required=False)
@format_option
def where(repo: str, query: DatasetQuery, fmt: str) -> None:
    """Show which datastores hold each dataset."""
    with open_butler(repo) as butler:
        refs = query.refs(butler)
        held = butler.where(refs)
    rows = [dataset_row(ref, datastores=sorted(held.get(ref.id, ()))) for ref in refs]
    emit(rows, fmt, columns=DATASET_COLUMNS, empty="No datasets.")


@main.command("query-data-ids")
@repo_argument
@click.argument("dimensions", nargs=-1, required=True)
@click.option("--where", default="", help='Expression on the data ID, e.g. "detector > 2".')
@order_by_option
@limit_option
@format_option
def query_data_ids(
    repo: str,
    dimensions: tuple[str, ...],
    where: str,
    order_by: tuple[str, ...],
    limit: int | None,
    fmt: str,
) -> None:
    """List data IDs the dimension records allow.

    The data IDs of DIMENSIONS, with the values they imply.
    """
    with open_butler(repo) as butler:
        found = butler.query_data_ids(
            dimensions, where=where, order_by=split_commas(order_by), limit=limit
        )
        rows = [dict(data_id.mapping) for data_id in track(found, "Finding data IDs")]
        columns = butler.dimensions.group(dimensions).names
    emit(rows, fmt, columns=columns, empty="No data IDs.")


@main.command("query-dimension-records")
@repo_argument
@click.argument("element")
@click.option("--where", default="", help='Expression on the records, e.g. "detector < 10".')
@order_by_option
@limit_option
@format_option
def query_dimension_records(
    repo: str, element: str, where: str, order_by: tuple[str, ...], limit: int | None, fmt: str
) -> None:
    """List the records of one dimension.

    --order-by may also name the element's own fields bare (obs_id).
    """
    with open_butler(repo) as butler:
        found = butler.query_dimension_records(
            element, where=where, order_by=split_commas(order_by), limit=limit
        )
        rows = [dict(record.values) for record in track(found, "Finding records")]
    emit(rows, fmt, empty="No records.")
