"""Contract test suites and helpers, shipped so that every backend runs the same tests.

Importing this package needs pytest (``pip install 'databutler[test]'``).
"""

from .database import TEST_POSTGRESQL_ENV, DatabaseFactory, database_ids

__all__ = ["TEST_POSTGRESQL_ENV", "DatabaseFactory", "database_ids"]
