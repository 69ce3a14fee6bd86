"""One data-ID validator: random data IDs get the same answer on SQLite and PostgreSQL.

Random keys and values (integers beyond 64 bits, bools, floats, NUL, lone
surrogates, over-long strings, unknown keys) go through ``put``, ``get``,
``find_dataset``, ``expandDataId`` and ``insertDimensionData``: each is
either accepted with the same answer on both backends or refused by both with
the same databutler error, and the repositories are unchanged afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from databutler import Butler, DatabutlerError, DataIdError
from databutler.testing.butler import on_both_backends


def make_repository(root: str, **kwargs: Any) -> Butler:
    butler = Butler.create(root, run="base", **kwargs)
    butler.insert_dimension_records("instrument", {"instrument": "HSC"})
    butler.insert_dimension_records(
        "detector", *({"instrument": "HSC", "detector": d} for d in range(4))
    )
    butler.register_dataset_type("thing", ["detector"], "StructuredDataDict")
    butler.put({"detector": 0}, "thing", instrument="HSC", detector=0)
    return butler


def state(butler: Butler) -> dict[str, Any]:
    """What a call must not change: collections, datasets, detector records."""
    return {
        "collections": butler.registry.queryCollections(),
        "datasets": sorted(
            str(ref.id) for ref in butler.query_datasets("thing", collections="base")
        ),
        "detectors": sorted(
            str(sorted(r.to_dict().items())) for r in butler.query_dimension_records("detector")
        ),
        "instruments": len(list(butler.query_dimension_records("instrument"))),
    }


@pytest.fixture(scope="module")
def butlers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Butler]]:
    """One repository per backend for the module; unchanged and clean at the end."""
    with on_both_backends(tmp_path_factory.mktemp("data-ids"), make_repository, state) as made:
        yield made


class _Undo(Exception):
    """Raised to roll a transaction back after a call that worked."""


def undone(butler: Butler, call: Callable[[], Any]) -> Any:
    """Run ``call`` in a transaction that is then rolled back; its result."""
    result: list[Any] = []
    try:
        with butler.transaction():
            result.append(call())
            raise _Undo
    except _Undo:
        return result[0]


def answer(call: Callable[[], Any], *, argument_errors: bool = False) -> Any:
    """The call's result, or the name of the databutler error it raised.

    With ``argument_errors`` (a data ID that is not a mapping with `str`
    keys), the `TypeError` public entry points raise for such an argument counts too.
    """
    allowed: tuple[type[Exception], ...] = (DatabutlerError,)
    if argument_errors:
        allowed = (DatabutlerError, TypeError)
    try:
        return ("ok", call())
    except allowed as exc:
        return ("refused", type(exc).__name__)


def required(data_id: Any) -> dict[str, Any]:
    return dict(data_id.required)


def answers(butler: Butler, data_id: Any) -> dict[str, Any]:
    """Every entry point's answer for ``data_id``."""
    registry = butler.registry

    def find() -> Any:
        ref = butler.find_dataset("thing", data_id, collections="base")
        return None if ref is None else required(ref.dataId)

    def put() -> Any:
        ref = butler.put({"x": 1}, "thing", data_id, run="scratch")
        return required(ref.dataId)

    def insert() -> Any:
        record = dict(data_id) if isinstance(data_id, dict) else data_id
        registry.insertDimensionData("detector", record)
        return "inserted"

    bad = not (isinstance(data_id, dict) and all(isinstance(k, str) for k in data_id))
    return {
        "find": answer(find, argument_errors=bad),
        "get": answer(
            lambda: butler.get("thing", data_id, collections="base"), argument_errors=bad
        ),
        "expand": answer(lambda: required(registry.expandDataId(data_id)), argument_errors=bad),
        "expand_detector": answer(
            lambda: required(registry.expandDataId(data_id, dimensions=["detector"])),
            argument_errors=bad,
        ),
        "put": answer(lambda: undone(butler, put), argument_errors=bad),
        "insert": answer(lambda: undone(butler, insert), argument_errors=bad),
    }


SURROGATES = st.characters(categories=["Cs"])
STRINGS = st.one_of(
    st.sampled_from(["HSC", "", "\x00", "HSC\x00", "\ud800", "H" * 32, "H" * 33, "é"]),
    st.text(max_size=6),
    st.text(alphabet=st.one_of(SURROGATES, st.sampled_from("HSC\x00")), max_size=4),
)
VALUES = st.one_of(
    st.integers(-1, 5),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1]),
    STRINGS,
    st.booleans(),
    st.floats(allow_nan=True),
    st.none(),
    st.binary(max_size=3),
    st.lists(st.integers(0, 3), max_size=2),
)
KEYS = st.sampled_from(["instrument", "detector", "exposure", "physical_filter", "nope", "id"])
DATA_IDS = st.one_of(
    st.fixed_dictionaries({"instrument": st.one_of(st.just("HSC"), VALUES), "detector": VALUES}),
    st.dictionaries(KEYS, VALUES, max_size=3),
    st.dictionaries(st.one_of(st.integers(), STRINGS), VALUES, max_size=2),
    st.sampled_from([None, 5, "HSC", ["instrument"]]),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data_id=DATA_IDS)
def test_random_data_ids_agree(butlers: dict[str, Butler], data_id: Any) -> None:
    found = {}
    for backend, butler in butlers.items():
        before = state(butler)
        found[backend] = answers(butler, data_id)
        assert state(butler) == before, (backend, data_id)
    assert found["sqlite"] == found["postgresql"], data_id


@pytest.mark.parametrize(
    ("data_id", "match"),
    [
        ({"instrument": "HSC", "detector": 99}, r"No detector record for detector 99 of"),
        ({"instrument": "LSST"}, r"No instrument record for instrument 'LSST'"),
        ({"instrument": "HSC", "detector": 2**63}, "64-bit"),
        ({"instrument": "HSC", "detector": True}, "is a bool"),
        ({"instrument": "HS\x00C", "detector": 1}, "NUL"),
        ({"instrument": "HS\ud800C", "detector": 1}, "surrogate"),
        ({"instrument": "H" * 33, "detector": 1}, "longer than 32"),
        ({"instrument": "HSC", "detector": 1, "nope": 1}, "not a dimension"),
    ],
)
def test_bad_data_ids_are_refused_everywhere(
    butlers: dict[str, Butler], data_id: dict[str, Any], match: str
) -> None:
    for butler in butlers.values():
        with pytest.raises(DataIdError, match=match):
            butler.registry.expandDataId(data_id)
        with pytest.raises(DataIdError, match=match if "record" not in match else "detector"):
            butler.put({"x": 1}, "thing", data_id, run="scratch")
        if "record" not in match:
            with pytest.raises(DataIdError, match=match):
                butler.find_dataset("thing", data_id, collections="base")
            with pytest.raises(DataIdError, match=match):
                butler.get("thing", data_id, collections="base")
        assert "scratch" not in butler.registry.queryCollections()


def test_expand_data_id_names_the_missing_record(butlers: dict[str, Butler]) -> None:
    for butler in butlers.values():
        expanded = butler.registry.expandDataId(instrument="HSC", detector=3)
        assert dict(expanded.required) == {"instrument": "HSC", "detector": 3}
        with pytest.raises(DataIdError, match=r"insertDimensionData\('detector'"):
            butler.registry.expandDataId(instrument="HSC", detector=99)
