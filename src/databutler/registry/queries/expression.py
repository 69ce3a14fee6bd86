"""The ``where`` expression language: tokenizer, parser and syntax tree.

A ``where`` string constrains a registry query by comparing dimension keys,
record fields, literals and bind parameters::

    instrument = 'HSC' AND detector IN (1, 2, 3) AND NOT visit.exposure_time < 15.5

`parse_expression` turns such a string into an immutable tree of `Node`
objects; `databutler.registry.queries.to_sql` turns the tree into SQL in which
every value is a bound parameter.  Nothing in the input is ever spliced into
SQL text, and anything the grammar does not accept raises `ExpressionError`,
pointing at the column where the input went wrong.

Grammar (keywords are case-insensitive)::

    expr       := or_expr
    or_expr    := and_expr ( OR and_expr )*
    and_expr   := not_expr ( AND not_expr )*
    not_expr   := NOT not_expr | predicate
    predicate  := arith cmp arith
                | arith OVERLAPS arith
                | arith [NOT] IN '(' item ( ',' item )* ')'
                | arith [NOT] IN bind
                | arith       -- a condition: an identifier, bind, TRUE, FALSE, GLOB(...)
                              -- or '(' expr ')'
    item       := arith | range
    range      := ['-'] integer '..' ['-'] integer [ ':' integer ]   -- 1..5, 1..10:2
    cmp        := '=' | '!=' | '<>' | '<' | '<=' | '>' | '>='
    arith      := term ( ( '+' | '-' ) term )*
    term       := operand ( ( '*' | '/' | '%' ) operand )*
    operand    := '-' operand | number | string | time | TRUE | FALSE | NULL
                | identifier | bind | GLOB '(' arith ',' arith ')'
                | '(' expr ')' | timespan
    timespan   := '(' bound ',' bound ')'      -- bound := time | bind | NULL
    time       := T'[format/]value[/scale]'  -- T'2026-11-29T12:00:00', T'mjd/61008.5/tai'
    identifier := word [ '.' word ]       -- word := [A-Za-z_][A-Za-z0-9_]*
    bind       := ':' word
    number     := 12 | 1.5 | .5 | 2e-3 | 1.5E+10
    string     := '...' | "..."           -- escapes: \\ and the enclosing quote

``NULL`` may only appear on one side of ``=`` (meaning ``IS NULL``) or of
``!=``/``<>`` (meaning ``IS NOT NULL``), and as a bound of a timespan
(unbounded).  The `KEYWORDS` are reserved and cannot name a dimension or a
field.  A string cannot span lines.  Arithmetic has daf_butler's precedence
(unary minus, then ``* / %``, then ``+ -``, left to right, all before the
comparisons); ``-`` before a number is part of the number.  ``--`` is refused
(it reads like an SQL comment).  ``GLOB`` is the one function.  An empty
expression means "no constraint" and parses to ``Literal(True)``.

A bind parameter may also be an item of an ``IN`` list, ``x IN (:values)``
(daf_butler's spelling); a list, tuple or set bound to it is spliced in.

Parsing checks only the grammar.  Types are checked when the tree is
translated (`databutler.registry.queries.to_sql`), against the columns the
identifiers name: comparisons need operands of one kind (numbers, strings,
booleans, datetimes), a condition must be boolean, literals and bind values
must fit every backend.

Every node records ``position``, the 0-based column where it starts in the
text.  Errors point at a column the same way; parentheses, ``NOT`` and
arithmetic operators (a chain ``a + b + c`` nests one level per operator) may
nest at most `MAX_DEPTH` deep, and an expression is at most `MAX_LENGTH`
characters long.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

__all__ = [
    "KEYWORDS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "And",
    "BinaryOperation",
    "BindParameter",
    "Comparison",
    "ComparisonOperator",
    "ExpressionError",
    "Glob",
    "Identifier",
    "InBind",
    "InList",
    "IsNull",
    "Literal",
    "LiteralValue",
    "Negative",
    "Node",
    "Not",
    "Or",
    "Overlaps",
    "RangeLiteral",
    "TimeLiteral",
    "TimespanLiteral",
    "parse_expression",
]


from ._errors import (
    KEYWORDS,
    MAX_DEPTH,
    MAX_LENGTH,
    ComparisonOperator,
    ExpressionError,
    LiteralValue,
)
from ._nodes import (
    And,
    BinaryOperation,
    BindParameter,
    Comparison,
    Glob,
    Identifier,
    InBind,
    InList,
    IsNull,
    Literal,
    Negative,
    Node,
    Not,
    Or,
    Overlaps,
    RangeLiteral,
    TimeLiteral,
    TimespanLiteral,
)
from ._tokenizer import (
    _BIND,
    _END,
    _KEYWORD,
    _NUMBER_TOKEN,
    _OPERATOR,
    _RANGE,
    _STRIDE,
    _STRING,
    _TIME,
    _WORD_TOKEN,
    _Token,
    _Tokenizer,
)

# ---------------------------------------------------------------------------
# Parser


@dataclass(frozen=True, slots=True)
class _Null:
    """The NULL keyword, which only a comparison with = or != may use."""

    position: int


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokenizer = _Tokenizer(text)
        # Tokens are read on demand, so that the first mistake in the text is the one reported.
        self.tokens: list[_Token] = []
        self.index = 0

    def error(self, position: int, reason: str) -> ExpressionError:
        return ExpressionError(reason, self.text, position)

    def peek(self, ahead: int = 0) -> _Token:
        tokens = self.tokens
        while len(tokens) <= self.index + ahead and not (tokens and tokens[-1].kind == _END):
            tokens.append(self.tokenizer.token_at(tokens[-1].end if tokens else 0))
        return tokens[min(self.index + ahead, len(tokens) - 1)]

    def advance(self) -> _Token:
        token = self.peek()
        if token.kind != _END:
            self.index += 1
        return token

    def is_keyword(self, token: _Token, keyword: str) -> bool:
        return token.kind == _KEYWORD and token.value == keyword

    def parse(self) -> Node:
        if self.peek().kind == _END:
            return Literal(True, position=0)
        first = self.peek()
        node = self.or_expr(0, "a condition")
        token = self.peek()
        if token.kind != _END:
            raise self.unexpected(token)
        return self.condition(node, first)

    def unexpected(self, token: _Token) -> ExpressionError:
        """An error for a token found after a complete condition."""
        where = f"unexpected {token.describe()} at column {token.position}"
        previous = self.tokens[self.index - 1] if self.index > 0 else None
        word = token.text.upper() if token.kind == _WORD_TOKEN else ""
        if token.kind == ")":
            hint = "there is no '(' for it to close"
        elif token.kind in (_RANGE, _STRIDE):
            hint = "ranges are items of an IN list, as in detector IN (1..5) or (1..10:2)"
        elif token.kind == "-" and self.text[token.end : token.end + 1] == "-":
            hint = "SQL comments (--) are not part of the language"
        elif token.kind == _OPERATOR:
            hint = "comparisons cannot be chained; join them with AND or OR"
        elif word == "IS":
            hint = "test for NULL with '= NULL' or '!= NULL'"
        elif word in ("LIKE", "BETWEEN", "ILIKE"):
            hint = (
                f"{word} is not supported; use comparisons joined with AND or OR, or "
                "GLOB(field, 'pattern*') for patterns"
            )
        elif (
            token.kind == _STRING
            and previous is not None
            and previous.kind == _STRING
            and previous.end == token.position
        ):
            hint = "to put a quote inside a string, escape it with a backslash, as in 'it\\'s'"
        else:
            hint = "join conditions with AND or OR"
        return self.error(token.position, f"{where} — {hint}")

    def enter(self, depth: int, token: _Token) -> int:
        if depth >= MAX_DEPTH:
            raise self.error(
                token.position,
                f"expression nested too deeply at column {token.position} "
                f"(more than {MAX_DEPTH} levels of parentheses, NOT and arithmetic operators); "
                "simplify it",
            )
        return depth + 1

    def or_expr(self, depth: int, expected: str, value_ok: bool = False) -> Node | _Null:
        """``and_expr (OR and_expr)*``; with ``value_ok`` (inside parentheses) a lone term
        may be a value rather than a condition, as in ``(exposure + 1) * 2``."""
        first = self.peek()
        terms = [self.and_expr(depth, expected, value_ok)]
        while self.is_keyword(self.peek(), "OR"):
            self.advance()
            terms.append(self.and_expr(depth, "a condition after OR"))
        if len(terms) == 1:
            return terms[0]
        head = self.condition(terms[0], first)
        return Or((head, *terms[1:]), position=first.position)  # type: ignore[arg-type]

    def and_expr(self, depth: int, expected: str, value_ok: bool = False) -> Node | _Null:
        first = self.peek()
        terms = [self.not_expr(depth, expected, value_ok)]
        while self.is_keyword(self.peek(), "AND"):
            self.advance()
            terms.append(self.not_expr(depth, "a condition after AND"))
        if len(terms) == 1:
            return terms[0]
        head = self.condition(terms[0], first)
        return And((head, *terms[1:]), position=first.position)  # type: ignore[arg-type]

    def not_expr(self, depth: int, expected: str, value_ok: bool = False) -> Node | _Null:
        token = self.peek()
        if self.is_keyword(token, "NOT"):
            self.advance()
            term = self.not_expr(self.enter(depth, token), "a condition after NOT")
            assert not isinstance(term, _Null)
            return Not(term, position=token.position)
        return self.predicate(depth, expected, value_ok)

    def predicate(self, depth: int, expected: str, value_ok: bool = False) -> Node | _Null:
        start = self.peek()
        left = self.arith(depth, expected)
        token = self.peek()
        if token.kind == _OPERATOR:
            self.advance()
            right = self.arith(depth, f"a value after '{token.text}'")
            return self.comparison(start, token, left, right)
        if self.is_keyword(token, "OVERLAPS"):
            self.advance()
            lhs = self.value(left, "the left of OVERLAPS")
            rhs = self.value(
                self.arith(depth, "a timespan or a time after OVERLAPS"), "the right of OVERLAPS"
            )
            return Overlaps(lhs, rhs, position=start.position)
        negated = False
        if self.is_keyword(token, "NOT"):
            if not self.is_keyword(self.peek(1), "IN"):
                raise self.error(
                    self.peek(1).position,
                    f"expected IN after NOT at column {self.peek(1).position}, found "
                    f"{self.peek(1).describe()} — to negate a condition, put NOT before it",
                )
            self.advance()
            token = self.peek()
            negated = True
        if self.is_keyword(token, "IN"):
            self.advance()
            operand = self.value(left, "the left of IN")
            return self.in_rest(start, operand, negated, depth)
        return left if value_ok else self.condition(left, start)

    def condition(self, node: Node | _Null, start: _Token) -> Node:
        if isinstance(node, _Null):
            raise self.error(
                start.position,
                f"NULL at column {start.position} is not a condition; "
                "test a value with 'x = NULL' or 'x != NULL'",
            )
        if isinstance(node, TimeLiteral):
            raise self.error(
                start.position,
                f"{start.text} at column {start.position} is a time, not a condition; "
                "compare a datetime field with it, as in exposure.datetime_begin > "
                f"{start.text}",
            )
        if isinstance(node, TimespanLiteral):
            raise self.error(
                start.position,
                f"{node} at column {start.position} is a timespan, not a condition; "
                f"test it with OVERLAPS, as in exposure.timespan OVERLAPS {node}",
            )
        if isinstance(node, BinaryOperation | Negative):
            raise self.error(
                start.position,
                f"{node} at column {start.position} is a number, not a condition; "
                "compare it with =, !=, <, <=, >, >= or IN",
            )
        if isinstance(node, Literal) and not isinstance(node.value, bool):
            kind = "a string" if isinstance(node.value, str) else "a number"
            raise self.error(
                start.position,
                f"{node} at column {start.position} is {kind}, not a condition; "
                "compare it with =, !=, <, <=, >, >= or IN",
            )
        return node

    def value(self, node: Node | _Null, where: str) -> Node:
        if isinstance(node, _Null):
            raise self.error(
                node.position,
                f"NULL is not allowed at column {node.position} ({where}); "
                "test for NULL with 'x = NULL' or 'x != NULL'",
            )
        return node

    def comparison(
        self, start: _Token, op: _Token, left: Node | _Null, right: Node | _Null
    ) -> Node:
        if isinstance(left, _Null) or isinstance(right, _Null):
            if isinstance(left, _Null) and isinstance(right, _Null):
                raise self.error(
                    right.position,
                    f"NULL {op.text} NULL at column {right.position} is "
                    "never true; compare a value with NULL",
                )
            if op.value not in ("=", "!="):
                raise self.error(
                    op.position,
                    f"'{op.text}' at column {op.position} cannot compare with NULL; "
                    "use '= NULL' (is null) or '!= NULL' (is not null)",
                )
            operand = right if isinstance(left, _Null) else left
            assert not isinstance(operand, _Null)
            return IsNull(operand, op.value == "!=", position=start.position)
        return Comparison(op.value, left, right, position=start.position)

    def in_rest(self, start: _Token, operand: Node, negated: bool, depth: int) -> Node:
        token = self.advance()
        if token.kind == _BIND:
            bind = BindParameter(token.value, position=token.position)
            return InBind(operand, bind, negated, position=start.position)
        if token.kind != "(":
            raise self.error(
                token.position,
                f"expected '(' or a :bind after IN at column {token.position}, found "
                f"{token.describe()}; write x IN (1, 2) or x IN :values",
            )
        if self.peek().kind == ")":
            position = self.peek().position
            raise self.error(
                position, f"empty IN list at column {position}; an IN list needs at least one value"
            )
        items = [self.list_item(depth, "a value in the IN list")]
        while True:
            separator = self.advance()
            if separator.kind == ")":
                return InList(operand, tuple(items), negated, position=start.position)
            if separator.kind != ",":
                raise self.error(
                    separator.position,
                    f"expected ',' or ')' in the IN list opened at column {token.position}, "
                    f"found {separator.describe()} at column {separator.position}",
                )
            items.append(self.list_item(depth, "a value after ','"))

    def list_item(self, depth: int, expected: str) -> Node:
        """A value of an IN list, or a range ``start..stop[:stride]``."""
        first = self.peek()
        item = self.value(self.arith(depth, expected), "inside an IN list")
        if self.peek().kind != _RANGE:
            return item
        self.advance()
        start = self.range_end(item, first, "start")
        end_token = self.peek()
        end = self.value(self.arith(depth, "the end of the range after '..'"), "in a range")
        stop = self.range_end(end, end_token, "end")
        stride = 1
        if self.peek().kind == _BIND:  # 1..10:step
            token = self.peek()
            raise self.error(
                token.position,
                f"expected a stride after ':' at column {token.position}, found a name; a stride "
                "is a whole number, 1 or more, as in 1..10:2",
            )
        if self.peek().kind == _STRIDE:
            self.advance()
            token = self.advance()
            if token.kind == "-":
                raise self.error(
                    token.position,
                    f"negative stride at column {token.position}; a stride is 1 or more and "
                    f"ranges count up: write {start}..{stop}:2 (both ends included)",
                )
            if token.kind != _NUMBER_TOKEN or not isinstance(token.value, int):
                raise self.error(
                    token.position,
                    f"expected a stride after ':' at column {token.position}, found "
                    f"{token.describe()}; a stride is a whole number, 1 or more, as in 1..10:2",
                )
            stride = token.value
            if stride < 1:
                raise self.error(
                    token.position,
                    f"stride {stride} at column {token.position} would never reach the end of "
                    f"the range; a stride is 1 or more, as in {start}..{stop}:2",
                )
        if stop < start:
            raise self.error(
                first.position,
                f"the range {start}..{stop} at column {first.position} is empty: a range counts "
                f"up from its start to its end (both included); write {stop}..{start}",
            )
        return RangeLiteral(start, stop, stride, position=first.position)

    def range_end(self, node: Node, token: _Token, which: str) -> int:
        if isinstance(node, Literal) and type(node.value) is int:
            return node.value
        raise self.error(
            token.position,
            f"the {which} of a range must be a whole number, found {token.describe()} at "
            f"column {token.position}; write ranges as 1..5 or 1..10:2",
        )

    def arith(self, depth: int, expected: str) -> Node | _Null:
        """``term (('+' | '-') term)*``; terms are ``factor (('*' | '/' | '%') factor)*``."""
        left = self.term(depth, expected)
        while self.peek().kind in ("+", "-"):
            op = self.advance()
            depth = self.enter(depth, op)  # a chain nests as deep as it is long
            right = self.term(depth, f"a value after '{op.text}'")
            left = self.arithmetic(op, left, right)
        return left

    def term(self, depth: int, expected: str) -> Node | _Null:
        left = self.operand(depth, expected)
        while self.peek().kind in ("*", "/", "%"):
            op = self.advance()
            depth = self.enter(depth, op)
            right = self.operand(depth, f"a value after '{op.text}'")
            left = self.arithmetic(op, left, right)
        return left

    def arithmetic(self, op: _Token, left: Node | _Null, right: Node | _Null) -> Node:
        for side in (left, right):
            if isinstance(side, _Null):
                raise self.error(
                    side.position,
                    f"NULL at column {side.position} cannot take part in arithmetic "
                    f"('{op.text}' at column {op.position}); compare a value with NULL instead",
                )
        assert not isinstance(left, _Null) and not isinstance(right, _Null)
        return BinaryOperation(op.text, left, right, position=left.position)

    def function(self, name: _Token, depth: int) -> Node:
        """``GLOB(operand, pattern)``, the one function of the language (daf_butler's)."""
        if name.text.upper() != "GLOB" or name.value[1] is not None:
            raise self.error(
                name.position,
                f"unknown function '{name.text}' at column {name.position}; the language has "
                "one function, GLOB(field, 'pattern*')",
            )
        opened = self.advance()
        args: list[Node] = []
        while True:
            args.append(
                self.value(
                    self.arith(self.enter(depth, opened), "an argument of GLOB"), "inside GLOB"
                )
            )
            separator = self.advance()
            if separator.kind == ")":
                break
            if separator.kind != ",":
                raise self.error(
                    separator.position,
                    f"expected ',' or ')' in GLOB( at column {opened.position}, found "
                    f"{separator.describe()} at column {separator.position}",
                )
        if len(args) != 2:
            raise self.error(
                name.position,
                f"GLOB at column {name.position} takes two arguments, the string and the "
                f"pattern, as in GLOB(exposure.obs_id, 'HSC*'); found {len(args)}",
            )
        return Glob(args[0], args[1], position=name.position)

    def timespan_ahead(self) -> bool:
        """Whether the '(' just read opens a timespan literal: ``(T'...', NULL)``."""
        first, second = self.peek(), self.peek(1)
        bound = first.kind in (_TIME, _BIND) or self.is_keyword(first, "NULL")
        return bound and second.kind == ","

    def timespan(self, opened: _Token) -> Node:
        bounds: list[Node | None] = []
        for which, after in (("begin", ","), ("end", ")")):
            token = self.advance()
            if token.kind == _TIME:
                bounds.append(TimeLiteral(token.value, position=token.position))
            elif token.kind == _BIND:
                bounds.append(BindParameter(token.value, position=token.position))
            elif self.is_keyword(token, "NULL"):
                bounds.append(None)
            else:
                raise self.error(
                    token.position,
                    f"expected the {which} of the timespan opened at column {opened.position} "
                    f"(a time T'...', a :bind or NULL for unbounded), found {token.describe()} "
                    f"at column {token.position}",
                )
            close = self.advance()
            if close.kind != after:
                raise self.error(
                    close.position,
                    f"expected '{after}' at column {close.position} in the timespan opened at "
                    f"column {opened.position}, found {close.describe()}; write a timespan as "
                    "(T'2026-01-01', T'2026-01-02')",
                )
        begin, end = bounds
        if (
            isinstance(begin, TimeLiteral)
            and isinstance(end, TimeLiteral)
            and end.value <= begin.value
        ):
            raise self.error(
                opened.position,
                f"the timespan at column {opened.position} ends ({end}) before or when it "
                f"begins ({begin}); a timespan's end is after its begin",
            )
        return TimespanLiteral(begin, end, position=opened.position)

    def operand(self, depth: int, expected: str) -> Node | _Null:
        token = self.advance()
        kind, value, position = token.kind, token.value, token.position
        if kind in (_NUMBER_TOKEN, _STRING):
            return Literal(value, position=position)
        if kind == _TIME:
            return TimeLiteral(value, position=position)
        if kind == _WORD_TOKEN and self.peek().kind == "(":
            return self.function(token, depth)
        if kind == _WORD_TOKEN:
            return Identifier(value[0], value[1], position=position)
        if kind == _BIND:
            return BindParameter(value, position=position)
        if kind == _KEYWORD and value in ("TRUE", "FALSE"):
            return Literal(value == "TRUE", position=position)
        if kind == _KEYWORD and value == "NULL":
            return _Null(position)
        if kind == _STRIDE:  # a ':' before a number, where only a bind can be
            raise self.error(
                position, f"expected a parameter name after ':' at column {position}, as in :name"
            )
        if kind == "-":
            if self.peek().kind == _NUMBER_TOKEN:
                return Literal(-self.advance().value, position=position)
            negated = self.value(
                self.operand(self.enter(depth, token), f"a value after '-' at column {position}"),
                "after '-'",
            )
            return Negative(negated, position=position)
        if kind == "(" and self.timespan_ahead():
            return self.timespan(token)
        if kind == "(":
            node = self.or_expr(self.enter(depth, token), "a condition after '('", value_ok=True)
            close = self.advance()
            if close.kind != ")":
                raise self.error(
                    close.position,
                    f"expected ')' at column {close.position} to close the '(' at column "
                    f"{position}, found {close.describe()}",
                )
            return node
        raise self.error(
            position, f"expected {expected} at column {position}, found {token.describe()}"
        )


def parse_expression(text: str) -> Node:
    """Parse a ``where`` expression into a syntax tree.

    Parameters
    ----------
    text : `str`
        The expression, in the grammar described in this module's docstring.

    Returns
    -------
    node : `Node`
        The root of the tree.  An empty (or all-whitespace) expression means
        "no constraint" and parses to ``Literal(True)``, which renders as
        ``TRUE`` and translates to ``sqlalchemy.true()``.

    Raises
    ------
    ExpressionError
        If the text is not an expression of the grammar, is longer than
        `MAX_LENGTH` characters, or nests deeper than `MAX_DEPTH`.  This is
        the only exception raised, whatever the input.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a str, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(
            f"expression is {len(text)} characters long; the limit is {MAX_LENGTH}",
            text,
            MAX_LENGTH,
        )
    return _parsed(text)


@functools.lru_cache(maxsize=256)
def _parsed(text: str) -> Node:
    """The tree of ``text``, kept for the next parse of the same text (a query's
    expression is parsed where it is checked, then where it is used; trees are
    immutable)."""
    return _Parser(text).parse()
