"""Importing daf_butler exports: the real ones made by tests/fixtures/daf_butler/make.py.

``expected.json`` holds daf_butler's own answers about the repository it
exported (ids, data IDs, collections, certifications, each file's SHA-256 and
content); an import is checked against them, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from click.testing import CliRunner
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from databutler import (
    Butler,
    CollectionType,
    ConflictError,
    DatabutlerError,
    ExportFormatError,
    ddl,
)
from databutler.butler._daf_butler_export import tai_to_utc
from databutler.cli import main
from databutler.registry.datasets.calibs import calibs_table_name, from_ns
from databutler.testing.butler import file_datastore, registry_arguments
from databutler.testing.daf_butler import check_dataset
from databutler.testing.dimensions import universe_v1

FIXTURES = Path(__file__).parent / "fixtures" / "daf_butler"
V1 = FIXTURES / "export_v1"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
V0_IDS = json.loads((FIXTURES / "export_v0" / "ids.json").read_text())
UTC = datetime.UTC
DATASET_TYPES = sorted({d["dataset_type"] for d in EXPECTED["datasets"]})
COUNTER = next(d["id"] for d in EXPECTED["datasets"] if d["dataset_type"] == "counter")
TAGGED = EXPECTED["collections"]["u/someone/best"]["members"]
BIASES = sorted({c[0] for c in EXPECTED["collections"]["DummyCam/calib"]["certifications"]})


def utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Butler]:
    """A new, empty, writeable repository (files on local disk) on each registry backend."""
    with registry_arguments(request.param) as arguments:
        butler = Butler.create(universe=universe_v1(), root=str(tmp_path / "repo"), **arguments)
        try:
            yield butler
        finally:
            butler.close()


@pytest.fixture
def v1(tmp_path: Path) -> Path:
    """A copy of the version-1 export (tests may damage or move it)."""
    return Path(shutil.copytree(V1, tmp_path / "export_v1"))


@pytest.fixture
def v0(tmp_path: Path) -> Path:
    """The version-0 export with its files (export_v1's, as its make.py says)."""
    target = Path(shutil.copytree(V1, tmp_path / "export_v0"))
    shutil.copy(FIXTURES / "export_v0" / "export.yaml", target / "export.yaml")
    return target


def state(butler: Butler) -> tuple[Any, ...]:
    """Everything a refused import must leave as it was."""
    registry = butler.registry
    types = sorted(t.name for t in registry.queryDatasetTypes())
    collections = sorted(butler.query_collections())
    records = {
        name: sorted(str(r.to_dict()) for r in registry.queryDimensionRecords(name))
        for name in butler.dimensions.names
    }
    datasets = sorted(
        str(ref.id)
        for name in types
        for ref in (butler.query_datasets(name, collections=collections) if collections else [])
    )
    return types, collections, records, datasets, sorted(file_datastore(butler).store.list())


def certifications(butler: Butler, dataset_type: str) -> list[list[Any]]:
    """(dataset id, begin, end) of every certification of a type, read from its calibs table."""
    group = butler.dimensions.group(butler.registry.getDatasetType(dataset_type).dimensions)
    db = butler.registry.db
    table = sqlalchemy.table(
        calibs_table_name(group),
        sqlalchemy.column("dataset_id", ddl.GUID),
        sqlalchemy.column("validity_begin"),
        sqlalchemy.column("validity_end"),
        schema=db.namespace,
    )
    with db.query(sqlalchemy.select(table)) as result:
        rows = [dict(row) for row in result.mappings()]
    return sorted(
        [str(r["dataset_id"]), from_ns(r["validity_begin"]), from_ns(r["validity_end"])]
        for r in rows
    )


def check_import(butler: Butler, ids: dict[str, str], *, run_docs: bool = True) -> None:
    """The repository holds exactly what daf_butler exported (``ids``: ours to theirs).

    Version-0 exports list runs by name alone: without ``run_docs`` they have none.
    """
    theirs = {d["id"]: d for d in EXPECTED["datasets"]}
    collections = [
        "DummyCam/defaults",
        "u/someone/processing",
        "DummyCam/calib/20240101",
        "DummyCam/calib/20240102",
    ]
    found = {}
    for name in DATASET_TYPES:
        for ref in butler.query_datasets(name, collections="*"):
            found[ids[str(ref.id)]] = ref
    assert sorted(found) == sorted(theirs)
    uris = butler.get_uris(list(found.values()))
    for their_id, ref in found.items():
        check_dataset(butler, ref, theirs[their_id], uris[ref.id])
    assert butler.get("counter", instrument="DummyCam", collections=collections) == 42

    kinds = {name: butler.registry.getCollectionType(name) for name in butler.query_collections()}
    assert {name: kind.name for name, kind in kinds.items()} == {
        name: c["type"] for name, c in EXPECTED["collections"].items()
    }
    for name, expected in EXPECTED["collections"].items():
        doc = expected["doc"] if run_docs or expected["type"] != "RUN" else None
        assert butler.registry.getCollectionDocumentation(name) == doc
        if "children" in expected:
            assert list(butler.registry.getCollectionChain(name)) == expected["children"]
        if "members" in expected:
            members = [
                ids[str(ref.id)]
                for dataset_type in ("raw_array", "summary")
                for ref in butler.query_datasets(dataset_type, collections=name)
            ]
            assert sorted(members) == expected["members"]
        if "certifications" in expected:
            got = [[ids[i], b, e] for i, b, e in certifications(butler, "bias")]
            want = [
                [i, utc(b), None if e is None else utc(e)] for i, b, e in expected["certifications"]
            ]
            assert sorted(got, key=str) == sorted(want, key=str)
    # The validity ranges choose the bias, as daf_butler would.
    for when, level in (("2024-01-01T12:00:00", 101), ("2030-01-01T00:00:00", 201)):
        hit = butler.registry.findDataset(
            "bias",
            instrument="DummyCam",
            detector=1,
            collections="DummyCam/calib",
            timespan=utc(when),
        )
        assert hit is not None and butler.get(hit)["level"] == level
    before = butler.registry.findDataset(
        "bias",
        instrument="DummyCam",
        detector=1,
        collections="DummyCam/calib",
        timespan=utc("2023-12-31T23:59:22.999999"),
    )
    assert before is None


def id_map_v1() -> dict[str, str]:
    return {d["id"]: d["id"] for d in EXPECTED["datasets"]}


def test_import_v1_keeps_everything(fresh: Butler, v1: Path) -> None:
    refs = fresh.import_(v1, skip_unknown_fields=True)
    assert sorted(str(r.id) for r in refs) == sorted(d["id"] for d in EXPECTED["datasets"])
    check_import(fresh, id_map_v1())
    records = {
        r.data_id["exposure"]: r.to_dict() for r in fresh.query_dimension_records("exposure")
    }
    # TAI 04:00:00.123456789 is UTC 03:59:23.123457 (37 leap seconds; microseconds).
    assert records[102] == {
        "instrument": "DummyCam",
        "exposure": 102,
        "physical_filter": "d-r",
        "day_obs": 20240102,
        "obs_id": "DC_102",
        "exposure_time": 30.0,
        "datetime_begin": datetime.datetime(2024, 1, 2, 3, 59, 23, 123457, tzinfo=UTC),
        "datetime_end": datetime.datetime(2024, 1, 2, 4, 0, 23, tzinfo=UTC),
    }
    assert [r.to_dict() for r in fresh.query_dimension_records("instrument")] == [
        {
            "instrument": "DummyCam",
            "visit_max": 1000,
            "detector_max": 4,
            "class_name": "dummy.DummyCam",
        }
    ]
    assert sorted(r.to_dict()["band"] for r in fresh.query_dimension_records("band")) == ["g", "r"]
    detectors = sorted(
        (r.to_dict()["detector"], r.to_dict()["full_name"])
        for r in fresh.query_dimension_records("detector")
    )
    assert detectors == [(0, "S00"), (1, "S01"), (2, "S02")]
    # daf_butler's skymap hash is bytes; databutler keeps its hex digits.
    assert [r.to_dict() for r in fresh.query_dimension_records("skymap")] == [
        {
            "skymap": "dummy",
            "hash": hashlib.sha1(b"dummy sky map").hexdigest(),
            "tract_max": 1,
            "patch_nx_max": 2,
            "patch_ny_max": 1,
        }
    ]
    assert sorted(tuple(r.to_dict().values()) for r in fresh.query_dimension_records("patch")) == [
        ("dummy", 0, 0, 0, 0),
        ("dummy", 0, 1, 1, 0),
    ]
    assert [r.to_dict() for r in fresh.query_dimension_records("day_obs")] == [
        {"instrument": "DummyCam", "day_obs": 20240101},
        {"instrument": "DummyCam", "day_obs": 20240102},
    ]
    assert fresh.verify().ok


def test_import_v0_gives_daf_butlers_ids(fresh: Butler, v0: Path) -> None:
    refs = fresh.import_(v0 / "export.yaml", skip_unknown_fields=True)
    assert sorted(str(r.id) for r in refs) == sorted(V0_IDS)
    check_import(fresh, V0_IDS, run_docs=False)


def test_unknown_fields_are_refused_by_default(fresh: Butler, v1: Path) -> None:
    before = state(fresh)
    with pytest.raises(ExportFormatError) as caught:
        fresh.import_(v1)
    message = str(caught.value)
    for part in (
        "field instrument.exposure_max (set in 1 record(s))",
        "field day_obs.datetime_begin (set in 1 record(s))",
        "field day_obs.datetime_end (set in 1 record(s))",
        "2 record(s) of dimension 'group'",
        "field exposure.group (set in 2 record(s))",
        "field tract.region (set in 1 record(s))",
        "field patch.region (set in 2 record(s))",
        "skip_unknown_fields=True (databutler import --skip-unknown-fields)",
        "skip_dimensions=True",
    ):
        assert part in message
    # Null-valued fields (detector.raft, exposure.dark_time, ...) are not data: not named.
    assert "raft" not in message and "dark_time" not in message
    assert state(fresh) == before


def test_skip_dimensions_needs_records_present(fresh: Butler, v1: Path) -> None:
    fresh.import_(v1, skip_unknown_fields=True, skip_dimensions=False)
    second = Butler.create(universe=universe_v1(), root=str(Path(fresh.root).parent / "second"))
    try:
        # Without records the data IDs cannot be checked: refused, unchanged.
        before = state(second)
        with pytest.raises(DatabutlerError, match="dimension record that does not exist"):
            second.import_(v1, skip_dimensions=True)
        assert state(second) == before
    finally:
        second.close()


def test_transfer_modes(tmp_path: Path, v1: Path) -> None:
    butler = Butler.create(universe=universe_v1(), root=str(tmp_path / "repo"))
    try:
        butler.import_(v1 / "export.yaml", transfer="symlink", skip_unknown_fields=True)
        ref = butler.find_dataset(
            "counter", instrument="DummyCam", collections="u/someone/processing"
        )
        assert ref is not None
        uri = butler.get_uris([ref])[ref.id].removeprefix("file://")
        assert Path(uri).is_symlink()
        assert (
            Path(uri).resolve()
            == (
                v1 / "u/someone/processing/counter/counter_DummyCam_u_someone_processing.json"
            ).resolve()
        )
        assert butler.get(ref) == 42
    finally:
        butler.close()


def test_move_takes_the_files(tmp_path: Path, v1: Path) -> None:
    butler = Butler.create(universe=universe_v1(), root=str(tmp_path / "repo"))
    try:
        butler.import_(v1, transfer="move", skip_unknown_fields=True)
        left = [p for p in v1.rglob("*") if p.is_file()]
        assert left == [v1 / "export.yaml"]
        check_import(butler, id_map_v1())
    finally:
        butler.close()


def test_formatters_under_their_old_module_names(fresh: Butler, v1: Path) -> None:
    edit(v1, "formatters.json.JsonFormatter", "formatters.jsonFormatter.JsonFormatter")
    edit(v1, "formatters.yaml.YamlFormatter", "formatters.yamlFormatter.YamlFormatter", count=99)
    edit(v1, "formatters.pickle.PickleFormatter", "formatters.pickleFormatter.PickleFormatter")
    fresh.import_(v1, skip_unknown_fields=True)
    check_import(fresh, id_map_v1())


def test_export_file_of_another_name(fresh: Butler, v1: Path) -> None:
    (v1 / "export.yaml").rename(v1 / "calibs.yaml")
    assert len(fresh.import_(v1, skip_unknown_fields=True)) == len(EXPECTED["datasets"])
    check_import(fresh, id_map_v1())


def test_two_export_files_are_refused(fresh: Butler, v1: Path) -> None:
    shutil.copy(v1 / "export.yaml", v1 / "a.yaml")
    (v1 / "export.yaml").rename(v1 / "b.yaml")
    before = state(fresh)
    with pytest.raises(ExportFormatError, match=r"several daf_butler exports \(a.yaml, b.yaml\)"):
        fresh.import_(v1, skip_unknown_fields=True)
    assert state(fresh) == before
    fresh.import_(v1 / "b.yaml", skip_unknown_fields=True)
    check_import(fresh, id_map_v1())


def test_zip_of_an_export(tmp_path: Path, v1: Path) -> None:
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(v1.rglob("*")):
            if path.is_file():
                out.write(path, path.relative_to(v1).as_posix())
    butler = Butler.create(universe=universe_v1(), root=str(tmp_path / "repo"))
    try:
        assert len(butler.import_(archive, skip_unknown_fields=True)) == len(EXPECTED["datasets"])
        check_import(butler, id_map_v1())
    finally:
        butler.close()


def test_import_again_with_skip_existing_changes_nothing(fresh: Butler, v1: Path) -> None:
    fresh.import_(v1, skip_unknown_fields=True)
    before = state(fresh)
    cells = certifications(fresh, "bias")
    with pytest.raises(ConflictError, match="exist already"):
        fresh.import_(v1, skip_unknown_fields=True)
    assert fresh.import_(v1, skip_unknown_fields=True, skip_existing=True) == []
    assert state(fresh) == before
    assert certifications(fresh, "bias") == cells


def test_tai_to_utc() -> None:
    assert tai_to_utc("2017-01-01 00:00:37.000000000") == datetime.datetime(2017, 1, 1, tzinfo=UTC)
    assert tai_to_utc("2016-12-31 23:59:59") == datetime.datetime(
        2016, 12, 31, 23, 59, 23, tzinfo=UTC
    )
    assert tai_to_utc("1999-06-01T00:00:32") == datetime.datetime(1999, 6, 1, tzinfo=UTC)
    assert tai_to_utc("2024-01-01 00:00:00.0000004") == datetime.datetime(
        2023, 12, 31, 23, 59, 23, tzinfo=UTC
    )
    assert tai_to_utc("2024-01-01 00:00:00.0000006") == datetime.datetime(
        2023, 12, 31, 23, 59, 23, 1, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="before 1972"):
        tai_to_utc("1970-01-01 00:00:00")
    with pytest.raises(ValueError, match="expected a TAI time"):
        tai_to_utc("yesterday")


# -- bad input: every one a databutler error, the repository unchanged ----------------------


def edit(export: Path, old: str, new: str, count: int = 1) -> None:
    path = export / "export.yaml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, count))


BAD = {
    "malformed YAML": ("data:\n", "data:\n  - [unclosed\n", "is not valid YAML"),
    "unknown version": ("version: 1.0.2", "version: 2.0.0", "format version 2.0.0"),
    "newer minor version": ("version: 1.0.2", "version: 1.1.0", "versions 0 and 1.0.x"),
    "malformed version": ("version: 1.0.2", "version: one", "'version' is 'one'"),
    "unknown tag": (
        f"!uuid '{COUNTER}'",
        "!!python/object/apply:os.system ['true']",
        "python/object/apply:os.system",
    ),
    "custom tag": (f"!uuid '{COUNTER}", f"!dataset '{COUNTER}", "'!dataset'"),
    "bad uuid": (f"!uuid '{COUNTER}'", "!uuid 'nope'", "not a UUID"),
    "unknown formatter": (
        "formatter: lsst.daf.butler.formatters.json.JsonFormatter",
        "formatter: lsst.daf.butler.formatters.astropyTable.AstropyTableFormatter",
        "AstropyTableFormatter",
    ),
    "unknown entry type": (
        "- type: dataset_type\n  name: bias",
        "- type: quantum\n  name: bias",
        "'quantum'",
    ),
    "unknown collection type": (
        "collection_type: TAGGED\n  name:",
        "collection_type: SHELF\n  name:",
        "'SHELF'",
    ),
    "dataset type with an unknown dimension": (
        "    - instrument: DummyCam\n    path: u/someone/processing/counter",
        "    - instrument: DummyCam\n      htm7: 5\n    path: u/someone/processing/counter",
        "dimension(s) htm7, which databutler's dimension universe does not have",
    ),
    "data ID value of a list": (
        "    - instrument: DummyCam\n    path: u/someone/processing/counter",
        "    - instrument: [DummyCam]\n    path: u/someone/processing/counter",
        "must be an integer or a string",
    ),
    "tag of a dataset not exported": (
        "collection_type: TAGGED\n  dataset_ids:\n",
        "collection_type: TAGGED\n  dataset_ids:\n"
        "  - !uuid '11111111-5092-7760-acb1-babdb7975b33'\n",
        "tags dataset 11111111-5092-7760-acb1-babdb7975b33, which the export does not hold",
    ),
    "empty validity range": (
        "  - timespan: !lsst.daf.butler.Timespan\n      begin: !butler_time/tai/iso '2024-01-02",
        "  - timespan: !lsst.daf.butler.Timespan EMPTY\n    x:\n      begin: !butler_time/tai/iso "
        "'2024-01-02",
        "empty validity range",
    ),
    "chain child missing": (
        "  - DummyCam/calib\n  - u/someone/best",
        "  - nowhere\n  - u/someone/best",
        "'nowhere'",
    ),
    "path leaving the export": (
        "path: u/someone/processing/counter/counter_DummyCam_u_someone_processing.json",
        "path: ../../counter_DummyCam_u_someone_processing.json",
        "leaves the export",
    ),
    "dataset without a path": (
        "    path: u/someone/processing/counter/counter_DummyCam_u_someone_processing.json\n",
        "",
        "has no 'path'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_refused_unchanged(fresh: Butler, v1: Path, case: str) -> None:
    old, new, says = BAD[case]
    fresh.import_(V1, skip_unknown_fields=True)  # a repository with data in it already
    edit(v1, old, new)
    if case == "dataset type with an unknown dimension":
        edit(
            v1,
            "  - instrument\n  storage_class: int",
            "  - instrument\n  - htm7\n  storage_class: int",
        )
    before = state(fresh)
    with pytest.raises(ExportFormatError) as caught:
        fresh.import_(v1, skip_unknown_fields=True)
    assert says in str(caught.value)
    assert state(fresh) == before


def test_missing_file_is_refused_unchanged(fresh: Butler, v1: Path) -> None:
    (v1 / "u/someone/processing/counter/counter_DummyCam_u_someone_processing.json").unlink()
    before = state(fresh)
    with pytest.raises(ExportFormatError, match="missing or not a regular file"):
        fresh.import_(v1, skip_unknown_fields=True)
    assert state(fresh) == before


def test_conflicting_collection_is_refused_unchanged(fresh: Butler, v1: Path) -> None:
    fresh.registry.registerCollection("u/someone/best", CollectionType.CALIBRATION)
    before = state(fresh)
    with pytest.raises(ConflictError, match="'u/someone/best' is CALIBRATION here and TAGGED"):
        fresh.import_(v1, skip_unknown_fields=True)
    assert state(fresh) == before


def test_late_failure_undoes_everything(fresh: Butler, v1: Path) -> None:
    """A certification that conflicts inside the transaction leaves nothing behind."""
    fresh.import_(V1, skip_unknown_fields=True)
    second = v1.parent / "second"
    shutil.copytree(v1, second)
    # Same biases certified again: other ids (a new run), same data IDs, same ranges.
    text = (second / "export.yaml").read_text()
    for old in BIASES:
        text = text.replace(old, "99" + old[2:])
    text = text.replace("DummyCam/calib/2024", "DummyCam/calib-again/2024")
    (second / "export.yaml").write_text(text)
    shutil.move(second / "DummyCam" / "calib", second / "DummyCam" / "calib-again")
    before = state(fresh)
    with pytest.raises(ConflictError, match="'DummyCam/calib' already has a dataset valid"):
        fresh.import_(second, skip_unknown_fields=True, skip_existing=True)
    assert state(fresh) == before


# -- the command line -------------------------------------------------------------------------


def test_cli_imports_and_explains_without_traceback(
    tmp_path: Path, v1: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    repo = tmp_path / "repo"
    universe = tmp_path / "universe_v1.json"
    universe.write_text(universe_v1().to_json())
    assert runner.invoke(main, ["create", str(repo), "--universe", str(universe)]).exit_code == 0
    refused = runner.invoke(main, ["import", str(repo), str(v1)])
    assert refused.exit_code == 1
    assert "Traceback" not in refused.output
    assert "--skip-unknown-fields" in refused.output
    edit(v1, "version: 1.0.2", "version: 7.0.0")
    bad = runner.invoke(main, ["import", str(repo), str(v1), "--skip-unknown-fields"])
    assert bad.exit_code == 1
    assert "Traceback" not in bad.output and "format version 7.0.0" in bad.output
    edit(v1, "version: 7.0.0", "version: 1.0.2")
    edit(v1, "version: 1.0.2", "version: !!python/object/apply:os.system ['touch pwned']")
    hostile = runner.invoke(main, ["import", str(repo), str(v1), "--skip-unknown-fields"])
    assert hostile.exit_code == 1
    assert "Traceback" not in hostile.output and "python/object/apply" in hostile.output
    assert not Path("pwned").exists()
    edit(v1, "version: !!python/object/apply:os.system ['touch pwned']", "version: 1.0.2")
    done = runner.invoke(
        main, ["import", str(repo), str(v1 / "export.yaml"), "--skip-unknown-fields"]
    )
    assert done.exit_code == 0, done.output
    assert f"Imported {len(EXPECTED['datasets'])} dataset(s)." in done.output
    butler = Butler(str(repo))
    try:
        check_import(butler, id_map_v1())
    finally:
        butler.close()


# -- where the files are ----------------------------------------------------------------------


def test_links_leading_out_are_copied_never_moved(tmp_path: Path, v1: Path) -> None:
    """An export made with a link transfer holds links to the source repository's files."""
    elsewhere = Path(shutil.copytree(V1, tmp_path / "source-datastore"))
    for path in [p for p in v1.rglob("*") if p.is_file() and p.name != "export.yaml"]:
        path.unlink()
        path.symlink_to(elsewhere / path.relative_to(v1))
    butler = Butler.create(universe=universe_v1(), root=str(tmp_path / "repo"))
    try:
        butler.import_(v1, transfer="move", skip_unknown_fields=True)
        check_import(butler, id_map_v1())
        stored = [Path(u.removeprefix("file://")) for u in all_uris(butler)]
        assert stored and not any(p.is_symlink() for p in stored)
    finally:
        butler.close()
    assert sorted(p.relative_to(elsewhere) for p in elsewhere.rglob("*") if p.is_file()) == sorted(
        p.relative_to(V1) for p in V1.rglob("*") if p.is_file()
    )


def test_absolute_paths_are_copied_from_where_they_are(tmp_path: Path, v1: Path) -> None:
    """Paths outside the export (absolute, or file:// URIs) are read where they are, copied."""
    text = (v1 / "export.yaml").read_text()
    elsewhere = Path(shutil.copytree(V1, tmp_path / "source-datastore"))
    text = text.replace("    path: ", f"    path: {elsewhere}/")
    text = text.replace(f"    path: {elsewhere}/u/", f"    path: {elsewhere.as_uri()}/u/")
    (v1 / "export.yaml").write_text(text)
    for path in [p for p in v1.iterdir() if p.is_dir()]:
        shutil.rmtree(path)
    butler = Butler.create(universe=universe_v1(), root=str(tmp_path / "repo"))
    try:
        butler.import_(v1, transfer="move", skip_unknown_fields=True)
        check_import(butler, id_map_v1())
    finally:
        butler.close()
    assert len([p for p in elsewhere.rglob("*") if p.is_file()]) == len(EXPECTED["datasets"]) + 1


def test_mixed_absolute_and_relative_paths_are_refused(fresh: Butler, v1: Path) -> None:
    edit(v1, "    path: u/", f"    path: {v1}/u/")
    before = state(fresh)
    with pytest.raises(ExportFormatError, match="some files are given by absolute path"):
        fresh.import_(v1, skip_unknown_fields=True)
    assert state(fresh) == before


def all_uris(butler: Butler) -> list[str]:
    refs = [ref for name in DATASET_TYPES for ref in butler.query_datasets(name, collections="*")]
    return list(butler.get_uris(refs).values())


def test_what_was_left_out_is_logged(
    fresh: Butler, v1: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="databutler"):
        fresh.import_(v1, skip_unknown_fields=True)
    (message,) = [r.getMessage() for r in caplog.records if "Left out" in r.getMessage()]
    assert message.endswith(
        "(skip_unknown_fields): day_obs.datetime_begin (1 record(s)), day_obs.datetime_end "
        "(1 record(s)), exposure.group (2 record(s)), group (2 record(s)), "
        "instrument.exposure_max (1 record(s)), patch.region (2 record(s)), tract.region "
        "(1 record(s))."
    )


# -- any damage to the document is a databutler error -------------------------------------------

TOKENS = st.sampled_from(
    ["", "- ", ": ", "!uuid ", "!uuid 'x'", "!lsst.daf.butler.Timespan ", "!butler_time/tai/iso ",
     "!!binary ", "null", "[", "{", "'", "\n", "  ", "0", "-1", "1.5", "true", "type: ",
     "version: 0", "EMPTY", "&a ", "*a", "\t"]
)  # fmt: skip


# Each example makes a repository: no shrinking (slow); the failing input is printed whole.
@settings(
    max_examples=40,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(position=st.floats(0, 1), cut=st.integers(0, 40), token=TOKENS)
def test_damaged_exports_are_refused_cleanly(
    tmp_path_factory: pytest.TempPathFactory, position: float, cut: int, token: str
) -> None:
    root = tmp_path_factory.mktemp("damaged")
    export = Path(shutil.copytree(V1, root / "export"))
    text = (export / "export.yaml").read_text()
    at = int(position * len(text))
    (export / "export.yaml").write_text(text[:at] + token + text[at + cut :])
    butler = Butler.create(universe=universe_v1(), root=str(root / "repo"))
    try:
        before = state(butler)
        try:
            butler.import_(export, skip_unknown_fields=True)
        except DatabutlerError:
            assert state(butler) == before
        else:
            assert butler.verify().ok
    finally:
        butler.close()
