"""Altered artifacts are never returned or handed out as data (issue 9, item 5).

Each test damages an artifact through the real store (local files, S3 on
moto) and checks every way bytes leave the repository: `get`, `get_many`,
`get_deferred`, component reads, `retrieve_artifacts`, `export` and
`transfer_from`, for plain files and zip members; then that `verify`
reports the damage, before and after ``repair=True``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from databutler import (
    ArtifactCorruptedError,
    Butler,
    DatabutlerError,
    DatasetRef,
    FileDataset,
    UnresolvedRef,
)
from databutler.datastores import DatasetNotStoredError
from databutler.testing.butler import (
    CHAINED,
    RepositoryFactory,
    artifact_of,
    file_datastore,
    populate,
)

OBJECT = {"values": [1, 2, 3], "name": "seven"}

#: Damage done to an artifact's bytes: name -> (function, whether its size changes).
DAMAGE: dict[str, tuple[Callable[[bytes], bytes], bool]] = {
    "truncate": (lambda data: data[: len(data) // 2], True),
    "extend": (lambda data: data + b"  \n", True),  # still valid JSON: read it would succeed
    "empty": (lambda data: b"", True),
    "flip": (lambda data: data.replace(b"seven", b"eight"), False),  # same size
}


@pytest.fixture
def make(repositories: RepositoryFactory) -> Iterator[Callable[..., Butler]]:
    """Creates repositories of the configuration, optionally recording checksums."""
    made: list[Butler] = []

    def create(name: str = "repo", *, checksum: bool = False) -> Butler:
        arguments = repositories.create_arguments(name)
        if checksum:
            if repositories.kind == "sqlite-chained":
                config: dict[str, Any] = copy.deepcopy(CHAINED)
                config["datastores"][0]["checksum"] = True
            else:
                config = {"kind": "file", "name": "files", "checksum": True}
            arguments["datastore"] = config
        butler = Butler.create(**arguments, run="run")
        made.append(butler)
        populate(butler)
        return butler

    yield create
    for butler in made:
        butler.close()


def damage(butler: Butler, ref: DatasetRef, how: str) -> None:
    store, path = artifact_of(butler, ref)
    change, _ = DAMAGE[how]
    store.write(path, change(store.read(path)), overwrite=True)


def datasets(butler: Butler) -> set[Any]:
    return {ref.id for ref in butler.query_datasets("thing", collections="run")}


def check_refused(error: pytest.ExceptionInfo[ArtifactCorruptedError], how: str) -> None:
    message = str(error.value)
    assert "corrupted" in message and "verify" in message and "put or ingest" in message
    if DAMAGE[how][1]:
        assert "recorded" in message and "bytes, found" in message
    else:
        assert "checksum" in message


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_get_refuses_altered_artifact(
    make: Callable[..., Butler], tmp_path: Path, how: str
) -> None:
    butler = make(checksum=not DAMAGE[how][1])
    refs = [
        butler.put(dict(OBJECT, detector=d), "thing", instrument="HSC", detector=d) for d in (1, 2)
    ]
    damage(butler, refs[0], how)
    before = datasets(butler)

    with pytest.raises(ArtifactCorruptedError) as error:
        butler.get(refs[0])
    check_refused(error, how)
    message = str(error.value)
    assert str(refs[0].id) in message or str(refs[0]) in message
    assert artifact_of(butler, refs[0])[1] in message
    with pytest.raises(ArtifactCorruptedError):
        butler.get("thing", instrument="HSC", detector=1)
    with pytest.raises(ArtifactCorruptedError):
        butler.get_deferred(refs[0]).get()
    with pytest.raises(ArtifactCorruptedError):
        butler.get_many(refs)
    with pytest.raises(ArtifactCorruptedError):
        butler.get(refs[0], parameters={})
    assert isinstance(error.value, DatabutlerError)
    # The other dataset is untouched; nothing changed.
    assert butler.get(refs[1]) == dict(OBJECT, detector=2)
    assert datasets(butler) == before


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_no_corrupt_copy_leaves(make: Callable[..., Butler], tmp_path: Path, how: str) -> None:
    butler = make(checksum=not DAMAGE[how][1])
    refs = [
        butler.put(dict(OBJECT, detector=d), "thing", instrument="HSC", detector=d) for d in (1, 2)
    ]
    damage(butler, refs[1], how)

    out = tmp_path / "out"
    with pytest.raises(ArtifactCorruptedError) as error:
        butler.retrieve_artifacts(refs, out)
    check_refused(error, how)
    assert not out.exists() or not any(p.is_file() for p in out.rglob("*"))
    if butler.datastore.local_roots or file_datastore(butler).local_roots:
        with pytest.raises(ArtifactCorruptedError):
            butler.retrieve_artifacts(refs, tmp_path / "linked", transfer="symlink")
        assert not any(p.is_symlink() or p.is_file() for p in (tmp_path / "linked").rglob("*"))

    with pytest.raises(ArtifactCorruptedError):
        butler.export(tmp_path / "export", refs=refs)
    assert not any(
        p.name != "export.yaml" and p.is_file() for p in (tmp_path / "export").rglob("*")
    )

    if file_datastore(butler).local_roots and DAMAGE[how][1]:
        # An export pointing at the artifacts where they are is refused too (a stat each).
        with pytest.raises(ArtifactCorruptedError):
            butler.export(tmp_path / "in-place", refs=refs, transfer=None)
        assert butler.export(tmp_path / "in-place-ok", refs=refs[:1], transfer=None).exists()

    target = make("target")
    with pytest.raises(ArtifactCorruptedError):
        target.transfer_from(butler, refs)
    assert datasets(target) == set()
    assert target.verify().ok
    # Only the intact one comes across when asked alone.
    assert [r.id for r in target.transfer_from(butler, refs[:1])] == [refs[0].id]
    assert target.get(refs[0]) == dict(OBJECT, detector=1)


@pytest.mark.parametrize("how", ["truncate", "extend", "flip"])
def test_zip_member(make: Callable[..., Butler], tmp_path: Path, how: str) -> None:
    butler = make(checksum=True)
    datastore = file_datastore(butler)
    refs = butler.registry.insertDatasets(
        "thing", [{"instrument": "HSC", "detector": d} for d in (3, 4)], "run"
    )
    datastore.put_zip([(dict(OBJECT, detector=3), refs[0]), (dict(OBJECT, detector=4), refs[1])])
    assert datastore.get(refs[0]) == dict(OBJECT, detector=3)
    store, path = artifact_of(butler, refs[0])
    path = path.split("#", 1)[0]
    data = store.read(path)
    if how == "truncate":
        store.write(path, data[: len(data) - 40], overwrite=True)
    elif how == "extend":
        store.write(path, data + b"\0" * 8, overwrite=True)  # zip readers tolerate trailing bytes
    else:
        store.write(path, data.replace(b"seven", b"eight", 1), overwrite=True)
    if how == "extend":
        # Trailing bytes leave every member intact: still read, and as recorded.
        assert datastore.get(refs[0]) == dict(OBJECT, detector=3)
        return
    with pytest.raises(ArtifactCorruptedError) as error:
        datastore.get(refs[0])
    assert "corrupted" in str(error.value) and ".zip" in str(error.value)
    with pytest.raises(ArtifactCorruptedError):
        butler.retrieve_artifacts(refs, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.json"))
    target = make("target")
    with pytest.raises(ArtifactCorruptedError):
        target.transfer_from(butler, refs)
    assert datasets(target) == set()


@pytest.mark.parametrize("how", ["truncate", "extend", "empty"])
def test_verify_reports_consistently(make: Callable[..., Butler], how: str) -> None:
    butler = make()
    refs = [
        butler.put(dict(OBJECT, detector=d), "thing", instrument="HSC", detector=d) for d in (1, 2)
    ]
    damage(butler, refs[0], how)
    kinds = [p.kind for p in butler.verify().problems]
    assert kinds == ["size_mismatch"]
    repaired = butler.verify(repair=True)
    assert [p.kind for p in repaired.unrepaired] == ["size_mismatch"] and not repaired.ok
    # Repair does not invent bytes: the dataset still refuses, and verify still says why.
    with pytest.raises(ArtifactCorruptedError):
        butler.get(refs[0])
    assert [p.kind for p in butler.verify().problems] == ["size_mismatch"]
    # The fix the message gives: remove the dataset and put it again.
    butler.prune(refs[:1], purge=True)
    again = butler.put(dict(OBJECT, detector=1), "thing", instrument="HSC", detector=1)
    assert butler.get(again) == dict(OBJECT, detector=1)
    assert butler.verify().ok


def test_checksum_mismatch_is_reported(make: Callable[..., Butler]) -> None:
    butler = make(checksum=True)
    ref = butler.put(OBJECT, "thing", instrument="HSC", detector=1)
    damage(butler, ref, "flip")
    assert butler.verify().ok  # same size: only the checksum tells
    assert [p.kind for p in butler.verify(checksums=True).problems] == ["checksum_mismatch"]
    with pytest.raises(ArtifactCorruptedError, match="checksum"):
        butler.get(ref)


def test_checksums_say_what_they_could_not_compare(make: Callable[..., Butler]) -> None:
    """Without recorded checksums, ``checksums=True`` cannot see a same-size change: the
    report says how many artifacts it compared by size only, and none when all have one."""
    plain, summed = make("plain"), make("summed", checksum=True)
    for butler in (plain, summed):
        for d in (1, 2):
            butler.put(dict(OBJECT, detector=d), "thing", instrument="HSC", detector=d)
    report = plain.verify(checksums=True)
    assert report.ok and report.checked == 2 and report.unchecksummed == 2
    assert plain.verify().unchecksummed == 0  # not asked to compare checksums
    assert summed.verify(checksums=True).unchecksummed == 0


def test_intact_artifacts_read_as_before(make: Callable[..., Butler], tmp_path: Path) -> None:
    butler = make(checksum=True)
    refs = [
        butler.put(dict(OBJECT, detector=d), "thing", instrument="HSC", detector=d)
        for d in range(3)
    ]
    assert butler.get_many(refs) == [dict(OBJECT, detector=d) for d in range(3)]
    paths = butler.retrieve_artifacts(refs, tmp_path / "out")
    assert sorted(json.loads(p.read_text())["detector"] for p in paths) == [0, 1, 2]
    target = make("target")
    assert len(target.transfer_from(butler, refs)) == 3
    assert target.get_many(refs) == butler.get_many(refs)


def test_a_link_whose_file_is_gone_is_a_missing_artifact(tmp_path: Path) -> None:
    """A dataset ingested as a symbolic link whose file the user deleted: `verify` says the
    artifact is missing (not a size of -1 bytes), and `get` names the dataset plainly."""
    source = tmp_path / "outside.json"
    source.write_text(json.dumps(OBJECT))
    with Butler.create(tmp_path / "repo", run="run") as butler:
        populate(butler)
        (ref,) = butler.ingest(
            FileDataset(
                str(source), [UnresolvedRef("thing", {"instrument": "HSC", "detector": 1})]
            ),
            transfer="symlink",
        )
        assert butler.get(ref) == OBJECT
        source.unlink()
        (problem,) = butler.verify().problems
        assert (problem.kind, problem.dataset_id) == ("missing_artifact", ref.id)
        assert "symbolic link" in problem.detail
        with pytest.raises(DatasetNotStoredError) as caught:
            butler.get(ref)
        message = str(caught.value)
        assert "thing@{instrument: 'HSC', detector: 1}" in message and str(ref.id) in message
        assert "DatasetRef(" not in message and "DatasetType(" not in message
