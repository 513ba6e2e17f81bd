"""SigV4 verification on a running function configured with AWS credentials (boto3, the CLI, raw HTTP)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.auth
import botocore.credentials
import botocore.exceptions
import pytest
import requests
from botocore.awsrequest import AWSRequest
from kubernetes import client

from jobfn._contract import CALLER_ANNOTATION
from tests.e2e.test_aws_batch import batch_client, serve_aws_function
from tests.e2e.test_aws_batch_cli import cli_environment, run_aws
from tests.helpers import FunctionServer

ACCESS_KEY = "AKIDJOBFNE2ETEST"
SECRET = "e2e/secret+key=value"


@pytest.fixture(scope="module")
def signed_server(
    kubeconfig: Path, module_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FunctionServer]:
    env = {"JOBFN_AWS_ACCESS_KEY_ID": ACCESS_KEY, "JOBFN_AWS_SECRET_ACCESS_KEY": SECRET}
    yield from serve_aws_function(module_namespace, tmp_path_factory, env)


def error_of(call: Any) -> tuple[int, str]:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call()
    response = raised.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def signed_request(url: str, body: bytes, secret: str = SECRET) -> AWSRequest:
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    credentials = botocore.credentials.Credentials(ACCESS_KEY, secret)
    botocore.auth.SigV4Auth(credentials, "batch", "us-east-1").add_auth(request)
    return request


def test_requests_signed_with_the_configured_key_are_served_and_recorded(
    signed_server: FunctionServer, batch_api: client.BatchV1Api, module_namespace: str
) -> None:
    batch = batch_client(signed_server.url, ACCESS_KEY, SECRET, attempts=1)
    job_id = batch.submit_job(jobName="signed", jobQueue="main", jobDefinition="parked")["jobId"]
    assert batch.describe_jobs(jobs=[job_id])["jobs"][0]["jobName"] == "signed"
    job = batch_api.read_namespaced_job(job_id, module_namespace)
    assert job.metadata.annotations[CALLER_ANNOTATION] == f"aws:{ACCESS_KEY}"


def test_signed_tag_requests_with_an_arn_in_the_path_and_keys_in_the_query_are_served(
    signed_server: FunctionServer,
) -> None:
    batch = batch_client(signed_server.url, ACCESS_KEY, SECRET, attempts=1)
    job_arn = batch.submit_job(jobName="tags", jobQueue="main", jobDefinition="parked")["jobArn"]

    batch.tag_resource(resourceArn=job_arn, tags={"a": "1", "b": "2"})
    batch.untag_resource(resourceArn=job_arn, tagKeys=["a"])

    assert batch.list_tags_for_resource(resourceArn=job_arn)["tags"] == {"b": "2"}
    wrong = batch_client(signed_server.url, ACCESS_KEY, "not-the-secret", attempts=1)
    assert error_of(lambda: wrong.list_tags_for_resource(resourceArn=job_arn)) == (
        403,
        "InvalidSignatureException",
    )


def test_a_wrong_secret_is_refused(signed_server: FunctionServer) -> None:
    batch = batch_client(signed_server.url, ACCESS_KEY, "not-the-secret", attempts=1)
    assert error_of(lambda: batch.describe_job_queues()) == (403, "InvalidSignatureException")
    assert error_of(lambda: batch.submit_job(jobName="x", jobQueue="main", jobDefinition="parked")) == (
        403,
        "InvalidSignatureException",
    )


def test_another_access_key_is_refused(signed_server: FunctionServer) -> None:
    batch = batch_client(signed_server.url, "AKIDSOMEONEELSE", SECRET, attempts=1)
    assert error_of(lambda: batch.list_jobs(jobQueue="main")) == (403, "UnrecognizedClientException")


def test_an_unsigned_request_is_refused(signed_server: FunctionServer) -> None:
    response = requests.post(f"{signed_server.url}/v1/describejobqueues", json={}, timeout=10)
    assert response.status_code == 403
    assert response.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_a_body_changed_after_signing_is_refused(signed_server: FunctionServer) -> None:
    url = f"{signed_server.url}/v1/submitjob"
    signed_for = json.dumps({"jobName": "a", "jobQueue": "main", "jobDefinition": "parked"}).encode()
    request = signed_request(url, signed_for)
    sent = json.dumps({"jobName": "b", "jobQueue": "main", "jobDefinition": "parked"}).encode()
    response = requests.post(url, data=sent, headers=dict(request.headers), timeout=10)
    assert (response.status_code, response.json()["__type"]) == (403, "InvalidSignatureException")
    untouched = requests.post(url, data=signed_for, headers=dict(request.headers), timeout=10)
    assert untouched.status_code == 200, untouched.text


def test_the_cli_is_served_with_the_right_key_and_refused_with_a_wrong_secret(
    signed_server: FunctionServer,
) -> None:
    right = run_aws(signed_server.url, "describe-job-queues", env=cli_environment(ACCESS_KEY, SECRET))
    assert right.returncode == 0, right.stderr
    assert [q["jobQueueName"] for q in json.loads(right.stdout)["jobQueues"]] == ["bulk", "kueued", "main"]
    wrong = run_aws(signed_server.url, "describe-job-queues", env=cli_environment(ACCESS_KEY, "wrong"))
    assert wrong.returncode == 255
    assert "(InvalidSignatureException)" in wrong.stderr


def test_signatures_and_authorization_headers_are_never_logged(signed_server: FunctionServer) -> None:
    request = signed_request(f"{signed_server.url}/v1/describejobqueues", b"{}", secret="wrong")
    requests.post(request.url, data=b"{}", headers=dict(request.headers), timeout=10)
    signature = request.headers["Authorization"].rpartition("Signature=")[2]
    log = signed_server.log()
    assert "/v1/describejobqueues" in log  # the access log has the request
    assert signature not in log and "AWS4-HMAC-SHA256" not in log and SECRET not in log
