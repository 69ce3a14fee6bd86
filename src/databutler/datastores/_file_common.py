"""What `FileDatastore` and its helper modules share; it imports none of them.

The file datastore is one class (``file.py``) and a helper module per idea
(``_file_ingest``, ``_file_journal``, ``_file_read``, ``_file_transfer``,
``_file_trash``, ``_file_trust``, ``_file_verify``, ``_file_zip``). They all
depend on this module, and the helpers never on ``file.py``:

- the record of one artifact, `StoredFileInfo`, and its table
  (`records_spec`, `table_name`, `NO_COMPONENT`);
- small rules about artifacts: which recorded paths lie outside the store
  (`is_direct`), which formatter reads a file by its extension
  (`formatter_by_suffix`), whether bytes read are as recorded
  (`check_bytes`), and cleaning up after a failed write
  (`delete_after_failure`);
- `FileDatastoreLike`: the datastore as its helpers see it, so that they
  can be typed without importing the class.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy

from .. import ddl
from .._dataset_ref import DatasetId, DatasetRef
from ..registry.interfaces import DatasetIdRef, DatastoreRegistryBridge, OpaqueTableStorage
from ..storage_classes import StorageClassRegistry
from ..transaction import DatastoreTransaction
from ._artifacts import corrupted
from ._base import DatastoreAbilities
from ._maintenance import TrashFailure
from .formatters import Formatter
from .resources import ResourceStore
from .templates import FileTemplate

__all__ = [
    "NO_COMPONENT",
    "FileDatastoreLike",
    "StoredFileInfo",
    "check_bytes",
    "delete_after_failure",
    "formatter_by_suffix",
    "is_direct",
    "records_spec",
    "table_name",
]

#: Component value of a record for the whole dataset (NULL cannot be in a key).
NO_COMPONENT = "__NULL_STRING__"


@dataclass(frozen=True, slots=True)
class StoredFileInfo:
    """What the datastore records about one artifact.

    ``path`` is the artifact (a zip archive for a dataset stored in one);
    ``member`` names the dataset's member in that archive, ``""`` for a
    plain file. ``checksum`` and ``file_size`` describe the dataset's own
    bytes (the member's, in an archive); ``file_size`` is -1 when unknown.
    """

    dataset_id: DatasetId
    component: str
    path: str
    formatter: str
    storage_class: str
    checksum: str | None
    file_size: int
    member: str = ""

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> StoredFileInfo:
        """Build from a records-table row."""
        return cls(**{name: record[name] for name in cls.__slots__})

    @classmethod
    def for_ref(
        cls,
        ref: DatasetRef,
        path: str,
        formatter: str,
        file_size: int,
        *,
        data: bytes | None = None,
        member: str = "",
        component: str = NO_COMPONENT,
    ) -> StoredFileInfo:
        """The record of ``ref``'s whole dataset stored at ``path`` (``member`` of an archive).

        The checksum is the SHA-256 of ``data`` when given (pass it only where
        checksums are recorded), else none. For one stored ``component`` of a
        disassembled dataset, the record names it; its storage class is still
        the dataset's (the component's is that storage class's).
        """
        return cls(
            dataset_id=ref.id,
            component=component,
            path=path,
            formatter=formatter,
            storage_class=ref.datasetType.storageClass,
            checksum=hashlib.sha256(data).hexdigest() if data is not None else None,
            file_size=file_size,
            member=member,
        )

    def to_record(self) -> dict[str, Any]:
        """The records-table row."""
        return {name: getattr(self, name) for name in self.__slots__}


def records_spec() -> ddl.TableSpec:
    """The records table of a file datastore."""
    from ..registry.interfaces import DatasetRecordStorageManager

    spec = ddl.TableSpec(
        [], doc="Artifacts of a file datastore, one row per dataset (and component)."
    )
    # dataset_id leads the key (lookups and the trash joins go by it). No
    # foreign key: records outlive their datasets until the trash is emptied.
    DatasetRecordStorageManager.addDatasetForeignKey(spec, primaryKey=True, constraint=False)
    for field in [
        ddl.FieldSpec("component", sqlalchemy.String, length=32, primaryKey=True),
        ddl.FieldSpec("path", sqlalchemy.String, length=1024, nullable=False),
        ddl.FieldSpec("formatter", sqlalchemy.String, length=64, nullable=False),
        ddl.FieldSpec("storage_class", sqlalchemy.String, length=64, nullable=False),
        ddl.FieldSpec("checksum", sqlalchemy.String, length=64, nullable=True),
        ddl.FieldSpec("file_size", sqlalchemy.BigInteger, nullable=False),
        # The member of a zip archive at ``path``, "" for a plain file. Apart
        # from ``path`` so that ``path`` always names the artifact to delete.
        ddl.FieldSpec("member", sqlalchemy.String, length=1024, nullable=False),
    ]:
        spec.fields.add(field)
    spec.indexes.add(ddl.IndexSpec("path"))
    return spec


def table_name(name: str) -> str:
    """The default records table of the datastore called ``name`` (a valid SQL name)."""
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in name.lower())
    table = f"{cleaned}_records"
    if not table[0].isalpha():
        table = f"ds_{table}"
    if len(table) > 63:
        table = f"ds_{hashlib.sha1(name.encode()).hexdigest()[:16]}_records"
    return table


def is_direct(path: str) -> bool:
    """Whether a recorded path points outside the store (``direct`` ingest)."""
    return path.startswith(("file://", "/"))


_SUFFIX_FORMATTERS = {
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".pickle": "pickle",
    ".pkl": "pickle",
    ".npy": "npy",
    ".parquet": "parquet",
    ".fits": "fits",
    ".fit": "fits",
}


def formatter_by_suffix(suffix: str) -> str:
    """The formatter that reads a file with extension ``suffix`` (``bytes`` if none does)."""
    return _SUFFIX_FORMATTERS.get(suffix.lower(), "bytes")


def check_bytes(info: StoredFileInfo, data: bytes, what: str, uri: str) -> None:
    """Refuse ``data`` read for ``info`` unless its size (and recorded checksum) match.

    Raises
    ------
    ArtifactCorruptedError
        Naming ``what`` (the dataset), ``uri``, and what differs.
    """
    if info.file_size >= 0 and len(data) != info.file_size:
        raise corrupted(what, uri, f"recorded {info.file_size} bytes, found {len(data)}")
    if info.checksum is not None and hashlib.sha256(data).hexdigest() != info.checksum:
        raise corrupted(what, uri, "its SHA-256 checksum differs from the recorded one")


def delete_after_failure(store: ResourceStore, paths: list[str], failure: BaseException) -> None:
    """Delete what a failed put or ingest wrote, keeping ``failure`` the error raised.

    An artifact that cannot be deleted too is noted on ``failure``; no record
    uses it, so the next put or ingest to its path replaces it.
    """
    for path in paths:
        try:
            store.delete(path)
        except Exception as exc:
            failure.add_note(f"Could not delete {path!r} after the failure: {exc}")


class FileDatastoreLike(Protocol):
    """`FileDatastore` as its helper modules use it.

    The helpers take the datastore through this protocol instead of
    importing its class; the underscored members are the datastore's
    internals that only they may call.
    """

    name: str
    _transaction: DatastoreTransaction | None
    _checksum: bool
    storage_classes: StorageClassRegistry

    @property
    def abilities(self) -> DatastoreAbilities:
        """What the datastore can do; ``transfer_modes`` are those `FileDatastore.ingest` takes."""
        ...

    @property
    def store(self) -> ResourceStore:
        """Where the artifacts are."""
        ...

    @property
    def records(self) -> OpaqueTableStorage:
        """The records table."""
        ...

    @property
    def bridge(self) -> DatastoreRegistryBridge:
        """The datastore's bridge to the registry."""
        ...

    def knows_many(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, bool]:
        """Whether the datastore has a record of each dataset."""
        ...

    @property
    def trash_failures(self) -> Sequence[TrashFailure]:
        """The artifacts the last `empty_trash` could not delete."""
        ...

    def forget(self, refs: Iterable[DatasetIdRef] | DatasetRef) -> None:
        """Forget datasets without deleting their artifacts."""
        ...

    def empty_trash(
        self, *, refs: Iterable[DatasetIdRef] | None = None, dry_run: bool = False
    ) -> list[DatasetId]:
        """Delete the artifacts of trashed datasets (only ``refs``' when given)."""
        ...

    def get(
        self,
        ref: DatasetRef,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """The dataset ``ref`` as its storage class (see `Datastore.get`)."""
        ...

    def _template(self, ref: DatasetRef) -> FileTemplate:
        """The validated file template of ``ref``'s dataset type."""
        ...

    def _configured_formatter(self, ref: DatasetRef) -> str | None:
        """The formatter configured for ``ref``'s dataset type or storage class, if any."""
        ...

    def _formatter(self, ref: DatasetRef, obj: Any) -> Formatter:
        """The formatter that writes ``obj`` as ``ref``."""
        ...

    def _infos(self, ids: list[DatasetId]) -> dict[DatasetId, list[StoredFileInfo]]:
        """The records of ``ids`` (trashed datasets' included)."""
        ...

    def _locate(self, refs: list[DatasetRef]) -> dict[DatasetId, list[StoredFileInfo]]:
        """The records of the held ``refs`` (and, under trust, predicted ones)."""
        ...

    def _read(self, path: str) -> bytes:
        """The bytes of the artifact at a recorded ``path``."""
        ...

    def _read_checked(self, info: StoredFileInfo, what: object) -> bytes:
        """The dataset's bytes, checked against its record."""
        ...

    def _uri(self, info: StoredFileInfo) -> str:
        """The URI of the artifact (and member) ``info`` describes."""
        ...

    def _write_new(self, path: str, data: bytes) -> None:
        """Write a new artifact, replacing a leftover no record uses."""
        ...

    def _record(self, refs: list[DatasetRef], infos: list[StoredFileInfo]) -> None:
        """Insert the bridge and records rows together."""
        ...

    def _undo_put(self, refs: list[DatasetRef], paths: list[str]) -> None:
        """Forget ``refs`` and delete the artifacts at ``paths``."""
        ...

    def _bring_in(
        self,
        refs: list[DatasetRef],
        infos: list[StoredFileInfo],
        artifacts: list[tuple[str, Callable[[], None]]],
    ) -> None:
        """Create ``artifacts``, then record ``refs`` and ``infos`` (all-or-nothing)."""
        ...

    def _crash_point(self, name: str) -> None:
        """Test hook: a point where fault tests may kill the process."""
        ...
