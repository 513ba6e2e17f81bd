"""Fixtures of the Knative tests: Knative Serving, Eventing and Traefik installed on demand
(as the ``kubeconfig`` fixture starts the cluster on demand, and left installed for the
next session), and deploy/ applied for real with `kubectl apply -k` (tests/knative/jobfn.py).

    knative      the installation (build once per machine, apply once per cluster)
    deployed     deploy/ in a namespace of its own, ready: the function, broker, Triggers,
                 SinkBinding, ApiServerSource, and a recorder of the events the tests expect
    jobsink      Eventing's JobSink in the cluster and a JobSink object: where to POST events
                 (tests/knative/jobsink.py; the benchmark can use it outside pytest too)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from kubernetes import client

from tests.cluster import localcluster
from tests.deploy.conftest import service_account_token
from tests.deploy.manifests import Manifest
from tests.helpers import Kubectl, create_namespace, wait_for
from tests.knative import install
from tests.knative.jobfn import (
    ProjectImages,
    project_images,
    remove_cluster_scoped,
    rendered,
    write_test_overlay,
)
from tests.knative.jobsink import JobSinkAddress, jobsink_in_cluster
from tests.knative.services import Route, cluster_ip, get_json, in_cluster_soon, wait_ready

CALLER = "caller"  # a workload of the namespace that calls the function and the broker
SESSION_TOKEN_SECONDS = 3 * 3600  # the tokens the session's fixtures hand out outlive the session
# First use on a machine builds Knative and Traefik (tens of minutes on two cores).
pytestmark = pytest.mark.timeout(3600)


@pytest.fixture(scope="session")
def knative(kubeconfig: Path) -> install.Installed:
    """Knative and Traefik in the local cluster, every component serving."""
    return install.install()


@pytest.fixture(scope="session")
def jobfn_images(knative: install.Installed) -> ProjectImages:
    return project_images()


@dataclass(frozen=True)
class Deployed:
    """deploy/ applied in ``namespace``: the function behind Traefik, the broker, the recorder."""

    namespace: str
    overlay: Path
    manifests: list[Manifest]
    route: Route  # the function's cluster-local host
    caller_token: str  # for the REST door (JOBFN_AUTH=tokenreview)
    kubectl: Kubectl
    api_client: client.ApiClient

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.caller_token}", **kwargs.pop("headers", {})}
        return self.route.request(method, path, headers=headers, **kwargs)

    def submit(self, definition: str, key: str | None = None, **arguments: Any) -> requests.Response:
        headers = {"Idempotency-Key": key} if key else {}
        body = {"definition": definition, "arguments": arguments}
        return self.request("POST", "/jobs", json=body, headers=headers)

    def revision(self) -> str:
        name: str = get_json(self.kubectl, "ksvc", "-n", self.namespace, "jobfn")["status"][
            "latestReadyRevisionName"
        ]
        return name

    def desired_pods(self) -> int:
        """The revision Deployment's replicas, as the autoscaler set them."""
        deployment = get_json(
            self.kubectl, "deployment", "-n", self.namespace, f"{self.revision()}-deployment"
        )
        return int(deployment["spec"].get("replicas", 0))

    def function_pods(self, *, terminating: bool = False) -> list[dict[str, Any]]:
        """The revision's pods that are not being deleted (with ``terminating``, those too)."""
        selector = f"serving.knative.dev/revision={self.revision()}"
        pods = get_json(self.kubectl, "pods", "-n", self.namespace, "-l", selector)["items"]
        return [pod for pod in pods if terminating or not pod["metadata"].get("deletionTimestamp")]

    def jobs(self, definition: str) -> list[dict[str, Any]]:
        selector = f"job_definition_name={definition}"
        items: list[dict[str, Any]] = get_json(self.kubectl, "jobs", "-n", self.namespace, "-l", selector)[
            "items"
        ]
        return items

    def wait_scaled_to_zero(self, timeout: float = 90, *, drained: bool = False) -> float:
        """Seconds until the revision has no pod left (the autoscaler chose zero and it is gone);
        ``drained``: none still terminating either."""
        began = time.monotonic()
        wait_for(
            lambda: self.desired_pods() == 0 and not self.function_pods(terminating=drained),
            timeout=timeout,
            interval=0.5,
            what=f"{self.namespace}'s function scaled to zero",
        )
        return time.monotonic() - began

    def recorded(self) -> list[dict[str, Any]]:
        """Every request the recorder got, oldest first (its log lines)."""
        log = self.kubectl("logs", "-n", self.namespace, "deployment/recorder").stdout
        return [json.loads(line) for line in log.splitlines() if line.startswith("{")]

    def broker(self) -> Broker:
        found = get_json(self.kubectl, "broker", "-n", self.namespace, "default")
        address = found["status"]["address"]
        path = "/" + address["url"].split("://", 1)[1].split("/", 1)[1]
        ip = cluster_ip(self.kubectl, "knative-eventing", "broker-ingress")
        token = service_account_token(self.api_client, self.namespace, CALLER, audience=address["audience"])
        return Broker(f"http://{ip}{path}", token)


@dataclass(frozen=True)
class Broker:
    """The namespace's broker ingress, and a token of the caller for its audience (OIDC)."""

    url: str
    token: str

    def send_soon(self, headers: dict[str, str], body: bytes) -> Future[requests.Response]:
        """POST one event with the caller's token (the answer may wait for every delivery)."""
        auth = {"Authorization": f"Bearer {self.token}"}
        return in_cluster_soon(
            lambda: requests.post(self.url, data=body, headers={**headers, **auth}, timeout=180)
        )


@pytest.fixture(scope="session")
def deployed(
    knative: install.Installed,
    jobfn_images: ProjectImages,
    api_client: client.ApiClient,
    kubectl: Kubectl,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployed]:
    """deploy/ with `kubectl apply -k` into a fresh namespace, everything Ready."""
    namespace = create_namespace(api_client, "knative-jobfn")
    overlay = write_test_overlay(tmp_path_factory.mktemp("knative-overlay"), namespace, jobfn_images)
    manifests = rendered(localcluster.kubectl_path(), overlay)
    core = client.CoreV1Api(api_client)
    try:
        kubectl("apply", "-k", str(overlay))
        core.create_namespaced_service_account(namespace, {"metadata": {"name": CALLER}})
        for resource in (
            "ksvc/jobfn",
            "broker/default",
            "sinkbinding/jobfn-reaper",
            "apiserversource/jobfn-job-changes",
        ):
            wait_ready(kubectl, resource, namespace)
        for trigger in get_json(kubectl, "triggers", "-n", namespace)["items"]:
            wait_ready(kubectl, f"trigger/{trigger['metadata']['name']}", namespace)
        kubectl("rollout", "status", "-n", namespace, "deployment/recorder", "--timeout=120s")
        yield Deployed(
            namespace,
            overlay,
            manifests,
            Route.of(kubectl, namespace, "jobfn"),
            service_account_token(api_client, namespace, CALLER, seconds=SESSION_TOKEN_SECONDS),
            kubectl,
            api_client,
        )
    finally:
        remove_cluster_scoped(kubectl, manifests)
        core.delete_namespace(namespace, propagation_policy="Background")


@pytest.fixture(scope="session")
def jobsink(
    knative: install.Installed, api_client: client.ApiClient, kubectl: Kubectl
) -> Iterator[JobSinkAddress]:
    """Eventing's JobSink with a JobSink object in a namespace of its own (tests/knative/jobsink.py)."""
    with jobsink_in_cluster(api_client, kubectl) as address:
        yield address
