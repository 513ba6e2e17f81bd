"""The job store: the one place that reads and writes jobs and their pods, through the boundary.

Jobs are the API's own JSON dicts. Every write that could undo someone else's
change carries a precondition (uid, resourceVersion), so a concurrent change makes
it fail with ``StaleWrite`` instead of doing damage.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._contract import DEFINITION_LABEL, JOB_NAME_POD_LABEL, JOB_UID_POD_LABEL, JobSigner
from ._errors import InvalidRequest, JobNotFound, NotFound
from ._kube import KubeApi
from ._paging import MAX_PAGE_SIZE, decode_position, encode_position, newest_first_position
from ._policy import check_labels
from ._status import job_view
from ._submission import JobPage, JobView

Job = dict[str, Any]
#: Jobs per API list request: one page in memory at a time, whatever the total.
API_PAGE_SIZE = 500
# A read-modify-write that keeps losing to concurrent writers gives up after this many tries.
WRITE_ATTEMPTS = 3
# Job uids per pod list: keeps the label selector (and so the request line) near 4 KiB.
_UIDS_PER_POD_LIST = 100
_JOB_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")  # a DNS-1123 subdomain


@dataclass(frozen=True)
class PodLog:
    """The log text of one container of one pod."""

    pod: str
    container: str
    text: str
    truncated: bool = False


class JobStore:
    """The jobs of one signature in one namespace."""

    def __init__(self, api: KubeApi, namespace: str, signer: JobSigner) -> None:
        self.api = api
        self.namespace = namespace
        self.signer = signer
        self._jobs_path = f"/apis/batch/v1/namespaces/{namespace}/jobs"
        self._pods_path = f"/api/v1/namespaces/{namespace}/pods"

    # --- jobs -----------------------------------------------------------------------------
    def create(self, job: Mapping[str, Any]) -> Job:
        """Create a Job; ``AlreadyExists`` when its name is taken."""
        name = job["metadata"]["name"]
        return self.api.request("POST", self._jobs_path, body=dict(job), doing=f"create job {name!r}")

    def get(self, name: str) -> Job:
        """The job called ``name``, if it carries this signature; else ``JobNotFound``."""
        if len(name) > 253 or not _JOB_NAME.match(name):
            # Not a name any Job can have; asking the API would only echo it in a URL path.
            raise JobNotFound(f"job {name[:80]!r} not found")
        job = self.api.request("GET", f"{self._jobs_path}/{name}", doing=f"read job {name!r}", job_name=name)
        if not self.signer.is_signed(job):
            raise JobNotFound(f"job {name!r} not found")
        return job

    def pages(
        self,
        definition: str | None = None,
        labels: Mapping[str, str] | None = None,
        page_size: int = API_PAGE_SIZE,
        also: str | None = None,
    ) -> Iterator[list[Job]]:
        """Every job of this signature (of ``definition``, with ``labels``, meeting ``also``),
        one API page at a time."""
        if labels:
            check_labels(labels)
        if definition:
            check_labels({DEFINITION_LABEL: definition})
        query: list[tuple[str, Any]] = [
            ("labelSelector", self.signer.label_selector(definition, labels, also)),
            ("limit", page_size),
        ]
        while True:
            body = self.api.request("GET", self._jobs_path, query=query, doing="list jobs")
            yield body.get("items") or []
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                return
            query = [*query[:2], ("continue", token)]

    def jobs(
        self, definition: str | None = None, labels: Mapping[str, str] | None = None, also: str | None = None
    ) -> Iterator[Job]:
        """Every job of this signature, streamed (memory: one page)."""
        for page in self.pages(definition, labels, also=also):
            yield from page

    def newest_first(
        self,
        labels: Mapping[str, str] | None = None,
        keep: Callable[[JobView], bool] | None = None,
        limit: int = 100,
        next_token: str | None = None,
        also: str | None = None,
    ) -> JobPage:
        """The one listing rule: a full page of the views ``keep`` accepts, newest first.

        The API server lists in name order, so every page reads all the selected jobs
        (one API page at a time) and keeps the ``limit`` newest older than the token.
        The token is the last job's (creation time, name): jobs created while a caller
        pages never shift or repeat what a later page holds, and a filter never makes a
        page short while more jobs match.
        """
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        before = decode_position(next_token) if next_token else None
        eligible = (
            view
            for view in map(job_view, self.jobs(labels=labels, also=also))
            if (before is None or newest_first_position(view) < before) and (keep is None or keep(view))
        )
        newest = heapq.nlargest(limit + 1, eligible, key=newest_first_position)
        page = newest[:limit]
        token = encode_position(newest_first_position(page[-1])) if len(newest) > limit else None
        return JobPage(page, token)

    def patch(self, name: str, patch: Mapping[str, Any], resource_version: str | None = None) -> Job:
        """Merge-patch a job; with ``resource_version``, ``StaleWrite`` if it changed since."""
        body = dict(patch)
        if resource_version is not None:
            body["metadata"] = {**(body.get("metadata") or {}), "resourceVersion": resource_version}
        return self.api.request(
            "PATCH",
            f"{self._jobs_path}/{name}",
            body=body,
            content_type="application/merge-patch+json",
            doing=f"update job {name!r}",
            job_name=name,
        )

    def delete(self, job: Mapping[str, Any]) -> None:
        """Delete a job and, in the background, its pods, if it is still the one that was read.

        The uid and resourceVersion preconditions mean that a newer job reusing the
        name, or a job changed since it was read, is never deleted in its place
        (``StaleWrite``); a job already gone is ``JobNotFound``.
        """
        metadata = job["metadata"]
        options = {
            "propagationPolicy": "Background",
            "preconditions": {"uid": metadata["uid"], "resourceVersion": metadata["resourceVersion"]},
        }
        self.api.request(
            "DELETE",
            f"{self._jobs_path}/{metadata['name']}",
            body=options,
            doing=f"delete job {metadata['name']!r}",
            job_name=metadata["name"],
        )

    # --- pods -----------------------------------------------------------------------------
    def pods(self, name: str) -> list[Job]:
        """The pods the Job controller created for job ``name``."""
        query = [("labelSelector", f"{JOB_NAME_POD_LABEL}={name}")]
        body = self.api.request("GET", self._pods_path, query=query, doing=f"list pods of job {name!r}")
        pods: list[Job] = body.get("items") or []
        return pods

    def events_about(self, kind: str, name: str) -> list[Job]:
        """The Events the cluster recorded about the object ``kind``/``name`` in this namespace."""
        query = [("fieldSelector", f"involvedObject.kind={kind},involvedObject.name={name}")]
        body = self.api.request(
            "GET",
            f"/api/v1/namespaces/{self.namespace}/events",
            query=query,
            doing=f"list events of {name!r}",
        )
        events: list[Job] = body.get("items") or []
        return events

    def pods_of(self, jobs: Sequence[Mapping[str, Any]]) -> dict[str, list[Job]]:
        """The pods of many jobs, by job uid: one request per hundred jobs, not one per job."""
        pods: dict[str, list[Job]] = {job["metadata"]["uid"]: [] for job in jobs}
        uids = list(pods)
        for start in range(0, len(uids), _UIDS_PER_POD_LIST):
            chunk = uids[start : start + _UIDS_PER_POD_LIST]
            query = [("labelSelector", f"{JOB_UID_POD_LABEL} in ({','.join(chunk)})")]
            body = self.api.request(
                "GET", self._pods_path, query=query, doing=f"list pods of {len(chunk)} jobs"
            )
            for pod in body.get("items") or []:
                uid = ((pod.get("metadata") or {}).get("labels") or {}).get(JOB_UID_POD_LABEL)
                if uid in pods:
                    pods[uid].append(pod)
        return pods

    def container_log(
        self, pod: str, container: str, tail_lines: int | None = None, limit_bytes: int | None = 1 << 20
    ) -> PodLog:
        """The log of one container; empty while the container has not started."""
        query: list[tuple[str, Any]] = [("container", container)]
        if tail_lines is not None:
            query.append(("tailLines", tail_lines))
        if limit_bytes is not None:
            query.append(("limitBytes", limit_bytes))
        try:
            data = self.api.request_bytes(
                "GET",
                f"{self._pods_path}/{pod}/log",
                query=query,
                accept="*/*",  # the log is text whatever is asked; the server refuses text/plain
                doing=f"read logs of pod {pod!r}",
            )
        except (InvalidRequest, NotFound) as error:
            if "waiting" not in error.message:
                raise
            return PodLog(pod, container, "")  # a pod still starting has no logs yet
        truncated = limit_bytes is not None and len(data) >= limit_bytes
        return PodLog(pod, container, data.decode("utf-8", errors="replace"), truncated)

    # --- pods waiting in their gate (``_attempts``) ----------------------------------------
    def waiting_pods(self, label: str) -> list[Job]:
        """The pending pods of this namespace carrying label ``label`` (one list, however many jobs)."""
        query = [("labelSelector", label), ("fieldSelector", "status.phase=Pending")]
        body = self.api.request("GET", self._pods_path, query=query, doing="list pods waiting for a decision")
        pods: list[Job] = body.get("items") or []
        return pods

    def patch_pod(self, name: str, patch: Mapping[str, Any], resource_version: str) -> Job:
        """Merge-patch a pod as it was read; ``StaleWrite`` if it changed since."""
        body = {**patch, "metadata": {**(patch.get("metadata") or {}), "resourceVersion": resource_version}}
        return self.api.request(
            "PATCH",
            f"{self._pods_path}/{name}",
            body=body,
            content_type="application/merge-patch+json",
            doing=f"update pod {name!r}",
        )

    def logs(
        self,
        name: str,
        pod: str | None = None,
        container: str | None = None,
        tail_lines: int | None = None,
        limit_bytes: int | None = 1 << 20,
    ) -> list[PodLog]:
        """Logs of each container of each pod of the job (or just the one asked for)."""
        self.get(name)
        pods = self.pods(name)
        if pod is not None:
            pods = [p for p in pods if p["metadata"]["name"] == pod]
            if not pods:
                raise NotFound(f"job {name!r} has no pod {pod[:80]!r}")
        logs: list[PodLog] = []
        for item in pods:
            pod_name = item["metadata"]["name"]
            names = [c["name"] for c in item["spec"]["containers"]]
            if container is not None:
                if container not in names:
                    raise NotFound(f"pod {pod_name!r} has no container {container[:80]!r}")
                names = [container]
            logs.extend(self.container_log(pod_name, c, tail_lines, limit_bytes) for c in names)
        return logs
