"""Streamed queries on PostgreSQL compile each shape once and keep every call's own values."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy

from databutler import Butler, CollectionType
from databutler.testing.butler import populate, registry_arguments

DETECTORS = 12


@pytest.fixture
def butler(tmp_path: Path) -> Iterator[Butler]:
    """A PostgreSQL repository with ``thing`` in runs ``a`` (every detector), ``b`` (the even
    ones) and ``c`` (detectors 0-2), chained as ``abc``."""
    with registry_arguments("postgresql") as arguments:
        butler = Butler.create(str(tmp_path / "repo"), run="a", **arguments)
        try:
            populate(butler, detectors=DETECTORS)
            for run, detectors in [("a", range(DETECTORS)), ("b", range(0, DETECTORS, 2))]:
                for d in detectors:
                    butler.put({"run": run, "d": d}, "thing", instrument="HSC", detector=d, run=run)
            for d in range(3):
                butler.put({"run": "c", "d": d}, "thing", instrument="HSC", detector=d, run="c")
            butler.registry.registerCollection("abc", CollectionType.CHAINED)
            butler.registry.setCollectionChain("abc", ["c", "b", "a"])
            yield butler
        finally:
            butler.close()


def _found(butler: Butler, **query: Any) -> list[tuple[str | None, Any]]:
    return [(ref.run, ref.dataId["detector"]) for ref in butler.query_datasets("thing", **query)]


@pytest.mark.postgresql
def test_one_shape_with_other_values_gives_each_call_its_own_answer(
    butler: Butler, monkeypatch: pytest.MonkeyPatch
) -> None:
    db: Any = butler.registry.db
    dialect = db._engine.dialect
    cached = db._driver_statement
    seen: list[tuple[str, Mapping[str, Any]]] = []

    def checked(sql: sqlalchemy.Select[Any]) -> tuple[str, Mapping[str, Any]] | None:
        # What a compilation of this very statement gives, with the IN lists rendered.
        fresh = sql.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        got: tuple[str, Mapping[str, Any]] | None = cached(sql)
        assert got is not None
        assert (got[0], dict(got[1])) == (str(fresh), fresh.params)
        seen.append(got)
        return got

    monkeypatch.setattr(db, "_driver_statement", checked)
    for low in range(0, DETECTORS, 3):
        assert _found(butler, collections="a", where=f"detector >= {low}") == [
            ("a", d) for d in range(low, DETECTORS)
        ]
    for chosen in ([1], [1, 4], [2, 4, 6, 8], list(range(DETECTORS))):
        listed = ", ".join(map(str, chosen))
        assert _found(butler, collections="a", where=f"detector IN ({listed})") == [
            ("a", d) for d in chosen
        ]
        assert _found(
            butler, collections="a", where="detector IN (:ids)", bind={"ids": chosen}
        ) == [("a", d) for d in chosen]
    for search in (["a"], ["b", "a"], ["c", "b", "a"], ["c"]):
        found = _found(butler, collections=search, where="detector < 4", find_first=True)
        first = {d: next((r for r in search if (r, d) in _ALL), None) for d in range(4)}
        assert found == sorted(
            ((run, d) for d, run in first.items() if run is not None), key=lambda x: x[1]
        )
    for limit in (1, 3, 5):
        assert _found(butler, collections="a", order_by="-detector", limit=limit) == [
            ("a", d) for d in range(DETECTORS - 1, DETECTORS - 1 - limit, -1)
        ]
    for limit in (20_000, 30_000):  # more than one batch: streamed, with the limit bound
        assert len(_found(butler, collections="a", order_by="detector", limit=limit)) == DETECTORS
    assert len(seen) >= 18
    shapes, streamed = len(db._compiled_streams), len(seen)
    # A long list is bound afresh each time, not kept with a compiled form.
    many = list(range(-2_000, DETECTORS))
    assert _found(butler, collections="a", where="detector IN (:ids)", bind={"ids": many}) == [
        ("a", d) for d in range(DETECTORS)
    ]
    assert (len(db._compiled_streams), len(seen)) == (shapes, streamed + 1)
    # Far fewer shapes than statements: the values did not make new ones.
    assert len(db._compiled_streams) <= len(seen) // 2


_ALL = {
    *(("a", d) for d in range(DETECTORS)),
    *(("b", d) for d in range(0, DETECTORS, 2)),
    *(("c", d) for d in range(3)),
}
