"""A cold start, as a scale-to-zero service has on every first request after idling.

Liveness answers before the function has spoken to the API server (``ready_path`` is
``/healthz``: nothing is loaded for it); readiness once the definitions are read and
the API answers; then the first submission is created. How *long* a cold start takes
is measured by the benchmark (``bench/coldstart.py``, ``make bench``: exec → first
answer beside a bare functions-framework hello-world, on the same machine), not
bounded here: a bound loose enough for a shared 2-core CI machine caught nothing.
Start-up work that should wait for a request is caught exactly by
``tests/unit/test_rest_plumbing.py::test_loading_the_target_does_not_import_the_kubernetes_client``.
"""

from __future__ import annotations

from pathlib import Path

import requests

from tests.e2e.conftest import write_definitions
from tests.helpers import start_function


def test_a_cold_start_is_live_then_ready_then_submits(
    kubeconfig: Path, module_namespace: str, tmp_path: Path
) -> None:
    server = start_function(
        module_namespace,
        write_definitions(tmp_path, module_namespace),
        tmp_path / "function.log",
        ready_path="/healthz",
    )
    try:
        response = requests.get(f"{server.url}/readyz", timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["definitions"] > 0
        body = {"definition": "echo", "arguments": {"message": "first"}}
        assert requests.post(f"{server.url}/jobs", json=body, timeout=30).status_code == 201
    finally:
        server.stop()
