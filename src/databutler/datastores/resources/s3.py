"""Artifacts in an S3 bucket (AWS or any S3-compatible server).

Needs boto3: ``pip install 'databutler[s3]'``. boto3 is the maintained,
complete client: it reads credentials and the endpoint from the standard AWS
environment variables (``AWS_ACCESS_KEY_ID``, ``AWS_ENDPOINT_URL_S3``, ...)
and profiles, retries, and switches to multipart uploads for large objects.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, cast

from ..._exceptions import AlreadyExistsError, ConfigurationError
from ._base import ResourceStore, StorageError, check_relative_path

__all__ = ["S3Store"]

#: Keys per DeleteObjects request (the S3 maximum).
DELETE_BATCH = 1_000

#: Objects at least this large go up in parts (boto3's TransferConfig).
MULTIPART_THRESHOLD = 64 * 1024 * 1024


def _boto3() -> Any:
    try:
        import boto3  # type: ignore[import-untyped]
    except ImportError:
        raise ConfigurationError(
            "S3 storage needs boto3, which is not installed: pip install 'databutler[s3]'."
        ) from None
    return boto3


class S3Store(ResourceStore):
    """Artifacts under ``s3://bucket/prefix``.

    Parameters
    ----------
    uri : `str`
        ``s3://bucket`` or ``s3://bucket/prefix``.
    client : `object`, optional
        A boto3 S3 client; by default one from the standard AWS configuration.
    """

    concurrency = 16  # requests are latency-bound: several in flight at once

    def __init__(self, uri: str, *, client: Any = None) -> None:
        if not uri.startswith("s3://") or len(uri) <= len("s3://"):
            raise ConfigurationError(f"Not an S3 URI: {uri!r}; expected s3://bucket/prefix.")
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        self._bucket = bucket
        self._prefix = prefix.strip("/")
        if self._prefix:
            check_relative_path(self._prefix)
        boto3 = _boto3()
        self._client = client if client is not None else boto3.client("s3")
        from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]

        self._transfer = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD)

    @property
    def root(self) -> str:
        # docstring inherited
        return f"s3://{self._bucket}/{self._prefix}" if self._prefix else f"s3://{self._bucket}"

    def _key(self, path: str) -> str:
        check_relative_path(path)
        return f"{self._prefix}/{path}" if self._prefix else path

    def _fail(self, action: str, path: str, exc: Exception) -> Exception:
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound"):
            return FileNotFoundError(f"No artifact {path!r} in {self.root}.")
        return StorageError(f"Cannot {action} {path!r} in {self.root}: {exc}")

    def read(self, path: str) -> bytes:
        # docstring inherited
        key = self._key(path)
        try:
            response = self._client.get_object(Bucket=self._bucket, Key=key)
            return bytes(response["Body"].read())
        except Exception as exc:
            raise self._fail("read", path, exc) from exc

    def open(self, path: str) -> BinaryIO:
        # docstring inherited; the object's tail comes with the first request
        # (where file formats keep their index: a Parquet footer), then one
        # ranged GET per read outside it.
        key = self._key(path)
        try:
            response = self._client.get_object(
                Bucket=self._bucket, Key=key, Range=f"bytes=-{_TAIL}"
            )
            tail = bytes(response["Body"].read())
        except Exception as exc:
            raise self._fail("read", path, exc) from exc
        # "bytes 100-199/200": the object's size after the slash.
        content_range = response.get("ContentRange") or ""
        size = int(content_range.rpartition("/")[2]) if "/" in content_range else len(tail)
        # Unbuffered: each read outside the tail is exactly one request.
        return cast(BinaryIO, _RangedObject(self, path, size, tail))

    def read_range(self, path: str, start: int, stop: int) -> bytes:
        """Bytes ``start`` to ``stop`` (exclusive) of ``path``, in one ranged request."""
        key = self._key(path)
        try:
            response = self._client.get_object(
                Bucket=self._bucket, Key=key, Range=f"bytes={start}-{stop - 1}"
            )
            return bytes(response["Body"].read())
        except Exception as exc:
            raise self._fail("read", path, exc) from exc

    def write(self, path: str, data: bytes, *, overwrite: bool = False) -> None:
        # docstring inherited; an S3 PUT replaces the object atomically.
        key = self._key(path)
        if not overwrite and self.exists(path):
            raise AlreadyExistsError(f"Artifact {path!r} exists already in {self.root}.")
        try:
            if len(data) < MULTIPART_THRESHOLD:
                self._client.put_object(Bucket=self._bucket, Key=key, Body=data)
            else:
                self._client.upload_fileobj(
                    io.BytesIO(data), self._bucket, key, Config=self._transfer
                )
        except Exception as exc:
            raise self._fail("write", path, exc) from exc

    def size(self, path: str) -> int:
        # docstring inherited
        key = self._key(path)
        try:
            response = self._client.head_object(Bucket=self._bucket, Key=key)
        except Exception as exc:
            raise self._fail("inspect", path, exc) from exc
        return int(response["ContentLength"])

    def arrived(self, path: str) -> float | None:
        # docstring inherited; the object's upload (S3 objects are never changed in place).
        key = self._key(path)
        try:
            response = self._client.head_object(Bucket=self._bucket, Key=key)
        except Exception as exc:
            failure = self._fail("inspect", path, exc)
            if isinstance(failure, FileNotFoundError):
                return None
            raise failure from exc
        return float(response["LastModified"].timestamp())

    def delete(self, path: str) -> bool:
        # docstring inherited
        key = self._key(path)
        existed = self.exists(path)
        try:
            self._client.delete_object(Bucket=self._bucket, Key=key)
        except Exception as exc:
            raise self._fail("delete", path, exc) from exc
        return existed

    def delete_many(self, paths: Iterable[str]) -> None:
        # docstring inherited; one DeleteObjects request per 1,000 keys
        keys = [self._key(path) for path in paths]
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            try:
                response = self._client.delete_objects(
                    Bucket=self._bucket,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                )
            except Exception as exc:
                raise self._fail("delete", batch[0], exc) from exc
            errors = [e for e in response.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if errors:
                first = errors[0]
                raise StorageError(
                    f"Cannot delete {len(errors)} artifact(s) in {self.root}, e.g. "
                    f"{first.get('Key')!r}: {first.get('Code')} {first.get('Message', '')}".rstrip()
                )

    def list_sizes(self, prefix: str = "") -> Iterator[tuple[str, int]]:
        # docstring inherited; sizes come with the listing
        return iter(sorted(self._listing(prefix)))

    def _listing(self, prefix: str) -> list[tuple[str, int]]:
        start = (
            self._key(prefix).rstrip("/") + "/"
            if prefix
            else (f"{self._prefix}/" if self._prefix else "")
        )
        strip = len(f"{self._prefix}/") if self._prefix else 0
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            return [
                (item["Key"][strip:], int(item["Size"]))
                for page in paginator.paginate(Bucket=self._bucket, Prefix=start)
                for item in page.get("Contents", [])
            ]
        except Exception as exc:
            raise self._fail("list", prefix or "/", exc) from exc

    def list(self, prefix: str = "") -> Iterator[str]:
        # docstring inherited
        return iter(sorted(path for path, _ in self._listing(prefix)))

    def copy(self, source: str, destination: str, *, overwrite: bool = False) -> None:
        # docstring inherited; server-side copy
        source_key, destination_key = self._key(source), self._key(destination)
        if not overwrite and self.exists(destination):
            raise AlreadyExistsError(f"Artifact {destination!r} exists already in {self.root}.")
        try:
            self._client.copy_object(
                Bucket=self._bucket,
                Key=destination_key,
                CopySource={"Bucket": self._bucket, "Key": source_key},
            )
        except Exception as exc:
            raise self._fail("copy", source, exc) from exc


#: Bytes of an object's end `S3Store.open` fetches with its first request.
_TAIL = 64 * 1024


class _RangedObject(io.RawIOBase):
    """An S3 object as a seekable raw file: its tail is held, other reads are ranged GETs."""

    def __init__(self, store: S3Store, path: str, size: int, tail: bytes) -> None:
        super().__init__()
        self._store = store
        self._path = path
        self._size = size
        self._tail = tail
        self._tail_start = size - len(tail)
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(base + offset, 0)
        return self._position

    def readinto(self, buffer: Any) -> int:
        stop = min(self._position + len(buffer), self._size)
        if stop <= self._position:
            return 0
        if self._position >= self._tail_start:
            data = self._tail[self._position - self._tail_start : stop - self._tail_start]
        else:
            data = self._store.read_range(self._path, self._position, stop)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)
