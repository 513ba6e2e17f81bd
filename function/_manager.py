"""Jobs of one signature: submitted, found, described, terminated, marked and deleted.

``JobManager`` is the one place the function and the reaper act on Kubernetes; every
request it makes goes through ``kube`` (the client boundary), and every decision it
takes is a pure module's (``policy``, ``status``, ``retention``, ``paging``).
"""

from __future__ import annotations

import functools
import heapq
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes import client as k8s

from . import _kube as kube
from . import _status as job_status
from ._contract import (
    DEFINITION_LABEL,
    DELETION_TIME_ANNOTATION,
    IDEMPOTENCY_KEY_ANNOTATION,
    JOB_NAME_POD_LABEL,
    JOB_UID_POD_LABEL,
    REQUEST_HASH_ANNOTATION,
    TERMINATION_REASON_ANNOTATION,
    JobSigner,
    keyed_job_name,
    random_job_name,
)
from ._definitions import JobDefinitions
from ._errors import (
    Conflict,
    InvalidRequest,
    JobNotFound,
    NotFound,
    TooManyRequests,
)
from ._kube import api_client_from_environment, translate_errors
from ._paging import decode_position, encode_position, newest_first_position
from ._policy import check_caller_allowed, check_labels, request_hash, shape_job
from ._submission import MAX_IDEMPOTENCY_KEY_LENGTH, JobPage, JobView, Submission

logger = logging.getLogger(__name__)

Job = dict[str, Any]
PreCreateHook = Callable[[Job], Job | None]
_LIST_PAGE = 500
# Job uids per pod list: keeps the label selector (and so the request line) near 4 KiB.
_UIDS_PER_POD_LIST = 100
_JOB_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")  # a DNS-1123 subdomain


class DefinitionsSource(Protocol):
    """Anything that yields the current definitions (``JobDefinitions``, ``DefinitionsFile``)."""

    def current(self) -> JobDefinitions: ...


@dataclass(frozen=True)
class ReviewedToken:
    """Who a bearer token belongs to, as the TokenReview API says."""

    username: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class JobDescription:
    """A job in full: its view (with pods), one view per index of an array job, the raw objects."""

    view: JobView
    children: list[JobView]
    """``<job>:<index>`` for each index of an array (Indexed) job; empty for other jobs."""
    manifest: Job
    pods: list[Job]


@dataclass(frozen=True)
class PodLog:
    """The log text of one container of one pod."""

    pod: str
    container: str
    text: str
    truncated: bool = False


def _description(job: Job, pods: list[Job]) -> JobDescription:
    return JobDescription(job_status.job_view(job, pods), job_status.array_child_views(job, pods), job, pods)


class JobManager:
    """Creates, finds, describes, terminates and deletes the jobs of one signature.

    The same manager serves the function and the reaper. ``pre_create`` (as in
    k8s-jobs) may change the final Job manifest just before it is sent.
    """

    def __init__(
        self,
        namespace: str,
        signer: JobSigner,
        definitions: DefinitionsSource,
        api_client: k8s.ApiClient | None = None,
        pre_create: PreCreateHook | None = None,
        request_timeout: float = 10.0,
    ) -> None:
        self.namespace = namespace
        self.signer = signer
        self.definitions = definitions
        self.api_client = api_client or api_client_from_environment()
        self.pre_create = pre_create
        self._timeout = request_timeout
        self._cap_lock = threading.Lock()

    # The generated API classes are built on first use: importing CoreV1Api alone costs
    # about a second of CPU (hundreds of pydantic-validated methods), which a cold start
    # and every reaper run would pay; submitting, listing and reaping need none of them.
    @functools.cached_property
    def _core(self) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self.api_client)

    @functools.cached_property
    def _authentication(self) -> k8s.AuthenticationV1Api:
        return k8s.AuthenticationV1Api(self.api_client)

    @property
    def _jobs_path(self) -> str:
        return f"/apis/batch/v1/namespaces/{self.namespace}/jobs"

    # --- submitting -----------------------------------------------------------------------
    def create_job(self, job_definition_name: str, template_args: Mapping[str, Any] | None = None) -> str:
        """k8s-jobs' call: create a job of a definition and return its name."""
        return self.submit(Submission(job_definition_name, dict(template_args or {}))).name

    def submit(self, submission: Submission) -> JobView:
        """Validate, render and create one job; with an idempotency key, at most one ever."""
        definitions = self.definitions.current()
        definition = definitions.get(submission.definition)
        check_caller_allowed(definition, submission.caller, submission.caller_groups)
        arguments = definition.validate(submission.arguments)
        key = submission.idempotency_key
        if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH:
            raise InvalidRequest(f"an idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} characters")
        queue = None
        if submission.queue is not None:
            check_labels({"queue": submission.queue})
            queue = definitions.queues.get(submission.queue)
        name = keyed_job_name(definition.name, key) if key is not None else random_job_name(definition.name)
        job = shape_job(
            definition.template.render(arguments),
            name=name,
            namespace=self.namespace,
            signer=self.signer,
            definition=definition,
            submission=submission,
            arguments=arguments,
        )
        if queue is not None:
            queue.apply(job)
        if self.pre_create is not None:
            job = self.pre_create(job) or job
        if definition.max_active_jobs is not None:
            with self._cap_lock:
                active = self._count_active(definition.name)
                if active >= definition.max_active_jobs:
                    existing = self._existing_for_key(name, submission) if key is not None else None
                    if existing is not None:
                        return existing
                    raise TooManyRequests(
                        f"definition '{definition.name}' already has {active} active job(s), "
                        f"its cap is {definition.max_active_jobs}; retry when one finishes"
                    )
                return self._create(job, submission)
        return self._create(job, submission)

    def _create(self, job: Job, submission: Submission) -> JobView:
        name = job["metadata"]["name"]
        try:
            with translate_errors(f"create job {name!r}"):
                response = self._send("POST", self._jobs_path, body=job)
        except Conflict:
            if submission.idempotency_key is None:
                raise  # a random name clashed: astronomically rare; let the caller retry
            existing = self._existing_for_key(name, submission)
            if existing is None:
                raise Conflict(f"job {name!r} is being deleted; retry the submission shortly") from None
            return existing
        return job_status.job_view(kube.read_json(response), created_now=True)

    def _send(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, Any]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        """Every jobs and pods request goes through here (the reaper counts them here)."""
        return kube.send(
            self.api_client,
            method,
            path,
            query=query,
            body=body,
            content_type=content_type,
            timeout=self._timeout,
        )

    def _existing_for_key(self, name: str, submission: Submission) -> JobView | None:
        """The job an earlier submission with the same key created, if it exists."""
        try:
            job = self.read_job(name)
        except JobNotFound:
            return None
        annotations = job["metadata"].get("annotations") or {}
        if annotations.get(IDEMPOTENCY_KEY_ANNOTATION) != submission.idempotency_key:
            raise Conflict(f"job {name!r} exists but was not created with this idempotency key")
        if annotations.get(REQUEST_HASH_ANNOTATION) != request_hash(submission):
            raise Conflict(
                "this idempotency key was already used for a different request "
                f"(job {name!r}); use a new key for a new request"
            )
        if job["metadata"].get("deletionTimestamp"):
            return None
        return job_status.job_view(job)

    def _count_active(self, definition_name: str) -> int:
        return sum(1 for job in self.fetch_jobs(definition_name) if not job_status.is_terminal(job))

    # --- reading --------------------------------------------------------------------------
    def fetch_jobs(
        self,
        job_definition_name: str | None = None,
        labels: Mapping[str, str] | None = None,
        page_size: int = _LIST_PAGE,
    ) -> Iterator[Job]:
        """Every job of this signature, streamed page by page (memory: one page)."""
        for page in self.fetch_pages(job_definition_name, labels, page_size):
            yield from page

    def fetch_pages(
        self,
        job_definition_name: str | None = None,
        labels: Mapping[str, str] | None = None,
        page_size: int = _LIST_PAGE,
    ) -> Iterator[list[Job]]:
        """Every job of this signature, one page at a time."""
        token: str | None = None
        while True:
            page, token = self.list_page(job_definition_name, labels, page_size, token)
            yield page
            if not token:
                return

    def list_page(
        self,
        job_definition_name: str | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int = _LIST_PAGE,
        token: str | None = None,
    ) -> tuple[list[Job], str | None]:
        """One page of this signature's jobs and the token for the next."""
        if labels:
            check_labels(labels)
        if job_definition_name:
            check_labels({DEFINITION_LABEL: job_definition_name})
        selector = self.signer.label_selector(job_definition_name, labels)
        query: list[tuple[str, Any]] = [("labelSelector", selector), ("limit", limit)]
        if token:
            query.append(("continue", token))
        with translate_errors("list jobs"):
            body = kube.read_json(self._send("GET", self._jobs_path, query=query))
        return body.get("items") or [], (body.get("metadata") or {}).get("continue") or None

    def list_jobs(
        self,
        job_definition_name: str | None = None,
        state: str | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int = 100,
        next_token: str | None = None,
    ) -> JobPage:
        """A page of job views, filtered by definition, labels and state."""
        if state is not None and state not in job_status.STATES:
            raise InvalidRequest(f"unknown state {state[:40]!r}; use one of {', '.join(job_status.STATES)}")
        if not 1 <= limit <= 1000:
            raise InvalidRequest("limit must be between 1 and 1000")
        jobs, token = self.list_page(job_definition_name, labels, limit, next_token)
        views = [job_status.job_view(job) for job in jobs]
        if state is not None:
            views = [view for view in views if view.state == state]
        return JobPage(views, token)

    def read_job(self, name: str) -> Job:
        """The job called ``name``, if it carries this signature; else JobNotFound."""
        if len(name) > 253 or not _JOB_NAME.match(name):
            # Not a name any Job can have; asking the API would only echo it in a URL path.
            raise JobNotFound(f"job {name[:80]!r} not found")
        with translate_errors(f"read job {name!r}", job_name=name):
            job: Job = kube.read_json(self._send("GET", f"{self._jobs_path}/{name}"))
        if not self.signer.is_signed(job):
            raise JobNotFound(f"job {name!r} not found")
        return job

    def job_pods(self, name: str) -> list[Job]:
        """The pods the Job controller created for job ``name``."""
        path = f"/api/v1/namespaces/{self.namespace}/pods"
        with translate_errors(f"list pods of job {name!r}"):
            body = kube.read_json(
                self._send("GET", path, query=[("labelSelector", f"{JOB_NAME_POD_LABEL}={name}")])
            )
        pods: list[Job] = body.get("items") or []
        return pods

    def pods_of_jobs(
        self, jobs: Sequence[Job], per_request: int = _UIDS_PER_POD_LIST
    ) -> dict[str, list[Job]]:
        """The pods of many jobs, by job uid: one request per ``per_request`` jobs, not one per job."""
        pods: dict[str, list[Job]] = {job["metadata"]["uid"]: [] for job in jobs}
        uids = list(pods)
        path = f"/api/v1/namespaces/{self.namespace}/pods"
        for start in range(0, len(uids), per_request):
            chunk = uids[start : start + per_request]
            selector = f"{JOB_UID_POD_LABEL} in ({','.join(chunk)})"
            with translate_errors(f"list pods of {len(chunk)} jobs"):
                body = kube.read_json(self._send("GET", path, query=[("labelSelector", selector)]))
            for pod in body.get("items") or []:
                uid = ((pod.get("metadata") or {}).get("labels") or {}).get(JOB_UID_POD_LABEL)
                if uid in pods:
                    pods[uid].append(pod)
        return pods

    def view_job(self, name: str) -> JobView:
        """State, reason, times and arguments of one job, without reading its pods."""
        return job_status.job_view(self.read_job(name))

    def describe_job(self, name: str) -> JobView:
        """State, reason, times, pods and arguments of one job."""
        job = self.read_job(name)
        return job_status.job_view(job, self.job_pods(name))

    def describe_in_full(self, name: str) -> JobDescription:
        """One job with its pods, a view per index when it is an array job, and its manifest."""
        job = self.read_job(name)
        return _description(job, self.job_pods(name))

    def describe_many(self, names: Iterable[str]) -> dict[str, JobDescription]:
        """``describe_in_full`` of each job that exists, by name: a read per job, and their
        pods in one list per hundred jobs rather than one per job."""
        jobs: dict[str, Job] = {}
        for name in dict.fromkeys(names):
            try:
                jobs[name] = self.read_job(name)
            except JobNotFound:
                continue
        pods = self.pods_of_jobs(list(jobs.values()))
        return {name: _description(job, pods[job["metadata"]["uid"]]) for name, job in jobs.items()}

    def list_newest_first(
        self,
        labels: Mapping[str, str] | None = None,
        keep: Callable[[JobView], bool] | None = None,
        limit: int = 100,
        next_token: str | None = None,
    ) -> JobPage:
        """A page of the views ``keep`` accepts among the jobs ``labels`` select, newest first.

        The API server lists in name order, so every page reads all the selected jobs
        (one API page at a time) and keeps the ``limit`` newest that are older than the
        token. The token is the last job's (creation time, name), so jobs created while
        a caller pages never shift or repeat what a later page holds.
        """
        if not 1 <= limit <= 1000:
            raise InvalidRequest("limit must be between 1 and 1000")
        before = decode_position(next_token) if next_token else None
        eligible = (
            view
            for view in map(job_status.job_view, self.fetch_jobs(labels=labels))
            if (before is None or newest_first_position(view) < before) and (keep is None or keep(view))
        )
        newest = heapq.nlargest(limit + 1, eligible, key=newest_first_position)
        page = newest[:limit]
        return JobPage(
            page, encode_position(newest_first_position(page[-1])) if len(newest) > limit else None
        )

    def job_logs(
        self,
        name: str,
        pod: str | None = None,
        container: str | None = None,
        tail_lines: int | None = None,
        limit_bytes: int | None = 1 << 20,
    ) -> list[PodLog]:
        """Logs of each container of each pod of the job (or just the one asked for)."""
        self.read_job(name)
        pods = self.job_pods(name)
        if pod is not None:
            pods = [p for p in pods if p["metadata"]["name"] == pod]
            if not pods:
                raise NotFound(f"job {name!r} has no pod {pod[:80]!r}")
        logs = []
        for item in pods:
            pod_name = item["metadata"]["name"]
            names = [c["name"] for c in item["spec"]["containers"]]
            if container is not None:
                if container not in names:
                    raise NotFound(f"pod {pod_name!r} has no container {container[:80]!r}")
                names = [container]
            for container_name in names:
                logs.append(self._container_log(item, container_name, tail_lines, limit_bytes))
        return logs

    def _container_log(
        self, pod: Job, container: str, tail_lines: int | None, limit_bytes: int | None
    ) -> PodLog:
        name = pod["metadata"]["name"]
        kwargs: dict[str, Any] = {"container": container}
        if tail_lines is not None:
            kwargs["tail_lines"] = tail_lines
        if limit_bytes is not None:
            kwargs["limit_bytes"] = limit_bytes
        try:
            with translate_errors(f"read logs of pod {name!r}"):
                response: Any = self._core.read_namespaced_pod_log(
                    name,
                    self.namespace,
                    _preload_content=False,
                    _request_timeout=self._timeout,
                    **kwargs,
                )
        except (InvalidRequest, NotFound) as error:
            if "waiting" not in error.message:
                raise
            return PodLog(name, container, "")  # a pod still starting has no logs yet
        text = response.data.decode("utf-8", errors="replace")
        truncated = limit_bytes is not None and len(response.data) >= limit_bytes
        return PodLog(name, container, text, truncated)

    # --- changing -------------------------------------------------------------------------
    def terminate_job(self, name: str, reason: str) -> JobView:
        """Stop a job: record the reason and let the Job controller fail it and remove its pods.

        The Job is kept (failed, with the reason) so it can still be described; the
        controller deletes its active pods, and the reaper deletes the Job after its
        retention. A job already finished is returned unchanged.
        """
        job = self.read_job(name)
        if job_status.is_terminal(job):
            return job_status.job_view(job)
        patch = {
            "metadata": {"annotations": {TERMINATION_REASON_ANNOTATION: reason[:1024]}},
            # A deadline in the past makes the controller fail the job (DeadlineExceeded)
            # and delete its pods; a suspended job is resumed so that the deadline applies.
            "spec": {"activeDeadlineSeconds": 1, "suspend": False},
        }
        return job_status.job_view(self._patch(name, patch))

    def set_deletion_time(self, name: str, unix_time: int) -> JobView:
        """Hold or extend a job's retention: it is not deleted before ``unix_time``."""
        self.read_job(name)
        patch = {"metadata": {"annotations": {DELETION_TIME_ANNOTATION: str(int(unix_time))}}}
        return job_status.job_view(self._patch(name, patch))

    def mark_deletion_time(self, job: Job, unix_time: int) -> bool:
        """Set a deletion time on a job that has none; False if it changed since it was read.

        The resourceVersion precondition means a value a user set meanwhile is never
        overwritten: the write fails and the next run sees the user's value.
        """
        return self.mark_job(job, unix_time) is not None

    def mark_job(self, job: Job, unix_time: int) -> Job | None:
        """``mark_deletion_time``, returning the job as written (None if it changed since read).

        The written job carries the new resourceVersion, which a delete in the same
        reaper run needs as its precondition.
        """
        metadata = job["metadata"]
        patch = {
            "metadata": {
                "resourceVersion": metadata["resourceVersion"],
                "annotations": {DELETION_TIME_ANNOTATION: str(int(unix_time))},
            }
        }
        try:
            return self._patch(metadata["name"], patch)
        except (Conflict, JobNotFound):
            return None

    def delete_job(self, job: Job) -> bool:
        """Delete a job and, in the background, its pods; False if it is gone or changed.

        The uid and resourceVersion preconditions mean that a newer job reusing the
        name, or a job whose deletion time was changed since it was read, is never
        deleted in its place.
        """
        metadata = job["metadata"]
        options = {
            "propagationPolicy": "Background",
            "preconditions": {"uid": metadata["uid"], "resourceVersion": metadata["resourceVersion"]},
        }
        try:
            with translate_errors(f"delete job {metadata['name']!r}", job_name=metadata["name"]):
                self._send("DELETE", f"{self._jobs_path}/{metadata['name']}", body=options)
        except (Conflict, JobNotFound):
            return False
        return True

    def _patch(self, name: str, patch: Mapping[str, Any]) -> Job:
        with translate_errors(f"update job {name!r}", job_name=name):
            job: Job = kube.read_json(
                self._send(
                    "PATCH",
                    f"{self._jobs_path}/{name}",
                    body=dict(patch),
                    content_type="application/merge-patch+json",
                )
            )
        return job

    # --- supporting calls -----------------------------------------------------------------
    def read_config_map(self, namespace: str, name: str, key: str) -> str:
        """Key ``key`` of a ConfigMap (for definitions whose template lives in one)."""
        with translate_errors(f"read ConfigMap {name!r}"):
            body = kube.read_json(
                self._core.read_namespaced_config_map(
                    name,
                    namespace or self.namespace,
                    _preload_content=False,
                    _request_timeout=self._timeout,
                )
            )
        data = body.get("data") or {}
        if key not in data:
            raise NotFound(f"ConfigMap {name!r} has no key {key!r}")
        return str(data[key])

    def review_token(self, token: str) -> ReviewedToken | None:
        """Who ``token`` authenticates as (TokenReview API); None when it is not valid."""
        review = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token},
        }
        with translate_errors("review a bearer token"):
            body = kube.read_json(
                self._authentication.create_token_review(
                    review,  # type: ignore[arg-type]  # a plain dict is sent as it is
                    _preload_content=False,
                    _request_timeout=self._timeout,
                )
            )
        status = body.get("status") or {}
        user = status.get("user") or {}
        if not status.get("authenticated") or not user.get("username"):
            return None
        return ReviewedToken(str(user["username"]), tuple(str(g) for g in user.get("groups") or ()))

    def check_reachable(self) -> None:
        """Raise Unavailable unless jobs can be listed (for the readiness probe)."""
        self.list_page(limit=1)
