"""A data ID given to a query (``data_id=`` and keywords, as daf_butler's queries take them)
constrains it like ``dimension = value`` terms joined to ``where``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from databutler import ArgumentTypeError, Butler, InvalidArgumentError
from databutler.testing.butler import RepositoryFactory

pytestmark = pytest.mark.parametrize(
    "repositories", ["sqlite-local", "postgresql-s3"], indirect=True
)


@pytest.fixture
def butler(repositories: RepositoryFactory) -> Iterator[Butler]:
    """Two instruments with detectors 0-3 each, and a ``thing`` put for every detector."""
    made = repositories.create(run="r")
    made.insert_dimension_records("instrument", {"instrument": "HSC"}, {"instrument": "Cam"})
    made.insert_dimension_records(
        "detector",
        *({"instrument": i, "detector": d} for i in ("HSC", "Cam") for d in range(4)),
    )
    made.register_dataset_type("thing", ["detector"], "StructuredDataDict")
    made.put_many(
        ({"d": d}, "thing", {"instrument": i, "detector": d})
        for i in ("HSC", "Cam")
        for d in range(4)
    )
    yield made
    made.close()


def _pairs(items: Iterator[Any]) -> list[tuple[str, int]]:
    return sorted((x["instrument"], x["detector"]) for x in items)


def test_a_data_id_joins_where(butler: Butler) -> None:
    def found(**kwargs: Any) -> list[tuple[str, int]]:
        return _pairs(ref.dataId for ref in butler.query_datasets("thing", **kwargs))

    assert found(instrument="HSC") == [("HSC", d) for d in range(4)]
    assert found(instrument="HSC", where="detector >= 2") == [("HSC", 2), ("HSC", 3)]
    assert found(data_id={"instrument": "Cam"}, detector=1) == [("Cam", 1)]
    assert found(data_id={"instrument": "Cam"}, instrument="HSC") == [("HSC", d) for d in range(4)]
    # A where with OR keeps its meaning: the data ID constrains all of it.
    assert found(instrument="Cam", where="detector = 0 OR detector = 3") == [
        ("Cam", 0),
        ("Cam", 3),
    ]
    # A bind name of the caller's own is kept, whatever it is called.
    assert found(
        instrument="HSC", where="detector = :data_id_detector", bind={"data_id_detector": 2}
    ) == [("HSC", 2)]
    assert found(
        detector=1, where="detector >= :data_id_detector", bind={"data_id_detector": 0}
    ) == [("Cam", 1), ("HSC", 1)]
    # A DataCoordinate serves as well.
    (ref,) = butler.query_datasets("thing", instrument="Cam", detector=2)
    assert found(data_id=ref.dataId) == [("Cam", 2)]
    assert found(instrument="Nope") == []


def test_data_ids_and_records_take_a_data_id_too(butler: Butler) -> None:
    assert _pairs(butler.query_data_ids(["detector"], instrument="Cam", where="detector < 2")) == [
        ("Cam", 0),
        ("Cam", 1),
    ]
    records = butler.query_dimension_records("detector", data_id={"instrument": "HSC"})
    assert sorted(r.detector for r in records) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("kwargs", "error", "said"),
    [
        ({"colections": "r"}, InvalidArgumentError, "'colections' is not an argument"),
        ({"data_id": {"nope": 1}}, InvalidArgumentError, "'nope' is not a dimension"),
        ({"detector": [1, 2]}, ArgumentTypeError, "detector IN (:values)"),
        ({"detector": None}, ArgumentTypeError, "must be one int or str"),
        ({"detector": True}, ArgumentTypeError, "must be one int or str"),
        ({"data_id": "HSC"}, ArgumentTypeError, "data_id must be a mapping"),
        ({"data_id": {"detector": 1.5}}, ArgumentTypeError, "must be one int or str"),
    ],
)
def test_a_bad_data_id_is_refused_at_the_call(
    butler: Butler, kwargs: dict[str, Any], error: type[Exception], said: str
) -> None:
    for query in (
        lambda: butler.query_datasets("thing", **kwargs),
        lambda: butler.query_data_ids(["detector"], **kwargs),
        lambda: butler.query_dimension_records("detector", **kwargs),
    ):
        with pytest.raises(error) as excinfo:
            query()  # no iteration: refused when called
        assert said in str(excinfo.value)
