"""Files the command line reads, a closed standard output, and messages in command-line terms.

Every bad input file ends in one ``Error:`` line that names the file, with
exit code 1 and the repository as it was; never a traceback or an "internal
error".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from databutler import Butler, CollectionType
from databutler.cli import main
from databutler.cli._app import cli_wording
from databutler.cli._output import interactive
from databutler.testing.butler import populate
from databutler.testing.cli import one_line_error

DATABUTLER = str(Path(sys.executable).parent / "databutler")

#: What a command-line message must not say: Python calls and keywords.
PYTHON_WORDS = (
    "=True",
    "=False",
    "Butler(",
    "butler.",
    "sync()",
    "registerRun",
    "registerDatasetType",
    "isCalibration",
    "db=",
    "transfer=",
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with an instrument, four detectors and one catalog dataset in night1."""
    root = tmp_path_factory.mktemp("template") / "repo"
    butler = Butler.create(root, run="night1")
    populate(butler, 4, "catalog")
    butler.put({"a": 1}, "catalog", instrument="HSC", detector=2)
    butler.close()
    return root


@pytest.fixture
def repo(template: Path, tmp_path: Path) -> Path:
    """A copy of the template repository, to change."""
    root = tmp_path / "repo"
    shutil.copytree(template, root)
    return root


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# -- bad input files ---------------------------------------------------------------------------


def _deep_yaml(path: Path) -> None:
    path.write_text("detector: " + "[" * 2000 + "]" * 2000 + "\n")


#: name: (file name, how to write it, what the message says besides the file's name).
BAD_FILES: dict[str, tuple[str, Callable[[Path], object], tuple[str, ...]]] = {
    "binary-yaml": (
        "bin.yaml",
        lambda p: p.write_bytes(b"\xff\xfe\x00garbage: ["),
        ("not valid UTF-8", "byte 0xff at offset 0", "save the file as UTF-8"),
    ),
    "latin1-csv": (
        "l.csv",
        lambda p: p.write_bytes(b"instrument,detector,full_name\nHSC,45,\xe9\n"),
        ("not valid UTF-8", "byte 0xe9 at offset 37 (line 2)", "iconv"),
    ),
    "huge-csv-field": (
        "big.csv",
        lambda p: p.write_text("instrument,detector,full_name\nHSC,50," + "x" * 200_000 + "\n"),
        ("line 2", "longer than 131072 characters", "double quote"),
    ),
    "deep-yaml": ("deep.yaml", _deep_yaml, ("nested too deeply",)),
    "impossible-date": (
        "d.yaml",
        lambda p: p.write_text(
            "detector:\n  - {instrument: HSC, detector: 60, full_name: 2024-13-45}\n"
        ),
        ("line 2, column 48", "'2024-13-45' is not a real date", "month must be in 1..12", "quote"),
    ),
    "bad-hex-int": (
        "h.yaml",
        lambda p: p.write_text("detector:\n  - {instrument: HSC, detector: 0x_}\n"),
        ("line 2", "'0x_' is not a valid int", "quote"),
    ),
    "yaml-syntax": (
        "s.yaml",
        lambda p: p.write_text("detector: [\n"),
        ("not valid YAML, line 2, column 1", "expected the node content"),
    ),
    "csv-row-too-long": (
        "r.csv",
        lambda p: p.write_text("instrument,detector\nHSC,61,extra\n"),
        ("row 2", "3 fields where the header has 2"),
    ),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_record_files(kind: str, repo: Path, tmp_path: Path) -> None:
    name, write, expected = BAD_FILES[kind]
    path = tmp_path / name
    write(path)
    before = _snapshot(repo)
    args = ["insert-dimension-records", str(repo), str(path)]
    if path.suffix == ".csv":
        args += ["--element", "detector"]
    line = one_line_error(CliRunner().invoke(main, args))
    assert str(path) in line, line
    for text in expected:
        assert text in line, (text, line)
    assert _snapshot(repo) == before


def test_records_with_a_byte_order_mark(repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfinstrument,detector,full_name\nHSC,70,seventy\n")
    args = ["insert-dimension-records", str(repo), str(path), "--element", "detector"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output + result.stderr
    with Butler(repo) as butler:
        names = {r.detector: r.full_name for r in butler.query_dimension_records("detector")}
    assert names[70] == "seventy"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\xff\xfe\x00garbage", "not valid UTF-8"),
        (b"file,instrument,detector\nf.json,HSC," + b"1" * 200_000 + b"\n", "longer than"),
        (b"file,instrument,detector\nf.json,HSC,2,3\n", "row 2"),
    ],
)
def test_bad_ingest_tables(content: bytes, expected: str, repo: Path, tmp_path: Path) -> None:
    (tmp_path / "f.json").write_text('{"a": 1}')
    table = tmp_path / "table.csv"
    table.write_bytes(content)
    before = _snapshot(repo)
    result = CliRunner().invoke(main, ["ingest-files", str(repo), "catalog", "night2", str(table)])
    line = one_line_error(result)
    assert str(table) in line and expected in line, line
    assert _snapshot(repo) == before


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\xff\xfe\x00garbage: [", "not valid UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"{bad", "not valid JSON"),
        (b"[]", "not a dimension universe description"),
    ],
)
def test_bad_universe_files(content: bytes, expected: str, tmp_path: Path) -> None:
    universe = tmp_path / "universe.json"
    universe.write_bytes(content)
    target = tmp_path / "new"
    result = CliRunner().invoke(main, ["create", str(target), "--universe", str(universe)])
    line = one_line_error(result)
    assert str(universe) in line and expected in line, line
    assert not target.exists()


def test_deep_timespan_cell_is_not_a_timespan() -> None:
    from databutler.cli._app import CommandError
    from databutler.cli._inputs import _timespan

    with pytest.raises(CommandError, match="a timespan is"):
        _timespan("[" * 100_000, "cell")


# -- standard output ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["query-datasets", "{repo}"],
        ["verify", "{repo}"],
        ["query-dimension-records", "{repo}", "detector"],
        ["config-dump", "{repo}"],
        ["query-collections", "{repo}", "--format", "json"],
        ["create", "{new}"],
    ],
)
def test_closed_stdout_fails_cleanly(args: list[str], repo: Path, tmp_path: Path) -> None:
    before = _snapshot(repo)
    new = tmp_path / "new"
    done = subprocess.run(
        [DATABUTLER, *(a.format(repo=repo, new=new) for a in args)],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        preexec_fn=lambda: os.close(1),  # the child starts without standard output: >&-
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("Error: standard output is closed"), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    assert _snapshot(repo) == before
    assert not new.exists()


def test_interactive_without_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdout", None)
    assert interactive() is False


# -- messages in command-line terms ------------------------------------------------------------


def _message(args: list[str]) -> str:
    line = one_line_error(CliRunner().invoke(main, args))
    for word in PYTHON_WORDS:
        assert word not in line, (word, line)
    return line


def test_existing_record_names_skip_existing(repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "again.yaml"
    path.write_text("detector:\n  - {instrument: HSC, detector: 1}\n")
    line = _message(["insert-dimension-records", str(repo), str(path)])
    assert "--skip-existing" in line


def test_s3_repository_names_db() -> None:
    line = _message(["create", "s3://bucket/x"])
    assert "pass --db postgresql://" in line


def test_existing_repository_names_overwrite(repo: Path) -> None:
    line = _message(["create", str(repo)])
    assert line.endswith("holds a repository already; pass --overwrite to replace it.")


def test_unknown_collection_names_commands(repo: Path) -> None:
    line = _message(["query-datasets", str(repo), "catalog", "--collections", "nosuch"])
    assert "'databutler ingest-files'" in line and "'databutler collection-chain'" in line


def test_unknown_dataset_type_names_command(repo: Path) -> None:
    line = _message(["query-datasets", str(repo), "nosuchtype"])
    assert "register it with 'databutler register-dataset-type REPO nosuchtype ...'" in line


def test_certify_names_is_calibration(repo: Path) -> None:
    args = ["certify-calibrations", str(repo), "calib", "catalog", "--collections", "night1"]
    line = _message(args)
    assert "--is-calibration" in line and "isCalibration" not in line


def test_unknown_detector_names_command(repo: Path, tmp_path: Path) -> None:
    (tmp_path / "f.json").write_text('{"a": 1}')
    table = tmp_path / "t.csv"
    table.write_text("file,instrument,detector\nf.json,HSC,77\n")
    line = _message(["ingest-files", str(repo), "catalog", "night1", str(table)])
    assert "insert its record with 'databutler insert-dimension-records'" in line


def test_empty_transfer_mode_names_option(repo: Path, tmp_path: Path) -> None:
    export = tmp_path / "export"
    result = CliRunner().invoke(main, ["export", str(repo), str(export), "catalog"])
    assert result.exit_code == 0, result.output + result.stderr
    line = _message(["import", str(repo), str(export), "-t", ""])
    assert "--transfer ''" in line and "None" not in line
    assert "'none'" in line or "--transfer none" in line  # how to ingest in place


def test_cli_wording_of_api_fixes() -> None:
    assert cli_wording("register them, or pass register_dataset_types=True.") == (
        "register them, or pass --register-dataset-types."
    )
    assert cli_wording("cannot ingest with transfer=''; use one of 'auto', 'copy', None.") == (
        "cannot ingest with --transfer ''; use one of 'auto', 'copy', 'none'."
    )
    assert cli_wording("needs a shared database: pass db='postgresql://u@h/d'.") == (
        "needs a shared database: pass --db postgresql://u@h/d."
    )
    assert cli_wording(
        '/r holds a repository already; open it with Butler("it\'s"), or pass overwrite=True '
        "(--overwrite) to replace it."
    ) == ("/r holds a repository already; pass --overwrite to replace it.")


def test_missing_dataset_type_names_register_option(repo: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    assert CliRunner().invoke(main, ["create", str(dest)]).exit_code == 0
    args = ["transfer-datasets", str(repo), str(dest), "catalog", "--no-register-dataset-types"]
    line = _message(args)
    assert "pass --register-dataset-types" in line


def test_yaml_with_a_control_character_names_it(repo: Path, tmp_path: Path) -> None:
    path = tmp_path / "nul.yaml"
    path.write_bytes(b"detector:\n  - {instrument: HSC, detector: 4\x007}\n")
    before = _snapshot(repo)
    line = one_line_error(
        CliRunner().invoke(main, ["insert-dimension-records", str(repo), str(path)])
    )
    assert str(path) in line and "#x0000" in line and "remove it" in line
    assert _snapshot(repo) == before


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (OSError(18, "Invalid cross-device link", "/a/x", None, "/b/y"), "use --transfer copy"),
        (PermissionError(13, "Permission denied", "/a/x"), "check the permissions"),
        (OSError(36, "File name too long", "/a/" + "x" * 300), "shorten the path"),
        (NotADirectoryError(20, "Not a directory", "/a/file/out"), "give a directory"),
    ],
)
def test_operating_system_errors_read_as_what_to_do(error: OSError, expected: str) -> None:
    """An OSError the library lets through: what failed, on which path(s), and the fix; no
    ``[Errno N]``."""
    from databutler.cli._app import _message

    message = _message(error)
    assert message.startswith(f"{error.strerror}: {error.filename}")
    assert expected in message and "Errno" not in message
    if error.filename2:
        assert f" -> {error.filename2}" in message


def test_remove_runs_in_a_chain_names_the_option(repo: Path) -> None:
    butler = Butler(repo, writeable=True)
    butler.registry.registerCollection("chain1", CollectionType.CHAINED)
    butler.registry.setCollectionChain("chain1", ["night1"])
    butler.close()
    result = CliRunner().invoke(main, ["remove-runs", str(repo), "night1", "--yes"])
    line = one_line_error(result)
    assert "--unlink" in line and "unlink_from_chains" not in line


@pytest.mark.parametrize(
    "args",
    [
        ["demo", ""],
        ["retrieve-artifacts", "{repo}", ""],
        ["export", "{repo}", ""],
        ["import", "{repo}", ""],
        ["ingest-files", "{repo}", "catalog", "night2", ""],
        ["insert-dimension-records", "{repo}", ""],
        ["create", "{new}", "--universe", ""],
    ],
)
def test_an_empty_path_is_refused_not_read_as_here(
    args: list[str], repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty path is a mistake (a variable that was not set), never the current directory."""
    here = tmp_path / "here"
    here.mkdir()
    (here / "mine.txt").write_text("the user's")
    monkeypatch.chdir(here)
    before = _snapshot(repo)
    args = [a.format(repo=repo, new=tmp_path / "new") for a in args]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "is empty: give a path" in result.output
    assert sorted(p.name for p in here.iterdir()) == ["mine.txt"]
    assert _snapshot(repo) == before
    assert not (tmp_path / "new").exists()


def test_demo_refuses_a_directory_with_files(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("the user's")
    line = one_line_error(CliRunner().invoke(main, ["demo", str(tmp_path)]))
    assert "holds files already" in line and "new or empty directory" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.txt"]
