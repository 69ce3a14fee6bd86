"""Registry caches stay coherent when another process changes the repository.

Each case runs the change in a real child process (and, for the cheap
cases, in a second `Butler` of this process, which shares no cache with the
first), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

from databutler import Butler, DatabutlerError
from databutler.registry.attributes import GENERATION_KEY
from databutler.testing.database import postgresql_uri, statements

BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new repository (local files) with HSC detectors 0-3 and type ``thing`` by detector."""
    path = str(tmp_path / "repo")
    schema = None
    if request.param == "postgresql":
        uri = postgresql_uri()
        schema = f"test_{uuid.uuid4().hex[:16]}"
        butler = Butler.create(path, db=uri, namespace=schema)
    else:
        butler = Butler.create(path)
    butler.insert_dimension_records("instrument", {"instrument": "HSC"})
    butler.insert_dimension_records(
        "detector", *({"instrument": "HSC", "detector": d} for d in range(4))
    )
    butler.register_dataset_type("thing", ["detector"], "StructuredDataDict")
    butler.close()
    try:
        yield path
    finally:
        if schema is not None:
            engine = sqlalchemy.create_engine(uri)
            with engine.begin() as connection:
                connection.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            engine.dispose()


#: Child code: empty night1, then make ``thing`` a type by instrument only, with one dataset.
REDEFINE_THING = """
butler.remove_runs(['night1'])
butler.empty_trash()
butler.remove_dataset_type('thing')
butler.register_dataset_type('thing', ['instrument'], 'StructuredDataDict')
butler.put({'b': 1}, 'thing', instrument='HSC', run='night1')
"""


def in_child(root: str, code: str) -> None:
    """Run ``code`` in a new Python process with ``butler`` open (writeable) on ``root``."""
    script = f"from databutler import Butler\nbutler = Butler({root!r}, writeable=True)\n"
    script += textwrap.dedent(code) + "\nbutler.close()\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def visible(root: str, dataset_type: str, collection: str) -> list[dict[str, object]]:
    """Data IDs of ``dataset_type`` in ``collection``, as a fresh butler sees them."""
    with_fresh = Butler(root)
    try:
        refs = with_fresh.query_datasets(dataset_type, collections=collection)
        return sorted((dict(ref.dataId.required) for ref in refs), key=str)  # type: ignore[union-attr]
    finally:
        with_fresh.close()


@pytest.mark.parametrize("other", ["child", "butler"])
def test_put_into_run_removed_by_another_client(root: str, other: str) -> None:
    butler = Butler(root, run="vol", writeable=True)
    butler.put({"a": 1}, "thing", instrument="HSC", detector=0)
    if other == "child":
        in_child(root, "butler.remove_runs(['vol'])\nbutler.empty_trash()")
    else:
        second = Butler(root, writeable=True)
        second.remove_runs(["vol"])
        second.empty_trash()
        second.close()
    # The run is created again on first use, as for a new run; no ConflictError.
    ref = butler.put({"a": 2}, "thing", instrument="HSC", detector=1)
    assert ref.run == "vol"
    assert visible(root, "thing", "vol") == [{"instrument": "HSC", "detector": 1}]
    assert butler.get("thing", instrument="HSC", detector=1, collections="vol") == {"a": 2}
    butler.close()


@pytest.mark.parametrize("other", ["child", "butler"])
def test_put_with_dataset_type_redefined_by_another_client(root: str, other: str) -> None:
    butler = Butler(root, run="night1", writeable=True)
    butler.put({"a": 1}, "thing", instrument="HSC", detector=0, run="old")
    butler.registry.registerRun("night1")  # cached, and still there after the change
    change = """
        butler.remove_runs(['old'])
        butler.empty_trash()
        butler.remove_dataset_type('thing')
        butler.register_dataset_type('thing', ['instrument'], 'StructuredDataDict')
    """
    if other == "child":
        in_child(root, change)
    else:
        second = Butler(root, writeable=True)
        second.remove_runs(["old"])
        second.empty_trash()
        second.remove_dataset_type("thing")
        second.register_dataset_type("thing", ["instrument"], "StructuredDataDict")
        second.close()
    # The stale definition (by detector) is never used: the put either follows the new
    # definition, visibly to everyone, or is refused with a databutler error.
    try:
        ref = butler.put({"a": 2}, "thing", instrument="HSC", detector=1)
    except DatabutlerError:
        assert visible(root, "thing", "night1") == []
    else:
        assert set(ref.datasetType.dimensions) == {"instrument"}
        assert visible(root, "thing", "night1") == [{"instrument": "HSC"}]
    # A put matching the new definition works and is seen by others.
    butler.put({"a": 3}, "thing", instrument="HSC", run="night2")
    assert visible(root, "thing", "night2") == [{"instrument": "HSC"}]
    assert butler.get("thing", instrument="HSC", collections="night2") == {"a": 3}
    assert butler.verify().ok
    butler.close()


def test_find_after_dataset_type_redefined_in_child(root: str) -> None:
    butler = Butler(root, run="night1", writeable=True)
    butler.put({"a": 1}, "thing", instrument="HSC", detector=0)
    assert butler.find_dataset("thing", instrument="HSC", detector=0, collections="night1")
    in_child(root, REDEFINE_THING)
    ref = butler.find_dataset("thing", instrument="HSC", collections="night1")
    assert ref is not None and set(ref.datasetType.dimensions) == {"instrument"}
    assert butler.get(ref) == {"b": 1}
    butler.close()


def test_chain_changed_by_child_is_seen(root: str) -> None:
    butler = Butler(root, run="a", writeable=True)
    butler.put({"run": "a"}, "thing", instrument="HSC", detector=0)
    butler.put({"run": "b"}, "thing", instrument="HSC", detector=0, run="b")
    butler.collection_chain("all", ["a", "b"])
    assert butler.get("thing", instrument="HSC", detector=0, collections="all") == {"run": "a"}
    in_child(root, "butler.collection_chain('all', ['b', 'a'])")
    assert butler.get("thing", instrument="HSC", detector=0, collections="all") == {"run": "b"}
    assert butler.registry.getCollectionChain("all") == ("b", "a")
    butler.close()


def test_schema_changes_bump_the_generation_and_plain_puts_do_not(root: str) -> None:
    butler = Butler(root, run="night1", writeable=True)
    attributes = butler.registry._managers.attributes

    def token() -> str | None:
        return attributes.get(GENERATION_KEY)

    before = token()
    assert before is not None  # registering the dataset type "thing" bumped it
    butler.put({"a": 1}, "thing", instrument="HSC", detector=0)
    butler.put({"a": 2}, "thing", instrument="HSC", detector=1)
    # Neither the puts nor the new run night1 they made: a new collection makes no
    # client's cache wrong, so other clients keep theirs.
    assert token() == before
    butler.registry.registerCollection("tagged")
    assert token() == before
    butler.register_dataset_type("other", ["instrument"], "StructuredDataDict")
    after_type = token()
    assert after_type != before
    butler.collection_chain("all", ["night1"])  # the chain is new, its members too: a bump
    after_chain = token()
    assert after_chain != after_type
    butler.registry.removeCollection("tagged")
    after_removal = token()
    assert after_removal != after_chain
    # A failed change rolls its bump back too.
    with pytest.raises(DatabutlerError):
        butler.register_dataset_type("other", ["detector"], "StructuredDataDict")
    assert token() == after_removal
    butler.close()


def test_repository_without_generation_row_opens_and_works(root: str) -> None:
    # Repositories made before the generation attribute existed have no row.
    butler = Butler(root, writeable=True)
    butler.registry._managers.attributes.delete(GENERATION_KEY)
    butler.close()
    butler = Butler(root, run="night1", writeable=True)
    ref = butler.put({"a": 1}, "thing", instrument="HSC", detector=0)
    assert butler.get(ref) == {"a": 1}
    butler.close()


def test_schema_change_waits_for_a_write_transaction_that_checked(root: str) -> None:
    # The generation read at the start of a dataset insert holds off schema changes
    # until the transaction ends (a share lock on PostgreSQL, the write lock on SQLite),
    # so the definitions it relied on cannot change under it.
    writer = Butler(root, run="night1", writeable=True)
    changer = Butler(root, writeable=True)
    changer.registry.registerCollection("tagged")
    done = threading.Event()
    failures: list[BaseException] = []

    def change() -> None:
        try:
            changer.registry.setCollectionDocumentation("tagged", "changed meanwhile")
        except BaseException as exc:  # reported below
            failures.append(exc)
        finally:
            done.set()

    with writer.transaction():
        writer.put({"a": 1}, "thing", instrument="HSC", detector=0)
        thread = threading.Thread(target=change)
        thread.start()
        assert not done.wait(1.0), "the schema change did not wait for the open insert"
    thread.join(60)
    assert done.is_set() and not failures, failures
    assert writer.registry.getCollectionDocumentation("tagged") == "changed meanwhile"
    assert visible(root, "thing", "night1") == [{"instrument": "HSC", "detector": 0}]
    writer.close()
    changer.close()


@pytest.mark.parametrize("found_before", [True, False], ids=["hit", "miss"])
def test_find_after_run_recreated_by_child(root: str, found_before: bool) -> None:
    """The generation read rides on the search's query: a stale run key is caught both when
    the stale search finds nothing and when it still finds rows."""
    butler = Butler(root, run="night1", writeable=True)
    butler.put({"old": 0}, "thing", instrument="HSC", detector=0)
    butler.put({"old": 1}, "thing", instrument="HSC", detector=1, run="night2")
    search = ["night1", "night2"]
    detector = 1 if found_before else 0
    assert butler.find_dataset("thing", instrument="HSC", detector=detector, collections=search)
    in_child(
        root,
        """
        butler.remove_runs(['night1'])
        butler.empty_trash()
        butler.put({'new': 1}, 'thing', instrument='HSC', detector=1, run='night1')
        """,
    )
    # night1 has a new key now; this client still has the old one cached.
    ref = butler.find_dataset("thing", instrument="HSC", detector=1, collections=search)
    assert ref is not None and ref.run == "night1"
    assert butler.get(ref) == {"new": 1}
    assert butler.find_dataset("thing", instrument="HSC", detector=0, collections=search) is None
    butler.close()


@pytest.mark.parametrize(
    "change",
    [
        "butler.registry.registerRun('unrelated')",
        "butler.register_dataset_type('other', ['detector'], 'StructuredDataDict')",
        "butler.collection_chain('all', ['night1'])",
    ],
    ids=["new-run", "new-type", "new-chain"],
)
def test_put_after_an_unrelated_schema_change_by_child(root: str, change: str) -> None:
    """Another client's change leaves this client's caches right: a new run changes nothing
    they hold; a new dataset type or chain makes them stale but not wrong, and the next put
    notices (on PostgreSQL, its guarded insert finds another generation), refreshes and
    succeeds within the same call."""
    butler = Butler(root, run="night1", writeable=True)
    butler.put({"a": 1}, "thing", instrument="HSC", detector=0)
    in_child(root, change)
    ref = butler.put({"a": 2}, "thing", instrument="HSC", detector=1)
    assert butler.get(ref) == {"a": 2}
    refs = butler.put_many(
        [({"a": 3}, "thing", {"instrument": "HSC", "detector": 2})]
    )  # the caches are current again: the guarded insert goes through at once
    assert [butler.get(r) for r in refs] == [{"a": 3}]
    assert visible(root, "thing", "night1") == [
        {"instrument": "HSC", "detector": d} for d in (0, 1, 2)
    ]
    # A try that found the caches stale (on PostgreSQL, at its commit) left no artifact.
    assert len([p for p in (Path(root) / "files" / "night1").rglob("*") if p.is_file()]) == 3
    butler.close()


def test_a_query_checks_the_caches_once_and_sees_changes_made_before_it(root: str) -> None:
    """`query_datasets` makes several registry calls that each check the caches; one read
    of the generation serves them all (`SqlRegistry.caches_checked_once`), and a change
    another client made before the query is still seen by it."""
    butler = Butler(root, run="a", writeable=True)
    butler.put({"run": "a"}, "thing", instrument="HSC", detector=0)
    butler.put({"run": "b"}, "thing", instrument="HSC", detector=1, run="b")
    butler.collection_chain("all", ["a"])
    registry = butler.registry
    reads: list[str] = []

    def count(conn: object, cursor: object, statement: str, parameters: object, *_: object) -> None:
        if "butler_attributes" in statement and GENERATION_KEY in str(parameters):
            reads.append(statement)

    engine = registry.db._engine
    sqlalchemy.event.listen(engine, "before_cursor_execute", count)
    try:
        found = list(butler.query_datasets("thing", collections="all", where="detector >= 0"))
        assert [ref.run for ref in found] == ["a"]
        assert len(reads) == 1
        in_child(root, "butler.collection_chain('all', ['b'])")
        reads.clear()
        found = list(butler.query_datasets("thing", collections="all"))
        assert [ref.run for ref in found] == ["b"]
        assert len(reads) == 1
        # Inside the block, forgetting the token makes the next check read again.
        reads.clear()
        with registry.caches_checked_once():
            registry.getDatasetType("thing")
            registry.getDatasetType("thing")
            registry._managers.generation.forget()
            registry.getDatasetType("thing")
        assert len(reads) == 2
        # Outside it, every call checks.
        reads.clear()
        registry.getDatasetType("thing")
        registry.getDatasetType("thing")
        assert len(reads) == 2
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", count)
        butler.close()


@pytest.mark.parametrize("found_before", [True, False], ids=["rows", "none"])
def test_a_query_after_run_recreated_by_child(root: str, found_before: bool) -> None:
    """The generation rides on the query's own statement: a stale run key is caught both when
    the stale statement still returns rows (they carry the new token) and when it returns
    none (the token is read after), and the query runs again before yielding anything."""
    butler = Butler(root, run="night1", writeable=True)
    butler.put({"old": 0}, "thing", instrument="HSC", detector=0)
    butler.put({"old": 1}, "thing", instrument="HSC", detector=1, run="night2")
    search = ["night1", "night2"] if found_before else ["night1"]
    assert list(butler.query_datasets("thing", collections=search))
    in_child(
        root,
        """
        butler.remove_runs(['night1'])
        butler.empty_trash()
        butler.put({'new': 2}, 'thing', instrument='HSC', detector=2, run='night1')
        """,
    )
    # night1 has a new key now; this client still has the old one cached.
    found = list(butler.query_datasets("thing", collections=search, where="detector >= 0"))
    expected = [("night1", 2), ("night2", 1)] if found_before else [("night1", 2)]
    assert sorted((ref.run, ref.dataId["detector"]) for ref in found) == expected
    assert [butler.get(ref) for ref in found if ref.run == "night1"] == [{"new": 2}]
    butler.close()


@pytest.mark.parametrize("limit", [None, 5], ids=["streamed", "limited"])
def test_a_query_after_dataset_type_redefined_by_child(root: str, limit: int | None) -> None:
    """A statement built on the old definition (its tags table and dimensions gone) fails or
    finds nothing; either way the query is built again on the new one, within the call."""
    butler = Butler(root, run="night1", writeable=True)
    butler.put({"a": 1}, "thing", instrument="HSC", detector=0)
    assert len(list(butler.query_datasets("thing", collections="night1"))) == 1
    in_child(root, REDEFINE_THING)
    found = list(butler.query_datasets("thing", collections="night1", limit=limit))
    assert [set(ref.datasetType.dimensions) for ref in found] == [{"instrument"}]
    assert butler.get(found[0]) == {"b": 1}
    butler.close()


def test_a_query_of_a_type_removed_by_child_says_so(root: str) -> None:
    """The name is not looked up before the query (that would cost a round trip): a type
    another client removed is refused when the query runs, with the registry's own error."""
    from databutler.registry.dataset_types import MissingDatasetTypeError

    butler = Butler(root, run="night1", writeable=True)
    assert list(butler.query_datasets("thing", collections="night1")) == []
    in_child(root, "butler.remove_dataset_type('thing')")
    with pytest.raises(MissingDatasetTypeError, match="'thing'"):
        list(butler.query_datasets("thing", collections="night1"))
    with pytest.raises(MissingDatasetTypeError, match="'nothing'"):
        butler.query_datasets("nothing", collections="night1")  # refused at the call
    butler.close()


def test_a_query_is_one_statement_on_a_server(root: str) -> None:
    """Outside a transaction a butler query on PostgreSQL runs one statement, which also
    reads the generation; on SQLite (a read costs no round trip) and inside a transaction
    the generation is read first, once."""
    butler = Butler(root, run="night1", writeable=True)
    butler.put({"a": 1}, "thing", instrument="HSC", detector=0)
    assert len(list(butler.query_datasets("thing", collections="night1"))) == 1  # caches warm
    with statements(butler.registry.db) as seen:
        found = butler.query_datasets("thing", collections="night1", where="detector = 0")
        assert [ref.dataId["detector"] for ref in found] == [0]
    selects = [s for s in seen if s.lstrip().upper().startswith("SELECT")]
    if butler.registry.db.dialect_name == "postgresql":
        assert len(selects) == 1 and "butler_attributes" in selects[0], seen
    else:
        assert len(selects) == 2 and selects[0].startswith("SELECT value FROM"), seen
    with statements(butler.registry.db) as seen, butler.transaction():
        assert len(list(butler.query_datasets("thing", collections="night1"))) == 1
    generation_reads = [s for s in seen if s.lstrip().startswith("SELECT value FROM")]
    assert len(generation_reads) == 1, seen
    butler.close()


def _collection_statements(seen: list[str]) -> tuple[int, int]:
    """How many of ``seen`` read the ``collection`` table, and how many insert into it."""
    reads = [s for s in seen if re.match(r"SELECT .*\bFROM\s+(\w+\.)?collection\b", s, re.S)]
    inserts = [s for s in seen if re.match(r"INSERT INTO (\w+\.)?collection \(", s)]
    return len(reads), len(inserts)


def test_a_put_into_a_new_run_reads_and_writes_the_run_once(root: str) -> None:
    """A run this client has not seen is looked up and, new, registered inside the put's
    transaction; what follows there uses the inserted row instead of reading it back, and
    nothing is read before the transaction."""
    butler = Butler(root, run="night1", writeable=True)
    butler.put({"a": 1}, "thing", instrument="HSC", detector=0)  # caches warm
    db = butler.registry.db
    with statements(db) as seen:
        ref = butler.put({"a": 2}, "thing", instrument="HSC", detector=0, run="night2")
    assert _collection_statements(seen) == (1, 1), seen
    # The schema generation: on PostgreSQL the insert's own statement checks it (its
    # guard); on SQLite it is read once, inside the transaction.
    generation_reads = [s for s in seen if s.lstrip().startswith("SELECT value FROM")]
    assert len(generation_reads) == (0 if db.dialect_name == "postgresql" else 1), seen
    if db.dialect_name == "sqlite":
        assert seen[0].startswith("BEGIN"), seen  # nothing read before the transaction
    with statements(butler.registry.db) as seen:  # now known: neither read nor written
        butler.put({"a": 3}, "thing", instrument="HSC", detector=1, run="night2")
    assert _collection_statements(seen) == (0, 0), seen
    butler.close()
    with Butler(root) as fresh:
        assert fresh.registry.getCollectionType("night2").name == "RUN"
        assert fresh.get(ref) == {"a": 2}


def test_a_put_into_a_run_another_client_made_finds_it_in_its_transaction(root: str) -> None:
    """A run another client registered is read once (not registered again); a TAGGED
    collection of the name is refused by the insert, and nothing is written."""
    butler = Butler(root, run="night1", writeable=True)
    butler.put({"a": 1}, "thing", instrument="HSC", detector=0)
    in_child(
        root, "butler.registry.registerRun('theirs')\nbutler.registry.registerCollection('tags')"
    )
    with statements(butler.registry.db) as seen:
        butler.put({"a": 2}, "thing", instrument="HSC", detector=0, run="theirs")
    assert _collection_statements(seen) == (1, 0), seen
    with pytest.raises(DatabutlerError, match="Datasets go into RUN collections; 'tags'"):
        butler.put({"a": 3}, "thing", instrument="HSC", detector=0, run="tags")
    assert butler.registry.getCollectionType("tags").name == "TAGGED"
    butler.close()
    assert visible(root, "thing", "theirs") == [{"instrument": "HSC", "detector": 0}]
    assert visible(root, "thing", "tags") == []


def test_a_run_registered_in_a_rolled_back_savepoint_is_registered_again(root: str) -> None:
    """What a transaction kept in its caches is forgotten when a block of it rolls back:
    a put after the savepoint that registered the run was undone registers it again,
    instead of using the undone row's key."""
    butler = Butler(root, run="night1", writeable=True)
    db = butler.registry.db
    with butler.transaction():
        with contextlib.suppress(ValueError), db.transaction(savepoint=True):
            assert butler.registry.registerRun("ghost")
            raise ValueError("undo the registration")
        ref = butler.put({"a": 1}, "thing", instrument="HSC", detector=0, run="ghost")
    assert butler.get(ref) == {"a": 1}
    butler.close()
    assert visible(root, "thing", "ghost") == [{"instrument": "HSC", "detector": 0}]
