"""AWS Batch's attempts through boto3, on the real node: AWS_BATCH_JOB_ATTEMPT, evaluateOnExit rules
the level-triggered pass decides, dependsOn N_TO_N and SEQUENTIAL.

The pass is the reaper CLI, as its CronJob runs it: no function process takes part in a
decision, so each holds while the function is at zero.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
import requests
from kubernetes import client

from tests.e2e.test_aws_batch import batch_client, describe, start_aws_function
from tests.e2e.test_dependencies import job_changed, settling_pass
from tests.helpers import FunctionServer, wait_for

REGISTRATION = {"JOBFN_REGISTRATION": "on", "JOBFN_REGISTRATION_IMAGES": "busybox*"}
TERMINAL = ("SUCCEEDED", "FAILED")


@pytest.fixture(scope="module")
def server(
    kubeconfig: Path, module_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FunctionServer]:
    server = start_aws_function(module_namespace, tmp_path_factory, REGISTRATION)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def batch(server: FunctionServer) -> Any:
    return batch_client(server.url)


def register(batch: Any, name: str, script: str, attempts: int = 1, **fields: Any) -> None:
    container = {"image": "busybox", "command": ["sh", "-c", script], **fields.pop("container", {})}
    retry = {"attempts": attempts, **({"evaluateOnExit": fields.pop("rules")} if "rules" in fields else {})}
    batch.register_job_definition(
        jobDefinitionName=name, type="container", containerProperties=container, retryStrategy=retry, **fields
    )


def submit(batch: Any, definition: str, **fields: Any) -> str:
    job_id: str = batch.submit_job(jobName=definition, jobQueue="main", jobDefinition=definition, **fields)[
        "jobId"
    ]
    return job_id


def logs(api_client: client.ApiClient, namespace: str, job_id: str) -> list[str]:
    """Each pod's log, oldest pod first."""
    core = client.CoreV1Api(api_client)
    pods = core.list_namespaced_pod(namespace, label_selector=f"batch.kubernetes.io/job-name={job_id}").items
    pods.sort(key=lambda pod: pod.metadata.creation_timestamp)
    return [core.read_namespaced_pod_log(pod.metadata.name, namespace, container="main") for pod in pods]


def finish_with_passes(
    batch: Any, namespace: str, *job_ids: str, timeout: float = 150
) -> dict[str, dict[str, Any]]:
    """Run the pass (the reaper CLI) until every job is SUCCEEDED or FAILED; each job's detail."""
    deadline = time.monotonic() + timeout
    while True:
        details = {job_id: describe(batch, job_id) for job_id in job_ids}
        if all(detail["status"] in TERMINAL for detail in details.values()):
            return details
        assert time.monotonic() < deadline, {k: (v["status"], v["statusReason"]) for k, v in details.items()}
        settling_pass(namespace)
        time.sleep(1)


def test_each_attempt_reads_its_number_from_aws_batch_job_attempt(
    batch: Any, api_client: client.ApiClient, module_namespace: str
) -> None:
    register(
        batch, "third-time", 'echo "attempt $AWS_BATCH_JOB_ATTEMPT"; [ "$AWS_BATCH_JOB_ATTEMPT" = 3 ]', 3
    )
    job_id = submit(batch, "third-time")

    job = wait_for(lambda: (d := describe(batch, job_id))["status"] in TERMINAL and d, timeout=150)

    assert job["status"] == "SUCCEEDED", job["statusReason"]
    assert logs(api_client, module_namespace, job_id) == ["attempt 1\n", "attempt 2\n", "attempt 3\n"]
    assert [a["container"]["exitCode"] for a in job["attempts"]] == [1, 1, 0]
    assert job["retryStrategy"] == {"attempts": 3}


OOM = "head -c 200m /dev/zero | tail"  # tail keeps the last line whole: /dev/zero has none
RULES = [{"onExitCode": "2", "action": "EXIT"}, {"onReason": "OutOfMemory*", "action": "EXIT"}]


def test_the_pass_stops_retrying_an_oom_killed_attempt_matched_by_on_reason_and_retries_the_rest(
    batch: Any, module_namespace: str
) -> None:
    memory = {"resourceRequirements": [{"type": "MEMORY", "value": "32"}]}
    register(batch, "out-of-memory", OOM, 3, rules=RULES, container=memory)
    register(batch, "plain-failure", "exit 1", 3, rules=RULES)
    oom, plain = submit(batch, "out-of-memory"), submit(batch, "plain-failure")

    jobs = finish_with_passes(batch, module_namespace, oom, plain)

    # OOM: the first attempt's reason, as AWS spells it, matched the second rule: no retry ran.
    assert jobs[oom]["status"] == "FAILED"
    [attempt] = jobs[oom]["attempts"]
    assert attempt["container"]["reason"] == "OutOfMemoryError: Container killed due to memory usage"
    assert attempt["statusReason"] == "Essential container in task exited"
    assert "evaluateOnExit: EXIT on onReason 'OutOfMemory*' matched attempt 1" in jobs[oom]["statusReason"]
    # No rule matches exit code 1: retried until its attempts ran out (AWS's rule).
    assert jobs[plain]["status"] == "FAILED"
    assert [a["container"]["exitCode"] for a in jobs[plain]["attempts"]] == [1, 1, 1]


def test_n_to_n_children_wait_for_the_same_child_and_fail_with_it(batch: Any, module_namespace: str) -> None:
    register(batch, "first-stage", '[ "$AWS_BATCH_JOB_ARRAY_INDEX" = 0 ] || { sleep 3; exit 1; }')
    register(batch, "second-stage", "true")
    first = submit(batch, "first-stage", arrayProperties={"size": 2})
    second = submit(
        batch, "second-stage", arrayProperties={"size": 2}, dependsOn=[{"jobId": first, "type": "N_TO_N"}]
    )
    waiting = wait_for(lambda: (child := describe(batch, f"{second}:1"))["status"] == "PENDING" and child)
    assert waiting["statusReason"] == f"Waiting for dependencies (N_TO_N, child 1): {first}"
    assert describe(batch, second)["dependsOn"] == [{"jobId": first, "type": "N_TO_N"}]

    children = finish_with_passes(
        batch, module_namespace, *(f"{job}:{i}" for job in (first, second) for i in (0, 1))
    )

    assert children[f"{second}:0"]["status"] == "SUCCEEDED"
    assert children[f"{second}:0"]["startedAt"] >= children[f"{first}:0"]["stoppedAt"] - 1000
    assert children[f"{second}:1"]["status"] == "FAILED"
    assert children[f"{second}:1"]["statusReason"] == f"dependency {first}:1 FAILED"
    assert children[f"{second}:1"]["attempts"] == []  # it never ran


def test_sequential_children_run_in_order_and_stop_at_the_first_that_fails(batch: Any) -> None:
    register(batch, "in-order", '[ "$AWS_BATCH_JOB_ARRAY_INDEX" != 1 ]')
    job_id = submit(batch, "in-order", arrayProperties={"size": 3}, dependsOn=[{"type": "SEQUENTIAL"}])

    wait_for(lambda: describe(batch, job_id)["status"] == "FAILED", timeout=90)

    states = [describe(batch, f"{job_id}:{i}")["status"] for i in range(3)]
    assert states == ["SUCCEEDED", "FAILED", "FAILED"]
    assert describe(batch, f"{job_id}:2")["attempts"] == []  # child 2 never started: child 1 failed


def test_rest_depends_on_n_to_n(server: FunctionServer, batch: Any, module_namespace: str) -> None:
    register(batch, "stage", "true")
    first = submit(batch, "stage", arrayProperties={"size": 2})
    answer = requests.post(
        f"{server.url}/jobs",
        json={
            "definition": "hello",
            "overrides": {"array_size": 2},
            "depends_on": [{"job": first, "type": "N_TO_N"}],
        },
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["depends_on"] == [{"job": first, "type": "N_TO_N"}]

    finish_with_passes(batch, module_namespace, answer.json()["name"])

    assert describe(batch, answer.json()["name"])["status"] == "SUCCEEDED"
    refused = requests.post(
        f"{server.url}/jobs",
        json={"definition": "hello", "depends_on": [{"job": first, "type": "N_TO_N"}]},
        timeout=10,
    )
    assert refused.status_code == 400 and "submit an array job" in refused.text
    mismatch = requests.post(
        f"{server.url}/jobs",
        json={
            "definition": "hello",
            "overrides": {"array_size": 3},
            "depends_on": [{"job": first, "type": "N_TO_N"}],
        },
        timeout=10,
    )
    assert mismatch.status_code == 400 and "array jobs of this job's size (3)" in mismatch.text


def test_a_job_changed_event_decides_a_waiting_child_at_once(
    server: FunctionServer, batch: Any, api_client: client.ApiClient, module_namespace: str
) -> None:
    register(batch, "quick", "true")
    first = submit(batch, "quick", arrayProperties={"size": 2})
    second = submit(
        batch, "quick", arrayProperties={"size": 2}, dependsOn=[{"jobId": first, "type": "N_TO_N"}]
    )
    batch_api = client.BatchV1Api(api_client)
    wait_for(
        lambda: batch_api.read_namespaced_job(first, module_namespace).status.completion_time, timeout=90
    )
    finished = api_client.sanitize_for_serialization(batch_api.read_namespaced_job(first, module_namespace))

    settled = job_changed(server, finished)  # what ApiServerSource sends; no pass runs

    assert settled["pods_run"] == 2
    wait_for(lambda: describe(batch, second)["status"] == "SUCCEEDED", timeout=90)


@pytest.mark.parametrize(
    "last_rule",
    [
        {"onExitCode": "*", "action": "EXIT"},  # compiled: the Job controller matches DisruptionTarget
        {"onReason": "*", "action": "EXIT"},  # decided by the pass: the evicted pod is gone by then
    ],
)
def test_a_retry_rule_on_a_lost_host_retries_an_evicted_attempt(
    batch: Any, api_client: client.ApiClient, module_namespace: str, last_rule: dict[str, str]
) -> None:
    rules = [{"onStatusReason": "Host EC2*", "action": "RETRY"}, last_rule]
    script = 'echo "attempt $AWS_BATCH_JOB_ATTEMPT"; [ "$AWS_BATCH_JOB_ATTEMPT" = 2 ] || exec sleep 120'
    register(batch, "evicted", script, 2, rules=rules)
    job_id = submit(batch, "evicted")
    core = client.CoreV1Api(api_client)
    selector = f"batch.kubernetes.io/job-name={job_id}"
    [pod] = wait_for(lambda: [p for p in core.list_namespaced_pod(module_namespace, label_selector=selector).items
                              if p.status.phase == "Running"], timeout=60)  # fmt: skip

    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "deleteOptions": {"gracePeriodSeconds": 1},
                "metadata": {"name": pod.metadata.name, "namespace": module_namespace}}  # fmt: skip
    core.create_namespaced_pod_eviction(pod.metadata.name, module_namespace, eviction)

    job = finish_with_passes(batch, module_namespace, job_id)[job_id]
    assert job["status"] == "SUCCEEDED", job["statusReason"]
    # The evicted pod is deleted, so only the retry is left to describe.
    assert logs(api_client, module_namespace, job_id) == ["attempt 2\n"]


def test_n_to_n_refusals(batch: Any) -> None:
    register(batch, "sized", "true")
    three = submit(batch, "sized", arrayProperties={"size": 3})
    with pytest.raises(botocore.exceptions.ClientError, match="array jobs of this job's size"):
        submit(batch, "sized", arrayProperties={"size": 2}, dependsOn=[{"jobId": three, "type": "N_TO_N"}])
    with pytest.raises(botocore.exceptions.ClientError, match="no job 'nobody'"):
        submit(batch, "sized", arrayProperties={"size": 2}, dependsOn=[{"jobId": "nobody", "type": "N_TO_N"}])
    with pytest.raises(botocore.exceptions.ClientError, match="submit an array job"):
        submit(batch, "sized", dependsOn=[{"jobId": three, "type": "N_TO_N"}])
