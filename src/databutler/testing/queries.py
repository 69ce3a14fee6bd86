"""A small fixed repository for tests of ``where`` queries, the same on every backend.

`where_repository` fills a new repository with a few instruments, detectors,
filters, exposures and ``raw`` datasets, with fields of every kind the
``where`` language compares (integers, floats, strings, booleans, datetimes)
and some NULLs; `answers` runs one expression through the three query entry
points of the `Butler` and returns what they found in a form comparable
across repositories (data IDs and records, not dataset ids).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from importlib import resources
from typing import Any

from .._exceptions import DatabutlerError
from ..butler import Butler
from ..dimensions import DimensionUniverse

__all__ = ["RAW", "answers", "snapshot", "where_repository", "where_universe"]

RAW = "raw"
"""The dataset type in the repository (dimensions exposure and detector)."""

_UTC = datetime.UTC


def where_universe() -> DimensionUniverse:
    """The version-1 default dimensions, with a boolean field ``science`` on exposures."""
    text = resources.files("databutler.dimensions").joinpath("default_universe_v1.json").read_text()
    config = json.loads(text)
    config["dimensions"]["exposure"]["metadata"].append({"name": "science", "type": "bool"})
    return DimensionUniverse.from_config(config)


def where_repository(root: str, **create: Any) -> Butler:
    """Create and fill the repository at ``root`` (``create`` goes to `Butler.create`)."""
    butler = Butler.create(root, universe=where_universe(), run="run", **create)
    butler.insert_dimension_records(
        "instrument",
        {"instrument": "HSC", "visit_max": 100, "detector_max": 6, "class_name": "hsc"},
        {"instrument": "LSST", "visit_max": None, "detector_max": 3, "class_name": "lsst"},
    )
    butler.insert_dimension_records("band", {"band": "g"}, {"band": "r"})
    butler.insert_dimension_records(
        "physical_filter",
        {"instrument": "HSC", "physical_filter": "HSC-G", "band": "g"},
        {"instrument": "HSC", "physical_filter": "HSC-R", "band": "r"},
        {"instrument": "LSST", "physical_filter": "r_57", "band": "r"},
    )
    names = ["d0", "d1", "Zeta", "é", "it's", None]
    butler.insert_dimension_records(
        "detector",
        *(
            {"instrument": "HSC", "detector": d, "full_name": names[d], "purpose": "science"}
            for d in range(6)
        ),
        *(
            {"instrument": "LSST", "detector": d, "full_name": f"R{d}", "purpose": "wavefront"}
            for d in range(3)
        ),
    )
    butler.insert_dimension_records(
        "day_obs",
        {"instrument": "HSC", "day_obs": 20240101},
        {"instrument": "HSC", "day_obs": 20240102},
        {"instrument": "LSST", "day_obs": 20240102},
    )
    begin = datetime.datetime(2024, 1, 1, 22, 0, tzinfo=_UTC)
    exposures: list[dict[str, Any]] = [
        {"exposure": 1, "exposure_time": 30.0, "science": True, "filter": "HSC-G", "day": 1},
        {"exposure": 2, "exposure_time": 15.5, "science": False, "filter": "HSC-R", "day": 1},
        {"exposure": 3, "exposure_time": None, "science": None, "filter": "HSC-R", "day": 2},
        {"exposure": 4, "exposure_time": 2.0**53, "science": True, "filter": "HSC-G", "day": 2},
    ]
    butler.insert_dimension_records(
        "exposure",
        *(
            {
                "instrument": "HSC",
                "exposure": e["exposure"],
                "physical_filter": e["filter"],
                "day_obs": 20240100 + e["day"],
                "obs_id": f"HSC{e['exposure']:04d}",
                "exposure_time": e["exposure_time"],
                "datetime_begin": begin + datetime.timedelta(hours=e["exposure"]),
                "science": e["science"],
            }
            for e in exposures
        ),
        {
            "instrument": "LSST",
            "exposure": 1,
            "physical_filter": "r_57",
            "day_obs": 20240102,
            "obs_id": "LSST0001",
            "exposure_time": 30.0,
            "datetime_begin": None,
            "science": False,
        },
    )
    butler.register_dataset_type(RAW, ["exposure", "detector"], "StructuredDataDict")
    for instrument, exposure, detector in [
        ("HSC", 1, 0),
        ("HSC", 1, 1),
        ("HSC", 2, 2),
        ("HSC", 3, 3),
        ("HSC", 4, 4),
        ("HSC", 4, 5),
        ("LSST", 1, 0),
        ("LSST", 1, 2),
    ]:
        butler.put(
            {"exposure": exposure, "detector": detector},
            RAW,
            instrument=instrument,
            exposure=exposure,
            detector=detector,
        )
    return butler


def _key(value: Any) -> tuple[str, str]:
    return (type(value).__name__, repr(value))


def answers(butler: Butler, where: Any, bind: Any = None) -> dict[str, Any]:
    """What the three query entry points find for ``where`` and ``bind``.

    Datasets are given by data ID, records by their values, each list sorted,
    so that two repositories filled by `where_repository` can be compared.
    An entry point that refuses the query with a `DatabutlerError` gives
    ``("refused", <error class name>)``; any other exception propagates.
    """
    queries: dict[str, Callable[[], list[Any]]] = {
        "datasets": lambda: sorted(
            tuple(map(_key, ref.dataId.values()))
            for ref in butler.query_datasets(RAW, collections="run", where=where, bind=bind)
        ),
        "data_ids": lambda: sorted(
            tuple(map(_key, data_id.values()))
            for data_id in butler.query_data_ids(["exposure", "detector"], where=where, bind=bind)
        ),
        "records": lambda: sorted(
            tuple(_key(value) for _, value in sorted(record.to_dict().items()))
            for record in butler.query_dimension_records("exposure", where=where, bind=bind)
        ),
    }
    found: dict[str, Any] = {}
    for name, query in queries.items():
        try:
            found[name] = query()
        except DatabutlerError as exc:
            found[name] = ("refused", type(exc).__name__)
    return found


def snapshot(butler: Butler) -> dict[str, list[Any]]:
    """Everything the repository holds that a query could change: all the answers of
    an unconstrained query, and the dataset ids."""
    everything = answers(butler, None)
    everything["ids"] = sorted(str(ref.id) for ref in butler.query_datasets(RAW, collections="run"))
    return everything
