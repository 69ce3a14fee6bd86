"""Collections: registration, chains, queries and removal, on every database."""

from __future__ import annotations

import pytest
import sqlalchemy

from databutler import CollectionError, CollectionType, InvalidNameError, MissingCollectionError
from databutler.registry import RegistryManagerInstances
from databutler.testing.database import DatabaseFactory

RUN, TAGGED, CHAINED, CALIBRATION = (
    CollectionType.RUN,
    CollectionType.TAGGED,
    CollectionType.CHAINED,
    CollectionType.CALIBRATION,
)


def _tables(
    databases: DatabaseFactory,
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """Both collection tables, read through the backdoor."""
    with databases.raw_engine().connect() as connection:
        collections = connection.execute(
            sqlalchemy.text(
                f"SELECT name, type, doc FROM {databases.qualified('collection')} ORDER BY name"
            )
        ).all()
        chains = connection.execute(
            sqlalchemy.text(
                "SELECT parent_id, position, child_id FROM "
                f"{databases.qualified('collection_chain')} ORDER BY parent_id, position"
            )
        ).all()
    return [tuple(r) for r in collections], [tuple(r) for r in chains]


@pytest.fixture
def collections(repo: RegistryManagerInstances):  # type: ignore[no-untyped-def]
    return repo.collections


def test_register_and_find(collections, databases: DatabaseFactory) -> None:  # type: ignore[no-untyped-def]
    run, new = collections.register("HSC/runs/RC2", RUN, doc="the RC2 run")
    assert new and run.name == "HSC/runs/RC2" and run.type is RUN and run.doc == "the RC2 run"
    again, new_again = collections.register("HSC/runs/RC2", RUN)
    assert again == run and not new_again
    for name, kind in [("tagged", TAGGED), ("chain", CHAINED), ("calib", CALIBRATION)]:
        assert collections.register(name, kind)[0].type is kind
    assert collections.find("calib").type is CALIBRATION
    assert _tables(databases)[0] == [
        ("HSC/runs/RC2", RUN.value, "the RC2 run"),
        ("calib", CALIBRATION.value, None),
        ("chain", CHAINED.value, None),
        ("tagged", TAGGED.value, None),
    ]


def test_conflicting_redefinition_is_refused(collections, databases: DatabaseFactory) -> None:  # type: ignore[no-untyped-def]
    collections.register("x", RUN)
    before = _tables(databases)
    with pytest.raises(CollectionError, match="exists already as RUN, not TAGGED"):
        collections.register("x", TAGGED)
    assert _tables(databases) == before


@pytest.mark.parametrize(
    "name", ["", "a b", "x'; DROP TABLE collection; --", "/leading", "n" * 257, "tab\tname", 7]
)
def test_bad_names_are_refused(collections, databases: DatabaseFactory, name: object) -> None:  # type: ignore[no-untyped-def]
    before = _tables(databases)
    with pytest.raises(InvalidNameError, match="collection name"):
        collections.register(name, RUN)
    assert _tables(databases) == before


def test_missing_collection(collections) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MissingCollectionError, match="No collection named 'nope'"):
        collections.find("nope")


def test_chains_flatten_in_order(collections) -> None:  # type: ignore[no-untyped-def]
    for name in ("a", "b", "c", "d"):
        collections.register(name, RUN)
    collections.register("inner", CHAINED)
    collections.register("outer", CHAINED)
    collections.set_chain("inner", ["c", "a"])
    collections.set_chain("outer", ["b", "inner", "a", "d"])
    assert collections.get_chain("outer") == ("b", "inner", "a", "d")
    # Depth-first in chain order; 'a' is searched at its first place only.
    assert [r.name for r in collections.resolve(["outer"])] == ["b", "c", "a", "d"]
    assert [r.name for r in collections.resolve(["d", "outer"])] == ["d", "b", "c", "a"]
    collections.set_chain("inner", ["a"])
    assert [r.name for r in collections.resolve(["outer"])] == ["b", "a", "d"]
    assert collections.parents("a") == ["inner", "outer"]


def test_cycles_are_refused_and_change_nothing(collections, databases: DatabaseFactory) -> None:  # type: ignore[no-untyped-def]
    collections.register("run", RUN)
    for name in ("x", "y", "z"):
        collections.register(name, CHAINED)
    collections.set_chain("x", ["y", "run"])
    collections.set_chain("y", ["z"])
    before = _tables(databases)
    with pytest.raises(CollectionError, match=r"cycle \(z -> x -> y -> z\)"):
        collections.set_chain("z", ["x"])
    with pytest.raises(CollectionError, match="cycle"):
        collections.set_chain("x", ["x"])
    with pytest.raises(CollectionError, match="more than once"):
        collections.set_chain("x", ["run", "run"])
    with pytest.raises(MissingCollectionError):
        collections.set_chain("x", ["run", "ghost"])
    with pytest.raises(CollectionError, match="is a RUN collection, not CHAINED"):
        collections.set_chain("run", ["x"])
    with pytest.raises(TypeError, match="not the string"):
        collections.set_chain("x", "run")
    assert _tables(databases) == before


def test_query_by_glob_and_type(collections) -> None:  # type: ignore[no-untyped-def]
    collections.register("HSC/runs/a", RUN)
    collections.register("HSC/runs/b", RUN)
    collections.register("HSC/calib", CALIBRATION)
    collections.register("LATISS/runs/a", RUN)
    collections.register("HSC/defaults", CHAINED)
    names = lambda records: [r.name for r in records]  # noqa: E731
    assert names(collections.query("HSC/runs/*")) == ["HSC/runs/a", "HSC/runs/b"]
    assert names(collections.query("*/runs/a")) == ["HSC/runs/a", "LATISS/runs/a"]
    assert names(collections.query("HSC/*", types=[CALIBRATION, CHAINED])) == [
        "HSC/calib",
        "HSC/defaults",
    ]
    assert names(collections.query(types=[RUN])) == ["HSC/runs/a", "HSC/runs/b", "LATISS/runs/a"]
    assert names(collections.query("HSC/calib")) == ["HSC/calib"]
    assert collections.query("nothing*") == []


def test_documentation(collections) -> None:  # type: ignore[no-untyped-def]
    collections.register("run", RUN)
    assert collections.getDocumentation("run") is None
    collections.setDocumentation("run", "processed on 2026-11-26")
    assert collections.getDocumentation("run") == "processed on 2026-11-26"
    collections.setDocumentation("run", None)
    assert collections.getDocumentation("run") is None


def test_remove(collections, databases: DatabaseFactory) -> None:  # type: ignore[no-untyped-def]
    collections.register("run", RUN)
    collections.register("chain", CHAINED)
    collections.set_chain("chain", ["run"])
    before = _tables(databases)
    with pytest.raises(CollectionError, match=r"still in chain\(s\) \['chain'\]"):
        collections.remove("run")
    assert _tables(databases) == before
    collections.remove("chain")  # its membership rows go with it
    assert _tables(databases) == ([("run", RUN.value, None)], [])
    collections.remove("run")
    assert _tables(databases) == ([], [])
    with pytest.raises(MissingCollectionError):
        collections.remove("run")
