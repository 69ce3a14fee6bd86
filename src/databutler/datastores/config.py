"""Build datastores from configuration mappings, by short registered kind names.

A configuration names its ``kind`` (``"file"``, ``"memory"``, ``"chained"``)
and that kind's keys, for example::

    {"kind": "chained", "name": "main", "datastores": [
        {"kind": "file", "name": "files"},
        {"kind": "memory", "name": "cache"},
    ], "constraints": [None, {"accept": ["all"], "reject": ["raw"]}]}

Every kind takes an optional ``storage_classes`` key: storage classes to know
besides the shipped ones (or to redefine them), by name (see
`~databutler.storage_classes.StorageClassRegistry.with_config`)::

    {"kind": "file", "name": "files", "storage_classes": {
        "SourceTable": {"inherits": "ArrowTable"},
        "Notes": {"pytype": "str", "formatter": "text"},
    }}

A chain's storage classes are its children's too (a child's own entries win).

Every mistake (an unknown kind or key, a missing key, a value of the wrong
type) raises `~databutler.ConfigurationError` naming the key and what is valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from .._exceptions import ConfigurationError
from ..registry.interfaces import DatastoreRegistryBridgeManager
from ..storage_classes import StorageClassRegistry
from ._base import Datastore
from .chained import ChainedDatastore, Constraints
from .file import FileDatastore
from .memory import InMemoryDatastore

__all__ = ["KINDS", "DatastoreFactory", "datastore_from_config", "register_kind"]

_T = TypeVar("_T")

_BOOLEAN = "a boolean (true or false)"


class DatastoreFactory(Protocol):
    """Builds a datastore of one kind from its configuration."""

    def __call__(
        self,
        config: Mapping[str, Any],
        bridge_manager: DatastoreRegistryBridgeManager,
        *,
        root: str | None,
    ) -> Datastore:
        """The datastore ``config`` describes (``root``: the repository root, if any).

        Raises
        ------
        ConfigurationError
            If ``config`` is not valid for this kind.
        """
        ...


#: Kind name to factory; extend with `register_kind`.
KINDS: dict[str, DatastoreFactory] = {}


def register_kind(name: str, factory: DatastoreFactory, *, replace: bool = False) -> None:
    """Make ``{"kind": name, ...}`` configurations build datastores with ``factory``.

    Parameters
    ----------
    name : `str`
        The short kind name used in configurations.
    factory : `DatastoreFactory`
        Called as ``factory(config, bridge_manager, root=root)``.
    replace : `bool`, optional
        Allow replacing the factory of a kind registered already.

    Raises
    ------
    ConfigurationError
        If ``name`` is not a non-empty string, or is taken and ``replace`` is false.
    """
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"A datastore kind name must be a non-empty string, not {name!r}.")
    if name in KINDS and not replace:
        raise ConfigurationError(
            f"Datastore kind {name!r} is registered already; pass replace=True to replace it."
        )
    KINDS[name] = factory


def datastore_from_config(
    config: Mapping[str, Any],
    bridge_manager: DatastoreRegistryBridgeManager,
    *,
    root: str | None = None,
) -> Datastore:
    """The datastore a configuration describes.

    Parameters
    ----------
    config : `~collections.abc.Mapping` [`str`, `~typing.Any`]
        ``kind`` (one of `KINDS`) and that kind's keys.
    bridge_manager : `DatastoreRegistryBridgeManager`
        The registry's bridge manager.
    root : `str`, optional
        The repository root; a file datastore without ``root`` is put in
        ``<root>/<name>``.

    Returns
    -------
    datastore : `Datastore`
        The new datastore.

    Raises
    ------
    ConfigurationError
        If the kind is unknown, a key is unknown or missing, or a value has
        the wrong type.
    """
    if not isinstance(config, Mapping):
        raise ConfigurationError(
            f"A datastore configuration must be a mapping, not {type(config).__name__}."
        )
    if "kind" not in config:
        raise ConfigurationError(
            f"Datastore configuration lacks the required key 'kind' (one of {_valid(KINDS)})."
        )
    kind = config["kind"]
    if not isinstance(kind, str) or kind not in KINDS:
        raise ConfigurationError(
            f"Unknown datastore kind {kind!r}; valid kinds are {_valid(KINDS)}."
        )
    return KINDS[kind](config, bridge_manager, root=root)


# -- helpers -------------------------------------------------------------------


def _valid(names: Any) -> str:
    return ", ".join(repr(n) for n in sorted(names))


def _check_keys(
    what: str, config: Mapping[str, Any], required: tuple[str, ...], optional: tuple[str, ...]
) -> None:
    allowed = ("kind", *required, *optional)
    unknown = sorted(str(k) for k in config if k not in allowed)
    if unknown:
        raise ConfigurationError(
            f"Unknown key(s) {_valid(unknown)} in {what} configuration; "
            f"valid keys are {_valid(allowed)}."
        )
    for key in required:
        if key not in config:
            raise ConfigurationError(
                f"{what.capitalize()} configuration lacks required key {key!r}."
            )


def _typed(
    what: str, config: Mapping[str, Any], key: str, kind: type[_T], expected: str
) -> _T | None:
    """The value of ``key`` (`None` if absent or null), checked to be a ``kind``."""
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, kind):
        raise ConfigurationError(
            f"Key {key!r} of {what} configuration must be {expected}, "
            f"not {type(value).__name__} {value!r}."
        )
    return value


def _str_mapping(what: str, config: Mapping[str, Any], key: str) -> dict[str, str] | None:
    value = config.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigurationError(
            f"Key {key!r} of {what} configuration must be a mapping of strings to strings, "
            f"not {value!r}."
        )
    return dict(value)


def _storage_classes(what: str, config: Mapping[str, Any]) -> StorageClassRegistry | None:
    """The shipped storage classes plus the configured ones; `None` if none are configured."""
    value = config.get("storage_classes")
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"Key 'storage_classes' of {what} configuration must be a mapping of storage "
            f"class name to its description, not {value!r}."
        )
    return StorageClassRegistry().with_config(value)


def _name(what: str, config: Mapping[str, Any]) -> str:
    name = _typed(what, config, "name", str, "a string")
    if not name:
        raise ConfigurationError(f"Key 'name' of {what} configuration must not be empty.")
    return name


# -- the built-in kinds ----------------------------------------------------------


def _file(
    config: Mapping[str, Any], bridge_manager: DatastoreRegistryBridgeManager, *, root: str | None
) -> Datastore:
    what = "file datastore"
    optional = (
        "templates",
        "formatters",
        "checksum",
        "fsync",
        "records_table",
        "trust",
        "storage_classes",
    )
    _check_keys(what, config, ("name",), ("root", *optional))
    name = _name(what, config)
    where = _typed(what, config, "root", str, "a string")
    if where is not None and (not where or "\0" in where):
        raise ConfigurationError(
            f"File datastore {name!r}: key 'root' is {where!r}, which names no directory; "
            f"give a directory path or s3:// URI{' without NUL characters' if where else ''}."
        )
    if where is None:
        if root is None:
            raise ConfigurationError(
                f"File datastore {name!r} lacks required key 'root' (it is optional only "
                "when a repository root is given)."
            )
        where = f"{root.rstrip('/')}/{name}"
    return FileDatastore(
        name,
        bridge_manager,
        where,
        templates=_str_mapping(what, config, "templates"),
        formatters=_str_mapping(what, config, "formatters"),
        checksum=bool(_typed(what, config, "checksum", bool, _BOOLEAN)),
        fsync=bool(_typed(what, config, "fsync", bool, _BOOLEAN)),
        records_table=_typed(what, config, "records_table", str, "a string"),
        trust=bool(_typed(what, config, "trust", bool, _BOOLEAN)),
        storage_classes=_storage_classes(what, config),
    )


def _memory(
    config: Mapping[str, Any], bridge_manager: DatastoreRegistryBridgeManager, *, root: str | None
) -> Datastore:
    what = "memory datastore"
    _check_keys(what, config, ("name",), ("copy_on_get", "storage_classes"))
    copy_on_get = _typed(what, config, "copy_on_get", bool, _BOOLEAN)
    return InMemoryDatastore(
        _name(what, config),
        bridge_manager,
        copy_on_get=True if copy_on_get is None else copy_on_get,
        storage_classes=_storage_classes(what, config),
    )


def _chained(
    config: Mapping[str, Any], bridge_manager: DatastoreRegistryBridgeManager, *, root: str | None
) -> Datastore:
    what = "chained datastore"
    _check_keys(what, config, ("name", "datastores"), ("constraints", "storage_classes"))
    name = _name(what, config)
    children_config = _typed(what, config, "datastores", list, "a list of configurations")
    if not children_config:
        raise ConfigurationError(f"Chained datastore {name!r} needs at least one datastore.")
    _storage_classes(what, config)  # checked here, named by the chain
    shared = config.get("storage_classes")
    children = []
    for i, child in enumerate(children_config):
        if shared and isinstance(child, Mapping):
            child = {**child, "storage_classes": {**shared, **child.get("storage_classes", {})}}
        try:
            children.append(datastore_from_config(child, bridge_manager, root=root))
        except ConfigurationError as exc:
            raise ConfigurationError(f"Chained datastore {name!r}, datastores[{i}]: {exc}") from exc
    raw = _typed(what, config, "constraints", list, "a list (one entry per datastore)")
    if raw is None:
        return ChainedDatastore(name, children)
    if len(raw) != len(children):
        raise ConfigurationError(
            f"Key 'constraints' of chained datastore {name!r} has {len(raw)} entries for "
            f"{len(children)} datastores; give one entry (or null) per datastore."
        )
    return ChainedDatastore(
        name, children, constraints=[_constraints(name, i, c) for i, c in enumerate(raw)]
    )


def _constraints(name: str, i: int, raw: Any) -> Constraints | None:
    what = f"constraints[{i}] of chained datastore {name!r}"
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigurationError(
            f"Entry {what} must be a mapping with 'accept' and/or 'reject', or null, not {raw!r}."
        )
    unknown = sorted(str(k) for k in raw if k not in ("accept", "reject"))
    if unknown:
        raise ConfigurationError(
            f"Unknown key(s) {_valid(unknown)} in {what}; valid keys are 'accept', 'reject'."
        )
    lists = {}
    for key, default in (("accept", ["all"]), ("reject", [])):
        value = raw.get(key, default)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigurationError(
                f"Key {key!r} of {what} must be a list of strings, not {value!r}."
            )
        lists[key] = value
    return Constraints(accept=lists["accept"], reject=lists["reject"])


register_kind("file", _file)
register_kind("memory", _memory)
register_kind("chained", _chained)
