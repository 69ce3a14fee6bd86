"""Property tests of the ``where`` language and bind values on SQLite and PostgreSQL.

Random expressions over one small fixed repository per backend — known and
unknown identifiers, literals of every kind (integers beyond 64 bits, NUL,
lone surrogates), bind parameters with random values, deep nesting, long
chains — must each be either accepted with the same answer on both backends
or refused by both with a databutler error.  Anything else (a driver error, an
`OverflowError`, a different answer) fails.  The repositories are unchanged
afterwards and verify clean.
"""

from __future__ import annotations

import datetime
import decimal
import fractions
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from databutler import Butler
from databutler.testing.butler import on_both_backends
from databutler.testing.queries import answers, snapshot, where_repository

UTC = datetime.UTC


@pytest.fixture(scope="module")
def butlers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Butler]]:
    """One repository per backend for the whole module; checked unchanged at the end."""
    with on_both_backends(
        tmp_path_factory.mktemp("where-properties"), where_repository, snapshot
    ) as made:
        assert answers(made["sqlite"], None) == answers(made["postgresql"], None)
        yield made


def agree(
    butlers: dict[str, Butler], where: Any, bind: Any = None, *, note: bool = True
) -> dict[str, Any]:
    """Both backends answer alike; every entry point answers or refuses with our error."""
    found = {name: answers(butler, where, bind) for name, butler in butlers.items()}
    assert found["sqlite"] == found["postgresql"], (where, bind)
    accepted = [name for name, value in found["sqlite"].items() if isinstance(value, list)]
    if note:
        event(f"accepted by {len(accepted)} of 3 queries")
    return found["sqlite"]


# -- the pieces of expressions ---------------------------------------------------------

IDENTIFIERS = st.sampled_from(
    [
        "instrument",
        "detector",
        "exposure",
        "physical_filter",
        "band",
        "day_obs",
        "exposure.id",
        "exposure.exposure_time",
        "exposure.obs_id",
        "exposure.science",
        "exposure.datetime_begin",
        "exposure.day_obs",
        "detector.full_name",
        "detector.purpose",
        "instrument.visit_max",
        "instrument.class_name",
        "band.name",
        # not in every query, or nowhere
        "exposure_time",
        "visit",
        "tract",
        "nosuch",
        "exposure.seeing",
        "skymap.hash",
    ]
)
INT_VALUES = st.one_of(
    st.integers(-10, 10),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**53 + 1, 20240102]),
)
FLOAT_VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.5, 2.0, 2.5, 15.5, 30.0, 2.0**53, 1e300, -0.0]),
)
TEXT_VALUES = st.one_of(
    st.text(max_size=6),
    st.sampled_from(
        ["HSC", "LSST", "d0", "Zeta", "é", "it's", "HSC-G", "g", "HSC0001", "a\x00b", "\ud800", ""]
    ),
)


def quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


LITERALS = st.one_of(
    INT_VALUES.map(str),
    FLOAT_VALUES.map(repr),
    TEXT_VALUES.map(quoted),
    st.sampled_from(["TRUE", "FALSE", "NULL"]),
)
BIND_NAMES = ["i", "f", "s", "b", "t", "l", "e", "x"]
BIND_REFERENCES = st.sampled_from([*BIND_NAMES, "missing"]).map(lambda name: ":" + name)
OPERANDS = st.one_of(IDENTIFIERS, LITERALS, BIND_REFERENCES)
OPERATORS = st.sampled_from(["=", "!=", "<>", "<", "<=", ">", ">="])

COMPARISONS = st.builds(lambda a, op, b: f"{a} {op} {b}", OPERANDS, OPERATORS, OPERANDS)
IN_LISTS = st.builds(
    lambda a, negated, items: f"{a} {'NOT IN' if negated else 'IN'} ({', '.join(items)})",
    OPERANDS,
    st.booleans(),
    st.lists(st.one_of(OPERANDS, BIND_REFERENCES), min_size=1, max_size=5),
)
IN_BINDS = st.builds(
    lambda a, negated, bind: f"{a} {'NOT IN' if negated else 'IN'} {bind}",
    OPERANDS,
    st.booleans(),
    BIND_REFERENCES,
)
ATOMS = st.one_of(COMPARISONS, COMPARISONS, IN_LISTS, IN_BINDS, OPERANDS)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda a, b: f"({a}) AND ({b})", children, children),
        st.builds(lambda a, b: f"({a}) OR ({b})", children, children),
        st.builds(lambda a, b: f"{a} AND {b}", children, children),
        st.builds(lambda a, b: f"{a} OR {b}", children, children),
        st.builds(lambda a: f"NOT ({a})", children),
        st.builds(lambda a: f"NOT {a}", children),
        st.builds(lambda a, op, b: f"({a}) {op} ({b})", children, OPERATORS, children),
        st.builds(lambda a, b: f"{a} = ({b})", OPERANDS, children),
    )


EXPRESSIONS = st.recursive(ATOMS, _combine, max_leaves=10)

# Well-typed conditions, so that most examples are answered (and compared) rather than refused.
_NUMBER_LITERALS = st.one_of(
    st.integers(-3, 25).map(str),
    st.sampled_from(["20240101", "20240102", "2.5", "15.5", "30", "1e300", "-1e300", ":i", ":f"]),
)
_TEXT_LITERALS = st.one_of(
    TEXT_VALUES.map(quoted), st.sampled_from(["'HSC'", "'LSST'", "'HSC-R'", "'r'", ":s"])
)
_TYPED = {
    "number": (
        st.sampled_from(
            [
                "detector",
                "exposure",
                "day_obs",
                "exposure.id",
                "instrument.visit_max",
                "exposure.exposure_time",
            ]
        ),
        _NUMBER_LITERALS,
    ),
    "text": (
        st.sampled_from(
            [
                "instrument",
                "physical_filter",
                "band",
                "exposure.obs_id",
                "detector.full_name",
                "detector.purpose",
            ]
        ),
        _TEXT_LITERALS,
    ),
    "bool": (st.just("exposure.science"), st.sampled_from(["TRUE", "FALSE", ":b"])),
    "time": (st.just("exposure.datetime_begin"), st.just(":t")),
}


def _typed_atoms(kind: str) -> st.SearchStrategy[str]:
    columns, values = _TYPED[kind]
    operand = st.one_of(columns, values)
    lists = st.lists(st.one_of(values, columns), min_size=1, max_size=4)
    atoms = [
        st.builds(lambda a, op, b: f"{a} {op} {b}", columns, OPERATORS, operand),
        st.builds(lambda a, op, b: f"{a} {op} {b}", values, OPERATORS, columns),
        st.builds(lambda a, op: f"{a} {op} NULL", columns, st.sampled_from(["=", "!="])),
        st.builds(
            lambda a, n, items: f"{a} {'NOT IN' if n else 'IN'} ({', '.join(items)})",
            columns,
            st.booleans(),
            lists,
        ),
    ]
    if kind == "number":
        atoms.append(
            st.builds(
                lambda a, n, b: f"{a} {'NOT IN' if n else 'IN'} {b}",
                columns,
                st.booleans(),
                st.sampled_from([":l", "(:l)", "(:l, 7)", ":e", "(:e)"]),
            )
        )
    if kind == "bool":
        atoms.append(columns)
    return st.one_of(atoms)


def _combine_typed(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda a, b: f"({a}) AND ({b})", children, children),
        st.builds(lambda a, b: f"({a}) OR ({b})", children, children),
        st.builds(lambda a, b: f"{a} OR {b}", children, children),
        st.builds(lambda a: f"NOT ({a})", children),
        st.builds(
            lambda a, op, b: f"({a}) {op} ({b})", children, st.sampled_from(["=", "!="]), children
        ),
    )


TYPED_EXPRESSIONS = st.recursive(
    st.one_of([_typed_atoms(kind) for kind in _TYPED]), _combine_typed, max_leaves=8
)
TYPED_BINDS = {
    "i": 2,
    "f": 2.5,
    "s": "HSC",
    "b": True,
    "t": datetime.datetime(2024, 1, 2, 0, 30, tzinfo=UTC),
    "l": [1, 2, 4],
    "e": [],
}

CHAIN_TERMS = st.sampled_from(
    [
        "detector = {}",
        "detector != {}",
        "exposure > {}",
        "detector.full_name = 'd{}'",
        "(detector = {} AND exposure.exposure_time > 1)",
        "exposure.exposure_time < {}.5",
        "instrument = {}",
    ]
)
CHAINS = st.builds(
    lambda n, op, term: f" {op} ".join(term.format(i) for i in range(n)),
    st.integers(2, 3500),
    st.sampled_from(["OR", "AND"]),
    CHAIN_TERMS,
)
NESTED = st.builds(
    lambda depth, wrap, inner: wrap[0] * depth + inner + wrap[1] * depth,
    st.integers(1, 26),
    st.sampled_from(
        [("(", ")"), ("NOT (", ")"), ("(detector = 1 OR ", ")"), ("(TRUE AND (", "))")]
    ),
    ATOMS,
)

# -- bind values -------------------------------------------------------------------------

SCALARS = st.one_of(
    INT_VALUES,
    st.floats(),  # NaN and infinities included
    TEXT_VALUES,
    st.booleans(),
    st.none(),
    st.datetimes(timezones=st.sampled_from([UTC, datetime.timezone(datetime.timedelta(hours=-5))])),
    st.datetimes(),  # naive: refused
    st.sampled_from(
        [
            b"HSC",
            decimal.Decimal("1.5"),
            fractions.Fraction(5, 2),
            uuid.UUID(int=1),
            1 + 2j,
            object(),
            "x" * 5000,
        ]
    ),
)
HASHABLE = st.one_of(INT_VALUES, TEXT_VALUES, st.booleans(), st.floats(allow_nan=False))
VALUES = st.one_of(
    SCALARS,
    st.lists(SCALARS, max_size=4),
    st.lists(HASHABLE, max_size=4).map(tuple),
    st.sets(HASHABLE, max_size=4),
    st.frozensets(HASHABLE, max_size=4),
    st.lists(st.lists(INT_VALUES, max_size=2), max_size=2),
)
BIND_DICTS = st.one_of(
    st.dictionaries(st.sampled_from(BIND_NAMES), VALUES, max_size=len(BIND_NAMES)),
    st.dictionaries(st.sampled_from(BIND_NAMES), st.sampled_from([1, 4, "HSC", True, 2.5])),
)
BINDS = st.one_of(
    st.none(),
    BIND_DICTS,
    BIND_DICTS,
    BIND_DICTS,
    st.sampled_from([[1], "i=1", 5, {1: 2}, {("i",): 1}]),
)
WHERES = st.one_of(
    EXPRESSIONS,
    EXPRESSIONS,
    st.none(),
    st.text(max_size=20),
    st.sampled_from([123, 1.5, b"detector = 1", ["detector = 1"], True]),
)

SETTINGS = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@settings(SETTINGS, max_examples=300)
@given(where=WHERES, bind=BINDS)
def test_random_expressions_and_binds(butlers: dict[str, Butler], where: Any, bind: Any) -> None:
    agree(butlers, where, bind)


@settings(SETTINGS, max_examples=100)
@given(where=EXPRESSIONS, bind=st.sampled_from([None, {"i": 2, "f": 2.5, "s": "HSC", "b": True}]))
def test_random_expressions_with_plain_binds(
    butlers: dict[str, Butler], where: Any, bind: Any
) -> None:
    agree(butlers, where, bind)


@settings(SETTINGS, max_examples=150)
@given(where=TYPED_EXPRESSIONS)
def test_well_typed_expressions(butlers: dict[str, Butler], where: str) -> None:
    agree(butlers, where, TYPED_BINDS)


@settings(SETTINGS, max_examples=10)
@given(where=CHAINS)
def test_long_chains(butlers: dict[str, Butler], where: str) -> None:
    found = agree(butlers, where)
    if len(where) <= 100_000 and not where.startswith("instrument"):
        assert found["datasets"] != ("refused", "ExpressionError"), where[:80]


@settings(SETTINGS, max_examples=40)
@given(where=NESTED)
def test_deep_nesting(butlers: dict[str, Butler], where: str) -> None:
    agree(butlers, where)


def test_chains_select_what_in_lists_select(butlers: dict[str, Butler]) -> None:
    """A 3,000-term OR chain is the IN list it spells, on both backends."""
    chain = " OR ".join(f"detector = {i}" for i in range(3000))
    listed = "detector IN (" + ", ".join(str(i) for i in range(3000)) + ")"
    found = agree(butlers, chain, note=False)
    assert found == agree(butlers, listed, note=False)
    assert found["datasets"] == agree(butlers, None, note=False)["datasets"]
