"""Wrong argument types at the `Butler` and `SqlRegistry` boundaries (issue 9, item 11).

Every public method of `Butler` (and `Butler(...)`, `Butler.create`) is
called with one argument replaced by a value of a type it does not accept:
the call must raise `TypeError` or a `DatabutlerError` (never
`AttributeError`, `KeyError`, an SQLAlchemy error, ...), and the
repository must be exactly as before.
"""

from __future__ import annotations

import datetime
import inspect
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from databutler import (
    ArgumentTypeError,
    Butler,
    CollectionType,
    DatabutlerError,
    DatasetRef,
    DatasetType,
    StorageClass,
    Timespan,
)
from databutler._file_dataset import FileDataset
from databutler.dimensions import DimensionUniverse
from databutler.registry import SqlRegistry
from databutler.testing.butler import populate

Accepts = Callable[[Any], bool]


def is_str(value: Any) -> bool:
    return isinstance(value, str)


def optional(accepts: Accepts) -> Accepts:
    return lambda value: value is None or accepts(value)


def is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def is_mapping(value: Any) -> bool:
    return isinstance(value, Mapping)


def is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def is_refs(value: Any) -> bool:
    return isinstance(value, (list, tuple, set, frozenset)) and all(
        isinstance(v, DatasetRef) for v in value
    )


def is_strs(value: Any) -> bool:
    if isinstance(value, str):
        return True
    return isinstance(value, (list, tuple, set, frozenset)) and all(
        isinstance(v, str) for v in value
    )


def is_order_by(value: Any) -> bool:
    """One name, or a list or tuple of them (a set has no order to sort by)."""
    if isinstance(value, str):
        return True
    return isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)


def is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_seconds(value: Any) -> bool:
    """A finite number, 0 or more (not a bool), that a float can hold."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return 0 <= float(value) < float("inf")
    except OverflowError:
        return False


def is_dataset(value: Any) -> bool:
    return isinstance(value, (str, DatasetType, DatasetRef))


def is_type(*types: type) -> Accepts:
    return lambda value: isinstance(value, types)


def is_collection_types(value: Any) -> bool:
    if value is None or isinstance(value, CollectionType):
        return True
    return isinstance(value, (list, tuple, set, frozenset)) and all(
        isinstance(v, CollectionType) for v in value
    )


def is_dataset_types(value: Any) -> bool:
    """A dataset type (name or `DatasetType`), or a non-empty iterable of them."""
    if isinstance(value, (str, DatasetType)):
        return True
    return (
        isinstance(value, (list, tuple, set, frozenset))
        and len(value) > 0
        and all(isinstance(v, (str, DatasetType)) for v in value)
    )


def is_dataset_id(value: Any) -> bool:
    """A `uuid.UUID`, or a string that is one."""
    if isinstance(value, uuid.UUID):
        return True
    try:
        uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        return False
    return True


@dataclass
class Case:
    """A public method, valid arguments for it, and what each argument accepts."""

    call: Callable[..., Any]
    arguments: dict[str, Any]
    accepts: dict[str, Accepts]
    positional: tuple[str, ...] = ()  # arguments passed by position, in this order
    consume: bool = False  # an iterator: read it
    after: Callable[[], None] = field(default=lambda: None)  # checks after a refused call


@dataclass
class Repository:
    butler: Butler
    ref: DatasetRef
    tmp: Path

    def state(self) -> tuple[Any, ...]:
        butler = self.butler
        return (
            sorted(str(r.id) for r in butler.query_datasets("thing", collections="*")),
            sorted(butler.query_collections()),
            sorted(t.name for t in butler.registry.queryDatasetTypes("*")),
            len(list(butler.query_dimension_records("detector"))),
        )


@pytest.fixture
def repository(tmp_path: Path) -> Iterator[Repository]:
    butler = Butler.create(tmp_path / "repo", run="run")
    populate(butler)
    ref = butler.put({"v": 1}, "thing", instrument="HSC", detector=1)
    butler.put({"v": 2}, "thing", instrument="HSC", detector=2)
    yield Repository(butler, ref, tmp_path)
    butler.close()


def cases(repo: Repository) -> dict[str, Case]:
    butler, ref, tmp = repo.butler, repo.ref, repo.tmp
    data_id = {"instrument": "HSC", "detector": 5}
    other = tmp / "other"

    def nothing_created() -> None:
        assert not other.exists()

    refs_only: dict[str, Accepts] = {"refs": is_refs}
    return {
        "__init__": Case(
            Butler,
            {"root": butler.root, "run": None, "collections": None, "writeable": False},
            {
                "root": is_path,
                "run": optional(is_str),
                "collections": optional(is_strs),
                "writeable": is_bool,
            },
        ),
        "create": Case(
            Butler.create,
            {
                "root": str(other),
                "db": None,
                "datastore": None,
                "universe": None,
                "namespace": None,
                "overwrite": False,
                "run": None,
            },
            {
                "root": is_path,
                "db": optional(is_str),
                "datastore": optional(is_type(str, Mapping)),
                "universe": optional(is_type(DimensionUniverse)),
                "namespace": optional(is_str),
                "overwrite": is_bool,
                "run": optional(is_str),
            },
            after=nothing_created,
        ),
        "register_dataset_type": Case(
            butler.register_dataset_type,
            {
                "name": "newtype",
                "dimensions": ["detector"],
                "storage_class": "StructuredDataDict",
                "is_calibration": False,
            },
            {
                "name": is_type(str, DatasetType),
                "dimensions": is_strs,
                "storage_class": is_str,
                "is_calibration": is_bool,
            },
        ),
        "insert_dimension_records": Case(
            butler.insert_dimension_records,
            {
                "element": "detector",
                "records": {"instrument": "HSC", "detector": 50},
                "skip_existing": False,
            },
            {"element": is_str, "records": is_mapping, "skip_existing": is_bool},
            positional=("element", "records"),
        ),
        "collection_chain": Case(
            butler.collection_chain,
            {"parent": "chain", "children": ["run"], "mode": "redefine"},
            {"parent": is_str, "children": is_strs, "mode": is_str},
        ),
        "associate": Case(
            butler.associate, {"tag": "tagged", "refs": [ref]}, {"tag": is_str, **refs_only}
        ),
        "certify": Case(
            butler.certify,
            {"collection": "calib", "refs": [], "begin": None, "end": None},
            {
                "collection": is_str,
                **refs_only,
                "begin": optional(is_type(datetime.datetime)),
                "end": optional(is_type(datetime.datetime)),
            },
        ),
        "put": Case(
            butler.put,
            {"obj": {"v": 3}, "dataset": "thing", "data_id": data_id, "run": "run"},
            {"dataset": is_dataset, "data_id": optional(is_mapping), "run": optional(is_str)},
        ),
        "put_many": Case(
            butler.put_many,
            {"items": [({"v": 3}, "thing", data_id)], "run": "run"},
            {"items": lambda v: False, "run": optional(is_str)},
        ),
        "find_dataset": Case(
            butler.find_dataset,
            {"dataset_type": "thing", "data_id": data_id, "collections": "run", "timespan": None},
            {
                "dataset_type": is_type(str, DatasetType),
                "data_id": optional(is_mapping),
                "collections": optional(is_strs),
                "timespan": optional(is_type(Timespan, datetime.datetime)),
            },
        ),
        "get": Case(
            butler.get,
            {
                "dataset": ref,
                "data_id": None,
                "collections": None,
                "component": None,
                "parameters": None,
                "storage_class": None,
            },
            {
                "dataset": is_dataset,
                "data_id": optional(is_mapping),
                "collections": optional(is_strs),
                "component": optional(is_str),
                "parameters": optional(is_mapping),
                "storage_class": optional(is_type(str, StorageClass)),
            },
        ),
        "get_many": Case(butler.get_many, {"refs": [ref]}, refs_only),
        "get_deferred": Case(
            butler.get_deferred,
            {"dataset": ref, "data_id": None, "collections": None},
            {
                "dataset": is_dataset,
                "data_id": optional(is_mapping),
                "collections": optional(is_strs),
            },
        ),
        "exists": Case(
            butler.exists,
            {"dataset": ref, "data_id": None, "collections": None, "full_check": True},
            {
                "dataset": is_dataset,
                "data_id": optional(is_mapping),
                "collections": optional(is_strs),
                "full_check": is_bool,
            },
        ),
        "exists_many": Case(
            butler.exists_many,
            {"refs": [ref], "full_check": True},
            {**refs_only, "full_check": is_bool},
        ),
        "stored_many": Case(
            butler.stored_many,
            {"refs": [ref], "full_check": True},
            {**refs_only, "full_check": is_bool},
        ),
        "where": Case(butler.where, {"refs": [ref]}, refs_only),
        "query_datasets": Case(
            butler.query_datasets,
            {
                "dataset_type": "thing",
                "collections": "run",
                "where": "",
                "bind": None,
                "in_datastore": None,
                "not_in_datastore": None,
                "find_first": False,
                "order_by": None,
                "limit": None,
                "with_dimension_records": False,
                "data_id": None,
            },
            {
                "with_dimension_records": is_bool,
                "data_id": optional(is_mapping),
                "dataset_type": is_type(str, DatasetType),
                "collections": optional(is_strs),
                "where": optional(is_str),
                "bind": optional(is_mapping),
                "in_datastore": optional(is_str),
                "not_in_datastore": optional(is_str),
                "find_first": is_bool,
                "order_by": optional(is_order_by),
                "limit": optional(is_count),
            },
            consume=True,
        ),
        "query_data_ids": Case(
            butler.query_data_ids,
            {
                "dimensions": ["detector"],
                "datasets": None,
                "collections": None,
                "where": "",
                "bind": None,
                "order_by": None,
                "limit": None,
                "with_dimension_records": False,
                "data_id": None,
            },
            {
                "with_dimension_records": is_bool,
                "data_id": optional(is_mapping),
                "dimensions": is_strs,
                "datasets": optional(is_dataset_types),
                "collections": optional(is_strs),
                "where": optional(is_str),
                "bind": optional(is_mapping),
                "order_by": optional(is_order_by),
                "limit": optional(is_count),
            },
            consume=True,
        ),
        "query_dimension_records": Case(
            butler.query_dimension_records,
            {
                "element": "detector",
                "datasets": None,
                "collections": None,
                "where": "",
                "bind": None,
                "order_by": None,
                "limit": None,
                "data_id": None,
            },
            {
                "element": is_str,
                "data_id": optional(is_mapping),
                "datasets": optional(is_dataset_types),
                "collections": optional(is_strs),
                "where": optional(is_str),
                "bind": optional(is_mapping),
                "order_by": optional(is_order_by),
                "limit": optional(is_count),
            },
            consume=True,
        ),
        "query_dataset_associations": Case(
            butler.query_dataset_associations,
            {
                "dataset_type": "thing",
                "collections": "run",
                "collection_types": None,
                "flatten_chains": False,
            },
            {
                "dataset_type": is_type(str, DatasetType),
                "collections": optional(is_strs),
                "collection_types": is_collection_types,
                "flatten_chains": is_bool,
            },
            consume=True,
        ),
        "get_dataset": Case(
            butler.get_dataset,
            {
                "id": ref.id,
                "storage_class": None,
                "dimension_records": False,
                "datastore_records": False,
            },
            {
                "id": is_dataset_id,
                "storage_class": optional(is_type(str, StorageClass)),
                "dimension_records": is_bool,
                "datastore_records": is_bool,
            },
        ),
        "query_collections": Case(
            butler.query_collections,
            {"pattern": None, "types": None},
            {"pattern": optional(is_str), "types": is_collection_types},
        ),
        "prune": Case(
            butler.prune,
            {"refs": [], "tags": (), "disassociate": None, "unstore": None, "purge": True},
            {
                **refs_only,
                "tags": is_strs,
                "disassociate": optional(is_bool),
                "unstore": optional(is_bool),
                "purge": is_bool,
            },
        ),
        "remove_runs": Case(
            butler.remove_runs,
            {"names": [], "unlink_from_chains": False},
            {"names": is_strs, "unlink_from_chains": is_bool},
        ),
        "empty_trash": Case(butler.empty_trash, {"dry_run": True}, {"dry_run": is_bool}),
        "remove_dataset_type": Case(
            butler.remove_dataset_type, {"name": "thing"}, {"name": is_str}
        ),
        "ingest": Case(
            butler.ingest,
            {
                "datasets": FileDataset(str(tmp / "missing.json"), [ref]),
                "transfer": "copy",
                "run": None,
                "skip_existing": False,
            },
            {
                "datasets": is_type(FileDataset),
                "transfer": optional(is_str),
                "run": optional(is_str),
                "skip_existing": is_bool,
            },
            positional=("datasets",),
        ),
        "transfer_from": Case(
            butler.transfer_from,
            {
                "source": butler,
                "refs": [ref],
                "transfer": "auto",
                "register_dataset_types": True,
                "transfer_dimensions": True,
                "skip_missing": True,
                "dry_run": True,
            },
            {
                "source": is_type(Butler),
                **refs_only,
                "transfer": is_str,
                "register_dataset_types": is_bool,
                "transfer_dimensions": is_bool,
                "skip_missing": is_bool,
                "dry_run": is_bool,
            },
        ),
        "export": Case(
            butler.export,
            {
                "destination": str(other),
                "refs": [ref],
                "collections": None,
                "format": "yaml",
                "transfer": "copy",
            },
            {
                "destination": is_path,
                "refs": optional(is_refs),
                "collections": optional(is_strs),
                "format": is_str,
                "transfer": optional(is_str),
            },
            after=nothing_created,
        ),
        "import_": Case(
            butler.import_,
            {
                "source": str(other),
                "transfer": "auto",
                "skip_dimensions": False,
                "skip_existing": False,
                "skip_unknown_fields": False,
            },
            {
                "source": is_path,
                "transfer": optional(is_str),
                "skip_dimensions": is_bool,
                "skip_existing": is_bool,
                "skip_unknown_fields": is_bool,
            },
        ),
        "retrieve_artifacts": Case(
            butler.retrieve_artifacts,
            {
                "refs": [ref],
                "destination": str(other),
                "transfer": "copy",
                "preserve_path": True,
                "overwrite": False,
            },
            {
                **refs_only,
                "destination": is_path,
                "transfer": is_str,
                "preserve_path": is_bool,
                "overwrite": is_bool,
            },
            after=nothing_created,
        ),
        "migrate_from": Case(
            Butler.migrate_from,
            {
                "source": str(other),
                "root": str(tmp / "migrated"),
                "transfer": "direct",
                "universe": "source",
                "db": None,
                "namespace": None,
                "batch_size": 10,
                "skip_missing": False,
                "skip_unknown_fields": False,
                "progress": None,
            },
            {
                "source": is_path,
                "root": is_path,
                "transfer": is_str,
                "universe": is_str,
                "db": optional(is_str),
                "namespace": optional(is_str),
                "batch_size": lambda v: isinstance(v, int) and not isinstance(v, bool),
                "skip_missing": is_bool,
                "skip_unknown_fields": is_bool,
                "progress": optional(callable),
            },
            after=lambda: None if not (tmp / "migrated").exists() else pytest.fail("made"),
        ),
        "get_uris": Case(butler.get_uris, {"refs": [ref]}, refs_only),
        "verify": Case(
            butler.verify,
            {"repair": False, "delete_unknown": False, "checksums": False, "keep_newer": 0},
            {
                "repair": is_bool,
                "delete_unknown": is_bool,
                "checksums": is_bool,
                "keep_newer": is_seconds,
            },
        ),
    }


#: Public methods without arguments to get wrong.
WITHOUT_ARGUMENTS = {"close", "transaction"}

WRONG = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.binary(max_size=6),
    st.text(max_size=6),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.dictionaries(st.integers(), st.integers(), min_size=1, max_size=2),
    st.lists(st.integers(), min_size=1, max_size=3),
    st.lists(st.none(), min_size=1, max_size=2),
    st.tuples(st.floats()),
    st.sets(st.integers(), min_size=1, max_size=2),
    st.builds(object),
    st.just(Path("/nonexistent/x")),
)


def test_every_public_method_is_covered(repository: Repository) -> None:
    public = {
        name
        for name, member in inspect.getmembers(Butler)
        if not name.startswith("_") and callable(member)
    }
    covered = set(cases(repository)) | WITHOUT_ARGUMENTS
    assert public <= covered, f"no argument-type case for {sorted(public - covered)}"
    for name, case in cases(repository).items():  # every argument of each is tried
        signature = inspect.signature(getattr(Butler, name))
        parameters = {p for p in signature.parameters if p != "self" and not p.startswith("_")} - {
            "kwargs",
            "obj",
        }
        assert parameters == set(case.accepts), name


#: How many calls with a wrong type each property test makes.
WRONG_TYPE_RUNS = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)


def _call_with_a_wrong_type(
    all_cases: dict[str, Case], data: st.DataObject
) -> tuple[Case, str, pytest.ExceptionInfo[BaseException]]:
    """Call a method drawn from ``all_cases`` with one argument of a type it does not take;
    the case, the argument and what it raised (`TypeError` or a `DatabutlerError`)."""
    name = data.draw(st.sampled_from(sorted(all_cases)), label="method")
    case = all_cases[name]
    argument = data.draw(st.sampled_from(sorted(case.accepts)), label="argument")
    accepts = case.accepts[argument]
    value = data.draw(WRONG.filter(lambda v: not accepts(v)), label="value")
    arguments = dict(case.arguments, **{argument: value})
    args = tuple(arguments.pop(name) for name in case.positional)
    with pytest.raises((TypeError, DatabutlerError)) as error:
        result = case.call(*args, **arguments)
        if case.consume:
            list(result)
    return case, argument, error


@WRONG_TYPE_RUNS
@given(data=st.data())
def test_wrong_types_raise_type_error_and_change_nothing(
    repository: Repository, data: st.DataObject
) -> None:
    before = repository.state()
    case, argument, error = _call_with_a_wrong_type(cases(repository), data)
    assert not isinstance(error.value, AttributeError)
    assert isinstance(error.value, DatabutlerError), repr(error.value)  # never a bare TypeError
    if isinstance(error.value, ArgumentTypeError):  # a message naming the argument
        assert argument in str(error.value) or "each of" in str(error.value), str(error.value)
    case.after()
    assert repository.state() == before
    assert repository.butler.verify().ok


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda b, r: b.get(123),
            "dataset must be a DatasetRef, a DatasetType or a dataset type name, got int 123",
        ),
        (
            lambda b, r: b.prune([1, 2], purge=True),
            "refs must be DatasetRef objects (from put or a query), got int 1",
        ),
        (
            lambda b, r: b.put_many(None),
            "items must be an iterable of (obj, dataset type or DatasetRef",
        ),
        (
            lambda b, r: Butler(None),  # type: ignore[arg-type]
            "root must be a path (a str or pathlib.Path), got NoneType None",
        ),
        (
            lambda b, r: b.retrieve_artifacts([r], None),
            "destination must be a directory path (a str or pathlib.Path), got NoneType None",
        ),
        (
            lambda b, r: b.query_datasets("thing", collections=1),
            "collections must be a string or an iterable of strings, got int 1",
        ),
        (lambda b, r: b.prune(r, purge=True), "pass [ref] for one"),
        (lambda b, r: b.verify(repair=1), "repair must be True or False, got int 1"),
    ],
)
def test_the_issue_examples(repository: Repository, call: Any, message: str) -> None:
    before = repository.state()
    with pytest.raises(TypeError) as error:
        call(repository.butler, repository.ref)
    assert message in str(error.value)
    assert isinstance(error.value, ArgumentTypeError) and isinstance(error.value, DatabutlerError)
    assert repository.state() == before


def test_strings_keep_their_meaning(repository: Repository) -> None:
    butler, ref = repository.butler, repository.ref
    # One collection name is a collection, not an iterable of letters.
    assert [
        r.id for r in butler.query_datasets("thing", collections="run", where="detector = 1")
    ] == [ref.id]
    assert butler.get("thing", instrument="HSC", detector=1, collections="run") == {"v": 1}
    assert butler.query_collections(types=CollectionType.RUN) == ["run"]
    assert butler.query_collections(types=(t for t in [CollectionType.RUN])) == ["run"]
    # Refs from any iterable (a generator too) are read once.
    assert butler.get_many(r for r in [ref]) == [{"v": 1}]
    assert butler.prune(iter([ref]), purge=True).purged == 1


# -- the registry (``butler.registry``) ------------------------------------------------------
# daf_butler's users call the registry directly (``registry.findDataset``,
# ``registry.certify``, ...): the same rules hold there.


@pytest.fixture
def registry_repository(tmp_path: Path) -> Iterator[Repository]:
    butler = Butler.create(tmp_path / "repo", run="run")
    populate(butler)
    ref = butler.put({"v": 1}, "thing", instrument="HSC", detector=1)
    butler.registry.registerCollection("calib", CollectionType.CALIBRATION)
    butler.registry.registerCollection("tag", CollectionType.TAGGED, "tagged")
    yield Repository(butler, ref, tmp_path)
    butler.close()


def is_dataset_type(value: Any) -> bool:
    return isinstance(value, (str, DatasetType))


def is_collection_type(value: Any) -> bool:
    if isinstance(value, CollectionType):
        return True
    if isinstance(value, str):
        return value.upper() in CollectionType.__members__
    try:
        CollectionType(value)
    except (ValueError, TypeError):
        return False
    return True


def is_data_id(value: Any) -> bool:
    return value is None or isinstance(value, Mapping)


def is_timespan(value: Any) -> bool:
    return isinstance(value, Timespan)


def registry_cases(repo: Repository) -> dict[str, Case]:
    registry: SqlRegistry = repo.butler.registry
    ref = repo.ref
    thing = registry.getDatasetType("thing")
    utc = datetime.UTC
    span = Timespan(
        datetime.datetime(2024, 1, 1, tzinfo=utc), datetime.datetime(2024, 1, 2, tzinfo=utc)
    )
    data_ids = [{"instrument": "HSC", "detector": 7}]
    return {
        "registerDatasetType": Case(
            registry.registerDatasetType,
            {"datasetType": thing},
            {"datasetType": is_type(DatasetType)},
        ),
        "getDatasetType": Case(registry.getDatasetType, {"name": "thing"}, {"name": is_str}),
        "removeDatasetType": Case(registry.removeDatasetType, {"name": "nope"}, {"name": is_str}),
        "queryDatasetTypes": Case(
            registry.queryDatasetTypes, {"pattern": None}, {"pattern": optional(is_str)}
        ),
        "registerCollection": Case(
            registry.registerCollection,
            {"name": "new", "type": CollectionType.TAGGED, "doc": None},
            {"name": is_str, "type": is_collection_type, "doc": optional(is_str)},
        ),
        "registerRun": Case(
            registry.registerRun,
            {"name": "new", "doc": None},
            {"name": is_str, "doc": optional(is_str)},
        ),
        "getCollectionType": Case(registry.getCollectionType, {"name": "run"}, {"name": is_str}),
        "getCollectionChain": Case(
            registry.getCollectionChain, {"parent": "run"}, {"parent": is_str}
        ),
        "setCollectionChain": Case(
            registry.setCollectionChain,
            {"parent": "tag", "children": ["run"]},
            {"parent": is_str, "children": is_strs},
        ),
        "getCollectionDocumentation": Case(
            registry.getCollectionDocumentation, {"name": "tag"}, {"name": is_str}
        ),
        "setCollectionDocumentation": Case(
            registry.setCollectionDocumentation,
            {"name": "nope", "doc": "d"},
            {"name": is_str, "doc": optional(is_str)},
        ),
        "removeCollection": Case(registry.removeCollection, {"name": "nope"}, {"name": is_str}),
        "queryCollections": Case(
            registry.queryCollections,
            {"pattern": None, "types": None},
            {"pattern": optional(is_str), "types": is_collection_types},
        ),
        "insertDatasets": Case(
            registry.insertDatasets,
            {"datasetType": "nope", "dataIds": data_ids, "run": "run"},
            {"datasetType": is_dataset_type, "run": is_str},
        ),
        "findDataset": Case(
            registry.findDataset,
            {"datasetType": "thing", "dataId": {"instrument": "HSC"}, "collections": "run"},
            {"datasetType": is_dataset_type, "dataId": is_data_id, "collections": is_strs},
        ),
        "queryDatasets": Case(
            registry.queryDatasets,
            {"datasetType": "thing", "collections": "run", "limit": None, "find_first": False},
            {
                "datasetType": is_dataset_type,
                "collections": is_strs,
                "limit": optional(lambda v: isinstance(v, int) and not isinstance(v, bool)),
                "find_first": is_bool,
            },
        ),
        "getDataset": Case(registry.getDataset, {"id": ref.id}, {"id": is_type(uuid.UUID)}),
        "associate": Case(
            registry.associate,
            {"collection": "nope", "refs": [ref]},
            {"collection": is_str, "refs": is_refs},
        ),
        "disassociate": Case(
            registry.disassociate,
            {"collection": "nope", "refs": [ref]},
            {"collection": is_str, "refs": is_refs},
        ),
        "certify": Case(
            registry.certify,
            {"collection": "nope", "refs": [ref], "timespan": span},
            {"collection": is_str, "refs": is_refs, "timespan": is_timespan},
        ),
        "decertify": Case(
            registry.decertify,
            {"collection": "nope", "datasetType": "thing", "timespan": span},
            {"collection": is_str, "datasetType": is_dataset_type, "timespan": is_timespan},
        ),
        "queryDatasetAssociations": Case(
            registry.queryDatasetAssociations,
            {"datasetType": "thing", "collections": "run", "flattenChains": False},
            {"datasetType": is_dataset_type, "collections": is_strs, "flattenChains": is_bool},
            consume=True,
        ),
        "removeDatasets": Case(registry.removeDatasets, {"refs": [ref]}, {"refs": is_refs}),
        "getDatasetLocations": Case(
            registry.getDatasetLocations, {"ref": ref}, {"ref": is_type(type(ref))}
        ),
    }


def _registry_state(repo: Repository) -> tuple[Any, ...]:
    registry = repo.butler.registry
    return (
        repo.state(),
        sorted((c, registry.getCollectionDocumentation(c)) for c in registry.queryCollections()),
    )


@WRONG_TYPE_RUNS
@given(data=st.data())
def test_registry_wrong_types_raise_databutler_errors_and_change_nothing(
    registry_repository: Repository, data: st.DataObject
) -> None:
    before = _registry_state(registry_repository)
    _, _, error = _call_with_a_wrong_type(registry_cases(registry_repository), data)
    assert isinstance(error.value, DatabutlerError), repr(error.value)
    assert _registry_state(registry_repository) == before


def repo_ref(registry: SqlRegistry) -> Any:
    """The one dataset of the registry fixture's run."""
    return registry.queryDatasets("thing", collections="run")[0]


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda r: r.findDataset(None, collections="run"), "datasetType must be a dataset type"),
        (lambda r: r.findDataset("thing", collections=None), "no default collections"),
        (lambda r: r.removeDatasets("run"), "refs must be an iterable of DatasetRef"),
        (lambda r: r.registerCollection("x", "SOMETHING"), "type must be a CollectionType"),
        (lambda r: r.registerRun("x", "a\x00b"), "NUL character"),
        (lambda r: r.setCollectionDocumentation("tag", {"doc"}), "doc must be a string"),
        (lambda r: r.getCollectionChain(["run"]), "collection name"),
        (lambda r: r.queryDatasets("thing", collections="run", limit=2**70), "at most"),
        (lambda r: r.queryDataIds(5), "dimensions must be"),
        (lambda r: r.queryDataIds(["detector"], datasets=[None]), "datasets must be"),
        (lambda r: r.queryDimensionRecords("detector", uuid.uuid4()), "dataIds must be"),
        (lambda r: r.queryDimensionRecords(5), "element must be"),
        (lambda r: r.expandDataId({"instrument": "HSC"}, dimensions=5), "dimensions must be"),
        (lambda r: r.insertDatasets("thing", 5, "run"), "dataIds must be"),
        (lambda r: r.certify("calib", [repo_ref(r)], Timespan(None, None)), "not a calibration"),
    ],
)
def test_registry_examples(registry_repository: Repository, call: Any, message: str) -> None:
    before = _registry_state(registry_repository)
    with pytest.raises(DatabutlerError, match=message):
        call(registry_repository.butler.registry)
    assert _registry_state(registry_repository) == before


def test_registry_collection_types_by_name_or_value(registry_repository: Repository) -> None:
    registry = registry_repository.butler.registry
    assert registry.registerCollection("by-name", "chained")  # type: ignore[arg-type]
    assert registry.registerCollection("by-value", CollectionType.RUN.value)  # type: ignore[arg-type]
    assert registry.getCollectionType("by-name") is CollectionType.CHAINED
    assert registry.getCollectionType("by-value") is CollectionType.RUN


def test_registry_takes_data_coordinates(registry_repository: Repository) -> None:
    """A `DataCoordinate` is a data ID wherever a mapping is (it is not a `Mapping`), in the
    registry and in the butler."""
    registry = registry_repository.butler.registry
    ref = registry_repository.ref
    coordinate = registry.expandDataId(ref.dataId)
    assert registry.expandDataId(coordinate) == coordinate
    assert registry.findDataset("thing", coordinate, collections="run") == ref
    (record,) = registry.queryDimensionRecords("detector", [coordinate])
    assert record.detector == 1
    registry.registerRun("more")
    (other,) = registry.insertDatasets("thing", [coordinate], "more")
    assert other.dataId == ref.dataId and other.run == "more"
    # And the butler, where a ref's data ID goes back in.
    butler = registry_repository.butler
    assert butler.get("thing", ref.dataId, collections="run") == {"v": 1}
    again = butler.put({"v": 3}, "thing", ref.dataId, run="again")
    assert butler.get("thing", coordinate, collections="again") == {"v": 3}
    assert again.dataId == ref.dataId
