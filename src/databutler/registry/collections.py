"""Collections: RUN, TAGGED, CHAINED and CALIBRATION, by name.

Tables: ``collection(collection_id, name, type, doc)`` and
``collection_chain(parent_id, position, child_id)``. Chains are ordered,
may nest, and never form a cycle; a collection that is a member of a chain
cannot be removed until it is taken out of every chain.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import sqlalchemy

from .. import ddl
from .._arguments import describe, require_str, require_strs
from .._collection_type import CollectionType
from .._deprecation import renamed
from .._exceptions import (
    ArgumentTypeError,
    CollectionError,
    ConflictError,
    InvalidArgumentError,
    InvalidNameError,
    MissingCollectionError,
)
from ._committed_cache import CommittedCache
from .attributes import SchemaGeneration
from .interfaces import Database, StaticTablesContext, VersionedExtension, VersionTuple

__all__ = [
    "MAX_COLLECTION_NAME",
    "CollectionRecord",
    "SimpleCollectionManager",
    "validate_collection_name",
]


def _check_doc(doc: object) -> None:
    """Refuse documentation that is not text, or that no database can store."""
    text = require_str(doc, "doc", optional=True)
    if text is not None and "\x00" in text:
        raise InvalidArgumentError(
            "The documentation contains a NUL character, which databases cannot store; remove it."
        )
    if text is not None and not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidArgumentError(
                f"The documentation has a lone surrogate at character {exc.start}, which is not "
                "valid Unicode; give properly encoded text."
            ) from None


_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@/:+=-]*")

#: The ``collection.name`` column's length: names a lookup may meet.
_MAX_NAME = 256

#: Longest name a new collection may have. File templates put a run name in
#: one path component (``/`` becomes ``_``), with room left for what a
#: template may add to it, within the 255 bytes every file system allows.
MAX_COLLECTION_NAME = 200


def validate_collection_name(name: Any, *, registering: bool = True) -> str:
    """Return ``name`` if it is a valid collection name.

    A collection name is 1-200 characters from ASCII letters, digits and
    ``_ . - @ / : + =``, starting with a letter, digit or underscore
    (``HSC/runs/RC2``, ``u/someone/tickets/DM-1234``); its ``/``-separated
    parts are neither empty nor ``.`` or ``..``.

    Parameters
    ----------
    name : `str`
        The name.
    registering : `bool`, optional
        Whether a new collection is to get the name; for a lookup, names up
        to the column's length (256) of older repositories pass.

    Raises
    ------
    InvalidNameError
        If it is not, saying why.
    """
    limit = MAX_COLLECTION_NAME if registering else _MAX_NAME
    rule = (
        f"a collection name is 1-{MAX_COLLECTION_NAME} characters from ASCII letters, digits "
        "and _ . - @ / : + =, starting with a letter, digit or underscore, with no empty, "
        "'.' or '..' part between slashes"
    )
    if not isinstance(name, str):
        raise InvalidNameError(f"Collection name {name!r} is not a string; {rule}.")
    if not name:
        raise InvalidNameError(f"A collection name cannot be empty; {rule}.")
    if len(name) > limit:
        raise InvalidNameError(
            f"The collection name {name[:40]!r}... is {len(name)} characters long; the limit is "
            f"{MAX_COLLECTION_NAME} (a run name is one path component of each artifact, "
            "which file systems limit to 255 bytes). Choose a shorter name."
        )
    if not _NAME_RE.fullmatch(name):
        raise InvalidNameError(f"Invalid collection name {name[:60]!r}; {rule}.")
    if registering and any(part in ("", ".", "..") for part in name.split("/")):
        raise InvalidNameError(f"Invalid collection name {name[:60]!r}; {rule}.")
    return name


@dataclass(frozen=True, slots=True)
class CollectionRecord:
    """A collection as the registry knows it."""

    key: int
    name: str
    type: CollectionType
    doc: str | None = None


class SimpleCollectionManager(VersionedExtension):
    """Registers, chains, finds and removes collections.

    Parameters
    ----------
    db : `Database`
        The database.
    tables : `tuple` [`sqlalchemy.Table`, `sqlalchemy.Table`]
        The ``collection`` and ``collection_chain`` tables.
    registry_schema_version : `VersionTuple`, optional
        The stored schema version.
    """

    _VERSION: ClassVar[VersionTuple | None] = VersionTuple(1, 0, 0)

    def __init__(
        self,
        db: Database,
        tables: tuple[sqlalchemy.Table, sqlalchemy.Table],
        registry_schema_version: VersionTuple | None = None,
    ) -> None:
        super().__init__(registry_schema_version=registry_schema_version)
        self._db = db
        self._collection, self._chain = tables
        # This client's writes clear these; refresh() does for other clients' changes.
        self._by_name: CommittedCache[str, CollectionRecord] = CommittedCache(db)
        self._children_of: CommittedCache[int, list[CollectionRecord]] = CommittedCache(db)
        #: Bumped by every change here; set by the registry that owns this manager.
        self.generation: SchemaGeneration | None = None
        # `find` is a driver-level read (inside a transaction it carries the BEGIN).
        names = ", ".join(db.quote_name(c) for c in ("collection_id", "name", "type", "doc"))
        self._find_sql = (
            f"SELECT {names} FROM {db.quoted(self._collection)} "
            f"WHERE {db.quote_name('name')} = {db.PLACEHOLDER}"
        )

    @classmethod
    def initialize(
        cls,
        db: Database,
        context: StaticTablesContext,
        *,
        registry_schema_version: VersionTuple | None = None,
    ) -> SimpleCollectionManager:
        """Declare the collection tables and return a manager."""
        collection = context.addTable(
            "collection",
            ddl.TableSpec(
                [
                    ddl.FieldSpec(
                        "collection_id", sqlalchemy.BigInteger, primaryKey=True, autoincrement=True
                    ),
                    ddl.FieldSpec("name", sqlalchemy.String, length=_MAX_NAME, nullable=False),
                    ddl.FieldSpec("type", sqlalchemy.SmallInteger, nullable=False),
                    ddl.FieldSpec("doc", sqlalchemy.Text, nullable=True),
                ],
                unique=[("name",)],
                doc="Every collection: RUN, TAGGED, CHAINED or CALIBRATION.",
            ),
        )
        chain = context.addTable(
            "collection_chain",
            ddl.TableSpec(
                [
                    ddl.FieldSpec("parent_id", sqlalchemy.BigInteger, primaryKey=True),
                    ddl.FieldSpec("position", sqlalchemy.SmallInteger, primaryKey=True),
                    ddl.FieldSpec("child_id", sqlalchemy.BigInteger, nullable=False),
                ],
                foreignKeys=[
                    ddl.ForeignKeySpec(
                        "collection", ("parent_id",), ("collection_id",), onDelete="CASCADE"
                    ),
                    # No cascade: a child cannot be removed while a chain holds it.
                    ddl.ForeignKeySpec("collection", ("child_id",), ("collection_id",)),
                ],
                doc="The ordered members of CHAINED collections.",
            ),
        )
        return cls(db, (collection, chain), registry_schema_version)

    def clone(self, db: Database) -> SimpleCollectionManager:
        """A copy bound to ``db``."""
        return type(self)(db, (self._collection, self._chain), self._registry_schema_version)

    @property
    def table(self) -> sqlalchemy.Table:
        """The ``collection`` table (for foreign keys from other managers)."""
        return self._collection

    def refresh(self) -> None:
        """Forget cached collections and chains, to see other clients' changes."""
        self._by_name.clear()
        self._children_of.clear()

    def _bump(self) -> None:
        """Tell other clients' caches that collections changed (inside the change's transaction)."""
        if self.generation is not None:
            self.generation.bump()

    # -- reading --------------------------------------------------------

    def _records(self, where: Any = None) -> list[CollectionRecord]:
        c = self._collection.c
        sql = sqlalchemy.select(c.collection_id, c.name, c.type, c.doc).order_by(c.name)
        if where is not None:
            sql = sql.where(where)
        with self._db.query(sql) as result:
            return [CollectionRecord(r[0], r[1], CollectionType(r[2]), r[3]) for r in result]

    def cached(self, name: str) -> bool:
        """Whether ``name`` is in this client's cache (no query)."""
        return name in self._by_name

    def find(self, name: str) -> CollectionRecord:
        """The collection ``name``.

        Raises
        ------
        MissingCollectionError
            If there is none.
        """
        cached = self._by_name.get(name) if isinstance(name, str) else None
        if cached is not None:
            return cached
        validate_collection_name(name, registering=False)
        with self._db.query_raw(self._find_sql, (name,)) as rows:
            found = [CollectionRecord(r[0], r[1], CollectionType(r[2]), r[3]) for r in rows]
        if not found:
            raise MissingCollectionError(
                f"No collection named {name!r}; check the name ('databutler query-collections' "
                f"lists them) or create it: registerRun({name!r}) for a run, "
                "registerCollection(...) for another type."
            )
        record = found[0]
        self._by_name.keep(name, record)
        return record

    def query(
        self, pattern: str | None = None, types: Iterable[CollectionType] | None = None
    ) -> list[CollectionRecord]:
        """Collections whose names match the glob ``pattern`` (all by default), sorted by name.

        Parameters
        ----------
        pattern : `str`, optional
            Shell-style glob (``HSC/runs/*``); exact names match themselves.
        types : `~collections.abc.Iterable` [`CollectionType`], optional
            Keep only collections of these types.
        """
        where = None
        if types is not None:
            wanted = [CollectionType(t).value for t in types]
            where = self._collection.c.type.in_(wanted)
        records = self._records(where)
        if pattern is None:
            return records
        return [r for r in records if fnmatch.fnmatchcase(r.name, pattern)]

    def get_chain(self, name: str) -> tuple[str, ...]:
        """The direct members of CHAINED collection ``name``, in order."""
        record = self._require(name, CollectionType.CHAINED)
        return tuple(r.name for r in self._children(record.key))

    def _children(self, key: int) -> list[CollectionRecord]:
        cached = self._children_of.get(key)
        if cached is not None:
            return cached
        chain, c = self._chain.c, self._collection.c
        sql = (
            sqlalchemy.select(c.collection_id, c.name, c.type, c.doc)
            .join_from(self._collection, self._chain, chain.child_id == c.collection_id)
            .where(chain.parent_id == key)
            .order_by(chain.position)
        )
        with self._db.query(sql) as result:
            children = [CollectionRecord(r[0], r[1], CollectionType(r[2]), r[3]) for r in result]
        self._children_of.keep(key, children)
        return children

    def resolve(self, names: Iterable[str]) -> list[CollectionRecord]:
        """The non-chained collections to search for ``names``, in search order.

        Chains are flattened depth-first in their order; a collection reached
        twice is searched at its first place only.
        """
        seen: set[int] = set()
        out: list[CollectionRecord] = []

        def visit(record: CollectionRecord) -> Iterator[CollectionRecord]:
            if record.key in seen:
                return
            seen.add(record.key)
            if record.type is CollectionType.CHAINED:
                for child in self._children(record.key):
                    yield from visit(child)
            else:
                yield record

        for name in names:
            out.extend(visit(self.find(name)))
        return out

    def getDocumentation(self, name: str) -> str | None:
        """The documentation string of collection ``name``."""
        return self.find(name).doc

    # -- writing --------------------------------------------------------

    def register(
        self, name: str, type: CollectionType = CollectionType.RUN, doc: str | None = None
    ) -> tuple[CollectionRecord, bool]:
        """Make sure collection ``name`` exists with ``type``.

        Returns
        -------
        record : `CollectionRecord`
            The collection.
        registered : `bool`
            Whether it was new.

        Raises
        ------
        CollectionError
            If it exists with another type.
        """
        record, registered = self.ensure(name, type, doc)
        if record.type is not type:
            raise CollectionError(
                f"Collection {name!r} exists already as {record.type.name}, not {type.name}; "
                "choose another name or remove the existing collection."
            )
        return record, registered

    def ensure(
        self, name: str, type: CollectionType = CollectionType.RUN, doc: str | None = None
    ) -> tuple[CollectionRecord, bool]:
        """Collection ``name``, registered with ``type`` if there is none (an existing one
        may be of another type: `register` refuses that); and whether it was new."""
        validate_collection_name(name, registering=False)
        type = CollectionType(type)
        _check_doc(doc)
        cached = self._by_name.get(name)
        if cached is not None and cached.type is type and doc in (None, cached.doc):
            return cached, False  # known already: nothing to write
        if cached is not None:
            self._by_name.forget(name)  # read it again: another client may have changed it
        try:
            return self.find(name), False  # a read: no write lock for a known collection
        except MissingCollectionError:
            pass
        validate_collection_name(name)  # new names get the stricter rules
        # No bump: a new collection makes no client's cache wrong (they hold only
        # collections that exist, by name, and look others up), so other clients keep
        # their caches; a removal, a chain's new members or new documentation do bump.
        key = self._db.ensure_key(self._collection, {"name": name, "type": type.value, "doc": doc})
        if key is None:  # another client registered it meanwhile
            return self.find(name), False
        record = CollectionRecord(key, name, type, doc)
        self._by_name.keep(name, record)  # the transaction that inserted it sees it
        return record, True

    def setDocumentation(self, name: str, doc: str | None) -> None:
        """Set (or with `None`, clear) the documentation of collection ``name``."""
        _check_doc(doc)
        record = self.find(name)
        where = self._collection.c.collection_id == record.key
        with self._db.transaction():
            self._db.update_where(self._collection, where, {"doc": doc})
            self._bump()
        self.refresh()

    def set_chain(self, name: str, children: Sequence[str]) -> None:
        """Make CHAINED collection ``name`` search ``children``, in that order.

        Raises
        ------
        CollectionError
            If ``name`` is not CHAINED, a child repeats, or the chain would
            contain itself (directly or through nested chains). Nothing changes.
        MissingCollectionError
            If a child does not exist.
        """
        parent = self._require(name, CollectionType.CHAINED)
        if isinstance(children, str):
            raise ArgumentTypeError(
                f"Chain members must be a sequence of names, not the string {children!r}."
            )
        if not isinstance(children, Iterable) or isinstance(children, bytes | Mapping):
            raise ArgumentTypeError(
                f"Chain members must be a sequence of names, not {describe(children)}."
            )
        members = [self.find(child) for child in require_strs(children, "children")]
        names = [m.name for m in members]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise CollectionError(f"Chain {name!r} would list {duplicates} more than once.")
        for member in members:
            path = self._path_to(member, parent.key)
            if path is not None:
                route = " -> ".join([name, *path])
                raise CollectionError(
                    f"Chain {name!r} cannot include {member.name!r}: that would form a cycle "
                    f"({route}). Remove the cycle's link first."
                )
        self.refresh()
        with self._db.transaction():
            self._bump()
            self._db.deleteWhere(self._chain, self._chain.c.parent_id == parent.key)
            self._db.insert(
                self._chain,
                *(
                    {"parent_id": parent.key, "position": i, "child_id": m.key}
                    for i, m in enumerate(members)
                ),
            )

    # Deprecated aliases of renamed methods, kept for one release.
    getChain = renamed("get_chain")  # noqa: N815
    setChain = renamed("set_chain")  # noqa: N815

    def _path_to(self, start: CollectionRecord, target: int) -> list[str] | None:
        """Names from ``start`` down to the collection ``target`` through chains, if any."""
        if start.key == target:
            return [start.name]
        if start.type is not CollectionType.CHAINED:
            return None
        for child in self._children(start.key):
            path = self._path_to(child, target)
            if path is not None:
                return [start.name, *path]
        return None

    def parents(self, name: str) -> list[str]:
        """Names of the chains that list collection ``name`` directly."""
        record = self.find(name)
        chain, c = self._chain.c, self._collection.c
        sql = (
            sqlalchemy.select(c.name)
            .join_from(self._chain, self._collection, chain.parent_id == c.collection_id)
            .where(chain.child_id == record.key)
            .order_by(c.name)
        )
        with self._db.query(sql) as result:
            return list(result.scalars())

    def remove(self, name: str) -> None:
        """Remove collection ``name`` (a chain's own membership list goes with it).

        The caller removes a RUN's datasets first, in the same transaction.

        Raises
        ------
        CollectionError
            If a chain still lists it; nothing changes.
        """
        record = self.find(name)
        parents = self.parents(name)
        if parents:
            raise CollectionError(
                f"Collection {name!r} is still in chain(s) {parents}; take it out of them first."
            )
        self.refresh()
        try:
            with self._db.transaction():
                self._db.deleteWhere(
                    self._collection, self._collection.c.collection_id == record.key
                )
                self._bump()
        except ConflictError as exc:
            raise CollectionError(
                f"Collection {name!r} is still referenced ({exc}); remove what refers to it first."
            ) from exc

    def _require(self, name: str, type: CollectionType) -> CollectionRecord:
        record = self.find(name)
        if record.type is not type:
            raise CollectionError(
                f"Collection {name!r} is a {record.type.name} collection, not {type.name}."
            )
        return record
