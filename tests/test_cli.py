"""The ``databutler`` command, driven through click's runner on real repositories.

Every command runs against a repository made by `RepositoryFactory`; outputs
are read back as JSON or CSV and the repository's state is checked through
the Python API. The shared ``repositories`` fixture (conftest) gives the
configurations run; the ``repo`` fixture (the repository's root) is all a test needs to know.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import subprocess
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from click.testing import CliRunner, Result

from databutler import Butler, CollectionType
from databutler.butler import DatasetExistence
from databutler.cli import main, render_reference
from databutler.testing.butler import RepositoryFactory, artifact_of, file_datastore, populate

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "cli.md"

#: Configurations the CLI is tested on; add "sqlite-chained" or "postgresql-s3"
#: (from databutler.testing.butler.CONFIGURATIONS) to run every test there too.
COMMANDS = {
    "create", "config-dump", "register-dataset-type", "remove-dataset-type",
    "insert-dimension-records", "ingest-files", "query-collections", "query-dataset-types",
    "query-datasets", "query-data-ids", "query-dimension-records", "where", "prune-datasets",
    "remove-runs", "empty-trash", "collection-chain", "associate", "certify-calibrations",
    "retrieve-artifacts", "transfer-datasets", "export", "import", "verify", "demo", "migrate",
}  # fmt: skip


# -- helpers ---------------------------------------------------------------------------


def run(*args: Any, code: int = 0, input: str | None = None) -> Result:
    """Run ``databutler ARGS``; check the exit code and that no traceback escaped."""
    result = CliRunner().invoke(main, [str(a) for a in args], input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(result.exception))
        pytest.fail(f"databutler {' '.join(map(str, args))} raised:\n{trace}")
    assert result.exit_code == code, (
        f"databutler {' '.join(map(str, args))} exited {result.exit_code}, not {code}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result


def run_json(*args: Any) -> Any:
    return json.loads(run(*args, "--format", "json").stdout)


def run_csv(*args: Any) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(run(*args, "--format", "csv").stdout)))


def fails(*args: Any, match: str, code: int = 1, input: str | None = None) -> Result:
    """Run a command that must fail with ``code`` and ``Error: ...match...`` on stderr."""
    result = run(*args, code=code, input=input)
    assert match in result.stderr, result.stderr
    if code == 1:
        assert result.stderr.startswith("Error: "), result.stderr
        assert "Traceback" not in result.stderr
    return result


def ids_of(rows: list[dict[str, Any]]) -> set[str]:
    return {row["id"] for row in rows}


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture
def repo(repositories: RepositoryFactory) -> str:
    """The root of a repository with instrument HSC, detectors 0-4 and dataset type thing."""
    butler = repositories.create("repo")
    populate(butler, detectors=5)
    return butler.root


@pytest.fixture
def stored(repo: str) -> dict[int, str]:
    """Three ``thing`` datasets in run r1 (detectors 1-3): dataset id by detector."""
    with Butler(repo, run="r1", writeable=True) as butler:
        return {
            d: str(butler.put({"detector": d}, "thing", instrument="HSC", detector=d).id)
            for d in (1, 2, 3)
        }


def open_repo(repo: str, **kwargs: Any) -> Butler:
    return Butler(repo, collections="*", **kwargs)


def stored_ids(repo: str, collections: str = "*") -> set[str]:
    with Butler(repo) as butler:
        return {str(r.id) for r in butler.query_datasets("thing", collections=collections)}


# -- help, documentation, imports -------------------------------------------------------


def test_every_command_has_help_and_is_documented() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    assert set(main.commands) == COMMANDS
    for name, command in main.commands.items():
        assert command.get_short_help_str().strip(), f"{name} has no short help"
        assert command.help and command.help.strip(), f"{name} has no help"
        assert f"\n## {name}\n" in docs, f"{name} is not in docs/cli.md"
        assert f"databutler {name}" in run(name, "--help").stdout


def test_exit_codes_are_documented() -> None:
    text = run("--help").stdout
    for line in (
        "0  success",
        "1  a databutler error",
        "2  a usage error",
        "3  verify",
        "4  abort",
    ):
        assert line in text
        assert line in DOCS.read_text(encoding="utf-8")


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "cli_reference", ROOT / "scripts/cli_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_is_up_to_date(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert DOCS.read_text(encoding="utf-8") == render_reference(), (
        "docs/cli.md is out of date: run python scripts/cli_reference.py"
    )
    script = _script()
    assert script.main(["--check"]) == 0
    stale = tmp_path / "cli.md"
    stale.write_text("# old\n")
    assert script.main(["--check", "--output", str(stale)]) == 1
    assert "out of date" in capsys.readouterr().err
    assert script.main(["--output", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == render_reference()


def test_importing_databutler_loads_no_cli() -> None:
    code = (
        "import sys, databutler, databutler.butler; "
        "assert not {'databutler.cli', 'click', 'rich'} & set(sys.modules), sorted(sys.modules); "
        "import databutler.cli; "
        "assert 'rich' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_usage_errors_exit_2(repo: str) -> None:
    run("no-such-command", code=2)
    run("query-datasets", code=2)  # REPO missing
    run("query-datasets", repo, "--format", "xml", code=2)
    run("collection-chain", repo, "c", "r1", "--mode", "sideways", code=2)
    run("ingest-files", repo, "thing", "r1", "missing.csv", code=2)


# -- repositories ----------------------------------------------------------------------


def test_create_and_config_dump(tmp_path: Path) -> None:
    root = tmp_path / "new"
    assert "Created a repository" in run("create", root).stdout
    with Butler(root) as butler:
        assert butler.query_collections() == []
        expected = butler.config.to_yaml()
    assert run("config-dump", root).stdout == expected
    fails("create", root, match="holds a repository already")
    run("create", root, "--overwrite")


def test_create_with_a_separate_datastore_directory(tmp_path: Path) -> None:
    run("create", tmp_path / "r", "--datastore", tmp_path / "artifacts")
    assert str(tmp_path / "artifacts") in run("config-dump", tmp_path / "r").stdout


def test_missing_repository_is_an_error(tmp_path: Path) -> None:
    for command in ("query-datasets", "query-collections", "config-dump", "verify"):
        fails(command, tmp_path / "nowhere", match="No repository at")


def test_demo(tmp_path: Path) -> None:
    out = run("demo", tmp_path / "demo").stdout
    assert "all good" in out
    with Butler(tmp_path / "demo") as butler:
        assert butler.verify().ok
    fails("demo", tmp_path / "demo", match="holds a repository already")


# -- dataset types and dimension records -------------------------------------------------


def test_register_and_query_dataset_types(repo: str) -> None:
    out = run("register-dataset-type", repo, "calexp", "StructuredDataDict", "detector").stdout
    assert "Registered" in out
    assert (
        "already"
        in run("register-dataset-type", repo, "calexp", "StructuredDataDict", "detector").stdout
    )
    run("register-dataset-type", repo, "bias", "StructuredDataDict", "detector", "--is-calibration")
    rows = run_json("query-dataset-types", repo)
    assert {r["name"]: r for r in rows}["calexp"] == {
        "name": "calexp",
        "dimensions": ["instrument", "detector"],
        "storage_class": "StructuredDataDict",
        "is_calibration": False,
    }
    assert [r["name"] for r in run_json("query-dataset-types", repo, "b*")] == ["bias"]
    assert run_csv("query-dataset-types", repo, "bias") == [
        {
            "name": "bias",
            "dimensions": "instrument detector",
            "storage_class": "StructuredDataDict",
            "is_calibration": "true",
        }
    ]
    fails(
        "register-dataset-type", repo, "calexp", "StructuredDataDict", "instrument", match="calexp"
    )
    fails(
        "register-dataset-type",
        repo,
        "bad name",
        "StructuredDataDict",
        match="Invalid dataset type",
    )


def test_remove_dataset_type(repo: str) -> None:
    run("register-dataset-type", repo, "spare", "StructuredDataDict", "detector")
    assert "Would remove" in run("remove-dataset-type", repo, "spare", "--dry-run").stdout
    run("remove-dataset-type", repo, "spare", input="n\n", code=4)
    with Butler(repo) as butler:
        assert [t.name for t in butler.registry.queryDatasetTypes("spare")] == ["spare"]
    run("remove-dataset-type", repo, "spare", input="y\n")
    with Butler(repo) as butler:
        assert butler.registry.queryDatasetTypes("spare") == []
    fails("remove-dataset-type", repo, "spare", "--yes", match="spare")


def test_insert_dimension_records_from_yaml(repo: str, tmp_path: Path) -> None:
    path = tmp_path / "records.yaml"
    path.write_text(
        "instrument:\n"
        "  - {instrument: LSST}\n"
        "detector:\n"
        "  - {instrument: LSST, detector: 7, full_name: R22_S11}\n"
        "  - {instrument: LSST, id: 8}\n"
    )
    out = run("insert-dimension-records", repo, path).stdout
    assert "Inserted 1 instrument" in out and "Inserted 2 detector" in out
    rows = run_json("query-dimension-records", repo, "detector", "--where", "instrument = 'LSST'")
    assert [(r["detector"], r["full_name"]) for r in rows] == [(7, "R22_S11"), (8, None)]
    fails("insert-dimension-records", repo, path, match="LSST")  # exists already
    assert (
        "Inserted 0 instrument"
        in run("insert-dimension-records", repo, path, "--skip-existing").stdout
    )

    listed = tmp_path / "list.yaml"
    listed.write_text("- {instrument: HSC, detector: 20}\n")
    fails("insert-dimension-records", repo, listed, match="--element")
    run("insert-dimension-records", repo, listed, "-e", "detector")
    assert run_json("query-data-ids", repo, "detector", "--where", "detector = 20") == [
        {"instrument": "HSC", "detector": 20}
    ]


def test_insert_dimension_records_from_csv_are_typed(repo: str, tmp_path: Path) -> None:
    path = tmp_path / "detectors.csv"
    path.write_text("instrument,detector,full_name,purpose\nHSC,10,ten,SCIENCE\nHSC,11,,\n")
    run("insert-dimension-records", repo, path, "--element", "detector")
    with Butler(repo) as butler:
        records = {
            r.values["detector"]: r.values
            for r in butler.query_dimension_records("detector", where="detector >= 10")
        }
    assert records[10]["full_name"] == "ten" and records[10]["purpose"] == "SCIENCE"
    assert records[11]["full_name"] is None
    assert isinstance(next(iter(records)), int)

    bad = tmp_path / "bad.csv"
    bad.write_text("instrument,detector\nHSC,twelve\n")
    fails(
        "insert-dimension-records", repo, bad, "-e", "detector", match="'twelve' is not an integer"
    )
    fails("insert-dimension-records", repo, path, "-e", "nonsense", match="nonsense")
    unknown = tmp_path / "records.txt"
    unknown.write_text("x")
    fails("insert-dimension-records", repo, unknown, "-e", "detector", match=".yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("instrument: [\n")
    fails("insert-dimension-records", repo, broken, match="not valid YAML")


# -- ingest ----------------------------------------------------------------------------


def test_ingest_files_from_a_csv_table(repo: str, tmp_path: Path) -> None:
    data = tmp_path / "incoming"
    data.mkdir()
    for d in (1, 2, 3):
        (data / f"t{d}.json").write_text(json.dumps({"detector": d}))
    table = data / "files.csv"
    table.write_text("file,detector\nt1.json,1\nt2.json,2\n" + f"{data / 't3.json'},3\n")
    out = run("ingest-files", repo, "thing", "raw", table, "--data-id", "instrument=HSC").stdout
    assert "Ingested 3 'thing' dataset(s) into 'raw'" in out
    with Butler(repo, collections="raw") as butler:
        refs = list(butler.query_datasets("thing"))
        assert sorted(r.dataId["detector"] for r in refs) == [1, 2, 3]
        assert butler.get("thing", instrument="HSC", detector=2) == {"detector": 2}
    assert (data / "t1.json").exists()  # auto copies into the repository


def test_ingest_files_registers_each_row_with_a_new_id(repo: str, tmp_path: Path) -> None:
    """Rows are unresolved refs: ingest gives each a new id, in RUN, with the registered type."""
    for d in (1, 2):
        (tmp_path / f"t{d}.json").write_text(json.dumps({"detector": d}))
    table = tmp_path / "files.csv"
    table.write_text("file,detector\nt1.json,1\nt2.json,2\n")
    args = ("ingest-files", repo, "thing", "fresh", table, "--data-id", "instrument=HSC")
    run(*args)
    rows = run_json("query-datasets", repo, "thing", "--collections", "fresh")
    assert sorted((r["type"], r["run"], r["detector"]) for r in rows) == [
        ("thing", "fresh", 1),
        ("thing", "fresh", 2),
    ]
    assert len(ids_of(rows)) == 2
    with Butler(repo) as butler:
        thing = butler.registry.getDatasetType("thing")
        refs = list(butler.query_datasets("thing", collections="fresh"))
        assert all(r.datasetType == thing and str(r.id) in ids_of(rows) for r in refs)
    # The same rows again are the same datasets: refused, or skipped with --skip-existing.
    fails(*args, match="exist")
    assert "Ingested 0 'thing' dataset(s)" in run(*args, "--skip-existing").stdout
    assert ids_of(run_json("query-datasets", repo, "thing", "--collections", "fresh")) == ids_of(
        rows
    )


def test_ingest_files_from_a_tsv_table_with_a_prefix(repo: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.json").write_text(json.dumps({"a": 1}))
    table = tmp_path / "files.tsv"
    table.write_text("path\tinstrument\tdetector\na.json\tHSC\t4\n")
    local = not repo.startswith("s3://")
    if not local:  # moving into S3 is refused, leaving the file alone
        fails(
            "ingest-files",
            repo,
            "thing",
            "raw",
            table,
            "--prefix",
            data,
            "-t",
            "move",
            match="needs a local root",
        )
        assert (data / "a.json").exists()
    mode = "move" if local else "copy"
    run("ingest-files", repo, "thing", "raw", table, "--prefix", data, "-t", mode)
    assert (data / "a.json").exists() != local
    with Butler(repo, collections="raw") as butler:
        assert butler.get("thing", instrument="HSC", detector=4) == {"a": 1}


def test_ingest_files_errors(repo: str, tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    table = tmp_path / "files.csv"
    table.write_text("path,detector\na.json,1\n")
    fails(
        "ingest-files",
        repo,
        "nothing",
        "raw",
        table,
        "--data-id",
        "instrument=HSC",
        match="nothing",
    )
    fails(
        "ingest-files",
        repo,
        "thing",
        "raw",
        table,
        "--data-id",
        "instrument=HSC",
        "--data-id",
        "detector=2",
        match="'detector' is given by both",
    )
    fails(
        "ingest-files",
        repo,
        "thing",
        "raw",
        table,
        "--data-id",
        "instrument=HSC",
        "-t",
        "teleport",
        match="teleport",
    )
    run("ingest-files", repo, "thing", "raw", table, "--data-id", "instrument", code=2)
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("path,detector\na.json\n")
    fails("ingest-files", repo, "thing", "raw", ragged, match="row 2")
    assert stored_ids(repo) == set()


# -- queries ---------------------------------------------------------------------------


def test_query_datasets_in_every_format(repo: str, stored: dict[int, str]) -> None:
    rows = run_json("query-datasets", repo)
    assert {(r["type"], r["run"], r["instrument"], r["detector"], r["id"]) for r in rows} == {
        ("thing", "r1", "HSC", d, i) for d, i in stored.items()
    }
    table = run_csv("query-datasets", repo, "thing", "-c", "r1")
    assert list(table[0]) == ["type", "run", "id", "instrument", "detector"]
    assert {(r["detector"], r["id"]) for r in table} == {(str(d), i) for d, i in stored.items()}
    text = run("query-datasets", repo, "thing").stdout
    assert all(i in text for i in stored.values()) and "detector" in text

    where = run_json("query-datasets", repo, "thing", "--where", "detector IN (1, 3)")
    assert ids_of(where) == {stored[1], stored[3]}
    assert ids_of(run_json("query-datasets", repo, "th*")) == set(stored.values())
    assert run_json("query-datasets", repo, "thing", "-c", "nothing*") == []
    assert run("query-datasets", repo, "thing", "-c", "nothing*").stdout.strip() == "No datasets."


def test_query_datasets_datastore_filters_and_uris(repo: str, stored: dict[int, str]) -> None:
    with Butler(repo) as butler:
        datastore = file_datastore(butler).name  # a chain's children hold, not the chain
    inside = run_json("query-datasets", repo, "thing", "--in-datastore", datastore, "--show-uri")
    assert ids_of(inside) == set(stored.values())
    assert all(row["uri"] for row in inside)
    assert run_json("query-datasets", repo, "thing", "--not-in-datastore", datastore) == []


def test_query_errors_are_clear(repo: str, stored: dict[int, str]) -> None:
    fails("query-datasets", repo, "nothing", match="No dataset type named 'nothing'")
    fails("query-datasets", repo, "thing", "--where", "detector >", match="expected a value")
    fails("query-datasets", repo, "thing", "-c", "no_such_run", match="no_such_run")
    fails("query-dimension-records", repo, "nonsense", match="nonsense")
    fails("query-data-ids", repo, "detector", "--where", "detector ==", match="detector")


def test_query_collections(repo: str, stored: dict[int, str]) -> None:
    run("associate", repo, "tagged", "thing", "--where", "detector = 1")
    run("collection-chain", repo, "chain", "r1", "tagged")
    rows = {r["name"]: r for r in run_json("query-collections", repo)}
    assert rows["r1"]["type"] == "RUN"
    assert rows["tagged"]["type"] == "TAGGED"
    assert rows["chain"] == {
        "name": "chain",
        "type": "CHAINED",
        "children": ["r1", "tagged"],
        "doc": None,
    }
    assert [r["name"] for r in run_json("query-collections", repo, "--type", "run")] == ["r1"]
    assert [r["name"] for r in run_json("query-collections", repo, "ch*")] == ["chain"]
    assert run_csv("query-collections", repo, "chain")[0]["children"] == "r1 tagged"


def test_query_data_ids_and_dimension_records(repo: str) -> None:
    rows = run_json("query-data-ids", repo, "detector", "--where", "detector > 2")
    assert rows == [{"instrument": "HSC", "detector": d} for d in (3, 4)]
    csv_rows = run_csv("query-data-ids", repo, "detector")
    assert [r["detector"] for r in csv_rows] == ["0", "1", "2", "3", "4"]
    records = run_json("query-dimension-records", repo, "instrument")
    assert [r["instrument"] for r in records] == ["HSC"]
    assert run("query-dimension-records", repo, "detector", "--where", "detector > 99").stdout == (
        "No records.\n"
    )


def test_where(repo: str, stored: dict[int, str]) -> None:
    with Butler(repo) as butler:
        refs = list(butler.query_datasets("thing", collections="r1"))
        expected = {str(k): sorted(v) for k, v in butler.where(refs).items()}
    rows = run_json("where", repo, "thing", "-c", "r1")
    assert {r["id"]: r["datastores"] for r in rows} == expected
    assert all(r["datastores"] for r in rows)
    assert run_csv("where", repo, "--where", "detector = 2")[0]["id"] == stored[2]


# -- collections -------------------------------------------------------------------------


def test_collection_chain_modes(repo: str, stored: dict[int, str]) -> None:
    with Butler(repo, writeable=True) as butler:
        for name in ("a", "b", "c"):
            butler.registry.registerRun(name)
    assert run("collection-chain", repo, "chain", "a", "b").stdout.strip() == "chain: a, b"
    run("collection-chain", repo, "chain", "c", "--mode", "prepend")
    run("collection-chain", repo, "chain", "r1", "--mode", "extend")
    run("collection-chain", repo, "chain", "b", "--mode", "remove")
    run("collection-chain", repo, "chain", "--mode", "pop", "0")
    with Butler(repo) as butler:
        assert butler.registry.getCollectionChain("chain") == ("a", "r1")
    fails("collection-chain", repo, "chain", "zzz", "--mode", "remove", match="zzz")
    fails("collection-chain", repo, "r1", "a", match="r1")  # a RUN, not a chain
    assert stored_ids(repo, "chain") == set(stored.values())


def test_associate(repo: str, stored: dict[int, str]) -> None:
    out = run("associate", repo, "best", "thing", "-c", "r1", "--where", "detector > 1").stdout
    assert "Tagged 2 dataset(s) into 'best'" in out
    with Butler(repo) as butler:
        assert butler.registry.getCollectionType("best") is CollectionType.TAGGED
    assert stored_ids(repo, "best") == {stored[2], stored[3]}
    fails("associate", repo, "r1", "thing", match="r1")  # r1 is a RUN


def test_certify_calibrations(repo: str) -> None:
    import datetime

    run("register-dataset-type", repo, "bias", "StructuredDataDict", "detector", "--is-calibration")
    with Butler(repo, run="calib/run", writeable=True) as butler:
        ref = butler.put({"bias": 1}, "bias", instrument="HSC", detector=1)
    out = run(
        "certify-calibrations",
        repo,
        "calib",
        "bias",
        "-c",
        "calib/run",
        "--begin",
        "2024-01-01",
        "--end",
        "2024-02-01T00:00:00+00:00",
    ).stdout
    assert "Certified 1 dataset(s) into 'calib'" in out
    with Butler(repo) as butler:
        assert butler.registry.getCollectionType("calib") is CollectionType.CALIBRATION
        inside = datetime.datetime(2024, 1, 15, tzinfo=datetime.UTC)
        outside = datetime.datetime(2024, 3, 1, tzinfo=datetime.UTC)
        found = butler.registry.findDataset(
            "bias", {"instrument": "HSC", "detector": 1}, collections="calib", timespan=inside
        )
        assert found is not None and found.id == ref.id
        assert (
            butler.registry.findDataset(
                "bias", {"instrument": "HSC", "detector": 1}, collections="calib", timespan=outside
            )
            is None
        )
    run("certify-calibrations", repo, "calib", "bias", "--begin", "yesterday", code=2)
    # Again over an overlapping range: refused, and no Python method named as the way out.
    overlap = fails(
        "certify-calibrations", repo, "calib", "bias", "-c", "calib/run", "--begin", "2024-01-20",
        match="already has a dataset valid",
    )  # fmt: skip
    assert "SqlRegistry" not in overlap.stderr and "in Python: " in overlap.stderr
    with Butler(repo, run="r1", writeable=True) as butler:
        butler.put({"x": 1}, "thing", instrument="HSC", detector=1)
    fails("certify-calibrations", repo, "calib", "thing", match="thing")  # not a calibration


# -- deleting ----------------------------------------------------------------------------


def test_prune_datasets_dry_run_and_declined_change_nothing(
    repo: str, stored: dict[int, str]
) -> None:
    out = run("prune-datasets", repo, "thing", "--purge", "--dry-run").stdout
    assert "3 dataset(s) selected; would purge them" in out
    assert "3  thing in r1" in out
    result = run("prune-datasets", repo, "thing", "--purge", input="n\n", code=4)
    assert "Aborted; nothing was changed." in result.stderr
    run("prune-datasets", repo, "thing", "--purge", code=4)  # no answer at all
    assert stored_ids(repo) == set(stored.values())
    with open_repo(repo) as butler:
        refs = list(butler.query_datasets("thing"))
        assert all(f == DatasetExistence.VERIFIED for f in butler.exists_many(refs).values())


def test_prune_datasets_unstore_then_purge(repo: str, stored: dict[int, str]) -> None:
    out = run("prune-datasets", repo, "thing", "--unstore", "--where", "detector = 1", "-y").stdout
    assert "unstored 1" in out
    with open_repo(repo) as butler:
        flags = {
            str(r.id): f for r, f in butler.exists_many(butler.query_datasets("thing")).items()
        }
    assert flags[stored[1]] == DatasetExistence.RECORDED
    assert flags[stored[2]] == DatasetExistence.VERIFIED
    out = run("prune-datasets", repo, "thing", "--purge", input="y\n").stdout
    assert "purged 3" in out
    assert stored_ids(repo) == set()


def test_prune_datasets_untag(repo: str, stored: dict[int, str]) -> None:
    run("associate", repo, "tag", "thing")
    run(
        "prune-datasets",
        repo,
        "thing",
        "-c",
        "tag",
        "--tag",
        "tag",
        "--where",
        "detector < 3",
        "-y",
    )
    assert stored_ids(repo, "tag") == {stored[3]}
    assert stored_ids(repo, "r1") == set(stored.values())


def test_prune_datasets_illegal_options(repo: str, stored: dict[int, str]) -> None:
    run("associate", repo, "tag", "thing")
    fails("prune-datasets", repo, "thing", "--purge", "--tag", "tag", "--dry-run", match="purge")
    fails("prune-datasets", repo, "thing", "-y", match="Nothing to do")
    fails("prune-datasets", repo, "thing", "--tag", "r1", "-y", match="not TAGGED")
    run("prune-datasets", repo, code=2)  # DATASET_TYPE is required
    assert stored_ids(repo) == set(stored.values())


def test_remove_runs(repo: str, stored: dict[int, str]) -> None:
    with Butler(repo, run="r2", writeable=True) as butler:
        butler.put({"x": 1}, "thing", instrument="HSC", detector=4)
    run("collection-chain", repo, "chain", "r1", "r2")
    out = run("remove-runs", repo, "r*", "--dry-run").stdout
    assert "Would remove 2 run(s) and 4 dataset(s)" in out
    run("remove-runs", repo, "r2", input="n\n", code=4)
    fails("remove-runs", repo, "r2", "-y", match="--unlink")
    assert (
        "Removed 1 run(s) and 1 dataset(s)"
        in run("remove-runs", repo, "r2", "--unlink", "-y").stdout
    )
    with Butler(repo) as butler:
        assert butler.query_collections() == ["chain", "r1"]
        assert butler.registry.getCollectionChain("chain") == ("r1",)
    fails("remove-runs", repo, "nope", "-y", match="nope")
    fails("remove-runs", repo, "chain", "-y", match="not a RUN")
    assert stored_ids(repo) == set(stored.values())


def test_empty_trash(repo: str, stored: dict[int, str]) -> None:
    with open_repo(repo, writeable=True) as butler:
        butler.datastore.trash(list(butler.query_datasets("thing", where="detector = 1")))
    assert "The trash holds 1 dataset(s)" in run("empty-trash", repo, "--dry-run").stdout
    run("empty-trash", repo, input="n\n", code=4)
    with Butler(repo) as butler:
        assert butler.empty_trash(dry_run=True) == 1
    assert "Emptied 1 dataset(s)" in run("empty-trash", repo, "--yes").stdout
    assert "The trash holds 0 dataset(s)" in run("empty-trash", repo).stdout


# -- moving data -----------------------------------------------------------------------


def test_retrieve_artifacts(repo: str, stored: dict[int, str], tmp_path: Path) -> None:
    target = tmp_path / "out"
    rows = run_json("retrieve-artifacts", repo, target, "thing", "--where", "detector < 3")
    paths = [Path(r["path"]) for r in rows]
    assert len(paths) == 2 and all(p.is_file() and target in p.parents for p in paths)
    assert sorted(json.loads(p.read_text())["detector"] for p in paths) == [1, 2]
    fails("retrieve-artifacts", repo, target, "thing", "--where", "detector < 3", match="exist")
    run("retrieve-artifacts", repo, target, "thing", "--overwrite", "--no-preserve-path")


def test_transfer_datasets(
    repo: str, stored: dict[int, str], repositories: RepositoryFactory
) -> None:
    dest = repositories.create("dest").root
    out = run(
        "transfer-datasets", repo, dest, "thing", "--where", "detector > 1", "--dry-run"
    ).stdout
    assert "Would transfer 2 of 2" in out
    with Butler(dest) as butler:
        assert butler.registry.queryDatasetTypes() == []
    out = run("transfer-datasets", repo, dest, "thing", "--where", "detector > 1").stdout
    assert "Transferred 2 of 2" in out
    assert stored_ids(dest) == {stored[2], stored[3]}
    with Butler(dest, collections="r1") as butler:
        assert butler.get("thing", instrument="HSC", detector=3) == {"detector": 3}
    assert "Transferred 1 of 3" in run("transfer-datasets", repo, dest, "-t", "copy").stdout
    fails("transfer-datasets", repo, dest, "nothing", match="nothing")


@pytest.mark.parametrize("target", ["export", "export.zip"])
def test_export_and_import(
    repo: str, stored: dict[int, str], repositories: RepositoryFactory, tmp_path: Path, target: str
) -> None:
    run("associate", repo, "tag", "thing", "--where", "detector = 2")
    path = tmp_path / target
    assert "Exported to" in run("export", repo, path).stdout
    assert path.exists()
    other = repositories.create("other").root
    assert "Imported 3 dataset(s)" in run("import", other, path).stdout
    assert stored_ids(other) == set(stored.values())
    assert stored_ids(other, "tag") == {stored[2]}
    with Butler(other, collections="r1") as butler:
        assert butler.get("thing", instrument="HSC", detector=1) == {"detector": 1}
    fails("export", repo, path, match="exists already")


def test_export_a_selection_as_json(
    repo: str, stored: dict[int, str], repositories: RepositoryFactory, tmp_path: Path
) -> None:
    path = tmp_path / "some"
    run("export", repo, path, "thing", "--where", "detector = 3", "--manifest-format", "json")
    assert (path / "export.json").is_file()
    other = repositories.create("other").root
    run("import", other, path, "-t", "copy")
    assert stored_ids(other) == {stored[3]}
    fails("import", other, tmp_path, match="export")  # no manifest there


# -- verify ----------------------------------------------------------------------------


def test_verify_reports_and_repairs(repo: str, stored: dict[int, str]) -> None:
    assert "No problems found." in run("verify", repo).stdout
    assert run_json("verify", repo, "--checksums") == []
    # No checksum is recorded by default: the note says what --checksums could not compare.
    note = run("verify", repo, "--checksums").stderr
    assert "have no recorded checksum" in note and "compared only their sizes" in note
    assert "checksum" not in run("verify", repo).stderr
    with open_repo(repo) as butler:
        ref = next(iter(butler.query_datasets("thing", where="detector = 2")))
        store, path = artifact_of(butler, ref)
        store.delete(path)

    problems = json.loads(run("verify", repo, "--format", "json", code=3).stdout)
    assert [(p["kind"], p["dataset_id"]) for p in problems] == [("missing_artifact", stored[2])]
    listed = csv.DictReader(io.StringIO(run("verify", repo, "--format", "csv", code=3).stdout))
    assert [(p["kind"], p["dataset_id"]) for p in listed] == [("missing_artifact", stored[2])]
    result = run("verify", repo, "--repair", input="n\n", code=4)
    assert "Found 1 problem(s): 1 missing_artifact" in result.stderr
    run("verify", repo, "--repair", "--dry-run", code=3)
    run("verify", repo, code=3)  # still there

    result = run("verify", repo, "--repair", "--yes")
    assert "Repaired 1 missing_artifact" in result.stderr
    run("verify", repo)
    with open_repo(repo) as butler:
        flags = {
            str(r.id): f for r, f in butler.exists_many(butler.query_datasets("thing")).items()
        }
    assert flags[stored[2]] == DatasetExistence.RECORDED


def test_verify_unknown_artifacts_are_deleted_only_when_asked(
    repo: str, stored: dict[int, str]
) -> None:
    with open_repo(repo) as butler:
        ref = next(iter(butler.query_datasets("thing", where="detector = 1")))
        store, path = artifact_of(butler, ref)
    stray = path.rsplit("/", 1)[0] + "/stray.json"
    store.write(stray, b"{}")
    result = run("verify", repo, "--repair", "-y", code=3)
    assert "Not repaired: 1 unknown_artifact" in result.stderr
    assert store.exists(stray)
    # Another client's write may still record a file this new: kept when asked to.
    result = run("verify", repo, "--delete-unknown", "--keep-newer", "3600", "-y", code=3)
    assert "Not repaired: 1 unknown_artifact" in result.stderr and store.exists(stray)
    run("verify", repo, "--delete-unknown", "-y")
    assert not store.exists(stray)
    run("verify", repo)
    assert "nan is not a number" in run("verify", repo, "--keep-newer", "nan", code=2).stderr


def test_progress_on_a_terminal_goes_to_stderr(
    repo: str, stored: dict[int, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("databutler.cli._output.interactive", lambda: True)
    assert ids_of(run_json("query-datasets", repo)) == set(stored.values())
    assert json.loads(run("verify", repo, "--format", "json").stdout) == []
    assert "unstored 3" in run("prune-datasets", repo, "thing", "--unstore", "-y").stdout
