"""`DatasetAssociation`: a dataset in one collection, with its validity range there."""

from __future__ import annotations

from dataclasses import dataclass

from ..._collection_type import Timespan
from ..._dataset_ref import DatasetRef

__all__ = ["DatasetAssociation"]


@dataclass(frozen=True, slots=True)
class DatasetAssociation:
    """A dataset in a collection, as `~databutler.Butler.query_dataset_associations` gives it.

    Parameters
    ----------
    ref : `DatasetRef`
        The dataset.
    collection : `str`
        The collection holding it (its RUN, a TAGGED or a CALIBRATION one).
    timespan : `Timespan` or `None`
        In a CALIBRATION collection, the range over which the dataset is
        certified (a dataset certified over several ranges has one
        association per range); `None` in other collections.
    """

    ref: DatasetRef
    collection: str
    timespan: Timespan | None
