"""The FITS formatter: astropy HDU lists, HDUs, images and tables (the optional ``astropy``)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from types import ModuleType
from typing import Any, ClassVar

from ..storage_classes._conversions import header_dict as _header_dict
from ._formatter_base import Formatter, FormatterError, _is_instance, _quoted, _require

__all__ = ["FitsFormatter"]

#: What to install for this formatter, as the argument of ``pip install``.
_INSTALL = "'databutler[fits]'"


def _is_hdu(obj: Any) -> bool:
    # Every HDU astropy writes is a primary HDU (groups included) or an extension.
    return _is_instance(obj, "astropy.io.fits", "PrimaryHDU") or _is_instance(
        obj, "astropy.io.fits.hdu.base", "ExtensionHDU"
    )


def _is_fits_object(obj: Any) -> bool:
    """Whether ``obj`` is an astropy HDU list or HDU, without importing astropy."""
    return _is_instance(obj, "astropy.io.fits", "HDUList") or _is_hdu(obj)


class FitsFormatter(Formatter):
    """FITS through astropy (the optional ``astropy`` package; ``databutler[fits]``).

    Writes an `astropy.io.fits.HDUList` as it is; a primary HDU alone, and
    any other HDU after an empty primary HDU; a `numpy.ndarray` as the
    primary HDU's image; an `astropy.table.Table` as a binary table HDU after
    an empty primary HDU.

    Reads return an `astropy.io.fits.HDUList` held wholly in memory (no open
    file, no memory map). Components:

    ``"primary"``
        The primary HDU's data, a `numpy.ndarray` (`None` if it has none).
    ``"header"``
        The primary header as a `dict` (``COMMENT`` and ``HISTORY`` as lists
        of `str`, undefined values as `None`).
    ``"table"``
        The first table HDU as an `astropy.table.Table`.

    The ``hdu`` parameter, an index or an ``EXTNAME``, returns that HDU's data
    instead; it cannot be combined with a component.

    Notes
    -----
    The bytes must be whole HDUs and nothing else: truncated files, and bytes
    after the last HDU, are refused rather than read in part.
    """

    name = "fits"
    extension = ".fits"
    supported_parameters = frozenset({"hdu"})
    supports_components = True

    #: Components `from_bytes` accepts.
    components: ClassVar[frozenset[str]] = frozenset({"header", "primary", "table"})

    def to_bytes(self, obj: Any) -> bytes:
        # docstring inherited
        is_array = _is_instance(obj, "numpy", "ndarray")
        is_table = _is_instance(obj, "astropy.table", "Table")
        if not (is_array or is_table or _is_fits_object(obj)):
            raise self._cannot_write(
                obj,
                "; it writes astropy.io.fits.HDUList and HDUs, numpy.ndarray and "
                "astropy.table.Table",
            )
        fits = _require("astropy.io.fits", "astropy", self.name, _INSTALL)
        if is_array and obj.dtype.hasobject:
            raise self._cannot_write(obj, " of object dtype; use the 'pickle' formatter")
        buffer = io.BytesIO()
        try:
            if isinstance(obj, fits.HDUList):
                hdus = obj
            elif is_array:
                hdus = fits.HDUList([fits.PrimaryHDU(obj)])
            elif is_table:
                hdus = fits.HDUList([fits.PrimaryHDU(), fits.table_to_hdu(obj)])
            elif isinstance(obj, fits.PrimaryHDU):
                hdus = fits.HDUList([obj])
            else:
                hdus = fits.HDUList([fits.PrimaryHDU(), obj])
            hdus.writeto(buffer)
        except KeyError as exc:  # astropy's way of refusing an image's dtype
            raise self._cannot_write(obj, f" (no FITS image type for dtype {exc})") from exc
        # A warning the caller made an error counts too.
        except (fits.VerifyError, ValueError, TypeError, OSError, Warning) as exc:
            reason = " ".join(str(exc).split())  # verification reports span lines
            raise self._cannot_write(obj, f" ({reason})") from exc
        return buffer.getvalue()

    def from_bytes(
        self,
        data: bytes,
        *,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        # docstring inherited
        parameters = self.check_read_options(component, parameters)
        fits = _require("astropy.io.fits", "astropy", self.name, _INSTALL)
        hdus = self._load(fits, data)
        if "hdu" in parameters:
            return _native(self._hdu(hdus, parameters["hdu"]).data)
        if component == "primary":
            return _native(hdus[0].data)
        if component == "header":
            return _header_dict(hdus[0].header, fits)
        if component == "table":
            return self._table(fits, hdus)
        return hdus

    def check_read_options(
        self, component: str | None, parameters: Mapping[str, Any] | None
    ) -> Mapping[str, Any]:
        # docstring inherited
        parameters = super().check_read_options(component, parameters)
        if component is not None and component not in self.components:
            raise FormatterError(
                f"The {self.name!r} formatter has no component {component!r}; "
                f"available components: {_quoted(self.components)}."
            )
        if "hdu" in parameters:
            hdu = parameters["hdu"]
            if isinstance(hdu, bool) or not isinstance(hdu, int | str):
                raise FormatterError(
                    f"The {self.name!r} formatter's 'hdu' parameter must be an HDU index (int) "
                    f"or EXTNAME (str), not {hdu!r}."
                )
            if component is not None:
                raise FormatterError(
                    f"The {self.name!r} formatter takes a component or the 'hdu' parameter, "
                    f"not both (component {component!r}, hdu {hdu!r})."
                )
        return parameters

    def _load(self, fits: ModuleType, data: bytes) -> Any:
        """Read every HDU of ``data`` into memory, and close the file."""
        try:
            with fits.open(io.BytesIO(data), memmap=False, lazy_load_hdus=False) as hdus:
                for hdu in hdus:
                    hdu.data  # noqa: B018 -- read now, while the file is open
                last = hdus.fileinfo(len(hdus) - 1)
        # Corrupt FITS fails in many ways (OSError, TypeError, VerifyError, ...).
        except Exception as exc:
            raise self._cannot_read(exc) from exc
        # astropy reads a truncated file in part (with a warning): refuse it.
        end = last["datLoc"] + last["datSpan"]
        if end != len(data):
            raise FormatterError(
                f"The {self.name!r} formatter cannot read these bytes: its {len(hdus)} HDU(s) "
                f"end at byte {end}, but there are {len(data)} bytes (truncated or corrupt)."
            )
        return hdus

    def _hdu(self, hdus: Any, key: int | str) -> Any:
        try:
            return hdus[key]
        except (IndexError, KeyError):
            available = ", ".join(f"{i} ({hdu.name!r})" for i, hdu in enumerate(hdus))
            raise FormatterError(
                f"The {self.name!r} formatter has no HDU {key!r} in this dataset; "
                f"available HDUs: {available}."
            ) from None

    def _table(self, fits: ModuleType, hdus: Any) -> Any:
        for hdu in hdus:
            # Before astropy 7 a compressed image is a BinTableHDU too.
            if isinstance(hdu, fits.BinTableHDU | fits.TableHDU) and not isinstance(
                hdu, fits.CompImageHDU
            ):
                table = _require("astropy.table", "astropy", self.name, _INSTALL)
                try:
                    return table.Table.read(hdu, format="fits")
                except (ValueError, TypeError, KeyError, Warning) as exc:
                    raise self._cannot_read(exc) from exc
        kinds = ", ".join(type(hdu).__name__ for hdu in hdus)
        raise FormatterError(
            f"The {self.name!r} formatter has no component 'table' in this dataset: "
            f"it has no table HDU (its HDUs: {kinds})."
        )


def _native(data: Any) -> Any:
    """An image array in this machine's byte order (FITS stores big-endian)."""
    dtype = getattr(data, "dtype", None)
    if dtype is None or dtype.names is not None or dtype.isnative or dtype.byteorder == "|":
        return data  # no array, a table (records), or single bytes
    return data.astype(dtype.newbyteorder("="))
