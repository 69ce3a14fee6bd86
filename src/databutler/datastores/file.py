"""`FileDatastore`: datasets as files, on local disk or S3, with records in the registry.

Each dataset's artifact lives at a path from its file template plus the
formatter's extension, under a `~databutler.datastores.resources.ResourceStore`
root. What the datastore knows about an artifact is a row of its records
table (``dataset_id, component, path, formatter, storage_class, checksum,
file_size``) in the registry database.

``put`` serialises first, registers the undo, writes the artifact atomically
(temporary name, then rename), and only then inserts the records and the
bridge rows in one database transaction; if that fails, the new artifacts are
deleted again, so a failure leaves neither a file nor a row.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import sqlalchemy

from .. import ddl
from .._dataset_ref import DatasetId, DatasetRef
from .._exceptions import ConflictError
from ..registry.interfaces import DatastoreRegistryBridgeManager, OpaqueTableStorage
from ._base import DatasetNotStoredError, Datastore, _id
from .formatters import Formatter, formatter_for, formatter_for_object
from .resources import LocalStore, ResourceStore, store_for
from .templates import DEFAULT_TEMPLATE, FileTemplate, FileTemplates

__all__ = ["FileDatastore", "StoredFileInfo"]

#: Component value of a record for the whole dataset (NULL cannot be in a key).
NO_COMPONENT = "__NULL_STRING__"


@dataclass(frozen=True, slots=True)
class StoredFileInfo:
    """What the datastore records about one artifact."""

    dataset_id: DatasetId
    component: str
    path: str
    formatter: str
    storage_class: str
    checksum: str | None
    file_size: int

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> StoredFileInfo:
        """Build from a records-table row."""
        return cls(**{name: record[name] for name in cls.__slots__})

    def to_record(self) -> dict[str, Any]:
        """The records-table row."""
        return asdict(self)


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
    ]:
        spec.fields.add(field)
    spec.indexes.add(ddl.IndexSpec("path"))
    return spec


class FileDatastore(Datastore):
    """Datasets as files under ``root`` (a directory, ``s3://bucket/prefix`` or ``mem://``).

    Parameters
    ----------
    name : `str`
        The datastore's name (also used for its records table).
    bridge_manager : `DatastoreRegistryBridgeManager`
        The registry's bridge manager.
    root : `str` or `ResourceStore`
        Where the artifacts go.
    templates : `~collections.abc.Mapping` [`str`, `str`], optional
        File templates by dataset type, dimensions or storage class, with
        ``default``; `DEFAULT_TEMPLATE` when not given.
    formatters : `~collections.abc.Mapping` [`str`, `str`], optional
        Formatter name (``json``, ``pickle``, ``npy``, ...) by dataset type or
        storage class name; otherwise chosen from the object's type.
    checksum : `bool`, optional
        Record a SHA-256 checksum of every artifact.
    fsync : `bool`, optional
        Flush each artifact to the device before recording it (local roots;
        see `LocalStore`). Off by default.
    records_table : `str`, optional
        Name of the records table; ``<name>_records`` (sanitised) by default.
    """

    transfer_modes: ClassVar[frozenset[str]] = frozenset(
        {"copy", "move", "link", "hardlink", "symlink", "relsymlink"}
    )

    def __init__(
        self,
        name: str,
        bridge_manager: DatastoreRegistryBridgeManager,
        root: str | ResourceStore,
        *,
        templates: Mapping[str, str] | None = None,
        formatters: Mapping[str, str] | None = None,
        checksum: bool = False,
        fsync: bool = False,
        records_table: str | None = None,
    ) -> None:
        super().__init__(name, bridge_manager)
        self.store = root if isinstance(root, ResourceStore) else store_for(root)
        if fsync and isinstance(self.store, LocalStore):
            self.store.fsync = True
        self._templates = FileTemplates(
            dict(templates) if templates else {"default": DEFAULT_TEMPLATE},
            universe=bridge_manager.universe,
        )
        self._formatters = dict(formatters or {})
        for formatter in self._formatters.values():
            formatter_for(formatter)  # unknown names fail here, listing valid ones
        self._checksum = checksum
        table = records_table or _table_name(self.name)
        self.records: OpaqueTableStorage = bridge_manager.opaque.register(table, records_spec())
        self._validated: dict[str, FileTemplate] = {}

    # -- put ---------------------------------------------------------------

    def _template(self, ref: DatasetRef) -> FileTemplate:
        datasetType = ref.datasetType
        key = getattr(datasetType, "name", str(datasetType))
        template = self._validated.get(key)
        if template is None:
            template = self._templates.template_for(datasetType)
            template.validate(datasetType, self._bridge_manager.universe)
            self._validated[key] = template
        return template

    def _formatter(self, ref: DatasetRef, obj: Any) -> Formatter:
        name = self._configured_formatter(ref)
        return formatter_for(name) if name is not None else formatter_for_object(obj)

    def put_many(self, items: Iterable[tuple[Any, DatasetRef]]) -> None:
        # docstring inherited
        prepared = []
        for obj, ref in items:
            _id(ref)
            formatter = self._formatter(ref, obj)
            data = formatter.to_bytes(obj)  # serialise before touching storage
            path = self._template(ref).format(ref) + formatter.extension
            info = StoredFileInfo(
                dataset_id=_id(ref),
                component=NO_COMPONENT,
                path=path,
                formatter=formatter.name,
                storage_class=str(getattr(ref.datasetType, "storageClass", "")),
                checksum=hashlib.sha256(data).hexdigest() if self._checksum else None,
                file_size=len(data),
            )
            prepared.append((ref, info, data))
        written: list[str] = []
        recorded: list[DatasetRef] = []  # filled only once this call has recorded them
        if self._transaction is not None:
            # Registered before writing: if anything after this fails, the
            # enclosing transaction's rollback deletes what this call wrote
            # and forgets what it recorded, and nothing else.
            self._transaction.registerUndo("put", self._undo_put, recorded, written)
        try:
            for _, info, data in prepared:
                self._write_new(info.path, data)
                written.append(info.path)
            _crash_point("after_write")
            self._record([ref for ref, _, _ in prepared], [info for _, info, _ in prepared])
            recorded.extend(ref for ref, _, _ in prepared)
        except BaseException:
            self._delete_artifacts(written)
            raise

    def _write_new(self, path: str, data: bytes) -> None:
        """Write a new artifact; one left by an interrupted put (no record uses it) is replaced."""
        try:
            self.store.write(path, data)
        except FileExistsError as exc:
            if next(self.records.fetch(path=path), None) is not None:
                raise ConflictError(
                    f"Datastore {self.name!r} already has an artifact at {path!r}, used by "
                    "another dataset; nothing was stored. Check the file template: it must "
                    "give each dataset its own path."
                ) from exc
            # No record points at it: a put that died between writing and
            # recording left it behind. Taking its place loses nothing.
            self.store.write(path, data, overwrite=True)

    def _record(self, refs: list[DatasetRef], infos: list[StoredFileInfo]) -> None:
        """Insert the bridge and records rows together (in the caller's transaction if any)."""
        with self._bridge_manager.transaction():
            self.bridge.insert(refs)
            self.records.insert(*(info.to_record() for info in infos))

    # -- ingest ----------------------------------------------------------------

    def ingest(
        self,
        items: Iterable[tuple[str | os.PathLike[str], DatasetRef]],
        *,
        transfer: str | None = "auto",
        formatter: str | None = None,
    ) -> None:
        """Bring existing files in as datasets (all-or-nothing).

        Parameters
        ----------
        items : `~collections.abc.Iterable` [`tuple` [`str`, `DatasetRef`]]
            A file path and the dataset it holds.
        transfer : `str` or `None`, optional
            ``copy``, ``move``, ``link``, ``hardlink``, ``symlink``,
            ``relsymlink`` (local roots), ``direct`` (record the outside path
            as it is; the file is never deleted by databutler), ``None`` (the
            file is inside the root already) or ``auto`` (``None`` for files
            inside the root, else ``copy``).
        formatter : `str`, optional
            How to read the files; by default from the dataset type's
            configuration, else from the file extension.

        Raises
        ------
        FileNotFoundError
            If a file does not exist.
        ValueError
            For an unknown transfer mode, or ``None`` with a file outside the root.
        """
        modes = {None, "auto", "direct", *self.transfer_modes}
        if transfer not in modes:
            valid = ", ".join(sorted(str(m) for m in modes))
            raise ValueError(f"Unknown transfer mode {transfer!r}; use one of {valid}.")
        local_root = self.store.directory if isinstance(self.store, LocalStore) else None
        plans = []
        for source, ref in items:
            path = Path(source).absolute()
            if not path.is_file():
                raise FileNotFoundError(f"Cannot ingest {path}: no such file.")
            inside = local_root is not None and path.is_relative_to(local_root)
            mode = transfer if transfer != "auto" else (None if inside else "copy")
            if mode is None and not inside:
                raise ValueError(
                    f"{path} is outside the datastore root {self.store.root}; choose a transfer "
                    "mode (copy, move, link, ...) to bring it in."
                )
            if mode not in (None, "direct", "copy") and not isinstance(self.store, LocalStore):
                raise ValueError(
                    f"Transfer mode {mode!r} needs a local root, not {self.store.root}."
                )
            name = formatter or self._configured_formatter(ref) or _formatter_by_suffix(path.suffix)
            formatter_for(name)
            if mode is None:
                assert local_root is not None
                stored = path.relative_to(local_root).as_posix()
            elif mode == "direct":
                stored = path.as_uri()
            else:
                stored = self._template(ref).format(ref) + path.suffix
            data = path.read_bytes() if self._checksum else None
            plans.append((path, ref, mode, stored, name, data))
        written: list[str] = []
        moved: list[tuple[str, Path]] = []
        refs = [ref for _, ref, _, _, _, _ in plans]
        recorded: list[DatasetRef] = []  # filled only once this call has recorded them
        if self._transaction is not None:
            self._transaction.registerUndo("ingest", self._undo_put, recorded, written)
        try:
            infos = []
            for path, ref, mode, stored, name, data in plans:
                size = path.stat().st_size
                if mode == "copy" and not isinstance(self.store, LocalStore):
                    self.store.write(stored, path.read_bytes())
                    written.append(stored)
                elif mode not in (None, "direct"):
                    assert isinstance(self.store, LocalStore) and mode is not None
                    self.store.ingest(path, stored, mode)
                    if mode == "move":
                        moved.append((stored, path))
                    else:
                        written.append(stored)
                infos.append(
                    StoredFileInfo(
                        dataset_id=_id(ref),
                        component=NO_COMPONENT,
                        path=stored,
                        formatter=name,
                        storage_class=str(getattr(ref.datasetType, "storageClass", "")),
                        checksum=hashlib.sha256(data).hexdigest() if data is not None else None,
                        file_size=size,
                    )
                )
            _crash_point("after_write")
            self._record(refs, infos)
            recorded.extend(refs)
        except BaseException:
            self._delete_artifacts(written)
            for stored, original in moved:  # give moved files back: never lose one
                assert isinstance(self.store, LocalStore)
                os.replace(self.store.local_path(stored), original)
            raise

    def _configured_formatter(self, ref: DatasetRef) -> str | None:
        datasetType = ref.datasetType
        for key in (getattr(datasetType, "name", None), getattr(datasetType, "storageClass", None)):
            if key is not None and key in self._formatters:
                return self._formatters[key]
        return None

    def _read(self, path: str) -> bytes:
        if _is_direct(path):
            return Path(path.removeprefix("file://")).read_bytes()
        return self.store.read(path)

    def _undo_put(self, refs: list[DatasetRef], paths: list[str]) -> None:
        # The database rows may be gone already (a rolled-back registry
        # transaction); forgetting what is absent is a no-op.
        self.bridge.forget(refs)
        self._forget_artifacts(refs)
        self._delete_artifacts(paths)

    def _delete_artifacts(self, paths: list[str]) -> None:
        for path in paths:
            self.store.delete(path)

    # -- reading -------------------------------------------------------------

    def _infos(self, ids: list[DatasetId]) -> dict[DatasetId, list[StoredFileInfo]]:
        found: dict[DatasetId, list[StoredFileInfo]] = {}
        if ids:
            for row in self.records.fetch(dataset_id=ids):
                info = StoredFileInfo.from_record(row)
                found.setdefault(info.dataset_id, []).append(info)
        return found

    def get(
        self,
        ref: DatasetRef,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        # docstring inherited
        dataset_id = _id(ref)
        infos = [
            StoredFileInfo.from_record(row)
            for row in self.bridge.held_records(self.records, [dataset_id])
        ]
        if not infos:
            raise DatasetNotStoredError(f"Datastore {self.name!r} does not hold {ref}.")
        info = infos[0]
        try:
            data = self._read(info.path)
        except FileNotFoundError as exc:
            raise DatasetNotStoredError(
                f"Datastore {self.name!r} has a record of {ref} but its artifact "
                f"{info.path!r} is missing."
            ) from exc
        if info.checksum is not None and hashlib.sha256(data).hexdigest() != info.checksum:
            raise DatasetNotStoredError(
                f"Artifact {info.path!r} of {ref} does not match its recorded checksum."
            )
        return formatter_for(info.formatter).from_bytes(
            data, component=component, parameters=parameters
        )

    def knows_many(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, bool]:
        # docstring inherited
        ids = [_id(r) for r in refs]
        infos = self._infos(ids)
        return {i: i in infos for i in ids}

    def exists_many(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, bool]:
        # docstring inherited
        ids = [_id(r) for r in refs]
        infos: dict[DatasetId, list[StoredFileInfo]] = {}
        for row in self.bridge.held_records(self.records, ids):
            info = StoredFileInfo.from_record(row)
            infos.setdefault(info.dataset_id, []).append(info)
        return {
            i: i in infos and all(self.store.exists(info.path) for info in infos[i]) for i in ids
        }

    def get_uri(self, ref: DatasetRef) -> str:
        """Where the artifact of ``ref`` is (``file://...``, ``s3://...``)."""
        dataset_id = _id(ref)
        infos = self._infos([dataset_id]).get(dataset_id)
        if not infos:
            raise DatasetNotStoredError(f"Datastore {self.name!r} does not hold {ref}.")
        return f"{self.store.root.rstrip('/')}/{infos[0].path}"

    # -- trash ---------------------------------------------------------------

    def emptyTrash(
        self, *, refs: Iterable[DatasetRef] | None = None, dry_run: bool = False
    ) -> list[DatasetId]:
        # docstring inherited; artifacts still used by a stored dataset are kept.
        selected = None if refs is None else [_id(r) for r in refs]
        emptied: list[DatasetId] = []
        with self.bridge.emptyTrash(
            self.records, StoredFileInfo, "path", selected_ids=selected, dry_run=dry_run
        ) as (pairs, keep):
            for ref, info in pairs:
                deletable = info is not None and not _is_direct(info.path)
                if deletable and not dry_run and info.path not in (keep or ()):
                    self.store.delete(info.path)  # already gone is not an error
                emptied.append(_id(ref))
        return list(dict.fromkeys(emptied))

    def _forget_artifacts(self, refs: list[DatasetRef]) -> None:
        # docstring inherited
        self.records.delete(["dataset_id"], *({"dataset_id": _id(r)} for r in refs))


#: Test hook: called with a point's name ("after_write": artifacts written, not yet
#: recorded). Fault tests set it to kill the process there.
crash_hook: Callable[[str], None] | None = None


def _crash_point(name: str) -> None:
    if crash_hook is not None:
        crash_hook(name)


_SUFFIX_FORMATTERS = {
    ".json": "json",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".pickle": "pickle",
    ".pkl": "pickle",
    ".npy": "npy",
    ".parquet": "parquet",
}


def _formatter_by_suffix(suffix: str) -> str:
    return _SUFFIX_FORMATTERS.get(suffix.lower(), "bytes")


def _is_direct(path: str) -> bool:
    """Whether a recorded path points outside the store (``direct`` ingest)."""
    return path.startswith(("file://", "/"))


def _table_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c == "_" else "_" for c in name.lower())
    table = f"{cleaned}_records"
    if not table[0].isalpha():
        table = f"ds_{table}"
    if len(table) > 63:
        table = f"ds_{hashlib.sha1(name.encode()).hexdigest()[:16]}_records"
    return table
