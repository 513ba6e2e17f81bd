"""HTTP at the byte level, for requests no polite client would send, and a function to send them to.

``RawConnection`` keeps one connection alive across requests (reconnecting when the
server closes it) and writes exactly the bytes it is given: headers twice, headers
that are not UTF-8, a Content-Length the body never reaches, chunked bodies. Answers
are read with ``http.client``'s parser. ``serve_e2e_function`` starts the real
function on the shared cluster with the e2e definitions, for the reliability tests
that need one of their own.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from kubernetes import client as k8s

from tests.e2e.conftest import write_definitions
from tests.helpers import FunctionServer, create_namespace, start_function

Header = tuple[str | bytes, str | bytes]


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def request_bytes(
    method: str, path: str, headers: Sequence[Header] = (), body: bytes = b"", *, content_length: bool = True
) -> bytes:
    """One HTTP/1.1 request exactly as given (a Content-Length is added unless ``content_length`` is False)."""
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: function"]
    lines += [_bytes(name) + b": " + _bytes(value) for name, value in headers]
    if content_length:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def chunked(body: bytes, chunk_size: int = 64 * 1024) -> bytes:
    """``body`` in the chunked transfer coding."""
    parts = [
        b"%x\r\n%s\r\n" % (len(body[i : i + chunk_size]), body[i : i + chunk_size])
        for i in range(0, len(body), chunk_size)
    ]
    return b"".join(parts) + b"0\r\n\r\n"


@dataclass(frozen=True)
class Answer:
    """An HTTP answer: status, headers (names in lower case; a repeated one keeps its last value), body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def from_function(self) -> bool:
        """Whether jobfn answered (every answer of its own carries a request id), not gunicorn before it."""
        return "x-request-id" in self.headers


class RawConnection:
    """One keep-alive connection to ``url`` that sends raw request bytes and reads one answer each."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        address = urlsplit(url)
        self._address = (address.hostname or "127.0.0.1", address.port or 80)
        self._timeout = timeout
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.create_connection(self._address, timeout=self._timeout)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes, method: str = "POST") -> Answer:
        """Send ``data`` (a whole request) and read the answer; reconnects once if the server had closed."""
        for attempt in (1, 2):
            sock = self._connect()
            started = time.perf_counter()
            try:
                sock.sendall(data)
                return self._read(sock, method, started)
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _read(self, sock: socket.socket, method: str, started: float) -> Answer:
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        body = response.read()
        answer = Answer(
            response.status,
            {name.lower(): value for name, value in response.getheaders()},
            body,
            time.perf_counter() - started,
        )
        if response.will_close:
            self.close()
        return answer


def send_slowly(url: str, data: bytes, split_at: int, pause: float, timeout: float = 30.0) -> Answer:
    """Send ``data`` as a client on a slow link would: ``split_at`` bytes, then the rest ``pause`` seconds later.

    An answer that comes before the rest is sent (a refusal that did not wait for the
    body) is read at once, and the rest is never sent. ``seconds`` counts from the first byte.
    """
    with RawConnection(url, timeout) as connection:
        sock = connection._connect()
        started = time.perf_counter()
        sock.sendall(data[:split_at])
        answered_early, _, _ = select.select([sock], [], [], pause)
        if not answered_early:
            sock.sendall(data[split_at:])
        return connection._read(sock, data.split(b" ", 1)[0].decode(), started)


def send_once(url: str, data: bytes, method: str = "POST", timeout: float = 30.0) -> Answer:
    """Send one raw request on a connection of its own."""
    with RawConnection(url, timeout) as connection:
        return connection.send(data, method)


def serve_e2e_function(
    api_client: k8s.ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
    hint: str,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[FunctionServer]:
    """The function serving the e2e definitions in a fresh namespace of the shared cluster (for a fixture)."""
    namespace = create_namespace(api_client, hint)
    directory: Path = tmp_path_factory.mktemp(hint)
    server = start_function(
        namespace, write_definitions(directory, namespace), directory / "function.log", extra_env
    )
    try:
        yield server
    finally:
        server.stop()
        k8s.CoreV1Api(api_client).delete_namespace(namespace, propagation_policy="Background")


def list_job_names(api_client: k8s.ApiClient, namespace: str) -> set[str]:
    """The names of every Job in ``namespace``, as the API server has them."""
    jobs = k8s.BatchV1Api(api_client).list_namespaced_job(namespace, _request_timeout=60)
    return {job.metadata.name for job in jobs.items}
