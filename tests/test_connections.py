"""A butler keeps its connections for its lifetime, leaks none, and survives a dropped one."""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeAlias

import pytest
import sqlalchemy
import sqlalchemy.exc

from databutler import Butler, DatabaseConnectionError
from databutler.testing.butler import populate
from databutler.testing.database import postgresql_uri


def _engine(uri: str) -> sqlalchemy.engine.Engine:
    return sqlalchemy.create_engine(uri.replace("postgresql://", "postgresql+psycopg://", 1))


@pytest.fixture
def server() -> Iterator[tuple[str, sqlalchemy.engine.Engine, str]]:
    """The test server's URI tagged with a unique application name, an admin engine, the name."""
    base = postgresql_uri()
    name = f"databutler-{uuid.uuid4().hex[:12]}"
    tagged = f"{base}{'&' if '?' in base else '?'}application_name={name}"
    admin = _engine(base)
    namespace = f"test_{uuid.uuid4().hex[:16]}"
    try:
        yield tagged + f"#{namespace}", admin, name
    finally:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{namespace}" CASCADE'))
        admin.dispose()


def _split(uri: str) -> tuple[str, str]:
    db, _, namespace = uri.partition("#")
    return db, namespace


def _connections(admin: sqlalchemy.engine.Engine, name: str) -> list[int]:
    with admin.connect() as connection:
        return list(
            connection.execute(
                sqlalchemy.text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                {"name": name},
            ).scalars()
        )


def _gone(admin: sqlalchemy.engine.Engine, name: str) -> list[int]:
    """The connections still listed once the server has had time to end closed ones.

    A backend leaves ``pg_stat_activity`` a moment after its client hung up.
    """
    deadline = time.monotonic() + 10
    left = _connections(admin, name)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = _connections(admin, name)
    return left


def _make(root: Path, uri: str) -> None:
    db, namespace = _split(uri)
    with Butler.create(str(root), db=db, namespace=namespace, run="r1") as butler:
        populate(butler, detectors=3)
        butler.put({"a": 1}, "thing", instrument="HSC", detector=0)


@pytest.mark.postgresql
def test_forgotten_butlers_leave_no_connection(
    server: tuple[str, sqlalchemy.engine.Engine, str], tmp_path: Path
) -> None:
    uri, admin, name = server
    _make(tmp_path / "repo", uri)
    assert _gone(admin, name) == []
    for i in range(200):
        butler = Butler(str(tmp_path / "repo"), writeable=i % 2 == 0, collections="r1")
        assert butler.get("thing", instrument="HSC", detector=0) == {"a": 1}
        if i % 2 == 0:
            butler.put({"a": i}, "thing", instrument="HSC", detector=1, run=f"run{i}")
        if i % 10 == 0:  # a query stream keeps a connection of its own
            assert len(list(butler.query_datasets("thing", collections="r1"))) == 1
        del butler  # never closed
    gc.collect()
    assert _gone(admin, name) == []


@pytest.mark.postgresql
def test_a_butler_keeps_one_connection_per_kind(
    server: tuple[str, sqlalchemy.engine.Engine, str], tmp_path: Path
) -> None:
    uri, admin, name = server
    _make(tmp_path / "repo", uri)
    with Butler(str(tmp_path / "repo"), writeable=True, run="r1") as butler:
        refs = []
        for d in range(3):
            refs.append(butler.put({"d": d}, "thing", instrument="HSC", detector=d, run=f"x{d}"))
            assert butler.get("thing", instrument="HSC", detector=d, collections=f"x{d}") == {
                "d": d
            }
        held = _connections(admin, name)
        assert 1 <= len(held) <= 3  # reads, writes (and the datastore's clone at most)
        for ref in refs:
            assert butler.exists(ref)
        assert sorted(_connections(admin, name)) == sorted(held)  # the same ones, kept
    assert _gone(admin, name) == []


@pytest.mark.postgresql
def test_the_next_call_after_the_server_drops_a_connection_succeeds(
    server: tuple[str, sqlalchemy.engine.Engine, str], tmp_path: Path
) -> None:
    uri, admin, name = server
    _make(tmp_path / "repo", uri)
    with Butler(str(tmp_path / "repo"), writeable=True, run="r1") as butler:
        for round_ in range(3):
            assert butler.get("thing", instrument="HSC", detector=0) == {"a": 1}
            butler.put({"r": round_}, "thing", instrument="HSC", detector=1, run=f"y{round_}")
            pids = _connections(admin, name)
            assert pids
            with admin.connect() as connection:
                for pid in pids:
                    connection.execute(
                        sqlalchemy.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}
                    )
            # Both a read and a write go through on new connections.
            assert butler.get("thing", instrument="HSC", detector=0) == {"a": 1}
            butler.put({"r": round_}, "thing", instrument="HSC", detector=2, run=f"y{round_}")
            assert butler.get("thing", instrument="HSC", detector=2, collections=f"y{round_}") == {
                "r": round_
            }
        assert butler.verify().ok


#: What the `repo` fixture gives: the root, the butler, the admin engine, the butler's
#: application name.
Repo: TypeAlias = tuple[Path, Butler, sqlalchemy.engine.Engine, str]


@pytest.fixture
def repo(server: tuple[str, sqlalchemy.engine.Engine, str], tmp_path: Path) -> Iterator[Repo]:
    """A new repository on the test server (see `_make`), open for writing in run ``r1``: its
    root, the butler, the admin engine and the butler's application name."""
    uri, admin, name = server
    root = tmp_path / "repo"
    _make(root, uri)
    with Butler(str(root), writeable=True, run="r1") as butler:
        yield root, butler, admin, name


def _terminate(admin: sqlalchemy.engine.Engine, name: str) -> None:
    with admin.connect() as connection:
        for pid in _connections(admin, name):
            connection.execute(sqlalchemy.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


def _files(root: Path, run: str) -> list[Path]:
    """The artifacts of ``run`` on disk."""
    return [p for p in (root / "files" / run).rglob("*") if p.is_file()]


def _reply_lost(
    monkeypatch: pytest.MonkeyPatch, butler: Butler, *, sent: bool, told: bool = True
) -> None:
    """Make the next commits of ``butler`` lose the server's reply: the writes and the COMMIT
    reach the server when ``sent`` (else nothing does), then the client sees the connection
    drop, as when the server or the network dies at that moment. Without ``told``, the
    server cannot be asked afterwards whether it committed."""
    db = butler.registry.db
    send = db._send_deferred

    def lose_reply(connection: Any, queued: Any, *, commit: bool) -> int:
        if not commit:
            return send(connection, queued, commit=commit)
        if sent:
            send(connection, queued, commit=commit)
        dropped = OSError("server closed the connection unexpectedly")
        raise sqlalchemy.exc.OperationalError("COMMIT", None, dropped, connection_invalidated=True)

    monkeypatch.setattr(db, "_send_deferred", lose_reply)
    if not told:
        monkeypatch.setattr(db, "_committed_after_all", lambda: None)


@pytest.mark.postgresql
def test_a_transaction_that_loses_its_connection_keeps_nothing(
    repo: Repo,
) -> None:
    root, butler, admin, name = repo
    lost = pytest.raises(DatabaseConnectionError, match="none of its work was kept")
    with lost as caught, butler.transaction():
        butler.put({"a": 1}, "thing", instrument="HSC", detector=1, run="lost")
        assert _files(root, "lost")  # written, not yet committed
        _terminate(admin, name)
        butler.put({"a": 2}, "thing", instrument="HSC", detector=2, run="lost")
    assert not caught.value.in_doubt
    assert isinstance(caught.value, ConnectionError)
    assert _files(root, "lost") == []  # the transaction's files went with it
    assert butler.registry.queryCollections("lost*") == []
    # The butler goes on, on a new connection.
    butler.put({"a": 3}, "thing", instrument="HSC", detector=1, run="after")
    assert butler.get("thing", instrument="HSC", detector=1, collections="after") == {"a": 3}
    assert butler.verify().ok


@pytest.mark.postgresql
@pytest.mark.parametrize("in_transaction", [False, True])
def test_a_commit_whose_reply_is_lost_stands_when_the_server_committed_it(
    repo: Repo,
    monkeypatch: pytest.MonkeyPatch,
    in_transaction: bool,
) -> None:
    root, butler, _, _ = repo
    _reply_lost(monkeypatch, butler, sent=True)
    if in_transaction:
        with butler.transaction():
            refs = [
                butler.put({"d": d}, "thing", instrument="HSC", detector=d, run="kept")
                for d in (1, 2)
            ]
    else:
        refs = [butler.put({"d": 1}, "thing", instrument="HSC", detector=1, run="kept")]
    monkeypatch.undo()
    # The server committed: the put stands, with its files.
    assert len(_files(root, "kept")) == len(refs)
    for ref in refs:
        assert butler.get(ref) == {"d": ref.dataId["detector"]}
    assert butler.verify().ok


@pytest.mark.postgresql
@pytest.mark.parametrize("told", [True, False])
def test_a_commit_whose_reply_is_lost_and_that_the_server_did_not_make(
    repo: Repo,
    monkeypatch: pytest.MonkeyPatch,
    told: bool,
) -> None:
    root, butler, _, _ = repo
    _reply_lost(monkeypatch, butler, sent=False, told=told)
    with pytest.raises(DatabaseConnectionError) as caught:
        butler.put({"d": 1}, "thing", instrument="HSC", detector=1, run="gone")
    monkeypatch.undo()
    assert caught.value.in_doubt is not told
    if not told:
        # Kept, in case the registry names it. Here the server had not committed, so no
        # dataset names the file: verify finds it and can delete it.
        assert "databutler verify" in str(caught.value)
        assert len(_files(root, "gone")) == 1
        assert [p.kind for p in butler.verify().problems] == ["unknown_artifact"]
        butler.verify(repair=True, delete_unknown=True)
    assert _files(root, "gone") == []
    assert butler.verify().ok


@pytest.mark.postgresql
def test_a_put_whose_connection_drops_as_it_commits_is_made_again_on_a_new_one(
    repo: Repo,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, butler, admin, _ = repo
    db = butler.registry.db
    send = db._send_deferred
    killed: list[int] = []

    def killing_first(connection: Any, queued: Any, *, commit: bool) -> int:
        if commit and not killed:  # the server goes away just as the put commits
            pid = connection.connection.dbapi_connection.info.backend_pid
            with admin.connect() as other:
                other.execute(sqlalchemy.text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            killed.append(pid)
        return send(connection, queued, commit=commit)

    monkeypatch.setattr(db, "_send_deferred", killing_first)
    ref = butler.put({"d": 1}, "thing", instrument="HSC", detector=1, run="again")
    monkeypatch.undo()
    assert killed  # the first try really lost its connection
    assert butler.get(ref) == {"d": 1}
    assert len(_files(root, "again")) == 1  # the first try's file went with it
    assert butler.verify().ok
