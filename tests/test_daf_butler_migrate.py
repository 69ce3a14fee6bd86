"""Migrating a real daf_butler repository (``tests/fixtures/daf_butler/repo``).

The repository was made by lsst-daf-butler itself, with
``tests/fixtures/daf_butler/make.py --repo PATH`` run in a scratch copy of the
script (so that the committed exports stay as they are); ``repo/expected.json``
is the ``expected.json`` of that run: daf_butler's own answers about it (ids,
data IDs, collections, certifications, each file's SHA-256 and content). The
registry was then compacted with ``VACUUM``. Each test migrates a copy, on
SQLite and PostgreSQL, in place and copying; the registry is also copied into
PostgreSQL, as a source (the tests at the end).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import shutil
import socket
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy
from click.testing import CliRunner

from databutler import (
    Butler,
    DatabutlerError,
    IncompatibleVersionError,
    InvalidArgumentError,
    RepositoryError,
    Timespan,
)
from databutler.butler._migrate import MigrationReport
from databutler.cli import main
from databutler.registry.databases import database_class_for_uri
from databutler.testing.butler import file_datastore, registry_arguments
from databutler.testing.daf_butler import check_dataset
from databutler.testing.database import postgresql_uri

REPO = Path(__file__).parent / "fixtures" / "daf_butler" / "repo"
EXPECTED = json.loads((REPO / "expected.json").read_text())
THEIRS = {d["id"]: d for d in EXPECTED["datasets"]}
DATASET_TYPES = sorted({d["dataset_type"] for d in EXPECTED["datasets"]})
COADD = next(d for d in EXPECTED["datasets"] if d["dataset_type"] == "coadd_summary")
UTC = datetime.UTC
COADD_PATH = (
    "u/someone/processing/coadd_summary/0/0/coadd_summary_0_0_dummy_u_someone_processing.yaml"
)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A copy of the daf_butler repository (tests damage it, and in-place migrations use it)."""
    return Path(shutil.copytree(REPO, tmp_path / "daf_butler"))


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """Where to migrate to: the root, and the registry database of each backend."""
    with registry_arguments(request.param) as arguments:
        yield {"root": str(tmp_path / "dest"), **arguments}


def hashes(root: Path) -> dict[str, str]:
    """Every file under ``root`` and its SHA-256: the source must not change."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def utc(text: str | None) -> datetime.datetime | None:
    return None if text is None else datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


def check(root: str, *, inside: Path | None, leave_out: tuple[str, ...] = ()) -> None:
    """The databutler repository at ``root`` holds what daf_butler had (but ``leave_out``).

    ``inside``: where every artifact must be (the source for an in-place
    migration, the destination for a copy).
    """
    with Butler(root) as butler:
        found = {
            str(ref.id): ref
            for name in DATASET_TYPES
            for ref in butler.query_datasets(name, collections="*")
        }
        assert sorted(found) == sorted(set(THEIRS) - set(leave_out))
        uris = butler.get_uris(list(found.values()))
        for dataset_id, ref in found.items():
            path = check_dataset(butler, ref, THEIRS[dataset_id], uris[ref.id])
            if inside is not None:
                assert path.is_relative_to(inside), path
        registry = butler.registry
        kinds = {name: registry.getCollectionType(name).name for name in butler.query_collections()}
        assert kinds == {name: c["type"] for name, c in EXPECTED["collections"].items()}
        for name, expected in EXPECTED["collections"].items():
            assert registry.getCollectionDocumentation(name) == expected["doc"]
            if "children" in expected:
                assert list(registry.getCollectionChain(name)) == expected["children"]
            if "members" in expected:
                members = [
                    str(ref.id)
                    for dataset_type in DATASET_TYPES
                    for ref in butler.query_datasets(dataset_type, collections=name)
                ]
                assert sorted(members) == sorted(set(expected["members"]) - set(leave_out))
            if "certifications" in expected:
                got = sorted(
                    [str(i), t.begin, t.end] for i, t in registry.query_certifications(name)
                )
                want = sorted(
                    [i, utc(b), utc(e)]
                    for i, b, e in expected["certifications"]
                    if i not in leave_out
                )
                assert got == want
        # The validity ranges choose the bias as daf_butler would.
        for when, level in (("2024-01-01T12:00:00", 101), ("2030-01-01T00:00:00", 201)):
            hit = registry.findDataset(
                "bias", instrument="DummyCam", detector=1, collections="DummyCam/calib",
                timespan=utc(when),
            )  # fmt: skip
            assert hit is not None and butler.get(hit)["level"] == level
        # Times carried as UTC: TAI 04:00:00.123456789 is UTC 03:59:23.123457.
        exposures = {
            r.data_id["exposure"]: r.to_dict() for r in butler.query_dimension_records("exposure")
        }
        assert exposures[102]["timespan"].begin == datetime.datetime(
            2024, 1, 2, 3, 59, 23, 123457, tzinfo=UTC
        )
        assert butler.verify().ok


def source_records() -> dict[str, list[dict[str, Any]]]:
    """The fixture's dimension records as daf_butler's universe has them, read with SQL:
    what a migration with the source's universe must give, value for value."""
    import base64

    from databutler._leap_seconds import utc_from_tai

    def when(ns: int) -> datetime.datetime:
        seconds, rest = divmod(ns, 10**9)
        tai = datetime.datetime(1970, 1, 1, tzinfo=UTC) + datetime.timedelta(
            seconds=seconds, microseconds=round(rest / 1000)
        )
        return utc_from_tai(tai)

    keys = {
        "instrument": "name", "physical_filter": "name", "detector": "id", "group": "name",
        "day_obs": "id", "exposure": "id", "skymap": "name", "tract": "id", "patch": "id",
    }  # fmt: skip
    out: dict[str, list[dict[str, Any]]] = {}
    with sqlite3.connect(REPO / "gen3.sqlite3") as db:
        for element, key in keys.items():
            cursor = db.execute(f'SELECT * FROM "{element}"')
            names = [c[0] for c in cursor.description]
            for row in cursor:
                record = dict(zip(names, row, strict=True))
                record[element] = record.pop(key)
                if "timespan_begin" in record:
                    begin, end = record.pop("timespan_begin"), record.pop("timespan_end")
                    both = begin is not None and end is not None
                    record["timespan"] = Timespan(when(begin), when(end)) if both else None
                for name in ("region", "hash"):
                    if record.get(name) is not None:
                        record[name] = base64.b64decode(record[name])
                for flag in ("has_simulated", "can_see_sky"):
                    if record.get(flag) is not None:
                        record[flag] = bool(record[flag])
                out.setdefault(element, []).append(record)
    db.close()
    return out


def check_records(root: str) -> None:
    """Every dimension record of the fixture is in ``root`` unchanged (the source's universe)."""
    with Butler(root) as butler:
        assert (butler.dimensions.namespace, butler.dimensions.version) == ("daf_butler", 8)
        for element, expected in source_records().items():
            found = [r.to_dict() for r in butler.query_dimension_records(element)]
            assert sorted(found, key=repr) == sorted(expected, key=repr), element


@pytest.mark.parametrize("transfer", ["direct", "copy"])
def test_migrate_keeps_everything(source: Path, target: dict[str, Any], transfer: str) -> None:
    before = hashes(source)
    report = Butler.migrate_from(source, **target, transfer=transfer, skip_unknown_fields=True)
    assert isinstance(report, MigrationReport)
    assert (report.total, report.migrated, report.already) == (len(THEIRS), len(THEIRS), 0)
    assert report.ok and report.verify.checked == len(THEIRS)
    assert report.universe == ("daf_butler", 8)
    assert report.skipped_fields == {}  # the source's universe has a place for everything
    inside = source if transfer == "direct" else Path(target["root"])
    check(target["root"], inside=inside)
    check_records(target["root"])
    # Running it again changes nothing.
    again = Butler.migrate_from(source, **target, transfer=transfer, skip_unknown_fields=True)
    assert (again.migrated, again.already) == (0, len(THEIRS))
    check(target["root"], inside=inside)
    assert hashes(source) == before


def test_default_universe(source: Path, tmp_path: Path) -> None:
    """universe='default': databutler's universe, the records mapped onto it; a destination
    that exists keeps its universe whatever is asked."""
    root = str(tmp_path / "dest")
    report = Butler.migrate_from(source, root, universe="default")
    assert (report.migrated, report.skipped_fields, report.ok) == (len(THEIRS), {}, True)
    check(root, inside=source)
    again = Butler.migrate_from(source, root, universe="source")
    assert (again.migrated, again.already) == (0, len(THEIRS))
    with Butler(root) as butler:
        assert (butler.dimensions.namespace, butler.dimensions.version) == ("databutler", 2)
        (day,) = [
            r.to_dict()
            for r in butler.query_dimension_records("day_obs")
            if r.data_id["day_obs"] == 20240101
        ]
        assert day["timespan"] == Timespan(
            datetime.datetime(2024, 1, 1, 12, 0, tzinfo=UTC),
            datetime.datetime(2024, 1, 2, 12, 0, tzinfo=UTC),
        )
    with pytest.raises(InvalidArgumentError, match=r"'source'.*'default'"):
        Butler.migrate_from(source, tmp_path / "other", universe="mine")
    assert not (tmp_path / "other").exists()


def test_interrupted_migration_resumes(source: Path, target: dict[str, Any]) -> None:
    """Small batches; a missing artifact stops it after some committed; the rerun finishes."""
    artifact = source / "u/someone/processing/coadd_summary/0/1"
    moved = source.parent / "held-back"
    shutil.move(artifact, moved)
    before = hashes(source)
    progress: list[tuple[int, int]] = []
    with pytest.raises(RepositoryError, match=r"coadd_summary_0_1_dummy.*missing.*--skip-missing"):
        Butler.migrate_from(
            source,
            **target,
            batch_size=2,
            skip_unknown_fields=True,
            progress=lambda done, total: progress.append((done, total)),
        )
    assert hashes(source) == before
    assert progress[0] == (0, len(THEIRS)) and progress[-1][0] >= 10
    # What was committed is a valid repository of its own.
    with Butler(target["root"]) as butler:
        assert butler.verify().ok
        partial = {
            str(ref.id)
            for name in DATASET_TYPES
            for ref in butler.query_datasets(name, collections="*")
        }
    assert 10 <= len(partial) < len(THEIRS)
    shutil.move(moved, artifact)
    # Pages of one: TAGGED members and certifications span pages too.
    report = Butler.migrate_from(source, **target, batch_size=1, skip_unknown_fields=True)
    assert report.already == len(partial)
    assert report.migrated == len(THEIRS) - len(partial)
    check(target["root"], inside=source)


def test_skip_missing_leaves_out_what_is_gone(source: Path, tmp_path: Path) -> None:
    gone = source / "u/someone/processing/coadd_summary/0/1"
    shutil.rmtree(gone)
    root = str(tmp_path / "dest")
    report = Butler.migrate_from(source, root, skip_missing=True, skip_unknown_fields=True)
    (missing,) = report.missing
    assert missing.startswith(str(gone))
    missing_id = next(
        d["id"] for d in EXPECTED["datasets"] if d["data_id"] == {**COADD["data_id"], "patch": 1}
    )
    check(root, inside=source, leave_out=(missing_id,))


def test_datasets_without_a_file_are_registered_only(source: Path, tmp_path: Path) -> None:
    """A dataset daf_butler's datastore does not hold comes across in the registry alone."""
    counter = next(d["id"] for d in EXPECTED["datasets"] if d["dataset_type"] == "counter")
    _sql(
        source,
        f"DELETE FROM file_datastore_records WHERE dataset_id = '{counter.replace('-', '')}'",
    )
    _sql(source, f"DELETE FROM dataset_location WHERE dataset_id = '{counter.replace('-', '')}'")
    root = str(tmp_path / "dest")
    report = Butler.migrate_from(source, root, skip_unknown_fields=True)
    assert (report.migrated, report.registry_only, report.ok) == (len(THEIRS), 1, True)
    with Butler(root) as butler:
        (ref,) = butler.query_datasets("counter", collections="*")
        assert str(ref.id) == counter
        assert butler.stored_many([ref]) == {ref: False}


# -- refusals: a databutler error naming the problem; no destination made; the source unchanged


def edit_attribute(source: Path, name: str, value: str) -> None:
    with sqlite3.connect(source / "gen3.sqlite3") as db:
        db.execute("UPDATE butler_attributes SET value = ? WHERE name = ?", (value, name))
    db.close()


DATASETS = "lsst.daf.butler.registry.datasets.byDimensions._manager."
DATASETS += "ByDimensionsDatasetRecordStorageManagerUUID"


def refuse_version(source: Path) -> None:
    edit_attribute(source, f"version:{DATASETS}", "3.0.0")


def refuse_manager(source: Path) -> None:
    name = "config:registry.managers.collections"
    edit_attribute(
        source, name, "lsst.daf.butler.registry.collections.nameKey.NameKeyCollectionManager"
    )


def refuse_extra_manager(source: Path) -> None:
    with sqlite3.connect(source / "gen3.sqlite3") as db:
        db.execute(
            "INSERT INTO butler_attributes VALUES ('config:registry.managers.obscore', "
            "'lsst.daf.butler.registry.obscore._manager.ObsCoreLiveTableManager')"
        )
    db.close()


def edit_config(source: Path, old: str, new: str) -> None:
    config = source / "butler.yaml"
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, new))


_FIRST = "(SELECT min(rowid) FROM collection_chain)"
_LAST = "(SELECT max(id) FROM dataset)"

REFUSALS = {
    "version": (refuse_version, IncompatibleVersionError, r"schema version 3\.0\.0.*2\.0\.x"),
    "manager": (refuse_manager, IncompatibleVersionError, "NameKeyCollectionManager"),
    "extra manager": (refuse_extra_manager, IncompatibleVersionError, "'obscore'"),
    "unreachable postgresql": (
        lambda s: edit_config(
            s, "sqlite:///<butlerRoot>/gen3.sqlite3", f"postgresql://u@127.0.0.1:{_closed_port()}/x"
        ),
        RepositoryError,
        "cannot be reached",
    ),
    "chained datastore": (
        lambda s: edit_config(
            s,
            "cls: lsst.daf.butler.datastores.fileDatastore.FileDatastore",
            "cls: lsst.daf.butler.datastores.chainedDatastore.ChainedDatastore",
        ),
        RepositoryError,
        "ChainedDatastore.*only a file datastore",
    ),
    "formatter": (
        lambda s: _sql(
            s,
            "UPDATE file_datastore_records SET formatter = 'my.Formatter' WHERE path LIKE '%.json'",
        ),
        RepositoryError,
        "formatter 'my.Formatter'",
    ),
    "unknown fields": (
        lambda s: _sql(s, "INSERT INTO ssp_hypothesis_table (name) VALUES ('h1')"),
        RepositoryError,
        "ssp_hypothesis_table.*--skip-unknown-fields",
    ),
    "untranslatable universe": (
        lambda s: edit_attribute(
            s, "config:dimensions.json", _with_storage(s, "detector", "my.Storage")
        ),
        RepositoryError,
        r"universe of the daf_butler repository .*my\.Storage.*--universe default",
    ),
    "no repository": (
        lambda s: (s / "butler.yaml").unlink(),
        RepositoryError,
        "not a daf_butler repository",
    ),
    # A registry edited or copied without its foreign keys and column types (SQLite keeps
    # whatever is written): found before anything is written.
    "dangling chain child": (
        lambda s: _sql(s, f"UPDATE collection_chain SET child = 999 WHERE rowid = {_FIRST}"),
        RepositoryError,
        "collection_chain .* refers to collection id 999, .* the registry is damaged",
    ),
    "dangling dimension group": (
        lambda s: _sql(s, "UPDATE dataset_type SET dimensions_key = 999 WHERE id = 1"),
        RepositoryError,
        "Dataset type .* refers to dimension group 999, .* damaged",
    ),
    "attribute not text": (
        lambda s: _sql(s, "INSERT INTO butler_attributes (name, value) VALUES (x'00ff', 'v')"),
        RepositoryError,
        r"butler_attributes .* holds b'\\x00\\xff'.*text: the registry is damaged",
    ),
    "collection documentation not text": (
        lambda s: _sql(s, "UPDATE collection SET doc = x'00ff' WHERE collection_id = 1"),
        RepositoryError,
        "documentation b.* where both are text",
    ),
    "collection name databutler refuses": (
        lambda s: _sql(s, "UPDATE collection SET name = 'caf\u00e9' WHERE collection_id = 1"),
        RepositoryError,
        "Collection 'caf\u00e9' .* cannot be a databutler collection: Invalid collection name",
    ),
    "region not base64": (
        lambda s: _sql(s, "UPDATE tract SET region = 'x'"),
        RepositoryError,
        "tract record 0, region is not base64 .* damaged",
    ),
    "time not nanoseconds": (
        lambda s: _sql(s, "UPDATE day_obs SET timespan_end = 'x'"),
        RepositoryError,
        "time 'x' is not a whole number of nanoseconds",
    ),
}

#: Damage found while datasets are written: the destination keeps what was migrated.
DAMAGED_MIDWAY = {
    "dataset of no dataset type": (
        f"UPDATE dataset SET dataset_type_id = 999 WHERE id = {_LAST}",
        "Dataset .* refers to dataset type id 999",
    ),
    "dataset of no run": (
        f"UPDATE dataset SET run_id = 999 WHERE id = {_LAST};"
        + "".join(
            f"UPDATE dataset_tags_0000000{n} SET collection_id = 999 WHERE dataset_id = {_LAST};"
            for n in range(1, 5)
        ),
        "Dataset .* refers to run id 999",
    ),
    "dataset of no data ID": (
        f"UPDATE dataset SET run_id = 999 WHERE id = {_LAST}",
        "Dataset .* has no data ID in dataset_tags_0000000. for its run; the registry is damaged",
    ),
    "validity range ending before it begins": (
        "UPDATE dataset_calibs_00000001 SET timespan_begin = 4611686018427387904",
        "dataset_calibs_00000001 row .* is not after its begin",
    ),
}


def _with_storage(source: Path, element: str, cls: str) -> str:
    """The source's universe, with a record storage class of its own for ``element``."""
    with sqlite3.connect(source / "gen3.sqlite3") as db:
        (text,) = db.execute(
            "SELECT value FROM butler_attributes WHERE name = 'config:dimensions.json'"
        ).fetchone()
    db.close()
    config = json.loads(text)
    config["elements"][element]["storage"] = {"cls": cls}
    return json.dumps(config)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sql(source: Path, statement: str) -> None:
    with sqlite3.connect(source / "gen3.sqlite3") as db:
        db.execute(statement)
    db.close()


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals(source: Path, tmp_path: Path, case: str) -> None:
    damage, error, message = REFUSALS[case]
    damage(source)
    before = hashes(source)
    dest = tmp_path / "dest"
    universe = "source" if case == "untranslatable universe" else "default"
    with pytest.raises(error, match=message):
        Butler.migrate_from(
            source, dest, universe=universe, skip_unknown_fields=case != "unknown fields"
        )
    assert not dest.exists()
    assert hashes(source) == before


@pytest.mark.parametrize("case", sorted(DAMAGED_MIDWAY))
def test_damage_found_midway_is_named_and_the_destination_kept(
    source: Path, tmp_path: Path, case: str
) -> None:
    script, message = DAMAGED_MIDWAY[case]
    with sqlite3.connect(source / "gen3.sqlite3") as db:
        db.executescript(script)
    db.close()
    before = hashes(source)
    dest = tmp_path / "dest"
    with pytest.raises(RepositoryError, match=message) as raised:
        Butler.migrate_from(source, dest, universe="default", skip_unknown_fields=True)
    assert raised.value.__notes__ == [
        f"The migration stopped there: {dest} holds what was migrated until then, a valid "
        "repository. Run the same migration again once the cause is mended to continue, or "
        "delete it to start over."
    ]
    with Butler(dest) as butler:  # a valid repository, as the note says
        assert butler.verify().ok
    assert hashes(source) == before
    # The command line says both in its one line.
    result = CliRunner().invoke(main, ["migrate", str(source), str(dest), "-q"])
    assert result.exit_code == 1
    assert re.search(message, result.stderr) and "The migration stopped there" in result.stderr


def test_records_naming_records_the_source_lacks_are_refused_first(
    source: Path, tmp_path: Path
) -> None:
    """A record whose parent record is gone (a registry edited without its foreign keys):
    into a new destination, refused before anything is made."""
    _sql(source, "UPDATE physical_filter SET instrument = 'Nope'")
    dest = tmp_path / "dest"
    with pytest.raises(RepositoryError, match=r"instrument='Nope'.* not among the records"):
        Butler.migrate_from(source, dest, universe="default", skip_unknown_fields=True)
    assert not dest.exists()


def test_records_that_cannot_be_written_say_whose_they_are(source: Path, tmp_path: Path) -> None:
    """Into an existing destination (which might hold the parent record), the destination
    refuses it in an insert's words, and notes say whose records they were and what the
    destination holds."""
    _sql(source, "UPDATE physical_filter SET instrument = 'Nope'")
    dest = tmp_path / "dest"
    Butler.create(dest).close()
    with pytest.raises(DatabutlerError, match="no instrument record for instrument='Nope'") as e:
        Butler.migrate_from(source, dest, skip_unknown_fields=True)
    notes = e.value.__notes__
    assert len(notes) == 2 and "were being written: its registry may be damaged" in notes[0]
    assert notes[1].startswith(f"The migration stopped there: {dest} holds")
    with Butler(dest) as butler:
        assert not list(butler.query_dimension_records("physical_filter"))


def test_records_of_dimensions_databutler_lacks_are_counted(source: Path, tmp_path: Path) -> None:
    _sql(source, "INSERT INTO ssp_hypothesis_table (name) VALUES ('h1'), ('h2')")
    with pytest.raises(
        RepositoryError, match="2 record\\(s\\) of dimension 'ssp_hypothesis_table'"
    ):
        Butler.migrate_from(source, tmp_path / "dest", universe="default")
    report = Butler.migrate_from(
        source, tmp_path / "dest", universe="default", skip_unknown_fields=True
    )
    assert report.skipped_fields == {"ssp_hypothesis_table": 2} and report.ok
    # The source's universe has a place for them.
    report = Butler.migrate_from(source, tmp_path / "ours")
    assert report.skipped_fields == {} and report.ok


def test_the_source_is_no_destination(source: Path, tmp_path: Path) -> None:
    """Opening a daf_butler repository as a databutler one would write to its registry."""
    before = hashes(source)
    for dest in (source, source / "butler.yaml"):
        with pytest.raises(RepositoryError, match="is the source"):
            Butler.migrate_from(dest, dest, skip_unknown_fields=True)
    # Inside it: a folder of its datastore (a run's), or one to be made there.
    inside = [*[p for p in source.iterdir() if p.is_dir()][:1], source / "new"]
    for dest in inside:
        with pytest.raises(RepositoryError, match="is inside the source"):
            Butler.migrate_from(source, dest, skip_unknown_fields=True)
    other = Path(shutil.copytree(REPO, tmp_path / "other"))
    with pytest.raises(RepositoryError, match="is a daf_butler repository"):
        Butler.migrate_from(source, other, skip_unknown_fields=True)
    assert hashes(source) == before
    assert hashes(other) == hashes(REPO)


def test_a_databutler_repository_is_no_source(tmp_path: Path) -> None:
    ours = tmp_path / "ours"
    with Butler.create(ours, run="r"):
        pass
    before = sorted(p.name for p in ours.rglob("*"))
    with pytest.raises(RepositoryError, match="is a databutler repository, not a daf_butler one"):
        Butler.migrate_from(ours, tmp_path / "dest")
    assert sorted(p.name for p in ours.rglob("*")) == before  # not even a -wal file
    assert not (tmp_path / "dest").exists()


def test_missing_artifact_is_named(source: Path, tmp_path: Path) -> None:
    (source / COADD_PATH).unlink()
    with pytest.raises(RepositoryError, match=r"Artifact .*coadd_summary_0_0.* is missing"):
        Butler.migrate_from(source, tmp_path / "dest", skip_unknown_fields=True)


def test_a_damaged_dataset_id_is_named(source: Path, tmp_path: Path) -> None:
    # One id that is not 32 hexadecimal digits (daf_butler's CHAR(32) on SQLite).
    _sql(
        source,
        "UPDATE dataset SET id = 'zz' || substr(id, 3) WHERE id = (SELECT max(id) FROM dataset)",
    )
    with pytest.raises(RepositoryError, match=r"'zz[0-9a-f]{30}' is not a dataset id .*damaged"):
        Butler.migrate_from(source, tmp_path / "dest", skip_unknown_fields=True)


def test_a_new_destination_is_laid_out_for_bulk_loading(source: Path, tmp_path: Path) -> None:
    # A migration fills its new registry in large transactions: 4 KiB pages, not the
    # 1 KiB pages a repository made for one put at a time gets.
    Butler.migrate_from(source, tmp_path / "dest", skip_unknown_fields=True)
    Butler.create(tmp_path / "plain").close()
    sizes = {}
    for name in ("dest", "plain"):
        with sqlite3.connect(tmp_path / name / "registry.sqlite3") as db:
            (sizes[name],) = db.execute("PRAGMA page_size").fetchone()
        db.close()
    assert sizes == {"dest": 4096, "plain": 1024}


def test_cli(source: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    dest = tmp_path / "dest"
    _sql(source, "INSERT INTO ssp_hypothesis_table (name) VALUES ('h1')")
    refused = runner.invoke(main, ["migrate", str(source), str(dest), "--universe", "default"])
    assert refused.exit_code == 1, refused.output
    assert "Traceback" not in refused.output and "--skip-unknown-fields" in refused.output
    assert "skip_unknown_fields" not in refused.output
    assert not dest.exists()
    bad = runner.invoke(main, ["migrate", str(tmp_path / "nowhere"), str(dest)])
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    assert "not a daf_butler repository" in bad.output
    done = runner.invoke(
        main,
        ["migrate", str(source), str(dest), "--transfer", "copy", "--universe", "source", "-q"],
    )
    assert done.exit_code == 0, done.output
    assert f"Migrated {len(THEIRS)} dataset(s) of {len(THEIRS)}" in done.output
    assert "Verified: no problems" in done.output
    check(str(dest), inside=dest)


def test_cli_refusal_names_the_option(source: Path, tmp_path: Path) -> None:
    """An untranslatable source universe: the CLI names --universe, not universe='default'."""
    edit_attribute(source, "config:dimensions.json", _with_storage(source, "detector", "my.S"))
    refused = CliRunner().invoke(main, ["migrate", str(source), str(tmp_path / "dest")])
    assert refused.exit_code == 1, refused.output
    assert "Traceback" not in refused.output and "universe=" not in refused.output
    assert "Pass --universe default to migrate" in refused.output


# -- PostgreSQL sources -----------------------------------------------------------------------
#
# The fixture's SQLite registry is copied, every table with the same names and values, into a
# fresh schema of the test server, and its butler.yaml points there (registry.db and
# registry.namespace). Two layouts: "as-sqlite" (the SQLite file's column types: ids as 32 hex
# digits, timespans as two BIGINT columns) and "daf_butler" (as daf_butler lays out a PostgreSQL
# registry: ids as uuid, each timespan one int8range column "timespan", unbounded ends open).
# The migration must give what the SQLite source gives, in place and copying, and write
# nothing to the source's schema.

_NS_MAX = 4102444800000000000  # daf_butler's bound for "unbounded" on SQLite
_TYPES = {"INTEGER": "BIGINT", "SMALLINT": "BIGINT", "FLOAT": "DOUBLE PRECISION"}


def _pg_type(declared: str, native: bool) -> str:
    if declared == "CHAR(32)":
        return "UUID" if native else "CHAR(32)"
    if declared.startswith(("VARCHAR", "TEXT")):
        return "TEXT"
    return _TYPES.get(declared, declared)


def _range(begin: int | None, end: int | None) -> str | None:
    if begin is None and end is None:
        return None
    lower = "" if begin is None or begin <= 0 else str(begin)
    upper = "" if end is None or end >= _NS_MAX else str(end)
    return f"[{lower},{upper})"


def copy_registry(sqlite_file: Path, uri: str, schema: str, *, native: bool) -> list[str]:
    """Every table of ``sqlite_file`` into ``schema``; the tables' names."""
    source = sqlite3.connect(sqlite_file)
    engine = database_class_for_uri(uri).makeEngine(uri)
    names = [
        row[0] for row in source.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    ]
    with engine.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        for table in names:
            info = source.execute(f'PRAGMA table_info("{table}")').fetchall()
            columns = [(c[1], _pg_type(c[2], native)) for c in info]
            ranged = native and {"timespan_begin", "timespan_end"} <= {c for c, _ in columns}
            if ranged:
                columns = [(c, t) for c, t in columns if c != "timespan_end"]
                columns = [("timespan", "INT8RANGE") if c == "timespan_begin" else (c, t)
                           for c, t in columns]  # fmt: skip
            connection.exec_driver_sql(
                f'CREATE TABLE "{schema}"."{table}" ('
                + ", ".join(f'"{c}" {t}' for c, t in columns)
                + ")"
            )
            flags = {c[1] for c in info if c[2] == "BOOLEAN"}
            rows = []
            for values in source.execute(f'SELECT * FROM "{table}"'):
                row = dict(zip([c[1] for c in info], values, strict=True))
                for flag in flags:
                    row[flag] = None if row[flag] is None else bool(row[flag])
                if ranged:
                    row["timespan"] = _range(row.pop("timespan_begin"), row.pop("timespan_end"))
                rows.append(tuple(row[c] for c, _ in columns))
            if rows:
                placeholders = ", ".join(f"CAST(%s AS {t})" for _, t in columns)
                connection.exec_driver_sql(
                    f'INSERT INTO "{schema}"."{table}" VALUES ({placeholders})', rows
                )
    engine.dispose()
    source.close()
    return sorted(names)


def _drop(uri: str, schema: str) -> None:
    engine = database_class_for_uri(uri).makeEngine(uri)
    with engine.begin() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


def _tables(uri: str, schema: str) -> dict[str, int]:
    engine = database_class_for_uri(uri).makeEngine(uri)
    with engine.connect() as connection:
        names = [
            row[0]
            for row in connection.execute(
                sqlalchemy.text(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = :s"
                ),
                {"s": schema},
            )
        ]
        counts = {
            name: connection.exec_driver_sql(f'SELECT count(*) FROM "{schema}"."{name}"').scalar()
            for name in names
        }
    engine.dispose()
    return {name: int(n or 0) for name, n in counts.items()}


def _repository(root: Path, db: str, namespace: str | None) -> Path:
    """The fixture's files (not its SQLite registry) with a butler.yaml naming ``db``."""
    shutil.copytree(REPO, root, ignore=shutil.ignore_patterns("gen3.sqlite3"))
    config = root / "butler.yaml"
    text = config.read_text()
    old = "  db: sqlite:///<butlerRoot>/gen3.sqlite3\n"
    assert old in text
    extra = f"  namespace: {namespace}\n" if namespace is not None else ""
    config.write_text(text.replace(old, f"  db: {db}\n{extra}"))
    return root


@pytest.fixture(params=["as-sqlite", "daf_butler"])
def pg_source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    """A daf_butler repository with its registry in a fresh schema (dropped afterwards)."""
    uri = postgresql_uri()
    schema = f"test_{uuid.uuid4().hex[:16]}"
    try:
        names = copy_registry(
            REPO / "gen3.sqlite3", uri, schema, native=request.param == "daf_butler"
        )
        assert len(names) == 54
        yield _repository(tmp_path / "daf_butler", uri, schema), uri, schema
    finally:
        _drop(uri, schema)


@pytest.mark.parametrize("transfer", ["direct", "copy"])
def test_postgresql_source_keeps_everything(
    pg_source: tuple[Path, str, str], tmp_path: Path, transfer: str
) -> None:
    root, uri, schema = pg_source
    files, tables = hashes(root), _tables(uri, schema)
    dest = tmp_path / "dest"
    report = Butler.migrate_from(root, dest, transfer=transfer, skip_unknown_fields=True)
    assert (report.total, report.migrated, report.already) == (len(THEIRS), len(THEIRS), 0)
    assert report.ok and report.verify.checked == len(THEIRS)
    assert report.universe == ("daf_butler", 8)
    check(str(dest), inside=root if transfer == "direct" else dest)
    check_records(str(dest))  # timespans from int8range too
    again = Butler.migrate_from(root, dest, transfer=transfer, skip_unknown_fields=True)
    assert (again.migrated, again.already) == (0, len(THEIRS))
    check(str(dest), inside=root if transfer == "direct" else dest)
    # The source is only read: its files and its schema are as they were.
    assert hashes(root) == files
    assert _tables(uri, schema) == tables


def test_postgresql_source_in_pages_of_one(
    pg_source: tuple[Path, str, str], tmp_path: Path
) -> None:
    """Keyset pages by dataset id (PostgreSQL has no rowid): TAGGED members and
    certifications across pages of one, and a second run that finds everything done."""
    root, _, _ = pg_source
    dest = tmp_path / "dest"
    Butler.migrate_from(root, dest, batch_size=1, skip_unknown_fields=True)
    check(str(dest), inside=root)


def test_an_unreachable_server_is_named(tmp_path: Path) -> None:
    port = _closed_port()
    root = _repository(tmp_path / "daf_butler", f"postgresql://postgres@127.0.0.1:{port}/x", None)
    with pytest.raises(RepositoryError, match=rf"127\.0\.0\.1:{port}/x.*cannot be reached"):
        Butler.migrate_from(root, tmp_path / "dest", skip_unknown_fields=True)
    assert not (tmp_path / "dest").exists()


def test_a_missing_schema_is_named(tmp_path: Path) -> None:
    uri = postgresql_uri()
    root = _repository(tmp_path / "daf_butler", uri, "no_such_schema_here")
    with pytest.raises(RepositoryError, match=r"'no_such_schema_here'.*no such schema"):
        Butler.migrate_from(root, tmp_path / "dest", skip_unknown_fields=True)
    assert not (tmp_path / "dest").exists()


def test_a_bad_namespace_is_named(tmp_path: Path) -> None:
    root = _repository(tmp_path / "daf_butler", postgresql_uri(), "bad name; drop")
    with pytest.raises(RepositoryError, match="namespace"):
        Butler.migrate_from(root, tmp_path / "dest", skip_unknown_fields=True)
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize("page", [10_000, 3])
def test_verify_finds_a_changed_direct_file(
    source: Path, target: dict[str, Any], page: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The final check really looks at each file left in place: one gone, one changed, one
    gone from a dataset the datastore no longer holds (not reported), and a second record of
    one dataset (another component) naming a file that is not there, in pages of ``page``
    (3: that dataset's two records on both sides of a page's end)."""
    from databutler.datastores import _file_verify

    monkeypatch.setattr(_file_verify, "_DIRECT_PAGE", page)
    report = Butler.migrate_from(source, **target, skip_unknown_fields=True)
    assert report.ok and report.verify.checked == len(THEIRS)
    with Butler(target["root"], writeable=True) as butler:
        refs = {
            ref.id: ref
            for name in DATASET_TYPES
            for ref in butler.query_datasets(name, collections="*")
        }
        uris = butler.get_uris(refs.values())
        gone, changed, forgotten, twice = sorted(refs)[:4]
        Path(uris[gone].removeprefix("file://")).unlink()
        with open(uris[changed].removeprefix("file://"), "ab") as file:
            file.write(b"\n# changed after the migration\n")
        butler.datastore.bridge.moveToTrash([refs[forgotten]], None)
        Path(uris[forgotten].removeprefix("file://")).unlink()
        records = file_datastore(butler).records
        (row,) = records.fetch(dataset_id=twice)
        records.insert({**row, "component": "extra", "path": str(source / "no-such-file")})
        found = butler.verify()
    assert sorted((p.kind, p.dataset_id) for p in found.problems) == [
        ("missing_artifact", gone),
        ("missing_artifact", twice),
        ("size_mismatch", changed),
        ("stale_trash", forgotten),
    ]
    assert found.checked == len(THEIRS)  # one not held, one dataset twice


@pytest.mark.parametrize(
    "where", ["", " WHERE rowid = (SELECT min(rowid) FROM dataset_tags_00000001)"]
)
def test_a_bad_data_id_value_is_refused(source: Path, tmp_path: Path, where: str) -> None:
    """Each distinct value is checked: a detector that is no integer, in every row of a page
    (checked a column at a time) or in one (the column mixes types: a row at a time)."""
    from databutler import DataIdError

    _sql(source, f"UPDATE dataset_tags_00000001 SET detector = 'x' || detector{where}")
    root = tmp_path / "dest"
    with pytest.raises(
        DataIdError,
        match=r"Data ID value 'x[0-9]+' \(str\) for 'detector' has the wrong type; expected int",
    ):
        Butler.migrate_from(source, root, skip_unknown_fields=True)
    with Butler(str(root)) as butler:
        assert [
            ref for name in DATASET_TYPES for ref in butler.query_datasets(name, collections="*")
        ] == []
