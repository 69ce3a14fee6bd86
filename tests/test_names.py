"""Names that cannot be stored are refused at registration, alike on SQLite and PostgreSQL.

Run/collection names, dataset type names and component names are limited to
what every registry column and the file templates can hold (a path
component is at most 255 bytes); the longest allowed names work end to end.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from databutler import (
    Butler,
    CollectionType,
    DatabutlerError,
    DatasetType,
    InvalidNameError,
)
from databutler._dataset_type import MAX_COMPONENT_NAME, MAX_DATASET_TYPE_NAME
from databutler.registry.collections import MAX_COLLECTION_NAME
from databutler.testing.butler import on_both_backends


def make_repository(root: str, **kwargs: Any) -> Butler:
    butler = Butler.create(root, run="base", **kwargs)
    butler.insert_dimension_records("instrument", {"instrument": "HSC"})
    butler.insert_dimension_records(
        "detector", *({"instrument": "HSC", "detector": d} for d in range(2))
    )
    butler.register_dataset_type("thing", ["detector"], "StructuredDataDict")
    butler.put({"base": True}, "thing", instrument="HSC", detector=0)
    return butler


def state(butler: Butler) -> tuple[list[str], list[str], list[str]]:
    """Collections, dataset types and dataset ids: what a refused call must not change."""
    types = sorted(t.name for t in butler.registry.queryDatasetTypes())
    ids = sorted(
        str(ref.id)
        for name in types
        for ref in butler.query_datasets(name, collections=butler.registry.queryCollections())
    )
    return butler.registry.queryCollections(), types, ids


@pytest.fixture(scope="module")
def butlers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Butler]]:
    """One repository per backend for the module; unchanged and clean at the end."""
    with on_both_backends(tmp_path_factory.mktemp("names"), make_repository, state) as made:
        yield made


def outcome(call: Any) -> str:
    """``"ok"`` or the name of the databutler error; anything else propagates (a bug)."""
    try:
        call()
    except DatabutlerError as exc:
        return type(exc).__name__
    return "ok"


NASTY = [
    "",
    "a" * (MAX_COLLECTION_NAME + 1),
    "a" * 256,
    "a" * 300,
    "x\x00y",
    "x\ud800y",
    "a/",
    "a//b",
    "a/./b",
    "a/../b",
    "..",
    "/a",
    "é",
    "a b",
    "a\nb",
]

RUN_NAMES = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=12),
    st.text(alphabet="ab/._-", min_size=1, max_size=8),
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.@/:+=-]{0,10}", fullmatch=True),
    st.integers(MAX_COLLECTION_NAME - 3, MAX_COLLECTION_NAME + 60).map(lambda n: "r" * n),
)


def put_into_run(butler: Butler, run: str) -> None:
    """Put into ``run``, read it back, then remove the run again (if the put worked)."""
    try:
        ref = butler.put({"run": run}, "thing", instrument="HSC", detector=1, run=run)
    finally:
        made = butler.registry.queryCollections()
    assert butler.get(ref) == {"run": run}
    assert run in made
    butler.remove_runs([run])
    butler.empty_trash()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=RUN_NAMES)
def test_run_names(butlers: dict[str, Butler], name: str) -> None:
    found = {}
    for backend, butler in butlers.items():
        before = state(butler)
        found[backend] = outcome(lambda b=butler: put_into_run(b, name))
        assert state(butler) == before
    assert found["sqlite"] == found["postgresql"], name
    valid = (
        0 < len(name) <= MAX_COLLECTION_NAME
        and name.isascii()
        and all(part not in ("", ".", "..") for part in name.split("/"))
        and all(c.isalnum() or c in "_.@/:+=-" for c in name)
        and (name[0].isalnum() or name[0] == "_")
    )
    assert found["sqlite"] == ("ok" if valid else "InvalidNameError"), name


TYPE_NAMES = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=12),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True),
    st.integers(MAX_DATASET_TYPE_NAME - 3, MAX_DATASET_TYPE_NAME + 200).map(lambda n: "t" * n),
)


def register_and_use(butler: Butler, name: str) -> None:
    """Register type ``name``, put and get one, then remove it all again."""
    butler.register_dataset_type(name, ["detector"], "StructuredDataDict")
    try:
        ref = butler.put({"type": name}, name, instrument="HSC", detector=1, run="types")
        assert butler.get(ref) == {"type": name}
        butler.remove_runs(["types"])
        butler.empty_trash()
    finally:
        butler.remove_dataset_type(name)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=TYPE_NAMES)
def test_dataset_type_names(butlers: dict[str, Butler], name: str) -> None:
    if name == "thing":
        return
    found = {}
    for backend, butler in butlers.items():
        before = state(butler)
        found[backend] = outcome(lambda b=butler: register_and_use(b, name))
        assert state(butler) == before
    assert found["sqlite"] == found["postgresql"], name
    valid = (
        0 < len(name) <= MAX_DATASET_TYPE_NAME
        and name.isascii()
        and (name.replace("_", "a").isalnum())
        and not name[0].isdigit()
    )
    assert found["sqlite"] == ("ok" if valid else "InvalidNameError"), name


@pytest.mark.parametrize("length", [256, 300])
def test_long_run_name_is_refused_naming_the_limit(butlers: dict[str, Butler], length: int) -> None:
    for butler in butlers.values():
        with pytest.raises(InvalidNameError, match=f"limit is {MAX_COLLECTION_NAME}"):
            butler.registry.registerRun("r" * length)
        with pytest.raises(InvalidNameError, match=f"limit is {MAX_COLLECTION_NAME}"):
            butler.registry.registerCollection("c" * length, CollectionType.TAGGED)
        assert "r" * length not in butler.registry.queryCollections()


def test_long_dataset_type_and_component_names_are_refused() -> None:
    with pytest.raises(InvalidNameError, match=f"limit is {MAX_DATASET_TYPE_NAME}"):
        DatasetType("t" * 300, ["detector"], "StructuredDataDict")
    with pytest.raises(InvalidNameError, match=f"limit is {MAX_COMPONENT_NAME}"):
        DatasetType("t." + "c" * (MAX_COMPONENT_NAME + 1), ["detector"], "StructuredDataDict")
    with pytest.raises(InvalidNameError, match="limit is 64"):
        DatasetType("t", ["detector"], "S" * 65)


def test_longest_names_work_end_to_end(butlers: dict[str, Butler]) -> None:
    run = "r/" * (MAX_COLLECTION_NAME // 2 - 1) + "rr"
    assert len(run) == MAX_COLLECTION_NAME
    dataset_type = "T" * MAX_DATASET_TYPE_NAME
    for butler in butlers.values():
        butler.register_dataset_type(dataset_type, ["detector"], "StructuredDataDict")
        ref = butler.put({"long": 1}, dataset_type, instrument="HSC", detector=1, run=run)
        assert butler.get(dataset_type, instrument="HSC", detector=1, collections=run) == {
            "long": 1
        }
        assert butler.find_dataset(dataset_type, instrument="HSC", detector=1, collections=run)
        assert butler.get(ref) == {"long": 1}
        butler.remove_runs([run])
        butler.empty_trash()
        butler.remove_dataset_type(dataset_type)


def test_put_into_empty_run_name_is_refused(butlers: dict[str, Butler]) -> None:
    for butler in butlers.values():
        before = state(butler)
        with pytest.raises(InvalidNameError, match="cannot be empty"):
            butler.put({"x": 1}, "thing", instrument="HSC", detector=1, run="")
        assert state(butler) == before


def test_create_and_open_register_the_run(tmp_path: Path) -> None:
    butler = Butler.create(tmp_path / "repo", run="night1")
    assert butler.registry.queryCollections() == ["night1"]
    assert butler.registry.getCollectionType("night1") is CollectionType.RUN
    assert butler.query_collections() == ["night1"] or "night1" in butler.query_collections()
    butler.close()
    with Butler(tmp_path / "repo", run="night2", writeable=True) as opened:
        assert opened.registry.getCollectionType("night2") is CollectionType.RUN
    with Butler(tmp_path / "repo", run="night3") as read_only:  # read-only: nothing written
        assert "night3" not in read_only.registry.queryCollections()


def test_create_with_bad_run_makes_nothing(tmp_path: Path) -> None:
    with pytest.raises(InvalidNameError):
        Butler.create(tmp_path / "repo", run="")
    with pytest.raises(InvalidNameError):
        Butler.create(tmp_path / "repo", run="r" * 300)
    assert not (tmp_path / "repo").exists()


def test_open_with_bad_run_is_refused(tmp_path: Path) -> None:
    Butler.create(tmp_path / "repo").close()
    for bad in ["", "a\x00b", "x" * 300]:
        with pytest.raises(InvalidNameError):
            Butler(tmp_path / "repo", run=bad, writeable=True)
    with Butler(tmp_path / "repo") as butler:
        assert butler.registry.queryCollections() == []


def test_ingest_into_an_empty_run_name_is_refused(tmp_path: Path) -> None:
    from databutler import FileDataset, InvalidNameError, UnresolvedRef

    butler = make_repository(str(tmp_path / "repo"))
    source = tmp_path / "x.json"
    source.write_text("{}")
    dataset = FileDataset(
        str(source), [UnresolvedRef("thing", {"instrument": "HSC", "detector": 1})]
    )
    with pytest.raises(InvalidNameError):
        butler.ingest(dataset, run="")
    assert source.exists()
    assert butler.verify().ok
    butler.close()
