"""Artifacts in a dictionary: for tests and ephemeral use."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from ..._exceptions import AlreadyExistsError
from ._base import ResourceStore, check_relative_path

__all__ = ["MemoryStore"]


class MemoryStore(ResourceStore):
    """Artifacts held in this process's memory, gone when it ends.

    Parameters
    ----------
    name : `str`, optional
        A label, shown in the root URI ``mem://name``.
    """

    is_persistent = False

    def __init__(self, name: str = "memory") -> None:
        self._name = name
        self._data: dict[str, bytes] = {}
        self._arrived: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def root(self) -> str:
        # docstring inherited
        return f"mem://{self._name}"

    def read(self, path: str) -> bytes:
        # docstring inherited
        try:
            return self._data[check_relative_path(path)]
        except KeyError:
            raise FileNotFoundError(f"No artifact {path!r} in {self.root}.") from None

    def write(self, path: str, data: bytes, *, overwrite: bool = False) -> None:
        # docstring inherited
        check_relative_path(path)
        with self._lock:
            if not overwrite and path in self._data:
                raise AlreadyExistsError(f"Artifact {path!r} exists already in {self.root}.")
            self._data[path] = bytes(data)
            self._arrived[path] = time.time()

    def size(self, path: str) -> int:
        # docstring inherited
        return len(self.read(path))

    def arrived(self, path: str) -> float | None:
        # docstring inherited
        with self._lock:
            return self._arrived.get(check_relative_path(path))

    def delete(self, path: str) -> bool:
        # docstring inherited
        check_relative_path(path)
        with self._lock:
            self._arrived.pop(path, None)
            return self._data.pop(path, None) is not None

    def list(self, prefix: str = "") -> Iterator[str]:
        # docstring inherited
        start = check_relative_path(prefix).rstrip("/") + "/" if prefix else ""
        with self._lock:
            return iter(sorted(p for p in self._data if p.startswith(start)))
