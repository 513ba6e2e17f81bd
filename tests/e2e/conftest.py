"""The function as a real server process on loopback, against the local cluster.

``start_function`` runs ``functions-framework --target handle --source function/main.py``
— the command a developer and the buildpack image run — with the environment a
deployment sets, and waits for ``/readyz``. Each test module gets its own namespace
and server (``function_server``); modules that need other settings start their own.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from kubernetes import client

from tests.conftest import TEST_NAMESPACE_LABEL
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[2]
E2E_DEFINITIONS = ROOT / "tests" / "data" / "definitions" / "e2e.yaml"
SIGNATURE = "jobfn-e2e"
READY_TIMEOUT = 60.0


@dataclass
class FunctionServer:
    """A running function process."""

    url: str
    namespace: str
    process: subprocess.Popen[bytes]
    log_path: Path
    seconds_to_ready: float = 0.0
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def functions_framework_command() -> str:
    beside_python = Path(sys.executable).parent / "functions-framework"
    return str(beside_python) if beside_python.exists() else "functions-framework"


def write_definitions(directory: Path, namespace: str) -> Path:
    path = directory / "definitions.yaml"
    path.write_text(E2E_DEFINITIONS.read_text().replace("${NAMESPACE}", namespace))
    return path


def start_function(
    namespace: str,
    definitions: Path,
    log_path: Path,
    extra_env: Mapping[str, str] | None = None,
    ready_path: str = "/readyz",
) -> FunctionServer:
    """Start the function and wait until ``ready_path`` answers 200 (or fail with its log)."""
    port = free_port()
    env = {
        **os.environ,
        "JOB_NAMESPACE": namespace,
        "JOB_SIGNATURE": SIGNATURE,
        "JOB_DEFINITIONS_CONFIG_PATH": str(definitions),
        "JOBFN_RELOAD_INTERVAL_SECONDS": "0.2",
        "JOBFN_AUTH": "none",
        "THREADS": "8",
        **(extra_env or {}),
    }
    started = time.monotonic()
    source = str(ROOT / "function" / "main.py")
    command = [functions_framework_command(), "--target", "handle", "--source", source]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=log_path.parent,
        )
    server = FunctionServer(f"http://127.0.0.1:{port}", namespace, process, log_path, env=env)
    deadline = started + READY_TIMEOUT
    while True:
        if process.poll() is not None:
            raise AssertionError(f"the function exited with {process.returncode}:\n{server.log()[-4000:]}")
        try:
            if requests.get(server.url + ready_path, timeout=30).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise AssertionError(f"{ready_path} not ready after {READY_TIMEOUT} s:\n{server.log()[-4000:]}")
        time.sleep(0.05)
    server.seconds_to_ready = time.monotonic() - started
    return server


def create_namespace(api_client: client.ApiClient, hint: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", hint.lower()).strip("-")[:40].strip("-")
    name = f"{slug}-{uuid.uuid4().hex[:6]}"
    core = client.CoreV1Api(api_client)
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={TEST_NAMESPACE_LABEL: "true"}))
    )
    # Pods are refused until the controller-manager has created the "default" ServiceAccount.
    wait_for(
        lambda: core.list_namespaced_service_account(name, field_selector="metadata.name=default").items,
        timeout=30,
    )
    return name


@pytest.fixture(scope="module")
def module_namespace(api_client: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace for one test module, deleted (in the background) afterwards."""
    name = create_namespace(api_client, "e2e-" + request.module.__name__.rsplit(".", 1)[-1])
    yield name
    client.CoreV1Api(api_client).delete_namespace(name, propagation_policy="Background")


@pytest.fixture(scope="module")
def function_server(
    kubeconfig: Path, module_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FunctionServer]:
    """The function serving the e2e definitions in this module's namespace."""
    directory = tmp_path_factory.mktemp("function")
    server = start_function(
        module_namespace, write_definitions(directory, module_namespace), directory / "function.log"
    )
    yield server
    server.stop()


@pytest.fixture
def batch_api(api_client: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(api_client)
