"""`StorageClass`: what a dataset is in memory, how it is written, and what it converts from."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import InvalidNameError

__all__ = ["MAX_STORAGE_CLASS_NAME", "StorageClass", "loaded_type", "type_name"]

#: Longest storage class name: the registry's ``dataset_type.storage_class`` column.
MAX_STORAGE_CLASS_NAME = 64

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def loaded_type(qualified: str) -> type | None:
    """The class named ``qualified`` (``"pandas.DataFrame"``, ``"dict"``) if already imported.

    An object of a class from a module that was never imported cannot exist,
    so nothing is imported here: `None` means no object can be of that type.
    """
    module, _, name = qualified.rpartition(".")
    loaded = sys.modules.get(module or "builtins")
    value = getattr(loaded, name, None) if loaded is not None else None
    return value if isinstance(value, type) else None


def type_name(obj: Any) -> str:
    """The qualified name of ``obj``'s type, as errors show it (``"pandas.DataFrame"``)."""
    kind = type(obj)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


@dataclass(frozen=True, slots=True)
class StorageClass:
    """How a dataset is held in memory and written: its type, formatter, parts and conversions.

    Parameters
    ----------
    name : `str`
        The storage class name (``StructuredDataDict``, ``ArrowTable``, ...).
    pytype : `str`, optional
        Qualified name of the in-memory Python type (``"pyarrow.Table"``,
        ``"dict"``); ``"object"`` accepts anything. `None`: no type is known,
        nothing is checked.
    components : `~collections.abc.Mapping` [`str`, `str`], optional
        Stored components: component name to its storage class name.
    derived_components : `~collections.abc.Mapping` [`str`, `str`], optional
        Read-only components computed from the dataset (``rowcount``):
        component name to its storage class name.
    parameters : `~collections.abc.Iterable` [`str`], optional
        Names of the read parameters (``columns``, ``rows``, ``slice``, ``hdu``).
    formatter : `str`, optional
        Registered name of the formatter that writes it (``"parquet"``);
        `None`: chosen from the object's type.
    converters : `~collections.abc.Mapping` [`str`, `str`], optional
        Qualified Python type name of an object this storage class accepts
        too, to the registered name of the converter that turns it into
        `pytype` (see `databutler.storage_classes.CONVERTERS`).
    assembler : `str`, optional
        Registered name of what splits an object into its stored
        `components` and puts them back together (see
        `databutler.storage_classes.ASSEMBLERS`).
    disassemble : `bool`, optional
        Whether file datastores write each stored component as an artifact
        of its own (needs an ``assembler``); by default the whole object is
        one artifact.

    Raises
    ------
    InvalidNameError
        If ``name`` is malformed or too long for the registry.

    Notes
    -----
    The value holds names only: `import databutler` imports none of the
    optional packages (numpy, pandas, pyarrow, astropy) these types live in.
    """

    name: str
    pytype: str | None = None
    components: Mapping[str, str] = field(default_factory=dict, hash=False)
    derived_components: Mapping[str, str] = field(default_factory=dict, hash=False)
    parameters: frozenset[str] = field(default_factory=frozenset, hash=False)
    formatter: str | None = field(default=None, hash=False)
    converters: Mapping[str, str] = field(default_factory=dict, hash=False)
    assembler: str | None = field(default=None, hash=False)
    disassemble: bool = field(default=False, hash=False)

    def __init__(
        self,
        name: str,
        pytype: str | None = None,
        components: Mapping[str, str] | None = None,
        *,
        derived_components: Mapping[str, str] | None = None,
        parameters: Iterable[str] = (),
        formatter: str | None = None,
        converters: Mapping[str, str] | None = None,
        assembler: str | None = None,
        disassemble: bool = False,
    ) -> None:
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise InvalidNameError(
                f"Invalid storage class name {name!r}; use letters, digits and underscores, "
                "starting with a letter or underscore."
            )
        if len(name) > MAX_STORAGE_CLASS_NAME:
            raise InvalidNameError(
                f"Storage class name {name[:40]!r}... is {len(name)} characters long; "
                f"the limit is {MAX_STORAGE_CLASS_NAME} (the registry's column)."
            )
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "pytype", pytype)
        object.__setattr__(self, "components", dict(components or {}))
        object.__setattr__(self, "derived_components", dict(derived_components or {}))
        object.__setattr__(self, "parameters", frozenset(parameters))
        object.__setattr__(self, "formatter", formatter)
        object.__setattr__(self, "converters", dict(converters or {}))
        object.__setattr__(self, "assembler", assembler)
        object.__setattr__(self, "disassemble", bool(disassemble))

    @property
    def all_components(self) -> dict[str, str]:
        """Stored and derived components together: name to storage class name."""
        return {**self.derived_components, **self.components}

    def is_instance(self, obj: Any) -> bool:
        """Whether ``obj`` is of this storage class's Python type (always, when none is known)."""
        if self.pytype is None or self.pytype in ("object", "builtins.object"):
            return True
        cls = loaded_type(self.pytype)
        return cls is not None and isinstance(obj, cls)

    def converter_for(self, obj: Any) -> str | None:
        """The name of the converter that turns ``obj`` into this storage class, if any."""
        for source, converter in self.converters.items():
            cls = loaded_type(source)
            if cls is not None and isinstance(obj, cls):
                return converter
        return None

    def converts_from(self, other: StorageClass) -> bool:
        """Whether an object of ``other`` can be read as (or put as) this storage class."""
        if other.name == self.name or (self.pytype is not None and self.pytype == other.pytype):
            return True
        return other.pytype is not None and other.pytype in self.converters
