"""Table specifications (`databutler.ddl`) and the GUID column type on every backend."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from databutler import ConflictError, ddl
from databutler.registry import RegistryManagerInstances
from databutler.registry.datasets import SimpleDatasetRecordStorageManager
from databutler.registry.interfaces import Database
from databutler.testing.database import DatabaseFactory

# ----------------------------------------------------------------------
# FieldSpec


def test_fieldspec_equality_and_hash_use_the_name_only() -> None:
    a = ddl.FieldSpec("x", sqlalchemy.Integer)
    b = ddl.FieldSpec("x", sqlalchemy.String, length=10, nullable=False, doc="other")
    c = ddl.FieldSpec("y", sqlalchemy.Integer)
    assert a == b
    assert hash(a) == hash(b)
    assert a != c
    assert len({a, b, c}) == 2
    assert a != "x"


def test_fieldspec_keeps_its_arguments() -> None:
    f = ddl.FieldSpec("s", sqlalchemy.String, length=12, nullable=False, default="d", doc="doc")
    assert (f.name, f.dtype, f.length, f.nullable, f.default, f.doc) == (
        "s",
        sqlalchemy.String,
        12,
        False,
        "d",
        "doc",
    )
    assert f.isStringType()
    assert not ddl.FieldSpec("i", sqlalchemy.Integer).isStringType()


def test_fieldspec_is_immutable() -> None:
    f = ddl.FieldSpec("x", sqlalchemy.Integer)
    with pytest.raises(AttributeError):
        f.name = "y"  # type: ignore[misc]
    assert f.name == "x"


@pytest.mark.parametrize("nullable", [True, False])
def test_primary_key_forces_not_nullable(nullable: bool) -> None:
    f = ddl.FieldSpec("id", sqlalchemy.Integer, primaryKey=True, nullable=nullable)
    assert f.primaryKey is True
    assert f.nullable is False


def test_nullable_defaults_to_true_without_primary_key() -> None:
    assert ddl.FieldSpec("v", sqlalchemy.Integer).nullable is True


@pytest.mark.parametrize("dtype", [int, str, "String", sqlalchemy.String(), uuid.UUID])
def test_non_sqlalchemy_dtype_raises_type_error(dtype: object) -> None:
    with pytest.raises(TypeError, match=r"Field 'x': dtype must be an SQLAlchemy type class"):
        ddl.FieldSpec("x", dtype)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["", None, 3])
def test_fieldspec_name_must_be_a_non_empty_string(name: object) -> None:
    with pytest.raises(ValueError, match="Field name must be a non-empty string"):
        ddl.FieldSpec(name, sqlalchemy.Integer)  # type: ignore[arg-type]


def test_sized_column_types() -> None:
    short = ddl.FieldSpec(
        "s", sqlalchemy.String, length=ddl.MAX_BOUNDED_STRING
    ).getSizedColumnType()
    assert isinstance(short, sqlalchemy.String)
    assert not isinstance(short, sqlalchemy.Text)
    assert short.length == ddl.MAX_BOUNDED_STRING
    long = ddl.FieldSpec(
        "s", sqlalchemy.String, length=ddl.MAX_BOUNDED_STRING + 1
    ).getSizedColumnType()
    assert isinstance(long, sqlalchemy.Text)
    assert isinstance(ddl.FieldSpec("s", sqlalchemy.String).getSizedColumnType(), sqlalchemy.Text)
    blob = ddl.FieldSpec("b", sqlalchemy.LargeBinary, nbytes=20).getSizedColumnType()
    assert isinstance(blob, sqlalchemy.LargeBinary)
    assert blob.length == 20


# ----------------------------------------------------------------------
# TableSpec, ForeignKeySpec, IndexSpec


def test_tablespec_fields_is_an_ordered_set_with_add() -> None:
    spec = ddl.TableSpec(
        [
            ddl.FieldSpec("b", sqlalchemy.Integer, primaryKey=True),
            ddl.FieldSpec("a", sqlalchemy.Integer),
        ]
    )
    spec.fields.add(ddl.FieldSpec("c", sqlalchemy.String, length=8, primaryKey=True))
    assert spec.fields.names() == ["b", "a", "c"]
    assert [f.name for f in spec.fields] == ["b", "a", "c"]
    assert len(spec.fields) == 3
    assert "a" in spec.fields
    assert ddl.FieldSpec("a", sqlalchemy.Text) in spec.fields
    assert "z" not in spec.fields
    assert spec.fields["c"].length == 8
    assert spec.primaryKey() == ("b", "c")


def test_tablespec_duplicate_field_raises_value_error() -> None:
    spec = ddl.TableSpec([ddl.FieldSpec("x", sqlalchemy.Integer)])
    with pytest.raises(ValueError, match="Duplicate field 'x'"):
        spec.fields.add(ddl.FieldSpec("x", sqlalchemy.String))
    assert spec.fields.names() == ["x"]
    assert spec.fields["x"].dtype is sqlalchemy.Integer
    with pytest.raises(ValueError, match="Duplicate field 'y'"):
        ddl.TableSpec(
            [ddl.FieldSpec("y", sqlalchemy.Integer), ddl.FieldSpec("y", sqlalchemy.Integer)]
        )


def test_tablespec_fields_add_rejects_non_fieldspec() -> None:
    spec = ddl.TableSpec([])
    with pytest.raises(TypeError, match="Expected a FieldSpec"):
        spec.fields.add("x")  # type: ignore[arg-type]
    assert len(spec.fields) == 0


def test_tablespec_discard_and_collections() -> None:
    a = ddl.FieldSpec("a", sqlalchemy.Integer)
    spec = ddl.TableSpec(
        [a, ddl.FieldSpec("b", sqlalchemy.Integer)],
        unique=[["a", "b"]],  # type: ignore[list-item]
        indexes=[ddl.IndexSpec("b", "a")],
        foreignKeys=[ddl.ForeignKeySpec("other", ["a"], ["id"])],  # type: ignore[arg-type]
        doc="d",
    )
    assert spec.unique == {("a", "b")}
    assert spec.indexes == {ddl.IndexSpec("b", "a")}
    assert ddl.IndexSpec("b", "a").columns == ("b", "a")
    assert spec.foreignKeys[0].source == ("a",)
    assert spec.foreignKeys[0].target == ("id",)
    spec.fields.discard(a)
    assert spec.fields.names() == ["b"]


@pytest.mark.parametrize("onDelete", [None, "CASCADE", "SET NULL"])
def test_foreign_key_spec_accepts_documented_on_delete(onDelete: str | None) -> None:
    fk = ddl.ForeignKeySpec("t", ("a",), ("b",), onDelete=onDelete)
    assert fk.onDelete == onDelete
    assert fk.addIndex is True


@pytest.mark.parametrize("onDelete", ["cascade", "RESTRICT", "NO ACTION", "", "DROP"])
def test_foreign_key_spec_rejects_other_on_delete(onDelete: str) -> None:
    with pytest.raises(ValueError, match="onDelete must be None, 'CASCADE' or 'SET NULL'"):
        ddl.ForeignKeySpec("t", ("a",), ("b",), onDelete=onDelete)


# ----------------------------------------------------------------------
# DatasetRecordStorageManager.addDatasetForeignKey


def _base_spec() -> ddl.TableSpec:
    return ddl.TableSpec([ddl.FieldSpec("path", sqlalchemy.String, length=256)])


def test_add_dataset_foreign_key_defaults() -> None:
    spec = _base_spec()
    field = SimpleDatasetRecordStorageManager.addDatasetForeignKey(spec, primaryKey=True)
    assert field.name == "dataset_id"
    assert field.dtype is ddl.GUID
    assert field.primaryKey is True
    assert field.nullable is False
    assert spec.fields["dataset_id"] is field
    assert spec.fields.names() == ["path", "dataset_id"]
    assert spec.primaryKey() == ("dataset_id",)
    assert spec.foreignKeys == [
        ddl.ForeignKeySpec(
            SimpleDatasetRecordStorageManager.DATASET_TABLE, ("dataset_id",), ("id",), onDelete=None
        )
    ]
    assert SimpleDatasetRecordStorageManager.DATASET_TABLE == "dataset"


def test_add_dataset_foreign_key_without_constraint() -> None:
    spec = _base_spec()
    field = SimpleDatasetRecordStorageManager.addDatasetForeignKey(spec, constraint=False)
    assert field.name == "dataset_id"
    assert field.primaryKey is False
    assert field.nullable is False
    assert spec.foreignKeys == []


def test_add_dataset_foreign_key_name_and_on_delete() -> None:
    spec = _base_spec()
    field = SimpleDatasetRecordStorageManager.addDatasetForeignKey(
        spec, name="parent", onDelete="CASCADE", nullable=True
    )
    assert field.name == "parent_id"
    assert field.nullable is True
    assert [(fk.table, fk.source, fk.target, fk.onDelete) for fk in spec.foreignKeys] == [
        ("dataset", ("parent_id",), ("id",), "CASCADE")
    ]


def test_add_dataset_foreign_key_twice_raises() -> None:
    spec = _base_spec()
    SimpleDatasetRecordStorageManager.addDatasetForeignKey(spec)
    with pytest.raises(ValueError, match="Duplicate field 'dataset_id'"):
        SimpleDatasetRecordStorageManager.addDatasetForeignKey(spec)
    assert len(spec.foreignKeys) == 1


def test_add_dataset_foreign_key_is_enforced(
    repo: RegistryManagerInstances, databases: DatabaseFactory
) -> None:
    spec = _base_spec()
    SimpleDatasetRecordStorageManager.addDatasetForeignKey(spec, primaryKey=True)
    loose = _base_spec()
    SimpleDatasetRecordStorageManager.addDatasetForeignKey(loose, primaryKey=True, constraint=False)
    strict_table = repo.opaque.register("strict_records", spec)
    loose_table = repo.opaque.register("loose_records", loose)
    known, unknown = uuid.uuid4(), uuid.uuid4()
    assert isinstance(repo.datasets, SimpleDatasetRecordStorageManager)
    repo.datasets.insert([known])

    strict_table.insert({"dataset_id": known, "path": "a"})
    with pytest.raises(ConflictError, match="Cannot insert into strict_records"):
        strict_table.insert({"dataset_id": unknown, "path": "b"})
    loose_table.insert({"dataset_id": unknown, "path": "b"})

    with databases.raw_engine().connect() as connection:
        strict_rows = connection.execute(
            sqlalchemy.text(f"SELECT path FROM {databases.qualified('strict_records')}")
        ).all()
        loose_rows = connection.execute(
            sqlalchemy.text(f"SELECT path FROM {databases.qualified('loose_records')}")
        ).all()
    assert strict_rows == [("a",)]
    assert loose_rows == [("b",)]


# ----------------------------------------------------------------------
# GUID


def test_guid_coerce_accepted_forms() -> None:
    u = uuid.uuid4()
    assert ddl.GUID.coerce(u) is u
    assert ddl.GUID.coerce(str(u)) == u
    assert ddl.GUID.coerce(u.hex) == u
    assert ddl.GUID.coerce(u.int) == u
    assert ddl.GUID.coerce(u.bytes) == u


@pytest.mark.parametrize("value", [1.5, True, None, [1], object()])
def test_guid_coerce_rejects_other_types(value: object) -> None:
    with pytest.raises(TypeError, match="as a UUID"):
        ddl.GUID.coerce(value)


@pytest.mark.parametrize("value", ["not-a-uuid", b"short", -1])
def test_guid_coerce_rejects_bad_values(value: object) -> None:
    with pytest.raises(ValueError):
        ddl.GUID.coerce(value)


_GUID_SPEC = ddl.TableSpec(
    [
        ddl.FieldSpec("id", ddl.GUID, primaryKey=True),
        ddl.FieldSpec("other", ddl.GUID),
    ]
)


def _guid_table(db: Database) -> sqlalchemy.Table:
    return db.ensureTableExists("guids", _GUID_SPEC)


def _raw_guid_rows(databases: DatabaseFactory) -> list[tuple[object, object]]:
    with databases.raw_engine().connect() as connection:
        rows = connection.execute(
            sqlalchemy.text(f"SELECT id, other FROM {databases.qualified('guids')}")
        ).all()
    return [tuple(r) for r in rows]


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ids=st.lists(st.uuids(), min_size=1, max_size=5, unique=True), other=st.none() | st.uuids())
def test_guid_round_trip(db: Database, ids: list[uuid.UUID], other: uuid.UUID | None) -> None:
    table = _guid_table(db)
    db.delete(table, [])
    db.insert(table, *({"id": i, "other": other} for i in ids))
    with db.query(sqlalchemy.select(table.c.id, table.c.other)) as result:
        rows = result.all()
    assert sorted(r.id for r in rows) == sorted(ids)
    for row in rows:
        assert type(row.id) is uuid.UUID
        assert row.other == other
    # Selecting by a bound UUID finds exactly that row.
    with db.query(sqlalchemy.select(table.c.id).where(table.c.id == ids[0])) as result:
        assert result.scalars().all() == [ids[0]]


@pytest.mark.parametrize("form", ["str", "hex", "int", "bytes"])
def test_guid_binds_other_forms(db: Database, form: str) -> None:
    table = _guid_table(db)
    u = uuid.uuid4()
    value = {"str": str(u), "hex": u.hex, "int": u.int, "bytes": u.bytes}[form]
    db.insert(table, {"id": value, "other": value})
    with db.query(sqlalchemy.select(table.c.id, table.c.other)) as result:
        rows = result.all()
    assert rows == [(u, u)]
    assert type(rows[0].id) is uuid.UUID
    # Binding in a WHERE clause coerces too.
    with db.query(sqlalchemy.select(table.c.id).where(table.c.id == value)) as result:
        assert result.scalar_one() == u


def test_guid_rejects_bad_bind_and_writes_nothing(db: Database, databases: DatabaseFactory) -> None:
    table = _guid_table(db)
    good = uuid.uuid4()
    db.insert(table, {"id": good})
    with pytest.raises(sqlalchemy.exc.StatementError, match=r"Cannot use 1\.5 \(float\) as a UUID"):
        db.insert(table, {"id": uuid.uuid4()}, {"id": 1.5})
    with pytest.raises(sqlalchemy.exc.StatementError, match="badly formed hexadecimal UUID"):
        db.insert(table, {"id": "zz"})
    assert [r[0] for r in _raw_guid_rows(databases)] in ([good], [good.bytes])


def test_guid_storage_format(db: Database, databases: DatabaseFactory) -> None:
    table = _guid_table(db)
    u = uuid.uuid4()
    db.insert(table, {"id": u, "other": None})
    [(raw, other)] = _raw_guid_rows(databases)
    assert other is None
    if db.dialect_name == "sqlite":
        assert isinstance(raw, bytes)
        assert len(raw) == 16
        assert raw == u.bytes
    else:
        # Native UUID column on PostgreSQL.
        assert raw == u
        with databases.raw_engine().connect() as connection:
            data_type = connection.execute(
                sqlalchemy.text(
                    "SELECT data_type FROM information_schema.columns "
                    "WHERE table_schema = :schema AND table_name = 'guids' AND column_name = 'id'"
                ),
                {"schema": databases.namespace},
            ).scalar_one()
        assert data_type == "uuid"
