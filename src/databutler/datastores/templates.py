"""File templates: where in a file datastore each dataset's artifact goes.

A `FileTemplate` turns a `DatasetRef` into a relative POSIX path (without an
extension; the formatter adds one) from fields in braces::

    >>> template = FileTemplate("{run}/{datasetType}/{datasetType}_{exposure}_{detector}")
    >>> template.format(ref)  # doctest: +SKIP
    'HSC_runs_RC2/raw/raw_903334_12'

Fields are the special names ``run``, ``datasetType`` (the parent dataset type
name), ``component`` (the component name, for component dataset types) and
``id`` (the dataset UUID), and dimension names (``instrument``, ``visit``, ...).
``{name:?}`` marks a field optional: when the value is missing, the field and
the separator (``_``, ``-``, ``.`` or ``/``) just before it disappear.

Values are sanitised so that no data ID value or run name can escape the root:
every character outside ``[A-Za-z0-9_.+=@-]`` becomes ``_`` (so ``/`` in a value
never makes a directory), and a value that is empty or only dots gets a ``_``
prefix (so no path segment can be ``.`` or ``..``).

`FileTemplate.validate` checks that a template identifies each dataset of a
type uniquely; `FileTemplates` is the lookup table a datastore is configured
with (see `FileTemplates.template_for` for the priority of its keys).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .._dataset_ref import DatasetRef
from .._dataset_type import DatasetType
from .._exceptions import ConfigurationError
from ..dimensions import DataCoordinate, DimensionUniverse

__all__ = [
    "DEFAULT_TEMPLATE",
    "SPECIAL_FIELDS",
    "FileTemplate",
    "FileTemplates",
    "TemplateError",
    "sanitize_value",
]

DEFAULT_TEMPLATE = "{run}/{datasetType}/{datasetType}_{component:?}_{id}"
"""The template used where no other is configured.

It gives ``<run>/<parent type>/<parent type>_<id>`` for a dataset and
``<run>/<parent type>/<parent type>_<component>_<id>`` for one of its
components: always unique (a component shares its parent's id, so the
component name is part of the path too), and the file name alone says what the
file holds.
"""

SPECIAL_FIELDS = frozenset({"run", "datasetType", "component", "id"})
"""Field names that are not dimensions."""

_SEPARATORS = "_-./"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.+=@-]")
_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LITERAL = re.compile(r"[A-Za-z0-9_.+=@/-]*")


class TemplateError(ConfigurationError):
    """A file template is malformed, cannot identify datasets uniquely, or
    cannot be filled in for a dataset; the message names the template and the
    problem.
    """


def sanitize_value(value: object) -> str:
    """Turn a field value into text that is safe as (part of) one path segment.

    Parameters
    ----------
    value : `object`
        The value (a data ID value, run name, dataset type name, id, ...).

    Returns
    -------
    text : `str`
        ``str(value)`` with every character outside ``[A-Za-z0-9_.+=@-]``
        replaced by ``_``; prefixed with ``_`` if that is empty or only dots.

    Notes
    -----
    Different values can give the same text (``a/b`` and ``a_b``), so
    uniqueness of paths relies on values that are already safe, or on ``id``.
    """
    text = _UNSAFE.sub("_", str(value))
    if not text.strip("."):
        text = "_" + text
    return text


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    optional: bool


class FileTemplate:
    """A parsed file template.

    Parameters
    ----------
    template : `str`
        The template, e.g. ``"{run}/{datasetType}/{band:?}/{datasetType}_{visit}"``.

    Raises
    ------
    TemplateError
        If the template is malformed: unbalanced or nested braces, an empty
        field or one that is not a name, a format spec other than ``?``, no
        field at all, an absolute path, an empty, ``.`` or ``..`` segment, or a
        literal character outside ``[A-Za-z0-9_.+=@/-]``.
    """

    __slots__ = ("_fields", "_parts", "_required", "_template")

    _template: str
    _parts: tuple[str | _Field, ...]
    _fields: tuple[str, ...]
    _required: tuple[str, ...]

    def __init__(self, template: str) -> None:
        if not isinstance(template, str):
            raise TemplateError(f"A file template is a str, not {template!r}.")
        self._template = template
        self._parts = self._parse(template)
        fields = [part for part in self._parts if isinstance(part, _Field)]
        if not fields:
            raise self._error("it has no field in braces, so every dataset would get one path")
        self._fields = tuple(dict.fromkeys(f.name for f in fields))
        self._required = tuple(dict.fromkeys(f.name for f in fields if not f.optional))

    def _error(self, problem: str) -> TemplateError:
        return TemplateError(f"File template {self._template!r}: {problem}.")

    def _parse(self, template: str) -> tuple[str | _Field, ...]:
        if template.startswith("/"):
            raise self._error("it is absolute; a template must be relative to the datastore root")
        parts: list[str | _Field] = []
        position = 0
        while position < len(template):
            start = template.find("{", position)
            literal = template[position : len(template) if start < 0 else start]
            if "}" in literal:
                column = position + literal.index("}")
                raise self._error(f"unbalanced '}}' at position {column}")
            if _LITERAL.fullmatch(literal) is None:
                char = next(c for c in literal if not _LITERAL.fullmatch(c))
                raise self._error(
                    f"character {char!r} is not allowed outside fields; "
                    "use letters, digits, '/' and '_.+=@-'"
                )
            if literal:
                parts.append(literal)
            if start < 0:
                break
            end = template.find("}", start + 1)
            nested = template.find("{", start + 1)
            if end < 0 or 0 <= nested < end:
                raise self._error(f"unbalanced '{{' at position {start}")
            name, colon, spec = template[start + 1 : end].partition(":")
            if not name:
                raise self._error(f"empty field at position {start}")
            if not _FIELD_NAME.fullmatch(name):
                raise self._error(
                    f"field {name!r} is not a name; fields are 'run', 'datasetType', "
                    "'component', 'id' or a dimension name"
                )
            if colon and spec != "?":
                raise self._error(
                    f"unknown format spec {spec!r} in field {name!r}; only ':?' (optional) exists"
                )
            parts.append(_Field(name, optional=bool(colon)))
            position = end + 1
        for segment in template.split("/"):
            if segment in ("", ".", ".."):
                shown = segment or "empty"
                raise self._error(f"it has a {shown!r} path segment; segments must be names")
        return tuple(parts)

    @property
    def template(self) -> str:
        """The template text (`str`)."""
        return self._template

    @property
    def fields(self) -> tuple[str, ...]:
        """The names of all fields, each once, in order of first use."""
        return self._fields

    @property
    def required_fields(self) -> tuple[str, ...]:
        """The names of the fields used at least once without ``:?``."""
        return self._required

    def format(self, ref: DatasetRef) -> str:
        """The relative path (without extension) of a dataset's artifact.

        Parameters
        ----------
        ref : `DatasetRef`
            The dataset. Dimension values come from ``ref.dataId``; implied
            values are used only if the data ID has them.

        Returns
        -------
        path : `str`
            A relative POSIX path with sanitised values; no segment is empty,
            ``.`` or ``..``.

        Raises
        ------
        TemplateError
            If a non-optional field has no value (the message names the field
            and the ref), or the ref is of a component but the template has
            no ``component`` field.
        """
        values = _values_of(ref)
        if values["component"] is not None and "component" not in self._fields:
            raise TemplateError(
                f"File template {self._template!r} has no {{component}} field, so it cannot "
                f"place the component dataset {ref!r} apart from its parent."
            )
        pieces: list[tuple[bool, str]] = []  # (is literal, text)
        drop_leading_separator = False
        for part in self._parts:
            if isinstance(part, str):
                if drop_leading_separator and part[0] in _SEPARATORS:
                    part = part[1:]
                drop_leading_separator = False
                if part:
                    pieces.append((True, part))
                continue
            drop_leading_separator = False
            if part.name in SPECIAL_FIELDS:
                value = values[part.name]
            else:
                value = _get(ref.dataId, part.name)
            if value is not None:
                pieces.append((False, sanitize_value(value)))
            elif not part.optional:
                raise TemplateError(
                    f"File template {self._template!r} needs a value for {{{part.name}}}, "
                    f"which {ref!r} does not have; mark the field optional ('{{{part.name}:?}}') "
                    "or use another template."
                )
            elif pieces and pieces[-1][0] and pieces[-1][1][-1] in _SEPARATORS:
                shortened = pieces[-1][1][:-1]
                if shortened:
                    pieces[-1] = (True, shortened)
                else:
                    pieces.pop()
            elif not pieces:
                drop_leading_separator = True
        path = "".join(text for _, text in pieces)
        for segment in path.split("/"):
            if segment in ("", ".", ".."):
                raise TemplateError(
                    f"File template {self._template!r} gives the path {path!r} for {ref!r}, "
                    "which has an empty or dot segment; move the optional fields so that a "
                    "missing one leaves whole segments."
                )
        return path

    def validate(self, datasetType: DatasetType, universe: DimensionUniverse) -> None:
        """Check that this template identifies each dataset of a type uniquely.

        Parameters
        ----------
        datasetType : `DatasetType`
            The dataset type the template would be used for.
        universe : `DimensionUniverse`
            The dimensions its field names may refer to.

        Raises
        ------
        TemplateError
            Listing every problem: a field that is neither special nor a
            dimension; a non-optional dimension field that is not a dimension
            of the dataset type; without a non-optional ``{id}``, a required
            dimension, ``run`` or ``datasetType`` that is not a non-optional
            field; no ``component`` field for a component dataset type (or a
            non-optional one for a parent type); two fields with nothing
            between them, whose values could run together.

        Notes
        -----
        Values are sanitised, so distinct string values that differ only in
        unsafe characters (``a/b`` and ``a_b``) still share a path unless the
        template includes ``{id}``.
        """
        problems: list[str] = []
        try:
            group = universe.group(datasetType.dimensions)
        except KeyError as exc:
            raise TemplateError(
                f"Dataset type {datasetType.name!r} has dimensions that are not in the "
                f"universe: {exc}"
            ) from None
        for name in self._fields:
            if name not in SPECIAL_FIELDS and name not in universe:
                valid = ", ".join([*sorted(SPECIAL_FIELDS), *universe.names])
                problems.append(f"field {{{name}}} is not a valid name; valid names are: {valid}")
        for name in self._required:
            if name in universe and name not in group:
                problems.append(
                    f"field {{{name}}} is not a dimension of the dataset type ({group}); "
                    f"mark it optional ('{{{name}:?}}') or remove it"
                )
        if "id" not in self._required:
            fix = "add it as a non-optional field, or include {id}"
            missing = [name for name in group.required if name not in self._required]
            if missing:
                listed = ", ".join(missing)
                problems.append(f"the required dimensions {listed} are not fields; {fix}")
            for name in ("run", "datasetType"):
                if name not in self._required:
                    problems.append(f"{{{name}}} is not a non-optional field; {fix}")
        if datasetType.isComponent() and "component" not in self._fields:
            problems.append(
                "the dataset type is a component but there is no {component:?} field, "
                "so components would share their parent's path"
            )
        if not datasetType.isComponent() and "component" in self._required:
            problems.append(
                "{component} is not optional, but the dataset type is not a component; "
                "write {component:?}"
            )
        for before, after in zip(self._parts, self._parts[1:], strict=False):
            if isinstance(before, _Field) and isinstance(after, _Field):
                problems.append(
                    f"fields {{{before.name}}} and {{{after.name}}} are adjacent, so their values "
                    "could run together; put a separator between them"
                )
        if problems:
            raise TemplateError(
                f"File template {self._template!r} cannot identify datasets of type "
                f"{datasetType.name!r} uniquely: " + "; ".join(problems) + "."
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileTemplate):
            return NotImplemented
        return self._template == other._template

    def __hash__(self) -> int:
        return hash(self._template)

    def __str__(self) -> str:
        return self._template

    def __repr__(self) -> str:
        return f"FileTemplate({self._template!r})"


def _values_of(ref: DatasetRef) -> dict[str, Any]:
    """The values of the special fields for ``ref`` (`None` where missing)."""
    dataset_type = ref.datasetType
    name = dataset_type if isinstance(dataset_type, str) else dataset_type.name
    parent, _, component = name.partition(".")
    return {
        "run": ref.run,
        "datasetType": parent,
        "component": component or None,
        "id": ref.id,
    }


def _get(data_id: Mapping[str, Any] | DataCoordinate, name: str) -> Any:
    """The value of dimension ``name`` in ``data_id``, or `None`."""
    try:
        return data_id[name]
    except KeyError:
        return None


class FileTemplates:
    """The file templates of a datastore, looked up per dataset type.

    Parameters
    ----------
    config : `~collections.abc.Mapping` [`str`, `str` or `FileTemplate`]
        Key to template. A key is a dataset type name, a storage class name,
        a dimension-group key (dimension names joined by ``+`` in any order;
        ``visit+`` for a single dimension) or ``default``.
    universe : `DimensionUniverse`
        The dimensions that dimension-group keys and fields refer to.

    Raises
    ------
    TemplateError
        Naming every key whose template is malformed, whose dimension-group
        key names an unknown dimension, or that means the same dimensions as
        another key.

    Notes
    -----
    A dimension-group key matches the dataset types whose dimension group has
    the same *required* dimensions as the group of the key's names, so
    ``exposure+detector`` matches ``{instrument, exposure, detector}``.
    `DEFAULT_TEMPLATE` is not added for you; pass ``{"default": DEFAULT_TEMPLATE}``
    to have a fallback.
    """

    def __init__(
        self, config: Mapping[str, str | FileTemplate], *, universe: DimensionUniverse
    ) -> None:
        self._universe = universe
        self._by_name: dict[str, FileTemplate] = {}
        self._by_dimensions: dict[frozenset[str], tuple[str, FileTemplate]] = {}
        problems: list[str] = []
        for key, value in config.items():
            try:
                template = value if isinstance(value, FileTemplate) else FileTemplate(value)
            except TemplateError as exc:
                problems.append(f"{key!r}: {exc}")
                continue
            if "+" not in key:
                self._by_name[key] = template
                continue
            names = [name for name in key.split("+") if name]
            unknown = [name for name in names if name not in universe]
            if unknown or not names:
                valid = ", ".join(universe.names)
                problems.append(
                    f"{key!r}: the dimension-group key names unknown dimensions "
                    f"{unknown or [key]}; valid dimensions are: {valid}."
                )
                continue
            required = frozenset(universe.group(names).required)
            if required in self._by_dimensions:
                other = self._by_dimensions[required][0]
                problems.append(f"{key!r}: means the same dimensions as {other!r}.")
                continue
            self._by_dimensions[required] = (key, template)
        if problems:
            raise TemplateError("Bad file template configuration: " + " ".join(problems))

    @property
    def universe(self) -> DimensionUniverse:
        """The dimensions the keys and fields refer to (`DimensionUniverse`)."""
        return self._universe

    def template_for(self, datasetType: DatasetType | DatasetRef) -> FileTemplate:
        """The template for a dataset type (or a dataset ref's type).

        Parameters
        ----------
        datasetType : `DatasetType` or `DatasetRef`
            What to look up.

        Returns
        -------
        template : `FileTemplate`
            The first match in this order: the full dataset type name; for a
            component, the parent name; the dimension group (exact set of its
            required dimensions); the storage class; ``default``.

        Raises
        ------
        TemplateError
            If nothing matches.
        """
        if isinstance(datasetType, DatasetRef):
            datasetType = datasetType.datasetType
        if not isinstance(datasetType, DatasetType):
            raise TypeError(
                f"template_for needs a DatasetType (or a DatasetRef holding one), not "
                f"{datasetType!r}."
            )
        parent, component = datasetType.nameAndComponent()
        names = [datasetType.name] + ([parent] if component is not None else [])
        for name in names:
            if name in self._by_name:
                return self._by_name[name]
        required = frozenset(self._universe.group(datasetType.dimensions).required)
        if required in self._by_dimensions:
            return self._by_dimensions[required][1]
        for name in (datasetType.storageClass, "default"):
            if name in self._by_name:
                return self._by_name[name]
        raise TemplateError(
            f"No file template for {datasetType}: no key matches its name, its dimensions, "
            "its storage class or 'default'; add one of them to the configuration."
        )

    def validate(self, dataset_types: Iterable[DatasetType]) -> None:
        """Check the template of each dataset type.

        Parameters
        ----------
        dataset_types : `~collections.abc.Iterable` [`DatasetType`]
            The dataset types to check.

        Raises
        ------
        TemplateError
            Listing every dataset type that has no template or whose template
            cannot identify its datasets uniquely (see `FileTemplate.validate`).
        """
        problems: list[str] = []
        for dataset_type in dataset_types:
            try:
                self.template_for(dataset_type).validate(dataset_type, self._universe)
            except TemplateError as exc:
                problems.append(str(exc))
        if problems:
            raise TemplateError(
                f"{len(problems)} dataset type(s) have unusable file templates:\n"
                + "\n".join(f"- {problem}" for problem in problems)
            )

    def __repr__(self) -> str:
        keys = [*self._by_name, *(key for key, _ in self._by_dimensions.values())]
        return f"FileTemplates({', '.join(sorted(keys))})"
