"""Repositories for end-to-end tests, in the three configurations users run.

``sqlite-local``
    SQLite registry and files on local disk: the embedded default.
``postgresql-s3``
    PostgreSQL registry (a fresh schema on the server in
    ``DATABUTLER_TEST_POSTGRESQL``) and the repository in S3 (a moto server
    on 127.0.0.1, reached through the standard ``AWS_*`` environment
    variables, as a user's configuration would be).
``sqlite-chained``
    SQLite registry and a chained datastore: files on local disk, then memory.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy

from ..butler import Butler
from ..datastores import FileDatastore
from ..datastores.resources import ResourceStore
from ..registry.databases import database_class_for_uri
from .database import postgresql_uri
from .s3 import CREDENTIALS, make_bucket, s3_endpoint

__all__ = [
    "CONFIGURATIONS",
    "RepositoryFactory",
    "S3Environment",
    "artifact_of",
    "file_datastore",
    "on_both_backends",
    "populate",
    "registry_arguments",
]

CONFIGURATIONS = ("sqlite-local", "postgresql-s3", "sqlite-chained")

CHAINED = {
    "kind": "chained",
    "name": "chain",
    "datastores": [{"kind": "file", "name": "files"}, {"kind": "memory", "name": "cache"}],
}


@dataclass
class S3Environment:
    """A moto S3 server and the ``AWS_*`` variables that point boto3 at it."""

    client: Any
    variables: dict[str, str]

    @classmethod
    @contextmanager
    def start(cls) -> Iterator[S3Environment]:
        with s3_endpoint() as client:
            variables = {
                "AWS_ENDPOINT_URL_S3": client.meta.endpoint_url,
                "AWS_ACCESS_KEY_ID": CREDENTIALS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": CREDENTIALS["aws_secret_access_key"],
                "AWS_DEFAULT_REGION": CREDENTIALS["region_name"],
            }
            yield cls(client, variables)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Set the variables for the block (restoring the previous values after)."""
        saved = {name: os.environ.get(name) for name in self.variables}
        os.environ.update(self.variables)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@dataclass
class RepositoryFactory:
    """Makes new repositories of one configuration; cleans them up on `close`.

    Parameters
    ----------
    kind : `str`
        One of `CONFIGURATIONS`.
    tmp_path : `pathlib.Path`
        Directory for local repositories.
    s3 : `S3Environment`, optional
        Required for ``postgresql-s3``.
    """

    kind: str
    tmp_path: Path
    s3: S3Environment | None = None
    _schemas: list[str] = field(default_factory=list)
    _butlers: list[Butler] = field(default_factory=list)
    _stack: ExitStack = field(default_factory=ExitStack)

    def __post_init__(self) -> None:
        if self.kind not in CONFIGURATIONS:
            raise ValueError(f"Unknown configuration {self.kind!r}; use one of {CONFIGURATIONS}.")
        if self.kind == "postgresql-s3":
            if self.s3 is None:
                raise ValueError("The postgresql-s3 configuration needs an S3Environment.")
            self._db = postgresql_uri()
            self._bucket = make_bucket(self.s3.client)
            self._stack.enter_context(self.s3.active())

    def create_arguments(self, name: str) -> dict[str, Any]:
        """``Butler.create`` arguments (``root`` included) for a new repository ``name``."""
        if self.kind == "postgresql-s3":
            schema = f"test_{uuid.uuid4().hex[:16]}"
            self._schemas.append(schema)
            return {"root": f"s3://{self._bucket}/{name}", "db": self._db, "namespace": schema}
        arguments: dict[str, Any] = {"root": str(self.tmp_path / name)}
        if self.kind == "sqlite-chained":
            arguments["datastore"] = CHAINED
        return arguments

    def create(self, name: str = "repo", **kwargs: Any) -> Butler:
        """A new repository, as a writeable butler."""
        butler = Butler.create(**self.create_arguments(name), **kwargs)
        self._butlers.append(butler)
        return butler

    def close(self) -> None:
        """Close the butlers, drop the PostgreSQL schemas, restore the environment."""
        for butler in self._butlers:
            butler.close()
        if self._schemas:
            engine = database_class_for_uri(self._db).makeEngine(self._db)
            with engine.begin() as connection:
                for schema in self._schemas:
                    connection.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            engine.dispose()
        self._stack.close()


def populate(butler: Butler, detectors: int = 10, dataset_type: str = "thing") -> None:
    """Instrument ``HSC``, detectors 0..n-1 and a dataset type (``thing``) by detector."""
    butler.insert_dimension_records("instrument", {"instrument": "HSC"})
    butler.insert_dimension_records(
        "detector", *({"instrument": "HSC", "detector": d} for d in range(detectors))
    )
    butler.register_dataset_type(dataset_type, ["detector"], "StructuredDataDict")


def file_datastore(butler: Butler) -> FileDatastore:
    """The file datastore of a repository (the first file child of a chain)."""
    found = [d for d in butler.datastore.leaves if isinstance(d, FileDatastore)]
    if not found:
        raise TypeError(f"{butler} has no file datastore.")
    return found[0]


def artifact_of(butler: Butler, ref: Any) -> tuple[ResourceStore, str]:
    """The store holding ``ref``'s artifact and its path there, to damage it on purpose."""
    datastore = file_datastore(butler)
    uri = datastore.get_uris([ref])[ref.id]
    prefix = datastore.store.root.rstrip("/") + "/"
    assert uri.startswith(prefix), f"{uri} is not under {prefix}"
    return datastore.store, uri[len(prefix) :]


@contextmanager
def on_both_backends(
    root: Path,
    make: Callable[..., Butler],
    state: Callable[[Butler], Any] | None = None,
) -> Iterator[dict[str, Butler]]:
    """The same repository on SQLite (``"sqlite"``) and PostgreSQL (``"postgresql"``).

    ``make(root, **create_arguments)`` builds each; the PostgreSQL one lives in
    a fresh schema of the test server, dropped afterwards. With ``state``, the
    block must leave ``state(butler)`` of both as it found it, and both must
    verify clean: what property tests of refused input assert.
    """
    uri = postgresql_uri()
    schema = f"test_{uuid.uuid4().hex[:16]}"
    made = {"sqlite": make(str(root / "sqlite"))}
    try:
        made["postgresql"] = make(str(root / "pg"), db=uri, namespace=schema)
        before = {name: state(butler) for name, butler in made.items()} if state else None
        yield made
        if state is not None:
            assert {name: state(butler) for name, butler in made.items()} == before
            for butler in made.values():
                assert butler.verify().ok
    finally:
        for butler in made.values():
            butler.close()
        _drop_schema(uri, schema)


@contextmanager
def registry_arguments(backend: str) -> Iterator[dict[str, Any]]:
    """`Butler.create` arguments for a new registry on ``backend``.

    ``{}`` for ``"sqlite"`` (the registry in the repository); for
    ``"postgresql"`` a fresh schema of the test server, dropped when the block
    ends (close the butlers made with it first).
    """
    if backend == "sqlite":
        yield {}
        return
    uri = postgresql_uri()
    schema = f"test_{uuid.uuid4().hex[:16]}"
    try:
        yield {"db": uri, "namespace": schema}
    finally:
        _drop_schema(uri, schema)


def _drop_schema(uri: str, schema: str) -> None:
    engine = database_class_for_uri(uri).makeEngine(uri)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()
