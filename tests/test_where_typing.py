"""Typed ``where`` queries: every input gets the same answer on SQLite and PostgreSQL, or an
`ExpressionError` that names the problem, before anything reaches the database."""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from databutler import Butler, DatabutlerError, ExpressionError
from databutler.cli import main
from databutler.registry.queries import (
    MAX_DEPTH,
    MAX_STRING_LENGTH,
    MAX_TERMS,
    check_bind,
    parse_where,
)
from databutler.testing.butler import on_both_backends
from databutler.testing.queries import RAW, answers, snapshot, where_repository

UTC = datetime.UTC


@pytest.fixture(scope="module")
def butlers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Butler]]:
    """The same small repository on SQLite and on PostgreSQL, shared by the module."""
    with on_both_backends(tmp_path_factory.mktemp("where"), where_repository) as made:
        yield made


def same_answer(butlers: dict[str, Butler], where: Any, bind: Any = None) -> dict[str, Any]:
    found = {name: answers(butler, where, bind) for name, butler in butlers.items()}
    assert found["sqlite"] == found["postgresql"], where
    return found["sqlite"]


def detectors_of(found: dict[str, Any]) -> set[tuple[str, int]]:
    # Data IDs are (instrument, detector, exposure), each value as (type name, repr).
    return {(row[0][1].strip("'"), int(row[1][1])) for row in found["datasets"]}


ALL_RAW = {
    ("HSC", 0),
    ("HSC", 1),
    ("HSC", 2),
    ("HSC", 3),
    ("HSC", 4),
    ("HSC", 5),
    ("LSST", 0),
    ("LSST", 2),
}

# (where, bind, the (instrument, detector) of the raw datasets it selects)
ACCEPTED: list[tuple[Any, Any, set[tuple[str, int]]]] = [
    (None, None, ALL_RAW),
    ("", None, ALL_RAW),
    ("   ", None, ALL_RAW),
    ("detector > 2", None, {("HSC", 3), ("HSC", 4), ("HSC", 5)}),
    ("detector < 2.5 AND instrument = 'HSC'", None, {("HSC", 0), ("HSC", 1), ("HSC", 2)}),
    ("detector = 2.0", None, {("HSC", 2), ("LSST", 2)}),
    ("detector = 2.5", None, set()),
    ("2.5 = detector OR 1e300 = detector OR 1e300 < detector", None, set()),
    ("2.5 > detector", None, {("HSC", 0), ("HSC", 1), ("HSC", 2), ("LSST", 0), ("LSST", 2)}),
    (
        "1e300 > detector AND 30 = exposure.exposure_time",
        None,
        {("HSC", 0), ("HSC", 1), ("LSST", 0), ("LSST", 2)},
    ),
    ("NOT detector = 2.5", None, ALL_RAW),
    ("detector > 1e300 OR detector < -1e300", None, set()),
    ("detector = 9223372036854775807 OR detector = -9223372036854775808", None, set()),
    ("exposure.science", None, {("HSC", 0), ("HSC", 1), ("HSC", 4), ("HSC", 5)}),
    ("NOT exposure.science", None, {("HSC", 2), ("LSST", 0), ("LSST", 2)}),
    ("exposure.science = FALSE", None, {("HSC", 2), ("LSST", 0), ("LSST", 2)}),
    (
        "exposure.science = (detector > 3)",
        None,
        {("HSC", 2), ("HSC", 4), ("HSC", 5), ("LSST", 0), ("LSST", 2)},
    ),
    ("exposure.science = :yes", {"yes": True}, {("HSC", 0), ("HSC", 1), ("HSC", 4), ("HSC", 5)}),
    ("exposure.science = NULL", None, {("HSC", 3)}),
    ("exposure.exposure_time = NULL", None, {("HSC", 3)}),
    (
        "exposure.exposure_time > 20",
        None,
        {("HSC", 0), ("HSC", 1), ("HSC", 4), ("HSC", 5), ("LSST", 0), ("LSST", 2)},
    ),
    ("exposure.exposure_time > 2e15", None, {("HSC", 4), ("HSC", 5)}),
    ("exposure.exposure_time >= detector", None, ALL_RAW - {("HSC", 3)}),
    (
        "detector.full_name < 'e'",
        None,
        {("HSC", 0), ("HSC", 1), ("HSC", 2), ("LSST", 0), ("LSST", 2)},
    ),
    ("detector.full_name > 'd1'", None, {("HSC", 3), ("HSC", 4)}),
    ("detector.full_name = 'it\\'s'", None, {("HSC", 4)}),
    ("detector.full_name = :name", {"name": "é"}, {("HSC", 3)}),
    ("instrument < 'I'", None, {d for d in ALL_RAW if d[0] == "HSC"}),
    (
        "physical_filter = 'HSC-G' AND band = 'g'",
        None,
        {("HSC", 0), ("HSC", 1), ("HSC", 4), ("HSC", 5)},
    ),
    ("day_obs = 20240102 AND instrument = 'LSST'", None, {("LSST", 0), ("LSST", 2)}),
    (
        "exposure.datetime_begin > :t",
        {"t": datetime.datetime(2024, 1, 2, 1, 30, tzinfo=UTC)},
        {("HSC", 4), ("HSC", 5)},
    ),
    (
        "exposure.datetime_begin < :t",
        {
            "t": datetime.datetime(
                2024, 1, 2, 0, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=1))
            )
        },
        {("HSC", 0), ("HSC", 1)},
    ),
    # Time literals (HSC exposures 1..4 begin 2024-01-01T23:00 UTC, then hourly).
    ("exposure.datetime_begin > T'2024-01-02T01:30:00'", None, {("HSC", 4), ("HSC", 5)}),
    ("exposure.datetime_begin = T'2024-01-02 00:00:00'", None, {("HSC", 2)}),
    ("exposure.datetime_begin = T'2024-01-02'", None, {("HSC", 2)}),
    (
        "exposure.datetime_begin >= T'2024-01-02T01:00Z' AND "
        "exposure.datetime_begin < T'2024-01-02T02:00:00'",
        None,
        {("HSC", 3)},
    ),
    ("exposure.datetime_begin = T'2024-01-02T00:00:37/tai'", None, {("HSC", 2)}),
    ("exposure.datetime_begin = T'2024-01-02T00:01:09.184/tt'", None, {("HSC", 2)}),
    ("exposure.datetime_begin = T'mjd/60311/utc'", None, {("HSC", 2)}),
    (
        "exposure.datetime_begin = T'60311.5/mjd/utc' OR detector = 0",
        None,
        {("HSC", 0), ("LSST", 0)},
    ),
    # 60311.05 TAI is 01:12:00 TAI, 01:11:23 UTC: only exposure 4 begins later.
    ("exposure.datetime_begin > T'60311.05'", None, {("HSC", 4), ("HSC", 5)}),
    ("exposure.datetime_begin = T'unix/1704153600'", None, {("HSC", 2)}),
    ("exposure.datetime_begin = T'jd/2460311.5/utc'", None, {("HSC", 2)}),
    (
        "exposure.datetime_begin IN (T'2024-01-01T23:00:00', T'2024-01-02T02:00:00')",
        None,
        {("HSC", 0), ("HSC", 1), ("HSC", 4), ("HSC", 5)},
    ),
    (
        "exposure.datetime_begin NOT IN (T'2024-01-01T23:00:00', :t)",
        {"t": datetime.datetime(2024, 1, 2, 2, tzinfo=UTC)},
        {("HSC", 2), ("HSC", 3)},
    ),
    ("exposure.datetime_begin < T'2024-01-01T23:00:00.000001'", None, {("HSC", 0), ("HSC", 1)}),
    ("T'2024-01-01' < T'2024-01-02' AND detector = 2", None, {("HSC", 2), ("LSST", 2)}),
    ("detector IN (:dets)", {"dets": [1, 2]}, {("HSC", 1), ("HSC", 2), ("LSST", 2)}),
    ("detector IN (:dets)", {"dets": (1,)}, {("HSC", 1)}),
    ("detector IN (:dets, 5)", {"dets": {1}}, {("HSC", 1), ("HSC", 5)}),
    ("detector IN :dets", {"dets": frozenset({0})}, {("HSC", 0), ("LSST", 0)}),
    ("detector NOT IN (:dets)", {"dets": [0, 1, 2, 3]}, {("HSC", 4), ("HSC", 5)}),
    ("detector IN (:dets)", {"dets": []}, set()),
    ("detector NOT IN :dets", {"dets": []}, ALL_RAW),
    ("instrument IN (:i) AND detector IN (4.0, 5.5)", {"i": ["HSC"]}, {("HSC", 4)}),
    ("1 = 1 AND 'a' < 'b'", None, ALL_RAW),
    ("1 = 2 OR FALSE", None, set()),
    ("'x' = NULL OR detector = 0", None, {("HSC", 0), ("LSST", 0)}),
    (" OR ".join(f"detector = {i}" for i in range(3000)), None, ALL_RAW),
    (
        " OR ".join(f"(detector = {i} AND exposure > 1)" for i in range(1500)),
        None,
        {("HSC", 2), ("HSC", 3), ("HSC", 4), ("HSC", 5)},
    ),
    (
        " AND ".join(f"detector != {i}" for i in range(3, 3000)),
        None,
        {d for d in ALL_RAW if d[1] < 3},
    ),
    (" OR ".join(f"detector > {i}" for i in range(4, 3000)), None, {("HSC", 5)}),
    # Integer ranges (both ends included) and strides.
    ("detector IN (1..3)", None, {("HSC", 1), ("HSC", 2), ("HSC", 3), ("LSST", 2)}),
    ("detector IN (0..5:2)", None, {("HSC", 0), ("HSC", 2), ("HSC", 4), ("LSST", 0), ("LSST", 2)}),
    ("detector IN (1..10:4)", None, {("HSC", 1), ("HSC", 5)}),
    ("detector NOT IN (1..4)", None, {("HSC", 0), ("HSC", 5), ("LSST", 0)}),
    ("detector IN (-4..4:3)", None, {("HSC", 2), ("LSST", 2)}),
    ("detector IN (-6..0:3)", None, {("HSC", 0), ("LSST", 0)}),
    ("detector IN (0, 3..4) AND instrument = 'HSC'", None, {("HSC", 0), ("HSC", 3), ("HSC", 4)}),
    (
        "detector NOT IN (:d, 4..9:5)",  # neither 0 nor 4 nor 9
        {"d": [0]},
        {("HSC", 1), ("HSC", 2), ("HSC", 3), ("HSC", 5), ("LSST", 2)},
    ),
    ("exposure IN (1..9223372036854775807:2) AND detector = 0", None, {("HSC", 0), ("LSST", 0)}),
    (
        "exposure IN (-9223372036854775808..9223372036854775807:3)",  # 1, 4, ... (1 mod 3)
        None,
        {("HSC", 0), ("HSC", 1), ("HSC", 4), ("HSC", 5), ("LSST", 0), ("LSST", 2)},
    ),
]


@pytest.mark.parametrize(
    ("where", "bind", "selected"), ACCEPTED, ids=[str(a[0])[:40] for a in ACCEPTED]
)
def test_both_backends_give_the_expected_answer(
    butlers: dict[str, Butler], where: Any, bind: Any, selected: set[tuple[str, int]]
) -> None:
    found = same_answer(butlers, where, bind)
    assert found["datasets"] != ("refused", "ExpressionError")
    assert detectors_of(found) == selected


def test_queries_without_datasets_agree(butlers: dict[str, Butler]) -> None:
    found = same_answer(butlers, "exposure.exposure_time < 20 OR exposure.obs_id = 'LSST0001'")
    assert len(found["records"]) == 2
    assert len(found["data_ids"]) == 6 + 3  # two HSC exposures (one per 6 detectors)... and LSST
    found = same_answer(butlers, "exposure.science")
    assert [row for row in found["records"]] and all("True" in str(row) for row in found["records"])


def raises_everywhere(butlers: dict[str, Butler], where: Any, bind: Any, fragment: str) -> None:
    before = {name: snapshot(butler) for name, butler in butlers.items()}
    for name, butler in butlers.items():
        queries = (
            lambda b: list(b.query_datasets(RAW, collections="run", where=where, bind=bind)),
            lambda b: list(b.query_data_ids(["exposure", "detector"], where=where, bind=bind)),
            lambda b: b.registry.queryDatasets(RAW, collections="run", where=where, bind=bind),
            lambda b: b.registry.queryDataIds(["exposure", "detector"], where=where, bind=bind),
        )
        for query in queries:
            with pytest.raises(ExpressionError) as info:
                query(butler)
            assert isinstance(info.value, DatabutlerError)
            assert fragment in str(info.value), (name, str(info.value))
    assert {name: snapshot(butler) for name, butler in butlers.items()} == before


REFUSED: list[tuple[Any, Any, str]] = [
    ("detector = 'abc'", None, "cannot compare 'detector' (an integer) with 'abc' (a string)"),
    ("instrument = 1", None, "cannot compare 'instrument' (a string) with 1 (an integer)"),
    ("detector", None, "'detector' at column 0 is an integer, not a condition"),
    ("exposure.exposure_time AND detector = 1", None, "is a float, not a condition"),
    ("detector = 1 AND :n", {"n": 1}, "must be True or False"),
    ("detector = 99999999999999999999", None, "does not fit in a signed 64-bit integer"),
    ("detector > -9223372036854775809", None, "does not fit in a signed 64-bit integer"),
    ("detector = :n", {"n": 2**63}, "does not fit in a signed 64-bit integer"),
    ("detector = :n", {"n": True}, "cannot compare 'detector' (an integer) with :n (a boolean"),
    ("exposure.science = 1", None, "cannot compare 'exposure.science' (a boolean) with 1"),
    ("exposure.science < TRUE", None, "cannot order a boolean"),
    ("detector = :dets", {"dets": [1, 2]}, "can only follow IN; write x IN (:dets)"),
    ("detector = :dets", {"dets": (1,)}, "can only follow IN"),
    ("detector < :dets", {"dets": {1}}, "can only follow IN"),
    ("detector IN :d", {"d": 1}, "must be a list, tuple or set"),
    ("detector IN (1, 'a')", None, "cannot compare 'detector' (an integer) with 'a'"),
    (
        "detector IN (:d)",
        {"d": [1, "a"]},
        "cannot compare 'detector' (an integer) with :d (a string",
    ),
    ("detector IN (:d)", {"d": [[1]]}, "inside a list; give a flat list"),
    ("instrument IN (1..3)", None, "'instrument' (a string) is not one; ranges only apply"),
    ("exposure.exposure_time NOT IN (1..3)", None, "'exposure.exposure_time' (a float)"),
    ("detector IN (5..1)", None, "is empty: a range counts up"),
    ("detector IN (1..5:0)", None, "a stride is 1 or more"),
    ("detector IN (1..5:-2)", None, "negative stride"),
    ("detector IN (0..99999999999999999999)", None, "does not fit in a signed 64-bit integer"),
    ("instrument = 'a\x00b'", None, "NUL"),
    ("instrument = :s", {"s": "a\x00"}, "NUL"),
    ("instrument = '\ud800'", None, "lone surrogate"),
    ("instrument = :s", {"s": "x\udfff"}, "lone surrogate"),
    ("instrument = :s", {"s": "x" * (MAX_STRING_LENGTH + 1)}, f"the limit is {MAX_STRING_LENGTH}"),
    ("exposure.exposure_time < :x", {"x": math.nan}, "not a finite number"),
    ("exposure.exposure_time < :x", {"x": math.inf}, "not a finite number"),
    ("exposure.datetime_begin < :t", {"t": datetime.datetime(2024, 1, 1)}, "has no time zone"),
    ("exposure.datetime_begin < 5", None, "cannot compare 'exposure.datetime_begin' (a datetime)"),
    ("exposure.datetime_begin > T'2024-13-01'", None, "malformed time literal at column 26"),
    ("exposure.datetime_begin > T'yesterday'", None, "is not an ISO date and time"),
    ("exposure.datetime_begin > T'60311.5/ut1'", None, "unknown time scale 'ut1'"),
    ("exposure.datetime_begin > T'fits/2024-01-01'", None, "unknown time format 'fits'"),
    ("exposure.datetime_begin > T'2024-01-02T00:00+01:00'", None, "has a UTC offset"),
    ("exposure.datetime_begin > T'1960-01-01/tai'", None, "a TAI time before 1972"),
    (
        "detector > T'2024-01-01'",
        None,
        "cannot compare 'detector' (an integer) with T'2024-01-01T00:00:00' (a datetime)",
    ),
    ("instrument = T'2024-01-01'", None, "cannot compare 'instrument' (a string)"),
    ("detector IN (1, T'2024-01-01')", None, "cannot compare 'detector' (an integer)"),
    ("T'2024-01-01'", None, "is a time, not a condition"),
    ("detector = :n", {"n": None}, "is None"),
    ("detector = :n", {"n": b"1"}, "is a bytes"),
    (
        "detector = :n",
        {"m": 1},
        "no value for bind parameter :n at column 11 (known bind parameters: :m)",
    ),
    ("detector = 1", {"n": object()}, "is a object"),
    ("detector = 1", {1: 2}, "bind parameter names must be str"),
    ("detector = 1", [1], "bind must be a mapping"),
    ("detector = 1", "n=1", "bind must be a mapping"),
    (123, None, "where must be a str"),
    (b"detector = 1", None, "where must be a str"),
    (["detector = 1"], None, "where must be a str"),
    ("nosuch = 1", None, "unknown identifier 'nosuch'"),
    ("exposure.seeing = 1", None, "unknown identifier 'exposure.seeing'"),
    ("detector = = 1", None, "expected a value after '=' at column 11"),
    ("detector IN (" + ", ".join(["1"] * (MAX_TERMS + 1)) + ")", None, "expression too large"),
    ("detector IN :d", {"d": list(range(MAX_TERMS + 1))}, f"more than {MAX_TERMS} items"),
    ("(" * 30 + "detector = 1" + ")" * 30, None, "nested too deeply"),
    (
        "".join(
            "(" + " OR ".join(f"exposure > {i}" for i in range(100)) + f" OR detector = {k} AND "
            for k in range(MAX_DEPTH - 1)
        )
        + "detector = 1"
        + ")" * (MAX_DEPTH - 1),
        None,
        "expression too complex",
    ),
]


@pytest.mark.parametrize(("where", "bind", "fragment"), REFUSED, ids=[f[2][:40] for f in REFUSED])
def test_bad_input_is_refused_on_both_backends(
    butlers: dict[str, Butler], where: Any, bind: Any, fragment: str
) -> None:
    raises_everywhere(butlers, where, bind, fragment)


def test_errors_quote_the_expression_with_a_caret(butlers: dict[str, Butler]) -> None:
    for butler in butlers.values():
        with pytest.raises(ExpressionError) as info:
            list(
                butler.query_datasets(
                    RAW, collections="run", where="detector > 1 AND instrument = 5"
                )
            )
        exc = info.value
        assert exc.position == 17 and exc.expression == "detector > 1 AND instrument = 5"
        lines = str(exc).splitlines()
        assert lines[0] == exc.reason and "\n" not in exc.reason
        assert "compare a string with a string" in exc.reason
        assert lines[-2:] == ["  detector > 1 AND instrument = 5", "  " + " " * 17 + "^"]


def test_bind_and_where_are_checked_without_a_query() -> None:
    assert parse_where(None) is None
    assert parse_where("  ") is None
    assert check_bind(None) == {}
    checked = check_bind({"a": 1, "b": [1.5, "x"], "t": datetime.datetime(2024, 1, 1, tzinfo=UTC)})
    assert checked == {
        "a": ("int", 1),
        "b": [("float", 1.5), ("str", "x")],
        "t": ("datetime", datetime.datetime(2024, 1, 1)),
    }
    with pytest.raises(ExpressionError, match="bool"):
        check_bind({"a": {"x": 1}})


def test_the_command_line_shows_one_line(butlers: dict[str, Butler], tmp_path: Path) -> None:
    root = str(tmp_path / "cli")
    where_repository(root).close()
    for where in ("detector = 'abc'", "detector", "instrument = '\ud800'", "detector = 1e999x"):
        result = CliRunner().invoke(main, ["query-datasets", root, RAW, "--where", where])
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith('Error: --where "'), result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
