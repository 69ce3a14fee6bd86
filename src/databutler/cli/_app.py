"""The ``databutler`` command group: error handling, exit codes and opening repositories."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import traceback
from typing import TYPE_CHECKING, Any, NoReturn

import click

from .._exceptions import DatabutlerError, ExpressionError
from .._os_errors import os_fix

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

#: Errors shown as ``Error: <message>`` with exit code 1: those databutler raises on
#: purpose (their messages name the fix) and the operating system's, about paths the
#: user gave. Any other exception is a bug: one line says so (`internal_error`).
LIBRARY_ERRORS: tuple[type[BaseException], ...] = (DatabutlerError, OSError)

#: Environment variable that, set to anything but ``0`` or empty, works like ``--traceback``.
TRACEBACK_ENV = "DATABUTLER_TRACEBACK"

#: Library wording for Python callers, and the command line's: keywords become options.
_CLI_WORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"\boverwrite=True( \(--overwrite( on the command line)?\))?", "--overwrite"),
        (r"\bskip_existing=True( \(--skip-existing on the command line\))?", "--skip-existing"),
        (r"(?<![-\w])skip_existing\b", "--skip-existing"),
        (
            r"\bverify\(repair=True\)( \(databutler verify --repair\))?",
            "databutler verify --repair",
        ),
        (r"\brepair=True\b", "--repair"),
        (r"\bdelete_unknown=True\b", "--delete-unknown"),
        (r"\bdry_run=True\b", "--dry-run"),
        (r"\bpurge=True\b", "--purge"),
        (r"\bunstore=True\b", "--unstore"),
        (r"\btags=\[\.\.\.\]", "--tag"),
        (r"(?<![-\w])tags=", "--tag"),
        (r"\bcollections=\[\.\.\.\]", "--collections"),
        (r" \(Butler\.create in Python\)", ""),
        (
            r"\bskip_unknown_fields=True( \(databutler \w+ --skip-unknown-fields\))?",
            "--skip-unknown-fields",
        ),
        (r"\bskip_dimensions=True( \(--skip-dimensions\))?", "--skip-dimensions"),
        (r"\bskip_missing=True( \(databutler \w+ --skip-missing\))?", "--skip-missing"),
        (r"\buniverse='(\w+)'( \(databutler \w+ --universe \1\))?", r"--universe \1"),
        (r"\bfind_first=True\b", "--find-first"),
        (r"\bpass find_first=False\b", "leave out --find-first"),
        (r"^limit must be", "--limit must be"),
        (r"; pass None for every result", "; leave out --limit for every result"),
        (r"\(got namespace=('[^']*')\)", r"(got --namespace \1)"),
        (
            r"Open it with Butler\(\.\.\.\), or copy datasets from it with transfer_from / ",
            "Copy datasets from it with ",
        ),
        (r"\btransfer=None\b", "--transfer none"),
        (r"\btransfer='(\w+)'", r"--transfer \1"),
        (r"\btransfer=('[^']*')", r"--transfer \1"),  # '' and other values that are no mode
        (r"(use one of (?:'\w+', )+)None\b", r"\1'none'"),
        (r"\bquery_dataset_types\(\) lists them", "databutler query-dataset-types lists them"),
        (r"^datasets: ", "--datasets: "),
        (
            r"\bUse sync\(\) to insert records only where absent\.",
            "Pass --skip-existing to skip the records that are stored already.",
        ),
        (r"(?<![-\w.])db='([^']*)'", r"--db \1"),
        # After the --overwrite rule above: the repository is what the command names.
        (r"\bopen it with Butler\(.*?\), or (?=pass --overwrite\b)", ""),
        (
            r"\bcreate it: registerRun\(.*?\) for a run, registerCollection\(\.\.\.\) for "
            r"another type\.",
            "create it: a run with 'databutler ingest-files', a tagged collection with "
            "'databutler associate', a chain with 'databutler collection-chain', a calibration "
            "collection with 'databutler certify-calibrations'.",
        ),
        (r"\bregisterDatasetType\(DatasetType\(.*?\)\) or (?='databutler )", ""),
        (r" \(isCalibration=False\)", " (registered without --is-calibration)"),
        (r"\bbutler\.insert_dimension_records\(.*?\) or (?='databutler )", ""),
        (r"\bregister_dataset_types=True\b", "--register-dataset-types"),
        (r"\bunlink_from_chains=True \((--unlink)\)", r"\1"),
        # No command decertifies: the library's method is the way.
        (r" \(SqlRegistry\.decertify\)", " (in Python: butler.registry.decertify)"),
    )
)


class CommandError(click.ClickException):
    """A command failed on its input or a library error: ``Error: <message>``, exit code 1."""

    exit_code = EXIT_ERROR


class _Group(click.Group):
    """A group whose commands report every error as one line instead of a traceback."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # No name, path or value may hold a NUL: the operating system cannot take it in a
        # path, and click's path checks would fail on it with a ValueError.
        for arg in args:
            if "\0" in arg:
                shown = arg.replace("\0", "\\0")
                raise click.UsageError(
                    f"The argument '{shown}' holds a NUL character (\\0), which no name, path "
                    "or value may hold; remove it.",
                    ctx,
                )
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except LIBRARY_ERRORS as exc:
            _maybe_traceback(ctx, exc)
            raise CommandError(_with_notes(exc, _message(exc))) from exc
        except Exception as exc:
            _maybe_traceback(ctx, exc)
            raise CommandError(internal_error(exc)) from exc


def internal_error(exc: BaseException) -> str:
    """The one line shown for an exception that is not a user's mistake: a bug."""
    detail = _one_line(str(exc))
    return (
        f"internal error: {type(exc).__name__}{': ' + detail if detail else ''} \u2014 this is "
        f"a bug; rerun with --traceback or {TRACEBACK_ENV}=1 for the traceback"
    )


def _maybe_traceback(ctx: click.Context, exc: BaseException) -> None:
    """Print ``exc``'s traceback to stderr if ``--traceback`` or the variable asks for it."""
    wanted = ctx.find_root().params.get("show_traceback") or os.environ.get(
        TRACEBACK_ENV, ""
    ).strip() not in ("", "0")
    if wanted:
        click.echo("".join(traceback.format_exception(exc)), err=True, nl=False)


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def cli_wording(message: str) -> str:
    """``message`` with Python keywords (``overwrite=True``...) named as the options."""
    for pattern, replacement in _CLI_WORDS:
        message = pattern.sub(replacement, message)
    return message


def _excerpt(expression: str | None, position: int | None) -> str:
    """`` "<expression>"`` for a one-line message, cut around ``position`` when long."""
    if not expression:
        return ""
    start = max(0, min(position or 0, len(expression)) - 30)
    text = expression[start : start + 60]
    text = "".join(c if c.isprintable() else " " for c in text)
    return f' "{"..." if start else ""}{text}{"..." if start + 60 < len(expression) else ""}"'


def _os_message(exc: OSError) -> str:
    """An operating-system error in one line: what failed, on which path, and what to do."""
    where = "".join(
        f"{' -> ' if i else ': '}{name}"
        for i, name in enumerate(n for n in (exc.filename, exc.filename2) if n is not None)
    )
    fix = os_fix(exc)
    return f"{exc.strerror}{where}" + (f"; {cli_wording(fix)}." if fix else ".")


def _with_notes(exc: BaseException, message: str) -> str:
    """``message`` followed by ``exc``'s notes (`BaseException.add_note`: what the library
    adds about the state a failure left, such as a file it could not move back)."""
    notes = [_one_line(str(note)) for note in getattr(exc, "__notes__", ())]
    return " ".join([message, *(cli_wording(note) for note in notes if note)])


def _message(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, DatabutlerError) and exc.strerror:
        return _one_line(_os_message(exc))
    if isinstance(exc, ExpressionError):
        # One line: the reason names the column; the caret drawing is for Python callers.
        return f"--where{_excerpt(exc.expression, exc.position)}: {exc.reason}"
    # KeyError's str() quotes its argument; the message is what we want.
    if isinstance(exc, KeyError) and len(exc.args) == 1 and isinstance(exc.args[0], str):
        return _one_line(cli_wording(exc.args[0]))
    return _one_line(cli_wording(str(exc))) or type(exc).__name__


@click.group(
    name="databutler", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(package_name="databutler", prog_name="databutler")
@click.option(
    "--traceback",
    "show_traceback",
    is_flag=True,
    help=f"On an error, show its Python traceback too (or set {TRACEBACK_ENV}=1).",
)
def main(show_traceback: bool) -> None:
    """Manage a databutler data repository: datasets, collections and datastores.

    REPO is a repository root: a directory, s3://bucket/prefix, or the path of
    its butler.yaml. Listing commands print a table on a terminal and take
    --format json|csv for scripts. Destructive commands print what they would
    do, stop there with --dry-run, and ask before changing anything unless
    given --yes. Files given to commands (records, tables, universes) are
    read as UTF-8.

    \b
    Exit codes:
      0  success
      1  a databutler error: the one-line message on stderr says what to fix
         ("internal error: ..." is a bug: rerun with --traceback to report it)
      2  a usage error: unknown option, missing or malformed argument
      3  verify found problems it did not repair
      4  aborted at a confirmation prompt; nothing was changed
    """
    if sys.stdout is None:
        # Python starts without sys.stdout when descriptor 1 is closed (>&-); click would
        # drop every line silently. Stop before the command changes anything.
        raise CommandError(
            "standard output is closed; redirect it (> FILE, or > /dev/null to discard it) "
            "instead of closing it."
        )
    _warn_on_stderr()


class _WarningsInCliWords(logging.Handler):
    """The library's warnings on stderr as ``Warning: ...``, in the command line's words
    (without one, Python's last-resort handler prints them as the library wrote them).

    An artifact the trash could not delete (a `TrashFailure`) is left out: the
    command that emptied the trash reports those itself, as errors.
    """

    def emit(self, record: logging.LogRecord) -> None:
        from ..datastores import TrashFailure

        args = record.args if isinstance(record.args, tuple) else ()
        if any(isinstance(arg, TrashFailure) for arg in args):
            return
        # A warning that cannot be shown (stderr closed) never fails the command.
        with contextlib.suppress(Exception):
            click.echo(f"Warning: {cli_wording(record.getMessage())}", err=True)


def _warn_on_stderr() -> None:
    """Show the library's warnings through `_WarningsInCliWords` (once per process)."""
    logger = logging.getLogger("databutler")
    if not any(isinstance(h, _WarningsInCliWords) for h in logger.handlers):
        logger.addHandler(_WarningsInCliWords(logging.WARNING))


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
