"""Snakemake's AWS Batch executor (snakemake-executor-plugin-aws-batch) runs a two-rule workflow
against the function, its files in S3 (moto), its jobs on the real node.

The only change from running on AWS is the endpoint (``AWS_ENDPOINT_URL_BATCH``) and the S3
endpoint. The plugin registers one definition per job (always asking for a privileged
container: the operator lets it run unprivileged), submits it, polls DescribeJobs every few
seconds, and deregisters the definition once the job finished.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from kubernetes import client

from tests.cluster import localcluster
from tests.e2e.test_aws_batch import batch_client
from tests.engines.conftest import client_env, in_netns, serve_for_engines
from tests.engines.images import ensure_snakemake_image
from tests.helpers import FunctionServer

SNAKEFILE = """\
rule all:
    input: "greeting.shouted.txt"

rule greet:
    output: "greeting.txt"
    shell: "echo hello from $AWS_BATCH_JOB_ID in $AWS_BATCH_JQ_NAME, attempt $AWS_BATCH_JOB_ATTEMPT > {output}"

rule shout:
    input: "greeting.txt"
    output: "greeting.shouted.txt"
    shell: "tr a-z A-Z < {input} > {output}"
"""
BUCKET = "workflow"


@pytest.fixture(scope="module")
def image(kubeconfig: Path) -> str:
    return ensure_snakemake_image()


@pytest.fixture(scope="module")
def server(
    engine_namespace: str, image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FunctionServer]:
    yield from serve_for_engines(engine_namespace, tmp_path_factory, f"{image.partition(':')[0]}:*")


def pod_logs(api_client: client.ApiClient, namespace: str) -> str:
    """Every container's log in ``namespace``, to say why a job failed."""
    core = client.CoreV1Api(api_client)
    found = []
    for pod in core.list_namespaced_pod(namespace).items:
        for container in pod.spec.containers:
            log = core.read_namespaced_pod_log(pod.metadata.name, namespace, container=container.name)
            found.append(f"--- {pod.metadata.name}/{container.name}\n{log[-3000:]}")
    return "\n".join(found)


def s3_client(url: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def test_a_two_rule_workflow_runs_its_jobs_through_the_aws_batch_api(
    engines: Path,
    s3: str,
    server: FunctionServer,
    image: str,
    tmp_path: Path,
    api_client: client.ApiClient,
    engine_namespace: str,
) -> None:
    localcluster.in_cluster_network(lambda: s3_client(s3).create_bucket(Bucket=BUCKET))
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    argv = [
        str(engines / "snakemake"),
        "--executor", "aws-batch",
        "--aws-batch-region", "us-east-1",
        "--aws-batch-job-queue", "main",
        "--aws-batch-job-role", "arn:aws:iam::000000000000:role/snakemake",
        "--container-image", image,
        "--default-storage-provider", "s3",
        "--default-storage-prefix", f"s3://{BUCKET}",
        "--storage-s3-endpoint-url", s3,
        "--storage-s3-access-key", "x",
        "--storage-s3-secret-key", "x",
        "--jobs", "1",
    ]  # fmt: skip
    started = time.monotonic()
    run = subprocess.run(
        in_netns(argv), cwd=tmp_path, env=client_env(server), capture_output=True, text=True, timeout=600
    )
    seconds = time.monotonic() - started
    assert run.returncode == 0, f"{run.stderr[-5000:]}\n{pod_logs(api_client, engine_namespace)}"
    print(f"snakemake ran the workflow in {seconds:.0f} s")

    shouted = localcluster.in_cluster_network(
        lambda: s3_client(s3).get_object(Bucket=BUCKET, Key="greeting.shouted.txt")["Body"].read().decode()
    )
    jobs = client.BatchV1Api(api_client).list_namespaced_job(engine_namespace).items
    assert len(jobs) == 2 and all(job.status.succeeded for job in jobs)
    for job in sorted(jobs, key=lambda job: job.metadata.creation_timestamp):
        created, done = job.metadata.creation_timestamp, job.status.completion_time
        print(f"{job.metadata.name}: {(done - created).total_seconds():.0f} s from submission to completion")
    greet = next(job for job in jobs if "greet" in job.metadata.annotations["jobfn.dev/tags"])
    assert shouted == f"HELLO FROM {greet.metadata.name.upper()} IN MAIN, ATTEMPT 1\n"
    # The plugin deregistered each definition once its job finished.
    batch = localcluster.in_cluster_network(lambda: batch_client(server.url))
    definitions = localcluster.in_cluster_network(lambda: batch.describe_job_definitions(status="INACTIVE"))
    snakejobs = [
        d for d in definitions["jobDefinitions"] if d["jobDefinitionName"].startswith("snakejob-def-")
    ]
    assert len(snakejobs) == 2
