"""Opening missing, broken and read-only repositories: a databutler error, and nothing changed.

Every case asserts the error class, that the message names the file, and that
the directory tree is byte-for-byte as it was (no directory, database, log or
configuration file created or touched).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from databutler import (
    Butler,
    ConfigurationError,
    DatabutlerError,
    RepositoryError,
    RepositoryNotFoundError,
)
from databutler.butler._config import ROOT_TOKEN, RepositoryConfig, normalize_root
from databutler.registry import RegistryManagerTypes, SqlRegistry, open_database
from databutler.registry.databases import sqlite as sqlite_backend

Snapshot = dict[str, tuple[str, int, str]]


def snapshot(top: Path) -> Snapshot:
    """Every entry under ``top`` (and ``top`` itself): kind, size and content hash."""
    result: Snapshot = {}
    if not top.exists():
        return result
    result["."] = ("dir" if top.is_dir() else "file", 0, "")
    for path in sorted(top.rglob("*")) if top.is_dir() else ():
        rel = str(path.relative_to(top))
        if path.is_dir():
            result[rel] = ("dir", 0, "")
        else:
            data = path.read_bytes()
            result[rel] = ("file", len(data), hashlib.sha256(data).hexdigest())
    return result


def make_repository(root: Path) -> Path:
    butler = Butler.create(root, run="night1")
    butler.insert_dimension_records("instrument", {"instrument": "HSC"})
    butler.registry.db.dispose()
    return root


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repository(tmp_path_factory.mktemp("pristine") / "repo")


@pytest.fixture
def repo(pristine: Path, tmp_path: Path) -> Path:
    target = tmp_path / "repo"
    shutil.copytree(pristine, target)
    return target


def assert_refused(
    root: Path | str, watched: Path, error: type[Exception], *words: str, writeable: bool = False
) -> str:
    before = snapshot(watched)
    with pytest.raises(error) as info:
        Butler(root, writeable=writeable)
    assert snapshot(watched) == before
    message = str(info.value)
    for word in words:
        assert word in message, message
    return message


# -- missing things -----------------------------------------------------------------------


@pytest.mark.parametrize("writeable", [False, True])
def test_missing_path_creates_nothing(tmp_path: Path, writeable: bool) -> None:
    root = tmp_path / "no" / "such" / "repo"
    assert_refused(root, tmp_path, RepositoryNotFoundError, str(root), "does not exist",
                   writeable=writeable)  # fmt: skip
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize("suffix", ["", "/butler.yaml"])
def test_file_instead_of_directory(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / "plain.txt"
    path.write_text("not a repository\n")
    message = assert_refused(f"{path}{suffix}", tmp_path, RepositoryNotFoundError, str(path))
    assert "is a file" in message and "File exists" not in message
    assert path.read_text() == "not a repository\n"


def test_missing_butler_yaml_is_a_file_not_found_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert_refused(tmp_path / "empty", tmp_path, FileNotFoundError, "butler.yaml", "create")


def test_butler_yaml_that_is_a_directory(repo: Path) -> None:
    (repo / "butler.yaml").unlink()
    (repo / "butler.yaml").mkdir()
    assert_refused(repo, repo, RepositoryError, "butler.yaml", "is a directory")


@pytest.mark.parametrize("writeable", [False, True])
def test_missing_registry_file_is_not_recreated(repo: Path, writeable: bool) -> None:
    (repo / "registry.sqlite3").unlink()
    assert_refused(repo, repo, RepositoryError, "registry.sqlite3", "does not exist",
                   writeable=writeable)  # fmt: skip
    assert not (repo / "registry.sqlite3").exists()


# -- broken registry files ------------------------------------------------------------------


def _empty(data: bytes) -> bytes:
    return b""


def _third(data: bytes) -> bytes:
    return data[: len(data) // 3]


def _header_only(data: bytes) -> bytes:
    return data[:100]


def _garbage(data: bytes) -> bytes:
    return b"definitely not sqlite " * 200


def _half_header(data: bytes) -> bytes:
    return data[:50]


@pytest.mark.parametrize("damage", [_empty, _third, _header_only, _garbage, _half_header])
@pytest.mark.parametrize("writeable", [False, True])
def test_damaged_registry_file(repo: Path, damage: Any, writeable: bool) -> None:
    database = repo / "registry.sqlite3"
    database.write_bytes(damage(database.read_bytes()))
    message = assert_refused(repo, repo, RepositoryError, str(database), "backup",
                             writeable=writeable)  # fmt: skip
    assert "\n" not in message


@pytest.mark.parametrize("writeable", [False, True])
def test_directory_in_place_of_registry(repo: Path, writeable: bool) -> None:
    database = repo / "registry.sqlite3"
    database.unlink()
    database.mkdir()
    assert_refused(repo, repo, RepositoryError, str(database), "directory", writeable=writeable)


def test_damaged_registry_via_sql_registry_open(repo: Path) -> None:
    database = repo / "registry.sqlite3"
    database.write_bytes(b"x" * 4096)
    before = snapshot(repo)
    with pytest.raises(RepositoryError, match="not an SQLite database"):
        SqlRegistry.open(f"sqlite:///{database}")
    assert snapshot(repo) == before


# -- garbage database URIs ---------------------------------------------------------------------

_URI_PREFIXES = [
    "",
    "sqlite:",
    "sqlite:///",
    "sqlite:////nonexistent-dir-for-databutler/",
    "postgresql://127.0.0.1:",
    "postgresql+nodriver://127.0.0.1/",
    "mysql://127.0.0.1/",
    "://",
    "http://",
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from(_URI_PREFIXES), rest=st.text(max_size=20))
def test_garbage_uris_raise_databutler_errors(prefix: str, rest: str) -> None:
    if prefix.startswith("postgresql"):
        # Only ever 127.0.0.1: no host, user or query part from the fuzzed text.
        rest = "".join(c for c in rest if c.isascii() and c.isalnum())
    uri = prefix + rest.replace("/", "_")
    if prefix == "sqlite:///":
        uri = f"sqlite:////nonexistent-dir-for-databutler/{rest.replace('/', '_')}"
    with pytest.raises(DatabutlerError):
        SqlRegistry.open(uri, writeable=False)
    assert not os.path.exists("/nonexistent-dir-for-databutler")


@pytest.mark.parametrize(
    "uri",
    [
        "postgresql://h:notaport/db",
        "postgresql://[::1/db",
        "postgresql://127.0.0.1:1/db",
        "not a uri",
        "",
        "sqlite:///a\0b",
        "oracle://127.0.0.1/x",
    ],
)
def test_malformed_uris_name_the_uri(uri: str) -> None:
    for opener in (open_database, SqlRegistry.open):
        with pytest.raises(ConfigurationError) as info:
            opener(uri)
        assert "URI" in str(info.value) or "Unsupported" in str(info.value)


def test_open_database_still_creates_by_default(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    db = open_database(f"sqlite:///{path}")
    RegistryManagerTypes().makeRepo(db)
    db.dispose()
    assert path.exists()
    with pytest.raises(RepositoryError, match="does not exist"):
        open_database(f"sqlite:///{tmp_path / 'other.sqlite3'}", create=False)
    assert not (tmp_path / "other.sqlite3").exists()


@pytest.mark.parametrize("name", ["a?b", "c#d", "e%20f", "g h"])
def test_paths_with_uri_characters(tmp_path: Path, name: str) -> None:
    root = make_repository(tmp_path / name)
    butler = Butler(root, writeable=True)
    butler.insert_dimension_records("instrument", {"instrument": "LSST"})
    butler.registry.db.dispose()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert "registry.sqlite3" in {p.name for p in root.iterdir()}


def test_root_with_a_leading_double_slash(tmp_path: Path) -> None:
    """``//tmp/repo`` is ``/tmp/repo`` on Linux; in the SQLite URI it named a host ``tmp``."""
    doubled = "/" + str(tmp_path / "repo")
    with Butler.create(doubled, run="r") as butler:
        butler.insert_dimension_records("instrument", {"instrument": "HSC"})
        assert not butler.root.startswith("//")
    with Butler(str(tmp_path / "repo")) as butler:
        records = butler.registry.queryDimensionRecords("instrument")
        assert [r.instrument for r in records] == ["HSC"]
    with Butler(doubled) as butler:
        assert butler.root == str(tmp_path / "repo")


def test_sqlite_uri_with_extra_slashes(tmp_path: Path) -> None:
    path = tmp_path / "extra.sqlite3"
    with Butler.create(tmp_path / "repo", db=f"sqlite:////{path}") as butler:
        butler.registry.registerRun("r")
    assert path.exists()
    with Butler(tmp_path / "repo") as butler:
        assert list(butler.registry.queryCollections()) == ["r"]


def test_root_of_the_file_system_names_its_registry_file() -> None:
    """The repository ``/``: ``<butlerRoot>/registry.sqlite3`` is ``/registry.sqlite3``."""
    config = RepositoryConfig(
        root=normalize_root("/"), db=f"sqlite:///{ROOT_TOKEN}/registry.sqlite3", datastore={}
    )
    assert config.db_uri == "sqlite:////registry.sqlite3"
    assert normalize_root("//") == "/"


# -- butler.yaml of every shape -------------------------------------------------------------

yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)

#: Where a fuzzed value goes: a path of keys into the configuration.
_PLACES: list[tuple[str, ...]] = [
    (),
    ("databutler",),
    ("databutler", "version"),
    ("databutler", "extra"),
    ("registry",),
    ("registry", "db"),
    ("registry", "namespace"),
    ("registry", "managers"),
    ("registry", "managers", "datasets"),
    ("registry", "extra"),
    ("datastore",),
    ("datastore", "kind"),
    ("datastore", "name"),
    ("datastore", "templates"),
    ("datastore", "checksum"),
    ("datastore", "extra"),
    ("extra",),
]


def _put(config: Any, place: tuple[str, ...], value: Any) -> Any:
    if not place:
        return value
    config = dict(config)
    config[place[0]] = _put(config.get(place[0]) or {}, place[1:], value)
    return config


@pytest.mark.parametrize("name", ["dataset", "other"])
def test_datastore_renamed_in_butler_yaml_is_refused_without_making_its_directory(
    repo: Path, name: str
) -> None:
    # Found by test_fuzzed_butler_yaml: the file datastore made its directory
    # (<repo>/<name>) before the registry refused its records table.
    config_path = repo / "butler.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["datastore"]["name"] = name
    config_path.write_text(yaml.safe_dump(config))
    before = _without_sqlite_logs(snapshot(repo))
    with pytest.raises(RepositoryError, match=r"butler\.yaml"):
        Butler(repo)
    assert not (repo / name).exists()
    assert _without_sqlite_logs(snapshot(repo)) == before


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(place=st.sampled_from(_PLACES), value=yaml_values)
def test_fuzzed_butler_yaml(repo: Path, place: tuple[str, ...], value: Any) -> None:
    config_path = repo / "butler.yaml"
    original = config_path.read_text()
    config = _put(yaml.safe_load(original), place, value)
    config_path.write_text(yaml.safe_dump(config))
    before = _without_sqlite_logs(snapshot(repo))
    try:
        butler = Butler(repo)
    except DatabutlerError as exc:
        assert type(exc) is not DatabutlerError
        assert isinstance(exc, RepositoryError)
        assert "butler.yaml" in str(exc)
    else:
        butler.registry.db.dispose()
    # A datastore section is checked once the registry is open; a read-only
    # SQLite reader may leave its -wal/-shm files, as any reader does.
    try:
        assert _without_sqlite_logs(snapshot(repo)) == before
    finally:
        config_path.write_text(original)


def _without_sqlite_logs(tree: Snapshot) -> Snapshot:
    return {k: v for k, v in tree.items() if not k.endswith(("-wal", "-shm"))}


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("registry: {db: 'sqlite:///x', managers: 5}\ndatastore: {kind: file, name: f}\n",
         "registry.managers"),
        ("registry: {db: 5}\ndatastore: {kind: file, name: f}\n", "registry.db"),
        ("registry: {db: 'postgresql://h:x/d'}\ndatastore: {kind: file, name: f}\n",
         "registry.db"),
        ("registry: {db: 'sqlite:///x'}\ndatastore: [1, 2]\n", "'datastore'"),
        ("registry: {db: 'sqlite:///x'}\ndatastore: {kind: file, name: f}\nzzz: 1\n", "'zzz'"),
        ("databutler: {version: two}\nregistry: {db: 'sqlite:///x'}\ndatastore: {}\n",
         "databutler.version"),
        ("registry: {db: 'sqlite:///x', namespace: [1]}\ndatastore: {}\n", "registry.namespace"),
        ("registry: [unclosed\n", "not valid YAML"),
        ("- just\n- a list\n", "mapping"),
        ("key: \xc3(", "YAML"),
    ],
)  # fmt: skip
def test_bad_butler_yaml_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    (tmp_path / "butler.yaml").write_text(text, encoding="latin-1")
    message = assert_refused(tmp_path, tmp_path, RepositoryError, key, "butler.yaml")
    assert "\n" not in message


def test_bad_datastore_config_names_the_key(repo: Path) -> None:
    config = yaml.safe_load((repo / "butler.yaml").read_text())
    config["datastore"] = {"kind": "file", "name": "files", "checksum": "maybe"}
    (repo / "butler.yaml").write_text(yaml.safe_dump(config))
    assert_refused(
        repo, repo, RepositoryError, "'datastore'", "checksum", "butler.yaml", writeable=True
    )


# -- read-only media ---------------------------------------------------------------------------


@pytest.fixture
def read_only_mount(repo: Path, tmp_path: Path) -> Iterator[Path | None]:
    """``repo`` bind-mounted read-only (`None` where mounting is not permitted)."""
    target = tmp_path / "ro"
    target.mkdir()
    done = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(repo), str(target)], capture_output=True, check=False
    )
    if done.returncode != 0:
        yield None
        return
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def test_read_only_media(repo: Path, read_only_mount: Path | None) -> None:
    if read_only_mount is None:
        # No mount permission: the immutable fallback is still exercised directly.
        database = str(repo / "registry.sqlite3")
        target = sqlite_backend._readable(database, f"file:{database}?mode=ro")
        assert target.startswith("file:")
        return
    mounted = read_only_mount
    with pytest.raises(OSError):
        (mounted / f"probe-{uuid.uuid4()}").write_text("x")
    before = snapshot(repo)
    butler = Butler(mounted)
    try:
        records = list(butler.query_dimension_records("instrument"))
    finally:
        butler.registry.db.dispose()
    assert [r.instrument for r in records] == ["HSC"]
    message = assert_refused(
        mounted, repo, RepositoryError, "registry.sqlite3", "read-only file system", writeable=True
    )
    assert "\n" not in message
    assert snapshot(repo) == before


def test_immutable_fallback_is_refused_with_an_unmerged_log(repo: Path, tmp_path: Path) -> None:
    database = repo / "registry.sqlite3"
    (repo / "registry.sqlite3-wal").write_bytes(b"\0" * 64)
    with pytest.raises(RepositoryError):
        sqlite_backend._readable(str(database), f"file:{database}?mode=ro&vfs=nonexistent")
    assert sqlite_backend._readable(str(database), f"file:{database}?mode=ro").endswith("ro")


# -- PostgreSQL ----------------------------------------------------------------------------------


def _schema_exists(uri: str, name: str) -> bool:
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            row = connection.execute(
                sqlalchemy.text("SELECT 1 FROM pg_namespace WHERE nspname = :n"), {"n": name}
            ).first()
        return row is not None
    finally:
        engine.dispose()


@pytest.mark.postgresql
@pytest.mark.parametrize("writeable", [False, True])
def test_missing_postgresql_namespace_is_not_created(tmp_path: Path, writeable: bool) -> None:
    from databutler.testing.database import postgresql_uri

    uri = postgresql_uri()
    name = f"absent_{uuid.uuid4().hex[:12]}"
    (tmp_path / "butler.yaml").write_text(
        yaml.safe_dump(
            {
                "registry": {"db": uri, "namespace": name},
                "datastore": {"kind": "memory", "name": "mem"},
            }
        )
    )
    message = assert_refused(tmp_path, tmp_path, RepositoryError, name, "namespace",
                             writeable=writeable)  # fmt: skip
    assert "\n" not in message
    assert not _schema_exists(uri, name)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=30))
def test_any_root_text_is_refused_cleanly(text: str) -> None:
    base = Path("/nonexistent-databutler-root")
    for root in (text, f"{base}/{text}", f"s3x://{text}", f"file://{base}/{text}"):
        try:
            Butler(root)
        except DatabutlerError as exc:
            assert isinstance(exc, ConfigurationError), exc
        except (FileNotFoundError, PermissionError, NotADirectoryError):
            pytest.fail(f"{root!r}: a bare OSError, not a databutler error")
        else:  # text named an existing repository: impossible under the base
            assert not root.startswith(str(base))
    assert not base.exists()


def test_datastore_that_names_no_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="which names no directory"):
        Butler.create(tmp_path / "repo", datastore="")
    assert list(tmp_path.iterdir()) == []
