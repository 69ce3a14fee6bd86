"""The rest of the query language and calibrations by time (issue 12, §1 and §2).

Arithmetic, string ordering and GLOB, timespan literals and OVERLAPS (record
timespans, calibration validity ranges, binds, instants), calibration lookup
by an exposure's timespan (one at a time and in bulk), find_dataset with a
timespan, and query results carrying their dimension records. Every test runs
on SQLite and PostgreSQL and expects exact answers.

The repository uses a small universe of its own (instrument, band,
physical_filter, detector, exposure with a ``timespan`` field) so that these
tests do not depend on the shipped default.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from databutler import (
    Butler,
    CollectionError,
    CollectionType,
    DataIdError,
    DatasetNotFoundError,
    ExportFormatError,
    ExpressionError,
    Timespan,
)
from databutler.dimensions import DimensionUniverse
from databutler.testing.butler import registry_arguments
from databutler.testing.database import statements
from databutler.testing.exposures import insert_filters

UNIVERSE = {
    "namespace": "query_time_test",
    "version": 1,
    "dimensions": {
        "instrument": {"key": {"name": "name", "type": "string", "length": 32}},
        "band": {"key": {"name": "name", "type": "string", "length": 32}},
        "physical_filter": {
            "key": {"name": "name", "type": "string", "length": 32},
            "requires": ["instrument"],
            "implies": ["band"],
        },
        "detector": {
            "key": {"name": "id", "type": "int"},
            "requires": ["instrument"],
            "metadata": [{"name": "full_name", "type": "string", "length": 32}],
        },
        "exposure": {
            "key": {"name": "id", "type": "int"},
            "requires": ["instrument"],
            "implies": ["physical_filter"],
            "metadata": [
                {"name": "obs_id", "type": "string", "length": 64},
                {"name": "exposure_time", "type": "float"},
                {"name": "timespan", "type": "timespan"},
            ],
        },
    },
}


def utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=datetime.UTC)


def day(d: int, time: str = "00:00:00") -> datetime.datetime:
    return utc(f"2026-01-{d:02d}T{time}")


OBS_IDS = {1: "HSC001", 2: "HSC002", 3: "hsc_3", 4: "HSC%4", 5: "HSC[5]", 6: "B", 7: "a"}


@pytest.fixture(params=["sqlite", "postgresql"])
def butler(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Butler]:
    with registry_arguments(request.param) as arguments:
        universe = DimensionUniverse.from_config(UNIVERSE)
        repo = Butler.create(
            str(tmp_path / "repo"), run="calib/old", universe=universe, **arguments
        )
        _fill(repo)
        yield repo
        repo.close()


def _fill(butler: Butler) -> None:
    insert_filters(butler)
    butler.insert_dimension_records(
        "detector",
        *({"instrument": "HSC", "detector": d, "full_name": f"ccd{d}"} for d in range(3)),
    )
    # Exposures 1-7 each last 30 s on 2026-01-0N; 8 spans midnight into 2026-01-03;
    # 9 has no timespan.
    records: list[dict[str, Any]] = [
        {
            "instrument": "HSC",
            "exposure": e,
            "physical_filter": "HSC-G" if e % 2 else "HSC-R",
            "obs_id": obs_id,
            "exposure_time": 10.0 * e,
            "timespan": Timespan(day(e), day(e, "00:00:30")),
        }
        for e, obs_id in OBS_IDS.items()
    ]
    records.append(
        {
            "instrument": "HSC",
            "exposure": 8,
            "physical_filter": "HSC-G",
            "obs_id": "cross",
            "exposure_time": 60.0,
            "timespan": Timespan(day(2, "23:59:30"), day(3, "00:00:30")),
        }
    )
    records.append(
        {
            "instrument": "HSC",
            "exposure": 9,
            "physical_filter": "HSC-R",
            "obs_id": "untimed",
            "exposure_time": 1.0,
            "timespan": None,
        }
    )
    butler.insert_dimension_records("exposure", *records)
    butler.register_dataset_type("bias", ["detector"], "StructuredDataDict", is_calibration=True)
    butler.register_dataset_type("raw", ["exposure", "detector"], "StructuredDataDict")
    butler.registry.registerCollection("HSC/calib", CollectionType.CALIBRATION)
    old = [butler.put({"v": "old", "d": d}, "bias", instrument="HSC", detector=d) for d in range(3)]
    new = [
        butler.put({"v": "new", "d": d}, "bias", instrument="HSC", detector=d, run="calib/new")
        for d in range(3)
    ]
    butler.registry.certify("HSC/calib", old, Timespan(None, day(3)))
    butler.registry.certify("HSC/calib", new, Timespan(day(3), None))
    for e in (1, 2, 4):
        butler.put({"e": e}, "raw", instrument="HSC", exposure=e, detector=0, run="raw")


def exposures(butler: Butler, where: str, **kwargs: Any) -> list[int]:
    return sorted(
        int(d["exposure"]) for d in butler.query_data_ids(["exposure"], where=where, **kwargs)
    )


def versions(refs: Any) -> list[tuple[int, str]]:
    """(detector, run) of bias refs."""
    return sorted((int(r.dataId["detector"]), r.run) for r in refs)


# -- arithmetic ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("exposure * 2 - 1 > 10", [6, 7, 8, 9]),
        ("exposure % 3 = 0", [3, 6, 9]),
        ("-exposure % 3 = -1", [1, 4, 7]),  # the remainder has the dividend's sign
        ("-exposure / 2 = -1", [2, 3]),  # integer division truncates toward zero
        ("exposure / 4 = 1", [4, 5, 6, 7]),
        ("(exposure + 1) * 2 = 8", [3]),
        ("exposure + 1 * 2 = 8", [6]),  # * binds tighter than +
        ("exposure - 3 - 2 = 1", [6]),  # left to right
        ("exposure.exposure_time / 4 > 15", [7]),  # float division
        ("exposure.exposure_time = exposure * 10", [1, 2, 3, 4, 5, 6, 7]),
        ("exposure / (exposure - 1) = 2", [2]),  # exposure 1 divides by zero: NULL
        ("exposure IN (2 + 1, 10 / 2)", [3, 5]),
        ("exposure = :e + 1", [5]),
    ],
)
def test_arithmetic(butler: Butler, where: str, expected: list[int]) -> None:
    assert exposures(butler, where, bind={"e": 4}) == expected


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("exposure.obs_id + 1 = 2", "'+' at column 0 works on numbers, but 'exposure.obs_id'"),
        ("exposure.exposure_time % 2 = 0", "works on integers, but 'exposure.exposure_time'"),
        ("exposure / 0 = 1", "division by zero at column 0"),
        ("exposure % (2 - 2) = 1", "division by zero"),
        ("exposure + 1", "is a number, not a condition"),
        ("exposure = 9223372036854775807 + 1", "does not fit in a signed 64-bit integer"),
    ],
)
def test_arithmetic_errors(butler: Butler, where: str, says: str) -> None:
    with pytest.raises(ExpressionError, match=None) as info:
        exposures(butler, where)
    assert says in str(info.value)


# -- strings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        # By code point: '%' < '0' < 'B' < 'H' < '[' < 'a'.
        ("exposure.obs_id < 'HSC002'", [1, 4, 6]),
        ("exposure.obs_id >= 'a'", [3, 7, 8, 9]),
        ("GLOB(exposure.obs_id, 'HSC*')", [1, 2, 4, 5]),
        ("GLOB(exposure.obs_id, 'HSC00?')", [1, 2]),
        ("GLOB(exposure.obs_id, 'hsc*')", [3]),  # case-sensitive
        ("GLOB(exposure.obs_id, 'HSC%?')", [4]),  # % and _ are themselves
        ("GLOB(exposure.obs_id, '?sc_3')", [3]),
        ("GLOB(exposure.obs_id, 'HSC[5]')", [5]),  # [ is itself
        ("NOT GLOB(exposure.obs_id, '*o*')", [1, 2, 3, 4, 5, 6, 7, 9]),
        ("glob(exposure.obs_id, :p)", [6]),
    ],
)
def test_strings(butler: Butler, where: str, expected: list[int]) -> None:
    assert exposures(butler, where, bind={"p": "B"}) == expected


def test_glob_errors(butler: Butler) -> None:
    with pytest.raises(ExpressionError, match="GLOB at column 0 matches strings, but 'exposure'"):
        exposures(butler, "GLOB(exposure, '1*')")
    with pytest.raises(ExpressionError, match="the pattern of GLOB at column 0 must be a string"):
        exposures(butler, "GLOB(exposure.obs_id, exposure.obs_id)")
    with pytest.raises(ExpressionError, match="GLOB at column 0 takes two arguments"):
        exposures(butler, "GLOB(exposure.obs_id)")


# -- timespans -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("exposure.timespan OVERLAPS (T'2026-01-02', T'2026-01-04')", [2, 3, 8]),
        ("exposure.timespan OVERLAPS (T'2026-01-06', NULL)", [6, 7]),
        ("exposure.timespan OVERLAPS (NULL, T'2026-01-02')", [1]),
        ("(NULL, NULL) OVERLAPS exposure.timespan", [1, 2, 3, 4, 5, 6, 7, 8]),
        # Half-open: a timespan ending when another begins does not overlap it.
        ("exposure.timespan OVERLAPS (T'2026-01-01 00:00:30', T'2026-01-02')", []),
        ("exposure.timespan OVERLAPS T'2026-01-03T00:00:10'", [3, 8]),
        ("T'2026-01-05 00:00:29' OVERLAPS exposure.timespan", [5]),
        ("exposure.timespan OVERLAPS T'2026-01-05 00:00:30'", []),
        ("exposure.timespan OVERLAPS :span", [5]),
        ("exposure.timespan OVERLAPS :when", [7]),
        ("exposure.timespan OVERLAPS (:begin, T'2026-01-02')", [1]),
        ("NOT exposure.timespan OVERLAPS (T'2026-01-02', NULL)", [1]),  # 9: NULL, no answer
        ("exposure.timespan = NULL", [9]),
        ("exposure.timespan != NULL AND exposure < 3", [1, 2]),
        ("(T'2026-01-01', T'2026-01-02') OVERLAPS (T'2026-01-01 12:00', NULL)", list(range(1, 10))),
    ],
)
def test_overlaps_record_timespans(butler: Butler, where: str, expected: list[int]) -> None:
    bind = {
        "span": Timespan(day(4, "12:00"), day(5, "00:00:01")),
        "when": day(7, "00:00:15"),
        "begin": day(1, "00:00:29"),
    }
    assert exposures(butler, where, bind=bind) == expected


def test_order_by_timespan(butler: Butler) -> None:
    found = butler.query_data_ids(["exposure"], where="exposure < 9", order_by="-exposure.timespan")
    assert [d["exposure"] for d in found] == [7, 6, 5, 4, 3, 8, 2, 1]


@pytest.mark.parametrize(
    ("where", "says"),
    [
        ("exposure.timespan = (T'2026-01-01', NULL)", "is a timespan; timespans are tested"),
        ("exposure.timespan < T'2026-01-01'", "is a timespan; timespans are tested with OVERLAPS"),
        ("exposure OVERLAPS (T'2026-01-01', NULL)", "not 'exposure' (an integer)"),
        ("exposure.timespan OVERLAPS :n", "not :n (an integer 3)"),
        ("exposure.timespan OVERLAPS (T'2026-01-02', T'2026-01-01')", "ends ("),
        ("exposure.timespan OVERLAPS (:n, NULL)", "not :n (an integer 3)"),
        ("(T'2026-01-01', NULL)", "is a timespan, not a condition"),
        ("exposure.obs_id = :span", "cannot compare timespans"),
    ],
)
def test_overlaps_errors(butler: Butler, where: str, says: str) -> None:
    with pytest.raises(ExpressionError) as info:
        exposures(butler, where, bind={"n": 3, "span": Timespan(None, day(1))})
    assert says in str(info.value)


@pytest.mark.parametrize(
    ("where", "bind"),
    [
        ("exposure.timespan OVERLAPS T'1700-01-01'", None),
        ("exposure.timespan OVERLAPS (T'2026-01-01', T'2200-01-01')", None),
        ("exposure.timespan OVERLAPS (NULL, :old)", {"old": utc("1700-01-01T00:00:00")}),
        ("exposure.timespan OVERLAPS :span", {"span": Timespan(utc("1700-01-01T00:00:00"), None)}),
    ],
)
def test_overlaps_time_outside_the_stored_range(butler: Butler, where: str, bind: Any) -> None:
    """A time the nanosecond scale cannot hold is an ExpressionError, not an OverflowError."""
    with pytest.raises(ExpressionError, match="outside the range timespans are stored in"):
        exposures(butler, where, bind=bind)


def test_calibration_validity_in_where(butler: Butler) -> None:
    def query(where: str, **kwargs: Any) -> list[tuple[int, str]]:
        return versions(
            butler.query_datasets("bias", collections="HSC/calib", where=where, **kwargs)
        )

    old = [(d, "calib/old") for d in range(3)]
    new = [(d, "calib/new") for d in range(3)]
    assert query("bias.timespan OVERLAPS T'2026-01-05'") == new
    assert query("bias.timespan OVERLAPS (NULL, T'2026-01-02')") == old
    assert query("bias.timespan OVERLAPS :t", bind={"t": Timespan(day(2), day(4))}) == sorted(
        old + new
    )
    assert query("NOT bias.timespan OVERLAPS T'2026-01-05' AND detector = 1") == [(1, "calib/old")]
    assert query("bias.timespan = NULL") == []
    # In a RUN collection a dataset is valid at every time.
    assert (
        versions(
            butler.query_datasets(
                "bias", collections="calib/new", where="bias.timespan OVERLAPS T'2000-01-01'"
            )
        )
        == new
    )


# -- calibration lookup by time ------------------------------------------------------------


def test_find_dataset_with_timespan(butler: Butler) -> None:
    found = butler.find_dataset(
        "bias",
        instrument="HSC",
        detector=1,
        collections="HSC/calib",
        timespan=Timespan(day(5), day(6)),
    )
    assert found is not None and found.run == "calib/new"
    found = butler.find_dataset(
        "bias", instrument="HSC", detector=1, collections="HSC/calib", timespan=day(1)
    )
    assert found is not None and found.run == "calib/old"
    with pytest.raises(CollectionError) as info:
        butler.find_dataset(
            "bias",
            instrument="HSC",
            detector=1,
            collections="HSC/calib",
            timespan=Timespan(day(2), day(4)),
        )
    message = str(info.value)
    assert "2 'bias' datasets" in message
    assert "(run 'calib/old')" in message and "(run 'calib/new')" in message
    # Without a time, a CALIBRATION collection is not searched.
    assert (
        butler.find_dataset("bias", instrument="HSC", detector=1, collections="HSC/calib") is None
    )


def test_get_by_exposure(butler: Butler) -> None:
    calib = "HSC/calib"
    assert butler.get("bias", instrument="HSC", detector=1, exposure=2, collections=calib) == {
        "v": "old",
        "d": 1,
    }
    assert butler.get("bias", instrument="HSC", detector=2, exposure=4, collections=calib) == {
        "v": "new",
        "d": 2,
    }
    ref = butler.find_dataset(
        "bias", {"instrument": "HSC", "detector": 0, "exposure": 7}, collections=calib
    )
    assert ref is not None and ref.run == "calib/new"
    # Through a chain that holds the CALIBRATION collection after a RUN without biases.
    butler.registry.registerCollection("HSC/defaults", CollectionType.CHAINED)
    butler.registry.setCollectionChain("HSC/defaults", ["raw", calib])
    ref = butler.find_dataset(
        "bias", instrument="HSC", detector=0, exposure=1, collections="HSC/defaults"
    )
    assert ref is not None and ref.run == "calib/old"


def test_get_by_exposure_errors(butler: Butler) -> None:
    calib = "HSC/calib"
    with pytest.raises(DataIdError, match="No exposure record for instrument='HSC', exposure=42"):
        butler.get("bias", instrument="HSC", detector=1, exposure=42, collections=calib)
    with pytest.raises(DataIdError, match="exposure=9 has no timespan"):
        butler.get("bias", instrument="HSC", detector=1, exposure=9, collections=calib)
    with pytest.raises(CollectionError, match="2 'bias' datasets"):
        butler.get("bias", instrument="HSC", detector=1, exposure=8, collections=calib)
    butler.registry.decertify("HSC/calib", "bias", Timespan(day(6), None))
    with pytest.raises(DatasetNotFoundError, match="No 'bias' dataset"):
        butler.get("bias", instrument="HSC", detector=1, exposure=7, collections=calib)
    assert (
        butler.find_dataset("bias", instrument="HSC", detector=1, exposure=7, collections=calib)
        is None
    )


def test_bulk_lookup(butler: Butler) -> None:
    refs = list(
        butler.query_datasets(
            "bias",
            collections="HSC/calib",
            where="exposure IN (2, 4) AND detector < 2",
            find_first=True,
        )
    )
    assert [(r.dataId["detector"], r.run) for r in refs] == [
        (0, "calib/old"),
        (0, "calib/new"),
        (1, "calib/old"),
        (1, "calib/new"),
    ]
    # Ordered by exposure first, then detector; by record fields too.
    refs = list(
        butler.query_datasets(
            "bias",
            collections="HSC/calib",
            where="exposure.obs_id = 'HSC002' OR exposure = 7",
            find_first=True,
            order_by=["-exposure", "detector"],
        )
    )
    assert [(r.dataId["detector"], r.run) for r in refs] == [
        (0, "calib/new"),
        (1, "calib/new"),
        (2, "calib/new"),
        (0, "calib/old"),
        (1, "calib/old"),
        (2, "calib/old"),
    ]
    # Exposure 9 has no timespan: no calibration matches it; without find_first every
    # valid one comes once.
    assert versions(
        butler.query_datasets(
            "bias", collections="HSC/calib", where="exposure IN (8, 9) AND detector = 0"
        )
    ) == [(0, "calib/new"), (0, "calib/old")]
    with pytest.raises(CollectionError, match="2 'bias' datasets certified in one collection"):
        list(
            butler.query_datasets(
                "bias", collections="HSC/calib", where="exposure = 8", find_first=True
            )
        )
    # A RUN first in the search wins over the CALIBRATION collection.
    chain = ["calib/old", "HSC/calib"]
    refs = list(
        butler.query_datasets("bias", collections=chain, where="exposure = 7", find_first=True)
    )
    assert versions(refs) == [(d, "calib/old") for d in range(3)]


def test_bulk_lookup_is_one_statement(butler: Butler) -> None:
    with statements(butler.registry.db) as seen:
        refs = list(
            butler.query_datasets(
                "bias", collections="HSC/calib", where="exposure IN (1..7)", find_first=True
            )
        )
    assert len(refs) == 21
    assert len([s for s in seen if "temporal_exposure" in s]) == 1


def test_lookup_matches_what_the_exposure_implies(butler: Butler) -> None:
    """A flat (detector, physical_filter) found by exposure is of the exposure's filter."""
    butler.register_dataset_type(
        "flat", ["detector", "physical_filter"], "StructuredDataDict", is_calibration=True
    )
    flats = [
        butler.put({"f": f}, "flat", instrument="HSC", detector=0, physical_filter=f, run="flats")
        for f in ("HSC-G", "HSC-R")
    ]
    butler.registry.certify("HSC/calib", flats, Timespan(None, None))
    # Exposure 1 is HSC-G, 2 is HSC-R; the data ID need not give the filter.
    assert butler.get(
        "flat", instrument="HSC", detector=0, exposure=1, collections="HSC/calib"
    ) == {"f": "HSC-G"}
    assert butler.get(
        "flat", instrument="HSC", detector=0, exposure=2, collections="HSC/calib"
    ) == {"f": "HSC-R"}
    refs = butler.query_datasets(
        "flat", collections="HSC/calib", where="exposure IN (1..4)", find_first=True
    )
    # Ordered by the flat's data ID, then the exposure: 1 and 3 are HSC-G, 2 and 4 HSC-R.
    assert [r.dataId["physical_filter"] for r in refs] == ["HSC-G", "HSC-G", "HSC-R", "HSC-R"]


# -- results with records ------------------------------------------------------------------


def test_with_dimension_records(butler: Butler) -> None:
    refs = list(butler.query_datasets("raw", collections="raw", with_dimension_records=True))
    assert [r.dataId["exposure"] for r in refs] == [1, 2, 4]
    assert [r.dataId["physical_filter"] for r in refs] == ["HSC-G", "HSC-R", "HSC-R"]
    assert [r.dataId["band"] for r in refs] == ["g", "r", "r"]
    expanded: Any = refs[1].dataId
    assert expanded.records["exposure"].timespan == Timespan(day(2), day(2, "00:00:30"))
    assert expanded.records["detector"].full_name == "ccd0"
    assert expanded.records["band"].band == "r"
    # Without records the data IDs are still full.
    plain = list(butler.query_datasets("raw", collections="raw"))
    assert dict(plain[0].dataId) == {
        "instrument": "HSC",
        "exposure": 1,
        "detector": 0,
        "physical_filter": "HSC-G",
        "band": "g",
    }
    assert plain == refs
    data_ids: list[Any] = list(
        butler.query_data_ids(["exposure"], where="exposure < 3", with_dimension_records=True)
    )
    assert [d.records["exposure"].obs_id for d in data_ids] == ["HSC001", "HSC002"]
    assert [d["band"] for d in data_ids] == ["g", "r"]


def test_records_of_a_long_stream(butler: Butler) -> None:
    """More results than one streamed batch (10,000): the records are read on the side,
    without ending the stream's transaction (PostgreSQL's server-side cursor)."""
    exposures = range(100, 3450)
    butler.insert_dimension_records(
        "exposure",
        *(
            {"instrument": "HSC", "exposure": e, "physical_filter": "HSC-R", "obs_id": str(e)}
            for e in exposures
        ),
    )
    data_ids = [
        {"instrument": "HSC", "exposure": e, "detector": d} for e in exposures for d in range(3)
    ]
    butler.registry.insertDatasets("raw", data_ids, "raw")
    where = "exposure >= 100"
    refs = list(
        butler.query_datasets("raw", collections="raw", where=where, with_dimension_records=True)
    )
    assert len(refs) == 10_050
    refs.sort(key=lambda ref: (ref.dataId["exposure"], ref.dataId["detector"]))  # no order_by
    last: Any = refs[-1].dataId
    assert (last["exposure"], last["detector"], last["band"]) == (3449, 2, "r")
    assert last.records["exposure"].obs_id == "3449"
    found: list[Any] = list(
        butler.query_data_ids(["exposure", "detector"], where=where, with_dimension_records=True)
    )
    assert len(found) == 10_050
    assert [(d["exposure"], d["band"], d.records["exposure"].obs_id) for d in found[-2:]] == [
        (3448, "r", "3448"),  # ordered by detector, then exposure
        (3449, "r", "3449"),
    ]
    plain = list(butler.query_data_ids(["exposure", "detector"], where=where))
    assert len(plain) == 10_050 and plain[-1]["physical_filter"] == "HSC-R"


def test_expand_data_id_has_records(butler: Butler) -> None:
    expanded: Any = butler.registry.expandDataId(instrument="HSC", exposure=3, detector=1)
    assert dict(expanded) == {
        "instrument": "HSC",
        "band": "g",
        "physical_filter": "HSC-G",
        "detector": 1,
        "exposure": 3,
    }
    assert expanded.records["exposure"].timespan == Timespan(day(3), day(3, "00:00:30"))
    assert expanded.records["detector"].full_name == "ccd1"
    assert expanded.records["physical_filter"].band == "g"
    assert expanded == butler.registry.expandDataId(instrument="HSC", exposure=3, detector=1)


# -- export and import keep the collection structure ---------------------------------------


def _tag_and_chain(butler: Butler, tagged: int) -> list[Any]:
    """Tag the first ``tagged`` raws into ``HSC/tagged`` and chain ``HSC/defaults`` over it and
    ``HSC/calib``; the raws."""
    registry = butler.registry
    registry.registerCollection("HSC/tagged", CollectionType.TAGGED)
    raws = list(butler.query_datasets("raw", collections="raw"))
    registry.associate("HSC/tagged", raws[:tagged])
    registry.registerCollection("HSC/defaults", CollectionType.CHAINED)
    registry.setCollectionChain("HSC/defaults", ["HSC/tagged", "HSC/calib"])
    return raws


def test_export_import_keeps_chains_tags_and_certifications(
    butler: Butler, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    registry = butler.registry
    raws = _tag_and_chain(butler, 2)
    export = butler.export(tmp_path / "export", collections=["HSC/defaults"])
    with registry_arguments("sqlite") as arguments:
        universe = DimensionUniverse.from_config(UNIVERSE)
        target = Butler.create(str(tmp_path / "target"), universe=universe, **arguments)
        try:
            target.import_(export)
            assert target.registry.getCollectionChain("HSC/defaults") == (
                "HSC/tagged",
                "HSC/calib",
            )
            assert target.registry.getCollectionType("HSC/tagged") is CollectionType.TAGGED
            tagged = target.query_datasets("raw", collections="HSC/tagged")
            assert sorted(r.id for r in tagged) == sorted(r.id for r in raws[:2])
            assert sorted(
                (str(i), s) for i, s in target.registry.query_certifications("HSC/calib")
            ) == sorted((str(i), s) for i, s in registry.query_certifications("HSC/calib"))
            # The lookup by time works there as here (exposure 2's record came with its raw).
            assert target.get(
                "bias", instrument="HSC", detector=2, exposure=2, collections="HSC/defaults"
            ) == {"v": "old", "d": 2}
        finally:
            target.close()


def test_import_refuses_a_chain_it_cannot_make(butler: Butler, tmp_path: Path) -> None:
    import yaml

    butler.registry.registerCollection("HSC/defaults", CollectionType.CHAINED)
    butler.registry.setCollectionChain("HSC/defaults", ["raw", "HSC/calib"])
    export = butler.export(tmp_path / "export", collections=["HSC/defaults"])
    manifest_path = export / "export.yaml"
    manifest = yaml.safe_load(manifest_path.read_text())
    assert manifest["chains"] == {"HSC/defaults": ["raw", "HSC/calib"]}
    assert sorted(manifest["runs"]) == ["calib/new", "calib/old", "raw"]
    assert [
        (c["begin"], c["end"], len(c["ids"])) for c in manifest["calibrations"]["HSC/calib"]
    ] == [
        (None, "2026-01-03T00:00:00+00:00", 3),
        ("2026-01-03T00:00:00+00:00", None, 3),
    ]
    manifest["chains"]["HSC/defaults"].append("nowhere")
    manifest_path.write_text(yaml.safe_dump(manifest))
    with registry_arguments("sqlite") as arguments:
        universe = DimensionUniverse.from_config(UNIVERSE)
        target = Butler.create(str(tmp_path / "target"), universe=universe, **arguments)
        try:
            with pytest.raises(ExportFormatError, match=r"child collection\(s\) nowhere"):
                target.import_(export)
            assert target.registry.queryCollections() == []
            assert target.registry.queryDimensionRecords("exposure") == []
        finally:
            target.close()


def test_transfer_keeps_tags_certifications_and_chains(butler: Butler, tmp_path: Path) -> None:
    registry = butler.registry
    raws = _tag_and_chain(butler, 1)
    registry.registerCollection("HSC/outer", CollectionType.CHAINED)
    registry.setCollectionChain("HSC/outer", ["HSC/defaults", "raw"])
    registry.registerCollection("unrelated", CollectionType.CHAINED)
    registry.setCollectionChain("unrelated", ["calib/old"])
    biases = list(butler.query_datasets("bias", collections="HSC/calib"))
    new_biases = [ref for ref in biases if ref.run == "calib/new"]
    with registry_arguments("sqlite") as arguments:
        universe = DimensionUniverse.from_config(UNIVERSE)
        target = Butler.create(str(tmp_path / "target"), universe=universe, **arguments)
        try:
            target.transfer_from(butler, [*raws, *new_biases])
            assert target.registry.getCollectionChain("HSC/defaults") == ("HSC/tagged", "HSC/calib")
            assert target.registry.getCollectionChain("HSC/outer") == ("HSC/defaults", "raw")
            assert not target.registry.known_collection("unrelated")
            tagged = target.query_datasets("raw", collections="HSC/tagged")
            assert [r.id for r in tagged] == [raws[0].id]
            assert sorted(
                (str(i), s) for i, s in target.registry.query_certifications("HSC/calib")
            ) == sorted((str(r.id), Timespan(day(3), None)) for r in new_biases)
            assert target.get(
                "bias", instrument="HSC", detector=0, exposure=4, collections="HSC/outer"
            ) == {"v": "new", "d": 0}
        finally:
            target.close()


# -- the docs' examples run ----------------------------------------------------------------


def test_calibration_docs_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exposure = DimensionUniverse()["exposure"]
    if "timespan" not in {f.name for f in exposure.metadata}:
        pytest.skip("the default universe's exposures have no timespan (universe version 1)")
    text = (Path(__file__).parents[1] / "docs" / "calibrations.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 7
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "docs/calibrations.md", "exec"), namespace)
