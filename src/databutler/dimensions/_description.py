"""Reading and checking a universe description.

A description is the JSON-able mapping a repository stores::

    {"namespace": "databutler", "version": 1,
     "dimensions": {"detector": {"key": {"name": "id", "type": "int"},
                                 "requires": ["instrument"], "implies": [],
                                 "metadata": [{"name": "full_name", "type": "string"}],
                                 "doc": "..."},
                    ...},
     "elements": {"visit_definition": {"requires": ["exposure", "visit"],
                                       "implies": [], "metadata": [], "doc": "..."},
                  ...}}

``elements`` (optional) declares the elements that have records but are not
dimensions: no key of their own, identified by the dimensions they require.

`parse_description` checks all of it and returns the dimensions in universe
order: a topological order (everything a dimension requires or implies comes
before it) that otherwise keeps the order of the description.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from ._elements import FIELD_TYPES, KEY_TYPES, Dimension, DimensionCombination, DimensionField
from ._exceptions import DimensionConfigError

__all__ = ["ParsedDescription", "load_json", "parse_description"]

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TOP_FIELDS = ("namespace", "version", "dimensions", "elements")
_REQUIRED_TOP_FIELDS = ("namespace", "version", "dimensions")
_DIMENSION_FIELDS = ("key", "requires", "implies", "metadata", "doc")
_ELEMENT_FIELDS = ("requires", "implies", "metadata", "doc")
_KEY_FIELDS = ("name", "type", "length")
_METADATA_FIELDS = ("name", "type", "length", "nullable")


class ParsedDescription(NamedTuple):
    """A checked universe description."""

    namespace: str
    version: int
    dimensions: tuple[Dimension, ...]
    """In universe order."""
    combinations: tuple[DimensionCombination, ...] = ()
    """The elements that are not dimensions, in the order of the description."""


def load_json(text: str | bytes) -> Any:
    """Parse JSON text, rejecting objects with a repeated key.

    Raises
    ------
    ValueError
        If ``text`` is not JSON (`json.JSONDecodeError`) or repeats a key
        (`DimensionConfigError`).
    """
    return json.loads(text, object_pairs_hook=_unique_keys)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DimensionConfigError(f"duplicate name {key!r} in one JSON object")
        result[key] = value
    return result


def parse_description(config: Any) -> ParsedDescription:
    """Check a universe description and build its dimensions.

    Parameters
    ----------
    config : `~collections.abc.Mapping` [`str`, `~typing.Any`]
        The description, as in the module docstring.

    Returns
    -------
    parsed : `ParsedDescription`
        The namespace, version and dimensions (in universe order).

    Raises
    ------
    DimensionConfigError
        If anything is missing, unknown, of the wrong type, repeated, or if
        the dimensions depend on each other in a cycle. The message names
        the dimension and the problem.
    """
    top = _check_fields(config, _TOP_FIELDS, required=_REQUIRED_TOP_FIELDS, where="The description")
    namespace = top["namespace"]
    if not isinstance(namespace, str):
        raise DimensionConfigError(
            f"The description's 'namespace' must be a string, not {namespace!r}."
        )
    version = top["version"]
    if not isinstance(version, int) or isinstance(version, bool):
        raise DimensionConfigError(
            f"The description's 'version' must be an integer, not {version!r}."
        )
    entries = top["dimensions"]
    if not isinstance(entries, Mapping):
        raise DimensionConfigError(
            f"The description's 'dimensions' must map dimension names to their descriptions, "
            f"not {entries!r}."
        )
    declared = {
        _check_dimension_name(name): _parse_entry(name, entry) for name, entry in entries.items()
    }
    _check_references(declared)
    order = _topological_order(declared)
    required: dict[str, set[str]] = {}
    for name in order:
        required[name] = set(declared[name].requires)
        for dependency in declared[name].requires:
            required[name] |= required[dependency]
    _check_implied(declared, required)
    position = {name: index for index, name in enumerate(order)}
    dimensions = tuple(
        Dimension(
            name=name,
            key=declared[name].key,
            required=tuple(sorted(required[name], key=position.__getitem__)),
            direct_required=declared[name].requires,
            implied=declared[name].implies,
            metadata=declared[name].metadata,
            doc=declared[name].doc,
        )
        for name in order
    )
    combinations = _parse_combinations(top.get("elements", {}), declared, required, position)
    return ParsedDescription(namespace, version, dimensions, combinations)


def _parse_combinations(
    entries: Any,
    declared: Mapping[str, _Entry],
    required: Mapping[str, set[str]],
    position: Mapping[str, int],
) -> tuple[DimensionCombination, ...]:
    if not isinstance(entries, Mapping):
        raise DimensionConfigError(
            f"The description's 'elements' must map element names to their descriptions, "
            f"not {entries!r}."
        )
    out = []
    for name, entry in entries.items():
        _check_dimension_name(name)
        where = f"Element {name!r}"
        if name in declared:
            raise DimensionConfigError(
                f"{where} is declared both under 'dimensions' and under 'elements'; keep one."
            )
        entry = _check_fields(entry, _ELEMENT_FIELDS, required=("requires",), where=where)
        requires = _parse_names(name, "requires", entry["requires"], what="Element")
        implies = _parse_names(name, "implies", entry.get("implies", []), what="Element")
        if not requires:
            raise DimensionConfigError(
                f"{where} requires no dimension; an element without a key of its own is "
                "identified by the dimensions it requires, so list at least one."
            )
        for kind, others in (("requires", requires), ("implies", implies)):
            for other in others:
                if other not in declared:
                    raise DimensionConfigError(
                        f"{where} {kind} unknown dimension {other!r}; known dimensions: "
                        f"{', '.join(declared)}."
                    )
        both = [other for other in requires if other in implies]
        if both:
            raise DimensionConfigError(f"{where} both requires and implies {both[0]!r}.")
        closed: set[str] = set(requires)
        for dependency in requires:
            closed |= required[dependency]
        for implied in implies:
            if implied in closed:
                raise DimensionConfigError(
                    f"{where} implies {implied!r}, which it already requires "
                    "(through another dimension)."
                )
            missing = sorted(required[implied] - closed)
            if missing:
                raise DimensionConfigError(
                    f"{where} implies {implied!r}, which requires "
                    f"{', '.join(map(repr, missing))}; {name!r} must require that too."
                )
        metadata = _parse_metadata(
            where,
            entry.get("metadata", []),
            {other: f"the dimension {other!r}" for other in (*closed, *implies)},
        )
        doc = entry.get("doc", "")
        if not isinstance(doc, str):
            raise DimensionConfigError(f"{where}: 'doc' must be a string, not {doc!r}.")
        out.append(
            DimensionCombination(
                name=name,
                required=tuple(sorted(closed, key=position.__getitem__)),
                direct_required=requires,
                implied=implies,
                metadata=metadata,
                doc=doc,
            )
        )
    return tuple(out)


def _parse_metadata(
    where: str, raw_metadata: Any, seen: Mapping[str, str]
) -> tuple[DimensionField, ...]:
    if not isinstance(raw_metadata, list):
        raise DimensionConfigError(
            f"{where}: 'metadata' must be a list of fields, not {raw_metadata!r}."
        )
    metadata = tuple(
        _parse_field(field, where=f"{where}: metadata field {index}", allowed=_METADATA_FIELDS)
        for index, field in enumerate(raw_metadata)
    )
    taken = dict(seen)
    for field in metadata:
        if field.name in taken:
            raise DimensionConfigError(
                f"{where}: metadata field {field.name!r} has the same name as {taken[field.name]}."
            )
        taken[field.name] = "another metadata field"
    return metadata


class _Entry(NamedTuple):
    key: DimensionField
    requires: tuple[str, ...]
    implies: tuple[str, ...]
    metadata: tuple[DimensionField, ...]
    doc: str


def _check_fields(
    config: Any, allowed: Iterable[str], *, required: Iterable[str], where: str
) -> Mapping[str, Any]:
    allowed = tuple(allowed)
    if not isinstance(config, Mapping):
        raise DimensionConfigError(
            f"{where} must be a mapping with fields {', '.join(map(repr, allowed))}, "
            f"not {config!r}."
        )
    unknown = [name for name in config if name not in allowed]
    if unknown:
        raise DimensionConfigError(
            f"{where} has unknown field(s) {', '.join(map(repr, unknown))}; "
            f"valid fields are {', '.join(map(repr, allowed))}."
        )
    missing = [name for name in required if name not in config]
    if missing:
        raise DimensionConfigError(f"{where} is missing {', '.join(map(repr, missing))}.")
    return config


def _check_dimension_name(name: Any) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise DimensionConfigError(
            f"Dimension name {name!r} is not valid; use ASCII letters, digits and underscores, "
            "starting with a letter or underscore."
        )
    return name


def _parse_entry(name: str, entry: Any) -> _Entry:
    where = f"Dimension {name!r}"
    entry = _check_fields(entry, _DIMENSION_FIELDS, required=("key",), where=where)
    key = _parse_field(
        entry["key"], where=f"{where}: its key", allowed=_KEY_FIELDS, types=KEY_TYPES
    )
    requires = _parse_names(name, "requires", entry.get("requires", []))
    implies = _parse_names(name, "implies", entry.get("implies", []))
    both = [other for other in requires if other in implies]
    if both:
        raise DimensionConfigError(f"{where} both requires and implies {both[0]!r}.")
    metadata = _parse_metadata(
        where,
        entry.get("metadata", []),
        {
            key.name: "its key",
            **{other: f"the dimension {other!r}" for other in requires + implies},
        },
    )
    if key.name in requires + implies:
        raise DimensionConfigError(
            f"{where}: its key {key.name!r} has the same name as the dimension {key.name!r}."
        )
    doc = entry.get("doc", "")
    if not isinstance(doc, str):
        raise DimensionConfigError(f"{where}: 'doc' must be a string, not {doc!r}.")
    return _Entry(key, requires, implies, metadata, doc)


def _parse_names(name: str, kind: str, value: Any, what: str = "Dimension") -> tuple[str, ...]:
    where = f"{what} {name!r}"
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise DimensionConfigError(
            f"{where}: {kind!r} must be a list of dimension names, not {value!r}."
        )
    if name in value:
        raise DimensionConfigError(f"{where} {kind} itself.")
    for index, item in enumerate(value):
        if item in value[:index]:
            raise DimensionConfigError(f"{where} lists {item!r} twice in {kind!r}.")
    return tuple(value)


def _parse_field(
    config: Any, *, where: str, allowed: tuple[str, ...], types: Iterable[str] = FIELD_TYPES
) -> DimensionField:
    types = tuple(types)
    config = _check_fields(config, allowed, required=("name", "type"), where=where)
    name = config["name"]
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise DimensionConfigError(
            f"{where} has the name {name!r}; use ASCII letters, digits and underscores, "
            "starting with a letter or underscore."
        )
    dtype = config["type"]
    if not isinstance(dtype, str) or dtype not in types:
        raise DimensionConfigError(
            f"{where} ({name!r}) has type {dtype!r}; valid types are {', '.join(map(repr, types))}."
        )
    length = config.get("length")
    if length is not None:
        if dtype not in ("string", "bytes"):
            raise DimensionConfigError(
                f"{where} ({name!r}) has a 'length', but only string and bytes fields have one."
            )
        if not isinstance(length, int) or isinstance(length, bool) or length < 1:
            raise DimensionConfigError(
                f"{where} ({name!r}) has length {length!r}; a length is a positive integer."
            )
    # Keys are never null; metadata fields are unless they say otherwise.
    nullable = config.get("nullable", True) if "nullable" in allowed else False
    if not isinstance(nullable, bool):
        raise DimensionConfigError(
            f"{where} ({name!r}) has nullable {nullable!r}; use true or false."
        )
    return DimensionField(name, dtype, length, nullable)


def _check_references(declared: Mapping[str, _Entry]) -> None:
    known = ", ".join(declared)
    for name, entry in declared.items():
        for kind, others in (("requires", entry.requires), ("implies", entry.implies)):
            for other in others:
                if other not in declared:
                    raise DimensionConfigError(
                        f"Dimension {name!r} {kind} unknown dimension {other!r}; "
                        f"known dimensions: {known}."
                    )


def _topological_order(declared: Mapping[str, _Entry]) -> list[str]:
    """Dependencies first; ties keep the declared order, so it is stable under round trips."""
    dependencies = {name: entry.requires + entry.implies for name, entry in declared.items()}
    order: list[str] = []
    done: set[str] = set()
    remaining = list(declared)
    while remaining:
        ready = next(
            (name for name in remaining if all(dep in done for dep in dependencies[name])), None
        )
        if ready is None:
            raise DimensionConfigError(_describe_cycle(remaining, dependencies))
        order.append(ready)
        done.add(ready)
        remaining.remove(ready)
    return order


def _describe_cycle(remaining: list[str], dependencies: Mapping[str, tuple[str, ...]]) -> str:
    # Each remaining dimension depends on another remaining one, so walking
    # those dependencies must come back to a dimension already seen.
    pending = set(remaining)
    path: list[str] = []
    current = remaining[0]
    while current not in path:
        path.append(current)
        current = next(dep for dep in dependencies[current] if dep in pending)
    cycle = [*path[path.index(current) :], current]
    return f"Dimension {current!r} depends on itself through a cycle: {' -> '.join(cycle)}."


def _check_implied(declared: Mapping[str, _Entry], required: Mapping[str, set[str]]) -> None:
    # A data ID finds an implied value in the implier's record; that value is
    # only a complete key if the implier also knows everything it requires.
    for name, entry in declared.items():
        for implied in entry.implies:
            if implied in required[name]:
                raise DimensionConfigError(
                    f"Dimension {name!r} implies {implied!r}, which it already requires "
                    "(through another dimension)."
                )
            missing = sorted(required[implied] - required[name])
            if missing:
                raise DimensionConfigError(
                    f"Dimension {name!r} implies {implied!r}, which requires "
                    f"{', '.join(map(repr, missing))}; {name!r} must require that too."
                )
