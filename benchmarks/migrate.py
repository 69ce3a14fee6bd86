"""Migrating a daf_butler repository of N datasets into databutler, in place.

Usage::

    python benchmarks/migrate.py --n 100000 [--batch-size 10000] [--keep DIR]

Generates a repository in daf_butler's layout — ``butler.yaml``, an SQLite
registry written directly with SQL in the tables and schema versions of
daf_butler's default managers (as ``tests/fixtures/daf_butler/repo`` has
them: ``butler_attributes`` with that repository's dimension universe,
daf_butler's version 8, and its dimension tables, ``collection``/``run``,
``dataset_type``, ``dataset``, a ``dataset_tags_*`` table,
``dataset_location``, ``file_datastore_records``) and one small JSON file
per dataset — then migrates it with ``Butler.migrate_from`` (``direct``: the
files stay where they are) into a new databutler repository on SQLite, with
the source's universe (the default).
Prints ``phase=migrate n=N seconds=S ops_per_s=X`` (the migration, its
final ``verify()`` included) and ``peak_rss_mb=M``. Fails (exit 1) unless
all N datasets were migrated and the destination verifies clean.
"""

from __future__ import annotations

import argparse
import resource
import sqlite3
import sys
import tempfile
import uuid
from pathlib import Path

from _common import (  # benchmarks/ is on the path as a script
    positive_int,
    timed,
    user_errors,
    verdict,
    warm_up,
)
from databutler import Butler

DETECTORS = 100
MANAGERS = {
    "attributes": ("lsst.daf.butler.registry.attributes.DefaultButlerAttributeManager", "1.0.1"),
    "dimensions": (
        "lsst.daf.butler.registry.dimensions.static.StaticDimensionRecordStorageManager",
        "6.0.2",
    ),
    "collections": (
        "lsst.daf.butler.registry.collections.synthIntKey.SynthIntKeyCollectionManager",
        "2.0.0",
    ),
    "datasets": (
        "lsst.daf.butler.registry.datasets.byDimensions._manager."
        "ByDimensionsDatasetRecordStorageManagerUUID",
        "2.0.0",
    ),
    "opaque": ("lsst.daf.butler.registry.opaque.ByNameOpaqueTableStorageManager", "0.2.0"),
    "datastores": (
        "lsst.daf.butler.registry.bridge.monolithic.MonolithicDatastoreRegistryBridgeManager",
        "0.2.1",
    ),
}
#: The daf_butler repository made by lsst-daf-butler for the tests: its universe (daf_butler
#: version 8) and its dimension tables' definitions are the generated repository's.
FIXTURE = (
    Path(__file__).resolve().parents[1]
    / "tests"
    / "fixtures"
    / "daf_butler"
    / "repo"
    / "gen3.sqlite3"
)
DIMENSION_TABLES = ("instrument", "physical_filter", "detector", "day_obs", "group", "exposure")
SCHEMA = """
CREATE TABLE butler_attributes (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE collection (collection_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
    type SMALLINT NOT NULL, doc TEXT);
CREATE TABLE run (collection_id BIGINT PRIMARY KEY, host TEXT, timespan_begin BIGINT,
    timespan_end BIGINT);
CREATE TABLE collection_chain (parent BIGINT, position SMALLINT, child BIGINT,
    PRIMARY KEY (parent, position));
CREATE TABLE dimension_graph_key (id INTEGER PRIMARY KEY);
CREATE TABLE dimension_graph_definition (dimension_graph_id BIGINT, dimension_name TEXT,
    PRIMARY KEY (dimension_graph_id, dimension_name));
CREATE TABLE dataset_type (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
    storage_class TEXT NOT NULL, dimensions_key BIGINT NOT NULL,
    tag_association_table TEXT NOT NULL, calibration_association_table TEXT);
CREATE TABLE dataset (id CHAR(32) PRIMARY KEY, dataset_type_id BIGINT NOT NULL,
    ingest_date BIGINT NOT NULL, run_id BIGINT NOT NULL);
CREATE INDEX dataset_fkidx_dataset_type_id ON dataset (dataset_type_id);
CREATE TABLE dataset_tags_00000001 (dataset_type_id BIGINT NOT NULL, dataset_id CHAR(32) NOT NULL,
    collection_id BIGINT NOT NULL, instrument VARCHAR(32) NOT NULL, detector BIGINT NOT NULL,
    exposure BIGINT NOT NULL, PRIMARY KEY (dataset_id, collection_id));
CREATE TABLE dataset_location (datastore_name TEXT, dataset_id CHAR(32),
    PRIMARY KEY (datastore_name, dataset_id));
CREATE INDEX dataset_location_fkidx_dataset_id ON dataset_location (dataset_id);
CREATE TABLE dataset_location_trash (dataset_id CHAR(32), datastore_name TEXT,
    PRIMARY KEY (dataset_id, datastore_name));
CREATE TABLE file_datastore_records (dataset_id CHAR(32) NOT NULL, path TEXT NOT NULL,
    formatter TEXT NOT NULL, storage_class TEXT NOT NULL, component VARCHAR(32) NOT NULL,
    checksum TEXT, file_size BIGINT, PRIMARY KEY (dataset_id, component));
"""
BUTLER_YAML = """\
datastore:
  cls: lsst.daf.butler.datastores.fileDatastore.FileDatastore
  records:
    table: file_datastore_records
  root: <butlerRoot>
registry:
  db: sqlite:///<butlerRoot>/gen3.sqlite3
"""
DAY_NS = 1704067200 * 10**9  # 2024-01-01, TAI nanoseconds since 1970


def generate(root: Path, n: int) -> None:
    """A daf_butler-layout repository of ``n`` datasets of ``raw`` (int, JSON files)."""
    root.mkdir(parents=True)
    (root / "butler.yaml").write_text(BUTLER_YAML)
    db = sqlite3.connect(root / "gen3.sqlite3")
    db.executescript(SCHEMA)
    fixture = sqlite3.connect(f"{FIXTURE.as_uri()}?mode=ro", uri=True)
    for table in DIMENSION_TABLES:
        (ddl,) = fixture.execute(
            "SELECT sql FROM sqlite_master WHERE name = ?", (table,)
        ).fetchone()
        db.execute(ddl)
    (universe,) = fixture.execute(
        "SELECT value FROM butler_attributes WHERE name = 'config:dimensions.json'"
    ).fetchone()
    fixture.close()
    attributes = [("config:dimensions.json", universe)]
    for kind, (cls, version) in MANAGERS.items():
        attributes += [(f"config:registry.managers.{kind}", cls), (f"version:{cls}", version)]
    db.executemany("INSERT INTO butler_attributes VALUES (?, ?)", attributes)
    exposures = (n + DETECTORS - 1) // DETECTORS
    db.execute(
        "INSERT INTO instrument (name, visit_max, exposure_max, detector_max, class_name) "
        "VALUES ('Cam', 1000000, 1000000, ?, 'cam.Cam')",
        (DETECTORS,),
    )
    db.execute("INSERT INTO physical_filter VALUES ('Cam', 'r1', 'r')")
    db.executemany(
        "INSERT INTO detector (instrument, id, full_name, purpose) VALUES ('Cam', ?, ?, 'SCIENCE')",
        [(d, f"S{d:03d}") for d in range(DETECTORS)],
    )
    db.execute(
        "INSERT INTO day_obs VALUES ('Cam', 20240101, ?, ?)", (DAY_NS, DAY_NS + 86400 * 10**9)
    )
    db.executemany(
        "INSERT INTO \"group\" VALUES ('Cam', ?)", [(f"g{e}",) for e in range(exposures)]
    )
    db.executemany(
        'INSERT INTO exposure (instrument, id, day_obs, "group", physical_filter, obs_id, '
        "exposure_time, timespan_begin, timespan_end) "
        "VALUES ('Cam', ?, 20240101, ?, 'r1', ?, 30.0, ?, ?)",
        [
            (e, f"g{e}", f"CAM_{e}", DAY_NS + e * 60 * 10**9, DAY_NS + (e * 60 + 30) * 10**9)
            for e in range(exposures)
        ],
    )
    db.execute("INSERT INTO collection VALUES (1, 'Cam/raw/all', 1, NULL)")
    db.execute("INSERT INTO run VALUES (1, NULL, NULL, NULL)")
    db.execute("INSERT INTO dimension_graph_key VALUES (1)")
    db.executemany(
        "INSERT INTO dimension_graph_definition VALUES (1, ?)",
        [("instrument",), ("detector",), ("exposure",)],
    )
    db.execute(
        "INSERT INTO dataset_type VALUES (1, 'raw', 'int', 1, 'dataset_tags_00000001', NULL)"
    )
    formatter = "lsst.daf.butler.formatters.json.JsonFormatter"
    for start in range(0, n, 10_000):
        datasets, tags, locations, records = [], [], [], []
        for i in range(start, min(n, start + 10_000)):
            exposure, detector = divmod(i, DETECTORS)
            dataset_id = uuid.uuid4().hex
            path = f"Cam/raw/all/raw/{exposure}/raw_Cam_{exposure}_S{detector:03d}.json"
            file = root / path
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(str(i))
            datasets.append((dataset_id, 1, DAY_NS, 1))
            tags.append((1, dataset_id, 1, "Cam", detector, exposure))
            locations.append(("FileDatastore@<butlerRoot>", dataset_id))
            records.append(
                (dataset_id, path, formatter, "int", "__NULL_STRING__", None, len(str(i)))
            )
        db.executemany("INSERT INTO dataset VALUES (?, ?, ?, ?)", datasets)
        db.executemany("INSERT INTO dataset_tags_00000001 VALUES (?, ?, ?, ?, ?, ?)", tags)
        db.executemany("INSERT INTO dataset_location VALUES (?, ?)", locations)
        db.executemany("INSERT INTO file_datastore_records VALUES (?, ?, ?, ?, ?, ?, ?)", records)
        db.commit()
    db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=positive_int, default=10_000, help="datasets (default 10000)")
    parser.add_argument(
        "--batch-size", type=positive_int, default=10_000, help="datasets per batch"
    )
    parser.add_argument("--keep", type=Path, help="make the repositories here (new) and keep them")
    args = parser.parse_args(argv)
    failures = 0
    with tempfile.TemporaryDirectory(prefix="databutler-bench-migrate-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        warm_up(work, seconds=1.0)
        source = work / "daf_butler"
        generate(source, args.n)
        with user_errors(), timed("migrate", args.n):
            report = Butler.migrate_from(source, work / "databutler", batch_size=args.batch_size)
        if report.migrated != args.n or not report.ok:
            print(
                f"# migrated {report.migrated} of {args.n}; verify: {report.verify}",
                file=sys.stderr,
            )
            failures += 1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak_rss_mb={peak:.0f}", flush=True)
    return verdict(failures)


if __name__ == "__main__":
    sys.exit(main())
