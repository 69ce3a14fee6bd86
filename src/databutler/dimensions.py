"""The dimension universe: which dimensions a repository knows.

This module holds the part the registry–datastore bridge needs: an identifiable,
serialisable universe that a repository stores at creation and reopens with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["DimensionUniverse"]

_DEFAULT_NAMESPACE = "databutler"
_DEFAULT_VERSION = 1


@dataclass(frozen=True, slots=True)
class DimensionUniverse:
    """All the dimensions known to a repository.

    ``DimensionUniverse()`` is the default universe that ships with databutler.

    Parameters
    ----------
    namespace : `str`, optional
        Who defined this universe.
    version : `int`, optional
        Version of the universe within its namespace.
    """

    namespace: str = _DEFAULT_NAMESPACE
    version: int = _DEFAULT_VERSION

    def to_json(self) -> str:
        """Serialise to the JSON stored in a repository's attributes."""
        return json.dumps({"namespace": self.namespace, "version": self.version}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DimensionUniverse:
        """Rebuild a universe from `to_json` output.

        Raises
        ------
        ValueError
            If ``text`` is not a JSON object with ``namespace`` and ``version``.
        """
        try:
            data = json.loads(text)
            return cls(namespace=str(data["namespace"]), version=int(data["version"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"Stored dimension universe {text[:80]!r} is not valid; expected a JSON object "
                "with 'namespace' and 'version'."
            ) from exc
