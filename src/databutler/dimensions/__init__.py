"""Dimensions: what identifies a dataset, and the data IDs built from them.

A `DimensionUniverse` lists the dimensions a repository knows (``instrument``,
``detector``, ``visit``, ``tract``, ...), how each is keyed, and which others
each requires (needs to be identified) or implies (determines). It is read
from a versioned description (the default ships as ``default_universe.json``)
and stored in a repository when it is created, so that a repository always
reopens with its own universe.

A `DimensionGroup` is a set of dimensions closed over those relations; a
`DataCoordinate` is a data ID checked against one::

    >>> universe = DimensionUniverse()
    >>> DataCoordinate.standardize({"instrument": "HSC"}, detector=12, universe=universe)
    DataCoordinate({instrument: 'HSC', detector: 12})
"""

from ._coordinate import DataCoordinate, DataIdLike, DataIdValue
from ._elements import Dimension, DimensionCombination, DimensionField
from ._exceptions import DataIdError, DimensionConfigError, UnknownDimensionError
from ._group import DimensionGroup
from ._universe import DimensionUniverse
from ._values import check_value

__all__ = [
    "DataCoordinate",
    "DataIdError",
    "DataIdLike",
    "DataIdValue",
    "Dimension",
    "DimensionCombination",
    "DimensionConfigError",
    "DimensionField",
    "DimensionGroup",
    "DimensionUniverse",
    "UnknownDimensionError",
    "check_value",
]
