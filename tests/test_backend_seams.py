"""The Butler reaches the datastores only through their interface (issue 14, item 1).

No module of the Butler or the CLI imports a backend's concrete classes or a
private backend module: `verify` asks each leaf datastore for
`Datastore.verify_storage`, a writeable open calls `Datastore.recover_moves`,
and `empty_trash` reads `Datastore.trash_failures`. A datastore written
against the interface alone is checked and reported like the built-in ones.
"""

from __future__ import annotations

import ast
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import pytest

import databutler
from databutler.butler import Problem, VerifyReport
from databutler.butler._verify import KINDS, recover_moves, verify_datastore
from databutler.datastores import (
    PROBLEM_KINDS,
    EmptyTrashResult,
    InMemoryDatastore,
    StorageCheck,
    StorageProblem,
    TrashFailure,
)
from databutler.registry import SqlRegistry
from databutler.registry.interfaces import DatastoreRegistryBridgeManager
from databutler.testing.database import database_factory

_PACKAGE = Path(databutler.__file__).parent

#: What a module outside the datastores may import from them: the package's face and
#: the resource stores' face (their interface, `store_for`, path checks).
_PUBLIC_MODULES = {"databutler.datastores", "databutler.datastores.resources"}

#: The backends' concrete classes.
_CONCRETE = {
    "FileDatastore",
    "ChainedDatastore",
    "InMemoryDatastore",
    "LocalStore",
    "S3Store",
    "MemoryStore",
}


def _imports(path: Path) -> Iterator[tuple[str, list[str], int]]:
    """``(module, names, line)`` of each import of ``path``, relative ones made absolute."""
    package = ".".join(("databutler", *path.relative_to(_PACKAGE).parent.parts))
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield module, [alias.name for alias in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno


@pytest.mark.parametrize("layer", ["butler", "cli"])
def test_no_backend_class_is_imported_outside_the_datastores(layer: str) -> None:
    offending = []
    for path in sorted((_PACKAGE / layer).rglob("*.py")):
        for module, names, line in _imports(path):
            if not module.startswith("databutler.datastores"):
                continue
            where = f"{path.relative_to(_PACKAGE)}:{line}"
            if module not in _PUBLIC_MODULES:
                offending.append(f"{where} imports module {module}")
            offending.extend(f"{where} imports {n}" for n in names if n in _CONCRETE)
    assert offending == []


def test_maintenance_value_types_are_public() -> None:
    import databutler.datastores._file_trash as trash_module

    assert KINDS is PROBLEM_KINDS
    assert trash_module.TrashFailure is TrashFailure  # the old place still names them
    assert trash_module.EmptyTrashResult is EmptyTrashResult
    failure = TrashFailure("files", "a/b.json", (uuid.uuid4(),), "denied")
    result = EmptyTrashResult(3, (failure,))
    assert result == 3 and result.failures == (failure,) and not result.ok
    assert EmptyTrashResult(2).ok


class _Drifting(InMemoryDatastore):
    """A datastore that reports what it is told to, as a third party's might."""

    def __init__(
        self, name: str, bridge_manager: DatastoreRegistryBridgeManager, *, check: StorageCheck
    ) -> None:
        super().__init__(name, bridge_manager)
        self.check = check
        self.calls: list[dict[str, object]] = []
        self.fail_recovery = False

    def verify_storage(
        self,
        *,
        repair: bool = False,
        delete_unknown: bool = False,
        checksums: bool = False,
        keep_newer: float = 0.0,
        reading: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> StorageCheck:
        self.calls.append(
            {"repair": repair, "delete_unknown": delete_unknown, "checksums": checksums}
        )
        with reading():
            pass
        return self.check

    def recover_moves(self) -> None:
        if self.fail_recovery:
            raise OSError("storage unreachable")


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[SqlRegistry]:
    with database_factory("sqlite-memory", tmp_path) as databases:
        yield SqlRegistry.create(databases.open())


def test_verify_gathers_what_the_datastore_reports(registry: SqlRegistry) -> None:
    lost, trashed = uuid.uuid4(), uuid.uuid4()
    check = StorageCheck(
        problems=[
            StorageProblem("missing_artifact", "drifting", lost, "a.json", "no such file"),
            StorageProblem("stale_trash", "drifting", trashed, None, "trashed"),
        ],
        repaired={"missing_artifact": 1},
        checked=7,
    )
    datastore = _Drifting("drifting", registry.datastore_bridges, check=check)
    report = verify_datastore(
        registry.db, datastore, repair=True, delete_unknown=False, checksums=True
    )
    assert isinstance(report, VerifyReport)
    assert datastore.calls == [{"repair": True, "delete_unknown": False, "checksums": True}]
    assert report.problems == [
        Problem("missing_artifact", "drifting", lost, "a.json", "no such file"),
        Problem("stale_trash", "drifting", trashed, None, "trashed"),
    ]
    assert report.repaired == {"missing_artifact": 1} and report.checked == 7
    assert [p.kind for p in report.unrepaired] == ["stale_trash"]


def test_recovery_never_fails_the_open(
    registry: SqlRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    datastore = _Drifting("drifting", registry.datastore_bridges, check=StorageCheck())
    datastore.fail_recovery = True
    with caplog.at_level(logging.ERROR):
        recover_moves(datastore)
    assert "Could not roll back interrupted moves of datastore 'drifting'" in caplog.text


def test_a_datastore_without_storage_checks_reports_nothing(registry: SqlRegistry) -> None:
    datastore = InMemoryDatastore("memory", registry.datastore_bridges)
    assert datastore.verify_storage(repair=True) == StorageCheck()
    datastore.recover_moves()  # nothing to roll back, and no error
    assert tuple(datastore.trash_failures) == ()
