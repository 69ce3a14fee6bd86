"""A repository's ``butler.yaml``: where its registry database and datastore are.

::

    databutler: {version: 1}
    registry:
      db: sqlite:///<butlerRoot>/registry.sqlite3
      managers: {attributes: DefaultButlerAttributeManager, ...}
    datastore: {kind: file, name: files}

``<butlerRoot>`` stands for the directory (or S3 prefix) holding the file, so
a repository on local disk can be moved as a whole. A file datastore without
``root`` keeps its artifacts in ``<butlerRoot>/<name>``.
"""

from __future__ import annotations

import os
import re
import stat
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._arguments import path_problem
from .._exceptions import ConfigurationError, RepositoryError, RepositoryNotFoundError
from ..datastores.resources import ResourceStore, file_kind, store_for

__all__ = ["CONFIG_NAME", "ROOT_TOKEN", "RepositoryConfig", "normalize_root"]

#: The configuration file at a repository's root.
CONFIG_NAME = "butler.yaml"

#: Stands for the repository root in stored URIs.
ROOT_TOKEN = "<butlerRoot>"

#: The layout version this code writes and reads.
CONFIG_VERSION = 1

_TOP_KEYS = ("databutler", "registry", "datastore")
_REGISTRY_KEYS = ("db", "namespace", "managers")
_SCHEMA_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def normalize_root(root: str | os.PathLike[str]) -> str:
    """A repository root as a URI-like string: an absolute path or ``s3://bucket/prefix``.

    A path to a ``butler.yaml`` file means the directory holding it.
    """
    text = os.fspath(root)
    if not isinstance(text, str):
        raise TypeError(f"A repository root must be a str or os.PathLike[str], not {text!r}.")
    if not text:
        raise ConfigurationError(
            f"Invalid repository root {text!r}: give a directory path or s3://bucket/prefix."
        )
    problem = path_problem(text)
    if problem is not None:
        raise ConfigurationError(f"Invalid repository root: {problem}.")
    if text.startswith("s3://"):
        text = text.rstrip("/")
        return text.removesuffix(f"/{CONFIG_NAME}")
    if "://" in text and not text.startswith("file://"):
        scheme = text.split("://", 1)[0]
        raise ConfigurationError(
            f"Unsupported repository root {text!r} (scheme {scheme!r}); use a local path or "
            "s3://bucket/prefix."
        )
    try:
        path = Path(text.removeprefix("file://")).expanduser().absolute()
    except RuntimeError as exc:  # ``~user`` of a user this system does not have
        raise ConfigurationError(
            f"Invalid repository root {text!r}: {exc} Give an absolute or relative path."
        ) from None
    if path.name == CONFIG_NAME:
        path = path.parent
    text = str(path)
    # POSIX keeps a leading "//" (pathlib and os.path both do); on Linux it is "/", and in a
    # URI it would be read as an authority ("sqlite:////" + "//tmp/r" names host "tmp").
    return "/" + text.lstrip("/") if text.startswith("//") else text


def root_in_uri(root: str) -> str:
    """``root`` as it replaces `ROOT_TOKEN` in a URI: percent-encoded, no trailing ``/``
    (the root ``/`` must give ``sqlite:////registry.sqlite3``, not a URI with a host)."""
    return urllib.parse.quote(root.rstrip("/"), safe="/:")


@dataclass
class RepositoryConfig:
    """The parsed ``butler.yaml`` of a repository.

    Parameters
    ----------
    root : `str`
        The repository root (see `normalize_root`).
    db : `str`
        Registry database URI; may contain ``<butlerRoot>``.
    datastore : `dict`
        The datastore configuration (see `databutler.datastores.datastore_from_config`).
    namespace : `str`, optional
        PostgreSQL schema of the registry tables.
    managers : `dict` [`str`, `str`]
        Manager kind to class name, as created (informational: the database
        records the authoritative classes and versions).
    """

    root: str
    db: str
    datastore: dict[str, Any]
    namespace: str | None = None
    managers: dict[str, str] = field(default_factory=dict)

    @property
    def db_uri(self) -> str:
        """The database URI with ``<butlerRoot>`` replaced (percent-encoded, as URIs need)."""
        return self.db.replace(ROOT_TOKEN, root_in_uri(self.root))

    def to_dict(self) -> dict[str, Any]:
        """What ``butler.yaml`` holds."""
        registry: dict[str, Any] = {"db": self.db}
        if self.namespace:
            registry["namespace"] = self.namespace
        if self.managers:
            registry["managers"] = dict(self.managers)
        return {
            "databutler": {"version": CONFIG_VERSION},
            "registry": registry,
            "datastore": self.datastore,
        }

    def to_yaml(self) -> str:
        """``butler.yaml``'s text."""
        import yaml

        return str(yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_dict(cls, root: str, data: Any, *, source: str) -> RepositoryConfig:
        """Check and parse ``butler.yaml``'s content.

        Raises
        ------
        ConfigurationError
            If a key is unknown or missing, or a value has the wrong type.
        """
        if not isinstance(data, Mapping):
            raise RepositoryError(
                f"{source} must hold a mapping with keys 'registry' and 'datastore', not "
                f"{_shown(data)}; restore it from a backup or recreate the repository."
            )
        _check_keys(source, data, _TOP_KEYS, required=("registry", "datastore"))
        header = data.get("databutler")
        if header is None:
            header = {}
        if not isinstance(header, Mapping):
            raise RepositoryError(
                f"Key 'databutler' of {source} must be a mapping like {{version: "
                f"{CONFIG_VERSION}}}, not {_shown(header)}."
            )
        _check_keys(f"'databutler' of {source}", header, ("version",), required=())
        version = header.get("version", CONFIG_VERSION)
        if isinstance(version, bool) or not isinstance(version, int):
            raise RepositoryError(
                f"Key 'databutler.version' of {source} must be an integer (this databutler "
                f"writes {CONFIG_VERSION}), not {_shown(version)}."
            )
        if version != CONFIG_VERSION:
            raise RepositoryError(
                f"{source} has layout version {version!r}; this databutler reads version "
                f"{CONFIG_VERSION}. Upgrade databutler to open this repository."
            )
        registry = data["registry"]
        if not isinstance(registry, Mapping):
            raise RepositoryError(
                f"Key 'registry' of {source} must be a mapping with key 'db', not "
                f"{_shown(registry)}."
            )
        _check_keys(f"'registry' of {source}", registry, _REGISTRY_KEYS, required=("db",))
        db = registry["db"]
        if not isinstance(db, str) or not db.strip():
            raise RepositoryError(
                f"Key 'registry.db' of {source} must be a database URI such as "
                f"sqlite:///{ROOT_TOKEN}/registry.sqlite3 or postgresql://host/db, not "
                f"{_shown(db)}."
            )
        _check_db_uri(root, db, source)
        namespace = registry.get("namespace")
        if namespace is not None and (
            not isinstance(namespace, str) or not _SCHEMA_RE.fullmatch(namespace)
        ):
            raise RepositoryError(
                f"Key 'registry.namespace' of {source} must be a PostgreSQL schema name "
                f"(1-63 letters, digits and underscores) or absent, not {_shown(namespace)}."
            )
        if namespace is not None and db.startswith("sqlite"):
            raise RepositoryError(
                f"Key 'registry.namespace' of {source} is for PostgreSQL; an SQLite registry "
                "has no namespaces: remove the key."
            )
        managers = registry.get("managers")
        if managers is None:
            managers = {}
        if not isinstance(managers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in managers.items()
        ):
            raise RepositoryError(
                f"Key 'registry.managers' of {source} must be a mapping of manager kinds to "
                f"class names (strings), not {_shown(managers)}."
            )
        datastore = data["datastore"]
        if not isinstance(datastore, Mapping):
            raise RepositoryError(
                f"Key 'datastore' of {source} must be a datastore configuration mapping such "
                f"as {{kind: file, name: files}}, not {_shown(datastore)}."
            )
        return cls(
            root=root,
            db=db,
            datastore=dict(datastore),
            namespace=namespace,
            managers=dict(managers),
        )

    @classmethod
    def read(cls, root: str) -> RepositoryConfig:
        """Read ``butler.yaml`` at ``root``.

        Raises
        ------
        RepositoryNotFoundError
            If there is no repository there (nothing is created).
        RepositoryError
            If ``butler.yaml`` cannot be read or is not a valid configuration.
        """
        import yaml

        source = f"{root}/{CONFIG_NAME}"
        text = _read_config(root, source)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            detail = " ".join(str(exc).split())
            raise RepositoryError(
                f"{source} is not valid YAML ({detail}); fix the file or restore it from a backup."
            ) from None
        return cls.from_dict(root, data, source=source)

    def write(self, *, overwrite: bool = False) -> None:
        """Write ``butler.yaml`` (`FileExistsError` if present and not ``overwrite``)."""
        config_store(self.root).write(CONFIG_NAME, self.to_yaml().encode(), overwrite=overwrite)


def config_store(root: str) -> ResourceStore:
    """The resource store of a repository root (created when local and missing).

    Raises
    ------
    RepositoryError
        If a local root is a file, or its directory cannot be created.
    """
    if "://" not in root:
        path = Path(root)
        try:
            blocker = next(
                (p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None
            )
            if blocker is not None:
                raise RepositoryError(
                    f"Cannot make a repository at {root}: {blocker} is a file, not a directory. "
                    "Choose another path."
                )
            return store_for(root)
        except OSError as exc:
            raise RepositoryError(
                f"Cannot make a repository at {root}: {exc.strerror or exc}; check the path and "
                "its permissions."
            ) from None
    return store_for(root)


def _check_keys(
    what: str, data: Mapping[str, Any], allowed: tuple[str, ...], *, required: tuple[str, ...]
) -> None:
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise RepositoryError(
            f"Unknown key(s) {', '.join(map(repr, unknown))} in {what}; valid keys are "
            f"{', '.join(map(repr, allowed))}."
        )
    missing = [k for k in required if k not in data]
    if missing:
        raise RepositoryError(f"{what} lacks required key(s) {', '.join(map(repr, missing))}.")


def _shown(value: Any) -> str:
    """A value for a message: its type and a short repr."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _no_repository(root: str, why: str) -> RepositoryNotFoundError:
    return RepositoryNotFoundError(
        f"No repository at {root}: {why}. Check the path, or create one with "
        f"'databutler create {root}' (Butler.create in Python)."
    )


def _read_config(root: str, source: str) -> bytes:
    """``butler.yaml``'s bytes, without creating anything."""
    if "://" in root:
        try:
            return config_store(root).read(CONFIG_NAME)
        except FileNotFoundError:
            raise _no_repository(root, f"it has no {CONFIG_NAME}") from None
    path = Path(root)
    try:
        is_dir = path.is_dir()
        exists = is_dir or path.exists()
    except OSError as exc:
        raise RepositoryError(
            f"Cannot open {root}: {exc.strerror or exc}; check the path and its permissions."
        ) from None
    if not exists:
        raise _no_repository(root, "the directory does not exist")
    if not is_dir:
        raise _no_repository(root, "it is a file, not a repository directory")
    try:
        return read_regular_file(path / CONFIG_NAME, source)
    except FileNotFoundError:
        raise _no_repository(root, f"it has no {CONFIG_NAME}") from None
    except OSError as exc:
        raise RepositoryError(
            f"Cannot read {source}: {exc.strerror or exc}; check the path and its permissions."
        ) from None


def read_regular_file(path: Path, source: str) -> bytes:
    """The bytes of ``path``, refused unless it is a regular file (after links).

    Opened without blocking and checked on the open descriptor: a named pipe
    would block the open or the read until a writer came, a device such as
    ``/dev/zero`` would never end it.

    Raises
    ------
    RepositoryError
        If ``path`` is a directory, a named pipe, a device or a socket.
    OSError
        If it cannot be opened or read (`FileNotFoundError` if it is not there).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError:
        # A socket cannot be opened at all (nor, on some systems, a directory).
        try:
            mode = os.stat(path).st_mode
        except OSError:
            mode = stat.S_IFREG  # not there, or not to be looked at: the open's error says
        if not stat.S_ISREG(mode):
            raise _not_a_file(source, mode) from None
        raise
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise _not_a_file(source, mode)
        os.set_blocking(descriptor, True)  # a regular file never blocks anyway
        with os.fdopen(descriptor, "rb", closefd=False) as stream:
            return stream.read()
    finally:
        os.close(descriptor)


def _not_a_file(source: str, mode: int) -> RepositoryError:
    return RepositoryError(
        f"{source} is {file_kind(mode)}, not a configuration file; nothing was read. "
        f"Move it away and restore the repository's {CONFIG_NAME}."
    )


def _check_db_uri(root: str, db: str, source: str) -> None:
    from ..registry.databases import database_class_for_uri

    if ROOT_TOKEN in db and "://" in root and db.startswith("sqlite:"):
        raise RepositoryError(
            f"Key 'registry.db' of {source} puts an SQLite file under {root}, which is not "
            "a local directory; use a PostgreSQL URI (postgresql://host/db)."
        )
    try:
        database_class_for_uri(db.replace(ROOT_TOKEN, root_in_uri(root)))
    except ConfigurationError as exc:
        raise RepositoryError(f"Key 'registry.db' of {source}: {exc}") from None
