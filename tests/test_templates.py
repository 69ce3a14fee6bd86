"""Tests for file templates: parsing, formatting, sanitising, validation, lookup."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from databutler._dataset_ref import DatasetRef
from databutler._dataset_type import DatasetType
from databutler._exceptions import ConfigurationError
from databutler.datastores.templates import (
    DEFAULT_TEMPLATE,
    FileTemplate,
    FileTemplates,
    TemplateError,
    sanitize_value,
)
from databutler.dimensions import DataCoordinate, DimensionUniverse

UNIVERSE = DimensionUniverse()

RAW = DatasetType("raw", ["instrument", "exposure", "detector"], "Exposure")
CALEXP = DatasetType("calexp", ["instrument", "visit", "detector"], "ExposureF")
CALEXP_WCS = CALEXP.makeComponentDatasetType("wcs", "Wcs")
FILTERED = DatasetType("filtered", ["instrument", "physical_filter"], "DataFrame")

RAW_TEMPLATE = "{run}/{datasetType}/{band:?}/{instrument}/{datasetType}_{exposure}_{detector}"


def make_ref(
    dataset_type: DatasetType, run: str | None = "HSC/runs/RC2", **data_id: Any
) -> DatasetRef:
    coordinate = DataCoordinate.standardize(data_id, universe=UNIVERSE)
    return DatasetRef(dataset_type, coordinate, run, uuid.uuid4())


def raw_ref(exposure: int = 903334, detector: int = 12, **extra: Any) -> DatasetRef:
    return make_ref(RAW, instrument="HSC", exposure=exposure, detector=detector, **extra)


# --- formatting -------------------------------------------------------------------------


def test_format_required_fields_and_run_sanitised() -> None:
    path = FileTemplate(RAW_TEMPLATE).format(raw_ref())
    assert path == "HSC_runs_RC2/raw/HSC/raw_903334_12"


def test_optional_field_present_and_missing() -> None:
    template = FileTemplate("{run}/{datasetType}_{band:?}_{detector}")
    ref = make_ref(FILTERED, instrument="HSC", physical_filter="HSC-R", detector=3)  # no band value
    assert template.format(ref) == "HSC_runs_RC2/filtered_3"
    coordinate = DataCoordinate.standardize(
        {"instrument": "HSC", "physical_filter": "HSC-R", "detector": 3}, universe=UNIVERSE
    ).fill_implied({"band": "r"})
    with_band = DatasetRef(FILTERED, coordinate, "run1", uuid.uuid4())
    assert template.format(with_band) == "run1/filtered_r_3"


def test_missing_optional_directory_removes_segment() -> None:
    template = FileTemplate("{run}/{datasetType}/{band:?}/{instrument}/{id}")
    ref = raw_ref()
    assert template.format(ref) == f"HSC_runs_RC2/raw/HSC/{ref.id}"


def test_missing_optional_leading_field_leaves_relative_path() -> None:
    template = FileTemplate("{band:?}/{run}/{datasetType}_{id}")
    ref = raw_ref()
    assert template.format(ref) == f"HSC_runs_RC2/raw_{ref.id}"


def test_missing_required_field_names_field_and_ref() -> None:
    template = FileTemplate("{run}/{datasetType}_{visit}")
    ref = raw_ref()
    with pytest.raises(TemplateError, match=r"\{visit\}") as info:
        template.format(ref)
    assert repr(ref) in str(info.value)


def test_components() -> None:
    parent = make_ref(CALEXP, instrument="HSC", visit=1, detector=2)
    component = DatasetRef(CALEXP_WCS, parent.dataId, parent.run, parent.id)
    template = FileTemplate("{run}/{datasetType}.{component:?}/{visit}_{detector}")
    assert template.format(parent) == "HSC_runs_RC2/calexp/1_2"
    assert template.format(component) == "HSC_runs_RC2/calexp.wcs/1_2"
    without = FileTemplate("{run}/{datasetType}/{visit}_{detector}")
    with pytest.raises(TemplateError, match="component"):
        without.format(component)


def test_default_template_is_unique_for_parent_and_component() -> None:
    template = FileTemplate(DEFAULT_TEMPLATE)
    parent = make_ref(CALEXP, instrument="HSC", visit=1, detector=2)
    component = DatasetRef(CALEXP_WCS, parent.dataId, parent.run, parent.id)
    assert template.format(parent) == f"HSC_runs_RC2/calexp/calexp_{parent.id}"
    assert template.format(component) == f"HSC_runs_RC2/calexp/calexp_wcs_{parent.id}"
    for dataset_type in (RAW, CALEXP, CALEXP_WCS, FILTERED):
        template.validate(dataset_type, UNIVERSE)


def test_fields_and_required_fields() -> None:
    template = FileTemplate(RAW_TEMPLATE)
    assert template.fields == ("run", "datasetType", "band", "instrument", "exposure", "detector")
    assert template.required_fields == (
        "run",
        "datasetType",
        "instrument",
        "exposure",
        "detector",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("..", "_.."),
        (".", "_."),
        ("", "_"),
        ("...", "_..."),
        ("../../etc/passwd", ".._.._etc_passwd"),
        ("/abs", "_abs"),
        ("a b\\c", "a_b_c"),
        ("é", "_"),
        ("HSC-R+x=1@2.v", "HSC-R+x=1@2.v"),
        (-5, "-5"),
    ],
)
def test_sanitize_value(value: object, expected: str) -> None:
    assert sanitize_value(value) == expected


# --- property tests ---------------------------------------------------------------------

SEGMENTED = "{run}/{datasetType}/{physical_filter}/{instrument}/{datasetType}_{physical_filter}"


@settings(max_examples=150, deadline=None)
@given(
    # Values a data ID can hold: no NUL, no lone surrogate (those are refused earlier).
    physical_filter=st.text(
        st.characters(codec="utf-8", exclude_characters="\x00"),
        min_size=1,
        max_size=32,
    ),
    run=st.text(max_size=40),
)
def test_sanitised_path_stays_inside_root(physical_filter: str, run: str) -> None:
    template = FileTemplate(SEGMENTED)
    ref = make_ref(FILTERED, run=run, instrument="HSC", physical_filter=physical_filter)
    path = template.format(ref)
    segments = path.split("/")
    assert not path.startswith("/")
    assert all(segment not in ("", ".", "..") for segment in segments)
    assert len(segments) == len(template.template.split("/"))


@settings(max_examples=150, deadline=None)
@given(
    first=st.tuples(st.integers(-(2**63), 2**63 - 1), st.integers(-1000, 1000)),
    second=st.tuples(st.integers(-(2**63), 2**63 - 1), st.integers(-1000, 1000)),
)
def test_distinct_data_ids_give_distinct_paths(
    first: tuple[int, int], second: tuple[int, int]
) -> None:
    template = FileTemplate("{run}/{datasetType}/{instrument}_{exposure}-{detector}")
    template.validate(RAW, UNIVERSE)
    path_a = template.format(raw_ref(*first))
    path_b = template.format(raw_ref(*second))
    assert (path_a == path_b) == (first == second)


# --- malformed templates ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{run}/{datasetType", "unbalanced '{'"),
        ("{run}}/x", "unbalanced '}'"),
        ("{run}/{a{b}}", "unbalanced '{'"),
        ("{run}/{}", "empty field"),
        ("{run}/{:?}", "empty field"),
        ("{run}/{visit:03d}", "unknown format spec '03d'"),
        ("{run}/{visit:}", "unknown format spec ''"),
        ("{run}/{visit!r}", "not a name"),
        ("{run}/{exposure.obs_id}", "not a name"),
        ("plain/path", "no field"),
        ("/{run}/{id}", "absolute"),
        ("{run}/../{id}", "'..' path segment"),
        ("{run}/./{id}", "'.' path segment"),
        ("{run}//{id}", "'empty' path segment"),
        ("{run}/{id}/", "'empty' path segment"),
        ("{run} {id}", "character ' '"),
    ],
)
def test_malformed_templates(text: str, problem: str) -> None:
    with pytest.raises(TemplateError, match=problem.replace("{", r"\{")) as info:
        FileTemplate(text)
    assert isinstance(info.value, ConfigurationError)
    assert repr(text) in str(info.value)


# --- validation -------------------------------------------------------------------------


def test_validate_missing_required_dimension() -> None:
    template = FileTemplate("{run}/{datasetType}/{exposure}")
    with pytest.raises(TemplateError, match=r"required dimensions .*instrument.*detector"):
        template.validate(RAW, UNIVERSE)


def test_validate_optional_required_dimension_does_not_count() -> None:
    template = FileTemplate("{run}/{datasetType}/{instrument}/{exposure}_{detector:?}")
    with pytest.raises(TemplateError, match="required dimensions detector"):
        template.validate(RAW, UNIVERSE)


def test_validate_unknown_field_lists_valid_names() -> None:
    template = FileTemplate("{run}/{datasetType}/{nonsense}/{id}")
    with pytest.raises(TemplateError, match=r"\{nonsense\}.*valid names are: .*detector"):
        template.validate(RAW, UNIVERSE)


def test_validate_missing_run_and_dataset_type() -> None:
    template = FileTemplate("{instrument}/{exposure}_{detector}")
    with pytest.raises(TemplateError) as info:
        template.validate(RAW, UNIVERSE)
    message = str(info.value)
    assert "{run} is not a non-optional field" in message
    assert "{datasetType} is not a non-optional field" in message
    FileTemplate("{id}").validate(RAW, UNIVERSE)  # the id alone is unique


def test_validate_dimension_not_of_dataset_type() -> None:
    with pytest.raises(TemplateError, match=r"\{visit\} is not a dimension of the dataset type"):
        FileTemplate(RAW_TEMPLATE + "_{visit}").validate(RAW, UNIVERSE)
    FileTemplate(RAW_TEMPLATE + "_{visit:?}").validate(RAW, UNIVERSE)


def test_validate_adjacent_fields() -> None:
    template = FileTemplate("{run}/{datasetType}/{instrument}_{exposure}{detector}")
    with pytest.raises(TemplateError, match="adjacent"):
        template.validate(RAW, UNIVERSE)


def test_validate_component_needs_component_field() -> None:
    template = FileTemplate("{run}/{datasetType}/{id}")
    template.validate(CALEXP, UNIVERSE)
    with pytest.raises(TemplateError, match="component"):
        template.validate(CALEXP_WCS, UNIVERSE)


# --- lookup -----------------------------------------------------------------------------


def test_lookup_priority() -> None:
    config = {
        "default": "{run}/default/{datasetType}_{id}",
        "ExposureF": "{run}/storage/{datasetType}_{id}",
        "visit+detector": "{run}/dims/{datasetType}_{id}",
        "calexp": "{run}/parent/{datasetType}_{component:?}_{id}",
        "calexp.wcs": "{run}/full/{datasetType}_{component:?}_{id}",
    }

    def key_for(templates: FileTemplates, dataset_type: DatasetType) -> str:
        return templates.template_for(dataset_type).template.split("/")[1]

    templates = FileTemplates(config, universe=UNIVERSE)
    other_component = CALEXP.makeComponentDatasetType("psf", "Psf")
    assert key_for(templates, CALEXP_WCS) == "full"
    assert key_for(templates, other_component) == "parent"
    assert key_for(templates, CALEXP) == "parent"
    del config["calexp"]
    templates = FileTemplates(config, universe=UNIVERSE)
    assert key_for(templates, CALEXP) == "dims"
    # Same storage class, other dimensions: the storage class matches.
    deep = DatasetType("deep", ["skymap", "tract", "patch"], "ExposureF")
    assert key_for(templates, deep) == "storage"
    assert key_for(templates, FILTERED) == "default"
    # The ref form looks up its dataset type.
    assert templates.template_for(raw_ref()).template.startswith("{run}/default/")


def test_dimension_key_any_order_and_single() -> None:
    templates = FileTemplates(
        {"detector+exposure": "{run}/a/{id}", "instrument+": "{run}/b/{id}"}, universe=UNIVERSE
    )
    assert templates.template_for(RAW).template == "{run}/a/{id}"
    instrument_only = DatasetType("camera", ["instrument"], "Camera")
    assert templates.template_for(instrument_only).template == "{run}/b/{id}"


def test_no_match_raises() -> None:
    templates = FileTemplates({"calexp": DEFAULT_TEMPLATE}, universe=UNIVERSE)
    with pytest.raises(TemplateError, match=r"No file template for .*raw"):
        templates.template_for(RAW)


def test_bad_configuration_reports_all_keys() -> None:
    with pytest.raises(TemplateError) as info:
        FileTemplates(
            {"raw": "{run", "nonsense+detector": "{id}", "exposure+detector": "{id}"},
            universe=UNIVERSE,
        )
    message = str(info.value)
    assert "'raw'" in message
    assert "'nonsense+detector'" in message
    with pytest.raises(TemplateError, match="same dimensions"):
        FileTemplates(
            {"exposure+detector": "{id}", "detector+exposure+instrument": "{id}"},
            universe=UNIVERSE,
        )


def test_validate_reports_every_problem() -> None:
    templates = FileTemplates(
        {"raw": "{run}/{datasetType}/{exposure}", "calexp": "{run}/{datasetType}/{id}"},
        universe=UNIVERSE,
    )
    with pytest.raises(TemplateError) as info:
        templates.validate([RAW, CALEXP, CALEXP_WCS, FILTERED])
    message = str(info.value)
    assert message.startswith("3 dataset type(s)")
    assert "'raw'" in message
    assert "'calexp.wcs'" in message
    assert "No file template for" in message and "filtered" in message
    templates.validate([CALEXP])
