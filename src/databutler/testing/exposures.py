"""Set-ups shared by the tests of queries over HSC-like exposures."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from databutler import Butler

from .butler import registry_arguments


def insert_filters(butler: Butler) -> None:
    """Instrument ``HSC``, bands ``g`` and ``r`` and physical filters ``HSC-G`` and ``HSC-R``."""
    butler.insert_dimension_records("instrument", {"instrument": "HSC"})
    butler.insert_dimension_records("band", {"band": "g"}, {"band": "r"})
    butler.insert_dimension_records(
        "physical_filter",
        {"instrument": "HSC", "physical_filter": "HSC-G", "band": "g"},
        {"instrument": "HSC", "physical_filter": "HSC-R", "band": "r"},
    )


@contextmanager
def filled_repository(backend: str, root: Path, fill: Callable[[Butler], None]) -> Iterator[str]:
    """The root of a new repository at ``root`` on ``backend``, filled by ``fill``.

    ``backend`` is ``"sqlite"`` or ``"postgresql"`` (a fresh schema, dropped
    when the block ends); the butler that filled it is closed before the block.
    """
    with registry_arguments(backend) as arguments:
        butler = Butler.create(str(root), **arguments)
        try:
            fill(butler)
        finally:
            butler.close()
        yield str(root)
