"""The formatter contract: the `Formatter` ABC, its error, and helpers its implementations share.

`databutler.datastores.formatters` is the public face (the registry and the
built-in formatters); formatters that need optional packages live in their own
modules (`_parquet`, `_fits`) and import only this one.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from types import ModuleType
from typing import Any, BinaryIO, ClassVar

from .._exceptions import ConfigurationError, DatabutlerError

__all__ = ["Formatter", "FormatterError"]


class FormatterError(DatabutlerError, ValueError):
    """An object cannot be written, or bytes cannot be read, by a formatter.

    The message names the formatter and the object's type, component or
    parameter at fault.
    """


def _require(module: str, package: str, formatter: str, install: str | None = None) -> ModuleType:
    """Import ``module`` (from distribution ``package``) for ``formatter``.

    Raises `ConfigurationError`, saying what to install (``install``, an
    argument of ``pip install``; ``package`` by default), if it cannot be imported.
    """
    message = (
        f"The {formatter!r} formatter needs the optional package {package!r}; "
        f"install it with `pip install {install or package}`."
    )
    # find_spec on a dotted name imports the parent, so ask about the top level only.
    if importlib.util.find_spec(module.partition(".")[0]) is None:
        raise ConfigurationError(message)
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(message) from exc


def _is_instance(obj: Any, module: str, type_name: str) -> bool:
    """Whether ``obj`` is a ``module.type_name``, without importing ``module``.

    An object of a type from a module that was never imported cannot exist, so
    only modules already in `sys.modules` are looked at.
    """
    loaded = sys.modules.get(module)
    if loaded is None:
        return False
    cls = getattr(loaded, type_name, None)
    return isinstance(cls, type) and isinstance(obj, cls)


def _type_name(obj: Any) -> str:
    kind = type(obj)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _quoted(names: Any) -> str:
    listed = ", ".join(repr(name) for name in sorted(names, key=str))
    return listed or "none"


class Formatter(ABC):
    """Turns one kind of in-memory object into bytes and back.

    Subclasses implement `to_bytes` and `from_bytes`, and declare their
    registered `name`, file `extension`, the read `supported_parameters` and
    whether reads may ask for a component (`supports_components`). Formatters
    hold no state.
    """

    #: Short registered name (``"json"``), as used by `formatter_for`.
    name: ClassVar[str]

    #: File name extension, with the leading dot (``".json"``).
    extension: ClassVar[str]

    #: Parameters `from_bytes` accepts.
    supported_parameters: ClassVar[frozenset[str]] = frozenset()

    #: Whether `from_bytes` accepts a ``component``.
    supports_components: ClassVar[bool] = False

    #: Read parameters `from_bytes` applies while reading, returning the same
    #: type it would without them; a datastore applies the others in memory.
    pushdown_parameters: ClassVar[frozenset[str]] = frozenset()

    #: Derived components `read_derived` computes from the bytes, without
    #: building the whole object.
    derived_components: ClassVar[frozenset[str]] = frozenset()

    #: Whether `read_file` reads only the parts of a file a read needs
    #: (given parameters or a derived component), rather than all its bytes.
    reads_parts: ClassVar[bool] = False

    def read_file(
        self,
        file: BinaryIO,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """Deserialize from a seekable binary file, as `from_bytes` does from its bytes.

        Formatters that set `reads_parts` read only what they need; the
        default reads every byte and calls `from_bytes`.
        """
        return self.from_bytes(file.read(), component=component, parameters=parameters)

    def read_file_derived(self, file: BinaryIO, component: str, pytype: str | None) -> Any:
        """`read_derived` from a seekable binary file (see `read_file`)."""
        return self.read_derived(file.read(), component, pytype)

    def read_derived(self, data: bytes, component: str, pytype: str | None) -> Any:
        """Compute the derived component ``component`` (one of `derived_components`).

        Parameters
        ----------
        data : `bytes`
            Bytes written by `to_bytes`.
        component : `str`
            The component's name.
        pytype : `str` or `None`
            Qualified name of the Python type the whole dataset is read as
            (components may depend on it, as a DataFrame's ``columns`` does).

        Raises
        ------
        FormatterError
            Raised if the bytes cannot be read.
        """
        raise FormatterError(f"The {self.name!r} formatter computes no component {component!r}.")

    @abstractmethod
    def to_bytes(self, obj: Any) -> bytes:
        """Serialize an object.

        Parameters
        ----------
        obj : `object`
            The object to write.

        Returns
        -------
        data : `bytes`
            Its serialized form.

        Raises
        ------
        FormatterError
            Raised if this formatter cannot write an object of that type (or
            that content).
        ConfigurationError
            Raised if an optional package the formatter needs is not installed.
        """
        raise NotImplementedError()

    @abstractmethod
    def from_bytes(
        self,
        data: bytes,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """Deserialize an object, or part of it.

        Parameters
        ----------
        data : `bytes`
            Bytes written by `to_bytes`.
        component : `str`, optional
            Return only this component of the stored object.
        parameters : `~collections.abc.Mapping` [`str`, `object`], optional
            Read options; their names must be in `supported_parameters`.

        Returns
        -------
        obj : `object`
            The object (or component, or subset) read.

        Raises
        ------
        FormatterError
            Raised if the bytes are not valid for this formatter, or the
            component or a parameter is unknown or unusable.
        ConfigurationError
            Raised if an optional package the formatter needs is not installed.
        """
        raise NotImplementedError()

    def check_read_options(
        self, component: str | None, parameters: Mapping[str, Any] | None
    ) -> Mapping[str, Any]:
        """Check a read's component and parameter names against what is supported.

        Parameters
        ----------
        component : `str` or `None`
            The component asked for.
        parameters : `~collections.abc.Mapping` [`str`, `object`] or `None`
            The parameters given.

        Returns
        -------
        parameters : `~collections.abc.Mapping` [`str`, `object`]
            The parameters, empty if `None` was given.

        Raises
        ------
        FormatterError
            Raised if a component is asked for and this formatter has none, or
            if a parameter is not supported; the message lists what is.
        """
        if component is not None and not self.supports_components:
            raise FormatterError(
                f"The {self.name!r} formatter has no component {component!r}; "
                "it supports no components."
            )
        parameters = {} if parameters is None else parameters
        unknown = set(parameters) - self.supported_parameters
        if unknown:
            raise FormatterError(
                f"The {self.name!r} formatter does not support parameter(s) {_quoted(unknown)}; "
                f"supported parameters: {_quoted(self.supported_parameters)}."
            )
        return parameters

    def _cannot_write(self, obj: Any, hint: str = "") -> FormatterError:
        return FormatterError(
            f"The {self.name!r} formatter cannot write an object of type {_type_name(obj)!r}{hint}."
        )

    def _cannot_read(self, exc: BaseException) -> FormatterError:
        return FormatterError(f"The {self.name!r} formatter cannot read these bytes: {exc}")

    def _mapping_component(self, value: Any, component: str | None) -> Any:
        """Return one key's value of a stored mapping, or all of it."""
        if component is None:
            return value
        if not isinstance(value, dict):
            raise FormatterError(
                f"The {self.name!r} formatter has no component {component!r}: components "
                f"are the keys of a stored mapping, and this dataset is a {_type_name(value)!r}."
            )
        try:
            return value[component]
        except KeyError:
            raise FormatterError(
                f"The {self.name!r} formatter has no component {component!r} in this dataset; "
                f"available components: {_quoted(value)}."
            ) from None
