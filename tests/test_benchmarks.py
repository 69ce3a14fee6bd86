"""Every benchmark runs and prints its phase lines (tiny sizes: this checks, it does not time)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"

PHASES = {
    "bridge.py": ["insert", "check", "locate", "find_datastores", "move_to_trash", "empty_trash"],
    "registry.py": [
        "insert_many",
        "find_by_data_id",
        "query_all",
        "query_where",
        "remove_run",
        "order_by_limit",
    ],
    "datastores.py": [
        "put_many",
        "put",
        "get",
        "ingest_copy",
        "ingest_direct",
        "trash_empty",
        "get_columns",
        "convert",
    ],
    "butler.py": [
        "put",
        "get_by_data_id",
        "query_all",
        "where",
        "get_by_ref",
        "get_many",
        "exists",
        "ingest",
        "prune_empty",
        "verify",
    ],
    "migrate.py": ["migrate"],
}


@pytest.mark.parametrize("script", sorted(PHASES))
def test_benchmark_prints_its_phases(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--n", "40"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    printed = re.findall(r"^phase=(\S+) n=\d+ seconds=[\d.]+ ops_per_s=\d+$", result.stdout, re.M)
    missing = [phase for phase in PHASES[script] if phase not in printed]
    assert not missing, f"{script} did not print {missing}:\n{result.stdout}"
    if script == "butler.py":
        assert re.search(r"^peak_rss_mb=\d+$", result.stdout, re.M)
        assert re.search(r"^import_seconds=[\d.]+$", result.stdout, re.M)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrency_benchmark_loses_nothing(backend: str) -> None:
    """Four clients on one repository: every acknowledged put is readable, no error, no loss."""
    from databutler.testing.database import postgresql_uri

    extra = ["--db", postgresql_uri()] if backend == "postgresql" else []
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "concurrency.py"),
            "--clients",
            "4",
            "--seconds",
            "2",
            "--min-rounds",
            "16",  # a loaded machine may start the clients late: work all the same
            *extra,
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(
        r"^phase=mix clients=4 n=\d+ seconds=[\d.]+ ops_per_s=\d+$", result.stdout, re.M
    )
    assert re.search(r"^errors clients=4 total=0$", result.stdout, re.M), result.stdout
    check = re.search(
        r"^check clients=4 acknowledged=(\d+) kept=(\d+) lost=0 wrong=0 resurrected=0$",
        result.stdout,
        re.M,
    )
    assert check is not None, result.stdout
    assert int(check.group(1)) > 0


def _ceiling(*arguments: str, **options: Any) -> subprocess.CompletedProcess[str]:
    """Run ``ceiling.py`` with ``arguments`` (``options`` go to `subprocess.run`)."""
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / "ceiling.py"), *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        **options,
    )


def test_ceiling_prints_a_line_per_size_and_pair_count() -> None:
    """The machine's ceiling runs its pairs in increasing order, each size in turn, with
    the ratio to one pair once one pair has run."""
    result = _ceiling(
        "--pairs", "2,1", "--seconds", "0.3", "--mib", "0.1,0.2",
        "--client-steps", "50", "--server-steps", "20",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = re.findall(
        r"^phase=turns mib=([\d.]+) pairs=(\d) n=(\d+) seconds=[\d.]+ ops_per_s=\d+ "
        r"vs_one=([\d.]+) client_cpu_us=\d+$",
        result.stdout,
        re.M,
    )
    assert [(mib, pairs) for mib, pairs, _, _ in lines] == [
        ("0.1", "1"),
        ("0.1", "2"),
        ("0.2", "1"),
        ("0.2", "2"),
    ], result.stdout
    assert all(int(n) > 0 for _, _, n, _ in lines)
    assert [ratio for _, pairs, _, ratio in lines if pairs == "1"] == ["1.00", "1.00"]


def test_ceiling_says_when_a_process_has_no_memory_for_its_working_set() -> None:
    """A working set the processes cannot hold (their address space limited to 600 MiB):
    one line naming the size and the fix, exit status 1, no traceback."""
    import resource

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (600 * 2**20, 600 * 2**20))

    result = _ceiling("--pairs", "2", "--mib", "1000", preexec_fn=limited)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip().splitlines() == [
        "ceiling.py: error: a process had no memory for a working set of 1000 MiB "
        "(with 2 pair(s)); give a smaller --mib or fewer --pairs"
    ]
    assert not result.stdout


def test_benchmarks_on_postgresql_leave_the_database_as_they_found_it() -> None:
    """Each run works in a schema of its own and drops it: a second run is not refused."""
    import sqlalchemy

    from databutler.testing.database import postgresql_uri

    uri = postgresql_uri()
    engine = sqlalchemy.create_engine(uri.replace("postgresql://", "postgresql+psycopg://", 1))

    def schemas() -> set[str]:
        with engine.connect() as connection:
            query = "SELECT nspname FROM pg_namespace"
            return set(connection.execute(sqlalchemy.text(query)).scalars())

    before = schemas()
    runs = [
        ["butler.py", "--n", "20"],
        ["butler.py", "--n", "20"],  # the same database again
        ["upstream.py", "--system", "databutler", "--n", "20"],
        ["registry.py", "--n", "20"],
        ["bridge.py", "--n", "20"],
    ]
    try:
        for script, *arguments in runs:
            result = subprocess.run(
                [sys.executable, str(BENCHMARKS / script), *arguments, "--db", uri],
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            assert result.returncode == 0, (script, result.stdout + result.stderr)
            assert re.search(r"^phase=\S+ n=\d+ ", result.stdout, re.M), result.stdout
            assert schemas() == before, script
    finally:
        engine.dispose()


def _refused(script: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run a benchmark that must refuse its arguments: exit status 2 and no traceback."""
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *arguments],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


@pytest.mark.parametrize(
    ("script", "arguments", "named"),
    [
        ("concurrency.py", ["--clients", "0"], "--clients"),
        ("concurrency.py", ["--clients", "two"], "--clients"),
        ("concurrency.py", ["--clients", "1,,4"], "--clients"),
        ("concurrency.py", ["--clients", ","], "--clients"),
        ("concurrency.py", ["--seconds", "-1"], "--seconds"),
        ("concurrency.py", ["--seconds", "nan"], "--seconds"),
        ("concurrency.py", ["--min-rounds", "-3"], "--min-rounds"),
        ("concurrency.py", ["--root", __file__], "--root"),
        ("ceiling.py", ["--pairs", "0"], "--pairs"),
        ("ceiling.py", ["--mib", "1,,8"], "--mib"),
        ("ceiling.py", ["--mib", "-1"], "--mib"),
        ("ceiling.py", ["--client-steps", "0"], "--client-steps"),
        ("ceiling.py", ["--mib", "1,2000"], "--mib"),
        ("ceiling.py", ["--pairs", "1,65"], "--pairs"),
        ("ceiling.py", ["--seconds", "inf"], "--seconds"),
        ("butler.py", ["--n", "0"], "--n"),
        ("registry.py", ["--n", "-5"], "--n"),
        ("bridge.py", ["--n", "ten"], "--n"),
        ("datastores.py", ["--n", "10", "--table-rows", "0"], "--table-rows"),
        ("migrate.py", ["--batch-size", "-1"], "--batch-size"),
        ("upstream.py", ["--system", "databutler", "--n", "0"], "--n"),
    ],
)
def test_a_bad_argument_is_a_usage_error(script: str, arguments: list[str], named: str) -> None:
    """Refused before any work: exit status 2, one message naming the option, no traceback."""
    result = _refused(script, *arguments)
    assert f"error: argument {named}" in result.stderr or f"error: {named} " in result.stderr
    assert not result.stdout


@pytest.mark.parametrize(
    ("script", "arguments"),
    [
        ("concurrency.py", ["--clients", "1", "--seconds", "1"]),
        ("butler.py", ["--n", "10"]),
        ("registry.py", ["--n", "10"]),
        ("bridge.py", ["--n", "10"]),
        ("upstream.py", ["--system", "databutler", "--n", "10"]),
    ],
)
@pytest.mark.parametrize(
    ("uri", "said"),
    [
        ("postgresql://postgres@127.0.0.1:1/nothing", "Cannot connect to PostgreSQL"),
        ("nosuchdb://127.0.0.1/x", "Unsupported database 'nosuchdb'"),
    ],
)
def test_a_database_that_cannot_be_used_is_said_in_one_line(
    script: str, arguments: list[str], uri: str, said: str
) -> None:
    """A server that is not there (a closed loopback port) or a scheme databutler does not
    know: databutler's own message, exit status 2, no traceback."""
    result = _refused(script, *arguments, "--db", uri)
    assert said in result.stderr
    assert "phase=" not in result.stdout
