"""Fixtures shared by every test: the database backends, by readable id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

# The shipped contract suites assert in databutler.testing: show their values on failure.
pytest.register_assert_rewrite("databutler.testing")

# Under CI the property tests draw the same examples every run, so that a landing
# never hangs on a lucky draw; developers' runs keep exploring new ones.
import os  # noqa: E402

from hypothesis import settings  # noqa: E402

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

from databutler.registry import RegistryManagerInstances, RegistryManagerTypes  # noqa: E402
from databutler.registry.interfaces import Database  # noqa: E402
from databutler.testing.database import DatabaseFactory, database_factory, database_ids  # noqa: E402


@pytest.fixture(params=database_ids)
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DatabaseFactory]:
    """A factory of one fresh database, for each backend."""
    with database_factory(request.param, tmp_path) as factory:
        yield factory


@pytest.fixture
def db(databases: DatabaseFactory) -> Database:
    """A fresh, empty, writeable database, for each backend."""
    return databases.open()


@pytest.fixture
def repo(db: Database) -> RegistryManagerInstances:
    """A new repository (all bridge-layer managers) in a fresh database."""
    return RegistryManagerTypes().makeRepo(db)


from databutler.testing.butler import (  # noqa: E402
    CONFIGURATIONS,
    RepositoryFactory,
    S3Environment,
)


@pytest.fixture(scope="session")
def s3_env() -> Iterator[S3Environment]:
    """A moto S3 server on 127.0.0.1 for the whole session, and the AWS variables for it."""
    with S3Environment.start() as environment:
        yield environment


@pytest.fixture(params=CONFIGURATIONS)
def repositories(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RepositoryFactory]:
    """Makes repositories of one configuration: SQLite+local, PostgreSQL+S3, SQLite+chained."""
    s3 = request.getfixturevalue("s3_env") if request.param == "postgresql-s3" else None
    factory = RepositoryFactory(request.param, tmp_path, s3)
    try:
        yield factory
    finally:
        factory.close()
