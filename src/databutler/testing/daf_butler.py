"""Checks shared by the tests of daf_butler exports and migrations against ``expected.json``.

``expected.json`` (of ``tests/fixtures/daf_butler``) holds daf_butler's own
answers about the datasets it wrote: type, storage class, run, data ID, each
file's SHA-256 and its content in plain form.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..butler import Butler
from ..dimensions import DataCoordinate


def plain(value: Any) -> Any:
    """A read value in the form expected.json gives it."""
    if isinstance(value, np.ndarray):
        return {"array": value.tolist(), "dtype": str(value.dtype)}
    if type(value).__module__.startswith("pyarrow"):
        return {"table": {name: value.column(name).to_pylist() for name in value.column_names}}
    if type(value).__module__.startswith("astropy"):  # ArrowAstropy read as its storage class
        return {"table": {name: value[name].tolist() for name in value.colnames}}
    return value


def check_dataset(butler: Butler, ref: Any, expected: Mapping[str, Any], uri: str) -> Path:
    """``ref`` (whose artifact is at ``uri``) is the dataset daf_butler described; its path."""
    assert ref.datasetType.name == expected["dataset_type"]
    assert ref.datasetType.storageClass == expected["storage_class"]
    assert ref.run == expected["run"]
    assert isinstance(ref.dataId, DataCoordinate)
    assert dict(ref.dataId.required.items()) == expected["data_id"]
    path = Path(uri.removeprefix("file://"))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == expected["sha256"]
    assert plain(butler.get(ref)) == expected["value"]
    return path
