"""dependsOn through boto3 and REST: jobs wait in PENDING and are settled by the reaper's pass.

The function serves tests/data/definitions/aws.yaml (simulated pods on KWOK); the pass
is the reaper CLI, as its CronJob runs it, so waiting jobs move on with no function
process involved at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
import requests
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent, from_http
from kubernetes import client

from tests.e2e.test_aws_batch import batch_client, describe, serve_aws_function, wait_for_status
from tests.helpers import FUNCTION_SIGNATURE, FunctionServer, wait_for
from tests.integration.reaper_helpers import reaper_env, run_cli


@pytest.fixture(scope="module")
def server(
    kubeconfig: Path, module_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FunctionServer]:
    yield from serve_aws_function(module_namespace, tmp_path_factory)


@pytest.fixture(scope="module")
def batch(server: FunctionServer) -> Any:
    return batch_client(server.url)


def settling_pass(namespace: str) -> dict[str, Any]:
    """One run of the reaper, as its CronJob runs it (keeping every finished job)."""
    env = reaper_env(namespace, JOB_SIGNATURE=FUNCTION_SIGNATURE)
    run = run_cli(env, "--succeeded-retention", "86400", "--failed-retention", "86400")
    assert run.returncode == 0, run.stderr
    return run.summary


def submit(batch: Any, name: str, definition: str, *dependencies: str, **fields: Any) -> str:
    depends_on = [{"jobId": job_id} for job_id in dependencies]
    job_id: str = batch.submit_job(
        jobName=name, jobQueue="main", jobDefinition=definition, dependsOn=depends_on, **fields
    )["jobId"]
    return job_id


def test_a_job_waits_pending_until_its_dependencies_succeed_then_the_pass_starts_it(
    batch: Any, module_namespace: str
) -> None:
    first = submit(batch, "first", "hello", containerOverrides={"environment": [{"name": "X", "value": "1"}]})
    forever = submit(batch, "slow", "forever")
    waiting = submit(batch, "after-both", "hello", first, forever)

    job = describe(batch, waiting)
    assert job["status"] == "PENDING"
    assert job["statusReason"] == f"Waiting for dependencies: {first}, {forever}"
    assert [d["jobId"] for d in job["dependsOn"]] == [first, forever]
    wait_for_status(batch, first, "SUCCEEDED")
    assert settling_pass(module_namespace)["released"] == 0  # `slow` still runs
    assert describe(batch, waiting)["status"] == "PENDING"

    batch.terminate_job(jobId=forever, reason="done waiting")
    wait_for_status(batch, forever, "FAILED")
    summary = settling_pass(module_namespace)

    assert (summary["released"], summary["dependency_failed"]) == (0, 1)
    failed = wait_for_status(batch, waiting, "FAILED")
    assert failed["statusReason"] == f"dependency {forever} FAILED"


def test_a_job_whose_dependencies_all_succeeded_runs(batch: Any, module_namespace: str) -> None:
    one, two = submit(batch, "one", "hello"), submit(batch, "two", "hello")
    waiting = submit(batch, "after", "hello", one, two)
    wait_for_status(batch, one, "SUCCEEDED")
    wait_for_status(batch, two, "SUCCEEDED")

    assert settling_pass(module_namespace)["released"] == 1
    wait_for_status(batch, waiting, "SUCCEEDED")
    assert settling_pass(module_namespace)["released"] == 0  # settled once


def test_dependencies_already_done_at_submission_start_the_job_at_once(batch: Any) -> None:
    done = submit(batch, "done", "hello")
    wait_for_status(batch, done, "SUCCEEDED")

    waiting = submit(batch, "after-done", "hello", done)

    wait_for_status(batch, waiting, "SUCCEEDED")  # no pass ran: the submission settled it


def test_rest_depends_on_and_its_mistakes(server: FunctionServer, batch: Any) -> None:
    failing = submit(batch, "failing", "fail")
    answer = requests.post(
        f"{server.url}/jobs", json={"definition": "hello", "depends_on": [failing]}, timeout=10
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["depends_on"] == [failing]
    assert answer.json()["state"] == "PENDING"

    missing = requests.post(
        f"{server.url}/jobs", json={"definition": "hello", "depends_on": ["no-such-job"]}, timeout=10
    )
    assert missing.status_code == 400
    assert "dependsOn: no job 'no-such-job' to depend on" in missing.json()["error"]["message"]

    too_many = [{"jobId": failing}] * 21
    with pytest.raises(botocore.exceptions.ClientError, match="at most 20 jobs"):
        batch.submit_job(jobName="n", jobQueue="main", jobDefinition="hello", dependsOn=too_many)
    with pytest.raises(botocore.exceptions.ClientError, match="N_TO_N"):
        batch.submit_job(jobName="n", jobQueue="main", jobDefinition="hello",
                         dependsOn=[{"jobId": failing, "type": "N_TO_N"}])  # fmt: skip


def test_sequential_array_children_run_one_at_a_time(batch: Any, server: FunctionServer) -> None:
    array = batch.submit_job(
        jobName="in-order", jobQueue="main", jobDefinition="hello",
        arrayProperties={"size": 3}, dependsOn=[{"type": "SEQUENTIAL"}],
    )["jobId"]  # fmt: skip

    def running_children() -> int:
        return sum(
            1 for i in range(3) if describe(batch, f"{array}:{i}")["status"] in ("STARTING", "RUNNING")
        )

    seen = []
    wait_for(
        lambda: seen.append(running_children()) or describe(batch, array)["status"] == "SUCCEEDED", timeout=60
    )
    assert max(seen) <= 1
    job = requests.get(f"{server.url}/jobs/{array}", timeout=10).json()
    assert job["counts"]["succeeded"] == 3


def job_changed(server: FunctionServer, job: dict[str, Any]) -> dict[str, Any]:
    """What Knative's ApiServerSource (mode Resource) posts when a job changes, sent with the SDK."""
    event = CloudEvent(
        {"type": "dev.knative.apiserver.resource.update", "source": "https://kubernetes.default.svc",
         "datacontenttype": "application/json",
         "subject": f"/apis/batch/v1/namespaces/{job['metadata']['namespace']}/jobs/{job['metadata']['name']}"},
        job,
    )  # fmt: skip
    headers, body = to_binary(event)
    answer = requests.post(server.url, headers=headers, data=body, timeout=10)
    assert answer.status_code == 200, answer.text
    settled: dict[str, Any] = json.loads(answer.headers["X-Jobfn-Settled"])
    if "ce-type" in answer.headers:  # answered with the job's state-change event
        return {**settled, "reply": from_http(dict(answer.headers), answer.content)}
    assert answer.content == b""  # a broker retries any other body that is not a CloudEvent
    return settled


def test_a_job_changed_event_settles_its_dependents_at_once_and_a_forged_one_cannot(
    batch: Any, server: FunctionServer, api_client: client.ApiClient, module_namespace: str
) -> None:
    batch_api = client.BatchV1Api(api_client)
    first = submit(batch, "evented", "hello")
    forever = submit(batch, "never-done", "forever")
    after_first = submit(batch, "after-evented", "hello", first)
    after_forever = submit(batch, "after-never", "hello", forever)
    wait_for_status(batch, first, "SUCCEEDED")
    # ApiServerSource sends the update that marks the Job Complete: wait for that one.
    wait_for(
        lambda: batch_api.read_namespaced_job(first, module_namespace).status.completion_time, timeout=30
    )

    finished = api_client.sanitize_for_serialization(batch_api.read_namespaced_job(first, module_namespace))
    forged = api_client.sanitize_for_serialization(batch_api.read_namespaced_job(forever, module_namespace))
    forged["status"]["conditions"] = finished["status"]["conditions"]  # claims it finished

    on_forged = job_changed(server, forged)
    assert {k: on_forged[k] for k in ("released", "waiting")} == {"released": 0, "waiting": 1}
    assert on_forged["reply"]["type"] == "dev.jobfn.job.state-changed"
    assert on_forged["reply"].data["status"] == "RUNNING"  # read afresh, not what the event claimed
    on_finished = job_changed(server, finished)
    assert on_finished["released"] == 1
    assert on_finished["reply"]["id"] == f"{finished['metadata']['uid']}:SUCCEEDED"
    assert on_finished["reply"].data["jobId"] == first
    wait_for_status(batch, after_first, "SUCCEEDED")  # no pass ran
    assert describe(batch, after_forever)["status"] == "PENDING"
