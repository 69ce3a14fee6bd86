"""The contract suite of `DatastoreRegistryBridge` and `DatastoreRegistryBridgeManager`.

Subclass `DatastoreRegistryBridgeTests` once per bridge kind, setting
``ephemeral``; the subclass's module must provide the fixtures ``repo`` (a
`~databutler.registry.RegistryManagerInstances` in a fresh database) and
``databases`` (the `~databutler.testing.DatabaseFactory` behind it). Every
check of state goes through a backdoor — raw SQL on the bridge tables, or the
ephemeral bridge's own sets — so the suite does not trust the API it tests.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest
import sqlalchemy

from .. import ddl
from .._dataset_ref import UnresolvedRef
from .._dataset_type import DatasetType
from .._exceptions import (
    AmbiguousDatasetError,
    ConflictError,
    InvalidDatasetIdError,
    InvalidNameError,
)
from ..registry import RegistryManagerInstances
from ..registry.bridge.ephemeral import EphemeralDatastoreRegistryBridge
from ..registry.interfaces import (
    DatasetRef,
    DatastoreRegistryBridge,
    FakeDatasetRef,
    OpaqueTableStorage,
)
from ..transaction import DatastoreTransaction
from .database import DatabaseFactory

__all__ = [
    "BridgeBackdoor",
    "DatastoreRegistryBridgeTests",
    "PersistentBridgeTests",
    "RecordInfo",
    "make_records_table",
]

#: Names that every bridge must refuse, with what the error must mention.
BAD_DATASTORE_NAMES = [
    ("", "empty"),
    ("x" * 300, "300 characters"),
    ("files'; DROP TABLE dataset_location; --", "contains"),
    ("a b", "contains ' '"),
    (".hidden", "starts with"),
    (42, "not a str"),
]


@dataclass(frozen=True)
class RecordInfo:
    """A minimal stored-item record, as a datastore would keep one."""

    dataset_id: uuid.UUID
    component: str
    path: str

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> RecordInfo:
        return cls(record["dataset_id"], record["component"], record["path"])


def make_records_table(
    repo: RegistryManagerInstances, name: str = "test_records"
) -> OpaqueTableStorage:
    """Register a records table like a file datastore's: ``(dataset_id, component) -> path``."""
    spec = ddl.TableSpec([], indexes=[ddl.IndexSpec("path")])
    # dataset_id leads the key. No foreign key: records outlive their datasets
    # until the trash is emptied.
    type(repo.datasets).addDatasetForeignKey(spec, primaryKey=True, constraint=False)
    spec.fields.add(ddl.FieldSpec("component", sqlalchemy.String, length=32, primaryKey=True))
    spec.fields.add(ddl.FieldSpec("path", sqlalchemy.String, length=1024, nullable=False))
    return repo.opaque.register(name, spec)


def _insert_with_wcs(records: OpaqueTableStorage, artifacts: list[tuple[Any, str]]) -> None:
    """Records rows for each ``(ref, path)``: the dataset's artifact at ``path``, and a WCS
    component of its own in ``wcs{n}.fits`` (``n`` its place in ``artifacts``)."""
    rows = []
    for n, (ref, path) in enumerate(artifacts):
        rows.append({"dataset_id": ref.id, "component": "__NULL_STRING__", "path": path})
        rows.append({"dataset_id": ref.id, "component": "wcs", "path": f"wcs{n}.fits"})
    records.insert(*rows)


def _insert_numbered(records: OpaqueTableStorage, refs: list[Any]) -> None:
    """One records row for each of ``refs``: its artifact at ``{n}.fits`` (``n`` its place)."""
    records.insert(
        *(
            {"dataset_id": r.id, "component": "__NULL_STRING__", "path": f"{n}.fits"}
            for n, r in enumerate(refs)
        )
    )


class BridgeBackdoor:
    """Reads bridge state without going through the bridge API.

    Parameters
    ----------
    repo : `RegistryManagerInstances`
        The repository.
    databases : `DatabaseFactory`
        Its database factory (for raw SQL).
    ephemeral : `bool`
        Whether to read ephemeral bridges' sets instead of the tables.
    """

    def __init__(
        self, repo: RegistryManagerInstances, databases: DatabaseFactory, ephemeral: bool
    ) -> None:
        self._repo = repo
        self._databases = databases
        self._ephemeral = ephemeral

    def _rows(self, table: str) -> set[tuple[str, uuid.UUID]]:
        sql = f"SELECT datastore_name, dataset_id FROM {self._databases.qualified(table)}"
        with self._databases.raw_engine().connect() as connection:
            rows = connection.execute(sqlalchemy.text(sql)).all()
        return {(name, ddl.GUID.coerce(dataset_id)) for name, dataset_id in rows}

    def _bridge(self, name: str) -> EphemeralDatastoreRegistryBridge | None:
        return self._repo.datastores._ephemeral.get(name)  # type: ignore[attr-defined, no-any-return]

    def held(self, name: str) -> set[uuid.UUID]:
        """Ids the datastore ``name`` holds."""
        if self._ephemeral:
            bridge = self._bridge(name)
            return set(bridge._held) if bridge is not None else set()
        return {i for n, i in self._rows("dataset_location") if n == name}

    def trashed(self, name: str) -> set[uuid.UUID]:
        """Ids in the datastore ``name``'s trash."""
        if self._ephemeral:
            bridge = self._bridge(name)
            return set(bridge._trashed) if bridge is not None else set()
        return {i for n, i in self._rows("dataset_location_trash") if n == name}

    def snapshot(self) -> tuple[Any, ...]:
        """Everything the bridges record, to compare before and after a failed call."""
        if self._ephemeral:
            bridges = self._repo.datastores._ephemeral  # type: ignore[attr-defined]
            return tuple(
                sorted((n, frozenset(b._held), frozenset(b._trashed)) for n, b in bridges.items())
            )
        return (
            frozenset(self._rows("dataset_location")),
            frozenset(self._rows("dataset_location_trash")),
        )

    def records(self, table: str = "test_records") -> set[tuple[uuid.UUID, str]]:
        """``(dataset_id, path)`` of every row of a records table."""
        sql = f"SELECT dataset_id, path FROM {self._databases.qualified(table)}"
        with self._databases.raw_engine().connect() as connection:
            return {(ddl.GUID.coerce(i), p) for i, p in connection.execute(sqlalchemy.text(sql))}


class DatastoreRegistryBridgeTests:
    """Tests every bridge must pass; see the module docstring for the fixtures needed."""

    ephemeral: ClassVar[bool]

    @pytest.fixture
    def backdoor(
        self, repo: RegistryManagerInstances, databases: DatabaseFactory
    ) -> BridgeBackdoor:
        return BridgeBackdoor(repo, databases, self.ephemeral)

    @pytest.fixture
    def bridge(self, repo: RegistryManagerInstances) -> DatastoreRegistryBridge:
        return repo.datastores.register("files", ephemeral=self.ephemeral)

    @staticmethod
    def make_refs(repo: RegistryManagerInstances, n: int) -> list[FakeDatasetRef]:
        """``n`` new datasets in the registry, as refs."""
        ids = [uuid.uuid4() for _ in range(n)]
        repo.datasets.insert(ids)  # type: ignore[attr-defined]
        return [FakeDatasetRef(i) for i in ids]

    # -- insert / ensure ------------------------------------------------

    def test_insert_records_held_datasets(self, repo, bridge, backdoor) -> None:
        refs = self.make_refs(repo, 5)
        bridge.insert(iter(refs[:3]))
        assert backdoor.held("files") == {r.id for r in refs[:3]}
        assert bridge.check(r.id for r in refs) == {r.id for r in refs[:3]}

    def test_insert_accepts_full_dataset_refs(self, repo, bridge, backdoor) -> None:
        (fake,) = self.make_refs(repo, 1)
        calexp = DatasetType("calexp", ["instrument", "detector"], "StructuredDataDict")
        ref = DatasetRef(calexp, {"instrument": "HSC", "detector": 12}, run="run1", id=fake.id)
        bridge.insert([ref])
        assert backdoor.held("files") == {fake.id}

    def test_insert_in_many_batches(self, repo, bridge, backdoor) -> None:
        repo.db.IN_BATCH_SIZE = 7
        refs = self.make_refs(repo, 50)
        bridge.insert(r for r in refs)
        assert backdoor.held("files") == {r.id for r in refs}
        assert bridge.check(r.id for r in refs) == {r.id for r in refs}
        bridge.moveToTrash(iter(refs[:30]), None)
        assert backdoor.trashed("files") == {r.id for r in refs[:30]}
        assert repo.datastores.locate(refs) == {
            r.id: ({"files"} if i >= 30 else set()) for i, r in enumerate(refs)
        }

    def test_insert_duplicate_fails_and_records_nothing(self, repo, bridge, backdoor) -> None:
        refs = self.make_refs(repo, 3)
        bridge.insert(refs[:1])
        before = backdoor.snapshot()
        with pytest.raises(ConflictError, match="ensure"):
            bridge.insert(refs[1:] + refs[:1])
        assert backdoor.snapshot() == before
        with pytest.raises(sqlalchemy.exc.IntegrityError):  # the documented error type, too
            bridge.insert(refs[:1])
        assert backdoor.snapshot() == before

    def test_ensure_skips_held_datasets(self, repo, bridge, backdoor) -> None:
        refs = self.make_refs(repo, 4)
        bridge.insert(refs[:2])
        bridge.ensure(refs)
        bridge.ensure(refs)
        assert backdoor.held("files") == {r.id for r in refs}

    @pytest.mark.parametrize("method", ["insert", "ensure", "forget", "moveToTrash"])
    def test_bad_ids_change_nothing(self, repo, bridge, backdoor, method) -> None:
        refs = self.make_refs(repo, 4)
        bridge.insert(refs[:2])
        before = backdoor.snapshot()

        class NotAUuid:
            id = "2f1c4a57-not-a-uuid"

        def call(items: list[Any]) -> None:
            if method == "moveToTrash":
                bridge.moveToTrash(items, None)
            else:
                getattr(bridge, method)(items)

        with pytest.raises(InvalidDatasetIdError, match=r"not a uuid\.UUID"):
            call([*refs, NotAUuid()])
        with pytest.raises(AmbiguousDatasetError, match="no id"):
            call([*refs, UnresolvedRef("calexp", {}, run="r")])
        with pytest.raises(InvalidDatasetIdError, match="'id' attribute"):
            call([*refs, "not a ref"])
        assert backdoor.snapshot() == before

    def test_check_rejects_bad_ids(self, repo, bridge) -> None:
        with pytest.raises(InvalidDatasetIdError, match=r"not a uuid\.UUID"):
            bridge.check([uuid.uuid4(), 12345])

    def test_check_is_per_datastore(self, repo, bridge) -> None:
        refs = self.make_refs(repo, 4)
        other = repo.datastores.register("other", ephemeral=self.ephemeral)
        bridge.insert(refs[:2])
        other.insert(refs[1:3])
        assert bridge.check(r.id for r in refs) == {refs[0].id, refs[1].id}
        assert other.check(r.id for r in refs) == {refs[1].id, refs[2].id}
        assert bridge.check([]) == set()

    # -- forget / moveToTrash -------------------------------------------

    def test_forget_bypasses_the_trash(self, repo, bridge, backdoor) -> None:
        refs = self.make_refs(repo, 3)
        bridge.insert(refs)
        bridge.forget([refs[0], FakeDatasetRef(uuid.uuid4())])
        assert backdoor.held("files") == {refs[1].id, refs[2].id}
        assert backdoor.trashed("files") == set()
        bridge.forget([refs[0]])  # forgetting again is a no-op
        assert backdoor.held("files") == {refs[1].id, refs[2].id}

    def test_move_to_trash(self, repo, bridge, backdoor) -> None:
        refs = self.make_refs(repo, 4)
        bridge.insert(refs[:3])
        bridge.moveToTrash([refs[0], refs[1], refs[3]], None)  # refs[3] is not held: ignored
        assert backdoor.held("files") == {refs[2].id}
        assert backdoor.trashed("files") == {refs[0].id, refs[1].id}
        assert bridge.check(r.id for r in refs) == {refs[2].id}
        bridge.moveToTrash(refs[:2], None)  # trashing again changes nothing
        assert backdoor.trashed("files") == {refs[0].id, refs[1].id}

    def test_trash_again_after_storing_again(self, repo, bridge, backdoor) -> None:
        (ref,) = self.make_refs(repo, 1)
        bridge.insert([ref])
        bridge.moveToTrash([ref], None)
        bridge.insert([ref])
        bridge.moveToTrash([ref], None)
        assert backdoor.held("files") == set()
        assert backdoor.trashed("files") == {ref.id}

    def test_move_to_trash_rolls_back(self, repo, bridge, backdoor) -> None:
        refs = self.make_refs(repo, 3)
        bridge.insert(refs)
        bridge.moveToTrash(refs[:1], None)
        before = backdoor.snapshot()
        transaction = DatastoreTransaction()
        with pytest.raises(RuntimeError, match="boom"), repo.db.transaction():
            bridge.moveToTrash(refs, transaction)
            raise RuntimeError("boom")
        transaction.rollback()
        assert backdoor.snapshot() == before

    def test_trash_is_empty_only_without_trash_rows(self, repo, bridge, backdoor) -> None:
        refs = self.make_refs(repo, 2)
        assert bridge.trash_is_empty()
        bridge.insert(refs)
        assert bridge.trash_is_empty()  # held is not trashed
        bridge.moveToTrash(refs[:1], None)
        assert not bridge.trash_is_empty()
        bridge.insert(refs[:1])  # stored again: its stale trash row still counts
        assert not bridge.trash_is_empty()
        with bridge.emptyTrash() as (pairs, _):
            list(pairs)
        assert backdoor.trashed("files") == set()
        assert bridge.trash_is_empty()

    # -- emptyTrash -----------------------------------------------------

    def test_empty_trash_without_records(self, repo, bridge, backdoor) -> None:
        refs = self.make_refs(repo, 4)
        bridge.insert(refs)
        bridge.moveToTrash(refs[:3], None)
        with bridge.emptyTrash() as (pairs, keep):
            seen = list(pairs)
        assert keep is None
        assert sorted(r.id for r, _ in seen) == sorted(r.id for r in refs[:3])
        assert all(isinstance(r, FakeDatasetRef) and info is None for r, info in seen)
        assert backdoor.trashed("files") == set()
        assert backdoor.held("files") == {refs[3].id}

    def test_empty_trash_with_records_and_keep(self, repo, bridge, backdoor) -> None:
        records = make_records_table(repo)
        refs = self.make_refs(repo, 4)
        bridge.insert(refs)
        paths = {
            refs[0].id: "a.fits",
            refs[1].id: "shared.zip",
            refs[2].id: "shared.zip",
            refs[3].id: "d.fits",
        }
        records.insert(
            *(
                {"dataset_id": i, "component": "__NULL_STRING__", "path": p}
                for i, p in paths.items()
            )
        )
        records.insert({"dataset_id": refs[0].id, "component": "wcs", "path": "a_wcs.fits"})
        bridge.moveToTrash(refs[:2], None)
        with bridge.emptyTrash(records, RecordInfo, record_column="path") as (pairs, keep):
            seen = list(pairs)
        assert keep == {"shared.zip"}  # still used by refs[2], which is held
        assert {(r.id, info.path) for r, info in seen} == {
            (refs[0].id, "a.fits"),
            (refs[0].id, "a_wcs.fits"),
            (refs[1].id, "shared.zip"),
        }
        assert all(info.dataset_id == r.id for r, info in seen)
        assert backdoor.records() == {(refs[2].id, "shared.zip"), (refs[3].id, "d.fits")}
        assert backdoor.trashed("files") == set()

    def test_selected_dry_run_reads_pairs_and_keep_alike(self, repo, bridge, backdoor) -> None:
        # The read-only pass over selected datasets (what a prune's emptying makes) gives
        # the pairs and the kept artifacts a full pass gives, over pages, with datasets
        # stored again and without records, and changes nothing.
        repo.db.IN_BATCH_SIZE = 3
        records = make_records_table(repo)
        refs = self.make_refs(repo, 9)
        bridge.insert(refs)
        _insert_with_wcs(  # the last has no records
            records,
            [
                (ref, f"shared{n - n % 2}.zip" if n < 4 else f"own{n}.fits")
                for n, ref in enumerate(refs[:8])
            ],
        )
        trashed = [refs[0], refs[2], refs[3], refs[4], refs[5], refs[8]]
        bridge.moveToTrash(trashed, None)
        bridge.insert([refs[5]])  # stored again: not yielded
        selected = [r.id for r in trashed] + [refs[1].id, uuid.uuid4()]  # held, unknown
        before = backdoor.snapshot(), backdoor.records()
        with bridge.emptyTrash(
            records, RecordInfo, "path", selected_ids=selected, dry_run=True
        ) as (pairs, keep):
            seen = {(r.id, None if info is None else info.path) for r, info in pairs}
        assert keep == {"shared0.zip"}  # refs[1], held, uses it; shared2.zip is all trashed
        assert seen == {
            (refs[0].id, "shared0.zip"),
            (refs[0].id, "wcs0.fits"),
            (refs[2].id, "shared2.zip"),
            (refs[2].id, "wcs2.fits"),
            (refs[3].id, "shared2.zip"),
            (refs[3].id, "wcs3.fits"),
            (refs[4].id, "own4.fits"),
            (refs[4].id, "wcs4.fits"),
            (refs[8].id, None),
        }
        assert (backdoor.snapshot(), backdoor.records()) == before
        with bridge.emptyTrash(records, RecordInfo, record_column="path") as (pairs, full):
            assert {(r.id, None if i is None else i.path) for r, i in pairs} == seen
        assert full == keep

    def test_empty_trash_keep_over_many_pages(self, repo, bridge, backdoor) -> None:
        # Pages of 3 rows: datasets with two records rows straddle page boundaries.
        repo.db.IN_BATCH_SIZE = 3
        records = make_records_table(repo)
        refs = self.make_refs(repo, 12)
        bridge.insert(refs)
        # Every third dataset shares its artifact with the next one.
        paths = {0: "shared{n}.zip", 1: "shared{m}.zip", 2: "own{n}.fits"}
        _insert_with_wcs(
            records,
            [(ref, paths[n % 3].format(n=n, m=n - 1)) for n, ref in enumerate(refs)],
        )
        trashed = refs[::2]  # 0 and 6 share with the held 1 and 7; 4 and 10 with 3 and 9
        bridge.moveToTrash(trashed, None)
        with bridge.emptyTrash(records, RecordInfo, record_column="path") as (pairs, keep):
            seen = list(pairs)
        assert keep == {"shared0.zip", "shared3.zip", "shared6.zip", "shared9.zip"}
        assert len(seen) == 2 * len(trashed)
        assert backdoor.trashed("files") == set()

    def test_empty_trash_keep_is_none_without_record_column(self, repo, bridge) -> None:
        records = make_records_table(repo)
        (ref,) = self.make_refs(repo, 1)
        bridge.insert([ref])
        records.insert({"dataset_id": ref.id, "component": "__NULL_STRING__", "path": "x"})
        bridge.moveToTrash([ref], None)
        with bridge.emptyTrash(records, RecordInfo) as (pairs, keep):
            assert [info.path for _, info in pairs] == ["x"]
        assert keep is None

    def test_empty_trash_yields_trashed_datasets_without_records(
        self, repo, bridge, backdoor
    ) -> None:
        records = make_records_table(repo)
        refs = self.make_refs(repo, 2)
        bridge.insert(refs)
        records.insert({"dataset_id": refs[0].id, "component": "__NULL_STRING__", "path": "x"})
        bridge.moveToTrash(refs, None)
        with bridge.emptyTrash(records, RecordInfo, record_column="path") as (pairs, keep):
            seen = {r.id: info for r, info in pairs}
        assert seen[refs[1].id] is None and seen[refs[0].id].path == "x"
        assert backdoor.trashed("files") == set()  # no trash row lingers
        assert keep == set()

    def test_empty_trash_error_keeps_everything(self, repo, bridge, backdoor) -> None:
        records = make_records_table(repo)
        refs = self.make_refs(repo, 3)
        bridge.insert(refs)
        records.insert(
            *({"dataset_id": r.id, "component": "__NULL_STRING__", "path": str(r.id)} for r in refs)
        )
        bridge.moveToTrash(refs, None)
        before = backdoor.snapshot(), backdoor.records()
        with (
            pytest.raises(OSError, match="disk on fire"),
            bridge.emptyTrash(records, RecordInfo, "path") as (
                pairs,
                _,
            ),
        ):
            for _ in pairs:
                pass
            raise OSError("disk on fire")
        assert (backdoor.snapshot(), backdoor.records()) == before

    def test_empty_trash_dry_run_deletes_nothing(self, repo, bridge, backdoor) -> None:
        records = make_records_table(repo)
        refs = self.make_refs(repo, 2)
        bridge.insert(refs)
        records.insert(
            *({"dataset_id": r.id, "component": "__NULL_STRING__", "path": str(r.id)} for r in refs)
        )
        bridge.moveToTrash(refs, None)
        before = backdoor.snapshot(), backdoor.records()
        with bridge.emptyTrash(records, RecordInfo, "path", dry_run=True) as (pairs, _):
            assert {r.id for r, _ in pairs} == {r.id for r in refs}
        assert (backdoor.snapshot(), backdoor.records()) == before

    def test_empty_selection_means_nothing(self, repo, bridge, backdoor) -> None:
        refs = self.make_refs(repo, 3)
        bridge.insert(refs)
        bridge.moveToTrash(refs, None)
        with bridge.emptyTrash(selected_ids=[]) as (pairs, _):
            assert list(pairs) == []
        assert backdoor.trashed("files") == {r.id for r in refs}
        with bridge.emptyTrash(selected_ids=iter([refs[1].id, uuid.uuid4()])) as (pairs, _):
            assert [r.id for r, _ in pairs] == [refs[1].id]
        assert backdoor.trashed("files") == {refs[0].id, refs[2].id}

    def test_empty_trash_keeps_what_was_never_yielded(self, repo, bridge, backdoor) -> None:
        refs = self.make_refs(repo, 3)
        bridge.insert(refs)
        bridge.moveToTrash(refs, None)
        with bridge.emptyTrash() as (pairs, _):
            first, _info = next(iter(pairs))
        remaining = backdoor.trashed("files")
        assert {r.id for r in refs} - {first.id} <= remaining

    def test_empty_trash_skips_datasets_stored_again(self, repo, bridge, backdoor) -> None:
        records = make_records_table(repo)
        (ref,) = self.make_refs(repo, 1)
        bridge.insert([ref])
        records.insert({"dataset_id": ref.id, "component": "__NULL_STRING__", "path": "live.fits"})
        bridge.moveToTrash([ref], None)
        bridge.insert([ref])  # stored again before the trash was emptied
        with bridge.emptyTrash(records, RecordInfo, "path") as (pairs, _):
            assert list(pairs) == []
        assert backdoor.records() == {(ref.id, "live.fits")}
        assert backdoor.held("files") == {ref.id}
        assert backdoor.trashed("files") == set()

    def test_purge_trash_drops_rows_of_given_trashed_datasets(self, repo, bridge, backdoor) -> None:
        records = make_records_table(repo)
        refs = self.make_refs(repo, 5)
        bridge.insert(refs)
        _insert_numbered(records, refs)
        bridge.moveToTrash(refs[:4], None)
        bridge.insert([refs[2]])  # stored again: its records describe a live artifact
        unknown = uuid.uuid4()
        purged = bridge.purge_trash(records, [refs[0].id, refs[2].id, refs[3].id, unknown])
        assert sorted(purged) == sorted([refs[0].id, refs[3].id])
        assert backdoor.trashed("files") == {refs[1].id}  # not asked for: kept
        assert backdoor.records() == {
            (refs[1].id, "1.fits"),
            (refs[2].id, "2.fits"),
            (refs[4].id, "4.fits"),
        }
        assert backdoor.held("files") == {refs[2].id, refs[4].id}
        assert bridge.purge_trash(records, []) == []
        assert bridge.purge_trash(None, [refs[1].id]) == [refs[1].id]  # no records table
        assert backdoor.trashed("files") == set()
        assert (refs[1].id, "1.fits") in backdoor.records()

    def test_empty_trash_in_many_pages(self, repo, bridge, backdoor) -> None:
        repo.db.IN_BATCH_SIZE = 3
        records = make_records_table(repo)
        refs = self.make_refs(repo, 11)
        bridge.insert(refs)
        rows = [
            {"dataset_id": r.id, "component": "__NULL_STRING__", "path": f"{i}.fits"}
            for i, r in enumerate(refs[:9])
        ]
        rows.append({"dataset_id": refs[0].id, "component": "wcs", "path": "0_wcs.fits"})
        records.insert(*rows)
        bridge.moveToTrash(refs[:10], None)  # refs[9] has no records; refs[10] stays held
        bridge.insert(refs[4:5])  # stored again: not to be emptied
        with bridge.emptyTrash(records, RecordInfo, "path") as (pairs, keep):
            seen = sorted((r.id, info.path if info else None) for r, info in pairs)
        expected = sorted(
            [(r.id, f"{i}.fits") for i, r in enumerate(refs[:9]) if i != 4]
            + [(refs[0].id, "0_wcs.fits"), (refs[9].id, None)]
        )
        assert seen == expected
        assert keep == set()
        assert backdoor.trashed("files") == set()
        assert backdoor.held("files") == {refs[4].id, refs[10].id}
        assert backdoor.records() == {(refs[4].id, "4.fits")}

    def test_trashing_inside_the_block_loses_nothing(self, repo, bridge, backdoor) -> None:
        first, middle, last = refs = sorted(self.make_refs(repo, 3), key=lambda r: r.id)
        bridge.insert(refs)
        bridge.moveToTrash([first, last], None)
        try:
            with bridge.emptyTrash() as (pairs, _):
                for ref, _info in pairs:
                    if ref.id == first.id:
                        bridge.moveToTrash([middle], None)
        except RuntimeError as exc:  # allowed: then the whole block was rolled back
            assert "changed while it was being emptied" in str(exc)
            assert backdoor.trashed("files") == {first.id, last.id}
        # The dataset trashed meanwhile was not purged without being yielded.
        assert middle.id in backdoor.trashed("files") | backdoor.held("files")

    def test_empty_trash_argument_errors(self, repo, bridge, backdoor) -> None:
        records = make_records_table(repo)
        (ref,) = self.make_refs(repo, 1)
        bridge.insert([ref])
        bridge.moveToTrash([ref], None)
        before = backdoor.snapshot()
        with pytest.raises(ValueError, match="record_class"), bridge.emptyTrash(records):
            pass
        with (
            pytest.raises(ValueError, match="records table"),
            bridge.emptyTrash(record_column="path"),
        ):
            pass
        with (
            pytest.raises(ValueError, match="no column 'nope'"),
            bridge.emptyTrash(records, RecordInfo, "nope"),
        ):
            pass
        assert backdoor.snapshot() == before

    def test_empty_trash_is_per_datastore(self, repo, bridge, backdoor) -> None:
        refs = self.make_refs(repo, 2)
        other = repo.datastores.register("other", ephemeral=self.ephemeral)
        bridge.insert(refs)
        other.insert(refs)
        bridge.moveToTrash(refs, None)
        other.moveToTrash(refs[:1], None)
        with bridge.emptyTrash() as (pairs, _):
            assert len(list(pairs)) == 2
        assert backdoor.trashed("other") == {refs[0].id}
        assert backdoor.held("other") == {refs[1].id}

    # -- consistency queries ---------------------------------------------

    @staticmethod
    def add_records(records: OpaqueTableStorage, *rows: tuple[FakeDatasetRef, str, str]) -> None:
        """Records rows ``(ref, component, path)``."""
        records.insert(*({"dataset_id": r.id, "component": c, "path": p} for r, c, p in rows))

    def test_held_without_records(self, repo, bridge) -> None:
        records = make_records_table(repo)
        refs = self.make_refs(repo, 5)
        other = repo.datastores.register("other", ephemeral=self.ephemeral)
        bridge.insert(refs[:4])
        other.insert(refs[4:])
        self.add_records(records, (refs[0], "a", "a.fits"), (refs[0], "b", "b.fits"))
        self.add_records(records, (refs[1], "a", "c.fits"))
        bridge.moveToTrash(refs[3:4], None)
        found = bridge.held_without_records(records)
        assert not isinstance(found, (list, set, tuple))  # streamed
        assert sorted(found) == [refs[2].id]  # trashed and other datastores' are not held

    def test_trashed_ids(self, repo, bridge) -> None:
        refs = self.make_refs(repo, 4)
        other = repo.datastores.register("other", ephemeral=self.ephemeral)
        bridge.insert(refs)
        other.insert(refs)
        bridge.moveToTrash(refs[:2], None)
        other.moveToTrash(refs[3:], None)
        bridge.ensure(refs[1:2])  # stored again: its trash entry is stale, and listed
        assert sorted(bridge.trashed_ids()) == sorted(r.id for r in refs[:2])
        with bridge.emptyTrash() as (pairs, _):
            list(pairs)
        assert list(bridge.trashed_ids()) == []
        assert list(other.trashed_ids()) == [refs[3].id]

    def test_orphaned_records(self, repo, bridge, backdoor) -> None:
        records = make_records_table(repo)
        refs = self.make_refs(repo, 5)
        other = repo.datastores.register("other", ephemeral=self.ephemeral)
        bridge.insert(refs[:2])
        bridge.moveToTrash(refs[1:2], None)
        other.insert(refs[3:4])
        self.add_records(
            records,
            (refs[0], "a", "held.fits"),
            (refs[1], "a", "trashed.fits"),
            (refs[2], "a", "shared.zip"),
            (refs[2], "b", "shared.zip"),  # the same (dataset, path) twice: reported once
            (refs[2], "c", "c.fits"),
            (refs[3], "a", "other.fits"),  # held by another datastore only
            (refs[4], "a", "late.fits"),
        )
        expected = {
            (refs[2].id, "shared.zip"),
            (refs[2].id, "c.fits"),
            (refs[3].id, "other.fits"),
            (refs[4].id, "late.fits"),
        }
        found = list(bridge.orphaned_records(records, "path"))
        assert sorted(found) == sorted(expected)
        with pytest.raises(ValueError, match="no column 'nope'"):
            bridge.orphaned_records(records, "nope")
        bridge.insert(refs[4:])  # stored since the check: keeps its records
        bridge.delete_orphaned_records(
            records, iter([refs[0].id, refs[2].id, refs[3].id, refs[4].id])
        )
        assert backdoor.records() == {
            (refs[0].id, "held.fits"),
            (refs[1].id, "trashed.fits"),
            (refs[4].id, "late.fits"),
        }
        assert list(bridge.orphaned_records(records, "path")) == []
        bridge.delete_orphaned_records(records, [])

    def test_ordered_records(self, repo, bridge) -> None:
        records = make_records_table(repo)
        refs = self.make_refs(repo, 9)
        bridge.insert(refs[:7])
        bridge.moveToTrash(refs[6:7], None)
        # Code-point order, whatever the database's collation: upper case before
        # lower case, "_" (0x5F) between them, accented letters last.
        paths = ["b.fits", "B.fits", "a_b.fits", "a.fits", "\u00e9.fits", "/abs/x.fits"]
        self.add_records(records, *((ref, "a", p) for ref, p in zip(refs, paths, strict=False)))
        self.add_records(
            records,
            (refs[6], "a", "a.fits"),  # trashed, sharing a path
            (refs[7], "a", "file:///abs/y.fits"),  # not held
            (refs[8], "a", "FILE:///abs/z.fits"),  # not held
        )
        rows = bridge.ordered_records(records, "path")
        assert not isinstance(rows, (list, tuple))
        got = [(row["path"], row["dataset_id"], held) for row, held in rows]
        by_id = {r.id: n for n, r in enumerate(refs)}
        expected = sorted(
            [(p, r.id, True) for r, p in zip(refs, paths, strict=False)]
            + [
                ("a.fits", refs[6].id, False),
                ("file:///abs/y.fits", refs[7].id, False),
                ("FILE:///abs/z.fits", refs[8].id, False),
            ],
            key=lambda t: (t[0], t[1]),
        )
        assert [(p, by_id[i], h) for p, i, h in got] == [(p, by_id[i], h) for p, i, h in expected]
        row, _ = next(iter(bridge.ordered_records(records, "path")))
        assert set(row) == {"dataset_id", "component", "path"}
        some = bridge.ordered_records(records, "path", columns=["nope"], held_only=True)
        assert [set(row) for row, _ in some] == [{"dataset_id", "path"}] * 6
        assert isinstance(row["dataset_id"], uuid.UUID)
        direct = ("file://", "/")
        outside = [
            row["path"] for row, _ in bridge.ordered_records(records, "path", prefixes=direct)
        ]
        assert outside == ["/abs/x.fits", "file:///abs/y.fits"]  # case-sensitive
        held = bridge.ordered_records(records, "path", prefixes=direct, held_only=True)
        assert [row["path"] for row, _ in held] == ["/abs/x.fits"]
        inside = bridge.ordered_records(records, "path", exclude_prefixes=direct, held_only=True)
        assert [row["path"] for row, _ in inside] == sorted(
            ["b.fits", "B.fits", "a_b.fits", "a.fits", "\u00e9.fits"]
        )
        assert list(bridge.ordered_records(records, "path", prefixes=[])) == []
        with pytest.raises(ValueError, match="no column 'nope'"):
            bridge.ordered_records(records, "nope")

    def test_consistency_queries_of_an_empty_bridge(self, repo, bridge) -> None:
        records = make_records_table(repo)
        assert list(bridge.held_without_records(records)) == []
        assert list(bridge.trashed_ids()) == []
        assert list(bridge.orphaned_records(records, "path")) == []
        assert list(bridge.ordered_records(records, "path")) == []

    def test_is_ephemeral(self, repo, bridge) -> None:
        assert repo.datastores.is_ephemeral("files") == self.ephemeral
        assert not repo.datastores.is_ephemeral("never-registered")

    # -- names ----------------------------------------------------------

    @pytest.mark.parametrize(("name", "problem"), BAD_DATASTORE_NAMES, ids=lambda v: str(v)[:20])
    def test_bad_datastore_names_are_refused(self, repo, backdoor, name, problem) -> None:
        before = backdoor.snapshot()
        with pytest.raises(InvalidNameError, match=problem):
            repo.datastores.register(name, ephemeral=self.ephemeral)
        assert backdoor.snapshot() == before

    def test_long_and_punctuated_names_work(self, repo, backdoor) -> None:
        (ref,) = self.make_refs(repo, 1)
        name = "FileDatastore@<butlerRoot>/datastore-" + "x" * 219
        assert len(name) == 256
        bridge = repo.datastores.register(name, ephemeral=self.ephemeral)
        bridge.insert([ref])
        assert backdoor.held(name) == {ref.id}
        assert set(repo.datastores.findDatastores(ref)) == {name}

    # -- the manager ----------------------------------------------------

    def test_find_datastores(self, repo, bridge) -> None:
        refs = self.make_refs(repo, 3)
        other = repo.datastores.register("other", ephemeral=not self.ephemeral)
        bridge.insert(refs[:2])
        other.insert(refs[1:])
        assert set(repo.datastores.findDatastores(refs[0])) == {"files"}
        assert set(repo.datastores.findDatastores(refs[1])) == {"files", "other"}
        bridge.moveToTrash(refs[1:2], None)
        assert set(repo.datastores.findDatastores(refs[1])) == {"other"}
        assert set(repo.datastores.findDatastores(FakeDatasetRef(uuid.uuid4()))) == set()

    def test_find_datastores_needs_an_id(self, repo) -> None:
        with pytest.raises(AmbiguousDatasetError):
            repo.datastores.findDatastores(UnresolvedRef("calexp", {}, run="r"))

    def test_locate(self, repo, bridge) -> None:
        refs = self.make_refs(repo, 4)
        other = repo.datastores.register("other", ephemeral=not self.ephemeral)
        bridge.insert(refs[:2])
        other.insert(refs[1:3])
        unknown = FakeDatasetRef(uuid.uuid4())
        assert repo.datastores.locate(iter([*refs, unknown])) == {
            refs[0].id: {"files"},
            refs[1].id: {"files", "other"},
            refs[2].id: {"other"},
            refs[3].id: set(),
            unknown.id: set(),
        }
        assert repo.datastores.locate([]) == {}

    def test_register(self, repo) -> None:
        first = repo.datastores.register("mem", ephemeral=self.ephemeral)
        again = repo.datastores.register("mem", ephemeral=self.ephemeral)
        assert first.datastoreName == again.datastoreName == "mem"
        assert isinstance(first, DatastoreRegistryBridge)
        assert isinstance(first, EphemeralDatastoreRegistryBridge) == self.ephemeral
        if self.ephemeral:
            assert first is again  # its state is the process's, one per name

    def test_register_defaults_to_persistent(self, repo) -> None:
        bridge = repo.datastores.register("persistent")
        assert not isinstance(bridge, EphemeralDatastoreRegistryBridge)

    def test_manager_exposes_opaque_and_universe(self, repo) -> None:
        assert repo.datastores.opaque is repo.opaque
        assert repo.datastores.universe == repo.universe

    def test_clone_shares_state(self, repo, bridge) -> None:
        refs = self.make_refs(repo, 2)
        bridge.insert(refs[:1])
        db = repo.db.clone()
        clone = repo.datastores.clone(db=db, opaque=repo.opaque.clone(db))
        assert set(clone.findDatastores(refs[0])) == {"files"}
        clone.register("files", ephemeral=self.ephemeral).insert(refs[1:])
        assert bridge.check(r.id for r in refs) == {r.id for r in refs}
        clone.refresh()


class PersistentBridgeTests:
    """Contract points only a persistent (database-backed) bridge can meet."""

    @staticmethod
    def make_refs(repo: RegistryManagerInstances, n: int) -> list[FakeDatasetRef]:
        return DatastoreRegistryBridgeTests.make_refs(repo, n)

    @pytest.fixture
    def backdoor(
        self, repo: RegistryManagerInstances, databases: DatabaseFactory
    ) -> BridgeBackdoor:
        return BridgeBackdoor(repo, databases, ephemeral=False)

    def test_writes_join_the_enclosing_transaction(self, repo, backdoor) -> None:
        bridge = repo.datastores.register("files")
        refs = self.make_refs(repo, 3)
        bridge.insert(refs[:1])
        before = backdoor.snapshot()
        with pytest.raises(RuntimeError, match="abort"), repo.db.transaction():
            bridge.insert(refs[1:])
            bridge.moveToTrash(refs[:2], None)
            bridge.forget(refs[2:])
            raise RuntimeError("abort")
        assert backdoor.snapshot() == before

    def test_purge_trash_in_batches_joins_the_callers_transaction(self, repo, backdoor) -> None:
        bridge = repo.datastores.register("files")
        repo.db.IN_BATCH_SIZE = 2
        records = make_records_table(repo)
        refs = self.make_refs(repo, 5)
        bridge.insert(refs)
        _insert_numbered(records, refs)
        bridge.moveToTrash(refs, None)
        ids = sorted(r.id for r in refs)
        with pytest.raises(RuntimeError, match="undo"), repo.db.transaction():
            assert sorted(bridge.purge_trash(records, ids[:3])) == ids[:3]
            assert sorted(bridge.trashed_ids()) == ids[3:]  # seen inside the transaction
            raise RuntimeError("undo")
        assert backdoor.trashed("files") == set(ids)  # rolled back with it
        assert len(backdoor.records()) == 5
        assert sorted(bridge.purge_trash(records, ids)) == ids  # three batches
        assert backdoor.trashed("files") == set()
        assert backdoor.records() == set()

    def test_unknown_datasets_are_refused(self, repo, backdoor) -> None:
        bridge = repo.datastores.register("files")
        refs = self.make_refs(repo, 1)
        with pytest.raises(ConflictError, match="not a dataset of the registry"):
            bridge.insert([*refs, FakeDatasetRef(uuid.uuid4())])
        with pytest.raises(ConflictError, match="not a dataset of the registry"):
            bridge.ensure([FakeDatasetRef(uuid.uuid4())])
        assert backdoor.snapshot() == (frozenset(), frozenset())

    def test_held_datasets_cannot_be_deleted_but_trashed_ones_can(self, repo, backdoor) -> None:
        from .._exceptions import OrphanedRecordError

        bridge = repo.datastores.register("files")
        refs = self.make_refs(repo, 2)
        bridge.insert(refs)
        with pytest.raises(OrphanedRecordError, match="still present"):
            repo.datasets.delete(r.id for r in refs)  # type: ignore[attr-defined]
        with repo.db.transaction():
            bridge.moveToTrash(refs, None)
            assert repo.datasets.delete(r.id for r in refs) == 2  # type: ignore[attr-defined]
        assert backdoor.trashed("files") == {r.id for r in refs}
        with bridge.emptyTrash() as (pairs, _):
            assert {r.id for r, _ in pairs} == {r.id for r in refs}
        assert backdoor.snapshot() == (frozenset(), frozenset())

    def test_state_persists_and_a_second_client_sees_it(self, repo, databases) -> None:
        from ..registry import RegistryManagerTypes

        refs = self.make_refs(repo, 3)
        repo.datastores.register("files").insert(refs)
        repo.datastores.register("files").moveToTrash(refs[:1], None)
        reopened = RegistryManagerTypes().loadRepo(databases.open())
        reopened.refresh()
        assert reopened.datastores.locate(refs) == {
            refs[0].id: set(),
            refs[1].id: {"files"},
            refs[2].id: {"files"},
        }
        with reopened.datastores.register("files").emptyTrash() as (pairs, _):
            assert [r.id for r, _ in pairs] == [refs[0].id]
        # ... and the first client sees the second one's work.
        with repo.datastores.register("files").emptyTrash() as (pairs, _):
            assert list(pairs) == []

    def test_read_only_client_can_read_but_not_write(self, repo, databases, backdoor) -> None:
        from .._exceptions import ReadOnlyDatabaseError
        from ..registry import RegistryManagerTypes

        refs = self.make_refs(repo, 2)
        repo.datastores.register("files").insert(refs[:1])
        reader = RegistryManagerTypes().loadRepo(databases.open(writeable=False))
        bridge = reader.datastores.register("files")
        assert bridge.check(r.id for r in refs) == {refs[0].id}
        before = backdoor.snapshot()
        with pytest.raises(ReadOnlyDatabaseError, match="read-only"):
            bridge.insert(refs[1:])
        with pytest.raises(ReadOnlyDatabaseError, match="read-only"):
            bridge.moveToTrash(refs, None)
        repo.datastores.register("files").moveToTrash(refs, None)
        before = backdoor.snapshot()
        with pytest.raises(ReadOnlyDatabaseError, match="dry_run=True"), bridge.emptyTrash():
            pass
        with bridge.emptyTrash(dry_run=True) as (pairs, _):
            assert [r.id for r, _ in pairs] == [refs[0].id]
        assert backdoor.snapshot() == before
