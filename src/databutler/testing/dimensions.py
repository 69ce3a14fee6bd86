"""Universes for tests: databutler's earlier default, kept loadable."""

from __future__ import annotations

import functools
import importlib.resources

from ..dimensions import DimensionUniverse

__all__ = ["universe_v1"]


@functools.cache
def universe_v1() -> DimensionUniverse:
    """databutler's version-1 default universe (``datetime_begin``/``datetime_end`` fields).

    Repositories created before version 2 store this universe and keep it.
    """
    text = (
        importlib.resources.files("databutler.dimensions")
        .joinpath("default_universe_v1.json")
        .read_text("utf-8")
    )
    return DimensionUniverse.from_json(text)
