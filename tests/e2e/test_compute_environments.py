"""Compute environments through boto3, with pods on the real node or on no node at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.cluster.node import NODE_NAME
from tests.e2e.test_aws_batch import batch_client, describe, wait_for_status
from tests.helpers import FunctionServer, start_function, wait_for

DEFINITIONS = f"""
compute_environments:
  - name: this-node
    node_selector: {{kubernetes.io/hostname: {NODE_NAME}}}
    description: the local cluster's real node
  - name: nowhere
    node_selector: {{jobfn.dev/pool: nowhere}}
queues:
  - name: here
    compute_environments: [this-node]
  - name: elsewhere
    compute_environments: [nowhere]
definitions:
  - name: where
    template: |
      apiVersion: batch/v1
      kind: Job
      metadata: {{name: where}}
      spec:
        backoffLimit: 0
        template:
          spec:
            restartPolicy: Never
            containers:
              - name: main
                image: busybox
                imagePullPolicy: IfNotPresent
                command: ["sh", "-c", "echo $AWS_BATCH_CE_NAME"]
"""


@pytest.fixture(scope="module")
def batch(kubeconfig: Path, module_namespace: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    directory = tmp_path_factory.mktemp("environments")
    (directory / "definitions.yaml").write_text(DEFINITIONS)
    server: FunctionServer = start_function(
        module_namespace, directory / "definitions.yaml", directory / "log"
    )
    yield batch_client(server.url)
    server.stop()


def test_environments_and_each_queues_order_are_described(batch: Any) -> None:
    environments = batch.describe_compute_environments()["computeEnvironments"]
    assert [e["computeEnvironmentName"] for e in environments] == ["nowhere", "this-node"]
    [here] = batch.describe_job_queues(jobQueues=["here"])["jobQueues"]
    assert here["computeEnvironmentOrder"] == [
        {"order": 1, "computeEnvironment": environments[1]["computeEnvironmentArn"]}
    ]


def test_a_job_runs_where_its_queue_may_and_waits_where_no_node_is(
    batch: Any, api_client: client.ApiClient, module_namespace: str
) -> None:
    here = batch.submit_job(jobName="here", jobQueue="here", jobDefinition="where")["jobId"]
    elsewhere = batch.submit_job(jobName="elsewhere", jobQueue="elsewhere", jobDefinition="where")["jobId"]

    done = wait_for_status(batch, here, "SUCCEEDED", timeout=90)
    waiting = wait_for(
        lambda: (job := describe(batch, elsewhere))["status"] == "RUNNABLE" and job, timeout=30
    )

    assert done["container"]["exitCode"] == 0
    assert waiting["statusReason"].startswith("Waiting for a node: ")
    assert "didn't match Pod's node affinity/selector" in waiting["statusReason"]
    core = client.CoreV1Api(api_client)
    [pod] = core.list_namespaced_pod(
        module_namespace, label_selector=f"batch.kubernetes.io/job-name={here}"
    ).items
    assert pod.spec.node_name == NODE_NAME
    assert core.read_namespaced_pod_log(pod.metadata.name, module_namespace) == "this-node\n"
    batch.terminate_job(jobId=elsewhere, reason="no such nodes")
