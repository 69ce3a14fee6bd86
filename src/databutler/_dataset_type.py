"""Dataset types and storage classes: what kind of thing a dataset is."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ._exceptions import InvalidNameError
from .storage_classes import MAX_STORAGE_CLASS_NAME, StorageClass

__all__ = [
    "MAX_COMPONENT_NAME",
    "MAX_DATASET_TYPE_NAME",
    "MAX_STORAGE_CLASS_NAME",
    "DatasetType",
    "StorageClass",
    "validate_dataset_type_name",
]

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


#: Longest parent dataset type name: the registry's ``dataset_type.name`` column.
MAX_DATASET_TYPE_NAME = 128

#: Longest component name. With the longest parent name, a dataset id and an
#: extension, the default file template's file name stays within the 255 bytes
#: every file system allows for one path component.
MAX_COMPONENT_NAME = 64


def validate_dataset_type_name(name: Any) -> str:
    """Return ``name`` if it is a valid dataset type name.

    A name is dot-separated words of ASCII letters, digits and underscores,
    each starting with a letter or underscore (``calexp``, ``deepCoadd.wcs``).
    The parent name (before the first dot) has at most
    `MAX_DATASET_TYPE_NAME` characters, the component (after it) at most
    `MAX_COMPONENT_NAME`, so that every registry column and file template
    can hold them.

    Raises
    ------
    InvalidNameError
        If it is not, saying why.
    """
    rule = (
        "a dataset type name is dot-separated words of ASCII letters, digits and underscores, "
        "each starting with a letter or underscore (e.g. 'calexp' or 'calexp.wcs')"
    )
    if not isinstance(name, str):
        raise InvalidNameError(f"Dataset type name {name!r} is not a string; {rule}.")
    if not _NAME_RE.fullmatch(name):
        raise InvalidNameError(f"Invalid dataset type name {name[:80]!r}; {rule}.")
    parent, _, component = name.partition(".")
    if len(parent) > MAX_DATASET_TYPE_NAME:
        raise InvalidNameError(
            f"Dataset type name {parent[:40]!r}... is {len(parent)} characters long; the limit "
            f"is {MAX_DATASET_TYPE_NAME} (what the registry and file names can hold). "
            "Choose a shorter name."
        )
    if len(component) > MAX_COMPONENT_NAME:
        raise InvalidNameError(
            f"Component name {component[:40]!r}... of dataset type {parent!r} is "
            f"{len(component)} characters long; the limit is {MAX_COMPONENT_NAME} (what file "
            "names can hold). Choose a shorter name."
        )
    return name


@dataclass(frozen=True, slots=True)
class DatasetType:
    """A named kind of dataset: its dimensions and storage class.

    Parameters
    ----------
    name : `str`
        The name; ``parent.component`` for a component dataset type.
    dimensions : `~collections.abc.Iterable` [`str`]
        Names of the dimensions that identify one dataset of this type (or a
        dimension group with ``.names``).
    storageClass : `str`
        Name of the storage class.
    isCalibration : `bool`, optional
        Whether datasets of this type can be certified into CALIBRATION collections.

    Raises
    ------
    InvalidNameError
        If ``name`` or the storage class name is malformed.
    """

    name: str
    dimensions: frozenset[str]
    storageClass: str
    isCalibration: bool = False

    def __init__(
        self,
        name: str,
        dimensions: Iterable[str] | Any,
        storageClass: str | StorageClass,
        *,
        isCalibration: bool = False,
    ) -> None:
        validate_dataset_type_name(name)
        names = getattr(dimensions, "names", dimensions)
        if isinstance(names, str):
            raise TypeError(
                f"Dataset type {name!r}: dimensions must be a collection of names, not the "
                f"string {names!r}; write [{names!r}]."
            )
        storage = storageClass.name if isinstance(storageClass, StorageClass) else storageClass
        StorageClass(storage)  # validates the name
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "dimensions", frozenset(names))
        object.__setattr__(self, "storageClass", storage)
        object.__setattr__(self, "isCalibration", bool(isCalibration))

    def nameAndComponent(self) -> tuple[str, str | None]:
        """``(parent name, component)``; the component is `None` for a parent type."""
        parent, _, component = self.name.partition(".")
        return parent, component or None

    def isComponent(self) -> bool:
        """Whether this is a component (``parent.component``) dataset type."""
        return "." in self.name

    def makeComponentDatasetType(self, component: str, storageClass: str) -> DatasetType:
        """The dataset type of one component of this (parent) type."""
        if self.isComponent():
            raise ValueError(f"{self.name!r} is a component already; components do not nest.")
        return DatasetType(
            f"{self.name}.{component}",
            self.dimensions,
            storageClass,
            isCalibration=self.isCalibration,
        )

    def __str__(self) -> str:
        dims = ", ".join(sorted(self.dimensions))
        return f"DatasetType({self.name!r}, {{{dims}}}, {self.storageClass})"
