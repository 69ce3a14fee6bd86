"""Exporting in daf_butler's format: read back by databutler, checked against upstream's reader.

The source repository holds what daf_butler itself exported (the fixture of
tests/fixtures/daf_butler, imported) and datasets databutler wrote, in RUN,
TAGGED, nested CHAINED and CALIBRATION collections. An export of it in
daf_butler's format must

- import back into a fresh databutler repository with every id, data ID,
  collection membership, validity range, record and byte equal (SQLite with
  local files, PostgreSQL with S3, a chained datastore);
- follow the schema of daf_butler's reader (``transfers/_yaml.py`` of
  lsst-daf-butler: its entries, keys, value types and YAML tags), checked
  here without daf_butler;
- and, where lsst-daf-butler is installed (``DATABUTLER_DAF_BUTLER_PYTHON``,
  else ``/tmp/dafvenv/bin/python``), be imported by daf_butler itself into a
  new repository, whose contents are compared with the source.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import textwrap
import uuid
import zipfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from databutler import (
    Butler,
    CollectionType,
    ExportFormatError,
    InvalidArgumentError,
)
from databutler._collection_type import Timespan
from databutler.butler._daf_butler_export import tai_to_utc
from databutler.butler._daf_butler_writer import utc_to_tai
from databutler.cli import main
from databutler.dimensions import DimensionUniverse
from databutler.testing.butler import RepositoryFactory, artifact_of
from databutler.testing.dimensions import universe_v1

FIXTURES = Path(__file__).parent / "fixtures" / "daf_butler"
UTC = datetime.UTC
DAF_PYTHON = Path(os.environ.get("DATABUTLER_DAF_BUTLER_PYTHON", "/tmp/dafvenv/bin/python"))
COLLECTIONS_ALL = "*"


def at(year: int, month: int, day: int, *rest: int) -> datetime.datetime:
    hour, minute, second, micro = (*rest, 0, 0, 0, 0)[:4]
    return datetime.datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def build_source(butler: Butler) -> None:
    """daf_butler's fixture export, and datasets, records and collections databutler made."""
    butler.import_(FIXTURES / "export_v1", skip_unknown_fields=True)
    butler.insert_dimension_records(
        "visit",
        {
            "instrument": "DummyCam",
            "visit": 7,
            "physical_filter": "d-g",
            "day_obs": 20240101,
            "name": "v7",
            "exposure_time": 60.0,
            "datetime_begin": at(2024, 1, 1, 3, 0, 0, 250),
            "datetime_end": at(2024, 1, 1, 3, 1, 0),
        },
    )
    # Open-ended: daf_butler reads the two times as one timespan, unbounded at the end.
    butler.insert_dimension_records(
        "exposure",
        {"instrument": "DummyCam", "exposure": 103, "physical_filter": "d-r",
         "day_obs": 20240102, "obs_id": "DC_103", "datetime_begin": at(2024, 1, 2, 5)},
    )  # fmt: skip
    butler.register_dataset_type("note", ["exposure"], "StructuredDataDict")
    butler.put({"seen": True}, "note", run="u/me/run", instrument="DummyCam", exposure=103)
    # A band no physical filter has: daf_butler keeps no band records, databutler makes one.
    butler.insert_dimension_records("band", {"band": "i"})
    butler.register_dataset_type("coadd_note", ["patch", "band"], "StructuredDataDict")
    butler.put({"depth": 26.1}, "coadd_note", run="u/me/run", skymap="dummy", tract=0,
               patch=1, band="i")  # fmt: skip
    butler.register_dataset_type("visit_summary", ["visit", "detector"], "StructuredDataDict")
    butler.register_dataset_type("dark", ["detector"], "StructuredDataDict", is_calibration=True)
    butler.register_dataset_type("table", ["detector"], "ArrowTable")
    butler.registry.registerRun("u/me/run", doc="Made by databutler.")
    summaries = [
        butler.put({"detector": d, "mean": 0.5 * d}, "visit_summary", run="u/me/run",
                   instrument="DummyCam", visit=7, detector=d)
        for d in range(2)
    ]  # fmt: skip
    darks = [
        butler.put({"dark": d}, "dark", run="u/me/run", instrument="DummyCam", detector=d)
        for d in range(2)
    ]
    butler.put(pa.table({"x": [1, 2], "y": ["a", "b"]}), "table", run="u/me/run",
               instrument="DummyCam", detector=2)  # fmt: skip
    butler.put(7, "counter", run="u/me/run", instrument="DummyCam")
    butler.registry.registerCollection("u/me/tagged", CollectionType.TAGGED, doc="Two of mine.")
    butler.registry.associate("u/me/tagged", [summaries[1], darks[0]])
    butler.registry.registerCollection("u/me/darks", CollectionType.CALIBRATION)
    butler.registry.certify("u/me/darks", darks, Timespan(None, at(2024, 3, 1, 12, 30, 0, 5)))
    butler.registry.registerCollection("u/me/chain", CollectionType.CHAINED, doc="Mine first.")
    butler.registry.setCollectionChain("u/me/chain", ["u/me/tagged", "DummyCam/defaults"])


def everything(butler: Butler) -> dict[str, Any]:
    """What an export must carry, read from a repository (artifacts as SHA-256)."""
    registry = butler.registry
    datasets = {}
    for dataset_type in registry.queryDatasetTypes():
        refs = list(registry.stream_datasets(dataset_type.name, collections=runs(butler)))
        for ref in refs:
            store, path = artifact_of(butler, ref)
            datasets[str(ref.id)] = (
                dataset_type.name,
                dataset_type.storageClass,
                dataset_type.isCalibration,
                ref.run,
                {k: ref.dataId[k] for k in dataset_type_required(butler, dataset_type.name)},
                hashlib.sha256(store.read(path)).hexdigest(),
            )
    collections: dict[str, Any] = {}
    for name in registry.queryCollections():
        kind = registry.getCollectionType(name)
        entry: dict[str, Any] = {
            "type": kind.name,
            "doc": registry.getCollectionDocumentation(name),
        }
        if kind is CollectionType.CHAINED:
            entry["children"] = list(registry.getCollectionChain(name))
        elif kind is CollectionType.TAGGED:
            entry["members"] = sorted(
                str(ref.id)
                for t in registry.queryDatasetTypes()
                for ref in registry.stream_datasets(t.name, collections=name)
            )
        elif kind is CollectionType.CALIBRATION:
            entry["certifications"] = sorted(
                (str(i), s.begin, s.end) for i, s in registry.query_certifications(name)
            )
        collections[name] = entry
    records = {
        name: sorted((r.to_dict() for r in registry.queryDimensionRecords(name)), key=str)
        for name in butler.dimensions.names
    }
    return {"datasets": datasets, "collections": collections, "records": records}


def dataset_type_required(butler: Butler, name: str) -> tuple[str, ...]:
    return butler.dimensions.group(butler.registry.getDatasetType(name).dimensions).required


def runs(butler: Butler) -> list[str]:
    return butler.registry.queryCollections(types=[CollectionType.RUN])


@pytest.fixture
def source(repositories: RepositoryFactory) -> Butler:
    butler = repositories.create("source", universe=universe_v1())
    build_source(butler)
    return butler


@pytest.fixture
def local_source(tmp_path: Path) -> Iterator[Butler]:
    butler = Butler.create(universe=universe_v1(), root=str(tmp_path / "local-source"))
    build_source(butler)
    yield butler
    butler.close()


def export_all(butler: Butler, target: Path) -> Path:
    return butler.export(
        target, collections=butler.query_collections(COLLECTIONS_ALL), format="daf_butler"
    )


# -- round trip ------------------------------------------------------------------------------


@pytest.mark.parametrize("as_zip", [False, True], ids=["directory", "zip"])
def test_round_trip_keeps_everything(
    repositories: RepositoryFactory, source: Butler, tmp_path: Path, as_zip: bool
) -> None:
    written = export_all(source, tmp_path / ("out.zip" if as_zip else "out"))
    assert written.is_file() if as_zip else (written / "export.yaml").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no staging left
    target = repositories.create("target", universe=universe_v1())
    # No skip_unknown_fields: what databutler writes, it reads back whole.
    imported = target.import_(written)
    want = everything(source)
    got = everything(target)
    assert sorted(str(r.id) for r in imported) == sorted(want["datasets"])
    assert got["datasets"] == want["datasets"]
    assert got["collections"] == want["collections"]
    assert got["records"] == want["records"]
    # The validity ranges still choose the calibrations.
    for butler in (source, target):
        hit = butler.registry.findDataset(
            "dark", instrument="DummyCam", detector=1, collections="u/me/darks",
            timespan=Timespan(at(2024, 3, 1, 12, 30, 0, 4), at(2024, 3, 1, 12, 30, 0, 5)),
        )  # fmt: skip
        assert hit is not None and butler.get(hit) == {"dark": 1}
        assert butler.registry.findDataset(
            "dark", instrument="DummyCam", detector=1, collections="u/me/darks",
            timespan=Timespan(at(2024, 3, 1, 12, 30, 0, 5), None),
        ) is None  # fmt: skip
    assert target.verify().ok


def test_export_of_refs_carries_their_runs_only(local_source: Butler, tmp_path: Path) -> None:
    refs = list(local_source.registry.stream_datasets("visit_summary", collections="u/me/run"))
    written = local_source.export(tmp_path / "out", refs=refs, format="daf_butler")
    document = load(written / "export.yaml")
    collections = [e for e in document["data"] if e["type"] == "collection"]
    assert [(e["name"], e["collection_type"]) for e in collections] == [("u/me/run", "RUN")]
    assert not [e for e in document["data"] if e["type"] == "associations"]
    target = Butler.create(universe=universe_v1(), root=str(tmp_path / "target"))
    try:
        assert sorted(r.id for r in target.import_(written)) == sorted(r.id for r in refs)
    finally:
        target.close()


def test_export_pointing_at_the_files(local_source: Butler, tmp_path: Path) -> None:
    """transfer=None: the export lists the repository's files by URI, copies nothing."""
    refs = [
        ref
        for t in local_source.registry.queryDatasetTypes()
        if t.name != "table"
        for ref in local_source.registry.stream_datasets(t.name, collections=runs(local_source))
    ]
    written = local_source.export(tmp_path / "out", refs=refs, format="daf_butler", transfer=None)
    assert [p.name for p in written.iterdir()] == ["export.yaml"]
    paths = [r["path"] for e in load(written / "export.yaml")["data"] if e["type"] == "dataset"
             for r in e["records"]]  # fmt: skip
    assert len(paths) == len(refs) and all(p.startswith("file:///") for p in paths)
    target = Butler.create(universe=universe_v1(), root=str(tmp_path / "target"))
    try:
        assert sorted(r.id for r in target.import_(written)) == sorted(r.id for r in refs)
        assert {r.id: target.get(r) for r in refs if r.datasetType.name == "summary"} == {
            r.id: local_source.get(r) for r in refs if r.datasetType.name == "summary"
        }
    finally:
        target.close()
    # A .parquet file would have to be renamed .parq for daf_butler: not possible in place.
    with pytest.raises(ExportFormatError, match=r"named \*\.parq for .*\(transfer='copy'\)"):
        local_source.export(tmp_path / "out2", collections=["u/me/run"], format="daf_butler",
                            transfer=None)  # fmt: skip
    assert not (tmp_path / "out2").exists()


def test_chain_children_come_along(local_source: Butler, tmp_path: Path) -> None:
    written = local_source.export(tmp_path / "out", collections=["u/me/chain"], format="daf_butler")
    document = load(written / "export.yaml")
    names = [e["name"] for e in document["data"] if e["type"] == "collection"]
    # Every chain after its children, recursively: daf_butler sets chains in file order.
    assert set(names) >= {"u/me/chain", "u/me/tagged", "DummyCam/defaults", "DummyCam/calib",
                          "u/someone/best", "DummyCam/raw/all"}  # fmt: skip
    assert names.index("DummyCam/defaults") < names.index("u/me/chain")
    assert names.index("u/someone/best") < names.index("DummyCam/defaults")


def test_utc_to_tai_inverts_tai_to_utc() -> None:
    for when in (at(1972, 1, 1), at(2016, 12, 31, 23, 59, 59, 999999), at(2017, 1, 1),
                 at(2024, 1, 2, 3, 59, 23, 123457), at(2090, 6, 1, 0, 0, 0, 1)):  # fmt: skip
        assert tai_to_utc(utc_to_tai(when)) == when
    assert utc_to_tai(at(2024, 1, 1)) == "2024-01-01 00:00:37.000000000"
    with pytest.raises(ValueError, match="before 1972"):
        utc_to_tai(at(1971, 12, 31, 23, 59, 59))


@settings(max_examples=300, deadline=None)
@given(
    when=st.datetimes(
        min_value=datetime.datetime(1972, 1, 1),
        max_value=datetime.datetime(2200, 1, 1),
        timezones=st.just(UTC),
    )
)
def test_utc_to_tai_round_trips(when: datetime.datetime) -> None:
    text = utc_to_tai(when)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}000", text)
    assert tai_to_utc(text) == when


# -- the schema of daf_butler's reader -------------------------------------------------------

_EXTENSIONS = {
    "JsonFormatter": ".json",
    "YamlFormatter": ".yaml",
    "PickleFormatter": ".pickle",
    "ParquetFormatter": ".parq",
}
_TAGS = {"!uuid", "!butler_time/tai/iso", "!lsst.daf.butler.Timespan"}
_TAI = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{9}")


class _Tagged:
    def __init__(self, tag: str, value: Any) -> None:
        self.tag, self.value = tag, value


def load(file: Path) -> Any:
    """The export as daf_butler's reader sees it: safe YAML, its three tags kept as _Tagged."""

    class Loader(yaml.SafeLoader):  # type: ignore[misc]
        pass

    def scalar(loader: Any, node: Any) -> _Tagged:
        return _Tagged(node.tag, loader.construct_scalar(node))

    def mapping(loader: Any, node: Any) -> _Tagged:
        return _Tagged(node.tag, loader.construct_mapping(node, deep=True))

    Loader.add_constructor("!uuid", scalar)
    Loader.add_constructor("!butler_time/tai/iso", scalar)
    Loader.add_constructor("!lsst.daf.butler.Timespan", mapping)
    return yaml.load(file.read_text(), Loader=Loader)


def is_uuid(value: Any) -> bool:
    return isinstance(value, _Tagged) and value.tag == "!uuid" and bool(uuid.UUID(value.value))


def is_time(value: Any) -> bool:
    return (
        isinstance(value, _Tagged)
        and value.tag == "!butler_time/tai/iso"
        and _TAI.fullmatch(value.value) is not None
    )


def keys(entry: dict[str, Any], required: set[str], optional: frozenset[str] = frozenset()) -> None:
    assert required <= set(entry) <= required | optional, (entry, required, optional)


def check_schema(document: Any) -> None:
    """The keys and value types daf_butler's ``YamlRepoImportBackend`` reads, entry by entry."""
    assert list(document) == [
        "description", "version", "universe_version", "universe_namespace", "data",
    ]  # fmt: skip
    assert document["description"] == "Butler Data Repository Export"
    # The reader refuses another major version, or a newer minor one, than its 1.0.x.
    assert re.fullmatch(r"1\.0\.\d+", document["version"])
    assert document["universe_namespace"] == "daf_butler"
    # Below 6 the reader migrates records of older universes: these are current.
    assert isinstance(document["universe_version"], int) and document["universe_version"] >= 6
    types_seen: set[str] = set()
    runs_seen: set[str] = set()
    collections_seen: set[str] = set()
    dataset_ids: set[str] = set()
    for entry in document["data"]:
        kind = entry["type"]
        if kind == "dimension":
            keys(entry, {"type", "element", "records"})
            assert isinstance(entry["element"], str) and entry["records"]
            for record in entry["records"]:
                for name, value in record.items():
                    assert isinstance(name, str)
                    assert (
                        value is None
                        or is_time(value)
                        or isinstance(value, str | int | float | bytes)
                    ), (name, value)
        elif kind == "collection":
            kinds = {"RUN", "TAGGED", "CHAINED", "CALIBRATION"}
            assert entry["collection_type"] in kinds
            if entry["collection_type"] == "RUN":
                # The reader takes these three keys of every RUN (a missing one is a KeyError).
                keys(entry, {"type", "collection_type", "name", "host", "timespan_begin",
                             "timespan_end"}, frozenset({"doc"}))  # fmt: skip
                runs_seen.add(entry["name"])
            elif entry["collection_type"] == "CHAINED":
                keys(entry, {"type", "collection_type", "name", "children"}, frozenset({"doc"}))
                # A chain's children are registered before it (the reader sets chains in order).
                assert all(isinstance(c, str) for c in entry["children"])
                assert set(entry["children"]) <= collections_seen, entry
            else:
                keys(entry, {"type", "collection_type", "name"}, frozenset({"doc"}))
            assert isinstance(entry.get("doc", ""), str)
            collections_seen.add(entry["name"])
        elif kind == "dataset_type":
            keys(
                entry,
                {"type", "name", "dimensions", "storage_class"},
                frozenset({"is_calibration"}),
            )
            assert all(isinstance(d, str) for d in entry["dimensions"])
            assert isinstance(entry["storage_class"], str)
            assert isinstance(entry.get("is_calibration", False), bool)
            types_seen.add(entry["name"])
        elif kind == "dataset":
            keys(entry, {"type", "dataset_type", "run", "records"})
            assert entry["dataset_type"] in types_seen and entry["run"] in runs_seen
            for record in entry["records"]:
                keys(record, {"dataset_id", "data_id", "path"}, frozenset({"formatter"}))
                assert all(is_uuid(i) for i in record["dataset_id"])
                assert len(record["data_id"]) == len(record["dataset_id"])
                assert all(isinstance(d, dict) for d in record["data_id"])
                assert isinstance(record["path"], str)
                # The reader imports the formatter by its class name.
                assert re.fullmatch(r"lsst(\.\w+)+\.\w+Formatter", record["formatter"])
                # daf_butler's formatters check the file's extension at ingest.
                extension = _EXTENSIONS.get(record["formatter"].rsplit(".", 1)[-1])
                assert extension is None or record["path"].endswith(extension), record
                dataset_ids.update(i.value for i in record["dataset_id"])
        elif kind == "associations":
            assert entry["collection"] in collections_seen
            if entry["collection_type"] == "TAGGED":
                keys(entry, {"type", "collection", "collection_type", "dataset_ids"})
                assert all(is_uuid(i) and i.value in dataset_ids for i in entry["dataset_ids"])
            else:
                assert entry["collection_type"] == "CALIBRATION"
                keys(entry, {"type", "collection", "collection_type", "validity_ranges"})
                for validity in entry["validity_ranges"]:
                    keys(validity, {"timespan", "dataset_ids"})
                    span = validity["timespan"]
                    assert isinstance(span, _Tagged) and span.tag == "!lsst.daf.butler.Timespan"
                    assert set(span.value) == {"begin", "end"}
                    assert all(v is None or is_time(v) for v in span.value.values())
                    assert all(
                        is_uuid(i) and i.value in dataset_ids for i in validity["dataset_ids"]
                    )
        else:
            raise AssertionError(f"entry of unknown type {kind!r}")


def test_yaml_follows_daf_butlers_schema(local_source: Butler, tmp_path: Path) -> None:
    written = export_all(local_source, tmp_path / "out")
    text = (written / "export.yaml").read_text()
    # Only daf_butler's tags (and !!binary for bytes), no anchors or aliases.
    tags = {node.tag for node in _nodes(yaml.compose(text)) if not node.tag.startswith("tag:yaml")}
    assert tags == _TAGS
    assert not re.search(r"^\s*-?\s*[&*]id\d+", text, re.MULTILINE)
    document = load(written / "export.yaml")
    check_schema(document)
    data = document["data"]
    by_element = {e["element"]: e["records"] for e in data if e["type"] == "dimension"}
    # The inverse of the import's mapping: own keys, TAI times, bytes, groups, no bands.
    assert "band" not in by_element
    assert by_element["instrument"] == [
        {"name": "DummyCam", "visit_max": 1000, "detector_max": 4, "class_name": "dummy.DummyCam"}
    ]
    assert by_element["skymap"][0]["hash"] == hashlib.sha1(b"dummy sky map").digest()
    exposure = next(r for r in by_element["exposure"] if r["id"] == 102)
    assert exposure["group"] == "102"
    assert exposure["datetime_begin"].value == "2024-01-02 04:00:00.123457000"
    assert {"instrument": "DummyCam", "name": "102"} in by_element["group"]
    visit = by_element["visit"][0]
    assert visit["datetime_begin"].value == "2024-01-01 03:00:37.000250000"
    formatters = {r["formatter"] for e in data if e["type"] == "dataset" for r in e["records"]}
    assert formatters == {
        "lsst.daf.butler.formatters.yaml.YamlFormatter",
        "lsst.daf.butler.formatters.json.JsonFormatter",
        "lsst.daf.butler.formatters.pickle.PickleFormatter",
        "lsst.daf.butler.formatters.parquet.ParquetFormatter",
    }
    darks = next(e for e in data if e["type"] == "associations" and e["collection"] == "u/me/darks")
    span = darks["validity_ranges"][0]["timespan"].value
    assert span["begin"] is None and span["end"].value == "2024-03-01 12:30:37.000005000"


def _nodes(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _nodes(item)
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _nodes(key)
            yield from _nodes(value)


# -- daf_butler itself -----------------------------------------------------------------------

_UPSTREAM_IMPORT = textwrap.dedent(
    """
    import hashlib, json, sys, tempfile
    from pathlib import Path
    from lsst.daf.butler import Butler, CollectionType

    def when(t):
        if t is None:
            return None
        t = t.utc
        t.precision = 6
        return t.isot

    def plain(value):
        if isinstance(value, bytes):
            return value.hex()
        if hasattr(value, "begin") and hasattr(value, "end"):
            return [when(value.begin), when(value.end)]
        return value

    def value(obj):
        if hasattr(obj, "colnames"):  # astropy
            return {"table": {n: obj[n].tolist() for n in obj.colnames}}
        if hasattr(obj, "column_names"):  # pyarrow
            return {"table": {n: obj.column(n).to_pylist() for n in obj.column_names}}
        if hasattr(obj, "tolist"):  # numpy
            return {"array": obj.tolist(), "dtype": str(obj.dtype)}
        return obj

    source = Path(sys.argv[1])
    out = {"datasets": {}, "collections": {}, "records": {}, "values": {}}
    with tempfile.TemporaryDirectory() as tmp:
        Butler.makeRepo(tmp)
        butler = Butler.from_config(tmp, writeable=True)
        butler.import_(directory=str(source), filename=str(source / "export.yaml"),
                       transfer="copy")
        registry = butler.registry
        for ref in registry.queryDatasets(..., collections=...):
            out["datasets"][str(ref.id)] = [
                ref.datasetType.name, ref.datasetType.storageClass_name,
                ref.datasetType.isCalibration(), ref.run, dict(ref.dataId.required),
                hashlib.sha256(butler.getURI(ref).read()).hexdigest(),
            ]
            out["values"][str(ref.id)] = value(butler.get(ref))
        for name in registry.queryCollections():
            kind = registry.getCollectionType(name)
            entry = {"type": kind.name, "doc": registry.getCollectionDocumentation(name) or None}
            if kind is CollectionType.CHAINED:
                entry["children"] = list(registry.getCollectionChain(name))
            elif kind is CollectionType.TAGGED:
                entry["members"] = sorted(
                    str(r.id) for r in registry.queryDatasets(..., collections=name))
            elif kind is CollectionType.CALIBRATION:
                entry["certifications"] = sorted(
                    [str(a.ref.id), when(a.timespan.begin), when(a.timespan.end)]
                    for t in registry.queryDatasetTypes() if t.isCalibration()
                    for a in registry.queryDatasetAssociations(t, collections=name))
            out["collections"][name] = entry
        for element in sys.argv[2:]:
            out["records"][element] = sorted(
                ({k: plain(v) for k, v in r.toDict().items() if k != "region"}
                 for r in registry.queryDimensionRecords(element)), key=str)
    print(json.dumps(out))
    """
)


@pytest.mark.skipif(
    not DAF_PYTHON.exists(),
    reason=f"lsst-daf-butler is not installed ({DAF_PYTHON} does not exist); set "
    "DATABUTLER_DAF_BUTLER_PYTHON to a Python that has it to run this check",
)
def test_daf_butler_imports_it(local_source: Butler, tmp_path: Path) -> None:
    written = export_all(local_source, tmp_path / "out")
    elements = ["instrument", "detector", "group", "exposure", "visit", "skymap", "patch"]
    done = subprocess.run(
        [str(DAF_PYTHON), "-c", _UPSTREAM_IMPORT, str(written), *elements],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    want = everything(local_source)

    def iso(when: datetime.datetime | None) -> str | None:
        return None if when is None else when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")

    assert {i: tuple(v) for i, v in got["datasets"].items()} == want["datasets"]
    # daf_butler reads every dataset back as the value databutler holds.
    refs = [
        ref
        for t in local_source.registry.queryDatasetTypes()
        for ref in local_source.registry.stream_datasets(t.name, collections=runs(local_source))
    ]
    assert got["values"] == {str(ref.id): plain(local_source.get(ref)) for ref in refs}
    assert sorted(got["collections"]) == sorted(want["collections"])
    for name, entry in want["collections"].items():
        if "certifications" in entry:
            entry = {**entry, "certifications": [[i, iso(b), iso(e)] for i, b, e in
                                                 entry["certifications"]]}  # fmt: skip
        assert got["collections"][name] == entry, name
    records = got["records"]
    assert records["instrument"] == [
        {"name": "DummyCam", "visit_max": 1000, "visit_system": None, "exposure_max": None,
         "detector_max": 4, "class_name": "dummy.DummyCam"}
    ]  # fmt: skip
    assert [(r["id"], r["full_name"]) for r in records["detector"]] == [
        (0, "S00"), (1, "S01"), (2, "S02")
    ]  # fmt: skip
    assert sorted(r["name"] for r in records["group"]) == ["101", "102", "103"]
    exposures = {
        r["id"]: (r["group"], r["physical_filter"], r["day_obs"], r["obs_id"], r["timespan"])
        for r in records["exposure"]
    }
    for record in local_source.query_dimension_records("exposure"):
        row = record.to_dict()
        assert exposures[row["exposure"]] == (
            str(row["exposure"]), row["physical_filter"], row["day_obs"], row["obs_id"],
            [iso(row["datetime_begin"]), iso(row["datetime_end"])],
        )  # fmt: skip
    assert records["visit"][0]["timespan"] == [
        "2024-01-01T03:00:00.000250", "2024-01-01T03:01:00.000000"
    ]  # fmt: skip
    assert records["skymap"][0]["hash"] == hashlib.sha1(b"dummy sky map").hexdigest()
    assert sorted((r["id"], r["cell_x"], r["cell_y"]) for r in records["patch"]) == [
        (0, 0, 0), (1, 1, 0)
    ]  # fmt: skip


def plain(obj: Any) -> Any:
    """A value in the JSON form the daf_butler script prints."""
    if isinstance(obj, np.ndarray):
        return {"array": obj.tolist(), "dtype": str(obj.dtype)}
    if isinstance(obj, pa.Table):
        return {"table": {n: obj.column(n).to_pylist() for n in obj.column_names}}
    if hasattr(obj, "colnames"):  # astropy
        return {"table": {n: obj[n].tolist() for n in obj.colnames}}
    return json.loads(json.dumps(obj))


# -- what daf_butler cannot hold -------------------------------------------------------------


def _universe(change: Any) -> DimensionUniverse:
    text = resources.files("databutler.dimensions").joinpath("default_universe_v1.json").read_text()
    config = json.loads(text)
    config["namespace"] = "mine"
    change(config["dimensions"])
    return DimensionUniverse.from_config(config)


def _refused(butler: Butler, tmp_path: Path, *parts: str) -> None:
    target = tmp_path / "refused"
    with pytest.raises(ExportFormatError) as caught:
        export_all(butler, target)
    for part in parts:
        assert part in str(caught.value)
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".refused")]


def test_dimension_daf_butler_lacks_is_refused(tmp_path: Path) -> None:
    def add_filter_wheel(dimensions: dict[str, Any]) -> None:
        dimensions["filter_wheel"] = {
            "key": {"name": "id", "type": "int"},
            "requires": ["instrument"],
        }

    butler = Butler.create(root=str(tmp_path / "repo"), universe=_universe(add_filter_wheel))
    try:
        butler.insert_dimension_records("instrument", {"instrument": "Cam"})
        butler.insert_dimension_records("filter_wheel", {"instrument": "Cam", "filter_wheel": 1})
        butler.register_dataset_type("state", ["filter_wheel"], "StructuredDataDict")
        butler.put({"ok": True}, "state", run="r", instrument="Cam", filter_wheel=1)
        _refused(
            butler, tmp_path,
            "dimension 'filter_wheel' (used by dataset type(s) 'state'), which it does not have",
            "Nothing was written", "format='yaml'",
        )  # fmt: skip
    finally:
        butler.close()


def test_record_field_daf_butler_lacks_is_refused(tmp_path: Path) -> None:
    def add_gain(dimensions: dict[str, Any]) -> None:
        dimensions["detector"]["metadata"].append({"name": "gain", "type": "float"})

    butler = Butler.create(root=str(tmp_path / "repo"), universe=_universe(add_gain))
    try:
        butler.insert_dimension_records("instrument", {"instrument": "Cam"})
        butler.insert_dimension_records(
            "detector",
            {"instrument": "Cam", "detector": 1, "gain": 1.5},
            {"instrument": "Cam", "detector": 2},  # null: carries nothing, not refused
        )
        butler.register_dataset_type("flat", ["detector"], "StructuredDataDict")
        for d in (1, 2):
            butler.put({"d": d}, "flat", run="r", instrument="Cam", detector=d)
        _refused(butler, tmp_path, "no record field detector.gain (set in 1 record(s))")
    finally:
        butler.close()


def test_formatter_daf_butler_lacks_is_refused(tmp_path: Path) -> None:
    import numpy as np

    butler = Butler.create(universe=universe_v1(), root=str(tmp_path / "repo"))
    try:
        butler.insert_dimension_records("instrument", {"instrument": "Cam"})
        butler.register_dataset_type("array", ["instrument"], "NumpyArray")
        butler.put(np.arange(4), "array", run="r", instrument="Cam")  # written as .npy
        _refused(butler, tmp_path, "'array'", "files of databutler's 'npy' formatter",
                 "json, parquet, pickle, yaml")  # fmt: skip
    finally:
        butler.close()


def test_storage_class_daf_butler_lacks_is_refused(tmp_path: Path) -> None:
    butler = Butler.create(universe=universe_v1(), root=str(tmp_path / "repo"))
    try:
        butler.insert_dimension_records("instrument", {"instrument": "Cam"})
        butler.register_dataset_type("zero_point", ["instrument"], "float")
        butler.put(25.5, "zero_point", run="r", instrument="Cam")  # JSON: the formatter is fine
        _refused(butler, tmp_path, "no storage class 'float' (dataset type 'zero_point')")
    finally:
        butler.close()


def test_records_daf_butler_would_name_files_alike_are_refused(tmp_path: Path) -> None:
    butler = Butler.create(universe=universe_v1(), root=str(tmp_path / "repo"))
    try:
        butler.insert_dimension_records("instrument", {"instrument": "Cam"})
        butler.insert_dimension_records(
            "detector",
            *({"instrument": "Cam", "detector": d} for d in range(3)),  # no full_name
            {"instrument": "Cam", "detector": 3, "full_name": "S3"},
        )
        butler.register_dataset_type("flat", ["detector"], "StructuredDataDict")
        for d in range(4):
            butler.put({"d": d}, "flat", run="r", instrument="Cam", detector=d)
        # daf_butler's own import would write detectors 0-2's flats to one file.
        _refused(butler, tmp_path, "detectors 0, 1, 2 of instrument 'Cam' have no full_name",
                 "write several datasets to one file")  # fmt: skip
    finally:
        butler.close()


def test_times_before_1972_are_refused(tmp_path: Path) -> None:
    butler = Butler.create(universe=universe_v1(), root=str(tmp_path / "repo"))
    try:
        butler.insert_dimension_records("instrument", {"instrument": "Cam"})
        butler.insert_dimension_records("band", {"band": "g"})
        butler.insert_dimension_records(
            "physical_filter", {"instrument": "Cam", "physical_filter": "g", "band": "g"}
        )
        butler.insert_dimension_records("day_obs", {"instrument": "Cam", "day_obs": 19700101})
        butler.insert_dimension_records(
            "exposure",
            {"instrument": "Cam", "exposure": 1, "physical_filter": "g", "day_obs": 19700101,
             "datetime_begin": at(1970, 1, 1, 1)},
        )  # fmt: skip
        butler.register_dataset_type("raw", ["exposure"], "StructuredDataDict")
        butler.put({"x": 1}, "raw", run="r", instrument="Cam", exposure=1)
        _refused(butler, tmp_path, "exposure.datetime_begin", "before 1972")
    finally:
        butler.close()


def test_unknown_format_is_refused(local_source: Butler, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="use one of yaml, json, daf_butler"):
        local_source.export(tmp_path / "out", collections=["u/me/run"], format="daf-butler")
    assert not (tmp_path / "out").exists()


def test_cli_exports_and_explains_without_traceback(local_source: Butler, tmp_path: Path) -> None:
    runner = CliRunner()
    root = str(local_source.root)
    local_source.close()
    out = tmp_path / "cli.zip"
    done = runner.invoke(main, ["export", root, str(out), "--format", "daf_butler"])
    assert done.exit_code == 0, done.output
    with zipfile.ZipFile(out) as archive:
        assert archive.read("export.yaml").startswith(b"description: Butler Data Repository")
    again = runner.invoke(main, ["export", root, str(tmp_path / "x"), "--format", "daf-butler"])
    assert again.exit_code != 0 and "Traceback" not in again.output
    assert "daf_butler" in again.output
    # A refusal of the writer: one line naming the problem, no traceback, nothing written.
    import numpy as np

    with Butler(root, writeable=True) as butler:
        butler.register_dataset_type("array", ["instrument"], "NumpyArray")
        butler.put(np.arange(2), "array", run="u/me/arrays", instrument="DummyCam")
    refused = runner.invoke(main, ["export", root, str(tmp_path / "y"), "--format", "daf_butler"])
    assert refused.exit_code != 0
    assert "Traceback" not in refused.output and "'npy' formatter" in refused.output
    assert not (tmp_path / "y").exists()
    shutil.rmtree(tmp_path / "x", ignore_errors=True)
