"""Knative Serving, Eventing and Traefik in the local cluster: every component serving, nothing
of theirs in the way of other tests, Traefik routing a Knative Service, and the cost at rest."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from kubernetes import client

from tests.helpers import Kubectl, create_namespace
from tests.knative import install, manifests, usage
from tests.knative.jobfn import ProjectImages
from tests.knative.services import Route, get_json, in_cluster, timed, wait_ready

KNATIVE_NAMESPACES = ("knative-serving", "knative-eventing")


def test_every_component_runs_its_replicas_from_the_images_built_here(
    knative: install.Installed, kubectl: Kubectl
) -> None:
    pods = [
        pod
        for namespace in manifests.SYSTEM_NAMESPACES
        for pod in get_json(kubectl, "pods", "-n", namespace)["items"]
    ]
    images = {c["image"] for pod in pods for c in pod["spec"]["containers"]}

    assert install.recorded_digest() == knative.digest
    assert {pod["status"]["phase"] for pod in pods} == {"Running"}
    assert images and all(image.startswith("dev.local/") for image in images), images
    assert f"dev.local/knative/serving/activator:{knative.knative_version}" in images
    assert f"dev.local/traefik:{knative.traefik_version}" in images


def _reaches_beyond_knative(webhook: dict[str, Any]) -> bool:
    """Whether a webhook may be asked about objects that are not Knative's own."""
    own_groups = all(
        group.endswith("knative.dev") for rule in webhook.get("rules") or [] for group in rule["apiGroups"]
    )
    namespaces = [
        value
        for expression in (webhook.get("namespaceSelector") or {}).get("matchExpressions") or []
        if expression["key"] == "kubernetes.io/metadata.name" and expression["operator"] == "In"
        for value in expression["values"]
    ]
    objects = [
        value
        for expression in (webhook.get("objectSelector") or {}).get("matchExpressions") or []
        if expression["key"] == "app.kubernetes.io/name" and expression["operator"] == "In"
        for value in expression["values"]
    ]
    in_knative = bool(namespaces) and all(n in KNATIVE_NAMESPACES for n in namespaces)
    knatives = bool(objects) and all(o.startswith("knative-") for o in objects)
    return not (own_groups or in_knative or knatives)


def test_no_webhook_fails_closed_on_objects_outside_knative(
    knative: install.Installed, kubectl: Kubectl
) -> None:
    configurations = get_json(kubectl, "validatingwebhookconfigurations,mutatingwebhookconfigurations")[
        "items"
    ]
    knatives = [
        webhook
        for configuration in configurations
        for webhook in configuration.get("webhooks") or []
        if (webhook["clientConfig"].get("service") or {}).get("namespace") in KNATIVE_NAMESPACES
    ]

    assert knatives
    assert [w["name"] for w in knatives if w["failurePolicy"] == "Fail" and _reaches_beyond_knative(w)] == []


def test_the_sink_binding_webhook_only_sees_what_opts_in(
    knative: install.Installed, kubectl: Kubectl
) -> None:
    webhook = get_json(kubectl, "mutatingwebhookconfiguration", "sinkbindings.webhook.sources.knative.dev")
    [hook] = webhook["webhooks"]
    included = {"key": "bindings.knative.dev/include", "operator": "In", "values": ["true"]}

    assert hook["failurePolicy"] == "Ignore"
    assert included in hook["namespaceSelector"]["matchExpressions"]
    assert included in hook["objectSelector"]["matchExpressions"]


@pytest.fixture(scope="module")
def hello(
    knative: install.Installed, jobfn_images: ProjectImages, api_client: client.ApiClient, kubectl: Kubectl
) -> Iterator[Route]:
    """A public Knative Service (a functions-framework hello) kept at one pod, behind Traefik."""
    namespace = create_namespace(api_client, "knative-ingress")
    service = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": "hello", "namespace": namespace},
        "spec": {
            "template": {
                "metadata": {"annotations": {"autoscaling.knative.dev/min-scale": "1"}},
                "spec": {
                    "containers": [
                        {
                            "image": jobfn_images.function,
                            "command": ["python3", "-m", "http.server", "8080"],
                            "ports": [{"containerPort": 8080}],
                            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                        }
                    ]
                },
            }
        },
    }
    kubectl("apply", "-f", "-", input=json.dumps(service))
    wait_ready(kubectl, "ksvc/hello", namespace)
    yield Route.of(kubectl, namespace, "hello", public=True)
    client.CoreV1Api(api_client).delete_namespace(namespace, propagation_policy="Background")


def test_traefik_routes_a_public_knative_service_by_its_host(hello: Route) -> None:
    answer = hello.request("GET", "/")
    elsewhere = Route(hello.ingress_ip, "nobody.example.com").request("GET", "/")

    assert answer.status_code == 200
    assert elsewhere.status_code == 404  # Traefik's own answer: no router for that host


def test_traefik_adds_little_to_a_request_beside_the_revision_directly(
    hello: Route, kubectl: Kubectl
) -> None:
    """The measurement behind choosing Traefik: its hop's latency, over 200 requests each way."""
    namespace = hello.host.split(".")[1]
    revision = get_json(kubectl, "ksvc", "-n", namespace, "hello")["status"]["latestReadyRevisionName"]
    direct_ip = get_json(kubectl, "service", "-n", namespace, f"{revision}-private")["spec"]["clusterIP"]

    def through_traefik() -> float:
        return timed(lambda: hello.request("GET", "/").raise_for_status())[1]

    def direct() -> float:
        return in_cluster(
            lambda: timed(lambda: requests.get(f"http://{direct_ip}/", timeout=30).raise_for_status())[1]
        )

    samples: dict[str, list[float]] = {"traefik": [], "direct": []}
    for _ in range(200):
        samples["traefik"].append(through_traefik())
        samples["direct"].append(direct())
    medians = {way: statistics.median(s) * 1000 for way, s in samples.items()}
    p95 = {way: statistics.quantiles(s, n=20)[18] * 1000 for way, s in samples.items()}
    print(
        f"\nhello through Traefik: p50 {medians['traefik']:.2f} ms, p95 {p95['traefik']:.2f} ms; "
        f"to the revision's pods directly: p50 {medians['direct']:.2f} ms, p95 {p95['direct']:.2f} ms"
    )
    assert all(s > 0 for s in samples["traefik"])


def test_knatives_components_at_rest(knative: install.Installed) -> None:
    time.sleep(1)
    usages = usage.at_rest(samples=3, interval=5)
    print("\n" + usage.report(usages))
    assert {u.namespace for u in usages} == set(manifests.SYSTEM_NAMESPACES)
