"""The job store: the one place that reads and writes jobs and their pods, through the boundary.

Jobs are the API's own JSON dicts. Every write that could undo someone else's
change carries a precondition (uid, resourceVersion), so a concurrent change makes
it fail with ``StaleWrite`` instead of doing damage.
"""

from __future__ import annotations

import heapq
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._contract import CREATED_LABEL, DEFINITION_LABEL, JOB_NAME_POD_LABEL, JOB_UID_POD_LABEL, JobSigner
from ._errors import InvalidRequest, JobNotFound, NotFound
from ._kube import KubeApi
from ._paging import (
    MAX_PAGE_SIZE,
    Windows,
    decode_position,
    encode_position,
    newest_first_position,
)
from ._policy import check_labels
from ._status import job_view
from ._submission import JobPage, JobView

Job = dict[str, Any]
#: Jobs per API list request: one page in memory at a time, whatever the total.
API_PAGE_SIZE = 500
# A read-modify-write that keeps losing to concurrent writers gives up after this many tries.
WRITE_ATTEMPTS = 3
#: Jobs one read of a window of creation time may return (``newest_first``): a window that
#: holds more is narrowed instead of read whole.
WINDOW_LIMIT = 1000
#: Windows one listing reads before reading the rest whole (a handful is the rule).
MAX_WINDOWS = 24
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

    def __init__(
        self, api: KubeApi, namespace: str, signer: JobSigner, window_limit: int = WINDOW_LIMIT
    ) -> None:
        self.api = api
        self.window_limit = window_limit
        self.namespace = namespace
        self.signer = signer
        self._jobs_path = f"/apis/batch/v1/namespaces/{namespace}/jobs"
        self._pods_path = f"/api/v1/namespaces/{namespace}/pods"

    # --- jobs -----------------------------------------------------------------------------
    def create(self, job: Mapping[str, Any]) -> Job:
        """Create a Job, labelled with when (``CREATED_LABEL``); ``AlreadyExists`` when its name is taken."""
        metadata = job["metadata"]
        labels = {**(metadata.get("labels") or {}), CREATED_LABEL: str(_now_ms())}
        body = {**job, "metadata": {**metadata, "labels": labels}}
        return self.api.request("POST", self._jobs_path, body=body, doing=f"create job {metadata['name']!r}")

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
        selector = self._selector(definition, labels, also)
        token: str | None = None
        while True:
            body = self._list_once(selector, page_size, token)
            yield body.get("items") or []
            token = (body.get("metadata") or {}).get("continue")
            if not token:
                return

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

        Jobs stand in the order they were created (``created``, then the name). The API
        server lists in name order only: when one read does not return every candidate, the
        jobs labelled with their creation time are read in windows of that time, newest
        first (``_newest_labelled``), and the few without the label whole. The token is the
        last job's position: jobs created while a caller pages never shift or repeat what a
        later page holds, and a filter never makes a page short while more jobs match.
        """
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE_SIZE}")
        before = decode_position(next_token) if next_token else None

        def eligible(views: Iterable[JobView]) -> list[JobView]:
            return [
                view
                for view in views
                if (before is None or newest_first_position(view) < before) and (keep is None or keep(view))
            ]

        # Every candidate in one read first: in a small namespace, or for a rare state, the only one.
        body = self._list_once(self._selector(None, labels, also), self.window_limit)
        read = [job_view(job) for job in body.get("items") or []]
        if not (body.get("metadata") or {}).get("continue"):
            candidates = eligible(read)
        else:
            upper = None if before is None else before[0] + 1
            sample = [
                view.created
                for view in (eligible(read) or read)
                if CREATED_LABEL in view.labels
                and view.created is not None
                and (upper is None or view.created < upper)
            ]
            unlabelled = self.jobs(labels=labels, also=_all_of(also, f"!{CREATED_LABEL}"))
            candidates = eligible(map(job_view, unlabelled))
            candidates += self._newest_labelled(labels, also, eligible, limit + 1, upper, sample)
        newest = heapq.nlargest(limit + 1, candidates, key=newest_first_position)
        page = newest[:limit]
        token = encode_position(newest_first_position(page[-1])) if len(newest) > limit else None
        return JobPage(page, token)

    def _newest_labelled(
        self,
        labels: Mapping[str, str] | None,
        also: str | None,
        eligible: Callable[[Iterable[JobView]], list[JobView]],
        wanted: int,
        upper: int | None,
        sample: list[int],
    ) -> list[JobView]:
        """At least ``wanted`` eligible views of labelled jobs created before ``upper`` (all
        of them when fewer), and none unread that is newer than one returned.

        Windows of creation time are read newest first (``_paging.Windows`` chooses them),
        each by one request that returns at most ``window_limit`` jobs; ``sample`` holds the
        keys of jobs below ``upper`` an over-full read of them all returned (none: the
        first window has no bounds).
        """
        found: list[JobView] = []
        windows = Windows(upper, wanted, self.window_limit)
        if sample:
            windows.overfull(sample)
        for _ in range(MAX_WINDOWS):
            lower, upper = windows.lower, windows.upper
            body = self._list_once(
                self._selector(None, labels, _all_of(also, *_window(lower, upper))), self.window_limit
            )
            read = [job_view(job) for job in body.get("items") or []]
            if (body.get("metadata") or {}).get("continue"):
                if lower is None or upper is None or upper - lower > 1:
                    windows.overfull([view.created or 0 for view in (eligible(read) or read)])
                    continue
                # More jobs in one second than a read returns: read that one whole.
                read = [
                    job_view(job)
                    for job in self.jobs(labels=labels, also=_all_of(also, *_window(lower, upper)))
                ]
            views = eligible(read)
            found.extend(views)
            if windows.read_whole([view.created or 0 for view in views]):
                return found
        # Estimates this far off mean an order no window fits: read the rest whole.
        rest = self.jobs(labels=labels, also=_all_of(also, *_window(None, windows.upper)))
        return found + eligible(map(job_view, rest))

    def _selector(self, definition: str | None, labels: Mapping[str, str] | None, also: str | None) -> str:
        """The label selector of this signature's jobs: a caller's labels are checked as
        labels first (4xx), so none becomes selector syntax."""
        if labels:
            check_labels(labels)
        if definition:
            check_labels({DEFINITION_LABEL: definition})
        return self.signer.label_selector(definition, labels, also)

    def _list_once(self, selector: str, limit: int, token: str | None = None) -> dict[str, Any]:
        """One API page of the jobs ``selector`` selects (its ``metadata.continue`` says if more)."""
        query: list[tuple[str, Any]] = [("labelSelector", selector), ("limit", limit)]
        if token:
            query.append(("continue", token))
        body: dict[str, Any] = self.api.request("GET", self._jobs_path, query=query, doing="list jobs")
        return body

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


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _window(lower: int | None, upper: int | None) -> list[str]:
    """The label requirements of jobs created in the seconds [lower, upper) (None: unbounded)."""
    bounds = [f"{CREATED_LABEL}<{upper * 1000}"] if upper is not None else []
    if lower is not None:
        bounds.append(f"{CREATED_LABEL}>{lower * 1000 - 1}")
    return bounds if bounds else [CREATED_LABEL]


def _all_of(*requirements: str | None) -> str | None:
    """One ``also`` requirement string from several (None where there are none)."""
    return ",".join(r for r in requirements if r) or None
