"""Managers of the ``dataset`` table."""

from .by_dimensions import ByDimensionsDatasetRecordStorageManager
from .simple import SimpleDatasetRecordStorageManager

__all__ = ["ByDimensionsDatasetRecordStorageManager", "SimpleDatasetRecordStorageManager"]
