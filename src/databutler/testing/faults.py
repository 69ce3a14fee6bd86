"""Fault injection for storage tests: an HTTP proxy that makes an S3 server fail on demand.

`s3_fault_proxy` starts a `S3FaultProxy` on a free loopback port in front of
a real S3 endpoint (moto's server in the tests). It forwards every request
as it is and returns the server's answer, except that once armed with
`S3FaultProxy.fail` it answers the matching requests itself with a real
HTTP 500 and S3's ``InternalError`` body, as S3 does when it has a bad
moment. Everything between the client and the proxy is real: boto3, its
retries and error parsing, the sockets.

Example::

    with s3_endpoint() as s3, s3_fault_proxy(s3.meta.endpoint_url) as proxy:
        store = S3Store("s3://bucket/repo", client=proxy.client())
        proxy.fail("PUT")  # every PUT now answers 500
        ...
        proxy.heal()
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from .s3 import CREDENTIALS

__all__ = ["S3FaultProxy", "s3_fault_proxy"]

#: Headers that describe one hop (or the body's framing), never forwarded as they are.
_HOP_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "expect",
        "host",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

_ERROR_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>InternalError</Code>"
    "<Message>We encountered an internal error. Please try again.</Message>"
    "<RequestId>{request_id}</RequestId><HostId>databutler-fault-proxy</HostId></Error>"
)


@dataclass(slots=True)
class _Fault:
    method: str
    path_contains: str
    skip: int
    remaining: int | None  # None: for ever


class S3FaultProxy:
    """Forwards HTTP requests to ``upstream``, answering the armed ones with a 500.

    Build it with `s3_fault_proxy`, which also starts and stops it.

    Parameters
    ----------
    upstream : `str`
        The real endpoint, ``http://host:port``.
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise ValueError(f"Upstream {upstream!r} must be http://host:port.")
        self.upstream_host: str = parts.hostname
        self.upstream_port: int = parts.port
        self.endpoint_url = ""  # set once the server listens
        #: ``(method, path)`` of every request answered with an injected 500.
        self.injected: list[tuple[str, str]] = []
        #: ``(method, path)`` of every request passed on to the upstream server.
        self.forwarded: list[tuple[str, str]] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._clients: list[Any] = []

    def fail(
        self, method: str, *, times: int | None = None, skip: int = 0, path_contains: str = ""
    ) -> None:
        """Answer matching requests with HTTP 500 ``InternalError``.

        Parameters
        ----------
        method : `str`
            The HTTP method to fail (``PUT``, ``DELETE``, ``GET``, ``HEAD``, ``POST``).
        times : `int`, optional
            Fail this many matching requests, then forward again; `None`
            (the default) fails every one until `heal`.
        skip : `int`, optional
            Forward this many matching requests first (fail the second PUT:
            ``skip=1``).
        path_contains : `str`, optional
            Only requests whose path and query contain this text match.
        """
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 (or None for always), not {times}.")
        with self._lock:
            self._faults.append(_Fault(method.upper(), path_contains, skip, times))

    def heal(self) -> None:
        """Forward every request again."""
        with self._lock:
            self._faults.clear()

    def client(self, *, max_attempts: int = 1) -> Any:
        """A boto3 S3 client that talks through this proxy.

        Parameters
        ----------
        max_attempts : `int`, optional
            Attempts per call, the first included; 1 (no retry) by default,
            so a failure shows at once.
        """
        import boto3  # type: ignore[import-untyped]
        from botocore.config import Config  # type: ignore[import-untyped]

        config = Config(retries={"total_max_attempts": max_attempts, "mode": "standard"})
        client = boto3.client("s3", endpoint_url=self.endpoint_url, config=config, **CREDENTIALS)
        self._clients.append(client)
        return client

    def _should_fail(self, method: str, path: str) -> bool:
        with self._lock:
            for fault in self._faults:
                if fault.method != method or fault.path_contains not in path:
                    continue
                if fault.skip:
                    fault.skip -= 1
                    return False
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                self.injected.append((method, path))
                return True
            self.forwarded.append((method, path))
            return False

    def _close_clients(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, proxy: S3FaultProxy) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.proxy = proxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as boto3 expects
    timeout = 30  # an idle keep-alive connection is dropped after this
    server: _Server

    def do_GET(self) -> None:
        self._handle()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        proxy = self.server.proxy
        method = self.command
        body = self._read_body()
        if proxy._should_fail(method, self.path):
            self._answer_internal_error(len(proxy.injected))
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        if body or method in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(proxy.upstream_host, proxy.upstream_port)
        try:
            connection.request(method, self.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        self.send_response_only(response.status, response.reason)
        for key, value in response.getheaders():
            if key.lower() not in _HOP_HEADERS:
                self.send_header(key, value)
        if method == "HEAD" or response.status in (204, 304):
            length = response.getheader("Content-Length")
            if length is not None:
                self.send_header("Content-Length", length)
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(data)

    def _answer_internal_error(self, number: int) -> None:
        payload = _ERROR_BODY.format(request_id=f"fault-{number}").encode()
        self.send_response(500, "Internal Server Error")
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


@contextmanager
def s3_fault_proxy(endpoint_url: str) -> Iterator[S3FaultProxy]:
    """Run a `S3FaultProxy` in front of ``endpoint_url`` on a free loopback port.

    Parameters
    ----------
    endpoint_url : `str`
        The S3 endpoint to forward to, ``http://host:port``.

    Yields
    ------
    proxy : `S3FaultProxy`
        Healthy until armed; ``proxy.endpoint_url`` is where it listens and
        ``proxy.client()`` makes a boto3 client for it. Its clients are
        closed and the server stopped on exit.
    """
    proxy = S3FaultProxy(endpoint_url)
    server = _Server(proxy)
    host, port = server.server_address[:2]
    proxy.endpoint_url = f"http://{host!s}:{port}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield proxy
    finally:
        proxy._close_clients()
        server.shutdown()
        server.server_close()
        thread.join()
