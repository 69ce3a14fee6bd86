"""`StorageClassRegistry`: the storage classes a datastore knows, shipped defaults first."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .._exceptions import ConfigurationError, InvalidNameError, StorageClassError
from ._conversions import ASSEMBLERS, CONVERTERS, DERIVED_COMPONENTS, PARAMETERS, convert
from ._storage_class import StorageClass, type_name

__all__ = ["DEFAULT_STORAGE_CLASSES", "StorageClassRegistry"]

_TABLE_PARAMETERS = ("columns", "rows")
_TABLE_COMPONENTS = {"columns": "StructuredDataList", "rowcount": "int", "schema": "ArrowSchema"}
_FITS_COMPONENTS = {
    "header": "StructuredDataDict",
    "image": "NumpyArray",
    "mask": "NumpyArray",
    "variance": "NumpyArray",
}
_TABLE_SOURCES = (
    "pyarrow.Table",
    "pandas.DataFrame",
    "astropy.table.Table",
    "numpy.ndarray",
    "dict",
)


def _table(
    name: str, pytype: str, converter: str, formatter: str = "parquet", *extra: str
) -> StorageClass:
    """A table storage class: it converts from every other table kind through Arrow."""
    components = dict(_TABLE_COMPONENTS)
    if pytype == "pandas.DataFrame":
        components["columns"] = "DataFrameIndex"
    return StorageClass(
        name,
        pytype,
        derived_components=components,
        parameters=_TABLE_PARAMETERS,
        formatter=formatter,
        converters={source: converter for source in (*_TABLE_SOURCES, *extra) if source != pytype},
    )


#: The storage classes every datastore knows (names and types as in daf_butler).
DEFAULT_STORAGE_CLASSES: tuple[StorageClass, ...] = (
    StorageClass("StructuredDataDict", "dict", formatter="json"),
    StorageClass("StructuredDataList", "list", formatter="json", converters={"tuple": "list"}),
    StorageClass("int", "int", formatter="json"),
    StorageClass("float", "float", formatter="json"),
    StorageClass("Text", "str", formatter="text"),
    StorageClass(
        "Bytes",
        "bytes",
        formatter="bytes",
        converters={"bytearray": "bytes", "memoryview": "bytes"},
    ),
    StorageClass("Pickle", "object", formatter="pickle"),
    StorageClass(
        "NumpyArray",
        "numpy.ndarray",
        parameters=("slice",),
        formatter="npy",
        converters={"list": "numpy", "tuple": "numpy", "pyarrow.Table": "structured_array"},
    ),
    _table("ArrowTable", "pyarrow.Table", "arrow"),
    _table("DataFrame", "pandas.DataFrame", "pandas"),
    _table("ArrowAstropy", "astropy.table.Table", "astropy"),
    _table("ArrowNumpy", "numpy.ndarray", "structured_array"),
    _table("ArrowNumpyDict", "dict", "numpy_dict"),
    # As a FITS binary table (astropy's own format); reads come back as the table.
    _table("AstropyTable", "astropy.table.Table", "astropy", "fits", "astropy.io.fits.HDUList"),
    StorageClass("ArrowSchema", "pyarrow.Schema", formatter="pickle"),
    StorageClass("DataFrameIndex", "pandas.Index", formatter="pickle"),
    StorageClass(
        "Fits",
        "astropy.io.fits.HDUList",
        derived_components=_FITS_COMPONENTS,
        parameters=("hdu",),
        formatter="fits",
        converters={
            "numpy.ndarray": "hdulist",
            "astropy.io.fits.PrimaryHDU": "hdulist",
            "astropy.io.fits.ImageHDU": "hdulist",
            "astropy.io.fits.BinTableHDU": "hdulist",
            "astropy.table.Table": "hdulist",
        },
    ),
    # A composite: its components can be stored as artifacts of their own
    # (``disassemble: true`` in a datastore's configuration of it).
    StorageClass(
        "ExposureLike",
        "astropy.io.fits.HDUList",
        components=_FITS_COMPONENTS,
        parameters=("hdu",),
        formatter="fits",
        converters={"numpy.ndarray": "hdulist", "astropy.io.fits.PrimaryHDU": "hdulist"},
        assembler="hdulist",
    ),
)

_CONFIG_KEYS = (
    "pytype",
    "inherits",
    "formatter",
    "parameters",
    "components",
    "derived_components",
    "converters",
    "assembler",
    "disassemble",
)


class StorageClassRegistry(Mapping[str, StorageClass]):
    """Storage classes by name: the shipped defaults, plus those a repository configures.

    Parameters
    ----------
    classes : `~collections.abc.Iterable` [`StorageClass`], optional
        The storage classes; `DEFAULT_STORAGE_CLASSES` when not given. A
        later one replaces an earlier one of the same name.

    Notes
    -----
    A storage class name the registry does not know is allowed for a dataset
    type (repositories made by daf_butler name many, such as ``ExposureF``):
    its datasets are written as before, by the formatter their object's
    type calls for, with nothing checked or converted.
    """

    def __init__(self, classes: Iterable[StorageClass] | None = None) -> None:
        chosen = DEFAULT_STORAGE_CLASSES if classes is None else classes
        self._classes: dict[str, StorageClass] = {c.name: c for c in chosen}

    def __getitem__(self, name: str) -> StorageClass:
        return self._classes[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    def __repr__(self) -> str:
        return f"StorageClassRegistry([{', '.join(sorted(self._classes))}])"

    def with_config(self, config: Mapping[str, Any] | None) -> StorageClassRegistry:
        """This registry plus the storage classes a configuration describes.

        Parameters
        ----------
        config : `~collections.abc.Mapping` [`str`, `~collections.abc.Mapping`] or `None`
            Storage class name to its description: ``pytype``, ``inherits``
            (a known storage class whose keys are the defaults),
            ``formatter``, ``parameters`` (a list), ``components``,
            ``derived_components`` and ``converters`` (mappings).

        Raises
        ------
        ConfigurationError
            For an unknown key, a value of the wrong type, an unknown
            formatter, converter, parameter, derived component or parent.
        """
        if not config:
            return self
        if not isinstance(config, Mapping):
            raise ConfigurationError(
                f"'storage_classes' must be a mapping of storage class name to its "
                f"description, not {config!r}."
            )
        classes = dict(self._classes)
        for name, entry in config.items():
            classes[str(name)] = _from_config(str(name), entry, classes)
        return StorageClassRegistry(classes.values())

    def coerce(self, obj: Any, storage_class: StorageClass, *, what: object) -> Any:
        """``obj`` as an object of ``storage_class``: as it is, or converted.

        Parameters
        ----------
        obj : `object`
            The object (to put, or as read).
        storage_class : `StorageClass`
            The storage class it must be.
        what : `object`
            What ``obj`` is, for the error message (``"the object put as 'x'"``);
            turned into text only when there is an error.

        Raises
        ------
        StorageClassError
            If ``obj`` is not of the storage class's type and no registered
            converter takes it (or the converter fails); the message names
            the storage class, the expected type and the object's type.
        """
        if storage_class.is_instance(obj):
            return obj
        converter = storage_class.converter_for(obj)
        if converter is None:
            accepted = [storage_class.pytype or "anything", *storage_class.converters]
            raise StorageClassError(
                f"Storage class {storage_class.name!r} holds {storage_class.pytype!r}, but "
                f"{what} is a {type_name(obj)!r}; give an object of type "
                f"{' or '.join(repr(a) for a in accepted)}, or use a dataset type of a "
                "storage class that holds it."
            )
        try:
            converted = convert(obj, converter)
        except StorageClassError as exc:
            raise StorageClassError(
                f"Storage class {storage_class.name!r} ({storage_class.pytype!r}): {what} "
                f"is a {type_name(obj)!r} that cannot be converted: {exc}"
            ) from exc
        return converted

    def readable_as(self, storage_class: StorageClass) -> list[str]:
        """Names of the storage classes a dataset of ``storage_class`` can be read as."""
        return sorted(name for name, c in self._classes.items() if c.converts_from(storage_class))

    def check_conversion(self, stored: StorageClass, wanted: StorageClass, what: str) -> None:
        """Refuse to read ``stored`` as ``wanted`` unless one converts to the other.

        Raises
        ------
        StorageClassError
            Naming the storage classes it can be read as.
        """
        if not wanted.converts_from(stored):
            raise StorageClassError(
                f"{what} of storage class {stored.name!r} cannot be read as {wanted.name!r}: "
                f"no converter from {stored.pytype!r} to {wanted.pytype!r}; it can be read as "
                f"{', '.join(map(repr, self.readable_as(stored)))}."
            )


def _from_config(name: str, entry: Any, known: Mapping[str, StorageClass]) -> StorageClass:
    where = f"storage class {name!r} of the datastore configuration"
    if not isinstance(entry, Mapping):
        raise ConfigurationError(
            f"The description of {where} must be a mapping (pytype, formatter, ...), not {entry!r}."
        )
    unknown = sorted(str(k) for k in entry if k not in _CONFIG_KEYS)
    if unknown:
        raise ConfigurationError(
            f"Unknown key(s) {', '.join(map(repr, unknown))} in {where}; valid keys are "
            f"{', '.join(map(repr, _CONFIG_KEYS))}."
        )
    base = StorageClass(name)
    parent = entry.get("inherits")
    if parent is not None:
        if parent not in known:
            raise ConfigurationError(
                f"{where.capitalize()} inherits from {parent!r}, which is not a known "
                f"storage class; known: {', '.join(map(repr, sorted(known)))}."
            )
        base = known[parent]
    from ..datastores.formatters import FORMATTERS

    formatter = entry.get("formatter", base.formatter)
    if formatter is not None and formatter not in FORMATTERS:
        raise ConfigurationError(
            f"{where.capitalize()} names formatter {formatter!r}; valid formatters: "
            f"{', '.join(map(repr, sorted(FORMATTERS)))}."
        )
    parameters = entry.get("parameters", sorted(base.parameters))
    if not isinstance(parameters, list) or not set(parameters) <= set(PARAMETERS):
        raise ConfigurationError(
            f"Key 'parameters' of {where} must be a list of parameter names among "
            f"{', '.join(map(repr, sorted(PARAMETERS)))}, not {parameters!r}."
        )
    mappings = {}
    for key, default, valid in (
        ("components", base.components, None),
        ("derived_components", base.derived_components, DERIVED_COMPONENTS),
        ("converters", base.converters, CONVERTERS),
    ):
        value = entry.get(key, default)
        if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ConfigurationError(
                f"Key {key!r} of {where} must be a mapping of strings to strings, not {value!r}."
            )
        names = set(value) if key == "derived_components" else set(value.values())
        if valid is not None and not names <= set(valid):
            raise ConfigurationError(
                f"Key {key!r} of {where} names {', '.join(map(repr, sorted(names - set(valid))))}"
                f"; valid names: {', '.join(map(repr, sorted(valid)))}."
            )
        mappings[key] = dict(value)
    assembler = entry.get("assembler", base.assembler)
    if assembler is not None and assembler not in ASSEMBLERS:
        raise ConfigurationError(
            f"{where.capitalize()} names assembler {assembler!r}; valid assemblers: "
            f"{', '.join(map(repr, sorted(ASSEMBLERS)))}."
        )
    disassemble = entry.get("disassemble", base.disassemble)
    if not isinstance(disassemble, bool):
        raise ConfigurationError(
            f"Key 'disassemble' of {where} must be a boolean (true or false), not {disassemble!r}."
        )
    if disassemble and (assembler is None or not mappings["components"]):
        raise ConfigurationError(
            f"{where.capitalize()} has 'disassemble: true' but no "
            f"{'assembler' if assembler is None else 'components'}: a storage class is "
            "disassembled into its stored components, split and put back together by its "
            f"assembler ({', '.join(map(repr, sorted(ASSEMBLERS)))}); inherit from one that "
            "has them (ExposureLike)."
        )
    pytype = entry.get("pytype", base.pytype)
    if pytype is not None and not isinstance(pytype, str):
        raise ConfigurationError(
            f"Key 'pytype' of {where} must be a qualified type name, not {pytype!r}."
        )
    try:
        return StorageClass(
            name,
            pytype,
            mappings["components"],
            derived_components=mappings["derived_components"],
            parameters=parameters,
            formatter=formatter,
            converters=mappings["converters"],
            assembler=assembler,
            disassemble=disassemble,
        )
    except InvalidNameError as exc:
        raise ConfigurationError(f"In the datastore configuration: {exc}") from exc
