"""The errors raised by the dimensions package (defined in the common tree)."""

from .._exceptions import DataIdError, DimensionConfigError, UnknownDimensionError

__all__ = ["DataIdError", "DimensionConfigError", "UnknownDimensionError"]
