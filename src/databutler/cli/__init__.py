"""The ``databutler`` command: thin adapters over `databutler.butler.Butler`.

Each command parses its arguments, makes one library call and prints the
result. Shared options live in ``_options``, printing in ``_output``; the
commands are grouped by what they touch:

- ``_repo``: ``create``, ``config-dump``, ``demo``
- ``_registry``: dataset types, dimension records, chains, tags, calibrations
- ``_query``: the read-only ``query-*`` commands and ``where``
- ``_delete``: ``prune-datasets``, ``remove-runs``, ``empty-trash``
- ``_transfer``: ``ingest-files``, ``transfer-datasets``, ``export``, ``import``,
  ``retrieve-artifacts``
- ``_verify``: ``verify``
- ``_migrate``: ``migrate`` (a daf_butler repository into a databutler one)

Nothing in ``databutler/__init__.py`` imports this package.
"""

from . import _delete, _migrate, _query, _registry, _repo, _transfer, _verify  # noqa: F401  (registers commands)
from ._app import EXIT_ABORTED, EXIT_ERROR, EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, main
from ._reference import render_reference

__all__ = [
    "EXIT_ABORTED",
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_PROBLEMS",
    "EXIT_USAGE",
    "main",
    "render_reference",
]
