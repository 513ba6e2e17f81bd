"""Load shedding of a running function: the in-flight cap and a configured body limit."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.e2e.conftest import serve_e2e_function
from tests.helpers import FunctionServer


@pytest.fixture(scope="module")
def limited_server(
    kubeconfig: Path, module_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FunctionServer]:
    yield from serve_e2e_function(
        module_namespace,
        tmp_path_factory,
        "limited",
        {"JOBFN_MAX_IN_FLIGHT": "1", "JOBFN_MAX_BODY_BYTES": "1024"},
    )


@pytest.fixture
def stalled_request(limited_server: FunctionServer) -> Iterator[None]:
    """A request whose body never finishes arriving: it holds the only in-flight slot."""
    address = urlsplit(limited_server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(
            b"POST /jobs HTTP/1.1\r\nHost: function\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"definition": '
        )
        time.sleep(0.5)  # let the server start serving it
        yield
    _wait_until_the_slot_is_free(limited_server)


def _wait_until_the_slot_is_free(server: FunctionServer) -> None:
    """The server frees the slot only once it reads the closed connection's EOF: the next test
    must not race it for the only slot."""
    deadline = time.monotonic() + 10
    while requests.get(f"{server.url}/jobs", timeout=10).status_code == 429:
        assert time.monotonic() < deadline, "the stalled request never released its slot"
        time.sleep(0.05)


def test_request_beyond_the_in_flight_cap_is_429_at_once(
    limited_server: FunctionServer, stalled_request: None
) -> None:
    started = time.monotonic()
    response = requests.get(f"{limited_server.url}/jobs", timeout=10)
    assert response.status_code == 429, response.text
    assert time.monotonic() - started < 1.0
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"]["code"] == "TooManyRequests"


def test_probes_answer_while_the_in_flight_cap_is_reached(
    limited_server: FunctionServer, stalled_request: None
) -> None:
    assert requests.get(f"{limited_server.url}/healthz", timeout=10).status_code == 200
    assert requests.get(f"{limited_server.url}/readyz", timeout=10).status_code == 200


def test_configured_body_limit_is_enforced(limited_server: FunctionServer) -> None:
    body = {"definition": "echo", "arguments": {"message": "x" * 2000}}
    response = requests.post(f"{limited_server.url}/jobs", json=body, timeout=10)
    assert response.status_code == 413
    assert "1024" in response.json()["error"]["message"]
