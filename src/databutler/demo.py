"""A walk through the registry–datastore bridge on the embedded default (SQLite).

Run ``python -m databutler.demo [--root DIR]``. It creates a repository,
records where datasets are stored, deletes some in two phases (trash, then
empty) and reopens the repository to show that the state persisted.
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy

from . import ddl
from .registry import RegistryManagerTypes, open_database
from .registry.interfaces import FakeDatasetRef


@dataclass(frozen=True)
class StoredFile:
    """What a file datastore records about one artifact."""

    dataset_id: uuid.UUID
    path: str

    @classmethod
    def from_record(cls, row: dict[str, Any]) -> StoredFile:
        return cls(row["dataset_id"], row["path"])


def run(root: Path) -> None:
    """Run the demo in the (new or empty) directory ``root``."""
    uri = f"sqlite:///{root / 'registry.sqlite3'}"
    print(f"Creating a repository: {uri}")
    repo = RegistryManagerTypes().makeRepo(open_database(uri))

    ids = [uuid.uuid4() for _ in range(6)]
    refs = [FakeDatasetRef(i) for i in ids]
    repo.datasets.insert(ids)  # type: ignore[attr-defined]
    print(f"Registered {len(ids)} datasets.")

    # A file datastore: a persistent bridge plus its own records table.
    files = repo.datastores.register("files")
    spec = ddl.TableSpec(
        [ddl.FieldSpec("path", sqlalchemy.String, length=1024, nullable=False)],
        indexes=[ddl.IndexSpec("path")],
    )
    type(repo.datasets).addDatasetForeignKey(spec, primaryKey=True, constraint=False)
    records = repo.opaque.register("demo_file_records", spec)
    paths = [
        "raw_1.fits",
        "raw_2.fits",
        "bundle.zip",
        "bundle.zip",
        "calexp_5.fits",
        "calexp_6.fits",
    ]
    with repo.db.transaction():  # records and locations go in together, or not at all
        records.insert(*({"dataset_id": i, "path": p} for i, p in zip(ids, paths, strict=True)))
        files.insert(refs)
    # An in-memory cache: an ephemeral bridge, gone when the process ends.
    cache = repo.datastores.register("cache", ephemeral=True)
    cache.insert(refs[:2])

    print("\nWhere is each dataset? (locate: one query for all of them)")
    for dataset_id, where in repo.datastores.locate(refs).items():
        print(f"  {dataset_id}  {sorted(where)}")
    print(f"findDatastores(first) -> {sorted(repo.datastores.findDatastores(refs[0]))}")

    print("\nRemoving datasets 2 and 3 (phase 1: trash, in the same transaction as the delete)")
    doomed = refs[1:3]
    with repo.db.transaction():
        files.moveToTrash(doomed, None)
        cache.moveToTrash(doomed, None)
        repo.datasets.delete(r.id for r in doomed)  # type: ignore[attr-defined]
    print(f"  files now holds {len(files.check(ids))} of {len(ids)}")

    print("Phase 2: empty the trash, deleting artifacts no live dataset still uses")
    with files.emptyTrash(records, StoredFile, record_column="path") as (trashed, keep):
        for ref, info in trashed:
            action = "keep  " if info is not None and info.path in (keep or ()) else "delete"
            print(f"  {action} {info.path if info else '-':<14} of {ref}")
    print("  (bundle.zip is kept: dataset 4 still lives in it)")

    print("\nReopening the repository read-only:")
    reopened = RegistryManagerTypes().loadRepo(open_database(uri, writeable=False))
    held = reopened.datastores.register("files").check(ids)
    print(f"  'files' holds {len(held)} datasets; trash rows left: ", end="")
    with reopened.datastores.register("files").emptyTrash(dry_run=True) as (left, _):
        print(len(list(left)))
    print("Done.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--root", type=Path, help="empty directory for the repository (default: a temporary one)"
    )
    args = parser.parse_args(argv)
    if args.root is not None:
        args.root.mkdir(parents=True, exist_ok=True)
        run(args.root)
        return
    with tempfile.TemporaryDirectory(prefix="databutler-demo-") as tmp:
        run(Path(tmp))


if __name__ == "__main__":
    main()
