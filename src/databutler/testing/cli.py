"""Checks of what the command line prints, shared by the CLI test suites."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from click.testing import Result

__all__ = ["one_line_error"]


def one_line_error(result: Result) -> str:
    """The one ``Error: ...`` line a failed command printed (exit code 1): no traceback, no
    "internal error", nothing else on stderr."""
    output = result.output + result.stderr
    assert "Traceback" not in output, output
    assert result.exit_code == 1, (result.exit_code, output, result.exception)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    assert "internal error" not in lines[0], lines[0]
    return lines[0]
