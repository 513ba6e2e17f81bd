"""The REST API of a running function, driven with requests on every documented route."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from kubernetes import client

from jobfn import _rest as rest
from jobfn._retention import HOLD_FOREVER
from tests.e2e.conftest import SIGNATURE
from tests.helpers import FunctionServer, wait_for


def submit(server: FunctionServer, body: Any, **headers: str) -> requests.Response:
    return requests.post(f"{server.url}/jobs", json=body, headers=headers, timeout=30)


def job(server: FunctionServer, name: str) -> dict[str, Any]:
    response = requests.get(f"{server.url}/jobs/{name}", timeout=30)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_for_state(server: FunctionServer, name: str, state: str, timeout: float = 180) -> dict[str, Any]:
    def in_state() -> dict[str, Any] | None:
        found = job(server, name)
        return found if found["state"] == state else None

    return wait_for(in_state, timeout)


def assert_error(response: requests.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "problems", "request_id"}
    assert error["problems"] and error["request_id"] == response.headers["X-Request-Id"]
    assert "Traceback" not in response.text
    if code is not None:
        assert error["code"] == code
    return error


@pytest.fixture(scope="module")
def finished_echo(function_server: FunctionServer) -> dict[str, Any]:
    """One echo job, run to completion."""
    response = submit(function_server, {"definition": "echo", "arguments": {"message": "hello"}})
    assert response.status_code == 201, response.text
    return wait_for_state(function_server, response.json()["name"], "SUCCEEDED")


@pytest.fixture
def forever_job(function_server: FunctionServer) -> Iterator[str]:
    response = submit(function_server, {"definition": "forever"})
    assert response.status_code == 201, response.text
    name: str = response.json()["name"]
    yield name
    requests.post(f"{function_server.url}/jobs/{name}/terminate", json={}, timeout=30)


# --- submitting ------------------------------------------------------------------------------
def test_submitted_job_is_created_runs_and_is_described_with_pods(
    function_server: FunctionServer, finished_echo: dict[str, Any], batch_api: client.BatchV1Api
) -> None:
    assert finished_echo["definition"] == "echo"
    assert finished_echo["arguments"] == {"message": "hello", "count": 1}
    assert finished_echo["labels"]["team"] == "e2e"
    assert finished_echo["created"] and finished_echo["stopped"]
    assert finished_echo["counts"]["succeeded"] == 1
    assert [pod["phase"] for pod in finished_echo["pods"]] == ["Succeeded"]
    stored = batch_api.read_namespaced_job(finished_echo["name"], function_server.namespace)
    assert stored.metadata.labels["app.kubernetes.io/managed-by"] == SIGNATURE


def test_new_job_is_answered_201_with_its_location(function_server: FunctionServer) -> None:
    response = submit(function_server, {"definition": "echo", "arguments": {"message": "where"}})
    assert response.status_code == 201
    assert response.headers["Location"] == f"/jobs/{response.json()['name']}"


def test_k8s_jobs_body_creates_a_job_and_answers_its_name(function_server: FunctionServer) -> None:
    response = submit(function_server, {"job_definition_name": "echo", "message": "from k8s-jobs"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["job_name"] == body["name"]
    assert body["arguments"]["message"] == "from k8s-jobs"


def test_retry_with_the_same_idempotency_key_returns_the_same_job(function_server: FunctionServer) -> None:
    key = f"retry-{uuid.uuid4()}"
    body = {"definition": "echo", "arguments": {"message": "once"}}
    first = submit(function_server, body, **{"Idempotency-Key": key})
    second = submit(function_server, body, **{"Idempotency-Key": key})
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["uid"] == second.json()["uid"]


def test_each_submission_is_one_access_log_line_naming_its_job(function_server: FunctionServer) -> None:
    key = f"logged-{uuid.uuid4()}"
    body = {"definition": "echo", "arguments": {"message": "logged"}}
    first = submit(function_server, body, **{"Idempotency-Key": key})
    replay = submit(function_server, body, **{"Idempotency-Key": key})

    def lines_of(response: requests.Response) -> list[dict[str, Any]]:
        request_id = response.headers["X-Request-Id"]
        return [
            entry
            for line in function_server.log().splitlines()
            if line.startswith("{") and (entry := json.loads(line)).get("request_id") == request_id
        ]

    [created] = wait_for(lambda: lines_of(first), timeout=10, what="the first submission's log line")
    [replayed] = wait_for(lambda: lines_of(replay), timeout=10, what="the replay's log line")
    assert (created["message"], created["status"], created["door"]) == ("POST /jobs 201", 201, "rest")
    assert (created["job"], created["definition"], created["job_created"]) == (
        first.json()["name"],
        "echo",
        True,
    )
    assert (replayed["job"], replayed["job_created"]) == (first.json()["name"], False)


def test_idempotency_key_reused_for_a_different_request_is_409(function_server: FunctionServer) -> None:
    key = f"reuse-{uuid.uuid4()}"
    assert submit(
        function_server, {"definition": "echo", "arguments": {"message": "a"}}, **{"Idempotency-Key": key}
    ).ok
    response = submit(
        function_server, {"definition": "echo", "arguments": {"message": "b"}}, **{"Idempotency-Key": key}
    )
    assert_error(response, 409, "Conflict")


def test_invalid_arguments_are_400_listing_every_problem(function_server: FunctionServer) -> None:
    response = submit(function_server, {"definition": "echo", "arguments": {"count": 9, "colour": "red"}})
    error = assert_error(response, 400, "InvalidArguments")
    text = " ".join(error["problems"])
    assert len(error["problems"]) == 3
    assert "colour" in text and "count" in text and "message" in text


def test_malformed_submission_fields_are_400_listing_every_problem(function_server: FunctionServer) -> None:
    response = submit(function_server, {"definition": 7, "overrides": {"timeout": "soon", "colour": 1}})
    error = assert_error(response, 400, "InvalidRequest")
    assert len(error["problems"]) == 3


def test_override_the_definition_does_not_allow_is_400(function_server: FunctionServer) -> None:
    response = submit(function_server, {"definition": "forever", "overrides": {"timeout": 60}})
    assert "does not allow overriding timeout" in assert_error(response, 400)["message"]


def test_allowed_overrides_reach_the_job(
    function_server: FunctionServer, batch_api: client.BatchV1Api
) -> None:
    response = submit(
        function_server,
        {"definition": "echo", "arguments": {"message": "x"}, "overrides": {"timeout": 120, "array_size": 2}},
    )
    assert response.status_code == 201, response.text
    assert response.json()["array_size"] == 2
    spec = batch_api.read_namespaced_job(response.json()["name"], function_server.namespace).spec
    assert (spec.active_deadline_seconds, spec.completions) == (120, 2)


def test_unknown_definition_is_404(function_server: FunctionServer) -> None:
    response = submit(function_server, {"definition": "no-such-thing"})
    assert "echo" in assert_error(response, 404, "DefinitionNotFound")["message"]


def test_malformed_json_is_400(function_server: FunctionServer) -> None:
    response = requests.post(
        f"{function_server.url}/jobs", data=b'{"definition": ', headers={"Content-Type": "application/json"}
    )
    assert "not valid JSON" in assert_error(response, 400)["message"]


def test_body_that_is_not_json_is_415(function_server: FunctionServer) -> None:
    response = requests.post(f"{function_server.url}/jobs", data={"definition": "echo"})  # a form
    assert_error(response, 415, "UnsupportedMediaType")


def test_body_over_the_limit_is_413(function_server: FunctionServer) -> None:
    body = b'{"definition": "echo", "arguments": {"message": "' + b"x" * (2 << 20) + b'"}}'
    response = requests.post(
        f"{function_server.url}/jobs", data=body, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "PayloadTooLarge")


def test_chunked_body_over_the_limit_is_413(function_server: FunctionServer) -> None:
    chunks = (b"x" * 65536 for _ in range(40))  # a generator is sent chunked, without a length
    response = requests.post(
        f"{function_server.url}/jobs", data=chunks, headers={"Content-Type": "application/json"}, timeout=30
    )
    assert_error(response, 413, "PayloadTooLarge")


def test_definition_cap_reached_is_429_with_retry_after(function_server: FunctionServer) -> None:
    first = submit(function_server, {"definition": "capped"})
    assert first.status_code == 201, first.text
    try:
        second = submit(function_server, {"definition": "capped", "arguments": {"tag": "y"}})
        assert_error(second, 429, "TooManyRequests")
        assert int(second.headers["Retry-After"]) >= 1
    finally:
        requests.post(f"{function_server.url}/jobs/{first.json()['name']}/terminate", json={}, timeout=30)


# --- reading ---------------------------------------------------------------------------------
def test_list_filters_by_definition_state_and_labels_and_pages(
    function_server: FunctionServer, finished_echo: dict[str, Any]
) -> None:
    for message in ("p1", "p2"):
        assert submit(function_server, {"definition": "echo", "arguments": {"message": message}}).ok
    url = f"{function_server.url}/jobs"
    names = {
        j["name"]
        for j in requests.get(url, params={"definition": "echo", "labels": "team=e2e"}).json()["jobs"]
    }
    assert finished_echo["name"] in names and len(names) >= 3
    succeeded = requests.get(url, params={"definition": "echo", "state": "SUCCEEDED"}).json()["jobs"]
    assert succeeded and all(j["state"] == "SUCCEEDED" for j in succeeded)
    assert requests.get(url, params={"labels": "team=nobody"}).json()["jobs"] == []
    first = requests.get(url, params={"definition": "echo", "limit": 2}).json()
    assert len(first["jobs"]) == 2 and first["next_token"]
    second = requests.get(
        url, params={"definition": "echo", "limit": 2, "next_token": first["next_token"]}
    ).json()
    assert {j["name"] for j in second["jobs"]}.isdisjoint({j["name"] for j in first["jobs"]})


def test_k8s_jobs_list_filter_name_is_accepted(
    function_server: FunctionServer, finished_echo: dict[str, Any]
) -> None:
    jobs = requests.get(f"{function_server.url}/jobs", params={"job_definition_name": "echo"}).json()["jobs"]
    assert jobs and {j["definition"] for j in jobs} == {"echo"}


@pytest.mark.parametrize(
    "params", [{"limit": "0"}, {"limit": "many"}, {"labels": "team"}, {"labels": "a!=b"}, {"state": "DONE"}]
)
def test_bad_list_parameters_are_400(function_server: FunctionServer, params: dict[str, str]) -> None:
    assert_error(requests.get(f"{function_server.url}/jobs", params=params), 400)


def test_status_route_of_k8s_jobs_answers_the_state(
    function_server: FunctionServer, finished_echo: dict[str, Any]
) -> None:
    body = requests.get(f"{function_server.url}/jobs/{finished_echo['name']}/status").json()
    assert (body["job_name"], body["state"], body["counts"]["succeeded"]) == (
        finished_echo["name"],
        "SUCCEEDED",
        1,
    )


def test_logs_are_text_per_pod_and_container_with_tail(
    function_server: FunctionServer, finished_echo: dict[str, Any]
) -> None:
    url = f"{function_server.url}/jobs/{finished_echo['name']}/logs"
    everything = requests.get(url)
    assert everything.status_code == 200 and everything.headers["Content-Type"].startswith("text/plain")
    pod = finished_echo["pods"][0]["name"]
    assert (
        f"Pod: {pod}\nContainer: main\n" in everything.text and "simulated output line 1" in everything.text
    )
    one = requests.get(url, params={"pod": pod, "container": "main", "tail": "1"})
    assert one.status_code == 200 and one.text.strip() == "[kwok] simulated run finished"
    assert_error(requests.get(url, params={"pod": "other"}), 404)
    assert_error(requests.get(url, params={"tail": "-1"}), 400)


def test_unknown_job_is_404_on_every_job_route(function_server: FunctionServer) -> None:
    base = f"{function_server.url}/jobs"
    for response in (
        requests.get(f"{base}/no-such-job"),
        requests.get(f"{base}/no-such-job/status"),
        requests.get(f"{base}/no-such-job/logs"),
        requests.get(f"{base}/Not..A..Name"),
        requests.post(f"{base}/no-such-job/terminate", json={}),
        requests.put(f"{base}/no-such-job/retention", json={"hold": True}),
    ):
        assert_error(response, 404, "JobNotFound")


# --- changing --------------------------------------------------------------------------------
def test_terminate_records_the_reason_and_fails_the_job(
    function_server: FunctionServer, forever_job: str
) -> None:
    wait_for_state(function_server, forever_job, "RUNNING")
    response = requests.post(
        f"{function_server.url}/jobs/{forever_job}/terminate", json={"reason": "not needed"}
    )
    assert response.status_code == 200, response.text
    failed = wait_for_state(function_server, forever_job, "FAILED")
    assert failed["reason"] == "Terminated: not needed"


def test_terminate_with_a_bad_reason_is_400(function_server: FunctionServer, forever_job: str) -> None:
    response = requests.post(f"{function_server.url}/jobs/{forever_job}/terminate", json={"reason": ""})
    assert_error(response, 400)


def test_retention_can_be_held_set_and_extended(
    function_server: FunctionServer, finished_echo: dict[str, Any]
) -> None:
    url = f"{function_server.url}/jobs/{finished_echo['name']}/retention"
    assert requests.put(url, json={"hold": True}).json()["deletion_time"] == HOLD_FOREVER
    when = int(time.time()) + 3600
    assert requests.put(url, json={"delete_after": when}).json()["deletion_time"] == when
    assert requests.put(url, json={"extend_seconds": 60}).json()["deletion_time"] == when + 60
    assert_error(requests.put(url, json={"hold": True, "extend_seconds": 5}), 400)
    assert_error(requests.put(url, json={"hold": False}), 400)


# --- definitions and operations --------------------------------------------------------------
def test_definitions_are_listed_and_described_with_their_schemas(function_server: FunctionServer) -> None:
    listed = requests.get(f"{function_server.url}/definitions").json()["definitions"]
    assert [d["name"] for d in listed] == ["capped", "echo", "forever", "restricted", "team"]
    echo = requests.get(f"{function_server.url}/definitions/echo").json()
    assert echo["parameters"]["required"] == ["message"]
    assert echo["event_types"] == ["dev.jobfn.test.echo"]
    assert_error(requests.get(f"{function_server.url}/definitions/nope"), 404, "DefinitionNotFound")


def test_probes_answer(function_server: FunctionServer) -> None:
    assert requests.get(f"{function_server.url}/healthz").json() == {"status": "ok"}
    assert requests.get(f"{function_server.url}/healthcheck").json() == {"healthy": True}
    ready = requests.get(f"{function_server.url}/readyz").json()
    assert ready == {"status": "ready", "definitions": 5}


def test_metrics_count_submissions_by_definition_and_outcome(function_server: FunctionServer) -> None:
    submit(function_server, {"definition": "echo", "arguments": {"message": "counted"}})
    submit(function_server, {"definition": "echo", "arguments": {}})
    submit(function_server, {"definition": f"made-up-{uuid.uuid4().hex}"})
    text = requests.get(f"{function_server.url}/metrics").text
    assert 'jobfn_submissions_total{definition="echo",door="rest",outcome="created"}' in text
    assert 'jobfn_submissions_total{definition="echo",door="rest",outcome="rejected"}' in text
    assert 'jobfn_submissions_total{definition="unknown",door="rest",outcome="rejected"}' in text
    assert "made-up-" not in text
    assert 'jobfn_request_duration_seconds_bucket{door="rest",endpoint="submit_job"' in text
    assert 'jobfn_api_errors_total{code="DefinitionNotFound",status="404"}' in text


def test_unknown_routes_and_methods_answer_in_the_json_error_shape(function_server: FunctionServer) -> None:
    assert_error(requests.get(f"{function_server.url}/nowhere"), 404, "NotFound")
    assert_error(requests.get(f"{function_server.url}/robots.txt"), 404, "NotFound")
    wrong = requests.delete(f"{function_server.url}/jobs")
    assert_error(wrong, 405, "MethodNotAllowed")
    assert set(wrong.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_openapi_document_describes_every_route(function_server: FunctionServer) -> None:
    document = requests.get(f"{function_server.url}/openapi.json").json()
    served = {re.sub(r"<(\w+)>", r"{\1}", rule.rule) for rule in rest.ROUTES.iter_rules()}
    assert set(document["paths"]) == served
    for rule in rest.ROUTES.iter_rules():
        path = re.sub(r"<(\w+)>", r"{\1}", rule.rule)
        assert set(document["paths"][path]) >= {m.lower() for m in rule.methods or ()} - {"head", "options"}
