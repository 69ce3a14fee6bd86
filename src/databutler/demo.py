"""A walk through a databutler repository on the embedded default (SQLite and local files).

Run ``databutler demo DIR`` (or ``python -m databutler.demo DIR``). It
creates a repository in ``DIR``, then puts, gets, ingests, queries, asks
where datasets are stored, prunes, empties the trash and verifies, printing
each step.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["main", "run_demo"]


def run_demo(directory: str | Path, *, echo: Callable[[str], None] = print) -> None:
    """Build a repository in the new or empty ``directory`` and walk through it.

    Raises
    ------
    AlreadyExistsError
        If ``directory`` holds a repository, or any other file, already.
    """
    from . import Butler, FileDataset, UnresolvedRef
    from ._exceptions import AlreadyExistsError, InvalidArgumentError

    if not str(directory):
        raise InvalidArgumentError(
            "The demo's directory is empty: give a path (use . for the current directory)."
        )
    root = Path(directory).absolute()
    if root.is_dir() and not (root / "butler.yaml").exists() and any(root.iterdir()):
        # A repository there is refused by Butler.create with its own message.
        raise AlreadyExistsError(
            f"{root} holds files already; the demo makes its repository in a new or empty "
            "directory: choose another."
        )
    echo(f"1. Create a repository in {root} (SQLite registry, files on local disk)")
    butler = Butler.create(root, run="demo/run1")
    with butler:
        butler.insert_dimension_records("instrument", {"instrument": "HSC"})
        butler.insert_dimension_records(
            "detector", *({"instrument": "HSC", "detector": d} for d in range(1, 9))
        )
        butler.register_dataset_type("catalog", ["detector"], "StructuredDataDict")
        echo("   registered instrument HSC, detectors 1-8 and dataset type 'catalog'")

        echo("2. Put three catalogs (one per detector)")
        refs = [
            butler.put(
                {"detector": d, "sources": [d * 10, d * 10 + 1]},
                "catalog",
                instrument="HSC",
                detector=d,
            )
            for d in (1, 2, 3)
        ]
        for ref in refs:
            echo(f"   put {ref.datasetType.name} detector={ref.dataId['detector']} id={ref.id}")

        echo("3. Get one back by data ID")
        echo(f"   catalog detector=2 -> {butler.get('catalog', instrument='HSC', detector=2)}")

        echo("4. Ingest two files that already exist")
        with tempfile.TemporaryDirectory(prefix="databutler-demo-incoming-") as incoming:
            datasets = []
            for d in (4, 5):
                path = Path(incoming, f"catalog_{d}.json")
                path.write_text(f'{{"detector": {d}, "sources": []}}')
                to_ingest = UnresolvedRef("catalog", {"instrument": "HSC", "detector": d})
                datasets.append(FileDataset(str(path), [to_ingest]))
            ingested = butler.ingest(*datasets, transfer="copy")
        echo(f"   ingested {len(ingested)} files by copy")

        echo("5. Query: catalogs with detector > 2")
        found = list(butler.query_datasets("catalog", where="detector > 2"))
        echo(f"   found detectors {sorted(r.dataId['detector'] for r in found)}")

        echo("6. Where are they stored?")
        every = list(butler.query_datasets("catalog"))
        places = butler.where(every)
        held = sum(1 for names in places.values() if "files" in names)
        echo(f"   datastore 'files' holds {held} of {len(every)} catalogs")

        echo("7. Prune detectors 1 and 2 (unstore and purge)")
        doomed = [r for r in every if r.dataId["detector"] in (1, 2)]
        result = butler.prune(doomed, purge=True)
        echo(f"   unstored {result.unstored}, purged {result.purged}")

        echo("8. Empty the trash (prune already emptied its part)")
        echo(f"   {butler.empty_trash()} more artifacts deleted")

        echo("9. Verify that registry, records and files agree")
        report = butler.verify()
        echo(f"   checked {report.checked} records: {'all good' if report.ok else report.counts()}")
    left = len(list(Butler(root, collections="demo/run1").query_datasets("catalog")))
    echo(f"Done: {left} catalogs remain in {root}.")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: ``python -m databutler.demo [DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "directory", nargs="?", help="where to create the repository (default: a temporary one)"
    )
    args = parser.parse_args(argv)
    if args.directory:
        run_demo(args.directory)
        return 0
    with tempfile.TemporaryDirectory(prefix="databutler-demo-") as tmp:
        run_demo(Path(tmp) / "repo")
    print("The repository was temporary and is gone; give a directory to keep one.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
