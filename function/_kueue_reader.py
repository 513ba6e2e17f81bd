"""Kueue's objects read through the boundary: the Workloads of queued jobs, and a LocalQueue's
order (the visibility API) and usage, in the jobs namespace.

Pending workloads come from Kueue's visibility API (``visibility.kueue.x-k8s.io``): the only
place Kueue reports its queue's order, as it will admit (priority, then creation, per the
ClusterQueue's queueing strategy), computed from its own in-memory queues on each request.
A LocalQueue's status holds only counts and usage, and re-deriving the order from the
Workloads would be a second, diverging copy of Kueue's rules.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from ._errors import KubernetesError, NotFound, Unavailable
from ._kube import KubeApi
from ._kueue import WORKLOAD_JOB_UID_LABEL, QueueSnapshot, cpu_in_use, front_of_queue, workloads_by_job

KUEUE_API = "/apis/kueue.x-k8s.io/v1beta2"
VISIBILITY_API = "/apis/visibility.kueue.x-k8s.io/v1beta2"
#: Jobs per Workload list: keeps the label selector (the request line) near 4 KiB.
_UIDS_PER_LIST = 100
#: AWS's GetJobQueueSnapshot shows the first 100 jobs of a queue.
FRONT_OF_QUEUE = 100

Json = dict[str, Any]


class KueueReader:
    """Kueue's view of the jobs of one namespace."""

    def __init__(self, api: KubeApi, namespace: str) -> None:
        self.api = api
        self.namespace = namespace

    def workloads_of(self, jobs: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
        """The Workloads Kueue made for ``jobs``, by job uid; {} where Kueue's API cannot be read
        (not installed, or no permission), as they only add detail to a job's reason."""
        uids = [job["metadata"]["uid"] for job in jobs]
        found: list[Json] = []
        for start in range(0, len(uids), _UIDS_PER_LIST):
            chunk = ",".join(uids[start : start + _UIDS_PER_LIST])
            try:
                body = self.api.request(
                    "GET",
                    f"{KUEUE_API}/namespaces/{self.namespace}/workloads",
                    query=[("labelSelector", f"{WORKLOAD_JOB_UID_LABEL} in ({chunk})")],
                    doing="list Kueue workloads",
                )
            except (NotFound, KubernetesError):
                return {}
            found.extend(body.get("items") or [])
        return workloads_by_job(found)

    def snapshot(self, local_queue: str) -> QueueSnapshot:
        """The LocalQueue's first FRONT_OF_QUEUE jobs in Kueue's order, and its CPUs in use."""
        front = front_of_queue(self.pending_workloads(local_queue))
        usage = cpu_in_use(self.local_queue(local_queue))
        return QueueSnapshot(front, usage, int(time.time() * 1000))

    def pending_workloads(self, local_queue: str) -> Json:
        """The first FRONT_OF_QUEUE pending workloads of a LocalQueue, in Kueue's order."""
        return self._read(
            f"{VISIBILITY_API}/namespaces/{self.namespace}/localqueues/{local_queue}/pendingworkloads",
            f"read the pending workloads of Kueue LocalQueue {local_queue!r}",
            [("limit", FRONT_OF_QUEUE)],
        )

    def local_queue(self, name: str) -> Json:
        return self._read(
            f"{KUEUE_API}/namespaces/{self.namespace}/localqueues/{name}", f"read Kueue LocalQueue {name!r}"
        )

    def _read(self, path: str, doing: str, query: list[tuple[str, Any]] | None = None) -> Json:
        try:
            return self.api.request("GET", path, query=query, doing=doing)
        except NotFound as error:
            # No such LocalQueue, or no Kueue (its API is not served): the operator's to fix.
            raise Unavailable(f"Kueue cannot {doing}: {error.message}") from error
