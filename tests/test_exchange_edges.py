"""Edges of moving datasets in and out: a failed transfer, import or retrieve changes nothing,
and every refusal is a databutler error naming the path and the fix."""

from __future__ import annotations

import datetime
import os
import re
import signal
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from databutler import (
    AlreadyExistsError,
    ArtifactCorruptedError,
    Butler,
    CollectionError,
    CollectionType,
    ConflictError,
    DatabutlerError,
    DatasetRef,
    ExportFormatError,
    InvalidArgumentError,
    RepositoryError,
    Timespan,
)
from databutler.datastores import DatasetNotStoredError
from databutler.testing.butler import artifact_of, file_datastore

Snapshot = tuple[list[str], list[tuple[str, int | None]]]


def snapshot(root: Path) -> Snapshot:
    """What a failure must leave as it was: the registry (an SQL dump, schema included) and
    every file and directory under ``root`` with its size (the SQLite files but by the dump)."""
    connection = sqlite3.connect(f"file:{root / 'registry.sqlite3'}?mode=ro", uri=True)
    try:
        dump = list(connection.iterdump())
    finally:
        connection.close()
    listing: list[tuple[str, int | None]] = []
    for directory, directories, names in os.walk(root):
        for name in directories:
            listing.append((os.path.relpath(os.path.join(directory, name), root), None))
        for name in names:
            if not name.startswith("registry.sqlite3"):
                path = os.path.join(directory, name)
                listing.append((os.path.relpath(path, root), os.lstat(path).st_size))
    return dump, sorted(listing, key=lambda item: item[0])


def make(root: Path, run: str = "r1") -> Butler:
    """The repository of the reproducers: instrument HSC, detectors 0..3."""
    butler = Butler.create(root, run=run)
    butler.insert_dimension_records("instrument", {"instrument": "HSC"})
    butler.insert_dimension_records(
        "detector", *({"instrument": "HSC", "detector": d} for d in range(4))
    )
    return butler


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Butler]:
    butler = make(tmp_path / "source")
    butler.register_dataset_type("catalog", ["detector"], "StructuredDataDict")
    yield butler
    butler.close()


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Butler]:
    butler = make(tmp_path / "target")
    yield butler
    butler.close()


@contextmanager
def no_hang(seconds: int = 10) -> Iterator[None]:
    """Fail, instead of hanging the suite, if the block blocks (on a named pipe, say)."""

    def expire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"blocked for {seconds} seconds")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- transfer_from ------------------------------------------------------------------------


@pytest.mark.parametrize("registered", [True, False], ids=["type-here", "type-new"])
def test_transfer_into_a_run_named_like_a_tag_changes_nothing(
    source: Butler, target: Butler, tmp_path: Path, registered: bool
) -> None:
    ref = source.put({"a": 1}, "catalog", instrument="HSC", detector=2)
    source.registry.registerCollection("tg", CollectionType.TAGGED)
    source.registry.associate("tg", [ref])
    target.registry.registerRun("tg")
    if registered:
        target.register_dataset_type("catalog", ["detector"], "StructuredDataDict")
    before = snapshot(tmp_path / "target")
    with pytest.raises(CollectionError, match=r"'tg' is TAGGED in the source .* but RUN here"):
        target.transfer_from(source, [ref], register_dataset_types=True)
    assert snapshot(tmp_path / "target") == before
    assert not target.registry.existing_dataset_ids([ref.id])


@pytest.mark.parametrize(
    "here", [CollectionType.TAGGED, CollectionType.RUN], ids=["tagged-here", "run-here"]
)
def test_transfer_with_a_calibration_collection_of_another_type_changes_nothing(
    tmp_path: Path, here: CollectionType
) -> None:
    source = make(tmp_path / "source", run="calib/run")
    source.register_dataset_type("bias", ["detector"], "StructuredDataDict", is_calibration=True)
    ref = source.put({"a": 1}, "bias", instrument="HSC", detector=1)
    source.certify("calib", [ref], None, None)
    source.registry.registerCollection("chain", CollectionType.CHAINED)
    source.registry.setCollectionChain("chain", ["calib", "calib/run"])
    target = make(tmp_path / "target")
    target.registry.registerCollection("calib", here)
    before = snapshot(tmp_path / "target")
    with pytest.raises(CollectionError, match=f"'calib' is CALIBRATION .* but {here.name} here"):
        target.transfer_from(source, [ref], register_dataset_types=True)
    assert snapshot(tmp_path / "target") == before
    source.close()
    target.close()


def test_transfer_into_a_tag_named_like_the_run_changes_nothing(
    source: Butler, target: Butler, tmp_path: Path
) -> None:
    ref = source.put({"a": 1}, "catalog", instrument="HSC", detector=2, run="r2")
    target.registry.registerCollection("r2", CollectionType.TAGGED)
    before = snapshot(tmp_path / "target")
    for dry_run in (True, False):  # a dry run answers what the transfer would do
        with pytest.raises(CollectionError, match=r"'r2' is RUN in the source .* but TAGGED here"):
            target.transfer_from(source, [ref], register_dataset_types=True, dry_run=dry_run)
    assert snapshot(tmp_path / "target") == before


def test_a_transfer_failing_while_copying_leaves_no_directories(
    source: Butler, target: Butler, tmp_path: Path
) -> None:
    source.register_dataset_type("zzz", ["detector"], "StructuredDataDict")
    first = source.put({"a": 1}, "catalog", instrument="HSC", detector=2)
    second = source.put({"a": 1}, "zzz", instrument="HSC", detector=2)
    store, path = artifact_of(source, second)
    store.write(path, b'{"a": 1, "altered": true}', overwrite=True)
    before = snapshot(tmp_path / "target")
    with pytest.raises(ArtifactCorruptedError):
        target.transfer_from(source, [first, second], register_dataset_types=True)
    assert snapshot(tmp_path / "target") == before


def test_transfer_still_carries_tags_certifications_and_chains(tmp_path: Path) -> None:
    source = make(tmp_path / "source", run="calib/run")
    source.register_dataset_type("bias", ["detector"], "StructuredDataDict", is_calibration=True)
    refs = [source.put({"d": d}, "bias", instrument="HSC", detector=d) for d in range(2)]
    source.certify("calib", refs, None, None)
    source.associate("best", refs[:1])
    source.registry.registerCollection("inner", CollectionType.CHAINED)
    source.registry.setCollectionChain("inner", ["best", "calib"])
    source.registry.registerCollection("outer", CollectionType.CHAINED)
    source.registry.setCollectionChain("outer", ["inner", "calib/run"])
    target = make(tmp_path / "target")
    assert len(target.transfer_from(source, refs, register_dataset_types=True)) == 2
    assert target.registry.getCollectionChain("outer") == ("inner", "calib/run")
    assert target.registry.getCollectionChain("inner") == ("best", "calib")
    assert {i for i, _ in target.registry.query_certifications("calib")} == {r.id for r in refs}
    tagged = target.query_datasets("bias", collections="best")
    assert [ref.id for ref in tagged] == [refs[0].id]
    source.close()
    target.close()


def test_transfer_of_a_few_takes_only_their_tags_and_ranges(tmp_path: Path) -> None:
    """Memberships are read for the datasets transferred: from a tag of many, only theirs
    go; a dataset certified over two ranges keeps both; its own RUN is not a tag."""
    source = make(tmp_path / "source", run="calib/run")
    source.register_dataset_type("bias", ["detector"], "StructuredDataDict", is_calibration=True)
    refs = [source.put({"d": d}, "bias", instrument="HSC", detector=d) for d in range(4)]
    source.associate("many", refs)
    early = Timespan(
        datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
        datetime.datetime(2021, 1, 1, tzinfo=datetime.UTC),
    )
    late = Timespan(datetime.datetime(2022, 1, 1, tzinfo=datetime.UTC), None)
    source.certify("calib", refs[1:2], early.begin, early.end)
    source.certify("calib", refs[1:2], late.begin, late.end)
    source.certify("calib", refs[3:], late.begin, late.end)
    target = make(tmp_path / "target")
    moved = [refs[0], refs[1]]
    assert len(target.transfer_from(source, moved, register_dataset_types=True)) == 2
    tagged = {ref.id for ref in target.query_datasets("bias", collections="many")}
    assert tagged == {refs[0].id, refs[1].id}
    certified = target.registry.query_certifications("calib")
    assert sorted(certified, key=lambda pair: str(pair[1])) == sorted(
        [(refs[1].id, early), (refs[1].id, late)], key=lambda pair: str(pair[1])
    )
    assert target.registry.getCollectionType("calib/run") is CollectionType.RUN
    source.close()
    target.close()


def test_a_failed_transfer_keeps_a_type_another_client_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dataset type that another client registers while the transfer runs is theirs:
    the transfer's failure removes only the types it added itself. (PostgreSQL: there the
    types are registered before the transfer's transaction; SQLite registers them inside
    it, where no other client can write.)"""
    backend = "postgresql"
    from databutler.testing.butler import registry_arguments

    source = make(tmp_path / "source")
    source.register_dataset_type("catalog", ["detector"], "StructuredDataDict")
    refs = [source.put({"d": 1}, "catalog", instrument="HSC", detector=1)]
    with registry_arguments(backend) as arguments:
        target = Butler.create(tmp_path / "target", **arguments)
        target.insert_dimension_records("instrument", {"instrument": "HSC"})
        other = Butler(tmp_path / "target", writeable=True)
        listed = type(target.registry).queryDatasetTypes

        def listed_then_registered(registry: Any, *args: Any, **kwargs: Any) -> Any:
            found = list(listed(registry, *args, **kwargs))
            if registry is target.registry and not other.registry.queryDatasetTypes("catalog"):
                other.register_dataset_type("catalog", ["detector"], "StructuredDataDict")
            return found

        monkeypatch.setattr(type(target.registry), "queryDatasetTypes", listed_then_registered)
        # Fails: detector 1 is not a dimension record of the target, and none is carried.
        with pytest.raises(DatabutlerError):
            target.transfer_from(
                source, refs, register_dataset_types=True, transfer_dimensions=False
            )
        monkeypatch.undo()
        assert [t.name for t in other.registry.queryDatasetTypes("catalog")] == ["catalog"]
        assert list(target.query_datasets("catalog", collections="*")) == []
        other.close()
        target.close()
    source.close()


# -- import_ ------------------------------------------------------------------------------


@pytest.fixture
def calibration_export(tmp_path: Path) -> Path:
    """An export of CALIBRATION collection ``calib`` holding a bias of run ``calib_run``."""
    source = make(tmp_path / "source", run="calib_run")
    source.register_dataset_type("bias", ["detector"], "StructuredDataDict", is_calibration=True)
    ref = source.put({"a": 1}, "bias", instrument="HSC", detector=2)
    source.certify("calib", [ref], None, None)
    export = source.export(tmp_path / "export", collections=["calib"])
    source.close()
    return export


def test_import_refuses_certifying_a_type_that_is_not_a_calibration(
    target: Butler, tmp_path: Path, calibration_export: Path
) -> None:
    manifest = yaml.safe_load((calibration_export / "export.yaml").read_text())
    manifest["dataset_types"][0]["is_calibration"] = False
    (calibration_export / "export.yaml").write_text(yaml.safe_dump(manifest))
    before = snapshot(tmp_path / "target")
    with pytest.raises(ExportFormatError, match=r"'bias', which .* not a calibration type"):
        target.import_(calibration_export)
    assert snapshot(tmp_path / "target") == before
    assert not (file_datastore(target).store.directory / "calib_run").exists()  # type: ignore[attr-defined]


def test_a_late_import_failure_leaves_no_directories(
    tmp_path: Path, calibration_export: Path
) -> None:
    # The same data ID certified here already over the same range: the certification
    # fails inside the transaction, after the artifact was copied in.
    target = make(tmp_path / "target", run="other")
    target.register_dataset_type("bias", ["detector"], "StructuredDataDict", is_calibration=True)
    mine = target.put({"b": 1}, "bias", instrument="HSC", detector=2)
    target.certify("calib", [mine], None, None)
    before = snapshot(tmp_path / "target")
    with pytest.raises(ConflictError, match="'calib' already has a dataset valid"):
        target.import_(calibration_export)
    assert snapshot(tmp_path / "target") == before
    target.close()


def test_import_refuses_a_run_that_is_another_collection_here(
    target: Butler, tmp_path: Path, calibration_export: Path
) -> None:
    target.registry.registerCollection("calib_run", CollectionType.TAGGED)
    before = snapshot(tmp_path / "target")
    with pytest.raises(ExportFormatError, match="'calib_run' is RUN in the export but TAGGED"):
        target.import_(calibration_export)
    assert snapshot(tmp_path / "target") == before


# -- retrieve_artifacts -------------------------------------------------------------------

MODES = ["copy", "link", "hardlink", "symlink", "relsymlink"]


@pytest.fixture
def stored(source: Butler) -> tuple[Butler, list[DatasetRef]]:
    refs = [source.put({"a": d}, "catalog", instrument="HSC", detector=d) for d in range(2)]
    return source, refs


def test_retrieving_into_a_file_is_refused(
    stored: tuple[Butler, list[DatasetRef]], tmp_path: Path
) -> None:
    butler, refs = stored
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    with pytest.raises(AlreadyExistsError, match=f"destination {re.escape(str(a_file))} is a file"):
        butler.retrieve_artifacts(refs, a_file)
    with pytest.raises(
        AlreadyExistsError, match=f"{re.escape(str(a_file))}, on the way to .* is a file"
    ):
        butler.retrieve_artifacts(refs, a_file / "below")
    a_dir = tmp_path / "out"
    a_dir.mkdir()
    (a_dir / "r1").write_text("in the way")
    with pytest.raises(AlreadyExistsError, match=r"r1, on the way to .* is a file"):
        butler.retrieve_artifacts(refs, a_dir)
    assert a_file.read_text() == "mine"
    assert sorted(os.listdir(a_dir)) == ["r1"] and (a_dir / "r1").read_text() == "in the way"


def test_retrieving_into_a_path_with_nul_is_refused(
    stored: tuple[Butler, list[DatasetRef]], tmp_path: Path
) -> None:
    butler, refs = stored
    with pytest.raises(InvalidArgumentError, match="contains a NUL character"):
        butler.retrieve_artifacts(refs, f"{tmp_path}/out\x00put")
    assert sorted(os.listdir(tmp_path)) == ["source"]


#: What is in an artifact's place, and the refusal of retrieving it (its message's pattern).
ARTIFACT_DAMAGE = {
    "missing": (DatasetNotStoredError, "{name} of .* is missing"),
    "dangling": (DatasetNotStoredError, "{name} of .* is missing"),
    "directory": (ArtifactCorruptedError, "it is a directory.*, not a regular"),
    "named pipe": (ArtifactCorruptedError, "it is a named pipe.*, not a regular"),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("damage", sorted(ARTIFACT_DAMAGE))
def test_retrieving_an_artifact_that_is_not_a_file_writes_nothing(
    stored: tuple[Butler, list[DatasetRef]], tmp_path: Path, mode: str, damage: str
) -> None:
    """Missing, a link to nothing, a directory or a named pipe (never opened): refused
    before anything is written, into a new destination or one that holds a file."""
    butler, refs = stored
    store, path = artifact_of(butler, refs[1])
    local = Path(store.directory, path)  # type: ignore[attr-defined]
    local.unlink()
    if damage == "dangling":
        local.symlink_to(tmp_path / "nowhere")
    elif damage == "directory":
        local.mkdir()
    elif damage == "named pipe":
        os.mkfifo(local)
    destination = tmp_path / "out"
    existing = damage in ("directory", "named pipe")
    if existing:
        destination.mkdir()
        (destination / "kept").write_text("mine")
    error, pattern = ARTIFACT_DAMAGE[damage]
    with no_hang(), pytest.raises(error, match=pattern.format(name=re.escape(local.name))):
        butler.retrieve_artifacts(refs, destination, transfer=mode)
    if existing:
        assert sorted(os.listdir(destination)) == ["kept"]
    else:
        assert not destination.exists()


def test_every_retrieve_refusal_is_a_databutler_error(
    stored: tuple[Butler, list[DatasetRef]], tmp_path: Path
) -> None:
    butler, refs = stored
    store, path = artifact_of(butler, refs[0])
    Path(store.directory, path).unlink()  # type: ignore[attr-defined]
    (tmp_path / "f").write_text("")
    for destination in (tmp_path / "f", tmp_path / "f" / "g", f"{tmp_path}/\x00", tmp_path / "o"):
        with pytest.raises(DatabutlerError):
            butler.retrieve_artifacts(refs, destination)


# -- opening a repository -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["named pipe", "directory", "device"])
def test_a_butler_yaml_that_is_not_a_file_is_refused_without_blocking(
    tmp_path: Path, kind: str
) -> None:
    root = tmp_path / "repo"
    Butler.create(root).close()
    config = root / "butler.yaml"
    config.unlink()
    if kind == "named pipe":
        os.mkfifo(config)
    elif kind == "directory":
        config.mkdir()
    else:
        # /dev/null: a device like /dev/zero, whose endless read would not fail but exhaust
        # the memory of the suite were it not refused.
        if not os.path.exists("/dev/null") or not stat.S_ISCHR(os.stat("/dev/null").st_mode):
            pytest.skip("no /dev/null here")
        config.symlink_to("/dev/null")
    refused = f"{re.escape(str(config))} is a {kind}.*, not a config"
    with no_hang(), pytest.raises(RepositoryError, match=refused):
        Butler(root)
