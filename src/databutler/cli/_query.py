"""Read-only listing commands: collections, dataset types, datasets, data IDs, records, where."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import click

from .._collection_type import CollectionType
from ._app import main, open_butler
from ._options import (
    DatasetQuery,
    dataset_query_options,
    format_option,
    repo_argument,
    split_commas,
)
from ._output import dataset_row, emit, track

if TYPE_CHECKING:
    from .._dataset_ref import DatasetRef
    from ..butler import Butler

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
datasets_option = click.option(
    "--datasets",
    multiple=True,
    metavar="DATASET_TYPE",
    help="Only those for which a dataset of this type (name or glob; repeatable, "
    "comma-separated: one of each) exists in --collections.",
)
collections_option = click.option(
    "--collections",
    "-c",
    multiple=True,
    metavar="COLLECTION",
    help="Where to look for --datasets (names or globs; repeatable, comma-separated); "
    "every collection by default.",
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
    A dataset certified in a CALIBRATION collection searched has a row per
    validity range, with collection, valid_from and valid_to (empty: unbounded).
    --where selects datasets: one that a TYPE.timespan condition selects by any
    of its ranges has a row for each of them.
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
        uris = butler.get_uris(refs) if show_uri else {}
        validity = _validity(butler, refs, list(query.collections) or "*")
        rows = []
        for ref in refs:
            extra = {"uri": uris.get(ref.id)} if show_uri else {}
            for certified in validity.get(ref.id) or [{}]:
                rows.append(dataset_row(ref, **certified, **extra))
    emit(rows, fmt, columns=DATASET_COLUMNS, empty="No datasets.")


def _validity(
    butler: Butler, refs: list[DatasetRef], collections: str | list[str]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Where each of ``refs`` is certified: ``collection``, ``valid_from``, ``valid_to``.

    A dataset certified over several ranges gets one entry per range; only
    CALIBRATION collections of the search (chains flattened) count. An
    unbounded side is shown empty (JSON ``null``).
    """
    wanted = {ref.id for ref in refs if ref.datasetType.isCalibration}
    out: dict[uuid.UUID, list[dict[str, Any]]] = {}
    if not wanted:
        return out
    for name in sorted({ref.datasetType.name for ref in refs if ref.id in wanted}):
        for found in butler.query_dataset_associations(
            name,
            collections,
            collection_types=CollectionType.CALIBRATION,
            flatten_chains=True,
        ):
            if found.ref.id in wanted and found.timespan is not None:
                out.setdefault(found.ref.id, []).append(
                    {
                        "collection": found.collection,
                        "valid_from": found.timespan.begin,
                        "valid_to": found.timespan.end,
                    }
                )
    return out


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
@datasets_option
@collections_option
@order_by_option
@limit_option
@format_option
def query_data_ids(
    repo: str,
    dimensions: tuple[str, ...],
    where: str,
    datasets: tuple[str, ...],
    collections: tuple[str, ...],
    order_by: tuple[str, ...],
    limit: int | None,
    fmt: str,
) -> None:
    """List data IDs the dimension records allow.

    The data IDs of DIMENSIONS, with the values they imply; with --datasets,
    only those for which such datasets exist.
    """
    with open_butler(repo) as butler:
        found = butler.query_data_ids(
            dimensions,
            where=where,
            order_by=split_commas(order_by),
            limit=limit,
            **_dataset_constraint(datasets, collections),
        )
        rows = [dict(data_id.mapping) for data_id in track(found, "Finding data IDs")]
        columns = butler.dimensions.group(dimensions).names
    emit(rows, fmt, columns=columns, empty="No data IDs.")


@main.command("query-dimension-records")
@repo_argument
@click.argument("element")
@click.option("--where", default="", help='Expression on the records, e.g. "detector < 10".')
@datasets_option
@collections_option
@order_by_option
@limit_option
@format_option
def query_dimension_records(
    repo: str,
    element: str,
    where: str,
    datasets: tuple[str, ...],
    collections: tuple[str, ...],
    order_by: tuple[str, ...],
    limit: int | None,
    fmt: str,
) -> None:
    """List the records of one dimension.

    --order-by may also name the element's own fields bare (obs_id); with
    --datasets, only records for which such datasets exist.
    """
    with open_butler(repo) as butler:
        found = butler.query_dimension_records(
            element,
            where=where,
            order_by=split_commas(order_by),
            limit=limit,
            **_dataset_constraint(datasets, collections),
        )
        rows = [dict(record.values) for record in track(found, "Finding records")]
    emit(rows, fmt, empty="No records.")


def _dataset_constraint(datasets: tuple[str, ...], collections: tuple[str, ...]) -> dict[str, Any]:
    """``datasets=`` and ``collections=`` of a query from the options (every collection
    by default)."""
    names = split_commas(datasets)
    searched = split_commas(collections)
    if not names:
        if searched:
            raise click.UsageError("--collections says where to look for --datasets; pass both.")
        return {}
    return {"datasets": names, "collections": searched or "*"}
