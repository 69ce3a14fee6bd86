"""Artifacts of a `FileDatastore` going elsewhere: to another file datastore, or out.

`transfer_files` copies (or links) the artifacts of one file datastore into
another, possibly of another registry, keeping their relative paths (so an
artifact shared by several datasets, a zip archive among them, arrives
once) and the records' other fields. `file_artifacts` describes the
artifacts for `~databutler.datastores.Datastore.retrieve_artifacts` and
`~databutler.datastores.Datastore.export`.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from pathlib import Path

from .._dataset_ref import DatasetRef
from .._exceptions import ConflictError, TransferModeError
from ._artifacts import Artifact, corrupted
from ._base import _id
from ._file_common import NO_COMPONENT, FileDatastoreLike, StoredFileInfo, check_bytes, is_direct
from ._file_ingest import transfer_new
from .formatters import formatter_for
from .resources import LocalStore

__all__ = ["LINK_MODES", "file_artifacts", "transfer_files"]

#: Modes that link to the source's files instead of copying them.
LINK_MODES = frozenset({"link", "hardlink", "symlink", "relsymlink"})


def transfer_files(
    target: FileDatastoreLike, source: FileDatastoreLike, refs: Iterable[DatasetRef], transfer: str
) -> list[DatasetRef]:
    """`FileDatastore.transfer_from` another file datastore."""
    _check_mode(target, source, transfer)
    unique = list({_id(r): r for r in refs}.values())
    located = source._locate(unique)  # one records query per batch
    candidates = [r for r in unique if _id(r) in located]
    known = target.knows_many(candidates)
    todo = [r for r in candidates if not known[_id(r)]]
    if not todo:
        return []
    placement: dict[str, str] = {}  # source artifact path -> target artifact path
    infos: list[StoredFileInfo] = []
    expected: dict[str, list[tuple[StoredFileInfo, DatasetRef]]] = {}  # what each path holds
    for ref in todo:
        for info in located[_id(ref)]:
            if info.path not in placement:
                placement[info.path] = _target_path(target, ref, info)
            infos.append(replace(info, path=placement[info.path]))
            expected.setdefault(info.path, []).append((info, ref))
    creates = _plan(target, source, placement, transfer, expected)
    target._bring_in(todo, infos, creates)
    return todo


def _check_mode(target: FileDatastoreLike, source: FileDatastoreLike, transfer: str) -> None:
    modes = {"auto", "copy", *LINK_MODES}
    if transfer not in modes:
        raise TransferModeError(
            f"Unknown transfer mode {transfer!r} from datastore {source.name!r} to "
            f"{target.name!r}; use one of {', '.join(sorted(modes))} (the source keeps its "
            "datasets, so nothing is moved; 'direct' has no meaning between datastores)."
        )
    if transfer in LINK_MODES:
        for datastore in (source, target):
            if not isinstance(datastore.store, LocalStore):
                raise TransferModeError(
                    f"Transfer mode {transfer!r} links files on local disk, but datastore "
                    f"{datastore.name!r} is at {datastore.store.root}; use transfer='copy'."
                )


def _target_path(target: FileDatastoreLike, ref: DatasetRef, info: StoredFileInfo) -> str:
    """The same relative path; a direct ingest's outside file gets the template path."""
    if not is_direct(info.path):
        return info.path
    return target._template(ref).format(ref) + posixpath.splitext(info.path)[1]


def _plan(
    target: FileDatastoreLike,
    source: FileDatastoreLike,
    placement: dict[str, str],
    transfer: str,
    expected: dict[str, list[tuple[StoredFileInfo, DatasetRef]]],
) -> list[tuple[str, Callable[[], None]]]:
    """What to create in ``target``: every placed artifact no target record uses already.

    An artifact a target record uses already (another part of a shared file
    or zip archive, transferred before) is reused if its bytes are the same.

    Raises
    ------
    ConflictError
        If a target record uses that path for different bytes.
    """
    used = {row["path"] for row in target.records.fetch(path=list(placement.values()))}
    creates: list[tuple[str, Callable[[], None]]] = []
    for source_path, path in placement.items():
        if path in used:
            if target._read(path) != source._read(source_path):
                raise ConflictError(
                    f"Datastore {target.name!r} has a different artifact at {path!r} already; "
                    f"nothing was transferred from {source.name!r}. Give the datastores file "
                    "templates with {id} so that paths never collide."
                )
            continue
        if transfer in ("auto", "copy"):
            creates.append(
                (path, partial(_copy, target, source, source_path, path, expected[source_path]))
            )
        else:
            local = _local_path(source, source_path)
            assert local is not None  # both stores are local: checked
            _check_artifact(source, source_path, local.read_bytes(), expected[source_path])
            creates.append((path, partial(transfer_new, target, local, path, transfer)))
    return creates


def _copy(
    target: FileDatastoreLike,
    source: FileDatastoreLike,
    source_path: str,
    path: str,
    expected: list[tuple[StoredFileInfo, DatasetRef]],
) -> None:
    data = source._read(source_path)
    _check_artifact(source, source_path, data, expected)
    target._write_new(path, data)


def _check_artifact(
    source: FileDatastoreLike,
    source_path: str,
    data: bytes,
    expected: list[tuple[StoredFileInfo, DatasetRef]],
) -> None:
    """Refuse to transfer ``data`` (the artifact at ``source_path``) unless it is as recorded.

    A plain file is checked like a read (size, recorded checksum); a zip
    archive must open, and each recorded member must have its recorded
    size and content.

    Raises
    ------
    ArtifactCorruptedError
        Naming the dataset and the artifact; nothing is transferred.
    """
    members = [(info, ref) for info, ref in expected if info.member]
    for info, ref in expected:
        if not info.member:
            check_bytes(info, data, str(ref), source._uri(info))
    if not members:
        return
    info, ref = members[0]
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info, ref in members:
                check_bytes(info, archive.read(info.member), str(ref), source._uri(info))
    except (zipfile.BadZipFile, KeyError) as exc:
        raise corrupted(str(ref), source._uri(info), f"the zip archive is damaged: {exc}") from exc


def _local_path(datastore: FileDatastoreLike, path: str) -> Path | None:
    """The local file of artifact ``path``, if it is on local disk."""
    if is_direct(path):
        return Path(path.removeprefix("file://"))
    if isinstance(datastore.store, LocalStore):
        return datastore.store.local_path(path)
    return None


def file_artifacts(datastore: FileDatastoreLike, refs: list[DatasetRef]) -> list[Artifact]:
    """`FileDatastore._artifacts`: one per file or zip member, with the datasets in it."""
    located = datastore._locate(refs)
    groups: dict[tuple[str, str], tuple[StoredFileInfo, list[DatasetRef]]] = {}
    artifacts = []
    for ref in refs:
        infos = located.get(_id(ref))
        if infos and infos[0].component != NO_COMPONENT:
            artifacts.append(_assembled(datastore, ref, infos[0]))
        elif infos:
            info = infos[0]
            groups.setdefault((info.path, info.member), (info, []))[1].append(ref)
    for info, members in groups.values():
        what = ", ".join(str(ref) for ref in members[:3])
        if info.member:
            path = info.member
        elif is_direct(info.path):
            path = _target_path(datastore, members[0], info)
        else:
            path = info.path
        artifacts.append(
            Artifact(
                refs=tuple(members),
                path=path,
                uri=datastore._uri(info),
                formatter=info.formatter,
                read=partial(datastore._read_checked, info, what),
                local=None if info.member else _local_path(datastore, info.path),
                extracted=bool(info.member),
                size=-1 if info.member else info.file_size,
                checksum=None if info.member else info.checksum,
            )
        )
    return artifacts


def _assembled(datastore: FileDatastoreLike, ref: DatasetRef, info: StoredFileInfo) -> Artifact:
    """A dataset stored as one artifact per component, as one file of its whole storage class.

    Exports and retrieved copies hold it whole, in its storage class's format,
    at its template path: what another repository ingests as one artifact.
    """
    storage_class = datastore.storage_classes.get(info.storage_class)
    name = storage_class.formatter if storage_class is not None else None
    formatter = formatter_for(name or "pickle")

    def read() -> bytes:
        return formatter.to_bytes(datastore.get(ref.override_storage_class(info.storage_class)))

    path = datastore._template(ref).format(ref) + formatter.extension
    return Artifact(
        refs=(ref,),
        path=path,
        # Not a file another repository could read in place: exports copy it.
        uri=f"assembled:{datastore.name}/{path}",
        formatter=formatter.name,
        read=read,
        local=None,
        extracted=True,
    )
