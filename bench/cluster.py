"""The cluster side of the harness: the bench namespace, cleaning it, finished jobs, counters.

The API server is the local control plane from ``tests/cluster`` (started on demand),
or the cluster ``$KUBECONFIG`` names when it answers.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from jobfn._kube import KubeApi

from .workload import finished_job

T = TypeVar("T")
_METRIC_LINE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def _reachable(kubeconfig: str) -> bool:
    try:
        with config.new_client_from_config(config_file=kubeconfig) as api:  # type: ignore[no-untyped-call]
            client.VersionApi(api).get_code(_request_timeout=5)
    except Exception:
        return False
    return True


def locate_cluster() -> tuple[Path, str]:
    """(kubeconfig, kubectl): ``$KUBECONFIG`` if it answers, else the local cluster, started."""
    from tests.cluster import localcluster

    given = os.environ.get("KUBECONFIG")
    kubeconfig = Path(given) if given and _reachable(given) else localcluster.ensure_running()
    kubectl = localcluster.kubectl_path()
    return kubeconfig, str(kubectl)


def parallel(function: Callable[[T], object], items: Iterable[T], threads: int) -> None:
    """Call ``function`` on every item from ``threads`` threads; the first failure is raised."""
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(function, items):
            pass


@dataclass
class BenchCluster:
    """An admin connection to the cluster under test."""

    kubeconfig: Path
    kubectl: str
    api: client.ApiClient

    @classmethod
    def connect(cls) -> BenchCluster:
        kubeconfig, kubectl = locate_cluster()
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)  # type: ignore[no-untyped-call]
        configuration.connection_pool_maxsize = 32
        return cls(kubeconfig, kubectl, client.ApiClient(configuration))

    @property
    def batch(self) -> client.BatchV1Api:
        return client.BatchV1Api(self.api)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def ensure_namespace(self, name: str) -> None:
        """Create the namespace unless it exists (waiting out an earlier run's deletion)."""
        deadline = time.monotonic() + 120
        while True:
            try:
                namespace = self.core.read_namespace(name)
            except ApiException as error:
                if error.status != 404:
                    raise
                body = client.V1Namespace(
                    metadata=client.V1ObjectMeta(name=name, labels={"jobfn-bench": "true"})
                )
                self.core.create_namespace(body)
                return
            if namespace.status is None or namespace.status.phase != "Terminating":
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"namespace {name} is still terminating")
            time.sleep(0.5)

    def delete_namespace(self, name: str) -> None:
        try:
            self.core.delete_namespace(name, propagation_policy="Background")
        except ApiException as error:
            if error.status != 404:
                raise

    def namespace_annotations(self, name: str) -> dict[str, str] | None:
        """A namespace's annotations; None when it does not exist or is being deleted."""
        try:
            namespace = self.core.read_namespace(name)
        except ApiException as error:
            if error.status != 404:
                raise
            return None
        if namespace.status is not None and namespace.status.phase == "Terminating":
            return None
        return dict((namespace.metadata.annotations if namespace.metadata else None) or {})

    def annotate_namespace(self, name: str, annotations: dict[str, str]) -> None:
        self.core.patch_namespace(name, {"metadata": {"annotations": annotations}})

    def namespaces_with_prefix(self, prefix: str) -> list[str]:
        items = self.core.list_namespace(_request_timeout=60).items
        names = [str(item.metadata.name) for item in items if item.metadata is not None]
        return sorted(name for name in names if name.startswith(prefix))

    def count_jobs(self, namespace: str, selector: str) -> int:
        """How many jobs match (one list request, names only as far as the server allows)."""
        total, token = 0, None
        while True:
            page = self.batch.list_namespaced_job(
                namespace, label_selector=selector, limit=1000, _continue=token, _request_timeout=120
            )
            total += len(page.items)
            token = page.metadata._continue if page.metadata is not None else None
            if not token:
                return total

    def delete_jobs(self, namespace: str, selector: str, timeout: float = 300.0) -> None:
        """Delete every matching job in one request and wait until none is left.

        On a loaded machine the API server can give up on deleting 10,000 jobs in one
        request (504 after its own minute): the deletion goes on, and is asked again.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.batch.delete_collection_namespaced_job(
                    namespace,
                    label_selector=selector,
                    propagation_policy="Background",
                    _request_timeout=timeout,
                )
                break
            except ApiException as error:
                if error.status not in (500, 504) or time.monotonic() > deadline:
                    raise
        while self.batch.list_namespaced_job(namespace, label_selector=selector, limit=1).items:
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs {selector} in {namespace} still there after {timeout:.0f}s")
            time.sleep(0.2)

    def _send(self, method: str, path: str, body: Any, content_type: str = "application/json") -> None:
        """One request with a plain dict body (jobfn's own raw path, no model round trip).

        Creating 20,000 finished jobs is the harness's own cost, not a measured one;
        this keeps it from taking the CPU the cluster needs.
        """
        KubeApi(self.api, timeout=60).request_bytes(
            method, path, body=body, content_type=content_type, doing=f"{method} {path}"
        )

    def create_finished_jobs(self, namespace: str, signature: str, count: int, prefix: str) -> None:
        """``count`` jobs that have Complete=True, created and finished from 16 threads."""
        finished_at = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        jobs = f"/apis/batch/v1/namespaces/{namespace}/jobs"

        def create(index: int) -> None:
            job, status = finished_job(f"{prefix}-{index:05d}", namespace, signature, finished_at)
            self._send("POST", jobs, job)
            name = job["metadata"]["name"]
            self._send("PATCH", f"{jobs}/{name}/status", status, "application/merge-patch+json")

        parallel(create, range(count), threads=16)

    def job_requests_served(self) -> dict[str, int]:
        """The API server's own count of requests on batch/v1 jobs so far, by verb.

        Read from its /metrics, so a client's calls are counted the same way whoever
        makes them (the reaper reports its own count too; kubectl reports none).
        """
        host = self.api.configuration.host
        response: Any = self.api.rest_client.pool_manager.request("GET", f"{host}/metrics", timeout=30)
        counts: dict[str, int] = {}
        for line in response.data.decode().splitlines():
            match = _METRIC_LINE.match(line)
            if match is None:
                continue
            labels = dict(_LABEL.findall(match.group("labels")))
            if labels.get("group") == "batch" and labels.get("resource") == "jobs":
                verb = labels.get("verb", "?")
                counts[verb] = counts.get(verb, 0) + int(float(match.group("value")))
        return counts
