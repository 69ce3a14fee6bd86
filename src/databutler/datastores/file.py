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

import os
import stat
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from .._dataset_ref import DatasetId, DatasetRef
from .._exceptions import ArtifactCorruptedError, ConflictError
from ..registry.interfaces import (
    DatasetIdRef,
    DatastoreRegistryBridgeManager,
    FindRider,
    OpaqueTableStorage,
)
from ..storage_classes import StorageClassRegistry
from ._artifacts import Artifact, corrupted
from ._base import DatasetNotStoredError, Datastore, DatastoreAbilities, IngestItem, _id
from ._file_common import (
    StoredFileInfo,
    check_bytes,
    delete_after_failure,
    is_direct,
    records_spec,
    table_name,
)
from ._file_ingest import ingest_files
from ._file_journal import journaled_paths
from ._file_read import disassembled, load
from ._file_transfer import file_artifacts, transfer_files
from ._file_trash import Emptying, TrashFailure, empty_trash
from ._file_trust import find_untracked
from ._file_verify import recover_moves, verify_storage
from ._file_zip import ingest_zip, put_zip, read_member
from ._maintenance import StorageCheck
from ._storage import check_put
from .formatters import Formatter, formatter_for
from .resources import LocalStore, ResourceStore, StorageError, file_kind, run_all, store_for
from .templates import DEFAULT_TEMPLATE, FileTemplate, FileTemplates

__all__ = ["ABILITIES", "FileDatastore", "StoredFileInfo"]

#: What every `FileDatastore` can do: ingest, in these transfer modes (links need a
#: local root; ``direct`` records the outside path; `None` is a file in place).
ABILITIES = DatastoreAbilities(
    ephemeral=False,
    supports_ingest=True,
    transfer_modes=frozenset(
        {None, "auto", "direct", "copy", "move", "link", "hardlink", "symlink", "relsymlink"}
    ),
)


class FileDatastore(Datastore):
    """Datasets as files under ``root`` (a directory, ``s3://bucket/prefix`` or ``mem://``).

    Parameters
    ----------
    name : `str`
        The datastore's name (also used for its records table).
    bridge_manager : `DatastoreRegistryBridgeManager`
        The registry's bridge manager.
    root : `str`, `os.PathLike` or `ResourceStore`
        Where the artifacts go.
    templates : `~collections.abc.Mapping` [`str`, `str`], optional
        File templates by dataset type, dimensions or storage class, with
        ``default``; `DEFAULT_TEMPLATE` when not given.
    formatters : `~collections.abc.Mapping` [`str`, `str`], optional
        Formatter name (``json``, ``pickle``, ``npy``, ...) by dataset type or
        storage class name; otherwise the storage class's formatter, or (for
        a storage class ``storage_classes`` does not know) the one the
        object's type calls for.
    checksum : `bool`, optional
        Record a SHA-256 checksum of every artifact.
    fsync : `bool`, optional
        Flush each artifact to the device before recording it (local roots;
        see `LocalStore`). Off by default.
    records_table : `str`, optional
        Name of the records table; ``<name>_records`` (sanitised) by default.
    trust : `bool`, optional
        Believe the templates and the storage when a dataset has no record
        (records lost, or a registry imported without them): `get`,
        `exists_many`, `get_uris`, `retrieve_artifacts` and `transfer_from`
        then look for its artifact at its template path with each known
        formatter extension, and read it by that extension. `knows` stays
        record-based. Off by default.
    storage_classes : `StorageClassRegistry`, optional
        The storage classes it knows; the shipped defaults when not given.
    """

    def __init__(
        self,
        name: str,
        bridge_manager: DatastoreRegistryBridgeManager,
        root: str | os.PathLike[str] | ResourceStore,
        *,
        templates: Mapping[str, str] | None = None,
        formatters: Mapping[str, str] | None = None,
        checksum: bool = False,
        fsync: bool = False,
        records_table: str | None = None,
        trust: bool = False,
        storage_classes: StorageClassRegistry | None = None,
    ) -> None:
        super().__init__(name, bridge_manager, abilities=ABILITIES, storage_classes=storage_classes)
        self._bridges = bridge_manager
        self.trust = trust
        self._templates = FileTemplates(
            dict(templates) if templates else {"default": DEFAULT_TEMPLATE},
            universe=bridge_manager.universe,
        )
        self._formatters = dict(formatters or {})
        for formatter in self._formatters.values():
            formatter_for(formatter)  # unknown names fail here, listing valid ones
        self._checksum = checksum
        table = records_table or table_name(self.name)
        self.records: OpaqueTableStorage = bridge_manager.opaque.register(table, records_spec())
        self._validated: dict[str, FileTemplate] = {}
        #: Artifacts the last `empty_trash` could not delete (their datasets stay trashed).
        self.trash_failures: list[TrashFailure] = []
        # Last: a local store makes its directory, which a configuration refused above
        # (an unknown formatter, records tables a read-only registry lacks) must not leave.
        self.store = root if isinstance(root, ResourceStore) else store_for(root)
        if fsync and isinstance(self.store, LocalStore):
            self.store.fsync = True

    # -- put ---------------------------------------------------------------

    def _template(self, ref: DatasetRef) -> FileTemplate:
        datasetType = ref.datasetType
        key = datasetType.name
        template = self._validated.get(key)
        if template is None:
            template = self._templates.template_for(datasetType)
            template.validate(datasetType, self._bridges.universe)
            self._validated[key] = template
        return template

    def _formatter(self, ref: DatasetRef, obj: Any) -> Formatter:
        name = self._configured_formatter(ref)
        return formatter_for(name) if name is not None else self._formatter_for(ref, obj)

    def put_many(self, items: Iterable[tuple[Any, DatasetRef]]) -> None:
        # docstring inherited; each object is checked against (or converted to) its
        # storage class, and written by the formatter configured for its dataset type
        # or storage class, else by its storage class's formatter.
        prepared = []
        for given, ref in items:
            _id(ref)
            obj, storage_class = check_put(self.storage_classes, given, ref)
            if (
                storage_class is not None
                and storage_class.disassemble
                and self._configured_formatter(ref) is None
            ):
                prepared.extend(disassembled(self, ref, storage_class, obj))
                continue
            formatter = self._formatter(ref, obj)
            data = formatter.to_bytes(obj)  # serialise before touching storage
            path = self._template(ref).format(ref) + formatter.extension
            info = StoredFileInfo.for_ref(
                ref, path, formatter.name, len(data), data=data if self._checksum else None
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
            self._write_artifacts([(info.path, data) for _, info, data in prepared], written)
            _crash_point("after_write")
            refs = list({_id(ref): ref for ref, _, _ in prepared}.values())
            self._record(refs, [info for _, info, _ in prepared])
            recorded.extend(refs)
        except BaseException as failure:
            delete_after_failure(self.store, written, failure)
            raise

    def _write_artifacts(self, items: list[tuple[str, bytes]], written: list[str]) -> None:
        """Write new artifacts, several at once where the store gains from it.

        ``written`` gets each path as its artifact lands, so that a failure
        can delete exactly those. Paths taken already are dealt with after
        the others, in this thread (see `_write_new`); a leftover replaced
        there is not added: it was not this call's to begin with (another
        process putting the same dataset may be about to record it), so a
        failure leaves it where it was.
        """
        taken: list[tuple[str, bytes]] = []

        def write(path: str, data: bytes) -> None:
            try:
                self.store.write(path, data)
            except FileExistsError:
                taken.append((path, data))
            else:
                written.append(path)

        run_all(write, items, workers=min(self.store.concurrency, len(items) // 16))
        for path, data in taken:
            self._replace_leftover(path, data)

    def _write_new(self, path: str, data: bytes) -> None:
        """Write a new artifact; one left by an interrupted put (no record uses it) is replaced."""
        try:
            self.store.write(path, data)
        except FileExistsError:
            self._replace_leftover(path, data)

    def _replace_leftover(self, path: str, data: bytes) -> None:
        """Replace the artifact at ``path`` if no record uses it; else `ConflictError`."""
        if next(self.records.fetch(path=path), None) is not None:
            raise ConflictError(
                f"Datastore {self.name!r} already has an artifact at {path!r}, used by "
                "another dataset; nothing was stored. Check the file template: it must "
                "give each dataset its own path."
            )
        if path in journaled_paths(self.store):
            raise ConflictError(
                f"Datastore {self.name!r} holds a user's file at {path!r} that an interrupted "
                "ingest(transfer='move') left; nothing was stored. Run verify(repair=True) "
                "(databutler verify --repair) to move it back first."
            )
        # No record points at it: a put that died between writing and recording
        # left it behind. Taking its place loses nothing.
        self.store.write(path, data, overwrite=True)

    def _record(self, refs: list[DatasetRef], infos: list[StoredFileInfo]) -> None:
        """Insert the bridge and records rows together (in the caller's transaction if any)."""
        with self._bridges.transaction():
            self.bridge.insert(refs)
            self.records.insert(*(info.to_record() for info in infos))

    # -- ingest ----------------------------------------------------------------

    def ingest(
        self,
        items: Iterable[IngestItem],
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
        TransferModeError
            For a transfer mode not in ``abilities.transfer_modes`` (before
            anything changes), or one this source or root cannot use.
        UnsafePathError
            For an in-place ingest (``None``, or ``auto`` under the root) of a
            file that resolves outside the root or is reached through a
            symbolic link, or a link or ``direct`` ingest of a file inside it.
        InvalidPathError
            For a name that cannot be a file (empty, NUL) or an unsupported URI.

        Notes
        -----
        Sources may be paths, ``file://`` URIs or ``s3://`` URIs (copied in).
        A ``move`` is journaled before the first file moves: if the process
        dies before the datasets are committed, the next ingest, writeable
        open or ``verify(repair=True)`` moves the files back.
        """
        self._check_ingest(transfer)
        ingest_files(self, items, transfer=transfer, formatter=formatter)

    def _configured_formatter(self, ref: DatasetRef) -> str | None:
        datasetType = ref.datasetType
        for key in (datasetType.name, datasetType.storageClass):
            if key in self._formatters:
                return self._formatters[key]
        return None

    def _read(self, path: str) -> bytes:
        if is_direct(path):
            # Outside the root, where anything may take the file's place: a named pipe would
            # block the read, so it is looked at first.
            local = path.removeprefix("file://")
            mode = os.stat(local).st_mode
            if not stat.S_ISREG(mode):
                raise ArtifactCorruptedError(
                    f"The file {local}, ingested in place, is {file_kind(mode)} now, not a "
                    "regular file; it was not read. Put the original file back, or remove the "
                    "dataset (prune --purge) and ingest it again."
                )
            return Path(local).read_bytes()
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
        self.store.remove_empty_directories(paths)  # an undone write leaves no directory

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
        infos = self._locate([ref]).get(_id(ref))
        return self._load(ref, infos, component, parameters)

    def records_rider(self) -> FindRider | None:
        # docstring inherited
        return self.bridge.held_records_rider(self.records)

    def get_found(
        self,
        ref: DatasetRef,
        records: list[dict[str, Any]],
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        # docstring inherited; under `trust`, a dataset without records is looked for.
        infos = [StoredFileInfo.from_record(record) for record in records]
        if not infos and self.trust:
            return self.get(ref, component=component, parameters=parameters)
        return self._load(ref, infos, component, parameters)

    def _get_many(self, refs: list[DatasetRef]) -> list[Any]:
        # docstring inherited; one records query per batch
        located = self._locate(refs)
        return [self._load(ref, located.get(_id(ref)), None, None) for ref in refs]

    def _load(
        self,
        ref: DatasetRef,
        infos: list[StoredFileInfo] | None,
        component: str | None,
        parameters: Mapping[str, Any] | None,
    ) -> Any:
        """Read and check the artifact(s) of ``ref`` described by ``infos`` (see `_file_read`)."""
        if not infos:
            raise DatasetNotStoredError(f"Datastore {self.name!r} does not hold {ref}.")
        return load(self, ref, infos, component, parameters)

    def knows_many(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, bool]:
        # docstring inherited
        ids = [_id(r) for r in refs]
        infos = self._infos(ids)
        return {i: i in infos for i in ids}

    def exists_many(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, bool]:
        # docstring inherited
        refs = list(refs)
        infos = self._locate(refs)
        return {
            _id(r): _id(r) in infos and all(self._artifact_exists(i) for i in infos[_id(r)])
            for r in refs
        }

    def existence_many(
        self, refs: Iterable[DatasetRef], *, full_check: bool = True
    ) -> dict[DatasetId, tuple[bool, bool, bool]]:
        # docstring inherited; one query for the held ones (whose location rows
        # keep their datasets in the registry), a second only for the rest.
        refs = list(refs)
        if not full_check or self.trust:
            return super().existence_many(refs, full_check=full_check)
        held = self._locate(refs)
        result = {
            i: (True, all(self._artifact_exists(info) for info in infos), True)
            for i, infos in held.items()
        }
        rest = [r for r in refs if _id(r) not in held]
        if rest:
            known = self.knows_many(rest)
            result.update((i, (k, False, False)) for i, k in known.items())
        return result

    def get_uris(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, str]:
        # docstring inherited; a direct ingest keeps its outside URI.
        return {i: self._uri(infos[0]) for i, infos in self._locate(list(refs)).items()}

    def _locate(self, refs: list[DatasetRef]) -> dict[DatasetId, list[StoredFileInfo]]:
        """Records of the held ``refs``; under `trust`, also the artifacts of refs with none."""
        found: dict[DatasetId, list[StoredFileInfo]] = {}
        for row in self.bridge.held_records(self.records, [_id(r) for r in refs]):
            info = StoredFileInfo.from_record(row)
            found.setdefault(info.dataset_id, []).append(info)
        if self.trust and len(found) < len(refs):
            found.update(find_untracked(self, [r for r in refs if _id(r) not in found]))
        return found

    def _read_checked(self, info: StoredFileInfo, what: object) -> bytes:
        """The dataset's bytes, checked against its record (``what``, named only in an error,
        is the dataset).

        Every read compares the size with the recorded one (the length of
        what was read: no extra request on S3), and the SHA-256 checksum
        when one is recorded (``checksum: true`` in the datastore's
        configuration records them).

        Raises
        ------
        ArtifactCorruptedError
            If the bytes differ from the record, or a zip archive holding the
            dataset is damaged; the altered bytes are never returned.
        FileNotFoundError
            If the artifact is missing.
        """
        try:
            data = self._read_artifact(info)
        except StorageError as exc:
            if info.member and isinstance(exc.__cause__, zipfile.BadZipFile):
                raise corrupted(str(what), self._uri(info), str(exc.__cause__)) from exc
            raise
        # The messages (and the URI) are only built when there is something to check.
        if info.checksum is not None or (info.file_size >= 0 and len(data) != info.file_size):
            check_bytes(info, data, str(what), self._uri(info))
        return data

    def _read_artifact(self, info: StoredFileInfo) -> bytes:
        """The dataset's bytes: the file, or its member of a zip archive."""
        if info.member:
            return read_member(self, info.path, info.member)
        return self._read(info.path)

    def _artifact_exists(self, info: StoredFileInfo) -> bool:
        if is_direct(info.path):
            return Path(info.path.removeprefix("file://")).is_file()
        return self.store.exists(info.path)

    def _uri(self, info: StoredFileInfo) -> str:
        if is_direct(info.path):
            uri = info.path if info.path.startswith("file://") else Path(info.path).as_uri()
        else:
            uri = f"{self.store.root.rstrip('/')}/{info.path}"
        return f"{uri}#{info.member}" if info.member else uri

    @property
    def local_roots(self) -> tuple[Path, ...]:
        # docstring inherited
        return (self.store.directory,) if isinstance(self.store, LocalStore) else ()

    def _artifacts(self, refs: list[DatasetRef]) -> list[Artifact]:
        # docstring inherited; the files themselves (zip members extracted).
        return file_artifacts(self, refs)

    # -- zip archives and transfers (in their own modules) ---------------------

    def put_zip(self, items: Iterable[tuple[Any, DatasetRef]], *, name: str | None = None) -> str:
        """Store many (small) datasets as members of one new zip archive (all-or-nothing).

        Parameters
        ----------
        items : `~collections.abc.Iterable` [`tuple` [`object`, `DatasetRef`]]
            The objects and the datasets they are; each member is named by
            the dataset's template path and formatter extension.
        name : `str`, optional
            The archive's file name without ``.zip`` (a random one by
            default); it goes to ``zips/<name>.zip``.

        Returns
        -------
        uri : `str`
            The archive's URI; each dataset's is that plus ``#<member>``.

        Raises
        ------
        ValueError
            If there is no item, a dataset is given twice, or ``name`` is not
            a plain file name.
        ConflictError
            If the archive exists already, or a dataset is stored already.

        Notes
        -----
        Members are stored uncompressed (``ZIP_STORED``): small artifacts
        gain little from compression, and a member is read straight from
        its offset. Emptying the trash deletes the archive with its last
        member: until then the archive stays whole.
        """
        return put_zip(self, items, name=name)

    def ingest_zip(
        self,
        path: str | os.PathLike[str],
        refs_by_member: Mapping[str, DatasetRef],
        *,
        transfer: str | None = "copy",
    ) -> None:
        """Bring in an existing zip archive whose members are datasets (all-or-nothing).

        Parameters
        ----------
        path : `str` or `os.PathLike`
            The zip file.
        refs_by_member : `~collections.abc.Mapping` [`str`, `DatasetRef`]
            The dataset each member (by its name in the archive) holds;
            members not listed are kept but not recorded.
        transfer : `str` or `None`, optional
            As for `ingest`; the archive goes to ``zips/<name>-<random>.zip``.

        Raises
        ------
        FileNotFoundError
            If ``path`` is not a file.
        ValueError
            If it is not a zip archive, a member is missing from it, or for
            an unknown or impossible transfer mode.
        InvalidPathError
            If a member name is absolute, has ``..`` segments or ``#``.
        """
        ingest_zip(self, path, refs_by_member, transfer=transfer)

    def transfer_from(
        self, source: Datastore, refs: Iterable[DatasetRef], *, transfer: str = "auto"
    ) -> list[DatasetRef]:
        """Bring ``source``'s artifacts of ``refs`` in, keeping the dataset ids (all-or-nothing).

        From another file datastore the artifacts are copied (``auto``,
        ``copy``) through the storage layer, keeping their relative paths
        (zip archives whole), or linked (``link``, ``hardlink``, ``symlink``,
        ``relsymlink``) when both are on local disk; from any other datastore
        the objects are read and stored (``auto``, ``copy``). See
        `Datastore.transfer_from`.
        """
        if not isinstance(source, FileDatastore):
            return super().transfer_from(source, refs, transfer=transfer)
        return transfer_files(self, source, refs, transfer)

    def _bring_in(
        self,
        refs: list[DatasetRef],
        infos: list[StoredFileInfo],
        artifacts: list[tuple[str, Callable[[], None]]],
    ) -> None:
        """Create ``artifacts`` (path, and what creates it), then record ``refs`` and ``infos``.

        All-or-nothing, like `put_many`: on a failure (or a rollback of the
        enclosing transaction) the created artifacts are deleted again.
        """
        written: list[str] = []
        recorded: list[DatasetRef] = []  # filled only once this call has recorded them
        if self._transaction is not None:
            self._transaction.registerUndo("put", self._undo_put, recorded, written)
        try:
            for path, create in artifacts:
                create()
                written.append(path)
            _crash_point("after_write")
            self._record(refs, infos)
            recorded.extend(refs)
        except BaseException as failure:
            delete_after_failure(self.store, written, failure)
            raise

    # -- trash ---------------------------------------------------------------

    def empty_trash(
        self, *, refs: Iterable[DatasetIdRef] | None = None, dry_run: bool = False
    ) -> list[DatasetId]:
        # docstring inherited; artifacts still used by a stored dataset, and files
        # ingested in place ("direct"), are kept. Artifacts are deleted outside any
        # database transaction, before their rows are purged (see _file_trash).
        # An artifact that cannot be deleted is logged and kept in the trash, with
        # its datasets; `trash_failures` lists them until the next call.
        selected = None if refs is None else list(dict.fromkeys(_id(r) for r in refs))
        emptied, self.trash_failures = empty_trash(self, selected, dry_run=dry_run)
        return emptied

    def start_empty_trash(self, refs: Iterable[DatasetIdRef]) -> Callable[[], list[DatasetId]]:
        # docstring inherited; the artifacts are deleted in a thread, or when called if they
        # are few (see _file_trash.Emptying).
        emptying = Emptying(self, list(dict.fromkeys(_id(r) for r in refs)))

        def finish() -> list[DatasetId]:
            emptied = emptying()
            self.trash_failures = emptying.failures
            return emptied

        return finish

    # -- checks and recovery (in _file_verify) -----------------------------------

    def recover_moves(self) -> None:
        # docstring inherited; moves happen only on local roots, which hold the journals.
        recover_moves(self)

    def verify_storage(
        self,
        *,
        repair: bool = False,
        delete_unknown: bool = False,
        checksums: bool = False,
        keep_newer: float = 0.0,
        reading: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> StorageCheck:
        # docstring inherited; the records (through the bridge's streamed queries) against
        # the storage listing, files ingested in place, and the move journal.
        return verify_storage(
            self,
            repair=repair,
            delete_unknown=delete_unknown,
            checksums=checksums,
            keep_newer=keep_newer,
            reading=reading,
        )

    def _forget_artifacts(self, refs: Sequence[DatasetIdRef]) -> None:
        # docstring inherited
        self.records.delete(["dataset_id"], *({"dataset_id": _id(r)} for r in refs))

    def _crash_point(self, name: str) -> None:
        """Test hook for the helper modules: see `crash_hook`."""
        _crash_point(name)


#: Test hook: called with a point's name ("after_write": artifacts written, not yet
#: recorded). Fault tests set it to kill the process there.
crash_hook: Callable[[str], None] | None = None


def _crash_point(name: str) -> None:
    if crash_hook is not None:
        crash_hook(name)
