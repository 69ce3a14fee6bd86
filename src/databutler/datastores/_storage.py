"""Storage classes in the datastores: the check on ``put``, and conversion, parameters and
components on ``get``.

Every datastore reads the same way (`read_dataset`); what differs is how it
gets at the dataset, which it describes with a `DatasetReader`: the file
datastore reads through the formatter (which applies what parameters it can
while reading, and computes some components from the file's metadata), the
in-memory datastore holds the object itself.

A dataset whose storage class the registry does not know is written and read
as before storage classes meant anything: formatter by the object's type,
components and parameters as the formatter (or the object) has them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._dataset_ref import DatasetRef
from .._exceptions import StorageClassError
from ..storage_classes import StorageClass, StorageClassRegistry
from ..storage_classes._conversions import ASSEMBLERS, apply_parameters, derived_component

__all__ = ["DatasetReader", "assemble", "check_put", "read_dataset", "split"]


def split(storage_class: StorageClass, obj: Any) -> dict[str, Any]:
    """The stored components of ``obj``, by its storage class's assembler."""
    assert storage_class.assembler is not None, "only composites are split"
    return ASSEMBLERS[storage_class.assembler][0](obj)


def assemble(storage_class: StorageClass, parts: Mapping[str, Any]) -> Any:
    """The object the stored components ``parts`` of ``storage_class`` make together."""
    assert storage_class.assembler is not None, "only composites are assembled"
    return ASSEMBLERS[storage_class.assembler][1](parts)


class _What:
    """Names a dataset in an error message, built only when one is raised (every read
    passes one; building the text each time cost more than a small read)."""

    __slots__ = ("prefix", "ref", "suffix")

    def __init__(self, ref: DatasetRef, prefix: str = "", suffix: str = "") -> None:
        self.ref, self.prefix, self.suffix = ref, prefix, suffix

    def __str__(self) -> str:
        ref = self.ref
        return f"{self.prefix}dataset {ref.datasetType.name!r} ({ref.id}){self.suffix}"

    def but(self, *, prefix: str = "", suffix: str = "") -> _What:
        """The same dataset described with another prefix and suffix."""
        return _What(self.ref, prefix, suffix)

    def capitalize(self) -> str:
        """The text with its first letter upper-case (the rest as it is, names included)."""
        text = str(self)
        return text[:1].upper() + text[1:]


def _what(ref: DatasetRef) -> _What:
    return _What(ref)


def check_put(
    registry: StorageClassRegistry, obj: Any, ref: DatasetRef
) -> tuple[Any, StorageClass | None]:
    """The object to write for ``ref`` (converted if needed) and its storage class.

    Raises
    ------
    StorageClassError
        If ``obj`` is not of the type of the dataset type's storage class and
        no converter of that storage class takes it.
    """
    storage_class = registry.get(ref.datasetType.storageClass)
    if storage_class is None:
        return obj, None
    what = _What(ref, prefix="the object put as ")
    return registry.coerce(obj, storage_class, what=what), storage_class


@dataclass(frozen=True)
class DatasetReader:
    """How a datastore gets at one stored dataset.

    Attributes
    ----------
    whole : `~collections.abc.Callable`
        Reads the whole dataset, applying the parameters it is given (a
        subset of `pushdown`).
    legacy : `~collections.abc.Callable`
        Reads ``(component, parameters)`` as before storage classes: for a
        storage class the registry does not know, and for components of a
        known one that are not its own (the keys of a stored mapping).
    pushdown : `frozenset` [`str`]
        Parameters `whole` applies itself; the others are applied in memory.
    native_derived : `frozenset` [`str`]
        Derived components `derived` computes without reading the whole dataset.
    derived : `~collections.abc.Callable`, optional
        Computes ``(component, pytype)`` (one of `native_derived`).
    """

    whole: Callable[[Mapping[str, Any]], Any]
    legacy: Callable[[str | None, Mapping[str, Any] | None], Any]
    pushdown: frozenset[str] = frozenset()
    native_derived: frozenset[str] = field(default_factory=frozenset)
    derived: Callable[[str, str | None], Any] | None = None


def read_dataset(
    registry: StorageClassRegistry,
    reader: DatasetReader,
    *,
    stored_as: str,
    ref: DatasetRef,
    component: str | None,
    parameters: Mapping[str, Any] | None,
) -> Any:
    """Read ``ref`` (stored as ``stored_as``) as the storage class of its dataset type.

    Parameters are applied before any conversion, by the formatter where it
    can (only the requested columns are read from Parquet).

    Raises
    ------
    StorageClassError
        For a parameter or component the stored storage class does not
        have, or a storage class it cannot be read as; the message lists
        what is valid.
    """
    stored = registry.get(stored_as)
    requested = ref.datasetType.storageClass
    wanted = registry.get(requested)
    what = _what(ref)
    if wanted is None and requested != stored_as:
        # Asked for by name (get(storage_class=...), override_storage_class): a
        # misspelt name must not quietly return the dataset as it is stored.
        readable = registry.readable_as(stored) if stored is not None else []
        raise StorageClassError(
            f"{what.capitalize()} cannot be read as storage class {requested!r}: no storage "
            f"class has that name. It is stored as {stored_as!r}"
            + (f"; it can be read as {', '.join(map(repr, readable))}." if readable else ".")
        )
    if stored is None:
        obj = reader.legacy(component, parameters)
        if wanted is not None and component is None:
            obj = registry.coerce(obj, wanted, what=what.but(suffix=" (of unknown storage class)"))
        return obj
    params = dict(parameters or {})
    unknown = sorted(set(params) - stored.parameters)
    if unknown and (component is None or component in stored.all_components):
        raise StorageClassError(
            f"Storage class {stored.name!r} of {what} has no read parameter(s) "
            f"{', '.join(map(repr, unknown))}; its parameters: "
            f"{', '.join(map(repr, sorted(stored.parameters))) or 'none'}."
        )
    if component is not None:
        return _component(registry, reader, stored, what, component, params)
    if wanted is not None and wanted.name != stored.name:
        registry.check_conversion(stored, wanted, what.capitalize())
    pushed = {k: v for k, v in params.items() if k in reader.pushdown}
    obj = registry.coerce(reader.whole(pushed), stored, what=what.but(suffix=" as read"))
    rest = {k: v for k, v in params.items() if k not in pushed}
    if rest:
        obj = apply_parameters(obj, rest)
    if wanted is not None and wanted.name != stored.name:
        obj = registry.coerce(obj, wanted, what=what)
    return obj


def _component(
    registry: StorageClassRegistry,
    reader: DatasetReader,
    stored: StorageClass,
    what: _What,
    component: str,
    params: dict[str, Any],
) -> Any:
    if component in stored.all_components:
        if not params and component in reader.native_derived and reader.derived is not None:
            return reader.derived(component, stored.pytype)
        pushed = {k: v for k, v in params.items() if k in reader.pushdown}
        obj = registry.coerce(reader.whole(pushed), stored, what=what.but(suffix=" as read"))
        rest = {k: v for k, v in params.items() if k not in pushed}
        if rest:
            obj = apply_parameters(obj, rest)
        if component in stored.derived_components or stored.assembler is None:
            return derived_component(obj, component)
        parts = split(stored, obj)
        if component not in parts:
            raise StorageClassError(
                f"{what.capitalize()} (storage class {stored.name!r}) has no {component!r}; "
                f"it has {', '.join(map(repr, sorted(parts)))}."
            )
        return parts[component]
    if stored.all_components:
        raise StorageClassError(
            f"Storage class {stored.name!r} of {what} has no component {component!r}; "
            f"its components: {', '.join(map(repr, sorted(stored.all_components)))}."
        )
    # No components declared: the formatter's own (the keys of a stored mapping).
    return reader.legacy(component, params or None)
