"""The dimension universe: every dimension a repository knows."""

from __future__ import annotations

import functools
import importlib.resources
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ._daf_butler import translate_daf_butler_config
from ._description import load_json, parse_description
from ._elements import Dimension, DimensionCombination, Immutable
from ._exceptions import DimensionConfigError, UnknownDimensionError
from ._group import DimensionGroup

__all__ = ["DimensionUniverse"]

_DEFAULT_RESOURCE = "default_universe.json"


_GROUP_CACHE_SIZE = 4096
"""How many groups a universe keeps (there are few distinct ones in practice)."""


@functools.cache
def _default_description_text() -> str:
    return importlib.resources.files(__package__).joinpath(_DEFAULT_RESOURCE).read_text("utf-8")


class DimensionUniverse(Immutable):
    """All the dimensions known to a repository.

    A repository stores its universe (`to_json`) when it is created and
    rebuilds it (`from_json`) whenever it is opened, so it keeps its own
    dimensions whatever the code's default is.

    Parameters
    ----------
    config : `~collections.abc.Mapping` [`str`, `~typing.Any`], optional
        A universe description (see `from_config`); by default, the one that
        ships with databutler (``default_universe.json``).
    namespace : `str`, optional
        Overrides the description's namespace: who defined this universe.
    version : `int`, optional
        Overrides the description's version within its namespace.

    Raises
    ------
    DimensionConfigError
        If the description is not valid; the message names the dimension and
        the problem.
    TypeError
        If ``config`` is text (use `from_json`).

    Notes
    -----
    Two universes are equal when their namespace, version and description
    are; the order of the dimensions (`names`) is part of the description.
    Instances are immutable and hashable.
    """

    __slots__ = (
        "_combinations",
        "_dimensions",
        "_elements",
        "_groups",
        "_hash",
        "_json",
        "_names",
        "_namespace",
        "_version",
    )

    _namespace: str
    _version: int
    _dimensions: dict[str, Dimension]
    _names: tuple[str, ...]
    _combinations: dict[str, DimensionCombination]
    _elements: tuple[str, ...]
    _json: str
    _hash: int
    _groups: dict[frozenset[str], DimensionGroup]

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        *,
        namespace: str | None = None,
        version: int | None = None,
    ) -> None:
        if config is None:
            config = load_json(_default_description_text())
        elif isinstance(config, str | bytes):
            raise TypeError(
                "A universe description is a mapping, not text; use DimensionUniverse.from_json "
                "for JSON text, and namespace= and version= to set those."
            )
        if (namespace is not None or version is not None) and isinstance(config, Mapping):
            config = dict(config)
            if namespace is not None:
                config["namespace"] = namespace
            if version is not None:
                config["version"] = version
        parsed = parse_description(config)
        dimensions = {dimension.name: dimension for dimension in parsed.dimensions}
        setattr_ = object.__setattr__
        setattr_(self, "_namespace", parsed.namespace)
        setattr_(self, "_version", parsed.version)
        setattr_(self, "_dimensions", dimensions)
        setattr_(self, "_names", tuple(dimensions))
        combinations = {element.name: element for element in parsed.combinations}
        setattr_(self, "_combinations", combinations)
        setattr_(self, "_elements", (*dimensions, *combinations))
        setattr_(self, "_json", json.dumps(self.to_config()))
        setattr_(self, "_hash", hash(self._json))
        setattr_(self, "_groups", {})

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DimensionUniverse:
        """Build a universe from a description.

        Parameters
        ----------
        config : `~collections.abc.Mapping` [`str`, `~typing.Any`]
            ``{"namespace": str, "version": int, "dimensions": {name: entry}}``.
            Each entry has a ``key`` (``{"name": ..., "type": "string" | "int",
            "length": N}``, length optional) and optionally ``requires`` and
            ``implies`` (lists of dimension names), ``metadata`` (a list of
            ``{"name", "type", "length"?, "nullable"?}`` with type ``string``,
            ``int``, ``float``, ``bool``, ``datetime``, ``timespan``,
            ``region`` or ``bytes``; nullable by default) and ``doc``. An
            optional ``"elements": {name: entry}`` declares elements that are
            not dimensions: ``requires`` (at least one dimension) and
            optionally ``implies``, ``metadata`` and ``doc``.

        Returns
        -------
        universe : `DimensionUniverse`
            The universe it describes.

        Raises
        ------
        DimensionConfigError
            If a field is missing, unknown or of the wrong type, a name is
            repeated, a dimension requires or implies one that does not
            exist, or the dimensions depend on each other in a cycle.
        """
        return cls(config)

    @classmethod
    def from_daf_butler_config(cls, config: Mapping[str, Any]) -> DimensionUniverse:
        """The universe of a daf_butler dimension configuration, translated.

        Parameters
        ----------
        config : `~collections.abc.Mapping` [`str`, `~typing.Any`]
            daf_butler's dimension configuration: the JSON its registries
            store in ``butler_attributes`` under ``config:dimensions.json``
            (parsed), or its ``dimensions.yaml``.

        Returns
        -------
        universe : `DimensionUniverse`
            The same namespace and version (``daf_butler``, 8, ...), the same
            dimensions, keys and relationships; elements without a key of
            their own (``visit_definition``) are elements that are not
            dimensions; alternate keys (``exposure.obs_id``) are non-nullable
            fields; the elements of its temporal and spatial families have a
            ``timespan`` and a ``region`` field. Skypix dimensions and data ID
            packers are left out.

        Raises
        ------
        DimensionConfigError
            If the configuration has something the translation does not know
            (a record storage class of its own, a field type, a key); the
            message names it.
        """
        if not isinstance(config, Mapping):
            raise DimensionConfigError(
                f"A daf_butler dimension configuration is a mapping (parse its JSON or YAML "
                f"first), not {type(config).__name__}."
            )
        description = translate_daf_butler_config(config)
        try:
            return cls(description)
        except DimensionConfigError as exc:
            raise DimensionConfigError(
                f"The daf_butler dimension configuration does not make a databutler universe: {exc}"
            ) from None

    @classmethod
    def from_json(cls, text: str) -> DimensionUniverse:
        """Rebuild a universe from `to_json` output.

        Parameters
        ----------
        text : `str`
            The JSON description, as stored in a repository.

        Returns
        -------
        universe : `DimensionUniverse`
            The universe it describes.

        Raises
        ------
        DimensionConfigError
            If ``text`` is not JSON or not a valid description. This is a
            `ValueError`; the message says what is wrong.
        """
        try:
            config = load_json(text)
            if not isinstance(config, dict):
                raise DimensionConfigError(f"the JSON holds {type(config).__name__}, not an object")
            return cls(config)
        except (ValueError, TypeError) as exc:
            preview = repr(text[:80]) if isinstance(text, str | bytes) else repr(text)
            raise DimensionConfigError(
                f"Stored dimension universe {preview} is not valid; expected a JSON object "
                f"with 'namespace', 'version' and 'dimensions': {exc}"
            ) from exc

    def to_config(self) -> dict[str, Any]:
        """The full description of this universe, defaults filled in.

        Returns
        -------
        config : `dict` [`str`, `~typing.Any`]
            A new JSON-able mapping that `from_config` turns back into an
            equal universe; dimensions are in universe order.
        """
        config: dict[str, Any] = {
            "namespace": self._namespace,
            "version": self._version,
            "dimensions": {name: dim.to_config() for name, dim in self._dimensions.items()},
        }
        if self._combinations:
            config["elements"] = {
                name: element.to_config() for name, element in self._combinations.items()
            }
        return config

    def to_json(self) -> str:
        """Serialise to the JSON stored in a repository's attributes.

        Returns
        -------
        text : `str`
            The full description (`to_config`); the same text for equal
            universes.
        """
        return self._json

    @property
    def namespace(self) -> str:
        """Who defined this universe (`str`)."""
        return self._namespace

    @property
    def version(self) -> int:
        """Version of this universe within its namespace (`int`)."""
        return self._version

    @property
    def names(self) -> tuple[str, ...]:
        """All dimension names, each after every dimension it requires or implies."""
        return self._names

    @property
    def elements(self) -> tuple[str, ...]:
        """Every element with records: the dimensions (`names`), then the others.

        The others (``visit_definition``, ``visit_detector_region``, ...) have
        records identified by the dimensions they require, and are never data
        ID keys.
        """
        return self._elements

    def element(self, name: str) -> Dimension | DimensionCombination:
        """The dimension or other element called ``name``.

        Raises
        ------
        UnknownDimensionError
            If there is no element of that name; the message lists them.
        """
        found = self.get_element(name)
        if found is None:
            raise UnknownDimensionError(
                f"{name!r} is not a dimension element; valid elements are: "
                f"{', '.join(self._elements)}."
            )
        return found

    def get_element(self, name: str) -> Dimension | DimensionCombination | None:
        """The dimension or other element called ``name``, or `None` if there is none."""
        if not isinstance(name, str):
            return None
        return self._dimensions.get(name) or self._combinations.get(name)

    def __getitem__(self, name: str) -> Dimension:
        try:
            return self._dimensions[name]
        except (KeyError, TypeError):
            raise UnknownDimensionError(self._unknown_message(name)) from None

    def get(self, name: str) -> Dimension | None:
        """The dimension called ``name``, or `None` if there is none."""
        return self._dimensions.get(name) if isinstance(name, str) else None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._dimensions

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def group(self, names: Iterable[str] | str = ()) -> DimensionGroup:
        """The group of the given dimensions and everything they require or imply.

        Parameters
        ----------
        names : `~collections.abc.Iterable` [`str`] or `str`, optional
            Dimension names (a single name may be given as a string).

        Returns
        -------
        group : `DimensionGroup`
            The closed group.

        Raises
        ------
        UnknownDimensionError
            If a name is not a dimension of this universe (a `KeyError`).
        """
        given = (names,) if isinstance(names, str) else tuple(names)
        try:
            key = frozenset(given)
        except TypeError:  # an unhashable name: not a dimension, as DimensionGroup says
            return DimensionGroup(self, given)
        found = self._groups.get(key)
        if found is None:
            # Groups are immutable, so one per set of names is built and kept
            # (a universe has few); a name that is not a dimension raises here.
            found = DimensionGroup(self, key)
            if len(self._groups) < _GROUP_CACHE_SIZE:
                self._groups[key] = found
        return found

    @property
    def empty(self) -> DimensionGroup:
        """The group with no dimensions (`DimensionGroup`)."""
        return self.group(())

    def _unknown_message(self, name: object) -> str:
        if isinstance(name, str) and name in self._combinations:
            return (
                f"{name!r} is an element of the universe but not a dimension (it has records, "
                f"and no values of its own); valid dimensions are: {', '.join(self._names)}."
            )
        return f"{name!r} is not a dimension; valid dimensions are: {', '.join(self._names)}."

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, DimensionUniverse):
            return NotImplemented
        return self._hash == other._hash and self._json == other._json

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return (
            f"DimensionUniverse(namespace={self._namespace!r}, version={self._version}, "
            f"names=({', '.join(self._names)}))"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (DimensionUniverse.from_json, (self._json,))
