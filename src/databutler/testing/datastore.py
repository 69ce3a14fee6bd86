"""The contract suite of `~databutler.datastores.Datastore`.

Subclass `DatastoreTests` and provide a ``datastore`` fixture (built on
``registry.datastore_bridges``); the ``registry`` fixture here makes a
registry with a few real datasets to store.
"""

from __future__ import annotations

import pytest

from .. import ConflictError, DatasetType
from ..datastores import DatasetNotStoredError
from ..registry import SqlRegistry

__all__ = ["DatastoreTests", "make_refs"]


def make_refs(registry: SqlRegistry, n: int, run: str = "run") -> list:  # type: ignore[type-arg]
    """``n`` new datasets of type ``thing`` (one per detector) in ``run``."""
    if "thing" not in [t.name for t in registry.queryDatasetTypes()]:
        registry.insertDimensionData("instrument", {"instrument": "Cam"})
        registry.insertDimensionData(
            "detector", *({"instrument": "Cam", "detector": d} for d in range(100))
        )
        registry.registerDatasetType(DatasetType("thing", ["detector"], "StructuredDataDict"))
    registry.registerRun(run)
    taken = len(registry.queryDatasets("thing", collections=run))
    return registry.insertDatasets(
        "thing", [{"instrument": "Cam", "detector": taken + d} for d in range(n)], run
    )


class DatastoreTests:
    """Tests every datastore must pass."""

    @pytest.fixture
    def registry(self) -> SqlRegistry:
        return SqlRegistry.create("sqlite://")

    def test_put_get(self, registry, datastore) -> None:
        ref, other = make_refs(registry, 2)
        datastore.put({"a": [1, 2], "b": "x"}, ref)
        assert datastore.get(ref) == {"a": [1, 2], "b": "x"}
        assert datastore.get(ref, component="b") == "x"
        assert datastore.knows(ref) and datastore.exists(ref)
        assert not datastore.knows(other) and not datastore.exists(other)
        with pytest.raises(DatasetNotStoredError):
            datastore.get(other)
        # A chain registers no bridge: its children hold the dataset.
        assert set(registry.getDatasetLocations(ref)) == set(
            getattr(datastore, "names", (datastore.name,))
        )

    def test_put_twice_is_refused(self, registry, datastore) -> None:
        (ref,) = make_refs(registry, 1)
        datastore.put({"v": 1}, ref)
        with pytest.raises(ConflictError):
            datastore.put({"v": 2}, ref)
        assert datastore.get(ref) == {"v": 1}
        # Refused inside a transaction too: its rollback leaves the stored dataset alone.
        with pytest.raises(ConflictError), datastore.transaction():
            datastore.put({"v": 3}, ref)
        assert datastore.get(ref) == {"v": 1} and datastore.knows(ref)

    def test_get_returns_what_was_put_not_a_live_object(self, registry, datastore) -> None:
        (ref,) = make_refs(registry, 1)
        obj = {"v": [1]}
        datastore.put(obj, ref)
        obj["v"].append(2)
        assert datastore.get(ref) == {"v": [1]}

    def test_trash_then_empty(self, registry, datastore) -> None:
        refs = make_refs(registry, 3)
        datastore.put_many(({"i": i}, r) for i, r in enumerate(refs))
        with registry.transaction(), datastore.transaction():
            datastore.trash(refs[:2])
        assert [datastore.exists(r) for r in refs] == [False, False, True]
        assert datastore.emptyTrash(dry_run=True) != []
        assert datastore.knows(refs[0])  # a dry run deletes nothing
        assert sorted(datastore.emptyTrash()) == sorted(r.id for r in refs[:2])
        assert [datastore.knows(r) for r in refs] == [False, False, True]
        assert datastore.emptyTrash() == []
        assert datastore.get(refs[2]) == {"i": 2}

    def test_empty_trash_of_selected_refs(self, registry, datastore) -> None:
        refs = make_refs(registry, 3)
        datastore.put_many(({"i": i}, r) for i, r in enumerate(refs))
        datastore.trash(refs)
        assert datastore.emptyTrash(refs=[]) == []
        assert datastore.emptyTrash(refs=refs[1:2]) == [refs[1].id]
        assert sorted(datastore.emptyTrash()) == sorted([refs[0].id, refs[2].id])

    def test_failed_transaction_undoes_puts(self, registry, datastore) -> None:
        kept, undone = make_refs(registry, 2)
        datastore.put({"v": 1}, kept)
        with pytest.raises(RuntimeError, match="boom"), datastore.transaction():
            datastore.put({"v": 2}, undone)
            raise RuntimeError("boom")
        assert datastore.exists(kept) and not datastore.exists(undone)
        assert not datastore.knows(undone)
        # The enclosing (here: no) transaction is restored after the error.
        assert datastore._transaction is None
        datastore.put({"v": 3}, undone)  # and a retry succeeds
        assert datastore.get(undone) == {"v": 3}

    def test_nested_transactions(self, registry, datastore) -> None:
        first, second = make_refs(registry, 2)
        with pytest.raises(RuntimeError), datastore.transaction():
            with datastore.transaction():
                datastore.put({"v": 1}, first)
            datastore.put({"v": 2}, second)
            raise RuntimeError("outer fails")
        assert not datastore.exists(first) and not datastore.exists(second)

    def test_forget_and_remove(self, registry, datastore) -> None:
        refs = make_refs(registry, 2)
        datastore.put_many(({"i": i}, r) for i, r in enumerate(refs))
        datastore.forget(refs[0])
        assert not datastore.knows(refs[0])
        assert registry.getDatasetLocations(refs[0]) == frozenset()
        datastore.remove(refs[1])
        assert not datastore.knows(refs[1]) and not datastore.exists(refs[1])
