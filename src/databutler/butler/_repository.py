"""Creating a repository: its schema in the registry database, its datastore, its butler.yaml."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .._exceptions import AlreadyExistsError, ConfigurationError, RepositoryError
from ..datastores import Datastore, datastore_from_config
from ..datastores.resources import remove_empty
from ..dimensions import DimensionUniverse
from ..registry import SqlRegistry
from ..registry.databases.sqlite import SQLITE_FILE_SUFFIXES
from ..registry.sql_registry import REGISTRY_MANAGERS
from ._config import CONFIG_NAME, ROOT_TOKEN, RepositoryConfig, config_store

__all__ = ["create_repository", "creating"]

_LOG = logging.getLogger(__name__)

#: The file a creation holds, locked, in a local root while it makes the repository there.
CREATING_NAME = ".databutler-creating"


@contextlib.contextmanager
def creating(root_uri: str) -> Iterator[None]:
    """Make the local root ``root_uri`` (with the directories above it that are missing) and
    hold the right to create a repository there: one process at a time.

    The right is the file `CREATING_NAME` in the root, locked while the block
    runs: another process creating a repository there at the same moment gets
    `AlreadyExistsError` and leaves everything as it was (a directory it made
    only if it is still empty), so that its failure never deletes what the
    other made. A failure of the block removes the directories this call made,
    with what the block put in them. One that a dead process left is taken
    over. An S3 root is made by its first write; nothing is held.
    """
    if "://" in root_uri:
        yield
        return
    made = _make_directories(Path(root_uri))
    marker = Path(root_uri) / CREATING_NAME
    try:
        descriptor = _claim(marker, root_uri)
    except BaseException:
        remove_empty(reversed(made))  # deepest first; one that holds anything stays
        raise
    try:
        yield
    except BaseException:
        if made:  # all of it this call's: no other creation works where the marker is held
            shutil.rmtree(made[0], ignore_errors=True)
        raise
    finally:
        marker.unlink(missing_ok=True)  # before the lock goes: never a free marker of ours
        os.close(descriptor)


def _make_directories(root: Path) -> list[Path]:
    """Make ``root`` and the missing directories above it; those this call made,
    outermost first (one another process made meanwhile is not among them)."""
    missing = []
    for directory in [root, *root.parents]:
        if directory.is_dir():
            break
        missing.append(directory)
    made: list[Path] = []
    for directory in reversed(missing):
        try:
            os.mkdir(directory)
        except FileExistsError:
            if not directory.is_dir():
                raise RepositoryError(
                    f"Cannot make a repository at {root}: {directory} is a file, not a "
                    "directory. Choose another path."
                ) from None
        except OSError as exc:
            remove_empty(reversed(made))
            raise RepositoryError(
                f"Cannot make a repository at {root}: {exc.strerror or exc}; check the path and "
                "its permissions."
            ) from None
        else:
            made.append(directory)
    return made


def _claim(marker: Path, root: str) -> int:
    """A descriptor of ``marker``, locked by this process: made anew (locked before it
    appears under its name), or taken over from a creation that died."""
    while True:
        spare = marker.with_name(f"{marker.name}.{uuid.uuid4().hex[:12]}.tmp")
        descriptor = os.open(spare, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        try:
            os.link(spare, marker)  # appears locked: no one can take it for a dead one's
        except FileExistsError:
            os.close(descriptor)
        else:
            spare.unlink()
            return descriptor
        finally:
            spare.unlink(missing_ok=True)
        try:
            descriptor = os.open(marker, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # that creation ended meanwhile: try again
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(descriptor)
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise AlreadyExistsError(
                f"Another process is creating a repository at {root} right now; open it with "
                f"Butler({root!r}) once it is made, or create yours elsewhere. Nothing was "
                "changed."
            ) from None
        try:
            same = os.fstat(descriptor).st_ino == os.stat(marker).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return descriptor  # a creation that died left it: ours now
        os.close(descriptor)  # that creation ended between the open and the lock


def create_repository(
    root_uri: str,
    db: str | None,
    datastore: str | Mapping[str, Any] | None,
    universe: DimensionUniverse | None,
    namespace: str | None,
    *,
    overwrite: bool,
) -> tuple[SqlRegistry, Datastore]:
    """Write a new repository's configuration and schema; its registry and datastore."""
    exists = config_store(root_uri).exists(CONFIG_NAME)
    if exists and not overwrite:
        raise AlreadyExistsError(
            f"{root_uri} holds a repository already; open it with Butler({root_uri!r}), "
            "or pass overwrite=True (--overwrite) to replace it."
        )
    db_uri = db if db is not None else f"sqlite:///{ROOT_TOKEN}/registry.sqlite3"
    config = RepositoryConfig(
        root=root_uri,
        db=db_uri,
        datastore=datastore_config(datastore),
        namespace=namespace,
        managers={kind: cls_.__name__ for kind, cls_ in REGISTRY_MANAGERS.items()},
    )
    old = RepositoryConfig.read(root_uri) if exists and overwrite else None
    # The replaced repository's registry and datastores are set aside, not deleted, until
    # the new one stands: a failure (a bad --db, an occupied directory) puts them back.
    aside = _set_aside(root_uri, old) if old is not None else []
    try:
        _refuse_occupied_datastores(root_uri, config.datastore, old)
        registry = SqlRegistry.create(config.db_uri, universe=universe, namespace=namespace)
        try:
            datastore_ = datastore_from_config(
                config.datastore, registry.datastore_bridges, root=root_uri
            )
            config.write(overwrite=overwrite)
        except BaseException:
            registry.db.dispose()
            discard_default_registry(config)
            raise
    except BaseException:
        _put_back(aside)
        raise
    _discard(aside)
    return registry, datastore_


#: Name of the datastore a new repository gets by default.
DEFAULT_DATASTORE = "files"


def datastore_config(datastore: str | Mapping[str, Any] | None) -> dict[str, Any]:
    if datastore is None:
        return {"kind": "file", "name": DEFAULT_DATASTORE}
    if isinstance(datastore, str):
        return {"kind": "file", "name": DEFAULT_DATASTORE, "root": datastore}
    if isinstance(datastore, Mapping):
        return dict(datastore)
    raise ConfigurationError(
        f"datastore= must be a directory, an s3:// URI or a configuration mapping, not "
        f"{type(datastore).__name__}."
    )


def _refuse_occupied_datastores(
    root: str, datastore: Mapping[str, Any], old: RepositoryConfig | None
) -> None:
    """Refuse a local file datastore directory that holds anything already, or the repository.

    A datastore's directory holds only what the repository stores: `verify`
    reports anything else there as unknown, and ``delete_unknown`` deletes
    it. So files a user keeps there must not become the repository's. A
    directory the replaced repository (``old``, with ``overwrite``) used is
    its own; a datastore in trust mode reads what is there by design.
    """
    if root.startswith("s3://"):
        return
    before = {_where(root, entry) for entry in _file_datastores(old.datastore)} if old else set()
    for entry in _file_datastores(datastore):
        where = _where(root, entry)
        if where is None or where.startswith("s3://") or where in before or entry.get("trust"):
            continue
        directory = Path(where)
        if Path(root).resolve().is_relative_to(directory.resolve()):
            raise ConfigurationError(
                f"Datastore directory {where} holds the repository {root} itself (its "
                "butler.yaml and registry would look like artifacts no record mentions): give "
                f"a directory outside it or below it, such as {root.rstrip('/')}/files."
            )
        first = next(iter(sorted(directory.iterdir())), None) if directory.is_dir() else None
        if first is not None:
            raise AlreadyExistsError(
                f"Datastore directory {where} is not empty (it holds {first.name!r}); a "
                "datastore's directory is for what the repository stores (verify reports "
                "anything else there as unknown, and can delete it): give an empty or new "
                "directory."
            )


def _where(root: str, entry: Mapping[str, Any]) -> str | None:
    """The directory of a file datastore's configuration entry (`None` if it has none)."""
    where = entry.get("root")
    if isinstance(where, str):
        # A root that is no path at all is refused when the configuration is read.
        return where if where and "\0" not in where else None
    name = entry.get("name")
    return f"{root.rstrip('/')}/{name}" if isinstance(name, str) else None


def discard_default_registry(config: RepositoryConfig) -> None:
    """Delete the SQLite registry `Butler.create` made in the root, after a failure."""
    for path in _default_registry_files(config):
        path.unlink(missing_ok=True)


def _default_registry_files(config: RepositoryConfig) -> list[Path]:
    """The files of the SQLite registry ``config`` keeps in its local root (none if its
    registry is elsewhere)."""
    prefix = f"sqlite:///{ROOT_TOKEN}/"
    if not config.db.startswith(prefix):
        return []
    database = Path(config.root) / config.db.removeprefix(prefix)
    return [Path(f"{database}{suffix}") for suffix in SQLITE_FILE_SUFFIXES]


def _default_contents(root: str, old: RepositoryConfig) -> list[Path]:
    """What a repository keeps inside its local root: the SQLite registry, file stores."""
    if root.startswith("s3://"):
        return []
    base = Path(root)
    found = _default_registry_files(old)
    for entry in _file_datastores(old.datastore):
        if "root" not in entry and isinstance(entry.get("name"), str):
            target = base / entry["name"]
            if target.is_dir() and target.resolve().is_relative_to(base.resolve()):
                found.append(target)
    return [path for path in found if os.path.lexists(path)]


def _set_aside(root: str, old: RepositoryConfig) -> list[tuple[Path, Path]]:
    """Rename what the replaced repository keeps in its root out of the way (same
    directory, so nothing is copied); the ``(original, aside)`` pairs."""
    moved: list[tuple[Path, Path]] = []
    try:
        for path in _default_contents(root, old):
            aside = path.with_name(f".{path.name}.replaced-{os.getpid()}")
            path.rename(aside)
            moved.append((path, aside))
    except BaseException:
        _put_back(moved)
        raise
    return moved


def _put_back(moved: list[tuple[Path, Path]]) -> None:
    """Undo `_set_aside`: the replaced repository is whole again."""
    for path, aside in reversed(moved):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)  # what the failed creation made in its place
        elif os.path.lexists(path):
            path.unlink()
        aside.rename(path)


def _discard(moved: list[tuple[Path, Path]]) -> None:
    """Delete what `_set_aside` kept of the replaced repository, now that the new one stands
    (what cannot be deleted is logged and left: the new repository is whole)."""
    for _, aside in moved:
        try:
            if aside.is_dir() and not aside.is_symlink():
                shutil.rmtree(aside)
            else:
                aside.unlink(missing_ok=True)
        except OSError as exc:
            _LOG.warning("Could not delete %s, left by the replaced repository: %s", aside, exc)


def _file_datastores(config: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    if config.get("kind") == "file":
        yield config
    for child in config.get("datastores") or ():
        if isinstance(child, Mapping):
            yield from _file_datastores(child)
