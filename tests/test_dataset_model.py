"""Dataset types, storage classes, dataset ids, collection types and timespans."""

from __future__ import annotations

import datetime
import time
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from databutler._collection_type import CollectionType, Timespan
from databutler._dataset_id import DATASET_ID_NAMESPACE, DatasetIdFactory, DatasetIdGenEnum, uuid7
from databutler._dataset_type import DatasetType, StorageClass, validate_dataset_type_name
from databutler._exceptions import InvalidNameError

UTC = datetime.UTC

# -- dataset type names ------------------------------------------------------

word = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True)


@given(st.lists(word, min_size=1, max_size=3))
def test_valid_names_are_accepted(words: list[str]) -> None:
    name = ".".join(words)
    assert validate_dataset_type_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "1abc",
        "calexp.",
        ".calexp",
        "cal exp",
        "calexp;drop",
        "cal'exp",
        "calé",
        "a..b",
        "a-b",
        None,
    ],
)
def test_invalid_names_are_refused(name: object) -> None:
    with pytest.raises(InvalidNameError, match="dataset type name"):
        validate_dataset_type_name(name)


def test_dataset_type_value_semantics() -> None:
    a = DatasetType("calexp", ["instrument", "visit", "detector"], "ExposureF")
    b = DatasetType("calexp", ("detector", "visit", "instrument"), StorageClass("ExposureF"))
    assert a == b and hash(a) == hash(b)
    assert a != DatasetType("calexp", ["instrument", "visit"], "ExposureF")
    assert a != DatasetType(
        "calexp", ["instrument", "visit", "detector"], "ExposureF", isCalibration=True
    )
    assert a.nameAndComponent() == ("calexp", None) and not a.isComponent()
    wcs = a.makeComponentDatasetType("wcs", "Wcs")
    assert wcs.name == "calexp.wcs" and wcs.isComponent()
    assert wcs.nameAndComponent() == ("calexp", "wcs")
    assert wcs.dimensions == a.dimensions
    with pytest.raises(ValueError, match="do not nest"):
        wcs.makeComponentDatasetType("x", "Wcs")
    with pytest.raises(AttributeError):
        a.name = "other"  # type: ignore[misc]


def test_dataset_type_rejects_bad_parts() -> None:
    with pytest.raises(TypeError, match=r"write \['detector'\]"):
        DatasetType("calexp", "detector", "ExposureF")
    with pytest.raises(InvalidNameError, match="storage class"):
        DatasetType("calexp", ["detector"], "Exposure F")


# -- dataset ids -------------------------------------------------------------


def test_namespace_is_the_upstream_one() -> None:
    assert uuid.uuid5(uuid.NAMESPACE_DNS, "lsst.org") == DATASET_ID_NAMESPACE


def test_deterministic_ids_follow_the_documented_field_order() -> None:
    factory = DatasetIdFactory()
    data_id = {"instrument": "HSC", "exposure": 903334, "detector": 12}
    by_type = factory.makeDatasetId("HSC/raw/all", "raw", data_id, DatasetIdGenEnum.DATAID_TYPE)
    by_run = factory.makeDatasetId("HSC/raw/all", "raw", data_id, DatasetIdGenEnum.DATAID_TYPE_RUN)
    assert by_type == uuid.uuid5(
        DATASET_ID_NAMESPACE, "dataset_type=raw,detector=12,exposure=903334,instrument=HSC"
    )
    assert by_run == uuid.uuid5(
        DATASET_ID_NAMESPACE,
        "dataset_type=raw,run=HSC/raw/all,detector=12,exposure=903334,instrument=HSC",
    )
    assert by_type.version == by_run.version == 5


def test_deterministic_ids_use_only_required_values() -> None:
    class Coordinate(dict[str, object]):
        @property
        def required(self) -> dict[str, object]:
            return {k: v for k, v in self.items() if k != "band"}

    factory = DatasetIdFactory()
    full = Coordinate(instrument="HSC", physical_filter="HSC-R", band="r")
    bare = {"instrument": "HSC", "physical_filter": "HSC-R"}
    mode = DatasetIdGenEnum.DATAID_TYPE
    assert factory.makeDatasetId("r", "flat", full, mode) == factory.makeDatasetId(
        "r", "flat", bare, mode
    )


values = st.one_of(
    st.integers(-(10**6), 10**6), st.text(alphabet="abcXYZ019-_/", min_size=1, max_size=8)
)
data_ids = st.dictionaries(
    st.sampled_from(["instrument", "detector", "visit", "tract", "patch"]), values, min_size=1
)


@settings(max_examples=200, deadline=None)
@given(data_ids, word, word, word)
def test_deterministic_ids_are_stable_and_discriminating(
    data_id: dict[str, object], dataset_type: str, run: str, other_run: str
) -> None:
    factory = DatasetIdFactory()
    for mode in (DatasetIdGenEnum.DATAID_TYPE, DatasetIdGenEnum.DATAID_TYPE_RUN):
        first = factory.makeDatasetId(run, dataset_type, data_id, mode)
        reordered = dict(reversed(list(data_id.items())))
        assert factory.makeDatasetId(run, dataset_type, reordered, mode) == first
        assert factory.makeDatasetId(run, dataset_type + "x", data_id, mode) != first
    same_type = factory.makeDatasetId(run, dataset_type, data_id, DatasetIdGenEnum.DATAID_TYPE)
    assert (
        factory.makeDatasetId(other_run, dataset_type, data_id, DatasetIdGenEnum.DATAID_TYPE)
        == same_type
    )
    if run != other_run:
        mode = DatasetIdGenEnum.DATAID_TYPE_RUN
        assert factory.makeDatasetId(run, dataset_type, data_id, mode) != factory.makeDatasetId(
            other_run, dataset_type, data_id, mode
        )


def test_unique_ids_are_random_and_time_ordered() -> None:
    factory = DatasetIdFactory()
    ids = [factory.makeDatasetId("run", "raw", {"detector": 1}) for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    now_ms = time.time_ns() // 1_000_000
    stamps = [i.int >> 80 for i in ids]
    assert stamps == sorted(stamps)  # generated in order: never earlier than the one before
    assert abs(stamps[-1] - now_ms) < 5_000


@given(st.integers(0, (1 << 48) - 1))
def test_uuid7_layout(unix_ms: int) -> None:
    value = uuid7(unix_ms)
    assert value.int >> 80 == unix_ms
    assert value.version == 7 and value.variant == uuid.RFC_4122


def test_uuid7_rejects_bad_timestamps() -> None:
    with pytest.raises(ValueError, match="outside"):
        uuid7(-1)
    with pytest.raises(ValueError, match="outside"):
        uuid7(1 << 48)


# -- collection types and timespans -------------------------------------------


def test_collection_type_from_name() -> None:
    assert CollectionType.from_name("run") is CollectionType.RUN
    assert CollectionType.from_name("CALIBRATION") is CollectionType.CALIBRATION
    with pytest.raises(ValueError, match="RUN, TAGGED, CHAINED, CALIBRATION"):
        CollectionType.from_name("folder")


def t(hour: int) -> datetime.datetime:
    return datetime.datetime(2026, 1, 1, tzinfo=UTC) + datetime.timedelta(hours=hour)


def test_timespan_rules() -> None:
    with pytest.raises(ValueError, match="not after"):
        Timespan(t(5), t(5))
    with pytest.raises(ValueError, match="no time zone"):
        Timespan(datetime.datetime(2026, 1, 1), None)
    with pytest.raises(TypeError, match="datetime or None"):
        Timespan("2026-01-01", None)  # type: ignore[arg-type]
    other_zone = datetime.timezone(datetime.timedelta(hours=2))
    assert Timespan(datetime.datetime(2026, 1, 1, 7, tzinfo=other_zone), None).begin == t(5)


@settings(max_examples=200)
@given(
    st.tuples(st.one_of(st.none(), st.integers(0, 20)), st.one_of(st.none(), st.integers(1, 24))),
    st.tuples(st.one_of(st.none(), st.integers(0, 20)), st.one_of(st.none(), st.integers(1, 24))),
)
def test_timespan_overlap_matches_a_brute_force_check(
    a: tuple[int | None, int | None], b: tuple[int | None, int | None]
) -> None:
    def make(bounds: tuple[int | None, int | None]) -> Timespan | None:
        begin, end = bounds
        if begin is not None and end is not None and end <= begin:
            return None
        return Timespan(None if begin is None else t(begin), None if end is None else t(end))

    first, second = make(a), make(b)
    if first is None or second is None:
        return

    def hours(bounds: tuple[int | None, int | None]) -> set[float]:
        begin, end = bounds
        lo, hi = (-1 if begin is None else begin), (25 if end is None else end)
        return {lo + k / 2 for k in range(int((hi - lo) * 2))}

    assert first.overlaps(second) == bool(hours(a) & hours(b)) == second.overlaps(first)
    if a[0] is not None:
        assert first.contains(t(a[0]))
