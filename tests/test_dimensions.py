"""Dimensions: the universe and its description, dimension groups, data coordinates."""

from __future__ import annotations

import copy
import dataclasses
import importlib.resources
import json
import pickle
import types
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import databutler.dimensions as dimensions_package
from databutler import ConfigurationError, DatabutlerError
from databutler.dimensions import (
    DataCoordinate,
    DataIdError,
    Dimension,
    DimensionConfigError,
    DimensionField,
    DimensionGroup,
    DimensionUniverse,
    UnknownDimensionError,
)
from databutler.testing.dimensions import universe_v1

UNIVERSE = universe_v1()  # these tests describe the version-1 layout

DEFAULT_ORDER = (
    "instrument",
    "band",
    "physical_filter",
    "detector",
    "day_obs",
    "exposure",
    "visit",
    "skymap",
    "tract",
    "patch",
)


def _config() -> dict[str, Any]:
    """A fresh copy of the default description, to break."""
    return UNIVERSE.to_config()


def _dims(config: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = config["dimensions"]
    return result


# ----------------------------------------------------------------------
# The default universe


def test_default_universe_names_are_topologically_sorted() -> None:
    assert UNIVERSE.names == DEFAULT_ORDER
    assert list(UNIVERSE) == list(DEFAULT_ORDER)
    assert len(UNIVERSE) == len(DEFAULT_ORDER)
    position = {name: index for index, name in enumerate(UNIVERSE.names)}
    for name in UNIVERSE.names:
        dimension = UNIVERSE[name]
        for other in dimension.required + dimension.implied:
            assert position[other] < position[name], (other, name)


@pytest.mark.parametrize(
    ("name", "required", "implied"),
    [
        ("instrument", (), ()),
        ("band", (), ()),
        ("physical_filter", ("instrument",), ("band",)),
        ("detector", ("instrument",), ()),
        ("day_obs", ("instrument",), ()),
        ("exposure", ("instrument",), ("physical_filter", "day_obs")),
        ("visit", ("instrument",), ("physical_filter", "day_obs")),
        ("skymap", (), ()),
        ("tract", ("skymap",), ()),
        ("patch", ("skymap", "tract"), ()),
    ],
)
def test_default_requires_and_implies(
    name: str, required: tuple[str, ...], implied: tuple[str, ...]
) -> None:
    dimension = UNIVERSE[name]
    assert isinstance(dimension, Dimension)
    assert dimension.name == name
    assert str(dimension) == name
    assert dimension.required == required
    assert dimension.implied == implied


def test_required_is_closed_recursively() -> None:
    config = {
        "namespace": "test",
        "version": 1,
        "dimensions": {
            "a": {"key": {"name": "name", "type": "string"}},
            "b": {"key": {"name": "id", "type": "int"}, "requires": ["a"]},
            "c": {"key": {"name": "id", "type": "int"}, "requires": ["b"]},
        },
    }
    universe = DimensionUniverse.from_config(config)
    assert universe["c"].required == ("a", "b")
    assert universe["c"].direct_required == ("b",)
    assert universe.group(["c"]).names == ("a", "b", "c")


def test_default_keys_and_metadata() -> None:
    assert UNIVERSE["instrument"].key == DimensionField("name", "string", 32)
    assert UNIVERSE["instrument"].key.python_type is str
    assert UNIVERSE["detector"].key.name == "id"
    assert UNIVERSE["detector"].key.python_type is int
    assert [f.name for f in UNIVERSE["instrument"].metadata] == [
        "visit_max",
        "detector_max",
        "class_name",
    ]
    exposure = {f.name: f for f in UNIVERSE["exposure"].metadata}
    assert list(exposure) == ["obs_id", "exposure_time", "datetime_begin", "datetime_end"]
    assert exposure["exposure_time"].python_type is float
    assert exposure["datetime_begin"].dtype == "datetime"
    assert all(f.nullable for f in exposure.values())
    assert [f.name for f in UNIVERSE["skymap"].metadata] == [
        "hash",
        "tract_max",
        "patch_nx_max",
        "patch_ny_max",
    ]
    assert [f.name for f in UNIVERSE["patch"].metadata] == ["cell_x", "cell_y"]
    assert UNIVERSE["band"].doc


def test_dimensions_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        UNIVERSE["detector"].name = "sensor"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        UNIVERSE["detector"].key.dtype = "string"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        UNIVERSE.namespace = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del UNIVERSE._names


def test_unknown_dimension_name() -> None:
    with pytest.raises(UnknownDimensionError, match=r"'camera' is not a dimension") as info:
        UNIVERSE["camera"]
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, DatabutlerError)
    assert "instrument, band, physical_filter" in str(info.value)
    assert "camera" not in UNIVERSE
    assert 12 not in UNIVERSE
    assert UNIVERSE.get("camera") is None
    assert UNIVERSE.get("detector") is UNIVERSE["detector"]


def test_packaged_default_description() -> None:
    resource = importlib.resources.files("databutler.dimensions") / "default_universe_v1.json"
    assert resource.is_file()
    assert DimensionUniverse.from_config(json.loads(resource.read_text("utf-8"))) == UNIVERSE


def test_namespace_and_version_override_keep_the_dimensions() -> None:
    custom = DimensionUniverse(UNIVERSE.to_config(), namespace="custom", version=3)
    assert (custom.namespace, custom.version) == ("custom", 3)
    assert custom.names == UNIVERSE.names
    assert custom != UNIVERSE
    assert (UNIVERSE.namespace, UNIVERSE.version) == ("databutler", 1)


def test_universe_rejects_text_as_config() -> None:
    with pytest.raises(TypeError, match="from_json"):
        DimensionUniverse(UNIVERSE.to_json())  # type: ignore[arg-type]


# ----------------------------------------------------------------------
# Groups


@pytest.mark.parametrize(
    ("names", "all_names", "required", "implied"),
    [
        ([], (), (), ()),
        (["instrument"], ("instrument",), ("instrument",), ()),
        (["detector"], ("instrument", "detector"), ("instrument", "detector"), ()),
        (
            ["physical_filter"],
            ("instrument", "band", "physical_filter"),
            ("instrument", "physical_filter"),
            ("band",),
        ),
        (
            ["exposure"],
            ("instrument", "band", "physical_filter", "day_obs", "exposure"),
            ("instrument", "exposure"),
            ("band", "physical_filter", "day_obs"),
        ),
        (
            ["visit", "physical_filter", "detector"],
            ("instrument", "band", "physical_filter", "detector", "day_obs", "visit"),
            ("instrument", "detector", "visit"),
            ("band", "physical_filter", "day_obs"),
        ),
        (["patch"], ("skymap", "tract", "patch"), ("skymap", "tract", "patch"), ()),
        (
            ["patch", "band"],
            ("band", "skymap", "tract", "patch"),
            ("band", "skymap", "tract", "patch"),
            (),
        ),
    ],
)
def test_group_closure(
    names: list[str],
    all_names: tuple[str, ...],
    required: tuple[str, ...],
    implied: tuple[str, ...],
) -> None:
    group = UNIVERSE.group(names)
    assert isinstance(group, DimensionGroup)
    assert group.names == all_names
    assert group.required == required
    assert group.implied == implied
    assert tuple(group) == all_names
    assert len(group) == len(all_names)
    assert group.universe is UNIVERSE
    assert DimensionGroup(UNIVERSE, reversed(names)) == group


def test_group_required_by_one_member_and_implied_by_another() -> None:
    config = _config()
    _dims(config)["filter_wheel"] = {
        "key": {"name": "id", "type": "int"},
        "requires": ["instrument", "physical_filter"],
    }
    universe = DimensionUniverse.from_config(config)
    group = universe.group(["visit", "filter_wheel"])
    # visit implies physical_filter, but filter_wheel needs it to be identified.
    assert "physical_filter" in group.required
    assert group.implied == ("band", "day_obs")


def test_group_value_semantics() -> None:
    group = UNIVERSE.group(["detector"])
    assert str(group) == "{instrument, detector}"
    assert repr(group) == "DimensionGroup({instrument, detector})"
    assert str(UNIVERSE.empty) == "{}"
    assert UNIVERSE.group("detector") == group
    assert UNIVERSE.group(group) == group
    assert hash(UNIVERSE.group(["instrument", "detector"])) == hash(group)
    assert group != UNIVERSE.group(["instrument"])
    assert group != DimensionUniverse(namespace="other").group(["detector"])
    assert group != ("instrument", "detector")
    assert "detector" in group
    assert "visit" not in group
    with pytest.raises(dataclasses.FrozenInstanceError):
        group._names = ()
    assert pickle.loads(pickle.dumps(group)) == group


def test_group_set_operations() -> None:
    detector = UNIVERSE.group(["detector"])
    visit = UNIVERSE.group(["visit"])
    both = detector.union(visit)
    assert both == UNIVERSE.group(["visit", "detector"])
    assert detector.issubset(both)
    assert both.issuperset(visit)
    assert not visit.issubset(detector)
    assert UNIVERSE.empty.issubset(detector)
    with pytest.raises(ValueError, match="universes differ"):
        detector.union(DimensionUniverse(namespace="other").group(["visit"]))


def test_group_unknown_name() -> None:
    with pytest.raises(UnknownDimensionError, match=r"'ccd' is not a dimension") as info:
        UNIVERSE.group(["instrument", "ccd"])
    assert isinstance(info.value, KeyError)
    assert "valid dimensions are: instrument, band" in str(info.value)
    with pytest.raises(UnknownDimensionError, match=r"\['ccd'\] is not a dimension"):
        UNIVERSE.group(["instrument", ["ccd"]])  # type: ignore[list-item]


def test_groups_are_kept_per_set_of_names() -> None:
    assert UNIVERSE.group(iter(["visit", "instrument"])) is UNIVERSE.group(["instrument", "visit"])


@given(st.lists(st.sampled_from(DEFAULT_ORDER), unique=True))
def test_groups_are_closed(names: list[str]) -> None:
    group = UNIVERSE.group(names)
    assert set(names) <= set(group.names)
    for name in group.names:
        assert set(UNIVERSE[name].required) <= set(group.names)
        assert set(UNIVERSE[name].implied) <= set(group.names)
    assert not set(group.required) & set(group.implied)
    assert set(group.required) | set(group.implied) == set(group.names)
    assert UNIVERSE.group(group.names) == group
    assert UNIVERSE.group(group.required) == group


# ----------------------------------------------------------------------
# Invalid descriptions


def _set(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(config: dict[str, Any]) -> None:
        target = config
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(path: tuple[str, ...]) -> Callable[[dict[str, Any]], None]:
    def mutate(config: dict[str, Any]) -> None:
        target = config
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


def _add(name: str, entry: Any) -> Callable[[dict[str, Any]], None]:
    return _set(("dimensions", name), entry)


_INT_KEY = {"name": "id", "type": "int"}

BAD_DESCRIPTIONS = {
    "missing dimensions": (_delete(("dimensions",)), r"is missing 'dimensions'"),
    "missing namespace": (_delete(("namespace",)), r"is missing 'namespace'"),
    "unknown top field": (_set(("dimension",), {}), r"unknown field\(s\) 'dimension'"),
    "namespace not str": (_set(("namespace",), 7), r"'namespace' must be a string"),
    "version not int": (_set(("version",), "1"), r"'version' must be an integer"),
    "version bool": (_set(("version",), True), r"'version' must be an integer"),
    "dimensions not mapping": (_set(("dimensions",), ["instrument"]), r"'dimensions' must map"),
    "entry not mapping": (_add("camera", "big"), r"Dimension 'camera' must be a mapping"),
    "bad dimension name": (_add("not a name", {"key": _INT_KEY}), r"'not a name' is not valid"),
    "missing key": (_delete(("dimensions", "detector", "key")), r"'detector' is missing 'key'"),
    "missing key name": (
        _delete(("dimensions", "detector", "key", "name")),
        r"'detector': its key is missing 'name'",
    ),
    "missing key type": (
        _delete(("dimensions", "detector", "key", "type")),
        r"'detector': its key is missing 'type'",
    ),
    "bad key type": (
        _set(("dimensions", "detector", "key", "type"), "float"),
        r"'detector': its key \('id'\) has type 'float'; valid types are 'string', 'int'",
    ),
    "nullable key": (
        _set(("dimensions", "detector", "key", "nullable"), True),
        r"'detector': its key has unknown field\(s\) 'nullable'",
    ),
    "length on int key": (
        _set(("dimensions", "detector", "key", "length"), 8),
        r"'detector': its key \('id'\) has a 'length', but only string and bytes fields have one",
    ),
    "zero length": (
        _set(("dimensions", "instrument", "key", "length"), 0),
        r"'instrument': its key \('name'\) has length 0",
    ),
    "bad key name": (
        _set(("dimensions", "detector", "key", "name"), "1d"),
        r"'detector': its key has the name '1d'",
    ),
    "unknown entry field": (
        _set(("dimensions", "detector", "requries"), ["instrument"]),
        r"Dimension 'detector' has unknown field\(s\) 'requries'",
    ),
    "requires unknown": (
        _set(("dimensions", "detector", "requires"), ["camera"]),
        r"Dimension 'detector' requires unknown dimension 'camera'; known dimensions: instrument",
    ),
    "implies unknown": (
        _set(("dimensions", "exposure", "implies"), ["filter"]),
        r"Dimension 'exposure' implies unknown dimension 'filter'",
    ),
    "requires a string": (
        _set(("dimensions", "detector", "requires"), "instrument"),
        r"'detector': 'requires' must be a list of dimension names",
    ),
    "requires itself": (
        _set(("dimensions", "detector", "requires"), ["instrument", "detector"]),
        r"Dimension 'detector' requires itself",
    ),
    "duplicate requirement": (
        _set(("dimensions", "patch", "requires"), ["skymap", "tract", "skymap"]),
        r"Dimension 'patch' lists 'skymap' twice in 'requires'",
    ),
    "requires and implies": (
        _set(("dimensions", "exposure", "implies"), ["instrument"]),
        r"Dimension 'exposure' both requires and implies 'instrument'",
    ),
    "cycle": (
        _set(("dimensions", "instrument", "requires"), ["detector"]),
        r"Dimension 'instrument' depends on itself through a cycle: "
        r"instrument -> detector -> instrument",
    ),
    "cycle through implies": (
        _set(("dimensions", "band", "implies"), ["physical_filter"]),
        r"cycle: band -> physical_filter -> band",
    ),
    "implied needs more": (
        _add("focus", {"key": _INT_KEY, "implies": ["detector"]}),
        r"Dimension 'focus' implies 'detector', which requires 'instrument'; "
        r"'focus' must require that too",
    ),
    "implied already required": (
        _add("focus", {"key": _INT_KEY, "requires": ["patch"], "implies": ["skymap"]}),
        r"Dimension 'focus' implies 'skymap', which it already requires",
    ),
    "metadata not list": (
        _set(("dimensions", "detector", "metadata"), {"purpose": "string"}),
        r"'detector': 'metadata' must be a list",
    ),
    "metadata bad type": (
        _set(("dimensions", "detector", "metadata"), [{"name": "gain", "type": "double"}]),
        r"'detector': metadata field 0 \('gain'\) has type 'double'",
    ),
    "metadata missing type": (
        _set(("dimensions", "detector", "metadata"), [{"name": "gain"}]),
        r"'detector': metadata field 0 is missing 'type'",
    ),
    "metadata bad nullable": (
        _set(
            ("dimensions", "detector", "metadata"),
            [{"name": "gain", "type": "float", "nullable": "no"}],
        ),
        r"'detector': metadata field 0 \('gain'\) has nullable 'no'",
    ),
    "metadata bad length": (
        _set(
            ("dimensions", "detector", "metadata"),
            [{"name": "serial", "type": "string", "length": "8"}],
        ),
        r"\('serial'\) has length '8'; a length is a positive integer",
    ),
    "duplicate metadata": (
        _set(
            ("dimensions", "detector", "metadata"),
            [{"name": "gain", "type": "float"}, {"name": "gain", "type": "int"}],
        ),
        r"'detector': metadata field 'gain' has the same name as another metadata field",
    ),
    "metadata named like the key": (
        _set(("dimensions", "detector", "metadata"), [{"name": "id", "type": "int"}]),
        r"'detector': metadata field 'id' has the same name as its key",
    ),
    "metadata named like a dimension": (
        _set(("dimensions", "detector", "metadata"), [{"name": "instrument", "type": "string"}]),
        r"'detector': metadata field 'instrument' has the same name as the dimension",
    ),
    "doc not str": (_set(("dimensions", "band", "doc"), None), r"'band': 'doc' must be a string"),
}


@pytest.mark.parametrize(("mutate", "match"), BAD_DESCRIPTIONS.values(), ids=BAD_DESCRIPTIONS)
def test_bad_description(mutate: Callable[[dict[str, Any]], None], match: str) -> None:
    config = _config()
    mutate(config)
    with pytest.raises(DimensionConfigError, match=match) as info:
        DimensionUniverse.from_config(config)
    assert isinstance(info.value, ConfigurationError)
    assert isinstance(info.value, ValueError)
    # The same problem, stored: from_json says so too.
    with pytest.raises(DimensionConfigError, match=match):
        DimensionUniverse.from_json(json.dumps(config))


def test_bad_description_not_a_mapping() -> None:
    with pytest.raises(DimensionConfigError, match="The description must be a mapping"):
        DimensionUniverse.from_config([])  # type: ignore[arg-type]


def test_duplicate_dimension_in_json() -> None:
    text = UNIVERSE.to_json()
    entry = json.dumps(UNIVERSE.to_config()["dimensions"]["band"])
    duplicated = text.replace('"dimensions": {', f'"dimensions": {{"band": {entry}, ', 1)
    assert duplicated != text
    with pytest.raises(DimensionConfigError, match=r"duplicate name 'band'"):
        DimensionUniverse.from_json(duplicated)


# ----------------------------------------------------------------------
# Serialisation and equality


def test_json_round_trip_is_exact() -> None:
    text = UNIVERSE.to_json()
    again = DimensionUniverse.from_json(text)
    assert again == UNIVERSE
    assert hash(again) == hash(UNIVERSE)
    assert again.to_json() == text
    assert again.names == UNIVERSE.names
    assert json.loads(text) == UNIVERSE.to_config()


def test_to_config_is_the_full_description() -> None:
    config = UNIVERSE.to_config()
    assert list(config) == ["namespace", "version", "dimensions"]
    assert list(config["dimensions"]) == list(DEFAULT_ORDER)
    for entry in config["dimensions"].values():
        assert list(entry) == ["key", "requires", "implies", "metadata", "doc"]
        assert all("nullable" in field for field in entry["metadata"])
    assert config["dimensions"]["patch"]["requires"] == ["skymap", "tract"]
    # A fresh copy each time.
    config["dimensions"].clear()
    assert UNIVERSE.to_config()["dimensions"]


def test_description_order_is_kept_where_it_is_free() -> None:
    config = {
        "namespace": "test",
        "version": 2,
        "dimensions": {
            "c": {"key": _INT_KEY, "requires": ["b"]},
            "a": {"key": _INT_KEY},
            "b": {"key": _INT_KEY},
        },
    }
    universe = DimensionUniverse.from_config(config)
    assert universe.names == ("a", "b", "c")
    assert DimensionUniverse.from_json(universe.to_json()).names == ("a", "b", "c")


def test_custom_universe_round_trip_and_inequality() -> None:
    config = _config()
    del _dims(config)["patch"]
    smaller = DimensionUniverse.from_config(config)
    assert "patch" not in smaller
    assert smaller != UNIVERSE
    assert smaller.namespace == UNIVERSE.namespace
    assert DimensionUniverse.from_json(smaller.to_json()) == smaller
    assert len({smaller, UNIVERSE, DimensionUniverse.from_json(UNIVERSE.to_json())}) == 2
    assert UNIVERSE != "databutler"


def test_universe_pickles() -> None:
    assert pickle.loads(pickle.dumps(UNIVERSE)) == UNIVERSE
    assert copy.deepcopy(UNIVERSE) == UNIVERSE
    assert "namespace='databutler', version=1" in repr(UNIVERSE)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{not json",
        "[]",
        "null",
        "{}",
        '{"namespace": "x", "version": 1}',
        '{"namespace": "x", "version": "one", "dimensions": {}}',
    ],
)
def test_from_garbage_keeps_the_stub_contract(text: str) -> None:
    with pytest.raises(
        ValueError, match=r"Stored dimension universe .* is not valid; expected a JSON"
    ):
        DimensionUniverse.from_json(text)


def test_all_matches_the_exported_names() -> None:
    exported = set(dimensions_package.__all__)
    public = {
        name
        for name, value in vars(dimensions_package).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert exported == public


# ----------------------------------------------------------------------
# Data coordinates


def test_standardize_from_mapping_and_kwargs() -> None:
    from_mapping = DataCoordinate.standardize(
        {"instrument": "HSC", "detector": 12}, universe=UNIVERSE
    )
    from_kwargs = DataCoordinate.standardize(instrument="HSC", detector=12, universe=UNIVERSE)
    mixed = DataCoordinate.standardize({"instrument": "HSC"}, detector=12, universe=UNIVERSE)
    assert from_mapping == from_kwargs == mixed
    assert from_mapping.dimensions == UNIVERSE.group(["detector"])
    assert from_mapping["detector"] == 12
    assert from_mapping.get("detector") == 12
    assert from_mapping.get("visit") is None
    assert list(from_mapping.keys()) == ["instrument", "detector"]
    assert list(from_mapping.items()) == [("instrument", "HSC"), ("detector", 12)]
    assert list(from_mapping.values()) == ["HSC", 12]
    assert dict(from_mapping) == {"instrument": "HSC", "detector": 12}
    assert len(from_mapping) == 2
    assert "detector" in from_mapping
    assert from_mapping.universe is UNIVERSE
    assert str(from_mapping) == "{instrument: 'HSC', detector: 12}"
    assert repr(from_mapping) == "DataCoordinate({instrument: 'HSC', detector: 12})"
    # Keyword arguments win.
    override = DataCoordinate.standardize(
        {"instrument": "HSC", "detector": 12}, detector=13, universe=UNIVERSE
    )
    assert override["detector"] == 13
    # A coordinate is a valid input.
    assert DataCoordinate.standardize(from_mapping, universe=UNIVERSE) == from_mapping


def test_standardize_normalises_ints_and_strings() -> None:
    class Index:
        """Like a numpy integer: not an int, but has __index__."""

        def __index__(self) -> int:
            return 12

    class Name(str):
        pass

    coordinate = DataCoordinate.standardize(
        instrument=Name("HSC"), detector=Index(), universe=UNIVERSE
    )
    assert type(coordinate["detector"]) is int
    assert type(coordinate["instrument"]) is str
    assert coordinate == DataCoordinate.standardize(
        instrument="HSC", detector=12, universe=UNIVERSE
    )


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"detector": True}, r"value True \(bool\) for 'detector' is a bool; expected int"),
        (
            {"detector": 12.0},
            r"value 12.0 \(float\) for 'detector' has the wrong type; expected int",
        ),
        ({"detector": "12"}, r"value '12' \(str\) for 'detector' has the wrong type; expected int"),
        ({"detector": None}, r"value None \(NoneType\) for 'detector' has the wrong type"),
        ({"detector": 2**63}, r"for 'detector' does not fit in a 64-bit signed integer"),
        ({"instrument": 5}, r"value 5 \(int\) for 'instrument' has the wrong type; expected str"),
        ({"instrument": b"HSC"}, r"for 'instrument' has the wrong type; expected str"),
        ({"instrument": ""}, r"value '' \(str\) for 'instrument' is empty"),
        ({"instrument": "H" * 33}, r"for 'instrument' is longer than 32 characters"),
    ],
)
def test_standardize_type_errors(values: dict[str, Any], match: str) -> None:
    data_id = {"instrument": "HSC", "detector": 12} | values
    with pytest.raises(DataIdError, match=match) as info:
        DataCoordinate.standardize(data_id, universe=UNIVERSE)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, DatabutlerError)


def test_standardize_missing_value_is_named() -> None:
    with pytest.raises(DataIdError, match=r"no value for the required dimension 'instrument'"):
        DataCoordinate.standardize(detector=12, universe=UNIVERSE)
    with pytest.raises(
        DataIdError, match=r"required dimension 'exposure' \(its dimensions"
    ) as info:
        DataCoordinate.standardize(instrument="HSC", universe=UNIVERSE, dimensions=["exposure"])
    assert "instrument'" not in str(info.value).split("required")[1]
    with pytest.raises(DataIdError, match=r"required dimensions 'skymap', 'tract'"):
        DataCoordinate.standardize(patch=4, universe=UNIVERSE)


def test_standardize_unknown_key_is_named() -> None:
    with pytest.raises(
        DataIdError,
        match=r"key 'detectr' is not a dimension; valid dimensions are: instrument, band",
    ):
        DataCoordinate.standardize(instrument="HSC", detectr=12, universe=UNIVERSE)
    with pytest.raises(DataIdError, match=r"key 'exposure.id' is not a dimension"):
        DataCoordinate.standardize(
            {"instrument": "HSC", "exposure.id": 5}, universe=UNIVERSE, dimensions=["exposure"]
        )
    with pytest.raises(DataIdError, match="is a mapping"):
        DataCoordinate.standardize([("instrument", "HSC")], universe=UNIVERSE)  # type: ignore[arg-type]


def test_standardize_with_dimensions_takes_a_subset() -> None:
    full = {"instrument": "HSC", "detector": 12, "visit": 903334, "physical_filter": "HSC-R"}
    coordinate = DataCoordinate.standardize(full, universe=UNIVERSE, dimensions=["detector"])
    assert coordinate.dimensions.names == ("instrument", "detector")
    assert dict(coordinate) == {"instrument": "HSC", "detector": 12}
    group = UNIVERSE.group(["visit"])
    assert DataCoordinate.standardize(full, universe=UNIVERSE, dimensions=group).dimensions == group
    with pytest.raises(DataIdError, match="another universe"):
        DataCoordinate.standardize(
            full, universe=UNIVERSE, dimensions=DimensionUniverse(namespace="x").group(["visit"])
        )
    with pytest.raises(UnknownDimensionError, match="'ccd'"):
        DataCoordinate.standardize(full, universe=UNIVERSE, dimensions=["ccd"])


def test_constructor_is_strict() -> None:
    group = UNIVERSE.group(["detector"])
    assert DataCoordinate(group, {"instrument": "HSC", "detector": 1})["detector"] == 1
    with pytest.raises(DataIdError, match=r"key 'visit' is not one of its dimensions"):
        DataCoordinate(group, {"instrument": "HSC", "detector": 1, "visit": 2})
    with pytest.raises(DataIdError, match=r"key 'ccd' is not a dimension"):
        DataCoordinate(group, {"instrument": "HSC", "detector": 1, "ccd": 2})


def test_implied_values() -> None:
    partial = DataCoordinate.standardize(
        instrument="HSC", exposure=42, physical_filter="HSC-R", universe=UNIVERSE
    )
    assert partial.dimensions == UNIVERSE.group(["exposure"])
    assert dict(partial.required) == {"instrument": "HSC", "exposure": 42}
    assert partial.required_values == ("HSC", 42)
    assert dict(partial.mapping) == {
        "instrument": "HSC",
        "physical_filter": "HSC-R",
        "exposure": 42,
    }
    assert not partial.has_full()
    with pytest.raises(KeyError, match=r"no value for the implied dimension 'band'"):
        partial["band"]
    with pytest.raises(KeyError, match=r"'tract' is not one of the dimensions"):
        partial["tract"]
    full = partial.fill_implied({"band": "r", "day_obs": 20240101, "physical_filter": "HSC-R"})
    assert full.has_full()
    assert list(full.keys()) == ["instrument", "band", "physical_filter", "day_obs", "exposure"]
    assert full["band"] == "r"
    assert full == partial
    assert hash(full) == hash(partial)
    assert not partial.has_full()  # unchanged


def test_implied_values_are_checked() -> None:
    partial = DataCoordinate.standardize(instrument="HSC", exposure=42, universe=UNIVERSE)
    with pytest.raises(DataIdError, match=r"value 20240101.0 \(float\) for 'day_obs'"):
        partial.fill_implied({"day_obs": 20240101.0})
    with pytest.raises(DataIdError, match=r"value 1 \(int\) for 'physical_filter'"):
        DataCoordinate.standardize(
            instrument="HSC", exposure=42, physical_filter=1, universe=UNIVERSE
        )
    with pytest.raises(
        DataIdError, match=r"Cannot fill 'detector' into .*not one of its dimensions"
    ):
        partial.fill_implied({"detector": 1})
    with pytest.raises(DataIdError, match=r"key 'filter' is not a dimension"):
        partial.fill_implied({"filter": "r"})
    with pytest.raises(DataIdError, match=r"Cannot fill exposure=43 into .*it has exposure=42"):
        partial.fill_implied({"exposure": 43})
    filled = partial.fill_implied({"band": "r"})
    with pytest.raises(DataIdError, match=r"Cannot fill band='g'"):
        filled.fill_implied({"band": "g"})


def test_equality_and_hash() -> None:
    a = DataCoordinate.standardize(instrument="HSC", detector=12, universe=UNIVERSE)
    b = DataCoordinate.standardize({"detector": 12, "instrument": "HSC"}, universe=UNIVERSE)
    c = DataCoordinate.standardize(instrument="HSC", detector=13, universe=UNIVERSE)
    other_universe = DimensionUniverse(namespace="other")
    d = DataCoordinate.standardize(instrument="HSC", detector=12, universe=other_universe)
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert a != d
    assert a != {"instrument": "HSC", "detector": 12}
    assert len({a, b, c}) == 2
    instrument_only = DataCoordinate.standardize(instrument="HSC", universe=UNIVERSE)
    assert instrument_only != a
    assert a.subset(["instrument"]) == instrument_only
    with pytest.raises(dataclasses.FrozenInstanceError):
        a._mapping = {}
    assert pickle.loads(pickle.dumps(a)) == a


def test_subset() -> None:
    partial = DataCoordinate.standardize(instrument="HSC", visit=7, universe=UNIVERSE)
    with pytest.raises(DataIdError, match="no value for the required dimension 'physical_filter'"):
        partial.subset(["physical_filter"])
    full = partial.fill_implied({"physical_filter": "HSC-R", "band": "r", "day_obs": 20240101})
    subset = full.subset(["physical_filter"])
    assert dict(subset) == {"instrument": "HSC", "band": "r", "physical_filter": "HSC-R"}
    assert subset.has_full()
    with pytest.raises(DataIdError, match=r"\{instrument, detector\} is not a subset"):
        full.subset(["detector"])


def test_empty_data_id() -> None:
    empty = DataCoordinate.standardize(universe=UNIVERSE)
    assert empty.dimensions == UNIVERSE.empty
    assert len(empty) == 0
    assert empty.has_full()
    assert empty.to_simple() == {}
    assert DataCoordinate.from_simple({}, UNIVERSE) == empty
    assert str(empty) == "{}"


def test_simple_round_trip() -> None:
    coordinate = DataCoordinate.standardize(
        instrument="HSC", visit=7, physical_filter="HSC-R", universe=UNIVERSE
    )
    simple = coordinate.to_simple()
    assert simple == {"instrument": "HSC", "physical_filter": "HSC-R", "visit": 7}
    again = DataCoordinate.from_simple(json.loads(json.dumps(simple)), UNIVERSE)
    assert again == coordinate
    assert dict(again.mapping) == dict(coordinate.mapping)
    simple["visit"] = 8  # a copy
    assert coordinate["visit"] == 7
    with pytest.raises(DataIdError, match="is a JSON object"):
        DataCoordinate.from_simple([["instrument", "HSC"]], UNIVERSE)
    with pytest.raises(DataIdError, match="'instrument'"):
        DataCoordinate.from_simple({"visit": 7}, UNIVERSE)


STORABLE = st.characters(codec="utf-8", exclude_characters="\x00")


def _key_values(name: str) -> st.SearchStrategy[Any]:
    key = UNIVERSE[name].key
    if key.dtype == "int":
        return st.integers(min_value=-(2**63), max_value=2**63 - 1)
    # Storable text only: NUL and lone surrogates are refused (test_data_id_validation.py).
    return st.text(STORABLE, min_size=1, max_size=key.length or 64)


@st.composite
def _data_ids(draw: st.DrawFn) -> tuple[DimensionGroup, dict[str, Any]]:
    group = UNIVERSE.group(draw(st.lists(st.sampled_from(DEFAULT_ORDER), unique=True, max_size=4)))
    values = {name: draw(_key_values(name)) for name in group.required}
    for name in group.implied:
        if draw(st.booleans()):
            values[name] = draw(_key_values(name))
    return group, values


@given(_data_ids())
def test_random_data_ids_round_trip(case: tuple[DimensionGroup, dict[str, Any]]) -> None:
    group, values = case
    coordinate = DataCoordinate.standardize(values, universe=UNIVERSE, dimensions=group)
    assert coordinate.dimensions == group
    assert dict(coordinate.mapping) == values
    assert coordinate.has_full() == (set(values) == set(group.names))

    again = DataCoordinate.from_simple(json.loads(json.dumps(coordinate.to_simple())), UNIVERSE)
    assert again == coordinate
    assert hash(again) == hash(coordinate)
    assert dict(again.mapping) == dict(coordinate.mapping)

    restandardized = DataCoordinate.standardize(coordinate.mapping, universe=UNIVERSE)
    assert restandardized == coordinate
    assert dict(restandardized.mapping) == dict(coordinate.mapping)
    assert list(restandardized.keys()) == list(coordinate.keys())
    twice = DataCoordinate.standardize(restandardized.mapping, universe=UNIVERSE)
    assert twice == restandardized
    assert dict(twice.mapping) == dict(restandardized.mapping)
