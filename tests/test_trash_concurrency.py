"""Several processes emptying one trash share the work: every artifact and row goes, once."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from databutler import Butler
from databutler.testing.butler import RepositoryFactory, file_datastore, populate


@pytest.mark.parametrize("repositories", ["sqlite-local", "postgresql-s3"], indirect=True)
def test_concurrent_emptiers_share_the_trash(repositories: RepositoryFactory) -> None:
    butler = repositories.create(run="r1")
    populate(butler, detectors=300)
    refs = butler.put_many(
        ({"d": d}, "thing", {"instrument": "HSC", "detector": d}) for d in range(300)
    )
    with butler.transaction():
        butler.datastore.trash(refs)
    clients = [Butler(butler.root, writeable=True) for _ in range(3)]
    results: list[Any] = [None] * len(clients)
    start = threading.Barrier(len(clients))

    def empty(i: int) -> None:
        start.wait()
        try:
            results[i] = clients[i].datastore.empty_trash()
        except BaseException as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=empty, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    emptied = [dataset_id for result in results for dataset_id in result]
    assert sorted(emptied) == sorted(r.id for r in refs)  # type: ignore[type-var]  # each reported by one emptier
    assert list(file_datastore(butler).store.list()) == []
    report = butler.verify()
    assert report.ok, report.problems
