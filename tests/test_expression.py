"""The ``where`` expression language: parsing, errors, and translation to SQL."""

from __future__ import annotations

import datetime
import pickle
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import pytest
import sqlalchemy
from hypothesis import given, settings
from hypothesis import strategies as st

from databutler import DatabutlerError
from databutler.registry import queries
from databutler.registry.queries import (
    MAX_DEPTH,
    MAX_LENGTH,
    And,
    BindParameter,
    Comparison,
    ExpressionError,
    Identifier,
    InBind,
    InList,
    IsNull,
    Literal,
    Node,
    Not,
    Or,
    RangeLiteral,
    TimeLiteral,
    bind_names,
    identifiers,
    parse_expression,
    to_sql,
)

KEYWORDS = {"AND", "OR", "NOT", "IN", "TRUE", "FALSE", "NULL", "OVERLAPS"}


def cmp(op: Any, left: Node, right: Node) -> Comparison:
    return Comparison(op, left, right)


a, b, c = Identifier("a"), Identifier("b"), Identifier("c")


def lit(value: Any) -> Literal:
    return Literal(value)


# ---------------------------------------------------------------------------
# Parsing


def test_and_binds_tighter_than_or() -> None:
    assert parse_expression("a = 1 OR b = 2 AND c = 3") == Or(
        (cmp("=", a, lit(1)), And((cmp("=", b, lit(2)), cmp("=", c, lit(3)))))
    )
    assert parse_expression("a = 1 AND b = 2 OR c = 3") == Or(
        (And((cmp("=", a, lit(1)), cmp("=", b, lit(2)))), cmp("=", c, lit(3)))
    )


def test_parentheses_override_precedence() -> None:
    assert parse_expression("(a = 1 OR b = 2) AND c = 3") == And(
        (Or((cmp("=", a, lit(1)), cmp("=", b, lit(2)))), cmp("=", c, lit(3)))
    )
    # Redundant parentheses leave no trace in the tree.
    assert parse_expression("((a = 1))") == cmp("=", a, lit(1))
    # Nested groups of the same operator are kept as written.
    assert parse_expression("a AND (b AND c)") == And((a, And((b, c))))
    assert parse_expression("a AND b AND c") == And((a, b, c))


def test_not() -> None:
    assert parse_expression("NOT a = 1 AND b") == And((Not(cmp("=", a, lit(1))), b))
    assert parse_expression("NOT (a OR b)") == Not(Or((a, b)))
    assert parse_expression("NOT NOT a") == Not(Not(a))
    assert parse_expression("a OR NOT b IN (1)") == Or((a, Not(InList(b, (lit(1),)))))


def test_comparison_operators() -> None:
    for op in ("=", "!=", "<", "<=", ">", ">="):
        assert parse_expression(f"a {op} 1") == cmp(op, a, lit(1))
    assert parse_expression("a <> 1") == cmp("!=", a, lit(1))
    assert parse_expression("a<=b") == cmp("<=", a, b)
    # Operands may themselves be parenthesized conditions.
    assert parse_expression("(a = 1) = TRUE") == cmp("=", cmp("=", a, lit(1)), lit(True))


def test_in_lists_and_binds() -> None:
    assert parse_expression("detector IN (1, 2, 3)") == InList(
        Identifier("detector"), (lit(1), lit(2), lit(3))
    )
    assert parse_expression("detector NOT IN (1)") == InList(
        Identifier("detector"), (lit(1),), negated=True
    )
    assert parse_expression("a IN ('x', :y, b, -2.5)") == InList(
        a, (lit("x"), BindParameter("y"), b, lit(-2.5))
    )
    assert parse_expression("detector IN :dets") == InBind(
        Identifier("detector"), BindParameter("dets")
    )
    assert parse_expression("detector NOT IN :dets") == InBind(
        Identifier("detector"), BindParameter("dets"), negated=True
    )


def test_null_comparisons() -> None:
    assert parse_expression("name = NULL") == IsNull(Identifier("name"))
    assert parse_expression("name != NULL") == IsNull(Identifier("name"), negated=True)
    assert parse_expression("name <> NULL") == IsNull(Identifier("name"), negated=True)
    assert parse_expression("NULL = name") == IsNull(Identifier("name"))
    assert str(parse_expression("NULL != name")) == "name != NULL"


def test_dotted_identifiers() -> None:
    node = parse_expression("visit.exposure_time > 10")
    assert node == cmp(">", Identifier("visit", "exposure_time"), lit(10))
    assert str(node) == "visit.exposure_time > 10"
    assert parse_expression("_x.y_2 = 1") == cmp("=", Identifier("_x", "y_2"), lit(1))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12", 12),
        ("-3", -3),
        ("- 3", -3),
        ("0", 0),
        ("1.5", 1.5),
        ("2e-3", 0.002),
        ("1E+3", 1000.0),
        (".5", 0.5),
        ("7.", 7.0),
        ("-1.25e2", -125.0),
        ("'HSC'", "HSC"),
        ('"HSC"', "HSC"),
        ("''", ""),
        ("'it\\'s'", "it's"),
        ('"say \\"hi\\""', 'say "hi"'),
        ("'back\\\\slash'", "back\\slash"),
        ('"it\'s"', "it's"),
        ("'a \"b\"'", 'a "b"'),
        ("'; DROP TABLE dataset; --'", "; DROP TABLE dataset; --"),
        ("TRUE", True),
        ("false", False),
    ],
)
def test_literals(text: str, value: Any) -> None:
    node = parse_expression(f"x = {text}")
    assert isinstance(node, Comparison)
    assert isinstance(node.right, Literal)
    assert node.right.value == value
    assert type(node.right.value) is type(value)


def test_literal_equality_is_by_type() -> None:
    assert Literal(1) != Literal(True)
    assert Literal(1) != Literal(1.0)
    assert Literal(1) == Literal(1, position=9)
    assert hash(Literal("x")) == hash(Literal("x", position=3))
    assert Literal(1) != 1


def test_keywords_are_case_insensitive() -> None:
    upper = parse_expression("a = 1 AND NOT b OR c IN (TRUE) AND a NOT IN :x AND b = NULL")
    lower = parse_expression("a = 1 and not b or c in (true) and a not in :x and b = null")
    mixed = parse_expression("a = 1 And Not b oR c In (True) aNd a nOT In :x AND b = Null")
    assert upper == lower == mixed


def test_bare_booleans() -> None:
    assert parse_expression("flag") == Identifier("flag")
    assert parse_expression(":flag") == BindParameter("flag")
    assert parse_expression("TRUE") == Literal(True)
    assert parse_expression("visit.is_good AND :b") == And(
        (Identifier("visit", "is_good"), BindParameter("b"))
    )


@pytest.mark.parametrize("text", ["", "   ", "\n\t  \r\n"])
def test_empty_expression_means_no_constraint(text: str) -> None:
    assert parse_expression(text) == Literal(True)


def test_positions() -> None:
    text = "  detector = 'x' AND NOT visit.exposure_time IN (1, :b)"
    node = parse_expression(text)
    assert isinstance(node, And)
    first, second = node.terms
    assert isinstance(first, Comparison)
    assert isinstance(second, Not)
    inlist = second.term
    assert isinstance(inlist, InList)
    assert node.position == first.position == first.left.position == text.index("detector")
    assert first.right.position == text.index("'x'")
    assert second.position == text.index("NOT")
    assert inlist.position == inlist.operand.position == text.index("visit")
    assert [item.position for item in inlist.items] == [text.index("1"), text.index(":b")]

    nested = parse_expression("(a = 1) = -2")
    assert isinstance(nested, Comparison)
    assert (nested.position, nested.left.position, nested.right.position) == (0, 1, 10)
    inbind = parse_expression("x NOT IN :vals")
    assert isinstance(inbind, InBind)
    assert inbind.bind.position == 9
    isnull = parse_expression("NULL != name")
    assert isinstance(isnull, IsNull)
    assert (isnull.position, isnull.operand.position) == (0, 8)


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("a = 1 or b = 2 and c = 3", "a = 1 OR (b = 2 AND c = 3)"),
        ("not (a or b)", "NOT (a OR b)"),
        ("x <> 'it\\'s'", "x != 'it\\'s'"),
        ('x = "q\\"\\\\"', "x = 'q\"\\\\'"),
        ("NULL = x", "x = NULL"),
        ("(a = 1) IN (true, (b < 2))", "(a = 1) IN (TRUE, (b < 2))"),
        ("x in :v", "x IN :v"),
        ("x = 2e-3", "x = 0.002"),
    ],
)
def test_str_renders_canonical_text(text: str, rendered: str) -> None:
    node = parse_expression(text)
    assert str(node) == rendered
    assert parse_expression(rendered) == node


def test_walk_and_children() -> None:
    node = parse_expression("a = 1 AND NOT b IN (c, :d)")
    assert [type(n).__name__ for n in node.walk()] == [
        "And",
        "Comparison",
        "Identifier",
        "Literal",
        "Not",
        "InList",
        "Identifier",
        "Identifier",
        "BindParameter",
    ]


@pytest.mark.parametrize(
    "make",
    [
        lambda: Identifier("and"),
        lambda: Identifier("visit", "NULL"),
        lambda: Identifier("9lives"),
        lambda: Identifier("a b"),
        lambda: BindParameter("a-b"),
        lambda: Literal(float("nan")),
        lambda: Literal(float("inf")),
        lambda: Literal("two\nlines"),
        lambda: Comparison("==", a, b),  # type: ignore[arg-type]
        lambda: And((a,)),
        lambda: Or(()),
        lambda: InList(a, ()),
        lambda: Not(Literal(3)),
        lambda: And((a, Literal("x"))),
    ],
)
def test_nodes_that_cannot_be_written_are_refused(make: Callable[[], Node]) -> None:
    with pytest.raises(ValueError):
        make()


def test_literal_refuses_other_types() -> None:
    with pytest.raises(TypeError):
        Literal(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("detector = 1; DROP TABLE dataset", 12, "statements cannot be chained"),
        ("detector =", 10, "expected a value after '=' at column 10"),
        ("instrument = 'HSC", 13, "unterminated string starting at column 13; close it with '"),
        ('name = "abc', 7, 'close it with "'),
        ("name = 'a\\nb'", 9, "invalid escape '\\n'"),
        ("name = 'a\\", 7, "unterminated string"),
        ("a = = 1", 4, "expected a value after '=' at column 4, found '='"),
        ("a == 1", 2, "use a single '='"),
        ("a = 1 AND", 9, "expected a condition after AND"),
        ("a = 1 OR OR b", 9, "expected a condition after OR at column 9, found OR"),
        ("AND a = 1", 0, "expected a condition at column 0, found AND"),
        ("NOT", 3, "expected a condition after NOT"),
        ("(a = 1", 6, "expected ')' at column 6 to close the '(' at column 0"),
        ("(a = 1 b = 2)", 7, "expected ')'"),
        ("a = 1)", 5, "there is no '(' for it to close"),
        ("()", 1, "expected a condition after '('"),
        ("a IN ()", 6, "an IN list needs at least one value"),
        ("a IN (1 2)", 8, "expected ',' or ')' in the IN list"),
        ("a IN (1,)", 8, "expected a value after ','"),
        ("a IN (1, 2", 10, "expected ',' or ')'"),
        ("a IN 3", 5, "expected '(' or a :bind after IN"),
        ("a NOT = 1", 6, "expected IN after NOT"),
        ("a < NULL", 2, "cannot compare with NULL; use '= NULL'"),
        ("NULL = NULL", 7, "NULL = NULL"),
        ("a IN (1, NULL)", 9, "NULL is not allowed"),
        ("NULL", 0, "NULL at column 0 is not a condition"),
        ("a = b = c", 6, "comparisons cannot be chained"),
        ("a = 1 b = 2", 6, "join conditions with AND or OR"),
        ("42", 0, "42 at column 0 is a number, not a condition"),
        ("a AND 'x'", 6, "is a string, not a condition"),
        ("a IS NULL", 2, "'= NULL' or '!= NULL'"),
        ("a LIKE 'x%'", 2, "LIKE is not supported"),
        ("visit. = 1", 6, "expected a field name after 'visit.'"),
        ("a.b.c = 1", 3, "at most one '.'"),
        ("in.x = 1", 0, "reserved word"),
        ("visit.not = 1", 6, "reserved word"),
        ("12abc = 1", 0, "malformed number '12abc'"),
        ("a = 1e", 4, "malformed number '1e'"),
        ("a = 1.2.3", 4, "malformed number '1.2.3'"),
        ("a = 1e999", 4, "too large"),
        ("a = :", 4, "expected a parameter name after ':'"),
        ("a = :1", 4, "expected a parameter name"),
        ("a = -", 5, "expected a value after '-'"),
        ("a = 1 && b", 6, "use AND"),
        ("a = 1 || b", 6, "use OR"),
        ("a = 1 + ", 8, "expected a value after '+'"),
        ("a + 1", 0, "is a number, not a condition"),
        ("foo(a) = 1", 0, "unknown function 'foo'"),
        ("a = 1 -- comment", 6, "SQL comments"),
        ("détecteur = 1", 1, "unexpected 'é'"),
        ("a = `x`", 4, "identifiers are not quoted"),
        ("a = 'x''y'", 7, "escape it with a backslash"),
        ("a = 1\n  AND b = = 2", 16, "expected a value after '=' at column 16"),
    ],
)
def test_errors_point_at_the_column(text: str, position: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    exc = info.value
    assert exc.position == position, str(exc)
    assert exc.expression == text
    assert fragment in exc.reason, str(exc)
    assert f"column {position}" in exc.reason
    lines = str(exc).split("\n")
    assert lines[0] == exc.reason
    if "\n" not in text:
        # The expression, then a caret under the column.
        assert lines[1:] == [f"  {text}", "  " + " " * position + "^"]
    else:
        assert lines[-2:] == ["    AND b = = 2", "  " + " " * (position - 6) + "^"]
        assert "  (line 2)" in lines


def test_expression_error_is_a_value_error_and_pickles() -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression("a = ")
    exc = info.value
    assert isinstance(exc, DatabutlerError)
    assert isinstance(exc, ValueError)
    copy = pickle.loads(pickle.dumps(exc))
    assert (copy.reason, copy.expression, copy.position) == (exc.reason, "a = ", 4)
    assert str(copy) == str(exc)


def test_long_lines_are_shown_around_the_column() -> None:
    text = " OR ".join(f"x = {i}" for i in range(100)) + " OR x = = 1"
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    *_, shown, caret = str(info.value).split("\n")
    assert shown.startswith("  ...") and len(shown) < 100
    assert shown[caret.index("^")] == "="


def test_nesting_limit() -> None:
    deepest = "(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH
    assert parse_expression(deepest) == a
    with pytest.raises(ExpressionError, match="nested too deeply") as info:
        parse_expression("(" + deepest + ")")
    assert info.value.position == MAX_DEPTH
    negations = parse_expression("NOT " * MAX_DEPTH + "a").walk()
    assert sum(isinstance(node, Not) for node in negations) == MAX_DEPTH
    with pytest.raises(ExpressionError, match="nested too deeply") as info:
        parse_expression("NOT " * (MAX_DEPTH + 1) + "a")
    assert info.value.position == 4 * MAX_DEPTH
    with pytest.raises(ExpressionError, match="nested too deeply"):
        parse_expression("(" * 100_000)


def test_length_limit() -> None:
    flat = " OR ".join(f"a = {i}" for i in range(5000))  # long, but flat: no recursion
    assert len(flat) < MAX_LENGTH
    node = parse_expression(flat)
    assert isinstance(node, Or) and len(node.terms) == 5000
    with pytest.raises(ExpressionError, match="the limit is") as info:
        parse_expression("a = 1 OR " * (MAX_LENGTH // 9) + "a = 1")
    assert info.value.position == MAX_LENGTH


def test_huge_numbers_are_expression_errors() -> None:
    # int() refuses more than 4300 digits with a ValueError of its own.
    with pytest.raises(ExpressionError, match="too large"):
        parse_expression("a = " + "9" * 5000)


def test_the_first_mistake_is_reported() -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression("a = = 'unterminated")
    assert info.value.position == 4


def test_non_string_input() -> None:
    with pytest.raises(ExpressionError, match="must be a str"):
        parse_expression(b"a = 1")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------
# Property tests

WORDS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True).filter(
    lambda word: word.upper() not in KEYWORDS
)
ONE_LINE_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=10)
OPERATORS = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])


def condition_strategy(
    values: st.SearchStrategy[Node],
    bare: st.SearchStrategy[Node],
    list_binds: st.SearchStrategy[BindParameter],
    depth: int,
) -> st.SearchStrategy[Node]:
    """Conditions nested at most ``depth`` levels, over the given leaf values.

    ``bare`` are the leaves allowed on their own as conditions.  The depth
    bound keeps the rendered text within `MAX_DEPTH`.
    """

    def simple(operand: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
        return st.one_of(
            bare,
            st.builds(Comparison, OPERATORS, operand, operand),
            st.builds(InList, operand, st.lists(operand, min_size=1, max_size=3).map(tuple)),
            st.builds(InList, operand, st.tuples(operand), st.just(True)),
            st.builds(InBind, operand, list_binds, st.booleans()),
            st.builds(IsNull, operand, st.booleans()),
        )

    conditions = simple(values)
    for _ in range(depth):
        sub = conditions
        conditions = st.one_of(
            simple(st.one_of(values, sub)),
            st.builds(And, st.lists(sub, min_size=2, max_size=3).map(tuple)),
            st.builds(Or, st.lists(sub, min_size=2, max_size=3).map(tuple)),
            st.builds(Not, sub),
        )
    return conditions


ANY_IDENTIFIER = st.builds(Identifier, WORDS, st.none() | WORDS)
ANY_BIND = st.builds(BindParameter, WORDS)
ANY_LITERAL = st.builds(
    Literal,
    st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | ONE_LINE_TEXT,
)
ANY_CONDITION = condition_strategy(
    values=ANY_IDENTIFIER | ANY_LITERAL | ANY_BIND,
    bare=ANY_IDENTIFIER | ANY_BIND | st.builds(Literal, st.booleans()),
    list_binds=ANY_BIND,
    depth=4,
)


@settings(max_examples=300, deadline=None, database=None)
@given(ANY_CONDITION)
def test_rendered_trees_parse_back_equal(node: Node) -> None:
    text = str(node)
    parsed = parse_expression(text)
    assert parsed == node
    assert str(parsed) == text


def check_parse_or_expression_error(text: str) -> None:
    try:
        node = parse_expression(text)
    except ExpressionError as exc:
        assert exc.position is not None and 0 <= exc.position <= len(text)
        assert f"column {exc.position}" in exc.reason
        *_, caret = str(exc).split("\n")
        assert caret.strip() == "^"
    else:
        assert parse_expression(str(node)) == node


@settings(max_examples=500, deadline=None, database=None)
@given(st.text())
def test_any_text_parses_or_raises_expression_error(text: str) -> None:
    check_parse_or_expression_error(text)


FRAGMENTS = [
    "a", "visit.exposure_time", "=", "!=", "<>", "<", "<=", ">", ">=", "(", ")", ",", "AND",
    "or", "NOT", "IN", "NULL", "TRUE", "false", "'s'", '"t"', "'", '"', "\\", "1", "-", "2.5e3",
    ".", ":b", ":", ";", "IS", "é", "\n", "--", "x.", "in", "1e",
    "T'2024-01-01'", "T", "t'60000.5/mjd'", "T'x'", "/tai", "T'",
]  # fmt: skip


@settings(max_examples=500, deadline=None, database=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=16), st.sampled_from([" ", ""]))
def test_token_soup_parses_or_raises_expression_error(fragments: list[str], sep: str) -> None:
    check_parse_or_expression_error(sep.join(fragments))


# ---------------------------------------------------------------------------
# Translation to SQL


class Row(NamedTuple):
    id: int
    instrument: str | None
    detector: int | None
    exposure_time: float | None
    name: str | None
    flag: bool | None


ROWS = [
    Row(1, "HSC", 1, 30.0, "a", True),
    Row(2, "HSC", 2, 15.5, "b", False),
    Row(3, "HSC", 3, None, None, None),
    Row(4, "LSST", 1, 30.0, "it's", True),
    Row(5, "LSST", 5, 10.0, 'say "hi"', False),
    Row(6, "LSST", 8, 45.0, "x; DROP TABLE exposure; --", True),
    Row(7, "DECam", 2, 5.0, "back\\slash", False),
    Row(8, "DECam", None, 20.0, "c", True),
    Row(9, None, 4, 60.0, "d", None),
    Row(10, "HSC", 9, 0.5, "1", True),
]


class Exposures(NamedTuple):
    engine: sqlalchemy.Engine
    table: sqlalchemy.Table

    def resolve(self, identifier: Identifier) -> sqlalchemy.ColumnElement[Any]:
        if identifier.field is None and identifier.name in self.table.c:
            return self.table.c[identifier.name]
        if identifier.name == "visit" and identifier.field == "exposure_time":
            return self.table.c.exposure_time
        raise LookupError(f"no dimension or record field is called {identifier}")

    def where(self, text: str, binds: dict[str, Any] | None = None) -> sqlalchemy.Select[Any]:
        clause = to_sql(parse_expression(text), self.resolve, binds, text=text)
        return sqlalchemy.select(self.table.c.id).where(clause)

    def ids(self, text: str, binds: dict[str, Any] | None = None) -> set[int]:
        with self.engine.connect() as connection:
            return set(connection.execute(self.where(text, binds)).scalars())


@pytest.fixture(scope="module")
def exposures() -> Iterator[Exposures]:
    engine = sqlalchemy.create_engine("sqlite://")
    metadata = sqlalchemy.MetaData()
    table = sqlalchemy.Table(
        "exposure",
        metadata,
        sqlalchemy.Column("id", sqlalchemy.Integer, primary_key=True),
        sqlalchemy.Column("instrument", sqlalchemy.Text),
        sqlalchemy.Column("detector", sqlalchemy.Integer),
        sqlalchemy.Column("exposure_time", sqlalchemy.Float),
        sqlalchemy.Column("name", sqlalchemy.Text),
        sqlalchemy.Column("flag", sqlalchemy.Boolean),
    )
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(table.insert(), [row._asdict() for row in ROWS])
    yield Exposures(engine, table)
    engine.dispose()


SEMANTICS: list[tuple[str, dict[str, Any] | None, Callable[[Row], bool]]] = [
    ("", None, lambda r: True),
    (
        "instrument = 'HSC' AND detector > 1",
        None,
        lambda r: r.instrument == "HSC" and r.detector is not None and r.detector > 1,
    ),
    (
        "instrument = 'HSC' OR detector >= 5 AND exposure_time < 50",
        None,
        lambda r: (
            r.instrument == "HSC"
            or (
                r.detector is not None
                and r.detector >= 5
                and r.exposure_time is not None
                and r.exposure_time < 50
            )
        ),
    ),
    (
        "(instrument = 'HSC' OR detector >= 5) AND exposure_time < 50",
        None,
        lambda r: (
            (r.instrument == "HSC" or (r.detector is not None and r.detector >= 5))
            and r.exposure_time is not None
            and r.exposure_time < 50
        ),
    ),
    (
        "NOT instrument = 'LSST'",
        None,
        lambda r: r.instrument is not None and r.instrument != "LSST",
    ),
    ("detector IN (1, 2, 3)", None, lambda r: r.detector in (1, 2, 3)),
    (
        "detector NOT IN (1, 2, 3)",
        None,
        lambda r: r.detector is not None and r.detector not in (1, 2, 3),
    ),
    ("detector IN :dets", {"dets": [2, 8]}, lambda r: r.detector in (2, 8)),
    (
        "instrument not in :insts",
        {"insts": ("HSC",)},
        lambda r: r.instrument is not None and r.instrument != "HSC",
    ),
    ("detector IN :dets", {"dets": set()}, lambda r: False),
    ("exposure_time = NULL OR name = NULL", None, lambda r: None in (r.exposure_time, r.name)),
    (
        "visit.exposure_time != NULL AND visit.exposure_time >= :t",
        {"t": 20},
        lambda r: r.exposure_time is not None and r.exposure_time >= 20,
    ),
    (
        "name = 'it\\'s' OR name = \"say \\\"hi\\\"\" OR name = 'back\\\\slash'",
        None,
        lambda r: r.name in ("it's", 'say "hi"', "back\\slash"),
    ),
    ("name = 'x; DROP TABLE exposure; --'", None, lambda r: r.id == 6),
    ("name = '1' OR '1' = '1'", None, lambda r: True),
    ("instrument = :inst AND :flag", {"inst": "DECam", "flag": True}, lambda r: r.id in (7, 8)),
    ("instrument = :inst AND :flag", {"inst": "DECam", "flag": False}, lambda r: False),
    (
        "detector < -1 OR exposure_time > 1e1 AND NOT name IN ('c', 'd')",
        None,
        lambda r: (
            r.exposure_time is not None
            and r.exposure_time > 10
            and r.name is not None
            and r.name not in ("c", "d")
        ),
    ),
    ("flag", None, lambda r: r.flag is True),
    (
        "NOT flag OR instrument = 'DECam'",
        None,
        lambda r: r.flag is False or r.instrument == "DECam",
    ),
    ("FALSE OR detector = 9", None, lambda r: r.detector == 9),
    ("flag = (NOT FALSE)", None, lambda r: r.flag is True),
    ("(TRUE AND TRUE) != flag", None, lambda r: r.flag is False),
    (
        "flag = (detector > 2)",
        None,
        lambda r: r.flag is not None and r.detector is not None and r.flag == (r.detector > 2),
    ),
    (
        "NOT (flag != (detector > 2))",
        None,
        lambda r: r.flag is not None and r.detector is not None and r.flag == (r.detector > 2),
    ),
    # Integers against floats compare exactly; floats against integers as floats.
    ("detector < 2.5", None, lambda r: r.detector is not None and r.detector < 2.5),
    (
        "detector >= 2.5 AND detector != 8.0",
        None,
        lambda r: r.detector is not None and r.detector >= 2.5 and r.detector != 8,
    ),
    ("detector = 2.5", None, lambda r: False),
    ("NOT detector = 2.5", None, lambda r: r.detector is not None),
    ("detector != 2.5", None, lambda r: r.detector is not None),
    ("detector < 1e30 AND detector > -1e30", None, lambda r: r.detector is not None),
    ("NOT detector > 1e30", None, lambda r: r.detector is not None),
    ("exposure_time = 30", None, lambda r: r.exposure_time == 30),
    (
        "exposure_time > detector",
        None,
        lambda r: (
            r.exposure_time is not None and r.detector is not None and r.exposure_time > r.detector
        ),
    ),
    ("detector IN (1, 2.0, 2.5, :n)", {"n": 8}, lambda r: r.detector in (1, 2, 8)),
    (
        "detector NOT IN (1, 2.0, 2.5)",
        None,
        lambda r: r.detector is not None and r.detector not in (1, 2),
    ),
    ("detector IN (:dets)", {"dets": [2, 8]}, lambda r: r.detector in (2, 8)),
    ("detector IN (:dets, 9)", {"dets": (2,)}, lambda r: r.detector in (2, 9)),
    ("detector IN (:empty)", {"empty": []}, lambda r: False),
    ("detector NOT IN (:empty)", {"empty": []}, lambda r: True),
    ("1 IN (detector, 9)", None, lambda r: r.detector == 1 or False),
    ("1 = 1 AND 'a' < 'b' AND 2 > 1.5", None, lambda r: True),
    ("'b' < 'a' OR 1 = 2", None, lambda r: False),
    # Strings order by code point on every backend.
    ("name < 'b'", None, lambda r: r.name is not None and r.name < "b"),
    ("instrument >= 'HSC'", None, lambda r: r.instrument is not None and r.instrument >= "HSC"),
    ("name = NULL OR 1 = NULL", None, lambda r: r.name is None),
    ("name != NULL AND 'x' != NULL", None, lambda r: r.name is not None),
]


@pytest.mark.parametrize(("text", "binds", "predicate"), SEMANTICS, ids=[s[0] for s in SEMANTICS])
def test_expressions_select_the_expected_rows(
    exposures: Exposures,
    text: str,
    binds: dict[str, Any] | None,
    predicate: Callable[[Row], bool],
) -> None:
    assert exposures.ids(text, binds) == {row.id for row in ROWS if predicate(row)}
    # The table survived, whatever the strings said.
    assert exposures.ids("") == {row.id for row in ROWS}


def test_values_are_bound_not_spliced(exposures: Exposures) -> None:
    text = "name = 'x; DROP TABLE exposure; --' OR instrument IN ('HSC', 'LSST') OR name = :n"
    sql = str(exposures.where(text, {"n": "BOUND"}).compile(exposures.engine))
    for value in ("DROP", "HSC", "LSST", "BOUND"):
        assert value not in sql
    assert exposures.ids(text, {"n": "c"}) == {1, 2, 3, 4, 5, 6, 8, 10}


def test_deepest_expressions_run_on_sqlite(exposures: Exposures) -> None:
    shapes = [
        "TRUE = (" * MAX_DEPTH + "detector = 1" + ")" * MAX_DEPTH,
        "flag IN ((" * MAX_DEPTH + "flag" + "))" * MAX_DEPTH,
        "(" * MAX_DEPTH + "detector = 1 OR name = 'a'" + ")" * MAX_DEPTH,
        "NOT " * MAX_DEPTH + "flag",
        "NOT (detector = 1 AND " * (MAX_DEPTH // 2) + "name = 'a'" + ")" * (MAX_DEPTH // 2),
        "".join(f"(detector = {i} {'AND' if i % 2 else 'OR'} " for i in range(MAX_DEPTH))
        + "detector = 1"
        + ")" * MAX_DEPTH,
    ]
    table = exposures.table
    for text in shapes:
        inner = exposures.where(text)
        # Inside two levels of subquery, as a registry query may put it.
        outer = sqlalchemy.select(sqlalchemy.func.count()).where(
            table.c.id.in_(sqlalchemy.select(table.c.id).where(table.c.id.in_(inner)))
        )
        with exposures.engine.connect() as connection:
            connection.execute(outer).scalar_one()


def test_empty_expression_is_sql_true(exposures: Exposures) -> None:
    clause = to_sql(parse_expression(""), exposures.resolve)
    assert str(clause) == "true"


def test_unknown_bind_is_named_with_the_known_ones(exposures: Exposures) -> None:
    with pytest.raises(ExpressionError) as info:
        exposures.where("detector = :det", {"dets": [1], "inst": "HSC"})
    assert info.value.position == 11
    assert ":det " in info.value.reason and ":dets, :inst" in info.value.reason
    with pytest.raises(ExpressionError, match="none were given"):
        exposures.where("detector = :det")


@pytest.mark.parametrize("value", ["HSC", 3])
def test_in_bind_needs_a_collection(exposures: Exposures, value: Any) -> None:
    with pytest.raises(ExpressionError, match="must be a list, tuple or set") as info:
        exposures.where("instrument IN :insts", {"insts": value})
    assert info.value.position == 14


@pytest.mark.parametrize(("value", "fragment"), [(None, "is None"), ({"a": 1}, "is a dict")])
def test_bind_values_of_other_types_are_refused(
    exposures: Exposures, value: Any, fragment: str
) -> None:
    with pytest.raises(ExpressionError, match=fragment) as info:
        exposures.where("detector = 1 OR instrument IN :insts", {"insts": value})
    assert info.value.position == 30


def test_bare_bind_needs_a_boolean(exposures: Exposures) -> None:
    with pytest.raises(ExpressionError, match="must be True or False") as info:
        exposures.where("detector = 1 AND :flag", {"flag": 1})
    assert info.value.position == 17


def test_unknown_identifier_points_at_it(exposures: Exposures) -> None:
    with pytest.raises(ExpressionError) as info:
        exposures.where("detector = 1 AND visit.seeing < 2")
    exc = info.value
    assert exc.position == 17
    assert "visit.seeing" in exc.reason and "no dimension or record field" in exc.reason
    assert isinstance(exc.__cause__, LookupError)
    assert str(exc).split("\n")[-1] == "  " + " " * 17 + "^"


def test_resolver_expression_errors_propagate() -> None:
    error = ExpressionError("not allowed here")

    def resolve(identifier: Identifier) -> sqlalchemy.ColumnElement[Any]:
        raise error

    with pytest.raises(ExpressionError) as info:
        to_sql(parse_expression("a = 1"), resolve)
    assert info.value is error


def test_a_value_is_not_a_condition(exposures: Exposures) -> None:
    with pytest.raises(ExpressionError, match="not a condition"):
        to_sql(Literal(3), exposures.resolve)


def test_identifiers_and_bind_names() -> None:
    node = parse_expression(
        "visit.exposure_time > :t AND detector IN (1, :d) AND detector != NULL "
        "AND instrument NOT IN :insts OR :flag"
    )
    assert identifiers(node) == {
        Identifier("visit", "exposure_time"),
        Identifier("detector"),
        Identifier("instrument"),
    }
    assert bind_names(node) == {"t", "d", "insts", "flag"}
    assert identifiers(parse_expression("")) == set()


MARKER = "ZQXMARK"
SQL_IDENTIFIERS = st.sampled_from(
    [Identifier(name) for name in ("instrument", "detector", "exposure_time", "name")]
    + [Identifier("visit", "exposure_time")]
)
SQL_LITERALS = st.builds(
    Literal,
    st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | ONE_LINE_TEXT.map(lambda s: MARKER + s),
)
SQL_BINDS = {
    "n": 3,
    "x": 2.5,
    "s": MARKER + "bound'; DROP TABLE exposure; --",
    "flag": True,
    "dets": [1, 2],
    "names": (MARKER + "a", MARKER + "b"),
    "empty": [],
}
SQL_CONDITIONS = condition_strategy(
    values=SQL_IDENTIFIERS | SQL_LITERALS | st.sampled_from("nxs").map(BindParameter),
    bare=SQL_IDENTIFIERS | st.just(BindParameter("flag")) | st.builds(Literal, st.booleans()),
    list_binds=st.sampled_from(["dets", "names", "empty"]).map(BindParameter),
    depth=3,
)


@settings(max_examples=250, deadline=None, database=None)
@given(node=SQL_CONDITIONS)
def test_generated_conditions_run_with_values_bound(exposures: Exposures, node: Node) -> None:
    try:
        clause = to_sql(node, exposures.resolve, SQL_BINDS)
    except ExpressionError:
        return  # ill-typed (an integer compared with a string, say): refused before SQL
    statement = sqlalchemy.select(sqlalchemy.func.count()).select_from(exposures.table)
    statement = statement.where(clause)
    sql = str(statement.compile(exposures.engine))
    assert MARKER not in sql
    with exposures.engine.connect() as connection:
        count = connection.execute(statement).scalar_one()
    assert 0 <= count <= len(ROWS)


def test_reserved_words() -> None:
    assert queries.KEYWORDS == KEYWORDS


def test_all_is_complete() -> None:
    public = {
        name
        for name in dir(queries)
        if not name.startswith("_") and name not in ("builder", "expression", "sql")
    }
    assert set(queries.__all__) == public


def test_strings_are_ordered_by_code_point_on_postgresql(exposures: Exposures) -> None:
    clause = to_sql(parse_expression("name < 'b' AND name = 'c'"), exposures.resolve)
    from sqlalchemy.dialects import postgresql

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    assert str(clause.compile(dialect=dialect)).count('COLLATE "C"') == 2
    assert "COLLATE" not in str(clause.compile(exposures.engine))


def test_in_list_items_are_checked_where_they_are(exposures: Exposures) -> None:
    with pytest.raises(ExpressionError, match="cannot compare 'detector'") as info:
        exposures.where("detector IN (1, 2, 'x')")
    assert info.value.position == 19
    with pytest.raises(ExpressionError, match=r"can only follow IN; write x IN \(:d\)") as info:
        exposures.where("detector = :d", {"d": [1]})
    assert info.value.position == 11


def test_long_chains_become_in_lists_or_groups(exposures: Exposures) -> None:
    chain = " OR ".join(f"detector = {i}" for i in range(3000))
    sql = str(exposures.where(chain).compile(exposures.engine))
    assert sql.count(" IN ") == 1 and " OR " not in sql
    mixed = " OR ".join(f"detector = {i} AND name != 'n{i}'" for i in range(2000))
    assert exposures.ids(mixed) == {r.id for r in ROWS if r.detector is not None and r.name}
    negated = " AND ".join(f"detector != {i}" for i in range(3, 3000))
    assert exposures.ids(negated) == {
        r.id for r in ROWS if r.detector is not None and r.detector < 3
    }


# -- integer ranges and strides ---------------------------------------------------------------


def test_ranges_parse_into_range_literals() -> None:
    detector = Identifier("detector")
    assert parse_expression("detector IN (1..5)") == InList(detector, (RangeLiteral(1, 5),))
    assert parse_expression("detector IN (1..10:2)") == InList(detector, (RangeLiteral(1, 10, 2),))
    assert parse_expression("detector IN (1, 3..5, 9)") == InList(
        detector, (lit(1), RangeLiteral(3, 5), lit(9))
    )
    assert parse_expression("detector not in (-10 .. -1 : 3)") == InList(
        detector, (RangeLiteral(-10, -1, 3),), negated=True
    )
    node = parse_expression("x IN (:a, 7..7, 1)")
    assert isinstance(node, InList)
    assert node.items[1] == RangeLiteral(7, 7)
    assert node.items[1].position == 10
    assert list(RangeLiteral(1, 10, 3).values()) == [1, 4, 7, 10]


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("x IN (1..5)", "x IN (1..5)"),
        ("x IN (1..10:1)", "x IN (1..5)".replace("5", "10")),
        ("x NOT IN (0 .. 8 :4, 9)", "x NOT IN (0..8:4, 9)"),
        ("x IN (-3..-1)", "x IN (-3..-1)"),
    ],
)
def test_ranges_render_and_parse_back(text: str, rendered: str) -> None:
    node = parse_expression(text)
    assert str(node) == rendered
    assert parse_expression(rendered) == node


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("x IN (5..1)", 6, "the range 5..1 at column 6 is empty"),
        ("x IN (5..1)", 6, "write 1..5"),
        ("x IN (1..10:0)", 12, "stride 0 at column 12"),
        ("x IN (1..10:-2)", 12, "negative stride at column 12; a stride is 1 or more"),
        ("x IN (1..10:2.5)", 12, "a stride is a whole number"),
        ("x IN (1..10:b)", 11, "expected a stride after ':' at column 11, found a name"),
        ("x IN (1.5..3)", 6, "the start of a range must be a whole number"),
        ("x IN (1..3.5)", 9, "the end of a range must be a whole number"),
        ("x IN (1..'a')", 9, "the end of a range must be a whole number"),
        ("x IN (a..3)", 8, "expected a field name after 'a.'"),
        ("x IN (1..)", 9, "expected the end of the range after '..'"),
        ("x = 1..5", 5, "ranges are items of an IN list"),
        ("x IN (1:5)", 7, "expected ',' or ')' in the IN list"),
        ("x IN (TRUE..3)", 6, "reserved word"),
    ],
)
def test_range_errors_point_at_the_column(text: str, position: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    assert info.value.position == position, str(info.value)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "make",
    [
        lambda: RangeLiteral(5, 1),
        lambda: RangeLiteral(1, 5, 0),
        lambda: RangeLiteral(1, 5, -1),
        lambda: RangeLiteral(True, 5),  # type: ignore[arg-type]
        lambda: RangeLiteral(1.0, 5),  # type: ignore[arg-type]
    ],
)
def test_range_literals_that_cannot_be_written_are_refused(make: Callable[[], Node]) -> None:
    with pytest.raises((TypeError, ValueError)):
        make()


RANGES: list[tuple[str, Callable[[Row], bool]]] = [
    ("detector IN (1..3)", lambda r: r.detector in range(1, 4)),
    ("detector IN (1..9:4)", lambda r: r.detector in (1, 5, 9)),
    ("detector IN (2..8:3)", lambda r: r.detector in (2, 5, 8)),
    ("detector NOT IN (2..5)", lambda r: r.detector is not None and r.detector not in (2, 3, 4, 5)),
    ("detector IN (1, 4..5, 9)", lambda r: r.detector in (1, 4, 5, 9)),
    ("detector IN (-3..3:2)", lambda r: r.detector in (-3, -1, 1, 3)),
    ("detector IN (-9..-1)", lambda r: False),
    ("detector IN (9..9)", lambda r: r.detector == 9),
    ("NOT detector IN (1..8:7)", lambda r: r.detector is not None and r.detector not in (1, 8)),
    ("detector IN (3..4:5) OR instrument = 'DECam'", lambda r: r.detector == 3 or r.id in (7, 8)),
    ("3 IN (1..5:2) AND detector = 2", lambda r: r.detector == 2),
    ("4 IN (1..5:2) OR detector = 2", lambda r: r.detector == 2),
]


@pytest.mark.parametrize(("text", "predicate"), RANGES, ids=[r[0] for r in RANGES])
def test_ranges_select_the_expected_rows(
    exposures: Exposures, text: str, predicate: Callable[[Row], bool]
) -> None:
    assert exposures.ids(text) == {row.id for row in ROWS if predicate(row)}


def test_ranges_need_an_integer_operand(exposures: Exposures) -> None:
    with pytest.raises(ExpressionError, match=r"'exposure_time' \(a float\) is not one") as info:
        exposures.where("exposure_time IN (1..3)")
    assert info.value.position == 18
    with pytest.raises(ExpressionError, match=r"'name' \(a string\) is not one"):
        exposures.where("name NOT IN ('a', 1..3)")
    with pytest.raises(ExpressionError, match="a condition"):
        exposures.where("(detector = 1) IN (0..1)")
    with pytest.raises(ExpressionError, match="does not fit in a signed 64-bit integer"):
        exposures.where("detector IN (1..9223372036854775808)")


@pytest.fixture(scope="module")
def integers() -> Iterator[tuple[sqlalchemy.Engine, sqlalchemy.Table]]:
    engine = sqlalchemy.create_engine("sqlite://")
    metadata = sqlalchemy.MetaData()
    table = sqlalchemy.Table("numbers", metadata, sqlalchemy.Column("x", sqlalchemy.BigInteger))
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(table.insert(), [{"x": x} for x in range(-40, 41)] + [{"x": None}])
    yield engine, table
    engine.dispose()


@settings(max_examples=200, deadline=None, database=None)
@given(
    st.integers(-45, 45),
    st.integers(0, 60),
    st.integers(1, 12),
    st.booleans(),
)
def test_ranges_match_python_ranges(
    integers: tuple[sqlalchemy.Engine, sqlalchemy.Table],
    start: int,
    length: int,
    stride: int,
    negated: bool,
) -> None:
    engine, table = integers
    text = f"x {'NOT IN' if negated else 'IN'} ({start}..{start + length}:{stride})"
    clause = to_sql(parse_expression(text), lambda identifier: table.c[identifier.name])
    with engine.connect() as connection:
        found = set(connection.execute(sqlalchemy.select(table.c.x).where(clause)).scalars())
    members = set(range(start, start + length + 1, stride))
    expected = {x for x in range(-40, 41) if (x in members) != negated}
    assert found == expected, text


ANY_RANGE = st.builds(
    lambda start, length, stride: RangeLiteral(start, start + length, stride),
    st.integers(-(2**40), 2**40),
    st.integers(0, 2**20),
    st.integers(1, 1000),
)


@settings(max_examples=200, deadline=None, database=None)
@given(st.lists(ANY_LITERAL | ANY_RANGE, min_size=1, max_size=4), st.booleans())
def test_in_lists_with_ranges_parse_back_equal(items: list[Node], negated: bool) -> None:
    node = InList(Identifier("x"), tuple(items), negated)
    assert parse_expression(str(node)) == node


# ---------------------------------------------------------------------------
# Time literals


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, us: int = 0
) -> datetime.datetime:
    return datetime.datetime(year, month, day, hour, minute, second, us)  # naive: UTC


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("T'2026-11-29T12:00:00'", utc(2026, 11, 29, 12)),
        ("T'2026-11-29 12:00:00'", utc(2026, 11, 29, 12)),
        ("t'2026-11-29'", utc(2026, 11, 29)),
        ('T"2026-11-29T12:00"', utc(2026, 11, 29, 12)),
        ("T'2026-11-29T12:00:00.25'", utc(2026, 11, 29, 12, 0, 0, 250000)),
        ("T'2026-11-29T12:00:00.1234567'", utc(2026, 11, 29, 12, 0, 0, 123457)),
        ("T'2026-11-29T12:00:00Z'", utc(2026, 11, 29, 12)),
        ("T'2026-11-29T12:00:00+00:00'", utc(2026, 11, 29, 12)),
        ("T'isot/2026-11-29T12:00:00/utc'", utc(2026, 11, 29, 12)),
        # TAI is 37 s ahead of UTC since 2017, 36 s before.
        ("T'2026-11-29T12:00:37/tai'", utc(2026, 11, 29, 12)),
        ("T'2016-12-31T23:59:59/tai'", utc(2016, 12, 31, 23, 59, 23)),
        ("T'2026-11-29T12:01:09.184/tt'", utc(2026, 11, 29, 12)),
        # MJD (TAI unless told): 60000.5 is 2023-02-25 12:00 TAI.
        ("T'60000.5'", utc(2023, 2, 25, 11, 59, 23)),
        ("T'mjd/60000.5'", utc(2023, 2, 25, 11, 59, 23)),
        ("T'60000.5/mjd'", utc(2023, 2, 25, 11, 59, 23)),
        ("T'mjd/60000.5/utc'", utc(2023, 2, 25, 12)),
        ("T'60000.25/mjd/utc'", utc(2023, 2, 25, 6)),
        ("T'jd/2460000.5/utc'", utc(2023, 2, 25)),
        ("T'unix/1764417600'", utc(2025, 11, 29, 12)),
        ("T'unix/0.5'", utc(1970, 1, 1, 0, 0, 0, 500000)),
    ],
)
def test_time_literals(text: str, value: datetime.datetime) -> None:
    node = parse_expression(f"x > {text}")
    assert node == Comparison(">", Identifier("x"), TimeLiteral(value))
    assert isinstance(node, Comparison) and node.right.position == 4
    # Written back as UTC ISO text, which parses to the same instant.
    assert parse_expression(str(node)) == node


def test_time_literals_in_lists_and_render() -> None:
    node = parse_expression("x IN (T'2024-01-01', T'2024-01-02T00:00:37/tai') AND t = 1")
    assert str(node) == ("x IN (T'2024-01-01T00:00:00', T'2024-01-02T00:00:00') AND t = 1")
    # T alone, or T before anything but a quote, is still a name.
    assert parse_expression("T = 1") == Comparison("=", Identifier("T"), Literal(1))
    assert parse_expression("T.x = T") == Comparison("=", Identifier("T", "x"), Identifier("T"))


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("x > T'2026-13-01'", 4, "not a valid date and time (month must be in 1..12)"),
        ("x > T'2026-11-31'", 4, "day is out of range"),
        ("x > T'2026-11-29T25:00'", 4, "hour must be in 0..23"),
        ("x > T'yesterday'", 4, "is not an ISO date and time"),
        ("x > T''", 4, "is not [format/]value[/scale]"),
        ("x > T'60000.5/ut1'", 4, "unknown time scale 'ut1'; use utc, tai or tt"),
        ("x > T'fits/2026-11-29'", 4, "unknown time format 'fits'; use iso, isot, mjd, jd or unix"),
        ("x > T'mjd/2026-11-29'", 4, "is not a number, as the mjd format needs"),
        ("x > T'2026-11-29T12:00+01:00'", 4, "has a UTC offset; give it in UTC"),
        ("x > T'1960-01-01/tai'", 4, "a TAI time before 1972"),
        ("x > T'99999999/mjd'", 4, "outside the years 1 to 9999"),
        ("x > T'2026-11-29", 5, "unterminated string"),
        ("T'2026-11-29'", 0, "is a time, not a condition"),
        ("x = 1 OR T'2026-11-29'", 9, "is a time, not a condition"),
        ("x IN (T'2026-11-29'..T'2026-11-30')", 6, "the start of a range must be a whole number"),
    ],
)
def test_time_literal_errors(text: str, position: int, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    assert info.value.position == position, str(info.value)
    assert fragment in info.value.reason, info.value.reason


def test_time_literal_node_refuses_aware_and_other_values() -> None:
    with pytest.raises(TypeError, match="naive UTC datetime"):
        TimeLiteral(datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC))
    with pytest.raises(TypeError, match="naive UTC datetime"):
        TimeLiteral("2024-01-01")  # type: ignore[arg-type]
