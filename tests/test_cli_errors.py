"""Every command, given bad input, fails with one line and exit code 1, never a traceback.

The commands are enumerated from the ``databutler`` group itself, so a new
command is covered without editing this file.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from databutler import Butler
from databutler.cli import main
from databutler.cli._app import cli_wording
from databutler.testing.cli import one_line_error

#: Commands that do not open an existing repository.
_NOT_OPENING = {"create", "demo"}
COMMANDS = sorted(set(main.commands) - _NOT_OPENING)


def _arguments(name: str, repo: str, tmp_path: Path) -> list[str]:
    """Arguments that get ``name`` as far as opening ``repo``."""
    command = main.commands[name]
    args: list[str] = []
    for param in command.params:
        if not isinstance(param, click.Argument):
            continue
        if isinstance(param.type, click.Path):
            if param.type.dir_okay and not param.type.file_okay:
                directory = tmp_path / f"input-{param.name}"
                directory.mkdir(exist_ok=True)
                args.append(str(directory))
            else:
                target = tmp_path / f"input-{param.name}.yaml"
                target.write_text("instrument:\n  - {instrument: HSC}\n")
                args.append(str(target))
        elif param.name in ("repo", "source", "dest"):
            args.append(repo)
        elif param.required:
            args.append("x")
    if any(p.name == "yes" for p in command.params):
        args.append("--yes")
    return args


@pytest.fixture(scope="module")
def good_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("good") / "repo"
    butler = Butler.create(root, run="night1")
    butler.registry.db.dispose()
    return root


def _broken(kind: str, tmp_path: Path, good_repo: Path) -> Path:
    import shutil

    if kind == "missing":
        return tmp_path / "no" / "repo"
    if kind == "file":
        path = tmp_path / "plain.txt"
        path.write_text("hello\n")
        return path
    root = tmp_path / "repo"
    shutil.copytree(good_repo, root)
    database = root / "registry.sqlite3"
    if kind == "corrupt":
        database.write_bytes(b"garbage" * 500)
    elif kind == "truncated":
        database.write_bytes(database.read_bytes()[:300])
    elif kind == "no-registry":
        database.unlink()
    elif kind == "bad-yaml":
        (root / "butler.yaml").write_text("registry: {db: 5}\ndatastore: {}\n")
    return root


@pytest.mark.parametrize("kind", ["missing", "file", "corrupt", "truncated", "no-registry",
                                  "bad-yaml"])  # fmt: skip
@pytest.mark.parametrize("command", COMMANDS)
def test_broken_repositories(command: str, kind: str, tmp_path: Path, good_repo: Path) -> None:
    root = _broken(kind, tmp_path, good_repo)
    args = _arguments(command, str(root), tmp_path)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    result = CliRunner().invoke(main, [command, *args])
    line = one_line_error(result)
    assert "repository" in line.lower() or "registry" in line.lower() or str(root) in line
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize(
    "repo",
    ["ftp://host/repo", "-", "a?b#c", "../../../../../../nonexistent-databutler", "\u2603/x",
     " ", "s3:/half"],
)  # fmt: skip
@pytest.mark.parametrize("command", ["verify", "query-datasets", "prune-datasets", "config-dump"])
def test_hostile_repository_paths(
    command: str, repo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, [command, *_arguments(command, repo, tmp_path)])
    one_line_error(result)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("input-")) == []


@pytest.mark.parametrize(
    "args",
    [
        ["query-data-ids", "{repo}", "detector", "--where", "detector ==== 3"],
        ["query-datasets", "{repo}", "nosuchtype"],
        ["query-dimension-records", "{repo}", "nosuchelement"],
        ["remove-runs", "{repo}", "no-such-run", "--yes"],
        ["register-dataset-type", "{repo}", "t", "StructuredDataDict", "nosuchdimension"],
        ["collection-chain", "{repo}", "night1", "night1"],
        ["insert-dimension-records", "{repo}", "{missing}"],
        ["import", "{repo}", "{missing}"],
        ["create", "{repo}", "--db", "postgresql://h:notaport/db"],
    ],
)
def test_garbage_options(args: list[str], tmp_path: Path, good_repo: Path) -> None:
    import shutil

    root = tmp_path / "repo"
    shutil.copytree(good_repo, root)
    filled = [a.format(repo=root, missing=tmp_path / "missing.yaml") for a in args]
    result = CliRunner().invoke(main, filled)
    if result.exit_code == 2:  # click's own usage errors: also one line, no traceback
        assert "Traceback" not in result.output + result.stderr
        return
    one_line_error(result)


def test_create_over_a_repository_names_the_option(good_repo: Path) -> None:
    result = CliRunner().invoke(main, ["create", str(good_repo)])
    line = one_line_error(result)
    assert "--overwrite" in line and "overwrite=True" not in line


def test_prune_without_an_action_names_the_options(good_repo: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "repo"
    shutil.copytree(good_repo, root)
    result = CliRunner().invoke(main, ["prune-datasets", str(root), "catalog", "--yes"])
    line = one_line_error(result)
    assert "--tag" in line and "--unstore" in line and "--purge" in line
    assert "=True" not in line and "tags=" not in line


def test_cli_wording_translates_keywords() -> None:
    assert cli_wording("pass overwrite=True (--overwrite) to replace it.") == (
        "pass --overwrite to replace it."
    )
    assert cli_wording("Pass overwrite=True (--overwrite on the command line) to replace") == (
        "Pass --overwrite to replace"
    )
    assert cli_wording("pass skip_existing=True (--skip-existing on the command line) to") == (
        "pass --skip-existing to"
    )
    assert cli_wording("Nothing to do: pass tags=[...], unstore=True or purge=True.") == (
        "Nothing to do: pass --tag, --unstore or --purge."
    )
    assert cli_wording("run verify(repair=True) (databutler verify --repair) again") == (
        "run databutler verify --repair again"
    )
    assert cli_wording("--skip-existing stays") == "--skip-existing stays"
    assert cli_wording("create one with 'databutler create r' (Butler.create in Python).") == (
        "create one with 'databutler create r'."
    )
    assert cli_wording(
        "Pass skip_unknown_fields=True (databutler import --skip-unknown-fields) to import "
        "without them, or skip_dimensions=True (--skip-dimensions) to import none."
    ) == ("Pass --skip-unknown-fields to import without them, or --skip-dimensions to import none.")
    assert cli_wording("pass skip_missing=True (databutler migrate --skip-missing) to") == (
        "pass --skip-missing to"
    )
    assert cli_wording("find_first=True needs an order; or pass find_first=False.") == (
        "--find-first needs an order; or leave out --find-first."
    )
    assert cli_wording("limit must be 0 or more, got -1; pass None for every result.") == (
        "--limit must be 0 or more, got -1; leave out --limit for every result."
    )
    assert cli_wording("Pass universe='default' (databutler migrate --universe default) to") == (
        "Pass --universe default to"
    )
    assert cli_wording("SQLite databases have no namespaces (got namespace='foo'); use") == (
        "SQLite databases have no namespaces (got --namespace 'foo'); use"
    )
    assert (
        cli_wording(
            "nothing to migrate. Open it with Butler(...), or copy datasets from it with "
            "transfer_from / 'databutler transfer-datasets'."
        )
        == "nothing to migrate. Copy datasets from it with 'databutler transfer-datasets'."
    )


# -- internal errors ---------------------------------------------------------------------------


@pytest.fixture
def buggy_command() -> Iterator[str]:
    """A command that fails the way a bug does (added to the real group for the test)."""

    @click.command(name="explode-for-test")
    def explode() -> None:
        raise KeyError("missing key")

    main.add_command(explode)
    try:
        yield "explode-for-test"
    finally:
        main.commands.pop("explode-for-test")


def test_internal_error_is_one_line(buggy_command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABUTLER_TRACEBACK", raising=False)
    result = CliRunner().invoke(main, [buggy_command])
    assert result.exit_code == 1
    assert "Traceback" not in result.output + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert "internal error: KeyError: 'missing key'" in lines[0]
    assert "this is a bug" in lines[0] and "--traceback" in lines[0]


@pytest.mark.parametrize("how", ["option", "environment"])
def test_traceback_on_request(
    buggy_command: str, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if how == "option":
        monkeypatch.delenv("DATABUTLER_TRACEBACK", raising=False)
        args = ["--traceback", buggy_command]
    else:
        monkeypatch.setenv("DATABUTLER_TRACEBACK", "1")
        args = [buggy_command]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "KeyError" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("Error: internal error")


def test_traceback_for_user_errors_too(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--traceback", "verify", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "RepositoryNotFoundError" in result.stderr and "Traceback" in result.stderr
    assert not (tmp_path / "none").exists()


def test_subprocess_shows_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "databutler"), "verify", str(tmp_path / "absent")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("Error: No repository")
    assert not (tmp_path / "absent").exists()


@pytest.mark.parametrize("inside", ["", "/sub/repo"])
def test_create_on_a_file_says_so(tmp_path: Path, inside: str) -> None:
    blocker = tmp_path / "plain.txt"
    blocker.write_text("hello\n")
    result = CliRunner().invoke(main, ["create", f"{blocker}{inside}"])
    line = one_line_error(result)
    assert f"{blocker} is a file" in line and "Errno" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt"]
    assert blocker.read_text() == "hello\n"


@pytest.mark.parametrize("command", sorted(main.commands))
def test_a_nul_in_any_argument_is_a_usage_error(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A NUL cannot reach a program from a shell, but callers of ``main`` can pass one;
    click's path checks failed on it with a ValueError ("internal error")."""
    monkeypatch.chdir(tmp_path)
    args = _arguments(command, str(tmp_path / "repo"), tmp_path)
    for place in range(len(args)):
        poisoned = [*args[:place], args[place] + "\0x", *args[place + 1 :]]
        result = CliRunner().invoke(main, [command, *poisoned])
        assert result.exit_code == 2, (poisoned, result.output)
        assert "holds a NUL character" in result.stderr, result.stderr
        assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("input-")) == []
