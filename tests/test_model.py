"""Pure values: dataset references, datastore transactions, the universe, the exceptions."""

from __future__ import annotations

import dataclasses
import logging
import pickle
import types
import uuid
from typing import Any

import pytest
import sqlalchemy
from hypothesis import given
from hypothesis import strategies as st

import databutler
import databutler.registry.interfaces as interfaces
from databutler import (
    AlreadyExistsError,
    AmbiguousDatasetError,
    ArgumentTypeError,
    ConfigurationError,
    ConflictError,
    DatabaseConflictError,
    DatabaseConnectionError,
    DatabaseError,
    DatabutlerError,
    DatasetRef,
    DatasetType,
    DatastoreTransaction,
    DimensionUniverse,
    IncompatibleVersionError,
    InvalidArgumentError,
    InvalidDatasetIdError,
    InvalidNameError,
    ManagerMismatchError,
    MissingManagerError,
    OrphanedRecordError,
    PositionError,
    ReadOnlyDatabaseError,
    SchemaAlreadyDefinedError,
    SourceFileError,
    SourceNotFoundError,
    SourcePermissionError,
    TransactionAbortedError,
    UnresolvedRef,
)
from databutler._dataset_ref import require_dataset_id
from databutler.registry.interfaces import FakeDatasetRef

RAW = DatasetType("raw", ["instrument", "exposure", "detector"], "StructuredDataDict")
CALEXP = DatasetType("calexp", ["instrument", "visit", "detector"], "StructuredDataDict")

# ----------------------------------------------------------------------
# FakeDatasetRef


def test_fake_ref_str_and_repr() -> None:
    u = uuid.uuid4()
    ref = FakeDatasetRef(u)
    assert ref.id is u
    assert str(ref) == f"dataset_id={u}"
    assert repr(ref) == f"FakeDatasetRef({u})"


def test_fake_ref_equality_and_hash() -> None:
    u, v = uuid.uuid4(), uuid.uuid4()
    ref = FakeDatasetRef(u)
    assert ref == FakeDatasetRef(u)
    assert ref != FakeDatasetRef(v)
    assert hash(ref) == hash(u)
    # Equal to anything with the same id, such as a full DatasetRef ...
    full = DatasetRef(RAW, {"exposure": 1}, run="r", id=u)
    assert ref == full
    assert full == ref
    assert ref == types.SimpleNamespace(id=u)
    assert ref != DatasetRef(RAW, {}, id=v)
    # ... but not to objects without an id, nor to the bare UUID.
    assert ref != u
    assert ref != "x"
    assert ref != None  # noqa: E711
    assert len({ref, FakeDatasetRef(u), FakeDatasetRef(v)}) == 2


def test_fake_ref_has_no_dataset_type() -> None:
    ref = FakeDatasetRef(uuid.uuid4())
    with pytest.raises(AttributeError, match="has no dataset type"):
        _ = ref.datasetType
    assert not hasattr(ref, "datasetType")


def test_fake_ref_is_immutable() -> None:
    u = uuid.uuid4()
    ref = FakeDatasetRef(u)
    with pytest.raises(AttributeError, match="immutable"):
        ref.id = uuid.uuid4()  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        ref.other = 1  # type: ignore[attr-defined]
    assert ref.id == u
    assert not hasattr(ref, "__dict__")


@pytest.mark.parametrize("bad", [None, "5f1f1a5e-0000-4000-8000-000000000000", 1, b"x" * 16])
def test_fake_ref_rejects_non_uuid(bad: Any) -> None:
    with pytest.raises(
        InvalidDatasetIdError, match=r"FakeDatasetRef needs a uuid\.UUID"
    ) as excinfo:
        FakeDatasetRef(bad)
    assert isinstance(excinfo.value, TypeError)


@given(st.uuids())
def test_fake_ref_pickles(u: uuid.UUID) -> None:
    ref = FakeDatasetRef(u)
    copy = pickle.loads(pickle.dumps(ref))
    assert type(copy) is FakeDatasetRef
    assert copy == ref
    assert copy.id == u
    assert hash(copy) == hash(ref)


# ----------------------------------------------------------------------
# DatasetRef


def test_dataset_ref_is_frozen_and_hashable() -> None:
    u = uuid.uuid4()
    ref = DatasetRef(RAW, {"exposure": 1, "detector": 2}, run="run1", id=u)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.id = uuid.uuid4()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.run = "other"  # type: ignore[misc]
    assert ref.id == u
    same = DatasetRef(RAW, {"detector": 2, "exposure": 1}, run="run1", id=u)
    assert ref == same
    assert hash(ref) == hash(same)
    assert len({ref, same}) == 1
    assert ref != DatasetRef(RAW, {"exposure": 1, "detector": 3}, run="run1", id=u)
    assert ref != DatasetRef(CALEXP, {"exposure": 1, "detector": 2}, run="run1", id=u)
    assert ref != DatasetRef(RAW, {"exposure": 1, "detector": 2}, run="run2", id=u)
    assert ref != DatasetRef(RAW, {"exposure": 1, "detector": 2}, run="run1", id=uuid.uuid4())
    assert dataclasses.replace(ref, run="run2").run == "run2"
    assert pickle.loads(pickle.dumps(ref)) == ref


def test_dataset_ref_copies_its_data_id() -> None:
    u = uuid.uuid4()
    data_id = {"exposure": 1}
    ref = DatasetRef(RAW, data_id, id=u)
    data_id["exposure"] = 2
    assert ref.dataId == {"exposure": 1}
    assert ref == DatasetRef(RAW, {"exposure": 1}, id=u)
    assert ref.run is None


def test_dataset_ref_needs_an_id() -> None:
    with pytest.raises(AmbiguousDatasetError, match=r"has no id.*UnresolvedRef") as excinfo:
        DatasetRef(RAW, {"exposure": 1}, run="r")
    assert isinstance(excinfo.value, DatabutlerError)
    with pytest.raises(AmbiguousDatasetError, match="has no id"):
        DatasetRef(RAW, {}, "r", None)


@pytest.mark.parametrize("bad", [str(uuid.uuid4()), 5, uuid.uuid4().bytes])
def test_dataset_ref_rejects_non_uuid_id(bad: Any) -> None:
    with pytest.raises(InvalidDatasetIdError, match=r"not a uuid\.UUID.*uuid\.UUID\(\.\.\.\)"):
        DatasetRef(RAW, {}, id=bad)


def test_dataset_ref_needs_a_dataset_type() -> None:
    u = uuid.uuid4()
    message = r"needs a DatasetType, not str 'raw': pass registry\.getDatasetType\('raw'\)"
    with pytest.raises(ArgumentTypeError, match=message) as excinfo:
        DatasetRef("raw", {}, id=u)  # type: ignore[arg-type]
    assert isinstance(excinfo.value, DatabutlerError)
    assert "UnresolvedRef" in str(excinfo.value)
    with pytest.raises(ArgumentTypeError, match="needs a DatasetType, not NoneType"):
        DatasetRef(None, {}, id=u)  # type: ignore[arg-type]
    # The dataset type is checked first: a name without an id names both fixes.
    with pytest.raises(ArgumentTypeError, match="needs a DatasetType"):
        DatasetRef("raw", {})  # type: ignore[arg-type]


def test_dataset_ref_refuses_a_data_id_that_is_not_a_mapping() -> None:
    with pytest.raises(ArgumentTypeError, match="data ID must be a mapping"):
        DatasetRef(RAW, 5, id=uuid.uuid4())  # type: ignore[arg-type]


def test_unresolved_ref() -> None:
    data_id = {"exposure": 1}
    ref = UnresolvedRef("raw", data_id, run="r")
    data_id["exposure"] = 2
    assert ref.data_id == {"exposure": 1}
    assert ref.dataset_type_name == "raw"
    assert UnresolvedRef(RAW, {}).dataset_type_name == "raw"
    assert ref == UnresolvedRef("raw", {"exposure": 1}, "r")
    assert ref != UnresolvedRef("raw", {"exposure": 2}, "r")
    assert len({ref, UnresolvedRef("raw", {"exposure": 1}, "r")}) == 1
    assert not hasattr(ref, "id")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.run = "other"  # type: ignore[misc]
    assert databutler.UnresolvedRef is UnresolvedRef


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((5, {}), "dataset_type must be a dataset type name or a DatasetType"),
        (("", {}), "dataset_type must be a dataset type name or a DatasetType"),
        (("raw", 5), "data ID must be a mapping"),
        (("raw", {}, 5), "run must be a RUN collection name or None"),
    ],
)
def test_unresolved_ref_refuses_bad_values(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ArgumentTypeError, match=message):
        UnresolvedRef(*args)


def test_unresolved_ref_has_no_id_for_the_bridge() -> None:
    with pytest.raises(AmbiguousDatasetError, match=r"has no id.*ingest"):
        require_dataset_id(UnresolvedRef("raw", {}))


def test_require_dataset_id() -> None:
    u = uuid.uuid4()
    assert require_dataset_id(DatasetRef(RAW, {}, id=u)) is u
    assert require_dataset_id(FakeDatasetRef(u)) is u
    with pytest.raises(InvalidDatasetIdError, match="with an 'id' attribute"):
        require_dataset_id(u)
    with pytest.raises(InvalidDatasetIdError, match=r"is a str, not a uuid\.UUID"):
        require_dataset_id(types.SimpleNamespace(id=str(u)))


# ----------------------------------------------------------------------
# DatastoreTransaction


def test_rollback_runs_undo_actions_lifo() -> None:
    calls: list[Any] = []
    t = DatastoreTransaction()
    t.registerUndo("a", calls.append, "a")
    t.registerUndo("b", lambda *args, **kw: calls.append((args, kw)), 1, 2, key="v")
    t.registerUndo("c", calls.append, "c")
    t.rollback()
    assert calls == ["c", ((1, 2), {"key": "v"}), "a"]
    # The log is consumed: a second rollback runs nothing.
    t.rollback()
    assert len(calls) == 3


def test_failing_undo_is_logged_and_the_rest_still_run(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def fail() -> None:
        calls.append("fail")
        raise OSError("disk gone")

    t = DatastoreTransaction()
    t.registerUndo("first", calls.append, "first")
    t.registerUndo("broken", fail)
    t.registerUndo("last", calls.append, "last")
    with caplog.at_level(logging.ERROR, logger="databutler.transaction"):
        t.rollback()
    assert calls == ["last", "fail", "first"]
    [record] = [r for r in caplog.records if r.name == "databutler.transaction"]
    assert record.levelno == logging.ERROR
    assert "'broken'" in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], OSError)


def test_undo_with_registers_only_on_success() -> None:
    calls: list[str] = []
    t = DatastoreTransaction()
    with t.undoWith("ok", calls.append, "ok"):
        pass
    with pytest.raises(ValueError, match="failed"), t.undoWith("bad", calls.append, "bad"):
        raise ValueError("failed")
    assert calls == []
    t.rollback()
    assert calls == ["ok"]


def test_abandon_keeps_the_work_without_undo_or_after_commit_actions() -> None:
    calls: list[str] = []
    t = DatastoreTransaction()
    t.registerUndo("undo", calls.append, "undo")
    t.register_commit(lambda: calls.append("after"))
    t.abandon()
    t.rollback()
    t.commit()
    assert calls == []


def test_child_commit_hands_undos_to_parent() -> None:
    calls: list[str] = []
    parent = DatastoreTransaction()
    parent.registerUndo("p1", calls.append, "p1")
    child = DatastoreTransaction(parent)
    assert child.parent is parent
    child.registerUndo("c1", calls.append, "c1")
    child.registerUndo("c2", calls.append, "c2")
    child.commit()
    parent.registerUndo("p2", calls.append, "p2")
    # The child has nothing left of its own.
    child.rollback()
    assert calls == []
    parent.rollback()
    assert calls == ["p2", "c2", "c1", "p1"]


def test_child_rollback_leaves_parent_alone() -> None:
    calls: list[str] = []
    parent = DatastoreTransaction()
    parent.registerUndo("p", calls.append, "p")
    child = DatastoreTransaction(parent)
    child.registerUndo("c", calls.append, "c")
    child.rollback()
    assert calls == ["c"]
    parent.rollback()
    assert calls == ["c", "p"]


def test_top_level_commit_drops_undos() -> None:
    calls: list[str] = []
    t = DatastoreTransaction()
    t.registerUndo("x", calls.append, "x")
    t.commit()
    t.rollback()
    assert calls == []


# ----------------------------------------------------------------------
# DimensionUniverse


def test_universe_equality() -> None:
    assert DimensionUniverse() == DimensionUniverse()
    assert hash(DimensionUniverse()) == hash(DimensionUniverse())
    assert DimensionUniverse() != DimensionUniverse(version=DimensionUniverse().version + 1)
    assert DimensionUniverse() != DimensionUniverse(namespace="other")
    with pytest.raises(dataclasses.FrozenInstanceError):
        DimensionUniverse().version = 5  # type: ignore[misc]


def test_default_universe_round_trips() -> None:
    universe = DimensionUniverse()
    assert DimensionUniverse.from_json(universe.to_json()) == universe


@given(namespace=st.text(), version=st.integers(min_value=-(2**63), max_value=2**63))
def test_universe_json_round_trip(namespace: str, version: int) -> None:
    universe = DimensionUniverse(namespace=namespace, version=version)
    text = universe.to_json()
    assert isinstance(text, str)
    assert DimensionUniverse.from_json(text) == universe


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "{not json",
        "[]",
        "null",
        "42",
        "{}",
        '{"namespace": "x"}',
        '{"version": 1}',
        '{"namespace": "x", "version": "one"}',
        '{"namespace": "x", "version": null}',
    ],
)
def test_universe_from_garbage_raises_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="is not valid; expected a JSON object"):
        DimensionUniverse.from_json(text)


# ----------------------------------------------------------------------
# Exceptions and exports


def _error_names() -> list[str]:
    return [name for name in databutler.__all__ if name.endswith("Error")]


@pytest.mark.parametrize("name", _error_names())
def test_every_public_error_is_a_databutler_error(name: str) -> None:
    cls = getattr(databutler, name)
    assert isinstance(cls, type)
    assert issubclass(cls, DatabutlerError)
    assert issubclass(cls, Exception)


def test_error_names_cover_the_tree() -> None:
    assert set(_error_names()) == {
        "AlreadyExistsError",
        "AmbiguousDatasetError",
        "ArgumentConflictError",
        "ArgumentTypeError",
        "ArtifactCorruptedError",
        "CollectionError",
        "ConcurrentUpdateError",
        "ConfigurationError",
        "ConflictError",
        "DataIdError",
        "DatasetNotFoundError",
        "DatastoreAbilityError",
        "DatabaseConflictError",
        "DatabaseConnectionError",
        "DatabaseStorageError",
        "DatabaseError",
        "DatabutlerError",
        "DimensionConfigError",
        "ExpressionError",
        "ExportFormatError",
        "IncompatibleVersionError",
        "InvalidArgumentError",
        "InvalidDatasetIdError",
        "InvalidNameError",
        "ManagerMismatchError",
        "MissingCollectionError",
        "MissingManagerError",
        "OrphanedRecordError",
        "PositionError",
        "ReadOnlyDatabaseError",
        "RepositoryError",
        "RepositoryNotFoundError",
        "SchemaAlreadyDefinedError",
        "SourceFileError",
        "SourceNotFoundError",
        "SourcePermissionError",
        "StorageClassError",
        "TransactionAbortedError",
        "TransferModeError",
        "UnknownDimensionError",
        "UnsafePathError",
    }


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (InvalidNameError, (ValueError,)),
        (PositionError, (InvalidArgumentError, IndexError)),
        (AlreadyExistsError, (FileExistsError,)),
        (InvalidDatasetIdError, (TypeError,)),
        (AmbiguousDatasetError, (ValueError,)),
        (ConfigurationError, (ValueError,)),
        (ReadOnlyDatabaseError, (DatabaseError, PermissionError)),
        (SchemaAlreadyDefinedError, (DatabaseError,)),
        (DatabaseConflictError, (DatabaseError,)),
        (TransactionAbortedError, (DatabaseError,)),
        (DatabaseConnectionError, (DatabaseError, ConnectionError, OSError)),
        (ConflictError, (DatabaseError, sqlalchemy.exc.IntegrityError)),
        (OrphanedRecordError, (ConflictError, sqlalchemy.exc.IntegrityError)),
        (MissingManagerError, (LookupError,)),
        (IncompatibleVersionError, (DatabutlerError,)),
        (ManagerMismatchError, (DatabutlerError,)),
        (SourceFileError, (DatabutlerError, OSError)),
        (SourceNotFoundError, (SourceFileError, FileNotFoundError)),
        (SourcePermissionError, (SourceFileError, PermissionError)),
    ],
)
def test_error_bases(cls: type[Exception], bases: tuple[type[Exception], ...]) -> None:
    for base in bases:
        assert issubclass(cls, base)


def test_conflict_error_message_and_pickle() -> None:
    original = ValueError("UNIQUE constraint failed")
    exc = OrphanedRecordError("cannot delete: still stored", original)
    assert str(exc) == "cannot delete: still stored"
    assert exc.message == "cannot delete: still stored"
    assert exc.orig is original
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is OrphanedRecordError
    assert str(copy) == "cannot delete: still stored"
    assert str(ConflictError("plain")) == "plain"


@pytest.mark.parametrize("in_doubt", [False, True])
def test_connection_error_keeps_whether_its_commit_is_in_doubt(in_doubt: bool) -> None:
    exc = DatabaseConnectionError("lost", in_doubt=in_doubt)
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is DatabaseConnectionError
    assert (str(copy), copy.in_doubt) == ("lost", in_doubt)


def _public_names(module: types.ModuleType) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


@pytest.mark.parametrize("module", [databutler, interfaces], ids=lambda m: m.__name__)
def test_all_matches_the_exported_names(module: types.ModuleType) -> None:
    exported = module.__all__
    assert len(exported) == len(set(exported))
    for name in exported:
        assert hasattr(module, name), name
    assert set(exported) == _public_names(module)
    # A star import gives exactly those names.
    namespace: dict[str, Any] = {}
    exec(f"from {module.__name__} import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(exported)
