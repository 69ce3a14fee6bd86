"""A real S3 HTTP endpoint for tests: moto's server, in this process, on 127.0.0.1."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["make_bucket", "s3_endpoint"]

#: moto accepts any credentials; these keep boto3 away from real ones.
CREDENTIALS = {
    "aws_access_key_id": "testing",
    "aws_secret_access_key": "testing",
    "region_name": "us-east-1",
}


@contextmanager
def s3_endpoint() -> Iterator[Any]:
    """Start a moto S3 server on a free loopback port; yield a boto3 client for it."""
    import boto3  # type: ignore[import-untyped]
    from moto.server import ThreadedMotoServer  # type: ignore[import-untyped]

    # One log line per request drowns whatever else is printed (benchmarks, -s).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        client = boto3.client("s3", endpoint_url=f"http://{host}:{port}", **CREDENTIALS)
        yield client
    finally:
        server.stop()


def make_bucket(client: Any) -> str:
    """Create a fresh bucket and return its name."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    client.create_bucket(Bucket=name)
    return name
