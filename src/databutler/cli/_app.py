"""The ``databutler`` command group: error handling, exit codes and opening repositories."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

import click

from .._exceptions import DatabutlerError, ExpressionError

if TYPE_CHECKING:
    from ..butler import Butler

__all__ = [
    "EXIT_ABORTED",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "EXIT_USAGE",
    "CommandError",
    "confirm",
    "main",
    "open_butler",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_PROBLEMS = 3
EXIT_ABORTED = 4

#: Errors the library raises on purpose, shown as ``Error: <message>`` with exit code 1.
#: The builtins are those the Butler raises for bad input; their messages name the fix.
LIBRARY_ERRORS: tuple[type[BaseException], ...] = (
    DatabutlerError,
    LookupError,
    ValueError,
    TypeError,
    OSError,
)


class CommandError(click.ClickException):
    """A command failed on its input or a library error: ``Error: <message>``, exit code 1."""

    exit_code = EXIT_ERROR


class _Group(click.Group):
    """A group whose commands report library errors as one line instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LIBRARY_ERRORS as exc:
            raise CommandError(_message(exc)) from exc


def _excerpt(expression: str | None, position: int | None) -> str:
    """`` "<expression>"`` for a one-line message, cut around ``position`` when long."""
    if not expression:
        return ""
    start = max(0, min(position or 0, len(expression)) - 30)
    text = expression[start : start + 60]
    text = "".join(c if c.isprintable() else " " for c in text)
    return f' "{"..." if start else ""}{text}{"..." if start + 60 < len(expression) else ""}"'


def _message(exc: BaseException) -> str:
    if isinstance(exc, ExpressionError):
        # One line: the reason names the column; the caret drawing is for Python callers.
        return f"--where{_excerpt(exc.expression, exc.position)}: {exc.reason}"
    # KeyError's str() quotes its argument; the message is what we want.
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        return exc.args[0]
    return str(exc) or type(exc).__name__


@click.group(
    name="databutler", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(package_name="databutler", prog_name="databutler")
def main() -> None:
    """Manage a databutler data repository: datasets, collections and datastores.

    REPO is a repository root: a directory, s3://bucket/prefix, or the path of
    its butler.yaml. Listing commands print a table on a terminal and take
    --format json|csv for scripts. Destructive commands print what they would
    do, stop there with --dry-run, and ask before changing anything unless
    given --yes.

    \b
    Exit codes:
      0  success
      1  a databutler error: the message on stderr says what to fix
      2  a usage error: unknown option, missing or malformed argument
      3  verify found problems it did not repair
      4  aborted at a confirmation prompt; nothing was changed
    """


def open_butler(repo: str, *, writeable: bool = False) -> Butler:
    """Open the repository at ``repo`` (read-only unless ``writeable``)."""
    from ..butler import Butler  # here, so that `databutler --help` stays fast

    return Butler(repo, writeable=writeable)


def confirm(question: str, *, yes: bool) -> None:
    """Ask ``question``; stop the command with exit code 4 unless the answer is yes.

    ``yes`` (the ``--yes`` option) answers for the user. End of input or
    Ctrl-C at the prompt count as no.
    """
    if yes:
        return
    try:
        agreed = click.confirm(question, default=False, err=True)
    except click.Abort:
        agreed = False
        click.echo(err=True)
    if not agreed:
        abort()


def abort() -> NoReturn:
    """Stop with exit code 4, saying that nothing was changed."""
    click.echo("Aborted; nothing was changed.", err=True)
    raise click.exceptions.Exit(EXIT_ABORTED)
