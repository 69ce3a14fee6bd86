"""PyYAML's safe loader and dumper, the C implementations where PyYAML was built with libyaml.

The C loader is about six times faster than the pure-Python one and the C
dumper more than three times; both accept and produce the same documents for
the plain data databutler stores (mappings, lists, strings, numbers, dates).
PyYAML is imported on first use, so that ``import databutler`` stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["dump", "load"]


def load(text: str | bytes) -> Any:
    """Parse one YAML document with the safe loader (no arbitrary Python objects)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(text, Loader=loader)


def dump(data: Any, *, sort_keys: bool = False) -> str:
    """Write ``data`` as YAML with the safe dumper."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return str(yaml.dump(data, Dumper=dumper, sort_keys=sort_keys))
