"""The AWS Batch API of a running function, driven by boto3's ``batch`` client against the local cluster."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import pytest
from kubernetes import client

from jobfn._contract import QUEUE_LABEL, TERMINATION_REASON_ANNOTATION
from jobfn._queues import KUEUE_QUEUE_LABEL
from tests.helpers import FunctionServer, start_function, wait_for

AWS_DEFINITIONS = Path(__file__).resolve().parents[1] / "data" / "definitions" / "aws.yaml"
BULK_JOBS = 150


def start_aws_function(
    namespace: str, tmp_path_factory: pytest.TempPathFactory, env: dict[str, str] | None = None
) -> FunctionServer:
    """The function serving tests/data/definitions/aws.yaml in ``namespace``."""
    directory = tmp_path_factory.mktemp("aws")
    definitions = directory / "definitions.yaml"
    shutil.copy(AWS_DEFINITIONS, definitions)
    return start_function(namespace, definitions, directory / "function.log", env)


def serve_aws_function(
    namespace: str, tmp_path_factory: pytest.TempPathFactory, env: dict[str, str] | None = None
) -> Iterator[FunctionServer]:
    """For a module fixture: the function while the module's tests run."""
    server = start_aws_function(namespace, tmp_path_factory, env)
    yield server
    server.stop()


def batch_client(url: str, key: str = "AKIDANYTHING", secret: str = "anything", attempts: int = 3) -> Any:
    return boto3.client(
        "batch",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"mode": "standard", "total_max_attempts": attempts}),
    )


def describe(batch: Any, job_id: str) -> dict[str, Any]:
    jobs = batch.describe_jobs(jobs=[job_id])["jobs"]
    assert len(jobs) == 1, jobs
    return dict(jobs[0])


def wait_for_status(batch: Any, job_id: str, status: str, timeout: float = 120) -> dict[str, Any]:
    return wait_for(lambda: (job := describe(batch, job_id))["status"] == status and job, timeout=timeout)


def submit_many(batch: Any, count: int, **fields: Any) -> list[str]:
    """Submit ``count`` jobs named ``<jobName>-000``... at once; their ids in submission order."""
    name = fields.pop("jobName")
    with ThreadPoolExecutor(8) as pool:
        answers = pool.map(lambda i: batch.submit_job(jobName=f"{name}-{i:03d}", **fields), range(count))
        return [answer["jobId"] for answer in answers]


def stop_marks(batch_api: client.BatchV1Api, namespace: str, job_id: str) -> dict[str, Any]:
    """What stopping a job writes on it: a new spec generation, a deadline, a termination reason.

    Cancel and terminate answer only after their write, so comparing these right after
    the call proves a job was left alone; no wait can prove more.
    """
    job = batch_api.read_namespaced_job(job_id, namespace)
    return {
        "generation": job.metadata.generation,
        "activeDeadlineSeconds": job.spec.active_deadline_seconds,
        "suspend": job.spec.suspend,
        "reason": (job.metadata.annotations or {}).get(TERMINATION_REASON_ANNOTATION),
        "deleting": job.metadata.deletion_timestamp is not None,
    }


@pytest.fixture(scope="module")
def aws_server(
    kubeconfig: Path, module_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FunctionServer]:
    yield from serve_aws_function(module_namespace, tmp_path_factory)


@pytest.fixture(scope="module")
def batch(aws_server: FunctionServer) -> Any:
    return batch_client(aws_server.url)


@pytest.fixture(scope="module")
def bulk_jobs(batch: Any) -> list[str]:
    """150 jobs in their own queue, suspended so they stay RUNNABLE."""
    return submit_many(batch, BULK_JOBS, jobName="bulk", jobQueue="bulk", jobDefinition="parked")


def test_submitted_overrides_show_up_in_the_created_job_and_in_describe_jobs(
    batch: Any, batch_api: client.BatchV1Api, module_namespace: str
) -> None:
    before_ms = int(time.time()) * 1000
    answer = batch.submit_job(
        jobName="nightly_report",
        jobQueue="main",
        jobDefinition="hello:4",
        parameters={"message": "from boto3", "count": "3", "loud": "true"},
        containerOverrides={
            "command": ["printenv", "GREETING"],
            "environment": [{"name": "GREETING", "value": "hello from boto3"}],
            "resourceRequirements": [{"type": "VCPU", "value": "0.5"}, {"type": "MEMORY", "value": "256"}],
        },
        timeout={"attemptDurationSeconds": 900},
        retryStrategy={"attempts": 2},
        tags={"team": "reports"},
    )
    job_id = answer["jobId"]
    assert answer["jobName"] == "nightly_report"
    assert answer["jobArn"] == f"arn:aws:batch:us-east-1:000000000000:job/{job_id}"

    job = batch_api.read_namespaced_job(job_id, module_namespace)
    container = job.spec.template.spec.containers[0]
    assert container.command == ["printenv", "GREETING"]
    env = {var.name: var.value for var in container.env}
    assert env == {
        "AWS_BATCH_JOB_ATTEMPT": None,  # read from the file the attempt's gate writes
        "AWS_BATCH_JOB_ID": job_id,
        "AWS_BATCH_JQ_NAME": "main",
        "COUNT": "3",
        "LOUD": "True",
        "GREETING": "hello from boto3",
    }
    assert container.resources.requests == {"cpu": "500m", "memory": "256Mi"}
    assert container.resources.limits == {"memory": "256Mi"}
    [attempt] = [var for var in container.env if var.name == "AWS_BATCH_JOB_ATTEMPT"]
    assert attempt.value_from.file_key_ref.key == "AWS_BATCH_JOB_ATTEMPT"
    # Retried, so counted: its only index retries once (attempts 2)
    assert (job.spec.active_deadline_seconds, job.spec.backoff_limit_per_index) == (900, 1)
    assert job.metadata.labels[QUEUE_LABEL] == "main"

    detail = wait_for_status(batch, job_id, "SUCCEEDED")
    assert detail["jobName"] == "nightly_report"
    assert detail["jobQueue"].endswith(":job-queue/main")
    assert detail["jobDefinition"].endswith(":job-definition/hello:1")
    assert detail["parameters"] == {"message": "from boto3", "count": "3", "loud": "true", "ratio": "0.5"}
    assert detail["tags"] == {"team": "reports"}
    assert detail["container"]["command"] == ["printenv", "GREETING"]
    assert {"name": "GREETING", "value": "hello from boto3"} in detail["container"]["environment"]
    assert detail["container"]["exitCode"] == 0
    assert detail["timeout"] == {"attemptDurationSeconds": 900}
    assert detail["retryStrategy"] == {"attempts": 2}
    assert (
        before_ms <= detail["createdAt"] <= detail["startedAt"] <= detail["stoppedAt"] <= time.time() * 1000
    )
    assert len(detail["attempts"]) == 1


def test_an_array_job_of_ten_children_is_described_and_listed_child_by_child(batch: Any) -> None:
    job_id = batch.submit_job(
        jobName="array_of_ten", jobQueue="main", jobDefinition="hello", arrayProperties={"size": 10}
    )["jobId"]
    parent = wait_for_status(batch, job_id, "SUCCEEDED")
    assert parent["arrayProperties"]["size"] == 10
    assert parent["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 10
    assert sum(parent["arrayProperties"]["statusSummary"].values()) == 10

    children = batch.describe_jobs(jobs=[f"{job_id}:{i}" for i in range(10)])["jobs"]
    assert [child["jobId"] for child in children] == [f"{job_id}:{i}" for i in range(10)]
    assert [child["arrayProperties"]["index"] for child in children] == list(range(10))
    assert {child["status"] for child in children} == {"SUCCEEDED"}
    assert {child["container"]["exitCode"] for child in children} == {0}
    assert {child["jobName"] for child in children} == {"array_of_ten"}

    listed = batch.list_jobs(arrayJobId=job_id, jobStatus="SUCCEEDED")["jobSummaryList"]
    assert [summary["jobId"] for summary in listed] == [f"{job_id}:{i}" for i in range(10)]
    paged = batch.get_paginator("list_jobs").paginate(
        arrayJobId=job_id, jobStatus="SUCCEEDED", PaginationConfig={"PageSize": 4}
    )
    assert [len(page["jobSummaryList"]) for page in paged] == [4, 4, 2]
    assert batch.list_jobs(arrayJobId=job_id)["jobSummaryList"] == []  # RUNNING by default
    assert batch.describe_jobs(jobs=[f"{job_id}:10"])["jobs"] == []


def test_a_failed_job_reports_its_exit_code(batch: Any) -> None:
    job_id = batch.submit_job(
        jobName="failing", jobQueue="main", jobDefinition="fail", parameters={"exit_code": "9"}
    )["jobId"]
    detail = wait_for_status(batch, job_id, "FAILED")
    assert detail["container"]["exitCode"] == 9
    assert "exit code(s) 9" in detail["statusReason"]


def test_terminate_job_stops_a_running_job_and_describe_jobs_gives_its_reason(batch: Any) -> None:
    job_id = batch.submit_job(jobName="long_one", jobQueue="main", jobDefinition="forever")["jobId"]
    wait_for_status(batch, job_id, "RUNNING")
    # ListJobs reads no pods: it sees RUNNING once the Job controller counts a ready pod.
    wait_for(lambda: job_id in [job["jobId"] for job in batch.list_jobs(jobQueue="main")["jobSummaryList"]])

    batch.terminate_job(jobId=job_id, reason="operator: maintenance window")

    detail = wait_for_status(batch, job_id, "FAILED")
    assert detail["statusReason"] == "operator: maintenance window"
    failed = batch.list_jobs(jobQueue="main", jobStatus="FAILED")["jobSummaryList"]
    assert {"jobId": job_id, "statusReason": "operator: maintenance window"}.items() <= next(
        job for job in failed if job["jobId"] == job_id
    ).items()


def test_cancel_job_leaves_a_running_job_running(
    batch: Any, batch_api: client.BatchV1Api, aws_server: FunctionServer
) -> None:
    job_id = batch.submit_job(jobName="keeps_running", jobQueue="main", jobDefinition="forever")["jobId"]
    wait_for_status(batch, job_id, "RUNNING")
    before = stop_marks(batch_api, aws_server.namespace, job_id)

    batch.cancel_job(jobId=job_id, reason="too late to cancel")

    assert stop_marks(batch_api, aws_server.namespace, job_id) == before  # the Job was never patched
    assert before["reason"] is None and not before["deleting"]
    detail = describe(batch, job_id)
    assert detail["status"] == "RUNNING"
    assert detail["statusReason"] != "too late to cancel"


def test_cancel_job_stops_a_job_that_has_not_started(batch: Any) -> None:
    job_id = batch.submit_job(jobName="never_admitted", jobQueue="main", jobDefinition="parked")["jobId"]
    assert describe(batch, job_id)["status"] == "RUNNABLE"

    batch.cancel_job(jobId=job_id, reason="no longer needed")

    assert wait_for_status(batch, job_id, "FAILED")["statusReason"] == "no longer needed"


def test_list_jobs_pages_through_150_jobs_newest_first(batch: Any, bulk_jobs: list[str]) -> None:
    pages = list(
        batch.get_paginator("list_jobs").paginate(
            jobQueue="bulk", jobStatus="RUNNABLE", PaginationConfig={"PageSize": 40}
        )
    )
    assert [len(page["jobSummaryList"]) for page in pages] == [40, 40, 40, 30]
    listed = [job for page in pages for job in page["jobSummaryList"]]
    assert sorted(job["jobId"] for job in listed) == sorted(bulk_jobs)
    order = [(job["createdAt"], job["jobId"]) for job in listed]
    assert order == sorted(order, reverse=True)
    assert {job["status"] for job in listed} == {"RUNNABLE"}
    assert batch.list_jobs(jobQueue="bulk")["jobSummaryList"] == []  # RUNNING unless asked


def test_list_jobs_filters_by_job_name_whatever_the_status(batch: Any, bulk_jobs: list[str]) -> None:
    listed = batch.list_jobs(jobQueue="bulk", filters=[{"name": "JOB_NAME", "values": ["BULK-01*"]}])
    assert sorted(job["jobName"] for job in listed["jobSummaryList"]) == [
        f"bulk-{i:03d}" for i in range(10, 20)
    ]


def test_a_kueue_queue_hands_its_jobs_to_kueue(
    batch: Any, batch_api: client.BatchV1Api, module_namespace: str
) -> None:
    job_id = batch.submit_job(jobName="queued", jobQueue="kueued", jobDefinition="parked")["jobId"]
    job = batch_api.read_namespaced_job(job_id, module_namespace)
    assert job.metadata.labels[KUEUE_QUEUE_LABEL] == "team-a"
    assert job.spec.template.spec.priority_class_name == "jobfn-test-high"
    assert describe(batch, job_id)["jobQueue"].endswith(":job-queue/kueued")


def test_describe_job_definitions_by_name_revision_and_arn(batch: Any) -> None:
    everything = batch.describe_job_definitions()["jobDefinitions"]
    assert [d["jobDefinitionName"] for d in everything] == ["capped", "fail", "forever", "hello", "parked"]
    pages = batch.get_paginator("describe_job_definitions").paginate(PaginationConfig={"PageSize": 2})
    assert [len(page["jobDefinitions"]) for page in pages] == [2, 2, 1]
    arn = "arn:aws:batch:us-east-1:000000000000:job-definition/fail:1"
    chosen = batch.describe_job_definitions(jobDefinitions=["hello:3", arn, "missing"])["jobDefinitions"]
    assert [d["jobDefinitionName"] for d in chosen] == ["fail", "hello"]
    hello = chosen[1]
    assert (hello["revision"], hello["status"], hello["type"]) == (1, "ACTIVE", "container")
    assert hello["parameters"] == {"message": "hi", "count": "1", "loud": "false", "ratio": "0.5"}
    assert hello["containerProperties"]["command"] == ["echo", "Ref::message"]
    assert (
        batch.describe_job_definitions(jobDefinitionName="fail")["jobDefinitions"][0]["jobDefinitionArn"]
        == arn
    )
    assert batch.describe_job_definitions(status="INACTIVE")["jobDefinitions"] == []


def test_describe_job_queues_lists_the_configured_queues(batch: Any) -> None:
    queues = batch.describe_job_queues()["jobQueues"]
    assert [q["jobQueueName"] for q in queues] == ["bulk", "kueued", "main"]
    assert {(q["state"], q["status"]) for q in queues} == {("ENABLED", "VALID")}
    main = batch.describe_job_queues(jobQueues=["arn:aws:batch:us-east-1:000000000000:job-queue/main"])
    assert [(q["jobQueueName"], q["priority"]) for q in main["jobQueues"]] == [("main", 10)]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"jobDefinition": "no-such-definition"}, "no job definition named 'no-such-definition'"),
        ({"parameters": {"count": "three"}}, "count: 'three' is not of type 'integer'"),
        ({"parameters": {"count": "9"}}, "count: 9 is greater than the maximum of 5"),
        ({"parameters": {"colour": "red"}}, "colour: not a parameter of 'hello'"),
        ({"jobQueue": "nowhere"}, "no job queue named 'nowhere'"),
        ({"dependsOn": [{"jobId": "no-such-job"}]}, "dependsOn: no job 'no-such-job' to depend on"),
        ({"arrayProperties": {"size": 50}}, "array size must be between 1 and 20"),
    ],
)
def test_caller_mistakes_raise_client_exception(batch: Any, fields: dict[str, Any], message: str) -> None:
    request = {"jobName": "mistake", "jobQueue": "main", "jobDefinition": "hello", **fields}
    with pytest.raises(batch.exceptions.ClientException, match=message) as raised:
        batch.submit_job(**request)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_definition_without_allowed_overrides_refuses_them(batch: Any) -> None:
    with pytest.raises(batch.exceptions.ClientException, match="does not allow overriding command"):
        batch.submit_job(
            jobName="x", jobQueue="main", jobDefinition="fail", containerOverrides={"command": ["true"]}
        )


def test_a_full_definition_answers_too_many_requests(aws_server: FunctionServer) -> None:
    once = batch_client(aws_server.url, attempts=1)
    once.submit_job(jobName="first", jobQueue="main", jobDefinition="capped")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        once.submit_job(jobName="second", jobQueue="main", jobDefinition="capped")
    assert raised.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429


def test_unknown_job_ids_are_left_out_and_unknown_jobs_cannot_be_terminated(batch: Any) -> None:
    assert batch.describe_jobs(jobs=["no-such-job", "no-such-job:3", "Not A Name"])["jobs"] == []
    with pytest.raises(batch.exceptions.ClientException, match="not found"):
        batch.terminate_job(jobId="no-such-job", reason="x")
