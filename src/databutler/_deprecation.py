"""Deprecated aliases for renamed names, kept for one release.

A class keeps an old name as ``oldName = renamed("new_name")``: reading the old
name warns with a `DeprecationWarning` naming the new one and answers the new
attribute (so a method, classmethod or property is forwarded, overrides in
subclasses included). A subclass written against the old name that still
*defines* the old name gets that definition under the new name too, if its
base class calls `adopt_renamed_overrides` from ``__init_subclass__``.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["adopt_renamed_overrides", "renamed"]


def renamed(new_name: str) -> Any:
    """The deprecated alias of the attribute now called ``new_name``."""
    return _RenamedAlias(new_name)


class _RenamedAlias:
    """A class attribute that warns and forwards to ``new_name``."""

    def __init__(self, new_name: str) -> None:
        self.new_name = new_name
        self.old_name = new_name
        self.owner = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.old_name = name
        self.owner = owner.__qualname__

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        warnings.warn(
            f"{self.owner}.{self.old_name} is deprecated and will be removed in the next"
            f" release; use {self.owner}.{self.new_name}.",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(objtype if obj is None else obj, self.new_name)


def adopt_renamed_overrides(cls: type) -> None:
    """Let ``cls``'s definitions under old names stand for the new names.

    For every `renamed` alias in a base class of ``cls`` whose old name ``cls``
    defines itself (and whose new name it does not), the definition is copied
    to the new name, with a `DeprecationWarning`. Call from ``__init_subclass__``.
    """
    own = vars(cls)
    for base in cls.__mro__[1:]:
        for old, attr in list(vars(base).items()):
            if (
                isinstance(attr, _RenamedAlias)
                and old in own
                and not isinstance(own[old], _RenamedAlias)
                and attr.new_name not in own
            ):
                warnings.warn(
                    f"{cls.__qualname__} defines {old}, which is deprecated; define"
                    f" {attr.new_name} instead.",
                    DeprecationWarning,
                    stacklevel=3,
                )
                setattr(cls, attr.new_name, own[old])
