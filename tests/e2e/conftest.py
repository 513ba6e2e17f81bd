"""Fixtures of the end-to-end tests: the function as a real server process on loopback.

``start_function`` (tests/helpers.py) runs ``functions-framework --target handle
--source function/main.py`` — the command a developer and the buildpack image run —
with the environment a deployment sets, and waits for ``/readyz``. Each test module
gets its own namespace and server (``function_server``); modules that need other
settings start their own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from kubernetes import client

from tests.helpers import FUNCTION_SIGNATURE, ROOT, FunctionServer, create_namespace, start_function

E2E_DEFINITIONS = ROOT / "tests" / "data" / "definitions" / "e2e.yaml"
SIGNATURE = FUNCTION_SIGNATURE


def write_definitions(directory: Path, namespace: str) -> Path:
    path = directory / "definitions.yaml"
    path.write_text(E2E_DEFINITIONS.read_text().replace("${NAMESPACE}", namespace))
    return path


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
    yield from serve_e2e_function(module_namespace, tmp_path_factory, "function")


def serve_e2e_function(
    namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
    hint: str,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[FunctionServer]:
    """For a module fixture: the function serving the e2e definitions (with ``extra_env``)
    in ``namespace`` while the module's tests run."""
    directory = tmp_path_factory.mktemp(hint)
    server = start_function(
        namespace, write_definitions(directory, namespace), directory / "function.log", extra_env
    )
    yield server
    server.stop()


@pytest.fixture
def batch_api(api_client: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(api_client)
