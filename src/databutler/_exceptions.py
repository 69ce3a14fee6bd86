"""The exception tree of databutler.

Every error databutler raises on purpose derives from `DatabutlerError`; where a
builtin (or SQLAlchemy) exception says the same thing, the subclass inherits it
too, so ``except LookupError`` keeps working for callers that do not know us::

    DatabutlerError
    ├── InvalidNameError                (ValueError)    malformed datastore/table name
    ├── InvalidDatasetIdError           (TypeError)     a dataset id that is not a UUID
    ├── AmbiguousDatasetError           (ValueError)    a ref without an id where one is needed
    ├── InvalidArgumentError            (ValueError)    an unknown mode, format or position
    │   └── PositionError               (IndexError)    a position a sequence does not have
    ├── ArgumentConflictError           (TypeError)     options that contradict, or ask nothing
    ├── ArgumentTypeError               (TypeError)     an argument of a type the call does not take
    ├── ConfigurationError              (ValueError)    bad manager/database configuration
    │   ├── DimensionConfigError                        a dimension universe description is bad
    │   └── RepositoryError                             repository missing, damaged or misconfigured
    │       └── RepositoryNotFoundError (FileNotFoundError) no repository at the path
    ├── UnknownDimensionError           (KeyError)      a name that is not a dimension
    ├── DataIdError                     (ValueError)    a data ID that does not fit its dimensions
    ├── UnsafePathError                 (ValueError)    a path that leaves, or writes into, a root
    ├── ExportFormatError               (ValueError)    an export that is malformed or unsafe
    ├── TransferModeError               (ValueError)    unknown transfer mode, or not possible there
    ├── ExpressionError                 (ValueError)    a bad query `where` expression or bind value
    ├── StorageClassError     (TypeError, ValueError)   object/storage class mismatch, bad read
    ├── ArtifactCorruptedError                          artifact bytes differ from the record
    ├── AlreadyExistsError              (FileExistsError) what a call would create is there already
    ├── SourceFileError                 (OSError)       a file handed over (to ingest) is unusable
    │   ├── SourceNotFoundError         (FileNotFoundError) missing, or not a regular file
    │   └── SourcePermissionError       (PermissionError) cannot be read, or (move) removed
    ├── DatabaseError
    │   ├── ReadOnlyDatabaseError       (PermissionError) opened read-only, or writes refused
    │   ├── SchemaAlreadyDefinedError
    │   ├── DatabaseConflictError                       schema on disk differs from the code
    │   ├── TransactionAbortedError                     an inner block failed; all was undone
    │   ├── ConcurrentUpdateError                       collided with another client; repeatable
    │   ├── DatabaseConnectionError     (ConnectionError) the connection to the server was lost
    │   ├── DatabaseStorageError                        its disk full or failing, its file damaged
    │   └── ConflictError               (sqlalchemy IntegrityError)
    │       └── OrphanedRecordError                     a datastore still holds the dataset
    ├── MissingCollectionError          (LookupError)   no collection of that name
    ├── CollectionError                 (ValueError)    wrong type, cycle, still in use, conflict
    ├── IncompatibleVersionError                        stored schema version not supported
    ├── ManagerMismatchError                            stored manager class differs
    └── MissingManagerError             (LookupError)   repository lacks a manager entry
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

__all__ = [
    "AlreadyExistsError",
    "AmbiguousDatasetError",
    "ArgumentConflictError",
    "ArgumentTypeError",
    "ArtifactCorruptedError",
    "CollectionError",
    "ConcurrentUpdateError",
    "ConfigurationError",
    "ConflictError",
    "DataIdError",
    "DatabaseConflictError",
    "DatabaseError",
    "DatabaseStorageError",
    "DatabutlerError",
    "DatastoreAbilityError",
    "DimensionConfigError",
    "ExportFormatError",
    "ExpressionError",
    "IncompatibleVersionError",
    "InvalidArgumentError",
    "InvalidDatasetIdError",
    "InvalidNameError",
    "ManagerMismatchError",
    "MissingCollectionError",
    "MissingManagerError",
    "OrphanedRecordError",
    "PositionError",
    "ReadOnlyDatabaseError",
    "RepositoryError",
    "RepositoryNotFoundError",
    "SchemaAlreadyDefinedError",
    "SourceFileError",
    "SourceNotFoundError",
    "SourcePermissionError",
    "StorageClassError",
    "TransactionAbortedError",
    "TransferModeError",
    "UnknownDimensionError",
    "UnsafePathError",
]


class DatabutlerError(Exception):
    """Root of every error databutler raises deliberately."""


class InvalidNameError(DatabutlerError, ValueError):
    """A name (datastore, table, ...) does not follow the rules for such names."""


class InvalidDatasetIdError(DatabutlerError, TypeError):
    """A dataset id is not a `uuid.UUID`."""


class AmbiguousDatasetError(DatabutlerError, ValueError):
    """A dataset reference has no id where an id is required."""


class InvalidArgumentError(DatabutlerError, ValueError):
    """A value given for an argument or option is not one of those accepted (a mode, a format)."""


class PositionError(InvalidArgumentError, IndexError):
    """A position that is not there, as in popping position 5 of a chain of two (also an
    `IndexError`)."""


class ArgumentConflictError(DatabutlerError, TypeError):
    """Arguments contradict each other, or none of those that say what to do was given."""


class ArgumentTypeError(DatabutlerError, TypeError):
    """An argument of a public call has a type it does not take (``get(123)``).

    The message names the argument, what it must be and what it got; it is
    raised before anything is changed.
    """


class ConfigurationError(DatabutlerError, ValueError):
    """A configuration value (manager, database URI, ...) is not usable."""


class DimensionConfigError(ConfigurationError):
    """A dimension universe description is not valid.

    The message names the dimension (where there is one) and the problem.
    """


class RepositoryError(ConfigurationError):
    """A repository cannot be opened: its files are missing, damaged or unreadable.

    The message names the file and what to do about it. Opening never creates
    or changes anything, so the repository is left as it was.
    """


class RepositoryNotFoundError(RepositoryError, FileNotFoundError):
    """There is no repository at the given path (no directory, or no ``butler.yaml``)."""


class AlreadyExistsError(DatabutlerError, FileExistsError):
    """What a call would create is there already: a repository, an export, an artifact or a
    retrieved file. Nothing was changed; the message says how to replace it or where else to
    go. Also a `FileExistsError`, as before it was a databutler error.
    """


class SourceFileError(DatabutlerError, OSError):
    """A file handed over to databutler (a file to ingest) cannot be used as it is.

    Raised before anything is written: the message names the file, what is
    wrong with it (missing, a directory, a FIFO, a name too long, unreadable)
    and what to do. The subclasses are also the builtin errors such a file
    raised before it was a databutler error.
    """


class SourceNotFoundError(SourceFileError, FileNotFoundError):
    """There is no regular file at a path handed over: nothing there, a dangling or looping
    symbolic link, a directory, a FIFO, a socket or a device (also a `FileNotFoundError`)."""


class SourcePermissionError(SourceFileError, PermissionError):
    """A file handed over cannot be read, or (``transfer="move"``) cannot be removed from its
    directory; the message says which and to fix the permissions or use another transfer
    mode (also a `PermissionError`)."""


class ArtifactCorruptedError(DatabutlerError):
    """An artifact's bytes differ from its record (size, or checksum when one is recorded).

    Raised instead of returning or handing out the altered bytes; the message
    names the dataset, the artifact, what was expected and found, and how to
    repair. Nothing is changed by the failed read.
    """


class UnknownDimensionError(DatabutlerError, KeyError):
    """A dimension name is not in the universe; the message lists the valid names."""

    def __str__(self) -> str:
        # KeyError would show the repr of the message, quotes and all.
        return str(self.args[0]) if self.args else ""


class DataIdError(DatabutlerError, ValueError):
    """A data ID has a missing, unknown or badly typed value."""


class UnsafePathError(DatabutlerError, ValueError):
    """A path would reach outside where it must stay, or into a datastore it must not touch.

    Raised before anything is written: for a destination inside a datastore's
    own root, a transfer that would make a file point at itself, or a path
    from untrusted input that leaves its root through ``..`` or a link.
    """


class DatastoreAbilityError(DatabutlerError, TypeError):
    """A datastore was asked for something it cannot do (see `Datastore.abilities`).

    For example `Datastore.ingest` on a datastore that does not ingest files,
    or `Datastore.bridge` of one that keeps no registry records of its own (a
    chain, whose children do).
    """


class TransferModeError(DatabutlerError, ValueError):
    """A transfer mode is unknown, or cannot be used for that source or destination.

    The message lists the modes that can (``copy`` works everywhere).
    """


class ExportFormatError(DatabutlerError, ValueError):
    """An export (directory, zip or manifest) is missing, malformed, or names unsafe paths."""


class StorageClassError(DatabutlerError, TypeError, ValueError):
    """An object does not fit a storage class, or a read asks what the storage class lacks.

    Raised by ``put`` for an object of another type than the dataset type's
    storage class holds (with no converter for it), and by ``get`` for a
    conversion, component or read parameter the storage class does not have;
    the message names the storage class, what it expects and what is valid.
    """


class ExpressionError(DatabutlerError, ValueError):
    """A ``where`` expression or its ``bind`` values are malformed or ill-typed.

    Raised before anything reaches the database: a syntax error, an unknown
    identifier, operands of incompatible types, a value out of range, a bind
    parameter without a value.  ``reason`` is one line (what the command line
    shows); ``str()`` adds the expression with a caret under the column.

    Parameters
    ----------
    reason : `str`
        What went wrong, where, and how to fix it when that is obvious.
    expression : `str`, optional
        The expression text; when given, the message quotes the offending
        line with a caret under ``position``.
    position : `int`, optional
        0-based offset into ``expression`` of the column where it went wrong
        (``len(expression)`` for "ended too early").

    Notes
    -----
    Columns in messages are the same 0-based offsets as ``position``.
    """

    def __init__(
        self, reason: str, expression: str | None = None, position: int | None = None
    ) -> None:
        self.reason = reason
        self.expression = expression
        self.position = position
        super().__init__(_format_error(reason, expression, position))

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.reason, self.expression, self.position))


def _format_error(reason: str, expression: str | None, position: int | None) -> str:
    if expression is None or position is None:
        return reason
    line_start = expression.rfind("\n", 0, position) + 1
    line_end = expression.find("\n", position)
    line = expression[line_start : line_end if line_end >= 0 else len(expression)]
    column = position - line_start
    # Keep the excerpt readable for very long expressions: a window around the column.
    start = max(0, column - 40)
    end = min(len(line), column + 40)
    prefix = "..." if start > 0 else ""
    suffix = "..." if end < len(line) else ""
    shown = "".join(c if c.isprintable() else " " for c in line[start:end])
    caret = " " * (len(prefix) + column - start) + "^"
    parts = [reason]
    if "\n" in expression:
        parts.append(f"  (line {expression.count(chr(10), 0, line_start) + 1})")
    parts += [f"  {prefix}{shown}{suffix}", f"  {caret}"]
    return "\n".join(parts)


class DatabaseError(DatabutlerError):
    """Base for errors raised by the `Database` layer."""


class ReadOnlyDatabaseError(DatabaseError, PermissionError):
    """A write was attempted on a database opened read-only, or one the database refuses: a
    registry file (or its directory) this user may not write, a server that runs the
    session read-only, a privilege not granted. Nothing was written."""


class DatabaseStorageError(DatabaseError):
    """The database's storage failed under a statement: the disk holding it is full, reading
    or writing it failed (an I/O error), or its file is damaged. The message names the
    database and what to do; the statement's transaction was rolled back whole."""


class SchemaAlreadyDefinedError(DatabaseError):
    """Tables were declared with ``create=True`` in a database that already has tables."""


class DatabaseConflictError(DatabaseError):
    """A table in the database does not match the table the code expects."""


class TransactionAbortedError(DatabaseError):
    """An inner transaction block failed, so the whole transaction was rolled back."""


class ConcurrentUpdateError(DatabaseError):
    """A transaction collided with another client's (deadlock, serialization failure) and
    was rolled back whole; repeating it is safe."""


class DatabaseConnectionError(DatabaseError, ConnectionError):
    """The connection to the database server was lost during a transaction.

    Before its commit, the transaction was rolled back whole (and a butler's
    files written in it deleted): repeating it is safe. While it committed
    (``in_doubt``), the server may have committed it or not, and could not be
    asked which: a butler then keeps the files it wrote, so that nothing the
    registry may name is lost, and ``databutler verify`` settles the rest
    once the server is back.
    """

    def __init__(self, message: str, *, in_doubt: bool = False) -> None:
        super().__init__(message)
        self.in_doubt = in_doubt

    def __reduce__(self) -> tuple[Any, ...]:
        return (_connection_error, (str(self), self.in_doubt))


def commit_in_doubt(error: BaseException) -> bool:
    """Whether ``error`` is a lost connection whose transaction may have committed or not
    (a `DatabaseConnectionError` with ``in_doubt``): then nothing it wrote may be undone."""
    return isinstance(error, DatabaseConnectionError) and error.in_doubt


def _connection_error(message: str, in_doubt: bool) -> DatabaseConnectionError:
    """Unpickle a `DatabaseConnectionError` (its ``in_doubt`` is keyword-only)."""
    return DatabaseConnectionError(message, in_doubt=in_doubt)


if TYPE_CHECKING:
    import sqlalchemy.exc

    class ConflictError(DatabaseError, sqlalchemy.exc.IntegrityError):
        """A write violated a key or foreign-key constraint; nothing was written."""

        message: str

        def __init__(self, message: str, orig: BaseException | None = None) -> None: ...

    class OrphanedRecordError(ConflictError):
        """A dataset cannot be deleted because one or more datastores still hold it."""

else:

    def __getattr__(name: str) -> Any:
        # ConflictError is also a sqlalchemy IntegrityError; it is built on first
        # use so that "import databutler" does not pay for importing SQLAlchemy.
        if name in ("ConflictError", "OrphanedRecordError"):
            _define_conflict_errors()
            return globals()[name]
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_define_lock = threading.Lock()


def _define_conflict_errors() -> None:
    with _define_lock:
        if "ConflictError" not in globals():
            _make_conflict_errors()


def _make_conflict_errors() -> None:
    import sqlalchemy.exc

    class ConflictError(DatabaseError, sqlalchemy.exc.IntegrityError):
        """A write violated a key or foreign-key constraint; nothing was written.

        Also a `sqlalchemy.exc.IntegrityError`, so code written against the
        documented API (which lets that error escape) keeps catching it.
        """

        def __init__(self, message: str, orig: BaseException | None = None) -> None:
            sqlalchemy.exc.IntegrityError.__init__(self, None, None, orig or Exception(message))
            self.message = message

        def __str__(self) -> str:
            return self.message

        def __reduce__(self) -> tuple[object, ...]:
            return (type(self), (self.message,))

    class OrphanedRecordError(ConflictError):
        """A dataset cannot be deleted because one or more datastores still hold it."""

    for cls in (ConflictError, OrphanedRecordError):
        cls.__module__ = __name__
        cls.__qualname__ = cls.__name__
        globals()[cls.__name__] = cls


class MissingCollectionError(DatabutlerError, LookupError):
    """No collection has the given name."""


class CollectionError(DatabutlerError, ValueError):
    """A collection cannot be used or changed that way (wrong type, a cycle, still in use)."""


class IncompatibleVersionError(DatabutlerError):
    """The schema version stored in a repository is not supported by this code."""


class ManagerMismatchError(DatabutlerError):
    """The manager class stored in a repository differs from the configured one."""


class MissingManagerError(DatabutlerError, LookupError):
    """The repository has no record of a manager the code needs."""
