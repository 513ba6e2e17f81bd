"""Cold start from zero, as users feel it: a request to a revision at zero → its answer, through
Traefik and the activator, for the function (a submission → 201) and, beside it, a bare
functions-framework hello-world deployed as a Knative Service the same way (same image,
template, annotations and resources; bench/hello_world.py as its source). Figures only:
p50 / p95 over the starts are printed; targets belong to the benchmark (bench/).

Each start waits until both revisions are at zero (no pod left), then starts the function,
then the hello-world, one at a time so neither start shares the CPU with the other. The
function's jobs run on a KWOK node and its namespace has no Eventing objects, so nothing
but the test's request wakes it.
"""

from __future__ import annotations

import copy
import json
import statistics
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.cluster import localcluster
from tests.deploy.conftest import service_account_token
from tests.deploy.manifests import Manifest, is_knative, knative_service
from tests.helpers import ROOT, Kubectl, create_namespace, wait_for
from tests.knative import install
from tests.knative.conftest import CALLER
from tests.knative.jobfn import ProjectImages, remove_cluster_scoped, rendered, write_test_overlay
from tests.knative.services import Route, get_json, wait_ready

STARTS = 20
HELLO_SOURCE = ROOT / "bench" / "hello_world.py"


def hello_world(function: Manifest) -> list[Manifest]:
    """The hello-world Knative Service, made from the function's, and its source's ConfigMap."""
    service = copy.deepcopy(function)
    service["metadata"]["name"] = "hello"
    spec = service["spec"]["template"]["spec"]
    [container] = spec["containers"]
    container["command"] = ["functions-framework", "--target", "hello", "--source", "/hello/hello_world.py"]
    container["env"] = [e for e in container["env"] if e["name"] == "THREADS"]
    for probe in ("readinessProbe", "livenessProbe"):
        container[probe]["httpGet"]["path"] = "/"
    container["volumeMounts"] = [m for m in container["volumeMounts"] if m["name"] == "tmp"]
    container["volumeMounts"].append({"name": "hello", "mountPath": "/hello", "readOnly": True})
    spec["volumes"] = [v for v in spec["volumes"] if v["name"] == "tmp"]
    spec["volumes"].append({"name": "hello", "configMap": {"name": "hello-world"}})
    source = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "hello-world", "namespace": function["metadata"]["namespace"]},
        "data": {"hello_world.py": HELLO_SOURCE.read_text()},
    }
    return [source, service]


class Revisions:
    """The two Knative Services of the namespace, and whether their revisions are at zero."""

    def __init__(self, kubectl: Kubectl, namespace: str) -> None:
        self.kubectl, self.namespace = kubectl, namespace

    def at_zero(self) -> bool:
        deployments = get_json(self.kubectl, "deployments", "-n", self.namespace)["items"]
        pods = get_json(self.kubectl, "pods", "-n", self.namespace, "-l", "serving.knative.dev/service")[
            "items"
        ]
        # A pod being deleted is out of every endpoint; its queue-proxy drains for 30 s, idle.
        live = [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]
        return all(d["spec"].get("replicas", 0) == 0 for d in deployments) and not live


@pytest.fixture(scope="module")
def services(
    knative: install.Installed,
    jobfn_images: ProjectImages,
    api_client: client.ApiClient,
    kubectl: Kubectl,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Route, Route, str, Revisions]]:
    """deploy/'s function (no Eventing) and the hello-world, both Ready; their routes and a token."""
    namespace = create_namespace(api_client, "knative-cold-start")
    overlay = write_test_overlay(tmp_path_factory.mktemp("cold-start"), namespace, jobfn_images)
    manifests = rendered(localcluster.kubectl_path(), overlay)
    core = [m for m in manifests if not is_knative(m) and m["kind"] not in ("Deployment", "Service")]
    function = knative_service(manifests)
    try:
        for objects in (core, [function, *hello_world(function)]):
            kubectl(
                "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
            )
        client.CoreV1Api(api_client).create_namespaced_service_account(
            namespace, {"metadata": {"name": CALLER}}
        )
        for name in ("jobfn", "hello"):
            wait_ready(kubectl, f"ksvc/{name}", namespace)
        token = service_account_token(api_client, namespace, CALLER)
        yield (
            Route.of(kubectl, namespace, "jobfn"),
            Route.of(kubectl, namespace, "hello"),
            token,
            Revisions(kubectl, namespace),
        )
    finally:
        remove_cluster_scoped(kubectl, manifests)
        client.CoreV1Api(api_client).delete_namespace(namespace, propagation_policy="Background")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@pytest.mark.timeout(1800)
def test_cold_start_from_zero_of_the_function_beside_a_hello_world(
    services: tuple[Route, Route, str, Revisions],
) -> None:
    function, hello, token, revisions = services
    seconds: dict[str, list[float]] = {"jobfn": [], "hello-world": []}
    waited: list[float] = []
    for _ in range(STARTS):
        began = time.monotonic()
        wait_for(revisions.at_zero, timeout=120, interval=0.25, what="both revisions at zero")
        waited.append(time.monotonic() - began)
        body: dict[str, Any] = {"definition": "simulated", "arguments": {"tag": "cold-start"}}
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
        began = time.perf_counter()
        submitted = function.request("POST", "/jobs", json=body, headers=headers)
        seconds["jobfn"].append(time.perf_counter() - began)
        began = time.perf_counter()
        answered = hello.request("GET", "/")
        seconds["hello-world"].append(time.perf_counter() - began)
        assert submitted.status_code == 201, submitted.text
        assert answered.status_code == 200 and answered.text == "hello"

    lines = [
        f"\ncold start from zero over {STARTS} starts (request → answer, through Traefik and the activator):"
    ]
    for kind, samples in seconds.items():
        lines.append(
            f"  {kind:12} p50 {statistics.median(samples):5.2f} s  p95 {percentile(samples, 0.95):5.2f} s  "
            f"min {min(samples):5.2f} s  max {max(samples):5.2f} s"
        )
    lines.append(f"  back at zero after each start: median {statistics.median(waited):.1f} s of waiting")
    print("\n".join(lines))
