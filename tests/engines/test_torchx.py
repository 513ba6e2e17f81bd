"""TorchX's ``aws_batch`` scheduler runs a component on 2 nodes (a multi-node parallel job) against
the function, on the real node: the nodes meet at the main node over the network.

The only change from running on AWS is the endpoint (``AWS_ENDPOINT_URL_BATCH``). The
scheduler registers a ``multinode`` definition (with linuxParameters' shared memory, the
awslogs driver and an ``onExitCode: "0"`` rule), submits it, finds the job again by name
through ListJobs and waits on DescribeJobs' ``nodeProperties``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.e2e.test_aws_batch_registration import nodes_service
from tests.engines.conftest import client_env, in_netns, serve_for_engines
from tests.helpers import FunctionServer

# Node 1 tells the main node who it is; the main node prints it (its log is the job's result).
MEETING = """
import os, socket, time
node, main = os.environ["AWS_BATCH_JOB_NODE_INDEX"], os.environ["AWS_BATCH_JOB_MAIN_NODE_INDEX"]
if node == main:
    connection, _ = socket.create_server(("", 7000)).accept()
    print(connection.recv(100).decode(), flush=True)
else:
    while True:
        try:
            address = (os.environ["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"], 7000)
            socket.create_connection(address, timeout=2).sendall(
                f"node {node} of {os.environ['AWS_BATCH_JOB_NUM_NODES']}".encode())
            break
        except OSError:
            time.sleep(1)
"""


@pytest.fixture(scope="module")
def server(
    engine_namespace: str, api_client: client.ApiClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FunctionServer]:
    client.CoreV1Api(api_client).create_namespaced_service(engine_namespace, nodes_service())
    yield from serve_for_engines(engine_namespace, tmp_path_factory, "python:3.11-slim")


def test_a_component_on_two_nodes_runs_as_a_multi_node_job_and_its_nodes_meet(
    engines: Path, server: FunctionServer, tmp_path: Path, api_client: client.ApiClient, engine_namespace: str
) -> None:
    torchx = str(engines / "torchx")
    run = [torchx, "run", "--scheduler", "aws_batch", "-cfg", "queue=main,user=jobfn", "--workspace", "",
           "--wait", "utils.python", "--image", "python:3.11-slim", "--num_replicas", "2", "--memMB", "64",
           "-c", MEETING]  # fmt: skip
    started = time.monotonic()
    finished = subprocess.run(
        in_netns(run), cwd=tmp_path, env=client_env(server), capture_output=True, text=True, timeout=300
    )
    seconds = time.monotonic() - started
    assert finished.returncode == 0, f"{finished.stdout}\n{finished.stderr[-5000:]}\n{server.log()[-3000:]}"
    print(f"torchx ran the component in {seconds:.0f} s")
    app_handle = finished.stdout.strip().splitlines()[-1]
    assert app_handle.startswith("aws_batch://")

    status = subprocess.run(
        in_netns([torchx, "status", app_handle]),
        env=client_env(server),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    assert "SUCCEEDED" in status.stdout + status.stderr

    core = client.CoreV1Api(api_client)
    [job] = client.BatchV1Api(api_client).list_namespaced_job(engine_namespace).items
    took = (job.status.completion_time - job.metadata.creation_timestamp).total_seconds()
    print(f"{job.metadata.name}: {took:.0f} s from submission to completion")
    pods = core.list_namespaced_pod(
        engine_namespace, label_selector=f"batch.kubernetes.io/job-name={job.metadata.name}"
    ).items
    main = next(p for p in pods if p.metadata.annotations["batch.kubernetes.io/job-completion-index"] == "0")
    assert core.read_namespaced_pod_log(main.metadata.name, engine_namespace) == "node 1 of 2\n"
