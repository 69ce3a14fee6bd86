"""The dataset table manager, as far as other managers need it."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

from ... import ddl
from ._versioning import VersionedExtension, VersionTuple

if TYPE_CHECKING:
    from ...dimensions import DimensionUniverse
    from ._database import Database, StaticTablesContext

__all__ = ["DatasetRecordStorageManager"]


class DatasetRecordStorageManager(VersionedExtension):
    """Manages the ``dataset`` table; other managers reach it only through foreign keys."""

    #: Name of the table whose ``id`` column dataset foreign keys reference.
    DATASET_TABLE = "dataset"

    @classmethod
    @abstractmethod
    def initialize(
        cls,
        db: Database,
        context: StaticTablesContext,
        *,
        universe: DimensionUniverse,
        collections: Any = None,
        dimensions: Any = None,
        registry_schema_version: VersionTuple | None = None,
    ) -> DatasetRecordStorageManager:
        """Declare the dataset tables and return an instance.

        ``collections`` and ``dimensions`` are the collection and dimension
        record managers, for managers whose tables reference theirs.
        """
        raise NotImplementedError()

    @abstractmethod
    def clone(self, db: Database) -> DatasetRecordStorageManager:
        """A copy bound to ``db``."""
        raise NotImplementedError()

    @classmethod
    def getIdColumnType(cls) -> type:
        """The column type of dataset ids (`~databutler.ddl.GUID`)."""
        return ddl.GUID

    @classmethod
    def addDatasetForeignKey(
        cls,
        tableSpec: ddl.TableSpec,
        *,
        name: str = "dataset",
        constraint: bool = True,
        onDelete: str | None = None,
        **kwargs: Any,
    ) -> ddl.FieldSpec:
        """Add a ``{name}_id`` column referencing the dataset table to ``tableSpec``.

        Parameters
        ----------
        tableSpec : `~databutler.ddl.TableSpec`
            The table to add the column (and foreign key) to.
        name : `str`, optional
            Prefix of the column name.
        constraint : `bool`, optional
            Add the foreign-key constraint (``False`` for rows that must
            outlive their dataset, such as trash rows).
        onDelete : `str`, optional
            `None` (restrict), ``"CASCADE"`` or ``"SET NULL"``.
        **kwargs
            Passed to the new `~databutler.ddl.FieldSpec` (``primaryKey=True``, ...).

        Returns
        -------
        field : `~databutler.ddl.FieldSpec`
            The new column.
        """
        kwargs.setdefault("nullable", False)
        field = ddl.FieldSpec(f"{name}_id", dtype=cls.getIdColumnType(), **kwargs)
        tableSpec.fields.add(field)
        if constraint:
            tableSpec.foreignKeys.append(
                ddl.ForeignKeySpec(
                    cls.DATASET_TABLE, source=(field.name,), target=("id",), onDelete=onDelete
                )
            )
        return field
