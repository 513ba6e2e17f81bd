"""Reaching Knative's services from the tests, as a client inside the cluster would.

The tests' HTTP clients run in the cluster's network namespace (threads joined to it), so
ClusterIPs are reachable through kube-proxy; the host's resolver cannot resolve
cluster.local names, so a Knative Service is called at Traefik's ClusterIP with its host
name in the Host header, which is exactly what an in-cluster caller's request looks like
once CoreDNS has followed Knative's ExternalName Service to Traefik.
"""

from __future__ import annotations

import functools
import json
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import requests

from tests.cluster import localcluster, netns
from tests.helpers import Kubectl, wait_for

T = TypeVar("T")
CLIENT_THREADS = 64
TRAEFIK_NAMESPACE = "traefik"
PRIVATE_INGRESS = "traefik-internal"  # cluster-local routes (deploy/'s function)
PUBLIC_INGRESS = "traefik"


@functools.cache
def _inside() -> netns.Inside:
    return netns.Inside(localcluster.netns_name(), workers=CLIENT_THREADS)


def in_cluster(function: Callable[[], T]) -> T:
    """Run ``function`` with its sockets inside the cluster's network (at once, when called
    from a function that already runs there)."""
    return _inside().call(function)


def in_cluster_soon(function: Callable[[], T]) -> Future[T]:
    """Start ``function`` inside the cluster's network (up to CLIENT_THREADS at once)."""
    return _inside().submit(function)


def get_json(kubectl: Kubectl, *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def cluster_ip(kubectl: Kubectl, namespace: str, service: str) -> str:
    ip: str = get_json(kubectl, "service", "-n", namespace, service)["spec"]["clusterIP"]
    return ip


def condition(resource: dict[str, Any], kind: str = "Ready") -> str | None:
    """The status (True / False / Unknown) of a Knative resource's condition, None if absent."""
    for item in (resource.get("status") or {}).get("conditions") or []:
        if item["type"] == kind:
            return str(item["status"])
    return None


def wait_ready(kubectl: Kubectl, resource: str, namespace: str, timeout: float = 180) -> dict[str, Any]:
    """A Knative resource (``ksvc/jobfn``, ``broker/default``, ...) once Ready; its object."""

    def ready() -> dict[str, Any] | None:
        found: dict[str, Any] = get_json(kubectl, resource, "-n", namespace)
        return found if condition(found) == "True" else None

    try:
        return wait_for(ready, timeout=timeout, interval=1, what=f"{resource} in {namespace} Ready")
    except AssertionError:
        described = kubectl("get", resource, "-n", namespace, "-o", "yaml", check=False).stdout
        raise AssertionError(
            f"{resource} in {namespace} not Ready within {timeout} s:\n{described}"
        ) from None


@dataclass(frozen=True)
class Route:
    """A Knative Service's host behind Traefik: requests to the ingress's ClusterIP with that Host."""

    ingress_ip: str
    host: str

    @classmethod
    def of(cls, kubectl: Kubectl, namespace: str, service: str, public: bool = False) -> Route:
        ingress = PUBLIC_INGRESS if public else PRIVATE_INGRESS
        url: str = get_json(kubectl, "ksvc", "-n", namespace, service)["status"]["url"]
        return cls(cluster_ip(kubectl, TRAEFIK_NAMESPACE, ingress), url.split("://", 1)[1])

    def request(self, method: str, path: str, timeout: float = 60, **kwargs: Any) -> requests.Response:
        """One request from inside the cluster (on a client thread of its own)."""
        headers = {"Host": self.host, **kwargs.pop("headers", {})}
        url = f"http://{self.ingress_ip}{path}"
        return in_cluster(lambda: requests.request(method, url, headers=headers, timeout=timeout, **kwargs))

    def request_soon(
        self, method: str, path: str, timeout: float = 60, **kwargs: Any
    ) -> Future[requests.Response]:
        headers = {"Host": self.host, **kwargs.pop("headers", {})}
        url = f"http://{self.ingress_ip}{path}"
        return in_cluster_soon(
            lambda: requests.request(method, url, headers=headers, timeout=timeout, **kwargs)
        )


def timed(function: Callable[[], T]) -> tuple[T, float]:
    began = time.perf_counter()
    result = function()
    return result, time.perf_counter() - began


def run_with_cluster_dns(*argv: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run a program in the cluster's network with cluster DNS (CoreDNS) as its resolver, as a
    pod's process: a private mount namespace whose /etc/resolv.conf names CoreDNS."""
    resolv = localcluster.state_dir() / "knative-resolv.conf"
    resolv.write_text(
        f"nameserver {netns.NODE_IP}\nsearch svc.cluster.local cluster.local\noptions ndots:5\n"
    )
    script = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'
    return subprocess.run(
        [*netns.enter_argv(localcluster.netns_name()), "unshare", "--mount", "--propagation", "private",
         "sh", "-c", script, str(resolv), *argv],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
