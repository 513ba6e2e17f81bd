"""Events through deploy/'s Broker and Triggers to the function, with Eventing's OIDC on: each
event type submits its definition's job, the reply is routed on, a refused event is
dead-lettered, a 429 or 503 is retried with backoff until delivered, and a broker's
redelivery never makes a second job.

Events are sent to the broker's ingress with the cloudevents SDK, with a token of the
namespace's caller for the broker's audience (Eventing refuses events without one).
"""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import Future
from datetime import datetime
from typing import Any

import pytest
import requests
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from jobfn._contract import (
    ARGUMENTS_ANNOTATION,
    CALLER_ANNOTATION,
    IDEMPOTENCY_KEY_ANNOTATION,
    keyed_job_name,
)
from jobfn._definitions import JobDefinitions
from jobfn._events import idempotency_key
from tests.deploy.manifests import DEFINITIONS_FILE
from tests.helpers import wait_for
from tests.knative.conftest import Deployed
from tests.knative.services import get_json

SOURCE = "/tests/knative/brokers"
ARGUMENTS = {"dev.jobfn.hello": {"message": "through the broker"}, "dev.jobfn.pi": {"digits": 20}}


def send_soon(
    deployed: Deployed, event_type: str, data: dict[str, Any], structured: bool = False
) -> tuple[str, Future[requests.Response]]:
    """Start sending one event to the namespace's broker; its id, and the broker's answer to come.

    The broker's in-memory channel answers only once every Trigger's delivery is done, retries
    included (its fanout is synchronous unless annotated async-handler), so an answer may take
    as long as the function keeps refusing the event.
    """
    event_id = uuid.uuid4().hex
    event = CloudEvent({"type": event_type, "source": SOURCE, "id": event_id}, data)
    headers, body = to_structured(event) if structured else to_binary(event)
    return event_id, deployed.broker().send_soon(dict(headers), body)


def send(deployed: Deployed, event_type: str, data: dict[str, Any], structured: bool = False) -> str:
    """Send one event to the namespace's broker and wait for its 202; its id."""
    event_id, answer = send_soon(deployed, event_type, data, structured)
    assert answer.result().status_code == 202, answer.result().text
    return event_id


def job_of(deployed: Deployed, definition: str, event_id: str, timeout: float = 90) -> dict[str, Any]:
    """The one job the event made (waiting for it), found by the name its key maps to."""
    name = keyed_job_name(definition, idempotency_key(SOURCE, event_id))

    def made() -> dict[str, Any] | None:
        found = [j for j in deployed.jobs(definition) if j["metadata"]["name"] == name]
        return found[0] if found else None

    return wait_for(made, timeout=timeout, interval=0.5, what=f"the job of event {event_id}")


def recorded(deployed: Deployed, timeout: float = 60, **attributes: str) -> dict[str, Any]:
    """The request the recorder got whose attributes (ce-type, path, ...) match."""

    def found() -> dict[str, Any] | None:
        for record in deployed.recorded():
            if all(record.get(name.replace("_", "-")) == value for name, value in attributes.items()):
                return record
        return None

    return wait_for(found, timeout=timeout, interval=1, what=f"a recorded request with {attributes}")


def deploys_event_types() -> list[str]:
    definitions = JobDefinitions.from_yaml(DEFINITIONS_FILE.read_text())
    return sorted(t for d in definitions for t in d.event_types)


@pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
def test_each_event_type_goes_through_deploys_trigger_to_one_job_and_the_reply_is_routed(
    deployed: Deployed, structured: bool
) -> None:
    assert deploys_event_types() == sorted(ARGUMENTS)
    sent = {t: send(deployed, t, ARGUMENTS[t], structured) for t in ARGUMENTS}

    jobs = {t: job_of(deployed, t.rsplit(".", 1)[-1], event_id) for t, event_id in sent.items()}

    for event_type, job in jobs.items():
        arguments = json.loads(job["metadata"]["annotations"][ARGUMENTS_ANNOTATION])
        assert arguments == ARGUMENTS[event_type]
        assert job["metadata"]["annotations"][IDEMPOTENCY_KEY_ANNOTATION] == idempotency_key(
            SOURCE, sent[event_type]
        )
        reply = recorded(deployed, ce_type="dev.jobfn.job.submitted", ce_subject=job["metadata"]["name"])
        assert reply["path"] == "/"
        # The broker's filter authenticated itself to the function: a token for its audience.
        assert job["metadata"]["annotations"][CALLER_ANNOTATION].startswith(
            f"system:serviceaccount:{deployed.namespace}:"
        )


def test_an_event_the_function_refuses_with_a_4xx_goes_to_the_dead_letter_sink(deployed: Deployed) -> None:
    event_id = send(deployed, "dev.jobfn.hello", {"message": "x" * 1001})  # maxLength 1000: 400

    dead = recorded(deployed, ce_id=event_id, path="/dead-letter")

    assert dead["ce-knativeerrorcode"] == "400"  # Eventing's extension says why
    assert dead["ce-type"] == "dev.jobfn.hello" and dead["data"] == {"message": "x" * 1001}
    name = keyed_job_name("hello", idempotency_key(SOURCE, event_id))
    assert name not in {j["metadata"]["name"] for j in deployed.jobs("hello")}


def completion_time(deployed: Deployed, name: str) -> float | None:
    status = get_json(deployed.kubectl, "job", "-n", deployed.namespace, name)["status"]
    return (
        datetime.fromisoformat(status["completionTime"]).timestamp() if "completionTime" in status else None
    )


def test_a_429_is_retried_with_backoff_and_then_delivered_once(deployed: Deployed) -> None:
    first = send(deployed, "dev.jobfn.test.one-at-a-time", {"seconds": 4})
    first_job = job_of(deployed, "one-at-a-time", first)
    second, accepted = send_soon(deployed, "dev.jobfn.test.one-at-a-time", {"seconds": 0})  # 429 meanwhile

    second_job = job_of(deployed, "one-at-a-time", second, timeout=120)

    assert accepted.result(timeout=120).status_code == 202
    finished = wait_for(lambda: completion_time(deployed, first_job["metadata"]["name"]), timeout=60)
    created = datetime.fromisoformat(second_job["metadata"]["creationTimestamp"]).timestamp()
    assert created >= finished - 1  # accepted only once the first had finished (whole seconds)
    names = [j["metadata"]["name"] for j in deployed.jobs("one-at-a-time")]
    assert names.count(second_job["metadata"]["name"]) == 1


@pytest.fixture
def jobs_refused_for_a_while(deployed: Deployed) -> Any:
    """An admission webhook, for this namespace's hello jobs alone, that cannot be reached: the
    API server answers 500 to their creation, so the function answers 503 (the Kubernetes API
    failed). Removed by ``lift()``, or at the end."""
    name = f"jobfn-test-refuse-hello-{deployed.namespace}"
    webhook = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "refuse.jobfn.test",
                "admissionReviewVersions": ["v1"],
                "sideEffects": "None",
                "failurePolicy": "Fail",
                "timeoutSeconds": 1,
                "clientConfig": {"service": {"namespace": deployed.namespace, "name": "nobody", "port": 443}},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": deployed.namespace}},
                "objectSelector": {"matchLabels": {"job_definition_name": "hello"}},
                "rules": [
                    {
                        "apiGroups": ["batch"],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE"],
                        "resources": ["jobs"],
                    }
                ],
            }
        ],
    }
    deployed.kubectl("apply", "-f", "-", input=json.dumps(webhook))

    def lift() -> None:
        deployed.kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found")

    yield lift
    lift()


def test_a_503_is_retried_with_backoff_and_then_delivered_once(
    deployed: Deployed, jobs_refused_for_a_while: Any
) -> None:
    time.sleep(2)  # the API server's webhook informer sees the new configuration
    event_id, accepted = send_soon(deployed, "dev.jobfn.hello", {"message": "after a 503"})
    time.sleep(4)  # the broker retries meanwhile (0.5, 1, 2 s ...): every try answered 503
    assert not accepted.done()  # the in-memory channel answers once the delivery is done
    name = keyed_job_name("hello", idempotency_key(SOURCE, event_id))
    assert name not in {j["metadata"]["name"] for j in deployed.jobs("hello")}
    jobs_refused_for_a_while()

    job = job_of(deployed, "hello", event_id, timeout=120)
    assert accepted.result(timeout=120).status_code == 202

    assert [j["metadata"]["name"] for j in deployed.jobs("hello")].count(job["metadata"]["name"]) == 1
    log = deployed.kubectl(
        "logs",
        "-n",
        deployed.namespace,
        "-l",
        f"serving.knative.dev/revision={deployed.revision()}",
        "-c",
        "function",
        "--tail=-1",
    ).stdout
    assert any('"status": 503' in line and '"door": "events"' in line for line in log.splitlines()), (
        "no 503 logged"
    )
