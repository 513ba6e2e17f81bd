"""The AWS Batch API of a running function, driven by the AWS CLI (``aws batch ... --endpoint-url``).

Each CLI call starts a Python process (about a second), so the CLI makes the calls
under test and boto3 does the waiting in between.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.test_aws_batch import (
    batch_client,
    serve_aws_function,
    stop_marks,
    submit_many,
    wait_for_status,
)
from tests.helpers import FunctionServer


def aws_command() -> str:
    beside_python = Path(sys.executable).parent / "aws"
    return str(beside_python) if beside_python.exists() else "aws"


def cli_environment(key: str = "AKIDANYTHING", secret: str = "anything") -> dict[str, str]:
    return {
        **{name: value for name, value in os.environ.items() if not name.startswith("AWS_")},
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,  # nobody's own profile or settings
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_MAX_ATTEMPTS": "1",
    }


def run_aws(url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [aws_command(), "batch", *args, "--endpoint-url", url, "--output", "json"],
        env=env or cli_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def aws_json(url: str, *args: str) -> Any:
    result = run_aws(url, *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else {}


@pytest.fixture(scope="module")
def cli_server(
    kubeconfig: Path, module_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FunctionServer]:
    yield from serve_aws_function(module_namespace, tmp_path_factory)


@pytest.fixture(scope="module")
def batch(cli_server: FunctionServer) -> Any:
    return batch_client(cli_server.url)


def test_cli_submit_job_overrides_show_up_in_the_job_and_describe_jobs(
    cli_server: FunctionServer, batch: Any, batch_api: client.BatchV1Api, module_namespace: str
) -> None:
    overrides = {"command": ["echo", "from the cli"], "environment": [{"name": "ORIGIN", "value": "cli"}]}
    answer = aws_json(
        cli_server.url, "submit-job", "--job-name", "cli_job", "--job-queue", "main",
        "--job-definition", "hello:1", "--parameters", "message=hello cli,count=2",
        "--container-overrides", json.dumps(overrides), "--tags", "origin=cli",
    )  # fmt: skip
    job_id = answer["jobId"]
    assert answer["jobName"] == "cli_job"
    container = batch_api.read_namespaced_job(job_id, module_namespace).spec.template.spec.containers[0]
    assert container.command == ["echo", "from the cli"]
    assert {var.name: var.value for var in container.env}["ORIGIN"] == "cli"

    wait_for_status(batch, job_id, "SUCCEEDED")
    (detail,) = aws_json(cli_server.url, "describe-jobs", "--jobs", job_id)["jobs"]
    assert (detail["status"], detail["jobName"]) == ("SUCCEEDED", "cli_job")
    assert detail["parameters"]["count"] == "2"
    assert detail["container"]["command"] == ["echo", "from the cli"]
    assert detail["container"]["exitCode"] == 0
    assert detail["tags"] == {"origin": "cli"}


def test_cli_array_job_children_are_listed_and_described(cli_server: FunctionServer, batch: Any) -> None:
    job_id = aws_json(
        cli_server.url, "submit-job", "--job-name", "cli_array", "--job-queue", "main",
        "--job-definition", "hello", "--array-properties", "size=10",
    )["jobId"]  # fmt: skip
    wait_for_status(batch, job_id, "SUCCEEDED")
    listed = aws_json(cli_server.url, "list-jobs", "--array-job-id", job_id, "--job-status", "SUCCEEDED")
    assert [job["jobId"] for job in listed["jobSummaryList"]] == [f"{job_id}:{i}" for i in range(10)]
    described = aws_json(cli_server.url, "describe-jobs", "--jobs", job_id, f"{job_id}:9")["jobs"]
    assert described[0]["arrayProperties"]["statusSummary"]["SUCCEEDED"] == 10
    assert described[1]["arrayProperties"] == {"index": 9}


def test_cli_list_jobs_pages_through_150_jobs_newest_first(cli_server: FunctionServer, batch: Any) -> None:
    ids = submit_many(batch, 150, jobName="cli_bulk", jobQueue="bulk", jobDefinition="parked")
    listing = ("list-jobs", "--job-queue", "bulk", "--job-status", "RUNNABLE")
    everything = aws_json(cli_server.url, *listing, "--page-size", "40")["jobSummaryList"]
    assert sorted(job["jobId"] for job in everything) == sorted(ids)
    order = [(job["createdAt"], job["jobId"]) for job in everything]
    assert order == sorted(order, reverse=True)

    first = aws_json(cli_server.url, *listing, "--max-items", "100", "--page-size", "60")
    rest = aws_json(cli_server.url, *listing, "--starting-token", first["NextToken"])
    assert [job["jobId"] for job in first["jobSummaryList"] + rest["jobSummaryList"]] == [
        job["jobId"] for job in everything
    ]
    assert (len(first["jobSummaryList"]), "NextToken" in rest) == (100, False)


def test_cli_cancel_leaves_a_running_job_and_terminate_stops_it_with_its_reason(
    cli_server: FunctionServer, batch: Any, batch_api: client.BatchV1Api
) -> None:
    job_id = batch.submit_job(jobName="cli_long", jobQueue="main", jobDefinition="forever")["jobId"]
    wait_for_status(batch, job_id, "RUNNING")
    before = stop_marks(batch_api, cli_server.namespace, job_id)
    aws_json(cli_server.url, "cancel-job", "--job-id", job_id, "--reason", "cancel is too late")
    assert stop_marks(batch_api, cli_server.namespace, job_id) == before  # the Job was never patched
    assert batch.describe_jobs(jobs=[job_id])["jobs"][0]["status"] == "RUNNING"
    aws_json(cli_server.url, "terminate-job", "--job-id", job_id, "--reason", "stopped from the cli")
    wait_for_status(batch, job_id, "FAILED")
    (detail,) = aws_json(cli_server.url, "describe-jobs", "--jobs", job_id)["jobs"]
    assert detail["statusReason"] == "stopped from the cli"


def test_cli_describes_job_definitions_and_queues(cli_server: FunctionServer) -> None:
    definitions = aws_json(cli_server.url, "describe-job-definitions", "--job-definitions", "hello:2")
    assert [d["jobDefinitionName"] for d in definitions["jobDefinitions"]] == ["hello"]
    queues = aws_json(cli_server.url, "describe-job-queues")["jobQueues"]
    assert [q["jobQueueName"] for q in queues] == ["bulk", "kueued", "main"]


def test_cli_reports_client_exceptions(cli_server: FunctionServer) -> None:
    result = run_aws(
        cli_server.url, "submit-job", "--job-name", "bad", "--job-queue", "main",
        "--job-definition", "hello", "--parameters", "count=lots",
    )  # fmt: skip
    assert result.returncode == 255
    assert "(ClientException) when calling the SubmitJob operation" in result.stderr
    assert "count: 'lots' is not of type 'integer'" in result.stderr
