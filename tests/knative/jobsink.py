"""Knative Eventing's JobSink in the local cluster, for the benchmark's side-by-side with jobfn's
CloudEvents door (and the tests): a JobSink object in a namespace of its own, and how a client
reaches it. Usable outside pytest:

    from tests.knative.jobsink import jobsink_in_cluster
    with jobsink_in_cluster() as sink:                     # installs Knative first if needed
        answer = sink.send(headers, body)                  # binary or structured CloudEvent: 202
        # or, from threads of your own in the cluster's network (services.in_cluster_soon):
        #   requests.post(sink.post_url, headers={..., "Authorization": f"Bearer {sink.token}"}, ...)

Its jobs run on a KWOK node (simulated pods), so any number can be submitted, as the
function's KWOK definitions do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from kubernetes import client, config

from tests.cluster import localcluster
from tests.deploy.conftest import service_account_token
from tests.helpers import SIMULATED_NODE, Kubectl, create_namespace, kubectl_runner
from tests.knative import install
from tests.knative.services import cluster_ip, in_cluster, wait_ready

NAME = "bench"
NAME_LABEL = "sinks.knative.dev/job-sink-name"  # on every Job a JobSink makes
CALLER = "caller"
TOKEN_SECONDS = 3 * 3600


@dataclass(frozen=True)
class JobSinkAddress:
    """A JobSink in the cluster, and how a client in the cluster's network reaches it.

    ``url`` is its address as Eventing publishes it (http://job-sink.knative-eventing.svc.
    cluster.local/<namespace>/<name>); ``post_url`` is the same path at the job-sink Service's
    ClusterIP, for clients in the cluster's network namespace, whose resolver knows no cluster
    names. Eventing's OIDC is on: each request needs a bearer token for ``audience``; ``token``
    is one (the namespace's caller ServiceAccount, three hours).
    """

    namespace: str
    name: str
    url: str
    post_url: str
    audience: str
    token: str

    def send(self, headers: dict[str, str], body: bytes) -> requests.Response:
        auth = {"Authorization": f"Bearer {self.token}"}
        return in_cluster(
            lambda: requests.post(self.post_url, data=body, headers={**headers, **auth}, timeout=30)
        )


def manifest(namespace: str) -> dict[str, Any]:
    pod_spec = {
        "restartPolicy": "Never",
        **SIMULATED_NODE,
        "containers": [
            {"name": "main", "image": "busybox:1.36", "command": ["cat", "/etc/jobsink-event/event"]}
        ],
    }
    template = {"metadata": {"annotations": {"jobfn.test/run-duration-ms": "200"}}, "spec": pod_spec}
    return {
        "apiVersion": "sinks.knative.dev/v1alpha1",
        "kind": "JobSink",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": {"job": {"spec": {"backoffLimit": 0, "template": template}}},
    }


@contextmanager
def jobsink_in_cluster(
    api_client: client.ApiClient | None = None, kubectl: Kubectl | None = None
) -> Iterator[JobSinkAddress]:
    """A JobSink, ready, in a fresh namespace (deleted afterwards); Knative installed if needed."""
    install.install()
    kubectl = kubectl or kubectl_runner(localcluster.kubectl_path(), localcluster.kubeconfig_path())
    with config.new_client_from_config(config_file=str(localcluster.kubeconfig_path())) as own:
        api = api_client or own
        namespace = create_namespace(api, "knative-jobsink")
        core = client.CoreV1Api(api)
        try:
            core.create_namespaced_service_account(namespace, {"metadata": {"name": CALLER}})
            kubectl("apply", "-f", "-", input=json.dumps(manifest(namespace)))
            address = wait_ready(kubectl, f"jobsink/{NAME}", namespace)["status"]["address"]
            path = address["url"].split("://", 1)[1].split("/", 1)[1]
            ip = cluster_ip(kubectl, "knative-eventing", "job-sink")
            token = service_account_token(
                api, namespace, CALLER, audience=address["audience"], seconds=TOKEN_SECONDS
            )
            yield JobSinkAddress(
                namespace, NAME, address["url"], f"http://{ip}/{path}", address["audience"], token
            )
        finally:
            core.delete_namespace(namespace, propagation_policy="Background")
