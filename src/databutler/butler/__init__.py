"""The `Butler`: a repository of datasets in three lines.

::

    butler = Butler.create("repo", run="r1")
    ref = butler.put({"a": 1}, "thing", instrument="Cam", detector=1)
    butler.get("thing", instrument="Cam", detector=1)
"""

from ._butler import (
    Butler,
    DatasetExistence,
    DatasetNotFoundError,
    DeferredDatasetHandle,
)
from ._config import RepositoryConfig
from ._delete import PruneResult, RemovedDatasets
from ._verify import Problem, VerifyReport

__all__ = [
    "Butler",
    "DatasetExistence",
    "DatasetNotFoundError",
    "DeferredDatasetHandle",
    "Problem",
    "PruneResult",
    "RemovedDatasets",
    "RepositoryConfig",
    "VerifyReport",
]
