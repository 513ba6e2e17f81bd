"""A cold start, as a scale-to-zero service has on every first request after idling.

Liveness must answer before the Kubernetes client is even loaded; readiness once the
definitions are read and the API answers. The bounds are loose (shared 2-core CI
machines) but catch start-up work that should have waited for a request.
"""

from __future__ import annotations

import time
from pathlib import Path

import requests

from tests.e2e.conftest import write_definitions
from tests.helpers import start_function

LIVE_WITHIN_SECONDS = 10.0
READY_WITHIN_SECONDS = 30.0


def test_a_cold_start_is_live_then_ready_quickly(
    kubeconfig: Path, module_namespace: str, tmp_path: Path
) -> None:
    server = start_function(
        module_namespace,
        write_definitions(tmp_path, module_namespace),
        tmp_path / "function.log",
        ready_path="/healthz",
    )
    try:
        live = server.seconds_to_ready
        asked = time.monotonic()
        response = requests.get(f"{server.url}/readyz", timeout=30)
        ready = live + time.monotonic() - asked
        assert response.status_code == 200, response.text
        print(f"\ncold start: live after {live:.2f} s, ready after {ready:.2f} s")
        assert live < LIVE_WITHIN_SECONDS
        assert ready < READY_WITHIN_SECONDS
        started = time.monotonic()
        body = {"definition": "echo", "arguments": {"message": "first"}}
        assert requests.post(f"{server.url}/jobs", json=body, timeout=30).status_code == 201
        print(f"first submission after readiness took {time.monotonic() - started:.3f} s")
    finally:
        server.stop()
