"""End-to-end tests of the `Butler` over SQLite+local, PostgreSQL+S3 and SQLite+chained."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from databutler import (
    Butler,
    CollectionError,
    ConfigurationError,
    ConflictError,
    DataIdError,
    DatasetExistence,
    DatasetNotFoundError,
    DatasetRef,
    ExportFormatError,
    FileDataset,
    InvalidArgumentError,
    PositionError,
    ReadOnlyDatabaseError,
    UnresolvedRef,
)
from databutler.datastores import StoredFileInfo
from databutler.testing.butler import RepositoryFactory, S3Environment, file_datastore, populate
from databutler.testing.database import statements


def artifacts(butler: Butler) -> list[str]:
    """Every artifact in the repository's file datastore, looked at in storage directly."""
    return list(file_datastore(butler).store.list())


def location_rows(butler: Butler) -> int:
    """Rows of the bridge's location table (a backdoor count)."""
    import sqlalchemy

    table = butler.registry.datastore_bridges.location_table
    assert table is not None  # the monolithic bridge manager keeps one
    with butler.registry.db.query(
        sqlalchemy.select(sqlalchemy.func.count()).select_from(table)
    ) as r:
        return int(r.scalar_one())


@pytest.fixture
def butler(repositories: RepositoryFactory) -> Butler:
    created = repositories.create(run="r1")
    populate(created)
    return created


def put_things(butler: Butler, detectors: range, run: str | None = None) -> list[DatasetRef]:
    return [
        butler.put(
            {"detector": d, "values": [d, d + 1]}, "thing", instrument="HSC", detector=d, run=run
        )
        for d in detectors
    ]


class TestRepositories:
    def test_create_then_open(self, repositories: RepositoryFactory) -> None:
        arguments = repositories.create_arguments("fresh")
        created = Butler.create(**arguments, run="r1")
        populate(created)
        put_things(created, range(2))
        created.close()
        reopened = Butler(arguments["root"], collections="r1")
        assert not reopened.is_writeable
        assert reopened.get("thing", instrument="HSC", detector=1) == {
            "detector": 1,
            "values": [1, 2],
        }
        with pytest.raises(ReadOnlyDatabaseError, match="writeable=True"):
            reopened.put({}, "thing", instrument="HSC", detector=3, run="r1")
        reopened.close()

    def test_create_over_an_existing_repository_is_refused(
        self, repositories: RepositoryFactory
    ) -> None:
        arguments = repositories.create_arguments("twice")
        Butler.create(**arguments).close()
        with pytest.raises(FileExistsError, match="overwrite=True"):
            Butler.create(**arguments)

    def test_missing_repository(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError, match=r"Butler\.create"):
            Butler(tmp_path / "nowhere")

    def test_bad_configuration_is_named(self, tmp_path: Path) -> None:
        root = tmp_path / "repo"
        Butler.create(root).close()
        (root / "butler.yaml").write_text(
            "registry: {db: 'sqlite://', colour: red}\ndatastore: {}\n"
        )
        with pytest.raises(ConfigurationError, match="Unknown key\\(s\\) 'colour'"):
            Butler(root)

    def test_a_bad_datastore_configuration_leaves_nothing(self, tmp_path: Path) -> None:
        root = tmp_path / "repo"
        with pytest.raises(ConfigurationError, match="kind"):
            Butler.create(root, datastore={"kind": "teleporter", "name": "x"})
        assert not (root / "butler.yaml").exists()
        assert not (root / "registry.sqlite3").exists()

    def test_overwrite_replaces_the_repository(self, tmp_path: Path) -> None:
        root = tmp_path / "repo"
        first = Butler.create(root, run="r1")
        populate(first)
        put_things(first, range(3))
        first.close()
        second = Butler.create(root, overwrite=True)
        assert second.registry.queryDatasetTypes() == []
        assert artifacts(second) == []

    def test_s3_root_needs_a_shared_database(self) -> None:
        with pytest.raises(ConfigurationError, match="postgresql"):
            Butler.create("s3://bucket/repo")


class TestPutGet:
    def test_put_get_by_ref_and_data_id(self, butler: Butler) -> None:
        (ref,) = put_things(butler, range(1))
        assert butler.get(ref) == {"detector": 0, "values": [0, 1]}
        assert butler.get("thing", {"instrument": "HSC", "detector": 0}) == butler.get(ref)
        assert butler.get("thing", instrument="HSC", detector=0, component="values") == [0, 1]
        assert butler.get("thing.values", instrument="HSC", detector=0) == [0, 1]
        handle = butler.get_deferred("thing", instrument="HSC", detector=0)
        assert handle.ref == ref and handle.get() == butler.get(ref)

    def test_put_creates_the_run_on_first_use(self, butler: Butler) -> None:
        (ref,) = put_things(butler, range(1), run="fresh/run")
        assert ref.run == "fresh/run"
        assert butler.get("thing", instrument="HSC", detector=0, collections="fresh/run")

    def test_errors_name_the_fix(self, butler: Butler) -> None:
        with pytest.raises(DataIdError, match="detector 99 is not a known detector of instrument"):
            butler.put({}, "thing", instrument="HSC", detector=99)
        put_things(butler, range(1))
        with pytest.raises(ConflictError, match="already has a 'thing' dataset"):
            put_things(butler, range(1))
        with pytest.raises(DatasetNotFoundError, match="collections"):
            butler.get("thing", instrument="HSC", detector=5)
        no_run = Butler(butler.root, writeable=True)
        with pytest.raises(TypeError, match="run="):
            no_run.put({}, "thing", instrument="HSC", detector=2)
        no_run.close()
        # Failed puts left nothing behind.
        assert len(artifacts(butler)) == 1 and location_rows(butler) >= 1

    def test_exists_stored_many_and_where(self, butler: Butler) -> None:
        refs = put_things(butler, range(3))
        assert butler.exists("thing", instrument="HSC", detector=1) == DatasetExistence.VERIFIED
        assert not butler.exists("thing", instrument="HSC", detector=7)
        state = butler.exists_many(refs)
        assert all(flags == DatasetExistence.VERIFIED for flags in state.values())
        assert butler.stored_many(refs) == dict.fromkeys(refs, True)
        places = butler.where(refs)
        expected = {"files", "cache"} if butler.datastore.name == "chain" else {"files"}
        assert places == {ref.id: expected for ref in refs}
        butler.prune(refs[:1], unstore=True)
        assert butler.stored_many(refs) == {refs[0]: False, refs[1]: True, refs[2]: True}
        assert butler.exists_many(refs[:1]) == {refs[0]: DatasetExistence.RECORDED}
        assert butler.where(refs[:1]) == {refs[0].id: set()}
        # Only a dataset whose artifact is there (or assumed there) is true, as in daf_butler.
        assert not butler.exists(refs[0]) and bool(butler.exists(refs[1]))
        assert DatasetExistence.RECORDED in butler.exists(refs[0])
        assert butler.exists(refs[1], full_check=False) == DatasetExistence.KNOWN
        assert butler.exists(refs[1], full_check=False)
        assert not butler.exists(refs[0], full_check=False)

    def test_transaction_spans_registry_and_datastore(self, butler: Butler) -> None:
        put_things(butler, range(1))
        before = artifacts(butler)
        with pytest.raises(RuntimeError, match="boom"), butler.transaction():
            put_things(butler, range(1, 4))
            raise RuntimeError("boom")
        assert artifacts(butler) == before
        assert [r.dataId["detector"] for r in butler.query_datasets("thing")] == [0]


class TestQueries:
    def test_query_datasets_streams_and_filters(self, butler: Butler) -> None:
        put_things(butler, range(6))
        found = butler.query_datasets("thing", where="detector > 2")
        assert not isinstance(found, list)  # an iterator: streamed
        assert sorted(r.dataId["detector"] for r in found) == [3, 4, 5]
        name = file_datastore(butler).name
        assert len(list(butler.query_datasets("thing", in_datastore=name))) == 6
        assert list(butler.query_datasets("thing", not_in_datastore=name)) == []
        assert len(list(butler.query_datasets("t*", collections="*"))) == 6

    def test_data_ids_and_records(self, butler: Butler) -> None:
        ids = list(butler.query_data_ids(["detector"], where="detector < 3"))
        assert sorted(i["detector"] for i in ids) == [0, 1, 2]
        records = list(butler.query_dimension_records("detector", where="detector = 4"))
        assert [r.detector for r in records] == [4]


class TestPrune:
    def test_illegal_combinations_are_named(self, butler: Butler) -> None:
        refs = put_things(butler, range(2))
        with pytest.raises(TypeError, match="drop unstore=False"):
            butler.prune(refs, purge=True, unstore=False)
        with pytest.raises(TypeError, match="drop tags="):
            butler.prune(refs, purge=True, tags=["t"])
        with pytest.raises(TypeError, match="Nothing to do"):
            butler.prune(refs)
        with pytest.raises(TypeError, match="pass tags="):
            butler.prune(refs, disassociate=True)
        with pytest.raises(TypeError, match="disassociate=False"):
            butler.prune(refs, tags=["t"], disassociate=False)
        with pytest.raises(TypeError, match="drop disassociate=False"):
            butler.prune(refs, purge=True, disassociate=False)
        with pytest.raises(CollectionError, match="not TAGGED"):
            butler.prune(refs, tags=["r1"])
        assert len(artifacts(butler)) == 2

    def test_untag_unstore_purge(self, butler: Butler) -> None:
        refs = put_things(butler, range(4))
        butler.associate("tagged", refs)
        result = butler.prune(refs[:1], tags=["tagged"])
        assert result.disassociated == 1
        assert len(list(butler.query_datasets("thing", collections="tagged"))) == 3
        result = butler.prune(refs[1:2], unstore=True)
        assert result.unstored == 1
        assert butler.exists(refs[1]) == DatasetExistence.RECORDED
        result = butler.prune(refs[2:], purge=True)
        assert result.purged == 2
        assert not butler.exists(refs[2])
        assert len(artifacts(butler)) == 1
        assert butler.verify().ok
        # A purged dataset can be put again under its old id.
        again = butler.put({"back": True}, refs[2])
        assert again.id == refs[2].id and butler.get(again) == {"back": True}

    def test_put_failing_at_commit_leaves_no_artifact_and_no_row(self, butler: Butler) -> None:
        # On PostgreSQL the bridge and records rows go out with the COMMIT: a
        # violation found there must undo the put as one found earlier does.
        (ref,) = put_things(butler, range(1))
        butler.prune([ref], purge=True)
        assert artifacts(butler) == []
        stray = StoredFileInfo.for_ref(ref, "elsewhere.json", "json", 1)
        records = file_datastore(butler).records
        records.insert(stray.to_record())  # a records row no dataset has: the put's row conflicts
        with pytest.raises(ConflictError):
            butler.put({"back": True}, ref)
        assert artifacts(butler) == []
        assert butler.registry.existing_dataset_ids([ref.id]) == set()
        assert location_rows(butler) == 0
        records.delete(["dataset_id"], {"dataset_id": ref.id})
        assert butler.get(butler.put({"back": True}, ref)) == {"back": True}

    def test_remove_runs(self, butler: Butler) -> None:
        put_things(butler, range(3))
        put_things(butler, range(3), run="r2")
        butler.collection_chain("chain", ["r2", "r1"])
        with pytest.raises(CollectionError, match="unlink_from_chains=True"):
            butler.remove_runs(["r2"])
        with pytest.raises(CollectionError, match="not a RUN"):
            butler.remove_runs(["chain"])
        assert len(artifacts(butler)) == 6
        assert butler.remove_runs(["r2"], unlink_from_chains=True) == 3
        assert butler.registry.getCollectionChain("chain") == ("r1",)
        assert len(artifacts(butler)) == 3
        assert butler.verify().ok


class TestMovingData:
    def test_ingest_every_way(self, butler: Butler, tmp_path: Path) -> None:
        files = []
        for d in range(3):
            path = tmp_path / f"in{d}.json"
            path.write_text(f'{{"ingested": {d}}}')
            files.append(path)
        refs = butler.ingest(
            *(
                FileDataset(str(p), [UnresolvedRef("thing", {"instrument": "HSC", "detector": d})])
                for d, p in enumerate(files)
            ),
            transfer="copy",
        )
        assert [butler.get(r) for r in refs] == [{"ingested": d} for d in range(3)]
        with pytest.raises(ConflictError):
            butler.ingest(FileDataset(str(files[0]), [refs[0]]), transfer="copy")
        assert butler.ingest(FileDataset(str(files[0]), [refs[0]]), skip_existing=True) == []
        assert len(artifacts(butler)) == 3

    def test_ingest_unresolved_and_resolved_refs(self, butler: Butler, tmp_path: Path) -> None:
        thing = butler.registry.getDatasetType("thing")
        paths = []
        for d in range(4):
            path = tmp_path / f"in{d}.json"
            path.write_text(f'{{"d": {d}}}')
            paths.append(str(path))
        kept = uuid.uuid4()
        refs = butler.ingest(
            FileDataset(paths[0], [UnresolvedRef("thing", {"instrument": "HSC", "detector": 0})]),
            FileDataset(
                paths[1], [UnresolvedRef(thing, {"instrument": "HSC", "detector": 1}, "r9")]
            ),
            FileDataset(
                paths[2], [DatasetRef(thing, {"instrument": "HSC", "detector": 2}, "r1", kept)]
            ),
            FileDataset(paths[3], [UnresolvedRef("thing", {"instrument": "HSC", "detector": 3})]),
            transfer="copy",
        )
        # Every returned ref is resolved: the registered type, a new (or the kept) id.
        assert all(r.datasetType == thing and isinstance(r.id, uuid.UUID) for r in refs)
        assert [r.run for r in refs] == ["r1", "r9", "r1", "r1"]  # the ref's run, else the butler's
        assert refs[2].id == kept
        assert len({r.id for r in refs}) == 4
        assert [butler.get(r) for r in refs] == [{"d": d} for d in range(4)]
        again = UnresolvedRef("thing", {"instrument": "HSC", "detector": 0})
        assert butler.ingest(FileDataset(paths[0], [again]), skip_existing=True) == []
        with pytest.raises(ConflictError):
            butler.ingest(FileDataset(paths[0], [again]), transfer="copy")
        assert butler.verify().ok

    def test_file_dataset_takes_only_refs(self, tmp_path: Path) -> None:
        path = str(tmp_path / "x.json")
        with pytest.raises(TypeError, match="DatasetRef or UnresolvedRef objects, got dict"):
            FileDataset(path, [{"instrument": "HSC", "detector": 1}])  # type: ignore[list-item]
        with pytest.raises(TypeError, match="DatasetRef or UnresolvedRef objects, got str"):
            FileDataset(path, ["thing"])  # type: ignore[list-item]

    def test_round_trip(self, repositories: RepositoryFactory, tmp_path: Path) -> None:
        """create → register → put/ingest → query → transfer → export/import → prune → verify."""
        source = repositories.create("source", run="r1")
        populate(source)
        refs = put_things(source, range(4))
        extra = tmp_path / "extra.json"
        extra.write_text('{"extra": true}')
        refs += source.ingest(
            FileDataset(str(extra), [UnresolvedRef("thing", {"instrument": "HSC", "detector": 9})]),
            transfer="copy",
        )
        source.associate("best", refs[:2])
        found = list(source.query_datasets("thing", where="detector >= 2"))
        assert len(found) == 3

        target = repositories.create("target")
        moved = target.transfer_from(source, refs)
        assert {r.id for r in moved} == {r.id for r in refs}  # ids preserved
        assert target.get(refs[4]) == {"extra": True}
        assert target.transfer_from(source, refs) == []  # nothing left to copy

        exported = source.export(tmp_path / "export", collections=["r1", "best"])
        imported_into = repositories.create("imported")
        imported = imported_into.import_(exported)
        assert {r.id for r in imported} == {r.id for r in refs}
        assert imported_into.get(refs[0]) == source.get(refs[0])
        assert {r.id for r in imported_into.query_datasets("thing", collections="best")} == {
            r.id for r in refs[:2]
        }

        zipped = source.export(tmp_path / "export.zip", refs=refs[:2], format="json")
        from_zip = repositories.create("zipped")
        assert len(from_zip.import_(zipped)) == 2

        target.prune(moved, purge=True)
        assert target.empty_trash() == 0
        assert artifacts(target) == []
        for repository in (source, target, imported_into, from_zip):
            report = repository.verify()
            assert report.ok, report.problems

    def test_retrieve_artifacts(self, butler: Butler, tmp_path: Path) -> None:
        refs = put_things(butler, range(3))
        written = butler.retrieve_artifacts(refs, tmp_path / "out")
        assert len(written) == 3 and all(p.is_file() for p in written)
        with pytest.raises(FileExistsError):
            butler.retrieve_artifacts(refs, tmp_path / "out")


class TestVerify:
    def test_each_corruption_is_reported_and_repaired(self, butler: Butler) -> None:
        refs = put_things(butler, range(5))
        assert butler.verify().ok
        datastore = file_datastore(butler)
        store = datastore.store
        uris = datastore.get_uris(refs)
        prefix = store.root.rstrip("/") + "/"
        paths = [uris[r.id].removeprefix(prefix) for r in refs]  # type: ignore[index]
        store.delete(paths[0])  # a missing artifact
        store.write(paths[1], b"{}", overwrite=True)  # truncated
        store.write("stray/unknown.json", b"{}")  # unknown to every record
        datastore.bridge.moveToTrash([refs[2]], None)  # a trash row left behind

        report = butler.verify()
        assert report.counts() == {
            "missing_artifact": 1,
            "size_mismatch": 1,
            "unknown_artifact": 1,
            "stale_trash": 1,
        }
        by_kind = {p.kind: p for p in report.problems}
        assert by_kind["missing_artifact"].dataset_id == refs[0].id
        assert by_kind["size_mismatch"].dataset_id == refs[1].id
        assert by_kind["unknown_artifact"].path == "stray/unknown.json"
        assert by_kind["stale_trash"].dataset_id == refs[2].id

        repaired = butler.verify(repair=True)
        assert repaired.repaired == {"missing_artifact": 1, "stale_trash": 1}
        assert store.exists("stray/unknown.json")  # listed, kept unless asked
        assert [p.kind for p in butler.verify().problems] == ["size_mismatch", "unknown_artifact"]
        butler.verify(repair=True, delete_unknown=True)
        assert not store.exists("stray/unknown.json")
        assert [p.kind for p in butler.verify().problems] == ["size_mismatch"]
        assert not datastore.knows(refs[0])  # forgotten by the file datastore...
        assert DatasetExistence.RECORDED in butler.exists(refs[0])  # ...still in the registry

    def test_location_without_records(self, butler: Butler) -> None:
        refs = put_things(butler, range(2))
        datastore = file_datastore(butler)
        datastore.records.delete(["dataset_id"], {"dataset_id": refs[0].id})
        report = butler.verify()
        assert [(p.kind, p.dataset_id) for p in report.problems] == [
            ("location_without_records", refs[0].id),
            ("unknown_artifact", None),
        ]
        butler.verify(repair=True, delete_unknown=True)
        assert butler.verify().ok
        assert butler.where(refs[:1]) == {refs[0].id: set()} or butler.datastore.name == "chain"

    def test_delete_unknown_spares_what_a_write_may_still_record(self, butler: Butler) -> None:
        """An unknown artifact newer than ``keep_newer`` is kept (another client's write may
        record it at its commit), and one that a record names by the time of the deletion
        (a write that committed during the check) is never deleted."""
        from databutler.datastores._file_verify import _Checker
        from databutler.datastores._maintenance import StorageCheck, StorageProblem

        (ref,) = put_things(butler, range(1))
        datastore = file_datastore(butler)
        store = datastore.store
        store.write("stray/new.json", b"{}")
        report = butler.verify(repair=True, delete_unknown=True, keep_newer=3600)
        (kept,) = report.unrepaired
        assert (kept.kind, kept.path) == ("unknown_artifact", "stray/new.json")
        assert "a write still running may record it" in kept.detail
        assert store.exists("stray/new.json") and report.repaired == {}
        assert butler.verify(repair=True, delete_unknown=True).repaired == {"unknown_artifact": 1}
        assert not store.exists("stray/new.json")
        # Listed as unknown while its put had not committed; recorded by the deletion.
        path = datastore.get_uris([ref])[ref.id].removeprefix(store.root.rstrip("/") + "/")
        late = StorageProblem("unknown_artifact", datastore.name, None, path, "no record")
        check = StorageCheck(problems=[late], checked=1)  # as after a check that read it
        assert _Checker(datastore, check).repair([late], True) == {}
        assert "recorded since the check" in check.problems[0].detail
        assert butler.get(ref) == {"detector": 0, "values": [0, 1]} and butler.verify().ok
        with pytest.raises(InvalidArgumentError, match="keep_newer"):
            butler.verify(repair=True, delete_unknown=True, keep_newer=float("nan"))

    def test_read_only_verify_cannot_repair(self, butler: Butler) -> None:
        reader = Butler(butler.root)
        with pytest.raises(ReadOnlyDatabaseError):
            reader.verify(repair=True)
        assert reader.verify().ok
        reader.close()


def test_ids_are_uuids(butler: Butler) -> None:
    (ref,) = put_things(butler, range(1))
    assert isinstance(ref.id, uuid.UUID)


def test_collection_chain_modes(butler: Butler) -> None:
    for run in ("a", "b", "c"):
        butler.registry.registerRun(run)
    assert butler.collection_chain("chain", ["a", "b"]) == ("a", "b")
    assert butler.collection_chain("chain", ["c", "a"], mode="extend") == ("a", "b", "c")
    assert butler.collection_chain("chain", ["c"], mode="prepend") == ("c", "a", "b")
    assert butler.collection_chain("chain", ["a"], mode="remove") == ("c", "b")
    assert butler.collection_chain("chain", ["-1"], mode="pop") == ("c",)
    with pytest.raises(CollectionError, match="does not list a"):
        butler.collection_chain("chain", ["a"], mode="remove")
    with pytest.raises(PositionError, match="no position 5"):
        butler.collection_chain("chain", ["5"], mode="pop")
    with pytest.raises(ValueError, match="Unknown chain mode"):
        butler.collection_chain("chain", ["a"], mode="shuffle")
    assert butler.registry.getCollectionChain("chain") == ("c",)  # failures changed nothing


def test_transfer_across_databases_and_storage(tmp_path: Path, s3_env: S3Environment) -> None:
    """SQLite + local files → PostgreSQL + S3 → SQLite + chained: ids and contents survive."""
    factories = [
        RepositoryFactory("sqlite-local", tmp_path / "a"),
        RepositoryFactory("postgresql-s3", tmp_path / "b", s3_env),
        RepositoryFactory("sqlite-chained", tmp_path / "c"),
    ]
    try:
        source = factories[0].create("laptop", run="night1")
        populate(source)
        refs = put_things(source, range(5))
        shared = factories[1].create("shared")
        assert {r.id for r in shared.transfer_from(source, refs)} == {r.id for r in refs}
        back = factories[2].create("back")
        moved = back.transfer_from(shared, list(shared.query_datasets("thing", collections="*")))
        assert {r.id for r in moved} == {r.id for r in refs}
        for ref in refs:
            assert back.get(ref) == shared.get(ref) == source.get(ref)
        assert shared.verify().ok and back.verify().ok
    finally:
        for factory in factories:
            factory.close()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"db": "bogus://x"}, "Unsupported database 'bogus'"),
        ({"datastore": {"kind": "teleporter", "name": "x"}}, "Unknown datastore kind"),
        ({"datastore": {"kind": "file", "name": "x", "colour": "red"}}, "Unknown key"),
    ],
)
def test_a_failed_create_leaves_no_trace(
    tmp_path: Path, arguments: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Butler.create(tmp_path / "new" / "repo", **arguments)
    assert list(tmp_path.iterdir()) == []


def test_import_refuses_a_manifest_that_leaves_its_directory(
    butler: Butler, tmp_path: Path
) -> None:
    put_things(butler, range(2))
    exported = butler.export(tmp_path / "export", collections=["r1"])
    manifest = exported / "export.yaml"
    text = manifest.read_text()
    first = text.index("path: ") + len("path: ")
    manifest.write_text(text[:first] + "../../escape.json" + text[text.index("\n", first) :])
    target = Butler.create(tmp_path / "target")
    with pytest.raises(ValueError, match="leaves the export directory"):
        target.import_(exported)
    assert target.registry.queryDatasetTypes() == []  # refused before anything changed
    assert target.query_collections() == []


def test_a_failed_import_changes_nothing(repositories: RepositoryFactory, tmp_path: Path) -> None:
    source = repositories.create("source", run="r1")
    populate(source)
    put_things(source, range(3))
    exported = source.export(tmp_path / "export", collections=["r1"])
    victim = next(p for p in exported.rglob("*.json"))
    victim.unlink()  # the manifest now names a file that is gone
    target = repositories.create("target")
    with pytest.raises(ExportFormatError, match="missing"):
        target.import_(exported)
    assert target.registry.queryDatasetTypes() == []
    assert target.query_collections() == []
    assert list(target.query_dimension_records("detector")) == []
    assert artifacts(target) == []


def test_a_failed_transfer_changes_nothing(repositories: RepositoryFactory) -> None:
    source = repositories.create("source", run="r1")
    populate(source)
    refs = put_things(source, range(3))
    source.register_dataset_type("other", ["detector"], "StructuredDataDict")
    refs += [source.put({"x": 1}, "other", instrument="HSC", detector=1)]
    target = repositories.create("target")
    target.register_dataset_type("other", ["instrument"], "StructuredDataDict")  # differs
    with pytest.raises(ConflictError):
        target.transfer_from(source, refs)
    assert [t.name for t in target.registry.queryDatasetTypes()] == ["other"]
    assert list(target.query_dimension_records("detector")) == []
    assert artifacts(target) == []


def test_pruning_nothing_checks_options_on_a_read_only_butler(butler: Butler) -> None:
    refs = put_things(butler, range(1))
    reader = Butler(butler.root)
    assert reader.prune([], purge=True).purged == 0
    with pytest.raises(TypeError, match="drop tags="):
        reader.prune([], purge=True, tags=["t"])
    with pytest.raises(ReadOnlyDatabaseError, match="writeable=True"):
        reader.prune(refs, purge=True)
    reader.close()


@pytest.mark.parametrize("repositories", ["sqlite-chained"], indirect=True)
def test_datastore_filters_see_in_memory_datastores(repositories: RepositoryFactory) -> None:
    butler = repositories.create(run="r1")
    populate(butler)
    refs = put_things(butler, range(4))
    cache = butler.datastore.children[1]  # type: ignore[attr-defined]
    cache.forget(refs[:1])  # the memory child drops one; the files keep it
    held = {r.id for r in butler.query_datasets("thing", in_datastore="cache")}
    assert held == {r.id for r in refs[1:]}
    missing = [r.id for r in butler.query_datasets("thing", not_in_datastore="cache")]
    assert missing == [refs[0].id]
    assert len(list(butler.query_datasets("thing", in_datastore="files"))) == 4


def test_get_many_reads_in_order_and_refuses_what_is_not_a_ref(butler: Butler) -> None:
    refs = put_things(butler, range(5))
    wanted = [refs[3], refs[0], refs[4], refs[0]]
    assert butler.get_many(wanted) == [butler.get(ref) for ref in wanted]
    assert butler.get_many([]) == []
    with pytest.raises(TypeError, match="DatasetRef"):
        butler.get_many([refs[0], "thing"])  # type: ignore[list-item]


def test_exists_of_a_stored_dataset_is_one_query(repositories: RepositoryFactory) -> None:
    butler = repositories.create(run="r1")
    populate(butler)
    refs = put_things(butler, range(3))
    with statements(butler.registry.db) as seen:
        for ref in refs:
            assert butler.exists(ref) == DatasetExistence.VERIFIED
        one_each = len(seen)
        seen.clear()
        assert set(butler.exists_many(refs).values()) == {DatasetExistence.VERIFIED}
        many = len(seen)
    if repositories.kind != "sqlite-chained":  # a chain asks each child and the registry
        assert one_each == 3, seen
        assert many == 1, seen
    butler.prune(refs[:1], purge=True)
    assert butler.exists(refs[0]) == DatasetExistence.NONE
    assert butler.exists(refs[1]) == DatasetExistence.VERIFIED


def test_what_exists_already_is_a_databutler_error(tmp_path: Path) -> None:
    """A repository, an export or a retrieved file that is there already: `AlreadyExistsError`,
    a `DatabutlerError` and still a `FileExistsError`; nothing changes."""
    from databutler import AlreadyExistsError, DatabutlerError

    with Butler.create(tmp_path / "repo", run="r") as butler:
        populate(butler)
        ref = butler.put({"a": 1}, "thing", instrument="HSC", detector=1)
        butler.export(tmp_path / "export", refs=[ref])
        butler.retrieve_artifacts([ref], tmp_path / "out")
        calls = [
            lambda: Butler.create(tmp_path / "repo"),
            lambda: butler.export(tmp_path / "export", refs=[ref]),
            lambda: butler.retrieve_artifacts([ref], tmp_path / "out"),
        ]
        for call in calls:
            with pytest.raises(AlreadyExistsError) as error:
                call()
            assert isinstance(error.value, DatabutlerError)
            assert isinstance(error.value, FileExistsError)
        assert butler.get(ref) == {"a": 1} and butler.verify().ok


def test_values_a_call_cannot_take_are_databutler_errors(tmp_path: Path) -> None:
    """Transfer modes, file datasets and export options the call cannot take: each is a
    `DatabutlerError` (and still the `ValueError`/`TypeError` it was), and nothing changes."""
    from databutler import (
        ArgumentTypeError,
        DatabutlerError,
        InvalidArgumentError,
        TransferModeError,
    )

    with Butler.create(tmp_path / "repo", run="r") as butler:
        populate(butler)
        ref = butler.put({"a": 1}, "thing", instrument="HSC", detector=1)
        unresolved = UnresolvedRef("thing", {"instrument": "HSC", "detector": 2})
        calls: list[tuple[Any, type[DatabutlerError]]] = [
            (
                lambda: butler.retrieve_artifacts([ref], tmp_path / "o", transfer="move"),
                TransferModeError,
            ),
            (
                lambda: butler.retrieve_artifacts([ref], tmp_path / "o", transfer="x"),
                TransferModeError,
            ),
            (lambda: butler.export(tmp_path / "e", refs=[ref], transfer="x"), TransferModeError),
            (lambda: FileDataset("", [unresolved]), InvalidArgumentError),
            (lambda: FileDataset("x.json", []), InvalidArgumentError),
            (lambda: FileDataset("x.json", [5]), ArgumentTypeError),  # type: ignore[list-item]
            (lambda: FileDataset(5, [unresolved]), ArgumentTypeError),  # type: ignore[arg-type]
        ]
        for call, expected in calls:
            with pytest.raises(expected):
                call()
        assert not (tmp_path / "o").exists() and not (tmp_path / "e").exists()
        assert butler.get(ref) == {"a": 1} and butler.verify().ok
