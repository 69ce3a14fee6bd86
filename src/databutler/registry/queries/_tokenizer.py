"""Splitting a ``where`` expression into tokens, with their columns."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ._errors import _NUMBER, _NUMBER_TAIL, _WHITESPACE, _WORD, KEYWORDS, ExpressionError
from ._time import parse_time

_RANGE_START = re.compile(r"[0-9]+(?=\.\.)")
"""The digits of an integer that a range's '..' follows (``1`` of ``1..5``)."""
_STRIDE_AHEAD = re.compile(r":\s*-?[0-9]")
"""A ':' before a number: a range's stride (``:2`` of ``1..10:2``), never a bind."""

# ---------------------------------------------------------------------------
# Tokenizer

_END, _WORD_TOKEN, _KEYWORD, _NUMBER_TOKEN, _STRING, _BIND, _OPERATOR, _TIME = (
    "end",
    "word",
    "keyword",
    "number",
    "string",
    "bind",
    "operator",
    "time",
)
_PUNCTUATION = {"(", ")", ",", "-", "+", "*", "/", "%"}
_RANGE, _STRIDE = "..", ":"

# Characters that are not part of the language, with the fix to suggest.
_CHARACTER_HINTS = {
    ";": "statements cannot be chained; join conditions with AND or OR",
    "&": "use AND to join conditions",
    "|": "use OR to join conditions",
    "!": "use != for 'not equal' or NOT to negate a condition",
    "`": "quote strings with ' or \"; identifiers are not quoted",
    "[": "lists are written in parentheses: x IN (1, 2)",
    "]": "lists are written in parentheses: x IN (1, 2)",
    ".": "a '.' must join a name and a field, as in visit.exposure_time, "
    "or two make a range, as in detector IN (1..5)",
}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    value: Any
    position: int
    end: int

    def describe(self) -> str:
        if self.kind == _END:
            return "the end of the expression"
        if self.kind == _KEYWORD:
            return self.value  # type: ignore[no-any-return]
        if self.kind == _WORD_TOKEN:
            return f"identifier '{self.text}'"
        if self.kind == _NUMBER_TOKEN:
            return f"number {self.text}"
        if self.kind == _STRING:
            return f"string {self.text}"
        if self.kind == _BIND:
            return f"bind parameter {self.text}"
        if self.kind == _TIME:
            return f"time {self.text}"
        if self.kind == _RANGE:
            return "'..' (a range)"
        return f"'{self.text}'"


def _describe_char(char: str) -> str:
    return f"'{char}'" if char.isprintable() and char != "'" else repr(char)


class _Tokenizer:
    def __init__(self, text: str) -> None:
        self.text = text

    def error(self, position: int, reason: str) -> ExpressionError:
        return ExpressionError(reason, self.text, position)

    def token_at(self, pos: int) -> _Token:
        """Return the token that starts at or after ``pos`` (skipping whitespace)."""
        text = self.text
        match = _WHITESPACE.match(text, pos)
        if match:
            pos = match.end()
        if pos >= len(text):
            return _Token(_END, "", None, len(text), len(text))
        return self._token(pos)

    def _token(self, pos: int) -> _Token:
        text = self.text
        char = text[pos]
        if char in "'\"":
            return self._string(pos)
        if char in "Tt" and text[pos + 1 : pos + 2] in ("'", '"'):
            return self._time(pos)
        if char.isascii() and (char.isalpha() or char == "_"):
            return self._word(pos)
        if text.startswith(_RANGE, pos):
            return _Token(_RANGE, _RANGE, None, pos, pos + 2)
        if _NUMBER.match(text, pos):
            return self._number(pos)
        if char == ":" and _STRIDE_AHEAD.match(text, pos):
            return _Token(_STRIDE, _STRIDE, None, pos, pos + 1)  # 1..10:2
        if char == ":":
            match = _WORD.match(text, pos + 1)
            if not match:
                raise self.error(
                    pos, f"expected a parameter name after ':' at column {pos}, as in :name"
                )
            return _Token(_BIND, text[pos : match.end()], match.group(), pos, match.end())
        two = text[pos : pos + 2]
        if two in ("!=", "<>", "<=", ">="):
            return _Token(_OPERATOR, two, "!=" if two == "<>" else two, pos, pos + 2)
        if two == "==":
            raise self.error(pos, f"unexpected '==' at column {pos}; use a single '=' for equality")
        if two == "--":
            raise self.error(
                pos,
                f"unexpected '--' at column {pos} — SQL comments (--) are not part of the "
                "language; to subtract a negative number write a - (-1)",
            )
        if two in ("&&", "||"):
            word = "AND" if two == "&&" else "OR"
            raise self.error(pos, f"unexpected '{two}' at column {pos}; use {word}")
        if char in "=<>":
            return _Token(_OPERATOR, char, char, pos, pos + 1)
        if char in _PUNCTUATION:
            return _Token(char, char, None, pos, pos + 1)
        hint = _CHARACTER_HINTS.get(char)
        reason = f"unexpected {_describe_char(char)} at column {pos}"
        raise self.error(pos, f"{reason} — {hint}" if hint else reason)

    def _string(self, start: int) -> _Token:
        text = self.text
        quote = text[start]
        chars: list[str] = []
        pos = start + 1
        while pos < len(text):
            char = text[pos]
            if char == quote:
                return _Token(_STRING, text[start : pos + 1], "".join(chars), start, pos + 1)
            if char in "\n\r":
                raise self.error(
                    start,
                    f"unterminated string starting at column {start}; "
                    f"close it with {quote} before the end of the line",
                )
            if char == "\\":
                escaped = text[pos + 1 : pos + 2]
                if escaped not in (quote, "\\"):
                    if not escaped:
                        break
                    raise self.error(
                        pos,
                        f"invalid escape '\\{escaped}' at column {pos}; inside {quote}...{quote} "
                        f"only \\{quote} and \\\\ are escapes (write \\\\ for a backslash)",
                    )
                chars.append(escaped)
                pos += 2
                continue
            chars.append(char)
            pos += 1
        raise self.error(
            start, f"unterminated string starting at column {start}; close it with {quote}"
        )

    def _time(self, start: int) -> _Token:
        """A time literal, ``T'2026-11-29T12:00:00'``, its value a naive UTC datetime."""
        string = self._string(start + 1)
        try:
            value = parse_time(string.value)
        except ValueError as exc:
            raise self.error(
                start, f"malformed time literal at column {start}: {exc.args[0]}"
            ) from None
        return _Token(_TIME, self.text[start : string.end], value, start, string.end)

    def _word(self, start: int) -> _Token:
        text = self.text
        match = _WORD.match(text, start)
        assert match is not None
        end = match.end()
        name = match.group()
        if text[end : end + 1] != ".":
            if name.upper() in KEYWORDS:
                return _Token(_KEYWORD, name, name.upper(), start, end)
            return _Token(_WORD_TOKEN, name, (name, None), start, end)
        self._check_not_reserved(name, start)
        field_match = _WORD.match(text, end + 1)
        if not field_match:
            raise self.error(
                end + 1,
                f"expected a field name after '{name}.' at column {end + 1}, "
                f"as in {name}.exposure_time",
            )
        field_name = field_match.group()
        self._check_not_reserved(field_name, end + 1)
        end = field_match.end()
        if text[end : end + 1] == ".":
            raise self.error(
                end,
                f"unexpected '.' at column {end}; an identifier has at most one '.', "
                "as in visit.exposure_time",
            )
        return _Token(_WORD_TOKEN, text[start:end], (name, field_name), start, end)

    def _check_not_reserved(self, word: str, position: int) -> None:
        if word.upper() in KEYWORDS:
            raise self.error(
                position,
                f"'{word}' at column {position} is a reserved word and cannot be part of a name",
            )

    def _number(self, start: int) -> _Token:
        text = self.text
        match = _RANGE_START.match(text, start) or _NUMBER.match(text, start)
        assert match is not None
        end = match.end()
        # A number followed by '..' begins a range (1..5), whatever the parser makes of it.
        tail = None if text.startswith(_RANGE, end) else _NUMBER_TAIL.match(text, end)
        if tail:
            junk = text[start : tail.end()]
            raise self.error(
                start,
                f"malformed number '{junk}' at column {start}; write numbers as 12, 1.5, 2e-3",
            )
        literal = match.group()
        try:
            value: int | float
            if any(c in literal for c in ".eE"):
                value = float(literal)
                if not math.isfinite(value):
                    raise ValueError(literal)
            else:
                value = int(literal)
        except ValueError:
            raise self.error(start, f"number at column {start} is too large") from None
        return _Token(_NUMBER_TOKEN, literal, value, start, end)
