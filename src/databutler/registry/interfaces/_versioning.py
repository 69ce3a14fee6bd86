"""Schema versions of registry managers."""

from __future__ import annotations

import re
from typing import ClassVar, NamedTuple

from ..._exceptions import IncompatibleVersionError

__all__ = ["IncompatibleVersionError", "VersionTuple", "VersionedExtension"]

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


class VersionTuple(NamedTuple):
    """A schema version, ``major.minor.patch``."""

    major: int
    minor: int
    patch: int

    @classmethod
    def fromString(cls, versionStr: str) -> VersionTuple:
        """Parse ``"X.Y.Z"``.

        Raises
        ------
        ValueError
            If the string is not three dot-separated non-negative integers.
        """
        match = _VERSION_RE.match(versionStr.strip()) if isinstance(versionStr, str) else None
        if match is None:
            raise ValueError(
                f"Invalid schema version {versionStr!r}; expected three integers such as '1.0.2'."
            )
        return cls(*(int(part) for part in match.groups()))

    def checkCompatibility(self, registry_schema_version: VersionTuple, update: bool) -> bool:
        """Whether code at this version can use a database at ``registry_schema_version``.

        A different major version never works. A different minor version works
        only for reading (``update`` false) a database older than the code.
        Patch versions never matter.
        """
        if self.major != registry_schema_version.major:
            return False
        if self.minor != registry_schema_version.minor:
            return self.minor > registry_schema_version.minor and not update
        return True

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


class VersionedExtension:
    """A registry manager whose schema has a version stored in the repository.

    Parameters
    ----------
    registry_schema_version : `VersionTuple` or `None`, optional
        The version stored in the repository; `None` when creating a new one.
    """

    def __init__(self, *, registry_schema_version: VersionTuple | None = None) -> None:
        self._registry_schema_version = registry_schema_version

    @classmethod
    def extensionName(cls) -> str:
        """The fully qualified class name, as stored in the repository."""
        return f"{cls.__module__}.{cls.__qualname__}"

    #: The one schema version a manager supports (`None`: unversioned). A manager that
    #: supports several overrides `currentVersions` instead.
    _VERSION: ClassVar[VersionTuple | None] = None

    @classmethod
    def currentVersions(cls) -> list[VersionTuple]:
        """Schema versions this code supports; empty means unversioned."""
        return [] if cls._VERSION is None else [cls._VERSION]

    @classmethod
    def clsNewSchemaVersion(cls, schema_version: VersionTuple | None) -> VersionTuple | None:
        """The version a new repository gets: the configured one, else the only one."""
        versions = cls.currentVersions()
        if not versions:
            return None
        if schema_version is not None:
            cls.checkNewSchemaVersion(schema_version)
            return schema_version
        if len(versions) == 1:
            return versions[0]
        return cls._newDefaultSchemaVersion()

    @classmethod
    def _newDefaultSchemaVersion(cls) -> VersionTuple:
        raise NotImplementedError(
            f"{cls.extensionName()} supports several schema versions and must say which one "
            "new repositories get."
        )

    def newSchemaVersion(self) -> VersionTuple | None:
        """The version this instance writes (the stored one, or the default for new repos)."""
        if self._registry_schema_version is not None:
            return self._registry_schema_version
        return self.clsNewSchemaVersion(None)

    @classmethod
    def checkNewSchemaVersion(cls, schema_version: VersionTuple) -> None:
        """Require ``schema_version`` to be one of `currentVersions` exactly.

        Raises
        ------
        IncompatibleVersionError
            If it is not.
        """
        supported = cls.currentVersions()
        if supported and schema_version not in supported:
            raise IncompatibleVersionError(
                f"Manager {cls.extensionName()} cannot create schema version {schema_version}; "
                f"supported versions: {', '.join(map(str, supported))}."
            )

    @classmethod
    def checkCompatibility(cls, registry_schema_version: VersionTuple, update: bool) -> None:
        """Check that this code can use a repository at ``registry_schema_version``.

        Parameters
        ----------
        registry_schema_version : `VersionTuple`
            The version stored in the repository.
        update : `bool`
            Whether the repository is opened for writing.

        Raises
        ------
        IncompatibleVersionError
            If no supported version is compatible; the message names the
            manager, the stored and the supported versions.
        """
        supported = cls.currentVersions()
        if not supported:
            return
        if any(v.checkCompatibility(registry_schema_version, update) for v in supported):
            return
        mode = "read-write" if update else "read-only"
        raise IncompatibleVersionError(
            f"Manager {cls.extensionName()}: the repository stores schema version "
            f"{registry_schema_version}, but this code supports "
            f"{', '.join(map(str, supported))} ({mode}). Open it with a databutler release "
            "that supports that schema, or migrate the repository."
        )
