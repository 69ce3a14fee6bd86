"""Universe version 2 (the default), version-1 repositories, and daf_butler's universes.

Version 2 follows daf_butler's current default universe (its version 8);
elements that are not dimensions (``visit_definition``, ...) have records
but are never data ID keys. `DimensionUniverse.from_daf_butler_config`
translates the configuration a daf_butler registry stores, so that the
fixture's export comes across whole into a repository with that universe.
"""

from __future__ import annotations

import base64
import copy
import datetime
import json
import re
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from databutler import (
    Butler,
    DataIdError,
    DimensionConfigError,
    Timespan,
    UnknownDimensionError,
)
from databutler.dimensions import DataCoordinate, Dimension, DimensionCombination, DimensionUniverse
from databutler.testing.butler import registry_arguments
from databutler.testing.dimensions import universe_v1
from databutler.testing.exposures import insert_filters

FIXTURES = Path(__file__).parent / "fixtures" / "daf_butler"
UNIVERSE = DimensionUniverse()
UTC = datetime.UTC


def daf_butler_config() -> dict[str, Any]:
    """The dimension configuration stored in the fixture's daf_butler registry."""
    with sqlite3.connect(FIXTURES / "repo" / "gen3.sqlite3") as connection:
        (text,) = connection.execute(
            "SELECT value FROM butler_attributes WHERE name = 'config:dimensions.json'"
        ).fetchone()
    config: dict[str, Any] = json.loads(text)
    return config


# -- the shape of version 2 --------------------------------------------------------------------


def test_version_2_is_the_default() -> None:
    assert (UNIVERSE.namespace, UNIVERSE.version) == ("databutler", 2)
    assert UNIVERSE.names == (
        "instrument", "band", "physical_filter", "subfilter", "detector", "group", "day_obs",
        "visit_system", "exposure", "visit", "skymap", "tract", "patch",
    )  # fmt: skip
    assert UNIVERSE.elements == (
        *UNIVERSE.names,
        "visit_definition",
        "visit_system_membership",
        "visit_detector_region",
    )


RELATIONS = {
    # name: (key name, key type, required (closed), implied)
    "instrument": ("name", "string", (), ()),
    "band": ("name", "string", (), ()),
    "physical_filter": ("name", "string", ("instrument",), ("band",)),
    "subfilter": ("id", "int", ("band",), ()),
    "detector": ("id", "int", ("instrument",), ()),
    "group": ("name", "string", ("instrument",), ()),
    "day_obs": ("id", "int", ("instrument",), ()),
    "visit_system": ("id", "int", ("instrument",), ()),
    "exposure": ("id", "int", ("instrument",), ("physical_filter", "group", "day_obs")),
    "visit": ("id", "int", ("instrument",), ("physical_filter", "day_obs")),
    "skymap": ("name", "string", (), ()),
    "tract": ("id", "int", ("skymap",), ()),
    "patch": ("id", "int", ("skymap", "tract"), ()),
}


@pytest.mark.parametrize("name", list(RELATIONS))
def test_dimensions_keys_and_relations(name: str) -> None:
    dimension = UNIVERSE[name]
    key, dtype, required, implied = RELATIONS[name]
    assert (dimension.key.name, dimension.key.dtype) == (key, dtype)
    assert (dimension.required, dimension.implied) == (required, implied)


FIELDS = {
    "instrument": "visit_max:int exposure_max:int detector_max:int class_name:string",
    "detector": "full_name:string name_in_raft:string raft:string purpose:string",
    "day_obs": "timespan:timespan",
    "visit_system": "name:string",
    "exposure": (
        "obs_id:string exposure_time:float dark_time:float observation_type:string "
        "observation_reason:string seq_num:int seq_start:int seq_end:int target_name:string "
        "science_program:string tracking_ra:float tracking_dec:float sky_angle:float "
        "azimuth:float zenith_angle:float has_simulated:bool can_see_sky:bool timespan:timespan"
    ),
    "visit": (
        "name:string seq_num:int exposure_time:float target_name:string "
        "observation_reason:string science_program:string azimuth:float zenith_angle:float "
        "timespan:timespan region:region"
    ),
    "skymap": "hash:bytes tract_max:int patch_nx_max:int patch_ny_max:int",
    "tract": "region:region",
    "patch": "cell_x:int cell_y:int region:region",
    "visit_detector_region": "region:region",
}


@pytest.mark.parametrize("name", list(FIELDS))
def test_record_fields(name: str) -> None:
    element = UNIVERSE.element(name)
    fields = [f"{f.name}:{f.dtype}" for f in element.metadata]
    expected = FIELDS[name].split()
    if name == "instrument":  # visit_system sits between visit_max and exposure_max
        expected.insert(1, "visit_system:int")
    assert fields == expected


def test_patch_cells_are_required_as_upstream() -> None:
    assert [(f.name, f.nullable) for f in UNIVERSE["patch"].metadata] == [
        ("cell_x", False),
        ("cell_y", False),
        ("region", True),
    ]


def test_elements_that_are_not_dimensions() -> None:
    expected = {
        "visit_definition": ("instrument", "exposure", "visit"),
        "visit_system_membership": ("instrument", "visit_system", "visit"),
        "visit_detector_region": ("instrument", "detector", "visit"),
    }
    for name, required in expected.items():
        element = UNIVERSE.element(name)
        assert isinstance(element, DimensionCombination)
        assert (element.required, element.implied) == (required, ())
        assert name not in UNIVERSE and UNIVERSE.get(name) is None
        with pytest.raises(UnknownDimensionError, match="is an element of the universe but not"):
            UNIVERSE[name]
        with pytest.raises(UnknownDimensionError, match="not a dimension"):
            UNIVERSE.group([name])
    assert isinstance(UNIVERSE.element("visit"), Dimension)
    with pytest.raises(UnknownDimensionError, match="'camera' is not a dimension element"):
        UNIVERSE.element("camera")
    assert UNIVERSE.get_element("camera") is None


def test_groups_close_over_implied_dimensions() -> None:
    group = UNIVERSE.group(["exposure", "detector"])
    assert group.names == (
        "instrument", "band", "physical_filter", "detector", "group", "day_obs", "exposure",
    )  # fmt: skip
    assert group.required == ("instrument", "detector", "exposure")
    assert group.implied == ("band", "physical_filter", "group", "day_obs")


def test_description_round_trips_with_elements() -> None:
    config = UNIVERSE.to_config()
    assert list(config) == ["namespace", "version", "dimensions", "elements"]
    assert config["elements"]["visit_detector_region"] == {
        "requires": ["visit", "detector"],
        "implies": [],
        "metadata": [{"name": "region", "type": "region", "nullable": True}],
        "doc": "The region of the sky one detector saw in one visit.",
    }
    assert DimensionUniverse.from_json(UNIVERSE.to_json()) == UNIVERSE
    assert "elements" not in universe_v1().to_config()


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda c: c["elements"].update(visit=c["elements"]["visit_definition"]),
         "Element 'visit' is declared both under 'dimensions' and under 'elements'"),
        (lambda c: c["elements"]["visit_definition"].update(requires=[]),
         "Element 'visit_definition' requires no dimension"),
        (lambda c: c["elements"]["visit_definition"].update(requires=["exposure", "camera"]),
         "Element 'visit_definition' requires unknown dimension 'camera'"),
        (lambda c: c["elements"]["visit_definition"].update(implies=["instrument"]),
         "Element 'visit_definition' implies 'instrument', which it already requires"),
        (lambda c: c["elements"]["visit_definition"].update(key={"name": "id", "type": "int"}),
         "Element 'visit_definition' has unknown field(s) 'key'"),
        (lambda c: c["elements"]["visit_detector_region"]["metadata"].append(
            {"name": "visit", "type": "int"}),
         "metadata field 'visit' has the same name as the dimension 'visit'"),
        (lambda c: c.update(elements=[]), "'elements' must map element names"),
        (lambda c: c["dimensions"]["exposure"]["metadata"].append(
            {"name": "span", "type": "timespan", "length": 3}),
         "has a 'length', but only string and bytes fields have one"),
    ],
)  # fmt: skip
def test_bad_element_descriptions(change: Any, says: str) -> None:
    config = copy.deepcopy(UNIVERSE.to_config())
    change(config)
    with pytest.raises(DimensionConfigError, match=re.escape(says)):
        DimensionUniverse(config)


# -- version 2 repositories -------------------------------------------------------------------

T0 = datetime.datetime(2024, 3, 1, 3, tzinfo=UTC)


def fill(butler: Butler) -> None:
    insert_filters(butler)
    butler.insert_dimension_records("group", {"instrument": "HSC", "group": "g1"})
    butler.insert_dimension_records("day_obs", {"instrument": "HSC", "day_obs": 20240301})
    butler.insert_dimension_records(
        "detector", {"instrument": "HSC", "detector": 1, "full_name": "1_1"}
    )
    butler.insert_dimension_records("visit_system", {"instrument": "HSC", "id": 0, "name": "1:1"})
    butler.insert_dimension_records(
        "exposure",
        *(
            {"instrument": "HSC", "id": e, "physical_filter": f, "group": "g1",
             "day_obs": 20240301, "obs_id": f"E{e}",
             "timespan": Timespan(T0 + datetime.timedelta(minutes=e), None)}
            for e, f in ((1, "HSC-G"), (2, "HSC-R"))
        ),
    )  # fmt: skip
    butler.insert_dimension_records(
        "visit",
        {"instrument": "HSC", "id": 1, "physical_filter": "HSC-G", "day_obs": 20240301,
         "name": "V1"},
    )  # fmt: skip
    butler.insert_dimension_records(
        "visit_definition", {"instrument": "HSC", "exposure": 1, "visit": 1}
    )
    butler.insert_dimension_records(
        "visit_system_membership", {"instrument": "HSC", "visit": 1, "visit_system": 0}
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def butler(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Butler]:
    with registry_arguments(request.param) as arguments:
        made = Butler.create(str(tmp_path / "repo"), run="r", **arguments)
        try:
            fill(made)
            yield made
        finally:
            made.close()


def test_implied_values_are_filled_band_through_physical_filter_through_exposure(
    butler: Butler,
) -> None:
    butler.register_dataset_type("raw", ["exposure", "detector"], "StructuredDataDict")
    ref = butler.put({"e": 2}, "raw", instrument="HSC", exposure=2, detector=1)
    (found,) = butler.query_datasets("raw", collections="r")
    assert found == ref
    expected = {
        "instrument": "HSC", "band": "r", "physical_filter": "HSC-R", "detector": 1,
        "group": "g1", "day_obs": 20240301, "exposure": 2,
    }  # fmt: skip
    assert isinstance(found.dataId, DataCoordinate)
    assert dict(found.dataId.mapping) == expected
    assert [dict(d.mapping) for d in butler.query_data_ids(["exposure"], where="band = 'g'")] == [
        {"instrument": "HSC", "band": "g", "physical_filter": "HSC-G", "group": "g1",
         "day_obs": 20240301, "exposure": 1},
    ]  # fmt: skip
    assert butler.get("raw", instrument="HSC", exposure=2, detector=1) == {"e": 2}


def test_records_of_elements_that_are_not_dimensions(butler: Butler) -> None:
    (definition,) = butler.query_dimension_records("visit_definition")
    assert definition.to_dict() == {"instrument": "HSC", "exposure": 1, "visit": 1}
    assert dict(definition.data_id.mapping) == {"instrument": "HSC", "exposure": 1, "visit": 1}
    (membership,) = butler.query_dimension_records("visit_system_membership")
    assert membership.to_dict() == {"instrument": "HSC", "visit_system": 0, "visit": 1}
    with pytest.raises(DataIdError, match="has unknown field\\(s\\) 'id'"):
        butler.insert_dimension_records(
            "visit_definition", {"instrument": "HSC", "exposure": 2, "visit": 1, "id": 3}
        )
    with pytest.raises(UnknownDimensionError, match="is an element of the universe but not"):
        butler.register_dataset_type("bad", ["visit_definition"], "StructuredDataDict")
    assert [r.to_dict() for r in butler.query_dimension_records("visit_definition")] == [
        {"instrument": "HSC", "exposure": 1, "visit": 1}
    ]


def test_exposures_need_their_group(butler: Butler) -> None:
    with pytest.raises(DataIdError, match="has no value for 'group' \\(an implied dimension\\)"):
        butler.insert_dimension_records(
            "exposure",
            {"instrument": "HSC", "id": 3, "physical_filter": "HSC-G", "day_obs": 20240301},
        )


# -- version 1 repositories -------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_version_1_repositories_keep_their_universe(tmp_path: Path, backend: str) -> None:
    begin = datetime.datetime(2024, 3, 1, 3, tzinfo=UTC)
    with registry_arguments(backend) as arguments:
        root = str(tmp_path / "old")
        old = Butler.create(root, universe=universe_v1(), run="r", **arguments)
        old.insert_dimension_records("instrument", {"instrument": "HSC"})
        old.insert_dimension_records("band", {"band": "g"})
        old.insert_dimension_records(
            "physical_filter", {"instrument": "HSC", "physical_filter": "HSC-G", "band": "g"}
        )
        old.insert_dimension_records("day_obs", {"instrument": "HSC", "day_obs": 20240301})
        old.insert_dimension_records(
            "exposure",
            {"instrument": "HSC", "exposure": 1, "physical_filter": "HSC-G",
             "day_obs": 20240301, "datetime_begin": begin, "datetime_end": None},
        )  # fmt: skip
        old.close()
        with Butler(root, writeable=True, run="r") as again:
            assert again.dimensions == universe_v1()
            assert (again.dimensions.namespace, again.dimensions.version) == ("databutler", 1)
            assert "group" not in again.dimensions
            (record,) = again.query_dimension_records("exposure")
            assert record.to_dict() == {
                "instrument": "HSC", "exposure": 1, "physical_filter": "HSC-G",
                "day_obs": 20240301, "obs_id": None, "exposure_time": None,
                "datetime_begin": begin, "datetime_end": None,
            }  # fmt: skip
            again.register_dataset_type("raw", ["exposure"], "StructuredDataDict")
            again.put({"x": 1}, "raw", instrument="HSC", exposure=1)
            (ref,) = again.query_datasets("raw", collections="r")
            assert isinstance(ref.dataId, DataCoordinate)
            assert dict(ref.dataId.mapping) == {
                "instrument": "HSC", "band": "g", "physical_filter": "HSC-G",
                "day_obs": 20240301, "exposure": 1,
            }  # fmt: skip


# -- daf_butler's universes -------------------------------------------------------------------


def test_translation_of_the_fixture_universe() -> None:
    universe = DimensionUniverse.from_daf_butler_config(daf_butler_config())
    assert (universe.namespace, universe.version) == ("daf_butler", 8)
    assert universe.names == (
        "instrument", "band", "physical_filter", "subfilter", "detector", "group", "day_obs",
        "visit", "exposure", "skymap", "tract", "patch", "visit_system", "ssp_hypothesis_table",
        "ssp_hypothesis_bundle", "ssp_balanced_index",
    )  # fmt: skip
    assert universe.elements[len(universe.names) :] == (
        "visit_detector_region",
        "visit_definition",
        "visit_system_membership",
    )
    exposure = universe["exposure"]
    assert (exposure.key.name, exposure.key.dtype) == ("id", "int")
    assert exposure.implied == ("physical_filter", "group", "day_obs")
    assert [(f.name, f.dtype, f.length, f.nullable) for f in exposure.metadata[:3]] == [
        ("obs_id", "string", 64, False),  # an alternate key upstream
        ("exposure_time", "float", None, True),
        ("dark_time", "float", None, True),
    ]
    assert [f.name for f in exposure.metadata][-3:] == ["has_simulated", "can_see_sky", "timespan"]
    assert [(f.name, f.dtype) for f in universe["visit"].metadata][-2:] == [
        ("region", "region"),
        ("timespan", "timespan"),
    ]
    assert [(f.name, f.dtype) for f in universe["day_obs"].metadata] == [("timespan", "timespan")]
    hash_field = universe["skymap"].metadata[0]
    assert (hash_field.name, hash_field.dtype, hash_field.length, hash_field.nullable) == (
        "hash",
        "bytes",
        40,
        False,
    )
    assert universe["detector"].metadata[0].name == "full_name"
    assert universe.element("visit_definition").required == ("instrument", "visit", "exposure")
    assert [f.name for f in universe.element("visit_detector_region").metadata] == ["region"]
    assert universe["subfilter"].required == ("band",)
    assert universe["ssp_hypothesis_bundle"].required == ("ssp_hypothesis_table",)
    # Translating is stable, and the universe stores and reloads like any other.
    assert DimensionUniverse.from_daf_butler_config(daf_butler_config()) == universe
    assert DimensionUniverse.from_json(universe.to_json()) == universe


def test_translation_of_an_older_upstream_layout() -> None:
    # daf_butler's universe before version 2 had visit_definition keyed by a visit system.
    config = daf_butler_config()
    config["version"] = 1
    config["elements"]["visit_definition"] = {
        "requires": ["exposure", "visit_system"],
        "implies": ["visit"],
        "always_join": True,
        "storage": {"cls": "lsst.daf.butler.registry.dimensions.table.TableDimensionRecordStorage"},
    }
    universe = DimensionUniverse.from_daf_butler_config(config)
    element = universe.element("visit_definition")
    assert (element.required, element.implied) == (
        ("instrument", "exposure", "visit_system"),
        ("visit",),
    )


def _custom_storage(config: dict[str, Any]) -> None:
    config["elements"]["detector"]["storage"]["nested"]["cls"] = "mypackage.FancyStorage"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (_custom_storage, "stores its records with 'mypackage.FancyStorage', a storage class"),
        (lambda c: c["elements"]["exposure"]["metadata"].append({"name": "u", "type": "uuid"}),
         "has type 'uuid', which databutler does not translate"),
        (lambda c: c.update(dimension_packers={}),
         "has unknown key(s) 'dimension_packers'"),
        (lambda c: c["elements"]["visit"].update(cached=True),
         "daf_butler element 'visit' has unknown key(s) 'cached'"),
        (lambda c: c["elements"]["visit"]["metadata"][0].update(unit="s"),
         "metadata[0] has unknown key(s) 'unit'"),
        (lambda c: c["topology"]["temporal"].update(other=["nothing"]),
         "The temporal family 'other' names 'nothing'"),
        (lambda c: c.pop("elements"), "has no 'elements'"),
        (lambda c: c["elements"]["visit"]["metadata"].append({"name": "physical_filter",
                                                              "type": "int"}),
         "metadata field 'physical_filter' has the same name as the dimension"),
    ],
)  # fmt: skip
def test_translation_refuses_what_it_does_not_know(change: Any, says: str) -> None:
    config = daf_butler_config()
    change(config)
    with pytest.raises(DimensionConfigError, match=re.escape(says)):
        DimensionUniverse.from_daf_butler_config(config)


def test_translation_needs_a_mapping() -> None:
    with pytest.raises(DimensionConfigError, match=r"is a mapping .* not str"):
        DimensionUniverse.from_daf_butler_config("{}")  # type: ignore[arg-type]


def tai(text: str, microseconds: int = 0) -> datetime.datetime:
    """A UTC instant from a TAI time of 2024 (TAI - UTC = 37 s)."""
    when = datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)
    return when - datetime.timedelta(seconds=37) + datetime.timedelta(microseconds=microseconds)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_fixture_export_comes_across_whole(tmp_path: Path, backend: str) -> None:
    universe = DimensionUniverse.from_daf_butler_config(daf_butler_config())
    text = (FIXTURES / "export_v1" / "export.yaml").read_text()
    tract, patch0, patch1 = (bytes.fromhex(h) for h in re.findall(r"encoded: ([0-9a-f]+)", text))
    expected_ids = sorted(
        d["id"] for d in json.loads((FIXTURES / "expected.json").read_text())["datasets"]
    )
    nulls = dict.fromkeys(
        [
            "dark_time",
            "observation_type",
            "observation_reason",
            "seq_num",
            "seq_start",
            "seq_end",
            "target_name",
            "science_program",
            "tracking_ra",
            "tracking_dec",
            "sky_angle",
            "azimuth",
            "zenith_angle",
            "has_simulated",
            "can_see_sky",
        ]
    )
    with registry_arguments(backend) as arguments:
        butler = Butler.create(str(tmp_path / "repo"), universe=universe, **arguments)
        try:
            imported = butler.import_(FIXTURES / "export_v1")  # nothing skipped, nothing refused
            assert sorted(str(ref.id) for ref in imported) == expected_ids
            records = {
                name: [r.to_dict() for r in butler.query_dimension_records(name)]
                for name in universe.elements
            }
        finally:
            butler.close()
    assert {name: rows for name, rows in records.items() if rows} == {
        "instrument": [
            {"instrument": "DummyCam", "visit_max": 1000, "visit_system": None,
             "exposure_max": 1000, "detector_max": 4, "class_name": "dummy.DummyCam"},
        ],
        "band": [{"band": "g"}, {"band": "r"}],
        "physical_filter": [
            {"instrument": "DummyCam", "physical_filter": "d-g", "band": "g"},
            {"instrument": "DummyCam", "physical_filter": "d-r", "band": "r"},
        ],
        "detector": [
            {"instrument": "DummyCam", "detector": d, "full_name": f"S0{d}",
             "name_in_raft": None, "raft": None, "purpose": "SCIENCE"}
            for d in range(3)
        ],
        "group": [
            {"instrument": "DummyCam", "group": "g1"},
            {"instrument": "DummyCam", "group": "g2"},
        ],
        "day_obs": [
            {"instrument": "DummyCam", "day_obs": 20240101,
             "timespan": Timespan(tai("2024-01-01 12:00:37"), tai("2024-01-02 12:00:37"))},
            {"instrument": "DummyCam", "day_obs": 20240102, "timespan": None},
        ],
        "exposure": [
            {"instrument": "DummyCam", "exposure": 101, "physical_filter": "d-g",
             "group": "g1", "day_obs": 20240101, "obs_id": "DC_101", "exposure_time": 30.0,
             **nulls,
             "timespan": Timespan(tai("2024-01-01 03:00:00"), tai("2024-01-01 03:00:30"))},
            {"instrument": "DummyCam", "exposure": 102, "physical_filter": "d-r",
             "group": "g2", "day_obs": 20240102, "obs_id": "DC_102", "exposure_time": 30.0,
             **nulls,
             # 04:00:00.123456789 TAI, to the microsecond.
             "timespan": Timespan(tai("2024-01-02 04:00:00", 123457),
                                  tai("2024-01-02 04:01:00"))},
        ],
        "skymap": [
            {"skymap": "dummy", "hash": base64.b64decode("jlHaf3980JeU2KioETkiyRa2NQY="),
             "tract_max": 1, "patch_nx_max": 2, "patch_ny_max": 1},
        ],
        "tract": [{"skymap": "dummy", "tract": 0, "region": tract}],
        "patch": [
            {"skymap": "dummy", "tract": 0, "patch": 0, "cell_x": 0, "cell_y": 0,
             "region": patch0},
            {"skymap": "dummy", "tract": 0, "patch": 1, "cell_x": 1, "cell_y": 0,
             "region": patch1},
        ],
    }  # fmt: skip


def test_dimensions_docs_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = Path(__file__).parent.parent / "docs" / "dimensions.md"
    text = docs.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], str(docs), "exec"), {})
    (description,) = re.findall(r"```json\n(.*?)```", text, re.S)
    universe = DimensionUniverse(json.loads(description))
    assert universe.names == ("instrument", "exposure")
    assert universe.elements == ("instrument", "exposure", "exposure_note")
    assert universe.element("exposure_note").required == ("instrument", "exposure")


def test_daf_butler_format_round_trip_of_version_2_records(butler: Butler, tmp_path: Path) -> None:
    butler.insert_dimension_records(
        "skymap", {"skymap": "rings", "hash": bytes(range(20)), "tract_max": 1}
    )
    butler.insert_dimension_records(
        "tract", {"skymap": "rings", "tract": 0, "region": b"c" + bytes(range(32))}
    )
    butler.insert_dimension_records(
        "visit_detector_region", {"instrument": "HSC", "visit": 1, "detector": 1, "region": b"p1"}
    )
    butler.register_dataset_type("raw", ["exposure", "detector"], "StructuredDataDict")
    butler.register_dataset_type("deep", ["tract"], "StructuredDataDict")
    butler.put({"e": 1}, "raw", instrument="HSC", exposure=1, detector=1)
    butler.put({"t": 0}, "deep", skymap="rings", tract=0)
    butler.export(tmp_path / "out", collections=["r"], format="daf_butler")
    text = (tmp_path / "out" / "export.yaml").read_text()
    assert "region: !<lsst.sphgeom.Circle>" in text and "group: g1" in text
    # 03:01 UTC is 03:01:37 TAI; the end is unbounded.
    assert "datetime_begin: !butler_time/tai/iso 2024-03-01 03:01:37.000000000" in text
    universes = {
        "default": UNIVERSE,
        "daf_butler": DimensionUniverse.from_daf_butler_config(daf_butler_config()),
    }
    for name, universe in universes.items():
        target = Butler.create(str(tmp_path / name), universe=universe)
        try:
            target.import_(tmp_path / "out")
            for element in ("group", "day_obs", "exposure", "skymap", "tract"):
                want = [r.to_dict() for r in butler.query_dimension_records(element)]
                if element == "exposure":  # an export carries the records its data IDs need
                    want = [row for row in want if row["exposure"] == 1]
                got = [r.to_dict() for r in target.query_dimension_records(element)]
                if name == "daf_butler" and element == "exposure":
                    # The translated universe has the same fields in upstream's order.
                    got = [{k: row[k] for k in want[0]} for row in got]
                assert got == want, (name, element)
            assert target.get("deep", skymap="rings", tract=0, collections="r") == {"t": 0}
        finally:
            target.close()


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("elements", "tract", "keys", 0, "type"), ["int"]),
        (("elements", "detector", "storage", "cls"), {"a": 1}),
        (("elements", "exposure", "metadata", 0, "type"), {"int": 1}),
    ],
)
def test_translation_refuses_values_of_the_wrong_kind(path: tuple[Any, ...], value: Any) -> None:
    config = daf_butler_config()
    where: Any = config
    for part in path[:-1]:
        where = where[part]
    where[path[-1]] = value
    with pytest.raises(DimensionConfigError):
        DimensionUniverse.from_daf_butler_config(config)


def test_records_of_elements_that_are_not_dimensions_are_imported(tmp_path: Path) -> None:
    export = tmp_path / "export"
    shutil.copytree(FIXTURES / "export_v1", export)
    with (export / "export.yaml").open("a") as file:
        file.write(
            "- type: dimension\n"
            "  element: visit_system\n"
            "  records:\n"
            "  - {instrument: DummyCam, id: 0, name: one-to-one}\n"
            "- type: dimension\n"
            "  element: visit\n"
            "  records:\n"
            "  - {instrument: DummyCam, id: 101, name: v101, physical_filter: d-g,\n"
            "     day_obs: 20240101, seq_num: null, exposure_time: 30.0, target_name: null,\n"
            "     observation_reason: null, science_program: null, azimuth: null,\n"
            "     zenith_angle: null, region: null,\n"
            "     datetime_begin: !butler_time/tai/iso '2024-01-01 03:00:00.000000000',\n"
            "     datetime_end: !butler_time/tai/iso '2024-01-01 03:00:30.000000000'}\n"
            "- type: dimension\n"
            "  element: visit_definition\n"
            "  records:\n"
            "  - {instrument: DummyCam, exposure: 101, visit: 101}\n"
            "- type: dimension\n"
            "  element: visit_system_membership\n"
            "  records:\n"
            "  - {instrument: DummyCam, visit_system: 0, visit: 101}\n"
            "- type: dimension\n"
            "  element: visit_detector_region\n"
            "  records:\n"
            "  - instrument: DummyCam\n"
            "    visit: 101\n"
            "    detector: 1\n"
            "    region: !<lsst.sphgeom.ConvexPolygon>\n"
            "      encoded: '70000102'\n"
        )
    universe = DimensionUniverse.from_daf_butler_config(daf_butler_config())
    butler = Butler.create(str(tmp_path / "repo"), universe=universe)
    try:
        butler.import_(export)
        records = {
            name: [r.to_dict() for r in butler.query_dimension_records(name)]
            for name in ("visit_definition", "visit_system_membership", "visit_detector_region")
        }
        (visit,) = butler.query_dimension_records("visit")
    finally:
        butler.close()
    assert records == {
        "visit_definition": [{"instrument": "DummyCam", "visit": 101, "exposure": 101}],
        "visit_system_membership": [{"instrument": "DummyCam", "visit": 101, "visit_system": 0}],
        "visit_detector_region": [
            {"instrument": "DummyCam", "visit": 101, "detector": 1, "region": b"p\x00\x01\x02"}
        ],
    }
    assert visit.timespan == Timespan(tai("2024-01-01 03:00:00"), tai("2024-01-01 03:00:30"))
    assert (visit.name, visit.region) == ("v101", None)
