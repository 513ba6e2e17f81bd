"""Fixtures of the workflow-engine tests: the engines' virtualenv, moto's S3, and the function, all
in the local cluster's network namespace.

A workflow engine, its jobs and the services they share must reach each other at one address:
Snakemake passes its S3 endpoint to the jobs it submits. So moto listens on the node's address
(pods reach it through their bridge), and the engine and the function run in the cluster's
network namespace too (``nsenter``), where that address and the apiserver's are local.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from kubernetes import client

from tests.cluster import localcluster, netns
from tests.engines.clients import ensure_venv
from tests.helpers import ROOT, FunctionServer, create_namespace, free_port, start_function, wait_for

AWS_DEFINITIONS = ROOT / "tests" / "data" / "definitions" / "aws.yaml"


def in_netns(argv: list[str]) -> list[str]:
    """``argv`` run inside the local cluster's network namespace."""
    return ["nsenter", f"--net={netns.path(localcluster.netns_name())}", *argv]


def reachable(url: str) -> bool:
    def call() -> bool:
        try:
            return requests.get(url, timeout=5).status_code < 500
        except requests.ConnectionError:
            return False

    return localcluster.in_cluster_network(call)


@pytest.fixture(scope="session")
def engines(kubeconfig: Path) -> Path:
    """The bin directory of the engines' virtualenv (installed once per machine)."""
    return ensure_venv()


@pytest.fixture(scope="module")
def engine_namespace(api_client: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    name = create_namespace(api_client, "engines-" + request.module.__name__.rsplit(".", 1)[-1])
    yield name
    client.CoreV1Api(api_client).delete_namespace(name, propagation_policy="Background")


@pytest.fixture(scope="module")
def s3(engines: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's S3 on the node's address: ``http://10.200.0.1:<port>``."""
    port = localcluster.in_cluster_network(free_port)
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            in_netns([str(engines / "moto_server"), "-H", netns.NODE_IP, "-p", str(port)]),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://{netns.NODE_IP}:{port}"
    try:
        wait_for(lambda: process.poll() is not None or reachable(url), timeout=60, what="moto's S3")
        assert process.poll() is None, log.read_text()
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def serve_for_engines(
    namespace: str, tmp_path_factory: pytest.TempPathFactory, images: str
) -> Iterator[FunctionServer]:
    """The function as an operator would run it for workflow engines: registration on for
    ``images``; privileged definitions run unprivileged; a tenth of each vCPU requested (the
    real node has two CPUs, and engines ask for whole ones)."""
    directory = tmp_path_factory.mktemp("function")
    definitions = directory / "definitions.yaml"
    shutil.copy(AWS_DEFINITIONS, definitions)
    env = {
        "JOBFN_REGISTRATION": "on",
        "JOBFN_REGISTRATION_IMAGES": images,
        "JOBFN_REGISTRATION_PRIVILEGED": "unprivileged",
        "JOBFN_REGISTRATION_CPU_REQUEST_RATIO": "0.1",
    }
    server = start_function(namespace, definitions, directory / "function.log", env, in_cluster=True)
    yield server
    server.stop()


def client_env(server: FunctionServer) -> dict[str, str]:
    """What a Batch user changes to reach jobfn: the endpoint (credentials are any)."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(Path.home()),
        "AWS_ENDPOINT_URL_BATCH": server.url,
        "AWS_ACCESS_KEY_ID": "AKIDENGINES",
        "AWS_SECRET_ACCESS_KEY": "any",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
