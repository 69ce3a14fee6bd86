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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._exceptions import ConfigurationError
from ..datastores.resources import ResourceStore, store_for

__all__ = ["CONFIG_NAME", "ROOT_TOKEN", "RepositoryConfig", "normalize_root"]

#: The configuration file at a repository's root.
CONFIG_NAME = "butler.yaml"

#: Stands for the repository root in stored URIs.
ROOT_TOKEN = "<butlerRoot>"

#: The layout version this code writes and reads.
CONFIG_VERSION = 1

_TOP_KEYS = ("databutler", "registry", "datastore")
_REGISTRY_KEYS = ("db", "namespace", "managers")


def normalize_root(root: str | os.PathLike[str]) -> str:
    """A repository root as a URI-like string: an absolute path or ``s3://bucket/prefix``.

    A path to a ``butler.yaml`` file means the directory holding it.
    """
    text = os.fspath(root)
    if text.startswith("s3://"):
        text = text.rstrip("/")
        return text.removesuffix(f"/{CONFIG_NAME}")
    if "://" in text and not text.startswith("file://"):
        scheme = text.split("://", 1)[0]
        raise ConfigurationError(
            f"Unsupported repository root {text!r} (scheme {scheme!r}); use a local path or "
            "s3://bucket/prefix."
        )
    path = Path(text.removeprefix("file://")).expanduser().absolute()
    if path.name == CONFIG_NAME:
        path = path.parent
    return str(path)


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
        """The database URI with ``<butlerRoot>`` replaced."""
        return self.db.replace(ROOT_TOKEN, self.root)

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
            raise ConfigurationError(f"{source} must hold a mapping, not {type(data).__name__}.")
        _check_keys(source, data, _TOP_KEYS, required=("registry", "datastore"))
        version = (data.get("databutler") or {}).get("version", CONFIG_VERSION)
        if version != CONFIG_VERSION:
            raise ConfigurationError(
                f"{source} has layout version {version!r}; this databutler reads version "
                f"{CONFIG_VERSION}. Upgrade databutler to open this repository."
            )
        registry = data["registry"]
        if not isinstance(registry, Mapping):
            raise ConfigurationError(f"Key 'registry' of {source} must be a mapping.")
        _check_keys(f"'registry' of {source}", registry, _REGISTRY_KEYS, required=("db",))
        db = registry["db"]
        if not isinstance(db, str) or not db:
            raise ConfigurationError(f"Key 'registry.db' of {source} must be a database URI.")
        datastore = data["datastore"]
        if not isinstance(datastore, Mapping):
            raise ConfigurationError(f"Key 'datastore' of {source} must be a mapping.")
        managers = registry.get("managers") or {}
        return cls(
            root=root,
            db=db,
            datastore=dict(datastore),
            namespace=registry.get("namespace"),
            managers={str(k): str(v) for k, v in dict(managers).items()},
        )

    @classmethod
    def read(cls, root: str) -> RepositoryConfig:
        """Read ``butler.yaml`` at ``root``.

        Raises
        ------
        FileNotFoundError
            If there is no repository there.
        ConfigurationError
            If the file is not a valid configuration.
        """
        import yaml

        store = config_store(root)
        try:
            text = store.read(CONFIG_NAME)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"No repository at {root}: it has no {CONFIG_NAME}. Create one with "
                f"Butler.create({root!r}) or 'databutler create {root}'."
            ) from None
        source = f"{root}/{CONFIG_NAME}"
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"{source} is not valid YAML: {exc}") from None
        return cls.from_dict(root, data, source=source)

    def write(self, *, overwrite: bool = False) -> None:
        """Write ``butler.yaml`` (`FileExistsError` if present and not ``overwrite``)."""
        config_store(self.root).write(CONFIG_NAME, self.to_yaml().encode(), overwrite=overwrite)


def config_store(root: str) -> ResourceStore:
    """The resource store of a repository root (created when local and missing)."""
    return store_for(root)


def _check_keys(
    what: str, data: Mapping[str, Any], allowed: tuple[str, ...], *, required: tuple[str, ...]
) -> None:
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise ConfigurationError(
            f"Unknown key(s) {', '.join(map(repr, unknown))} in {what}; valid keys are "
            f"{', '.join(map(repr, allowed))}."
        )
    missing = [k for k in required if k not in data]
    if missing:
        raise ConfigurationError(f"{what} lacks required key(s) {', '.join(map(repr, missing))}.")
