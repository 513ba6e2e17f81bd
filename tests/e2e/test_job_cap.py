"""max_active_jobs across replicas: two function processes submitting at once never exceed it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from kubernetes import client

from tests.helpers import SIMULATED_NODE, FunctionServer, start_function, wait_for

CAP = 3
DEFINITIONS = f"""
definitions:
  - name: capped
    max_active_jobs: {CAP}
    parameters:
      n: {{type: integer, default: 0}}
    template: |
      apiVersion: batch/v1
      kind: Job
      metadata: {{name: capped}}
      spec:
        backoffLimit: 0
        template:
          metadata:
            annotations: {{jobfn.test/run-duration-ms: forever}}
          spec:
            nodeSelector: {json.dumps(SIMULATED_NODE["nodeSelector"])}
            tolerations: {json.dumps(SIMULATED_NODE["tolerations"])}
            restartPolicy: Never
            containers: [{{name: main, image: busybox, command: ["true"]}}]
"""


@pytest.fixture(scope="module")
def replicas(
    kubeconfig: Path, module_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[FunctionServer]]:
    """Two function processes serving one namespace, as two Knative replicas do."""
    directory = tmp_path_factory.mktemp("cap")
    (directory / "definitions.yaml").write_text(DEFINITIONS)
    servers = [
        start_function(module_namespace, directory / "definitions.yaml", directory / f"replica-{i}.log")
        for i in range(2)
    ]
    yield servers
    for server in servers:
        server.stop()


def test_two_replicas_submitting_at_once_never_exceed_the_cap(
    replicas: list[FunctionServer], module_namespace: str, batch_api: client.BatchV1Api
) -> None:
    for server in replicas:  # each has its Kubernetes client ready, so both race from the start
        assert requests.get(f"{server.url}/jobs", timeout=60).status_code == 200
    start = threading.Barrier(24)

    def submit(i: int) -> requests.Response:
        start.wait()
        server = replicas[i % 2]
        return requests.post(
            f"{server.url}/jobs", json={"definition": "capped", "arguments": {"n": i}}, timeout=60
        )

    with ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(submit, range(24)))

    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] * CAP + [429] * (24 - CAP), [
        a.text for a in answers if a.status_code not in (201, 429)
    ]
    created = [answer.json()["name"] for answer in answers if answer.status_code == 201]
    assert sorted(
        job.metadata.name for job in batch_api.list_namespaced_job(module_namespace).items
    ) == sorted(created)

    stopped = requests.post(f"{replicas[0].url}/jobs/{created[0]}/terminate", json={}, timeout=30)
    assert stopped.status_code == 200, stopped.text
    wait_for(
        lambda: requests.get(f"{replicas[0].url}/jobs/{created[0]}", timeout=30).json()["state"] == "FAILED"
    )
    again = requests.post(
        f"{replicas[1].url}/jobs", json={"definition": "capped", "arguments": {"n": 99}}, timeout=60
    )
    assert again.status_code == 201, "the other replica sees the place given back"
