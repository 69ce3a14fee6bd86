"""Translating a daf_butler dimension configuration into a universe description.

daf_butler describes its universe (``dimensions.yaml``; in a repository,
the JSON stored in ``butler_attributes`` under ``config:dimensions.json``)
as::

    {version, namespace, skypix: {...}, elements: {name: entry},
     topology: {spatial: {family: [element, ...]}, temporal: {family: [...]}},
     packers: {...}}

where an entry has ``doc``, ``keys`` (the first is the element's key, the
others alternate keys), ``requires``, ``implies``, ``metadata`` (fields with
``name``, ``type``, ``length``/``nbytes``, ``nullable``, ``doc``) and some
storage hints (``governor``, ``storage``, ``populated_by``,
``always_join``). An element with no keys is not a dimension (a join table
such as ``visit_definition``). The elements of a temporal family have a
timespan, those of a spatial family a region.

`translate_daf_butler_config` maps that onto databutler's description:
the same namespace, version, elements, keys, required and implied
relationships; alternate keys become non-nullable fields; ``hash`` fields
become ``bytes``; a timespan and a region become the ``timespan`` and
``region`` fields of the elements that have them. ``skypix`` (HTM and
HEALPix pixelizations) and ``packers`` are accepted and dropped: databutler
has no skypix dimensions and packs no data IDs. Anything else it does not
know (a storage class of its own, a field type, an unknown key) is a
`DimensionConfigError` that names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._exceptions import DimensionConfigError

__all__ = ["translate_daf_butler_config"]

_TOP = ("version", "namespace", "skypix", "elements", "topology", "packers")
_ENTRY = (
    "doc",
    "keys",
    "requires",
    "implies",
    "metadata",
    "governor",
    "storage",
    "populated_by",
    "always_join",
)
_FIELD = ("name", "type", "length", "nbytes", "nullable", "doc")
# daf_butler's column types, as databutler's field types.
_TYPES = {
    "string": "string",
    "int": "int",
    "float": "float",
    "bool": "bool",
    "datetime": "datetime",
    "hash": "bytes",
    "blob": "bytes",
    "region": "region",
    "timespan": "timespan",
}
_PACKAGE = "lsst.daf.butler.registry.dimensions."
# The record storage classes of daf_butler's default managers: how it stores
# records, which databutler decides for itself (one table per element).
_STORAGE = {
    _PACKAGE + "governor.BasicGovernorDimensionRecordStorage",
    _PACKAGE + "caching.CachingDimensionRecordStorage",
    _PACKAGE + "table.TableDimensionRecordStorage",
    _PACKAGE + "query.QueryDimensionRecordStorage",
}
_STORAGE_KEYS = ("cls", "nested", "view_of")


def translate_daf_butler_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A databutler universe description of a daf_butler dimension configuration.

    Parameters
    ----------
    config : `~collections.abc.Mapping` [`str`, `~typing.Any`]
        daf_butler's dimension configuration (see the module docstring).

    Returns
    -------
    description : `dict` [`str`, `~typing.Any`]
        The description, for `DimensionUniverse`.

    Raises
    ------
    DimensionConfigError
        For anything the translation does not know; the message names it.
    """
    top = _mapping(config, "The daf_butler dimension configuration")
    unknown = [str(k) for k in top if k not in _TOP]
    if unknown:
        raise DimensionConfigError(
            f"The daf_butler dimension configuration has unknown key(s) "
            f"{', '.join(map(repr, unknown))}; databutler translates only "
            f"{', '.join(map(repr, _TOP))}."
        )
    for name in ("version", "namespace", "elements"):
        if name not in top:
            raise DimensionConfigError(
                f"The daf_butler dimension configuration has no {name!r}; is it one "
                "(the JSON of config:dimensions.json, or dimensions.yaml)?"
            )
    elements = _mapping(top["elements"], "Its 'elements'")
    timespans, regions = _topology(top.get("topology", {}), elements)
    dimensions: dict[str, Any] = {}
    combinations: dict[str, Any] = {}
    for name, entry in elements.items():
        where = f"daf_butler element {name!r}"
        fields = _mapping(entry, where)
        unknown = [str(k) for k in fields if k not in _ENTRY]
        if unknown:
            raise DimensionConfigError(
                f"The {where} has unknown key(s) {', '.join(map(repr, unknown))}; databutler "
                f"translates only {', '.join(map(repr, _ENTRY))}."
            )
        if "storage" in fields:
            _check_storage(fields["storage"], where)
        keys = [
            _field(k, f"{where}: keys[{i}]") for i, k in enumerate(_list(fields, "keys", where))
        ]
        metadata = [
            _field(m, f"{where}: metadata[{i}]")
            for i, m in enumerate(_list(fields, "metadata", where))
        ]
        for alternate in keys[1:]:
            alternate.pop("nullable", None)
            alternate["nullable"] = False  # an alternate key always has a value upstream
        extra = [*keys[1:], *metadata]
        if name in regions:
            extra.append({"name": "region", "type": "region", "nullable": True})
        if name in timespans:
            extra.append({"name": "timespan", "type": "timespan", "nullable": True})
        description: dict[str, Any] = {
            "requires": _names(fields, "requires", where),
            "implies": _names(fields, "implies", where),
            "metadata": extra,
            "doc": _doc(fields.get("doc", ""), where),
        }
        if keys:
            key = keys[0]
            key.pop("nullable", None)
            dimensions[name] = {"key": key, **description}
        else:
            combinations[name] = description
    out: dict[str, Any] = {
        "namespace": top["namespace"],
        "version": top["version"],
        "dimensions": dimensions,
    }
    if combinations:
        out["elements"] = combinations
    return out


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise DimensionConfigError(f"{where} must be a mapping, not {_short(value)}.")
    return value


def _list(fields: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = fields.get(key, [])
    if value is None:
        return []
    if not isinstance(value, list):
        raise DimensionConfigError(f"The {where}: {key!r} must be a list, not {_short(value)}.")
    return value


def _names(fields: Mapping[str, Any], key: str, where: str) -> list[str]:
    names = _list(fields, key, where)
    for name in names:
        if not isinstance(name, str):
            raise DimensionConfigError(
                f"The {where}: {key!r} must list element names, not {_short(name)}."
            )
    return list(names)


def _doc(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise DimensionConfigError(f"The {where}: 'doc' must be text, not {_short(value)}.")
    return " ".join(value.split())


def _field(value: Any, where: str) -> dict[str, Any]:
    fields = _mapping(value, f"The {where}")
    unknown = [str(k) for k in fields if k not in _FIELD]
    if unknown:
        raise DimensionConfigError(
            f"The {where} has unknown key(s) {', '.join(map(repr, unknown))}; databutler "
            f"translates only {', '.join(map(repr, _FIELD))}."
        )
    dtype = fields.get("type")
    if not isinstance(dtype, str) or dtype not in _TYPES:
        raise DimensionConfigError(
            f"The {where} ({fields.get('name')!r}) has type {_short(dtype)}, which databutler "
            f"does not translate; known types: {', '.join(_TYPES)}."
        )
    out: dict[str, Any] = {"name": fields.get("name"), "type": _TYPES[dtype]}
    length = fields.get("nbytes") if _TYPES[dtype] == "bytes" else fields.get("length")
    if length is not None and _TYPES[dtype] in ("string", "bytes"):
        out["length"] = length
    if "nullable" in fields:
        out["nullable"] = fields["nullable"]
    return out


def _check_storage(value: Any, where: str) -> None:
    storage = _mapping(value, f"The {where}: 'storage'")
    unknown = [str(k) for k in storage if k not in _STORAGE_KEYS]
    if unknown:
        raise DimensionConfigError(
            f"The {where}: 'storage' has unknown key(s) {', '.join(map(repr, unknown))}; "
            "databutler knows the record storage of daf_butler's default managers only."
        )
    cls = storage.get("cls")
    if not isinstance(cls, str) or cls not in _STORAGE:
        raise DimensionConfigError(
            f"The {where} stores its records with {_short(cls)}, a storage class databutler "
            f"does not know (it knows {', '.join(sorted(_STORAGE))}); a custom storage class "
            "may change what the records mean, so the universe is not translated."
        )
    if "nested" in storage:
        _check_storage(storage["nested"], where)


def _topology(value: Any, elements: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    topology = _mapping(value, "Its 'topology'")
    unknown = [str(k) for k in topology if k not in ("spatial", "temporal")]
    if unknown:
        raise DimensionConfigError(
            f"The daf_butler topology has unknown key(s) {', '.join(map(repr, unknown))}; "
            "databutler translates 'spatial' and 'temporal' families."
        )
    found: dict[str, set[str]] = {}
    for kind in ("temporal", "spatial"):
        members: set[str] = set()
        for family, names in _mapping(topology.get(kind, {}), f"The {kind} topology").items():
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise DimensionConfigError(
                    f"The {kind} family {family!r} must list element names, not {_short(names)}."
                )
            strangers = [n for n in names if n not in elements]
            if strangers:
                raise DimensionConfigError(
                    f"The {kind} family {family!r} names {', '.join(map(repr, strangers))}, "
                    "which are not elements of the configuration."
                )
            members.update(names)
        found[kind] = members
    return found["temporal"], found["spatial"]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
