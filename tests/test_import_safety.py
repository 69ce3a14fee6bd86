"""Exports are untrusted input: a malformed or hostile one is refused before anything changes."""

from __future__ import annotations

import copy
import json
import os
import shutil
import stat
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from databutler import Butler, DatabutlerError, ExportFormatError
from databutler.cli import main
from databutler.datastores.resources.local import LocalStore
from databutler.testing.butler import RepositoryFactory, file_datastore, populate


def put_things(butler: Butler, n: int = 3) -> None:
    for d in range(n):
        butler.put({"detector": d}, "thing", instrument="HSC", detector=d)


def state(butler: Butler) -> tuple[Any, ...]:
    """What a failed import must leave as it was: types, collections, records, datasets, files."""
    root = file_datastore(butler).store
    types = sorted(t.name for t in butler.registry.queryDatasetTypes())
    collections = sorted(butler.query_collections())
    return (
        types,
        collections,
        sorted(str(r.data_id) for r in butler.query_dimension_records("detector")),
        sorted(
            (str(ref.id), name, str(ref.run))
            for name in types
            for ref in (butler.query_datasets(name, collections=collections) if collections else [])
        ),
        sorted(root.list()),
        # Directories too: an import undone by its transaction must not leave empty ones.
        sorted(
            str(p.relative_to(root.directory))
            for p in Path(root.directory).rglob("*")
            if p.is_dir()
        )
        if isinstance(root, LocalStore)
        else [],
    )


def read(export: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((export / "export.yaml").read_text()))


def write(export: Path, manifest: Any) -> None:
    (export / "export.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))


@pytest.fixture
def source(tmp_path: Path) -> Butler:
    factory = RepositoryFactory("sqlite-local", tmp_path / "s")
    butler = factory.create("source", run="r1")
    populate(butler)
    put_things(butler)
    return butler


@pytest.fixture
def target(tmp_path: Path) -> Butler:
    factory = RepositoryFactory("sqlite-local", tmp_path / "t")
    return factory.create("target")


@pytest.fixture
def export(source: Butler, tmp_path: Path) -> Path:
    return source.export(tmp_path / "export", collections=["r1"])


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file of the importing user's outside the export that no import may touch."""
    path = tmp_path / "private" / "secret.json"
    path.parent.mkdir()
    path.write_text('{"detector": 0}')
    return path


def refused(target: Butler, export: Path, match: str | None = None, **kwargs: Any) -> None:
    before = state(target)
    with pytest.raises(ExportFormatError, match=match):
        target.import_(export, **kwargs)
    assert state(target) == before
    assert target.verify().ok


TRANSFERS = ["auto", "copy", "move", "symlink", "hardlink", "direct", None]


@pytest.mark.parametrize("transfer", TRANSFERS)
def test_absolute_paths_are_refused(
    target: Butler, export: Path, secret: Path, transfer: str | None
) -> None:
    manifest = read(export)
    manifest["files"][0]["path"] = str(secret)
    write(export, manifest)
    refused(target, export, "absolute", transfer=transfer)
    manifest["files"][0]["path"] = secret.as_uri()
    write(export, manifest)
    refused(target, export, "absolute", transfer=transfer)
    assert secret.read_text() == '{"detector": 0}'


@pytest.mark.parametrize("transfer", TRANSFERS)
def test_dotdot_paths_are_refused(
    target: Butler, export: Path, secret: Path, transfer: str | None
) -> None:
    manifest = read(export)
    for path in ("../private/secret.json", "r1/../../private/secret.json", "r1/../export.yaml"):
        manifest["files"][0]["path"] = path
        write(export, manifest)
        refused(target, export, "leaves", transfer=transfer)
    assert secret.read_text() == '{"detector": 0}'


@pytest.mark.parametrize("transfer", TRANSFERS)
def test_links_leaving_the_export_are_refused(
    target: Butler, export: Path, secret: Path, transfer: str | None
) -> None:
    manifest = read(export)
    victim = export / manifest["files"][0]["path"]
    victim.unlink()
    victim.symlink_to(secret)  # a file that is a link out
    refused(target, export, "symbolic link", transfer=transfer)
    # A directory on the way that is a link out.
    victim.unlink()
    victim.write_text('{"detector": 0}')
    shutil.copy(secret, secret.parent / victim.name)
    directory = victim.parent
    shutil.rmtree(directory)
    directory.symlink_to(secret.parent, target_is_directory=True)
    refused(target, export, "symbolic link", transfer=transfer)
    assert secret.read_text() == '{"detector": 0}'
    assert (secret.parent / victim.name).exists()


BROKEN: list[tuple[str, Any]] = [
    ("path missing", lambda m: m["files"][0].pop("path")),
    ("path an int", lambda m: m["files"][0].update(path=5)),
    ("path empty", lambda m: m["files"][0].update(path="")),
    ("id missing", lambda m: m["files"][0]["refs"][0].pop("id")),
    ("id not a uuid", lambda m: m["files"][0]["refs"][0].update(id="not-a-uuid")),
    ("id an int", lambda m: m["files"][0]["refs"][0].update(id=12)),
    ("run an int", lambda m: m["files"][0]["refs"][0].update(run=5)),
    ("unknown dataset type", lambda m: m["files"][0]["refs"][0].update(dataset_type="nope")),
    ("refs empty", lambda m: m["files"][0].update(refs=[])),
    ("refs a dict", lambda m: m["files"][0].update(refs={})),
    ("data_id a list", lambda m: m["files"][0]["refs"][0].update(data_id=[1])),
    ("data_id value a list", lambda m: m["files"][0]["refs"][0]["data_id"].update(detector=[1])),
    ("files a dict", lambda m: m.update(files={})),
    ("files missing", lambda m: m.pop("files")),
    ("types missing", lambda m: m.pop("dataset_types")),
    ("type name an int", lambda m: m["dataset_types"][0].update(name=3)),
    ("type dimensions a str", lambda m: m["dataset_types"][0].update(dimensions="detector")),
    ("calibration a str", lambda m: m["dataset_types"][0].update(is_calibration="yes")),
    ("records a list", lambda m: m.update(dimensions=[1, 2])),
    ("record a str", lambda m: m["dimensions"]["detector"].append("x")),
    ("runs a str", lambda m: m.update(runs="r1")),
    ("tags a list", lambda m: m.update(tags=["a"])),
    ("tag ids bad", lambda m: m.update(tags={"t": ["zz"]})),
    ("version", lambda m: m.update(databutler_export=2)),
    ("unknown key", lambda m: m.update(surprise=1)),
    ("artifacts mode", lambda m: m.update(artifacts="everywhere")),
    ("unknown file key", lambda m: m["files"][0].update(where="/etc")),
    ("unknown ref key", lambda m: m["files"][0]["refs"][0].update(extra=1)),
    ("unknown type key", lambda m: m["dataset_types"][0].update(extra=1)),
    ("type unknown dimension", lambda m: m["dataset_types"][0].update(dimensions=["nope"])),
    ("component type", lambda m: m["dataset_types"][0].update(name="thing.part")),
    ("record of no dimension", lambda m: m["dimensions"].update(nope=[{"nope": 1}])),
    ("record without its key", lambda m: m["dimensions"]["detector"][0].pop("detector")),
    ("data_id extra key", lambda m: m["files"][0]["refs"][0]["data_id"].update(visit=1)),
    ("data_id missing key", lambda m: m["files"][0]["refs"][0]["data_id"].pop("detector")),
    ("data_id wrong type", lambda m: m["files"][0]["refs"][0]["data_id"].update(detector="x")),
    ("file entry a list", lambda m: m.update(files=[[1]])),
    ("two entries, one file", lambda m: m["files"][1].update(path=m["files"][0]["path"])),
    ("the manifest as a file", lambda m: m["files"][0].update(path="export.yaml")),
    ("a directory as a file", lambda m: m["files"][0].update(path="r1")),
    ("tag of a stranger", lambda m: m.update(tags={"t": [str(uuid.uuid4())]})),
]


@pytest.mark.parametrize("breakage", BROKEN, ids=[b[0] for b in BROKEN])
@pytest.mark.parametrize("transfer", ["copy", "move"])
def test_malformed_fields_are_refused(
    target: Butler, export: Path, breakage: tuple[str, Any], transfer: str
) -> None:
    manifest = read(export)
    breakage[1](manifest)
    write(export, manifest)
    files = sorted(p for p in export.rglob("*") if p.name != "export.yaml")
    refused(target, export, transfer=transfer)
    assert sorted(p for p in export.rglob("*") if p.name != "export.yaml") == files


def test_a_link_inside_the_export_is_read_through_and_never_moved_away(
    target: Butler, export: Path
) -> None:
    manifest = read(export)
    real = export / manifest["files"][0]["path"]
    alias = export / "alias.json"
    alias.symlink_to(real)
    manifest["files"][0]["path"] = "alias.json"
    write(export, manifest)
    refs = target.import_(export, transfer="move")
    assert sorted(target.get(ref)["detector"] for ref in refs) == [0, 1, 2]
    assert target.verify().ok
    stored = file_datastore(target).store.directory  # type: ignore[attr-defined]
    assert not any(p.is_symlink() for p in stored.rglob("*"))


@pytest.mark.parametrize(
    "text", ["", "[1, 2]", "5", "{a: [", "databutler_export: 1\nfiles: 3\n", "\x00\x01"]
)
def test_unparsable_or_foreign_manifests_are_refused(
    target: Butler, export: Path, text: str
) -> None:
    (export / "export.yaml").write_text(text)
    refused(target, export)


def test_not_an_export(target: Butler, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    refused(target, tmp_path / "empty", "no export")
    refused(target, tmp_path / "missing", "does not exist")
    (tmp_path / "plain.txt").write_text("hello")
    refused(target, tmp_path / "plain.txt", "neither")


def test_corrupt_and_hostile_zips_are_refused(
    source: Butler, target: Butler, tmp_path: Path
) -> None:
    archive = source.export(tmp_path / "export.zip", collections=["r1"])
    data = archive.read_bytes()
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(data[: len(data) // 2] + b"\x00" * 64 + data[-22:])
    refused(target, corrupt)
    for name in ("../escape.json", "/abs/escape.json"):
        hostile = tmp_path / "hostile.zip"
        shutil.copy(archive, hostile)
        with zipfile.ZipFile(hostile, "a") as z:
            z.writestr(name, "{}")
        refused(target, hostile, "outside")
        assert not (tmp_path / "escape.json").exists()
    linked = tmp_path / "linked.zip"
    shutil.copy(archive, linked)
    with zipfile.ZipFile(linked, "a") as z:
        info = zipfile.ZipInfo("r1/link.json")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, "/etc/hostname")
    refused(target, linked, "symbolic link")
    # The intact archive still imports.
    assert len(target.import_(archive)) == 3


MUTATIONS: st.SearchStrategy[Any] = st.sampled_from(
    [None, 0, -1, 2**70, 1.5, True, "", "x", "../x", "/etc/hostname", "\x00", [], {}, [None]]
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_mutated_manifest_is_imported_or_refused_cleanly(
    source: Butler, target: Butler, export: Path, secret: Path, data: st.DataObject
) -> None:
    # A fresh copy of the export for each example: a successful move empties it.
    export = Path(shutil.copytree(export, export.with_name(f"export-{uuid.uuid4().hex}")))
    original = read(export)
    manifest = copy.deepcopy(original)
    # Walk to a random place in the manifest and replace (or drop) what is there.
    node: Any = manifest
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            break
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and data.draw(st.booleans()):
            node = child
            continue
        if isinstance(node, dict) and data.draw(st.booleans()):
            del node[key]
        else:
            node[key] = data.draw(MUTATIONS)
        break
    write(export, manifest)
    before = state(target)
    try:
        target.import_(export, transfer=data.draw(st.sampled_from(["copy", "move", "auto"])))
    except DatabutlerError:
        assert state(target) == before
    finally:
        shutil.rmtree(export)
    assert target.verify().ok
    assert secret.read_text() == '{"detector": 0}'
    # Undo a successful import so that each example starts from the same target.
    refs = (
        list(target.query_datasets("thing", collections="r1"))
        if "r1" in (target.query_collections())
        else []
    )
    if refs:
        target.prune(refs, purge=True)


@pytest.mark.parametrize("transfer", ["move", "copy"])
def test_an_import_that_fails_after_moving_files_leaves_no_directory(
    source: Butler, target: Butler, tmp_path: Path, transfer: str
) -> None:
    """The files of one run moved in, then another run's file refused (an unknown
    formatter): the moved files go back, and the directories the import made go too."""
    source.put({"other": 1}, "thing", instrument="HSC", detector=0, run="r0")
    export = source.export(tmp_path / "two-runs", collections=["r0", "r1"])
    manifest = read(export)
    last = next(f for f in reversed(manifest["files"]) if f["path"].startswith("r1/"))
    last["formatter"] = "nosuchformatter"
    write(export, manifest)
    files = sorted(p.relative_to(export) for p in export.rglob("*"))
    before = state(target)
    with pytest.raises(DatabutlerError, match="nosuchformatter"):
        target.import_(export, transfer=transfer)
    assert state(target) == before
    assert sorted(p.relative_to(export) for p in export.rglob("*")) == files


@pytest.mark.parametrize("transfer", [None, "symlink", "relsymlink"])
def test_exports_pointing_at_their_source_can_be_imported(
    source: Butler, target: Butler, tmp_path: Path, transfer: str | None
) -> None:
    exported = source.export(tmp_path / "linked", collections=["r1"], transfer=transfer)
    store = file_datastore(source).store
    assert isinstance(store, LocalStore)
    before = {p: p.read_bytes() for p in store.directory.rglob("*.json")}
    refs = target.import_(exported, transfer="move")  # never moves what it only points at
    assert sorted(target.get(ref)["detector"] for ref in refs) == [0, 1, 2]
    assert {p: p.read_bytes() for p in before} == before
    assert source.verify().ok and target.verify().ok
    # The same manifest with a path not written by that export is still refused.
    manifest = read(exported)
    key = "external" if transfer is None else "linked"
    assert manifest["artifacts"] == key
    manifest["files"][0]["path"] = "/etc/hostname" if transfer is None else "../x.json"
    write(exported, manifest)
    other = RepositoryFactory("sqlite-local", tmp_path / "o").create("other")
    refused(other, exported)


def test_skip_existing(source: Butler, target: Butler, export: Path, tmp_path: Path) -> None:
    assert len(target.import_(export)) == 3
    with pytest.raises(DatabutlerError, match="skip_existing=True"):
        target.import_(export)
    assert target.import_(export, skip_existing=True) == []
    source.put({"detector": 9}, "thing", instrument="HSC", detector=9)
    again = source.export(tmp_path / "again", collections=["r1"])
    added = target.import_(again, skip_existing=True)
    assert [target.get(ref) for ref in added] == [{"detector": 9}]
    assert target.verify().ok


def test_cli_import_refuses_in_one_line_and_skips_existing(
    source: Butler, target: Butler, export: Path, secret: Path
) -> None:
    from click.testing import CliRunner

    runner = CliRunner()
    repo = str(target.root)
    target.close()
    manifest = read(export)
    good = copy.deepcopy(manifest)
    manifest["files"][0]["path"] = str(secret)
    write(export, manifest)
    result = runner.invoke(main, ["import", repo, str(export)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "absolute" in result.output
    write(export, good)
    assert runner.invoke(main, ["import", repo, str(export)]).exit_code == 0
    again = runner.invoke(main, ["import", repo, str(export)])
    assert again.exit_code == 1 and "--skip-existing" in again.output
    skipped = runner.invoke(main, ["import", repo, str(export), "--skip-existing"])
    assert skipped.exit_code == 0, skipped.output
    assert "Imported 0 dataset(s)" in skipped.output


def test_json_manifests_are_checked_too(source: Butler, target: Butler, tmp_path: Path) -> None:
    exported = source.export(tmp_path / "j", collections=["r1"], format="json")
    manifest = json.loads((exported / "export.json").read_text())
    manifest["files"][0]["refs"][0]["id"] = "nope"
    (exported / "export.json").write_text(json.dumps(manifest))
    refused(target, exported, "UUID")
    (exported / "export.json").write_text("{")
    refused(target, exported, "parsed")
    assert os.path.isdir(exported)


def test_a_conflicting_dataset_type_leaves_no_new_type(
    target: Butler, export: Path, tmp_path: Path
) -> None:
    populate(target)
    target.registry.removeDatasetType("thing")
    target.register_dataset_type("thing", ["instrument"], "StructuredDataDict")
    manifest = read(export)
    # A new type first, so that it is registered before the conflicting one is met.
    manifest["dataset_types"].insert(
        0, {"name": "aaa", "dimensions": ["detector"], "storage_class": "StructuredDataDict"}
    )
    write(export, manifest)
    before = state(target)
    with pytest.raises(DatabutlerError, match="another definition"):
        target.import_(export)
    assert state(target) == before
    assert target.verify().ok


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.update(run="other"),
        lambda r: r["data_id"].update(detector=7),
    ],
    ids=["another run", "another data ID"],
)
def test_skip_existing_refuses_a_different_definition(
    target: Butler, export: Path, change: Any
) -> None:
    target.import_(export)
    manifest = read(export)
    change(manifest["files"][0]["refs"][0])
    write(export, manifest)
    before = state(target)
    with pytest.raises(DatabutlerError, match="another definition"):
        target.import_(export, skip_existing=True)
    assert state(target) == before
    assert "other" not in target.query_collections()
    assert target.verify().ok


def test_imports_in_every_configuration(repositories: RepositoryFactory, tmp_path: Path) -> None:
    """Local, S3 and chained: hostile paths refused, clean exports imported, skip_existing."""
    source = repositories.create("source", run="r1")
    populate(source)
    put_things(source)
    target = repositories.create("target")
    exported = source.export(tmp_path / "export", collections=["r1"])
    good = read(exported)
    for path in ("/etc/hostname", "../x.json", "s3://bucket/x.json"):
        manifest = copy.deepcopy(good)
        manifest["files"][0]["path"] = path
        write(exported, manifest)
        refused(target, exported)
    write(exported, good)
    refs = target.import_(exported, transfer="copy")
    assert sorted(target.get(ref)["detector"] for ref in refs) == [0, 1, 2]
    assert target.import_(exported, skip_existing=True) == []
    # An export made with transfer=None points at the source's artifacts (on S3 too).
    other = repositories.create("other")
    external = source.export(tmp_path / "external", collections=["r1"], transfer=None)
    manifest = read(external)
    assert manifest["artifacts"] == "external"
    scheme = "s3://" if repositories.kind == "postgresql-s3" else "file://"
    assert all(f["path"].startswith(scheme) for f in manifest["files"])
    # A URI that names nothing, or leaves its key through '..', is refused first.
    for broken in (manifest["files"][0]["path"] + ".gone", f"{scheme}/a/../../etc/hostname"):
        changed = copy.deepcopy(manifest)
        changed["files"][0]["path"] = broken
        write(external, changed)
        refused(other, external)
    write(external, manifest)
    imported = other.import_(external, transfer="move")  # copied: never moved from the source
    assert sorted(other.get(ref)["detector"] for ref in imported) == [0, 1, 2]
    assert [source.get(ref) for ref in imported] == [other.get(ref) for ref in imported]
    assert source.verify().ok and other.verify().ok and target.verify().ok


@pytest.mark.parametrize(
    "transfer", ["copy", "hardlink", "symlink", "relsymlink", "move", "direct"]
)
def test_a_linked_export_imports_in_every_mode_without_going_through_the_export(
    source: Butler, target: Butler, tmp_path: Path, transfer: str
) -> None:
    exported = source.export(tmp_path / "linked", collections=["r1"], transfer="symlink")
    stored = file_datastore(source).store.directory  # type: ignore[attr-defined]
    before = {p: p.read_bytes() for p in stored.rglob("*.json")}
    refs = target.import_(exported, transfer=transfer)
    shutil.rmtree(exported)  # what the import made never depends on the export
    assert sorted(target.get(ref)["detector"] for ref in refs) == [0, 1, 2]
    assert {p: p.read_bytes() for p in before} == before and not any(p.is_symlink() for p in before)
    assert source.verify().ok and target.verify().ok


def test_cli_refuses_broken_exports_in_one_line(
    source: Butler, target: Butler, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    archive = source.export(tmp_path / "export.zip", collections=["r1"])
    corrupt = tmp_path / "corrupt.zip"
    corrupt.write_bytes(archive.read_bytes()[:100])
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "export.json").write_text("[1, 2, 3]")
    before = state(target)
    repo = str(target.root)
    target.close()
    runner = CliRunner()
    for bad, words in ((corrupt, "neither"), (foreign, "must be a mapping")):
        result = runner.invoke(main, ["import", repo, str(bad)])
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output and words in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    again = Butler(repo)
    assert state(again) == before and again.verify().ok
    again.close()


NAMES = st.one_of(
    st.sampled_from(
        ["../x.json", "/abs.json", "r1/../../x.json", "./x.json", "a//b.json", "..", "\\..\\x"]
    ),
    st.lists(st.sampled_from(["..", ".", "r1", "x.json", ""]), min_size=1, max_size=4).map(
        "/".join
    ),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=NAMES, link=st.booleans())
def test_any_extra_zip_member_is_imported_or_refused_cleanly(
    source: Butler, target: Butler, tmp_path: Path, name: str, link: bool
) -> None:
    archive = tmp_path / "export.zip"
    if not archive.exists():
        source.export(archive, collections=["r1"])
    hostile = tmp_path / f"hostile-{uuid.uuid4().hex}.zip"
    shutil.copy(archive, hostile)
    with zipfile.ZipFile(hostile, "a") as z:
        info = zipfile.ZipInfo(name)
        if link:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, "/etc/hostname" if link else "{}")
    outside = sorted(p.name for p in tmp_path.iterdir())
    before = state(target)
    try:
        refs = target.import_(hostile)
    except DatabutlerError:
        assert state(target) == before
    else:
        assert not link
        target.prune(refs, purge=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == outside
    assert target.verify().ok
    hostile.unlink()
