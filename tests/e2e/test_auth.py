"""Caller authentication of a running function: ServiceAccount tokens checked with TokenReview."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from kubernetes import client

from jobfn._contract import CALLER_ANNOTATION
from tests.e2e.conftest import serve_e2e_function
from tests.helpers import FunctionServer, create_namespace


def service_account_token(core: client.CoreV1Api, namespace: str, name: str) -> str:
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
    )
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=3600)
    )
    token: str = core.create_namespaced_service_account_token(name, namespace, request).status.token
    return token


@pytest.fixture(scope="module")
def secured_server(
    kubeconfig: Path, module_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FunctionServer]:
    yield from serve_e2e_function(
        module_namespace, tmp_path_factory, "secured", {"JOBFN_AUTH": "tokenreview"}
    )


@pytest.fixture(scope="module")
def tokens(api_client: client.ApiClient, module_namespace: str) -> dict[str, str]:
    core = client.CoreV1Api(api_client)
    return {name: service_account_token(core, module_namespace, name) for name in ("submitter", "other")}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_request_without_a_token_is_401(secured_server: FunctionServer) -> None:
    response = requests.get(f"{secured_server.url}/jobs")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "Unauthenticated"


def test_request_with_an_invalid_token_is_401(secured_server: FunctionServer) -> None:
    response = requests.get(f"{secured_server.url}/jobs", headers=bearer("not-a-real-token"))
    assert response.status_code == 401


def test_probes_metrics_and_the_api_description_need_no_token(secured_server: FunctionServer) -> None:
    for path in ("/healthz", "/readyz", "/healthcheck", "/metrics", "/openapi.json"):
        assert requests.get(secured_server.url + path).status_code == 200, path
    document = requests.get(f"{secured_server.url}/openapi.json").json()
    assert document["security"] == [{"bearer": []}]


def test_service_account_may_submit_an_unrestricted_definition_and_is_recorded(
    secured_server: FunctionServer, tokens: dict[str, str], batch_api: client.BatchV1Api
) -> None:
    response = requests.post(
        f"{secured_server.url}/jobs",
        json={"definition": "echo", "arguments": {"message": "authenticated"}},
        headers=bearer(tokens["other"]),
    )
    assert response.status_code == 201, response.text
    job = batch_api.read_namespaced_job(response.json()["name"], secured_server.namespace)
    caller = f"system:serviceaccount:{secured_server.namespace}:other"
    assert job.metadata.annotations[CALLER_ANNOTATION] == caller


def test_subject_the_definition_does_not_allow_is_403(
    secured_server: FunctionServer, tokens: dict[str, str]
) -> None:
    response = requests.post(
        f"{secured_server.url}/jobs", json={"definition": "restricted"}, headers=bearer(tokens["other"])
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "Forbidden"


def test_subject_the_definition_allows_may_submit_it(
    secured_server: FunctionServer, tokens: dict[str, str]
) -> None:
    response = requests.post(
        f"{secured_server.url}/jobs", json={"definition": "restricted"}, headers=bearer(tokens["submitter"])
    )
    assert response.status_code == 201, response.text


def test_a_group_in_allowed_subjects_admits_its_members_recorded_by_username(
    secured_server: FunctionServer,
    tokens: dict[str, str],
    api_client: client.ApiClient,
    batch_api: client.BatchV1Api,
) -> None:
    response = requests.post(
        f"{secured_server.url}/jobs", json={"definition": "team"}, headers=bearer(tokens["other"])
    )
    assert response.status_code == 201, response.text
    job = batch_api.read_namespaced_job(response.json()["name"], secured_server.namespace)
    username = f"system:serviceaccount:{secured_server.namespace}:other"
    assert job.metadata.annotations[CALLER_ANNOTATION] == username

    elsewhere = create_namespace(api_client, "outsiders")
    try:
        outsider = service_account_token(client.CoreV1Api(api_client), elsewhere, "outsider")
        refused = requests.post(
            f"{secured_server.url}/jobs", json={"definition": "team"}, headers=bearer(outsider)
        )
        assert refused.status_code == 403, refused.text
    finally:
        client.CoreV1Api(api_client).delete_namespace(elsewhere, propagation_policy="Background")


def test_cloudevent_needs_a_token_too(secured_server: FunctionServer, tokens: dict[str, str]) -> None:
    event = CloudEvent({"type": "dev.jobfn.test.echo", "source": "/auth", "id": "1"}, {"message": "event"})
    headers, body = to_binary(event)
    assert requests.post(secured_server.url, headers=headers, data=body).status_code == 401
    response = requests.post(secured_server.url, headers={**headers, **bearer(tokens["other"])}, data=body)
    assert response.status_code == 201, response.text


def test_tokens_are_never_logged(secured_server: FunctionServer, tokens: dict[str, str]) -> None:
    requests.get(f"{secured_server.url}/jobs", headers=bearer(tokens["other"]))
    requests.get(f"{secured_server.url}/jobs", headers=bearer("wrong-token-value"))
    log = secured_server.log()
    assert tokens["other"] not in log and "wrong-token-value" not in log
