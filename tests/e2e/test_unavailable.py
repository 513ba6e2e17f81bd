"""A running function whose Kubernetes API cannot be reached, or whose definitions are missing.

No cluster is needed: the kubeconfig points at a loopback port nothing listens on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from tests.e2e.conftest import write_definitions
from tests.helpers import FunctionServer, free_port, start_function


def unreachable_kubeconfig(path: Path) -> Path:
    cluster = {"server": f"https://127.0.0.1:{free_port()}", "insecure-skip-tls-verify": True}
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "gone", "cluster": cluster}],
        "users": [{"name": "user", "user": {"token": "unused"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "user"}}],
        "current-context": "gone",
    }
    path.write_text(json.dumps(document))
    return path


@pytest.fixture(scope="module")
def cut_off_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionServer]:
    directory = tmp_path_factory.mktemp("cut-off")
    server = start_function(
        "jobs",
        write_definitions(directory, "jobs"),
        directory / "function.log",
        {
            "KUBECONFIG": str(unreachable_kubeconfig(directory / "kubeconfig")),
            "JOBFN_API_TIMEOUT_SECONDS": "2",
        },
        ready_path="/healthz",
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server_without_definitions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionServer]:
    directory = tmp_path_factory.mktemp("no-definitions")
    server = start_function(
        "jobs",
        directory / "missing.yaml",
        directory / "function.log",
        {"KUBECONFIG": str(unreachable_kubeconfig(directory / "kubeconfig"))},
        ready_path="/healthz",
    )
    yield server
    server.stop()


def assert_unavailable(response: requests.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["error"]["code"] == "ServiceUnavailable"


def test_liveness_answers_while_the_api_cannot_be_reached(cut_off_server: FunctionServer) -> None:
    assert requests.get(f"{cut_off_server.url}/healthz", timeout=10).json() == {"status": "ok"}


def test_readiness_is_503_while_the_api_cannot_be_reached(cut_off_server: FunctionServer) -> None:
    assert_unavailable(requests.get(f"{cut_off_server.url}/readyz", timeout=10))


def test_submission_is_503_with_retry_after_while_the_api_cannot_be_reached(
    cut_off_server: FunctionServer,
) -> None:
    body = {"definition": "echo", "arguments": {"message": "later"}}
    assert_unavailable(requests.post(f"{cut_off_server.url}/jobs", json=body, timeout=10))
    assert_unavailable(requests.get(f"{cut_off_server.url}/jobs", timeout=10))


def test_cloudevent_is_answered_503_so_the_broker_retries(cut_off_server: FunctionServer) -> None:
    event = CloudEvent({"type": "dev.jobfn.test.echo", "source": "/t", "id": "1"}, {"message": "later"})
    headers, body = to_binary(event)
    assert_unavailable(requests.post(cut_off_server.url, headers=headers, data=body, timeout=10))


def test_unavailable_answers_are_counted(cut_off_server: FunctionServer) -> None:
    requests.get(f"{cut_off_server.url}/jobs", timeout=10)
    metrics = requests.get(f"{cut_off_server.url}/metrics", timeout=10).text
    assert 'jobfn_api_errors_total{code="ServiceUnavailable",status="503"}' in metrics


def test_readiness_is_503_until_definitions_are_loaded(server_without_definitions: FunctionServer) -> None:
    response = requests.get(f"{server_without_definitions.url}/readyz", timeout=10)
    assert_unavailable(response)
    assert "definitions" in response.json()["error"]["message"]


def assert_unavailable_naming_no_path(response: requests.Response, directory: Path) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert str(directory) not in response.text and "missing.yaml" not in response.text


def test_every_door_answers_503_with_retry_after_until_definitions_are_loaded(
    server_without_definitions: FunctionServer,
) -> None:
    url = server_without_definitions.url
    directory = server_without_definitions.log_path.parent
    event = CloudEvent({"type": "dev.jobfn.test.echo", "source": "/t", "id": "1"}, {"message": "later"})
    headers, body = to_binary(event)
    answers = {
        "REST submit": requests.post(f"{url}/jobs", json={"definition": "echo"}, timeout=10),
        "REST definitions": requests.get(f"{url}/definitions", timeout=10),
        "CloudEvent": requests.post(url, headers=headers, data=body, timeout=10),
        "AWS SubmitJob": requests.post(
            f"{url}/v1/submitjob",
            json={"jobName": "n", "jobQueue": "q", "jobDefinition": "echo"},
            timeout=10,
        ),
        "AWS DescribeJobDefinitions": requests.post(f"{url}/v1/describejobdefinitions", json={}, timeout=10),
        "AWS DescribeJobQueues": requests.post(f"{url}/v1/describejobqueues", json={}, timeout=10),
    }
    for door, response in answers.items():
        assert response.status_code == 503, f"{door}: {response.status_code} {response.text}"
        assert_unavailable_naming_no_path(response, directory)
    assert answers["AWS SubmitJob"].headers["x-amzn-ErrorType"] == "ServerException"
    assert "no job definitions are loaded" in answers["REST submit"].json()["error"]["message"]
