"""Cold start from zero, as users feel it: a request to a revision at zero → its answer, through
Traefik and the activator, for the function (a submission → 201) and, beside it, a bare
functions-framework hello-world deployed as a Knative Service the same way (same image,
template, annotations and resources; bench/hello_world.py as its source).

Shared by the test (tests/knative/test_cold_start.py, figures printed) and the benchmark
(`python -m bench --only knative-coldstart`, figures beside their ratio), outside pytest too:

    with cold_start_pairs(api_client, kubectl, work_dir, count=2) as pairs:
        starts = run_starts(pairs, 20)        # starts.seconds["jobfn"], ["hello-world"]

Each start waits until both revisions of a namespace are at zero (no pod left but those being
deleted), then starts the function, then the hello-world, one at a time so neither start
shares the CPU with the other; the namespaces (pairs) take turns, so one scales down while
another starts. The function's jobs run on a KWOK node and its namespace has no Eventing
objects, so nothing but the request wakes it.
"""

from __future__ import annotations

import copy
import json
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.cluster import localcluster
from tests.deploy.conftest import service_account_token
from tests.deploy.manifests import Manifest, is_knative, knative_service
from tests.helpers import ROOT, Kubectl, create_namespace, wait_for
from tests.knative.jobfn import ProjectImages, remove_cluster_scoped, rendered, write_test_overlay
from tests.knative.services import Route, get_json, timed, wait_ready

HELLO_SOURCE = ROOT / "bench" / "hello_world.py"
CALLER = "caller"  # the ServiceAccount whose token the function's REST door reviews
KINDS = ("jobfn", "hello-world")
TOKEN_SECONDS = 3 * 3600


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


@dataclass(frozen=True)
class Pair:
    """The function and the hello-world in one namespace, and whether both are at zero."""

    namespace: str
    function: Route
    hello: Route
    token: str
    kubectl: Kubectl

    def at_zero(self) -> bool:
        deployments = get_json(self.kubectl, "deployments", "-n", self.namespace)["items"]
        selector = "serving.knative.dev/service"
        pods = get_json(self.kubectl, "pods", "-n", self.namespace, "-l", selector)["items"]
        # A pod being deleted is out of every endpoint; its queue-proxy drains for 30 s, idle.
        live = [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]
        return all(d["spec"].get("replicas", 0) == 0 for d in deployments) and not live


@contextmanager
def cold_start_pairs(
    api_client: client.ApiClient,
    kubectl: Kubectl,
    images: ProjectImages,
    work_dir: Path,
    count: int,
) -> Iterator[list[Pair]]:
    """``count`` namespaces, each with deploy/'s function (no Eventing) and the hello-world,
    Ready; all removed afterwards. Knative must be installed (tests/knative/install.py)."""
    installed: list[tuple[str, list[Manifest]]] = []
    try:
        for index in range(count):
            namespace = create_namespace(api_client, "knative-cold-start")
            overlay = write_test_overlay(work_dir / f"cold-start-{index}", namespace, images)
            manifests = rendered(localcluster.kubectl_path(), overlay)
            installed.append((namespace, manifests))
            core = [m for m in manifests if not is_knative(m) and m["kind"] not in ("Deployment", "Service")]
            function = knative_service(manifests)
            for objects in (core, [function, *hello_world(function)]):
                listed = {"apiVersion": "v1", "kind": "List", "items": objects}
                kubectl("apply", "-f", "-", input=json.dumps(listed))
            account = {"metadata": {"name": CALLER}}
            client.CoreV1Api(api_client).create_namespaced_service_account(namespace, account)
        found = []
        for namespace, _ in installed:
            for name in ("jobfn", "hello"):
                wait_ready(kubectl, f"ksvc/{name}", namespace)
            routes = (Route.of(kubectl, namespace, "jobfn"), Route.of(kubectl, namespace, "hello"))
            token = service_account_token(api_client, namespace, CALLER, seconds=TOKEN_SECONDS)
            found.append(Pair(namespace, *routes, token, kubectl))
        yield found
    finally:
        for namespace, manifests in installed:
            remove_cluster_scoped(kubectl, manifests)
            client.CoreV1Api(api_client).delete_namespace(namespace, propagation_policy="Background")


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def one_start(pair: Pair) -> tuple[float, float]:
    """Seconds to the function's 201, then to the hello-world's 200, both from zero."""
    body: dict[str, Any] = {"definition": "simulated", "arguments": {"tag": "cold-start"}}
    headers = {"Authorization": f"Bearer {pair.token}", "Idempotency-Key": uuid.uuid4().hex}
    submitted, function_seconds = timed(
        lambda: pair.function.request("POST", "/jobs", json=body, headers=headers)
    )
    answered, hello_seconds = timed(lambda: pair.hello.request("GET", "/"))
    if submitted.status_code != 201:
        raise AssertionError(f"the function answered {submitted.status_code}, not 201: {submitted.text}")
    if answered.status_code != 200 or answered.text != "hello":
        raise AssertionError(f"the hello-world answered {answered.status_code}: {answered.text[:200]}")
    return function_seconds, hello_seconds


@dataclass
class Starts:
    """Seconds from request to answer, by kind (``KINDS``), and the waits for zero before each."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in KINDS})
    waited: list[float] = field(default_factory=list)

    def summary(self, kind: str) -> str:
        samples = self.seconds[kind]
        return (
            f"{kind:12} p50 {statistics.median(samples):5.2f} s  p95 {percentile(samples, 0.95):5.2f} s  "
            f"min {min(samples):5.2f} s  max {max(samples):5.2f} s"
        )


def run_starts(pairs: list[Pair], starts: int, say: Callable[[str], None] = lambda _message: None) -> Starts:
    """``starts`` starts of each kind from zero, the pairs taking turns."""
    found = Starts()
    for start in range(starts):
        pair = pairs[start % len(pairs)]  # the others scale down meanwhile
        began = time.monotonic()
        wait_for(pair.at_zero, timeout=120, interval=0.25, what=f"both revisions of {pair.namespace} at zero")
        found.waited.append(time.monotonic() - began)
        function_seconds, hello_seconds = one_start(pair)
        found.seconds["jobfn"].append(function_seconds)
        found.seconds["hello-world"].append(hello_seconds)
        say(
            f"start {start + 1}/{starts}: jobfn {function_seconds:.2f} s, hello-world {hello_seconds:.2f} s "
            f"(waited {found.waited[-1]:.1f} s for zero)"
        )
    return found
