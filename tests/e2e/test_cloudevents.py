"""CloudEvents intake of a running function, driven with the cloudevents SDK (binary and structured)."""

from __future__ import annotations

import uuid
from typing import Any

import requests
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent, from_http
from kubernetes import client

from jobfn._contract import DEFINITION_LABEL
from jobfn._events import SUBMITTED_EVENT_TYPE
from tests.e2e.conftest import SIGNATURE
from tests.helpers import FunctionServer

ECHO_TYPE = "dev.jobfn.test.echo"


def event(
    data: Any, *, type_: str = ECHO_TYPE, source: str = "/tests/e2e", id_: str | None = None
) -> CloudEvent:
    return CloudEvent({"type": type_, "source": source, "id": id_ or uuid.uuid4().hex}, data)


def send(server: FunctionServer, cloud_event: CloudEvent, structured: bool = False) -> requests.Response:
    headers, body = to_structured(cloud_event) if structured else to_binary(cloud_event)
    return requests.post(server.url + "/", headers=headers, data=body, timeout=30)


def reply_of(response: requests.Response) -> CloudEvent:
    reply: CloudEvent = from_http(dict(response.headers), response.content)
    return reply


def echo_jobs(batch_api: client.BatchV1Api, server: FunctionServer, message: str) -> list[Any]:
    selector = f"app.kubernetes.io/managed-by={SIGNATURE},{DEFINITION_LABEL}=echo"
    jobs = batch_api.list_namespaced_job(server.namespace, label_selector=selector).items
    return [
        job for job in jobs if f'"message": "{message}"' in job.metadata.annotations["jobfn.dev/arguments"]
    ]


def test_binary_event_creates_a_job_and_is_answered_with_a_reply_event(
    function_server: FunctionServer, batch_api: client.BatchV1Api
) -> None:
    message = f"binary-{uuid.uuid4().hex}"
    response = send(function_server, event({"message": message}))
    assert response.status_code == 201, response.text
    assert response.headers["ce-type"] == SUBMITTED_EVENT_TYPE  # binary mode: attributes in headers
    reply = reply_of(response)
    assert reply["type"] == SUBMITTED_EVENT_TYPE
    assert reply["subject"] == reply.get_data()["name"]
    assert reply.get_data()["arguments"]["message"] == message
    assert [job.metadata.name for job in echo_jobs(batch_api, function_server, message)] == [reply["subject"]]


def test_structured_event_creates_a_job(
    function_server: FunctionServer, batch_api: client.BatchV1Api
) -> None:
    message = f"structured-{uuid.uuid4().hex}"
    response = send(function_server, event({"message": message}), structured=True)
    assert response.status_code == 201, response.text
    assert len(echo_jobs(batch_api, function_server, message)) == 1


def test_redelivered_event_creates_no_second_job(
    function_server: FunctionServer, batch_api: client.BatchV1Api
) -> None:
    message = f"redelivered-{uuid.uuid4().hex}"
    original = event({"message": message})
    first = send(function_server, original)
    again = send(function_server, original)
    structured_again = send(function_server, original, structured=True)
    assert [r.status_code for r in (first, again, structured_again)] == [201, 200, 200]
    assert reply_of(first)["id"] == reply_of(again)["id"] == reply_of(structured_again)["id"]
    assert reply_of(first)["subject"] == reply_of(again)["subject"]
    assert len(echo_jobs(batch_api, function_server, message)) == 1


def test_events_whose_source_and_id_only_concatenate_alike_create_two_jobs(
    function_server: FunctionServer, batch_api: client.BatchV1Api
) -> None:
    message = f"pairs-{uuid.uuid4().hex}"
    prefix = uuid.uuid4().hex
    first = send(function_server, event({"message": message}, source=f"{prefix}a", id_="bc"))
    second = send(function_server, event({"message": message}, source=f"{prefix}ab", id_="c"))
    assert (first.status_code, second.status_code) == (201, 201)
    assert reply_of(first)["subject"] != reply_of(second)["subject"]
    assert len(echo_jobs(batch_api, function_server, message)) == 2


def test_event_of_an_undeclared_type_is_a_permanent_4xx(function_server: FunctionServer) -> None:
    response = send(function_server, event({"message": "x"}, type_="dev.jobfn.test.unknown"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "DefinitionNotFound"


def test_event_with_invalid_arguments_is_400_listing_problems(function_server: FunctionServer) -> None:
    response = send(function_server, event({"count": "three"}))
    assert response.status_code == 400
    assert len(response.json()["error"]["problems"]) == 2  # message missing; count not an integer


def test_event_whose_data_is_not_an_object_is_400(function_server: FunctionServer) -> None:
    response = send(function_server, event(["not", "an", "object"]))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidArguments"


def test_event_with_malformed_json_data_is_400(function_server: FunctionServer) -> None:
    headers = {"ce-specversion": "1.0", "ce-type": ECHO_TYPE, "ce-source": "/t", "ce-id": "1"}
    response = requests.post(
        function_server.url, headers={**headers, "Content-Type": "application/json"}, data=b'{"message": '
    )
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]


def test_event_missing_a_required_attribute_is_400(function_server: FunctionServer) -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-type": ECHO_TYPE,
        "ce-source": "/t",
        "Content-Type": "application/json",
    }
    response = requests.post(function_server.url, headers=headers, data=b'{"message": "x"}')
    assert response.status_code == 400
    assert "id" in response.json()["error"]["message"]


def test_event_with_non_json_data_is_415(function_server: FunctionServer) -> None:
    headers = {"ce-specversion": "1.0", "ce-type": ECHO_TYPE, "ce-source": "/t", "ce-id": "2"}
    response = requests.post(
        function_server.url, headers={**headers, "Content-Type": "text/plain"}, data=b"hi"
    )
    assert response.status_code == 415


def test_batched_events_are_415(function_server: FunctionServer) -> None:
    response = requests.post(
        function_server.url, headers={"Content-Type": "application/cloudevents-batch+json"}, data=b"[]"
    )
    assert response.status_code == 415


def test_event_for_a_definition_at_its_cap_is_429_so_the_broker_retries(
    function_server: FunctionServer,
) -> None:
    original = event({"tag": "a"}, type_="dev.jobfn.test.capped")
    first = send(function_server, original)
    assert first.status_code == 201, first.text
    try:
        second = send(function_server, event({"tag": "b"}, type_="dev.jobfn.test.capped"))
        assert second.status_code == 429
        assert int(second.headers["Retry-After"]) >= 1
        # The first event, redelivered while the cap is reached, still gets its own job back.
        redelivered = send(function_server, original)
        assert redelivered.status_code == 200
        assert reply_of(redelivered)["subject"] == reply_of(first)["subject"]
    finally:
        name = reply_of(first)["subject"]
        requests.post(f"{function_server.url}/jobs/{name}/terminate", json={}, timeout=30)
