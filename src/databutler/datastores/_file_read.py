"""Reading a `FileDatastore`'s datasets through their storage classes, and writing composites.

`load` reads one dataset from its records: through its formatter, letting a
formatter that can (Parquet) read only the parts of the file a read needs
(`_open_checked` hands it the file, its size checked against the record),
then converting to the storage class asked for (see `_storage.read_dataset`).
A dataset stored as one artifact per component (`disassembled` writes them)
is read part by part and assembled, or one part alone for a component.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from .._dataset_ref import DatasetRef
from .._exceptions import StorageClassError
from ..storage_classes import StorageClass
from ..storage_classes._conversions import apply_parameters
from ._artifacts import corrupted
from ._base import DatasetNotStoredError
from ._file_common import NO_COMPONENT, FileDatastoreLike, StoredFileInfo, is_direct
from ._storage import DatasetReader, assemble, read_dataset, split
from .formatters import Formatter, formatter_for, formatter_for_object

__all__ = ["disassembled", "load"]


def disassembled(
    datastore: FileDatastoreLike, ref: DatasetRef, storage_class: StorageClass, obj: Any
) -> list[tuple[DatasetRef, StoredFileInfo, bytes]]:
    """One artifact per stored component of ``obj``: ``<template path>.<component><ext>``.

    Each is checked against (or converted to) its component's storage
    class and written by that storage class's formatter.
    """
    base = datastore._template(ref).format(ref)
    prepared = []
    for component, value in sorted(split(storage_class, obj).items()):
        part_class = datastore.storage_classes.get(storage_class.components[component])
        if part_class is not None:
            what = f"component {component!r} of the object put as {ref.datasetType.name!r}"
            value = datastore.storage_classes.coerce(value, part_class, what=what)
        if part_class is not None and part_class.formatter is not None:
            formatter = formatter_for(part_class.formatter)
        else:
            formatter = formatter_for_object(value)
        data = formatter.to_bytes(value)
        info = StoredFileInfo.for_ref(
            ref,
            f"{base}.{component}{formatter.extension}",
            formatter.name,
            len(data),
            data=data if datastore._checksum else None,
            component=component,
        )
        prepared.append((ref, info, data))
    return prepared


def load(
    datastore: FileDatastoreLike,
    ref: DatasetRef,
    infos: list[StoredFileInfo],
    component: str | None,
    parameters: Mapping[str, Any] | None,
) -> Any:
    """Read ``ref`` from its artifact(s) ``infos`` as its dataset type's storage class."""
    if infos[0].component != NO_COMPONENT:
        return _load_disassembled(datastore, ref, infos, component, parameters)
    info = infos[0]
    formatter = formatter_for(info.formatter)

    def data() -> bytes:
        try:
            return datastore._read_checked(info, ref)
        except FileNotFoundError as exc:
            raise _missing(datastore, ref, info) from exc

    def whole(pushed: Mapping[str, Any]) -> Any:
        if pushed and _reads_parts(formatter, info):
            with _open_checked(datastore, info, ref) as file:
                return formatter.read_file(file, parameters=pushed)
        return formatter.from_bytes(data(), parameters=pushed or None)

    def derived(component: str, pytype: str | None) -> Any:
        if _reads_parts(formatter, info):
            with _open_checked(datastore, info, ref) as file:
                return formatter.read_file_derived(file, component, pytype)
        return formatter.read_derived(data(), component, pytype)

    def legacy(component: str | None, parameters: Mapping[str, Any] | None) -> Any:
        return formatter.from_bytes(data(), component=component, parameters=parameters)

    reader = DatasetReader(
        whole=whole,
        legacy=legacy,
        pushdown=formatter.pushdown_parameters,
        native_derived=formatter.derived_components,
        derived=derived,
    )
    return read_dataset(
        datastore.storage_classes,
        reader,
        stored_as=info.storage_class,
        ref=ref,
        component=component,
        parameters=parameters,
    )


def _load_disassembled(
    datastore: FileDatastoreLike,
    ref: DatasetRef,
    infos: list[StoredFileInfo],
    component: str | None,
    parameters: Mapping[str, Any] | None,
) -> Any:
    """Read a dataset stored as one artifact per component: one of them, or all assembled."""
    stored_as = infos[0].storage_class
    composite = datastore.storage_classes.get(stored_as)
    parts = {info.component: info for info in infos}
    if composite is None or composite.assembler is None:
        raise StorageClassError(
            f"Dataset {ref.datasetType.name!r} ({ref.id}) is stored as components "
            f"{', '.join(map(repr, sorted(parts)))} of storage class {stored_as!r}, which "
            f"datastore {datastore.name!r} cannot assemble; add {stored_as!r} (with its "
            "assembler) to the datastore configuration's storage_classes."
        )

    def read(info: StoredFileInfo) -> Any:
        try:
            data = datastore._read_checked(info, ref)
        except FileNotFoundError as exc:
            raise _missing(datastore, ref, info) from exc
        value = formatter_for(info.formatter).from_bytes(data)
        part_class = datastore.storage_classes.get(composite.components.get(info.component, ""))
        if part_class is None:
            return value
        return datastore.storage_classes.coerce(
            value, part_class, what=f"component {info.component!r}"
        )

    if component is not None and component in parts:
        value = read(parts[component])
        if parameters:
            part_class = datastore.storage_classes.get(composite.components[component])
            valid = part_class.parameters if part_class is not None else frozenset()
            unknown = sorted(set(parameters) - valid)
            if unknown:
                raise StorageClassError(
                    f"Component {component!r} of dataset {ref.datasetType.name!r} has no "
                    f"read parameter(s) {', '.join(map(repr, unknown))}; its parameters: "
                    f"{', '.join(map(repr, sorted(valid))) or 'none'}."
                )
            value = apply_parameters(value, parameters)
        return value

    def whole(_: Mapping[str, Any]) -> Any:
        return assemble(composite, {name: read(info) for name, info in parts.items()})

    def legacy(component: str | None, parameters: Mapping[str, Any] | None) -> Any:
        raise StorageClassError(
            f"Dataset {ref.datasetType.name!r} ({ref.id}) has no component {component!r}; "
            f"its components: {', '.join(map(repr, sorted(composite.all_components)))}."
        )

    return read_dataset(
        datastore.storage_classes,
        DatasetReader(whole=whole, legacy=legacy),
        stored_as=stored_as,
        ref=ref,
        component=component,
        parameters=parameters,
    )


def _missing(
    datastore: FileDatastoreLike, ref: DatasetRef, info: StoredFileInfo
) -> DatasetNotStoredError:
    return DatasetNotStoredError(
        f"Datastore {datastore.name!r} has a record of {ref} but its artifact "
        f"{info.path!r} is missing."
    )


def _reads_parts(formatter: Formatter, info: StoredFileInfo) -> bool:
    """Whether to let ``formatter`` read only parts of the artifact of ``info``.

    Not for a zip member, nor when a checksum is recorded: checking it
    needs every byte.
    """
    return formatter.reads_parts and not info.member and info.checksum is None


@contextmanager
def _open_checked(
    datastore: FileDatastoreLike, info: StoredFileInfo, ref: DatasetRef
) -> Iterator[BinaryIO]:
    """The artifact of ``info`` as a seekable file, its size checked against the record."""
    try:
        if is_direct(info.path):
            file: BinaryIO = open(Path(info.path.removeprefix("file://")), "rb")  # noqa: SIM115
        else:
            file = datastore.store.open(info.path)
    except FileNotFoundError as exc:
        raise _missing(datastore, ref, info) from exc
    with file:
        size = file.seek(0, os.SEEK_END)
        if info.file_size >= 0 and size != info.file_size:
            raise corrupted(
                str(ref),
                datastore._uri(info),
                f"recorded {info.file_size} bytes, found {size}",
            )
        file.seek(0)
        yield file
