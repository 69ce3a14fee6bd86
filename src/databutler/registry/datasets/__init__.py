"""Managers of the ``dataset`` table."""

from .simple import SimpleDatasetRecordStorageManager

__all__ = ["SimpleDatasetRecordStorageManager"]
