"""Broker authentication with Eventing's authentication-oidc feature on: the function accepts a
CloudEvent whose bearer token was issued for its audience (JOBFN_EVENT_AUDIENCE, set by
deploy/components/broker-oidc, which also names it in each Trigger), checked with a
TokenReview naming that audience, and refuses every other token. The token a Trigger's
filter sends is the Trigger's own OIDC identity."""

from __future__ import annotations

import uuid

import pytest
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

from jobfn._contract import CALLER_ANNOTATION
from tests.deploy.conftest import service_account_token
from tests.knative.conftest import CALLER, Deployed
from tests.knative.jobfn import AUDIENCE
from tests.knative.services import get_json
from tests.knative.test_brokers import SOURCE, job_of, send


def post_event(deployed: Deployed, token: str | None) -> int:
    event = CloudEvent({"type": "dev.jobfn.test.simulated", "source": SOURCE, "id": uuid.uuid4().hex}, {})
    headers, body = to_binary(event)
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return deployed.route.request("POST", "/", headers={**headers, **auth}, data=body).status_code


def test_the_function_is_configured_with_the_audience_the_triggers_name(deployed: Deployed) -> None:
    service = get_json(deployed.kubectl, "ksvc", "-n", deployed.namespace, "jobfn")
    [container] = service["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    triggers = get_json(deployed.kubectl, "triggers", "-n", deployed.namespace)["items"]
    to_function = [t for t in triggers if t["spec"]["subscriber"].get("ref", {}).get("kind") == "Service"
                   and t["spec"]["subscriber"]["ref"]["name"] == "jobfn"]  # fmt: skip

    assert env["JOBFN_EVENT_AUDIENCE"] == AUDIENCE
    assert to_function and {t["status"]["subscriberAudience"] for t in to_function} == {AUDIENCE}


def test_an_event_with_a_token_for_the_functions_audience_is_accepted(deployed: Deployed) -> None:
    token = service_account_token(deployed.api_client, deployed.namespace, CALLER, audience=AUDIENCE)

    assert post_event(deployed, token) == 201


@pytest.mark.parametrize(
    "audience", [None, "jobfn-elsewhere", "broker"], ids=["api-server", "another-audience", "the-brokers"]
)
def test_an_event_with_a_token_for_any_other_audience_is_refused(
    deployed: Deployed, audience: str | None
) -> None:
    if audience == "broker":
        audience = get_json(deployed.kubectl, "broker", "-n", deployed.namespace, "default")["status"][
            "address"
        ]["audience"]
    token = service_account_token(deployed.api_client, deployed.namespace, CALLER, audience=audience)

    assert post_event(deployed, token) == 401
    assert post_event(deployed, None) == 401


def test_the_rest_door_keeps_taking_tokens_for_the_api_server(deployed: Deployed) -> None:
    assert deployed.request("GET", "/definitions").status_code == 200
    token = service_account_token(deployed.api_client, deployed.namespace, CALLER, audience=AUDIENCE)
    assert (
        deployed.route.request(
            "GET", "/definitions", headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 401
    )


def test_a_broker_delivery_authenticates_as_its_triggers_oidc_service_account(deployed: Deployed) -> None:
    event_id = send(deployed, "dev.jobfn.test.simulated", {"tag": "oidc"})
    job = job_of(deployed, "simulated", event_id)
    trigger = get_json(deployed.kubectl, "trigger", "-n", deployed.namespace, "jobfn-test-simulated")

    account = trigger["status"]["auth"]["serviceAccountName"]
    assert (
        job["metadata"]["annotations"][CALLER_ANNOTATION]
        == f"system:serviceaccount:{deployed.namespace}:{account}"
    )
