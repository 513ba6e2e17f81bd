"""The Kubernetes boundary: the only module that calls the Kubernetes client.

Requests go out with ``_preload_content=False`` and answers are read as plain JSON
dicts: the pure modules (``status``, ``retention``, ``policy``) work on the API's own
shape, and skipping the client's model (de)serialisation keeps a submission cheap.
Every ``ApiException`` and connection failure is translated into ``errors`` here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from . import status as job_status
from .contract import (
    DELETION_TIME_ANNOTATION,
    IDEMPOTENCY_KEY_ANNOTATION,
    JOB_NAME_POD_LABEL,
    REQUEST_HASH_ANNOTATION,
    TERMINATION_REASON_ANNOTATION,
    JobSigner,
    keyed_job_name,
    random_job_name,
)
from .definitions import JobDefinitions
from .errors import (
    Conflict,
    InvalidRequest,
    JobNotFound,
    KubernetesError,
    NotFound,
    TooManyRequests,
    Unavailable,
)
from .policy import check_labels, request_hash, shape_job
from .submission import JobPage, JobView, Submission

logger = logging.getLogger(__name__)

Job = dict[str, Any]
PreCreateHook = Callable[[Job], Job | None]
_MAX_IDEMPOTENCY_KEY = 255
_LIST_PAGE = 500


class DefinitionsSource(Protocol):
    """Anything that yields the current definitions (``JobDefinitions``, ``DefinitionsFile``)."""

    def current(self) -> JobDefinitions: ...


@dataclass(frozen=True)
class PodLog:
    """The log text of one container of one pod."""

    pod: str
    container: str
    text: str
    truncated: bool = False


def api_client_from_environment(pool_size: int = 32) -> k8s.ApiClient:
    """An API client: in-cluster when running in a pod, else ``$KUBECONFIG`` or ~/.kube/config."""
    configuration = k8s.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and not os.environ.get("KUBECONFIG"):
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        k8s_config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = pool_size
    configuration.retries = False  # jobfn answers 503 and the caller retries; never hide it here
    return k8s.ApiClient(configuration)


def _api_message(error: ApiException) -> str:
    try:
        body = json.loads(error.body or "")
        return str(body.get("message") or error.reason)
    except (ValueError, AttributeError):
        return str(error.reason)


@contextlib.contextmanager
def translate_errors(doing: str, job_name: str | None = None) -> Iterator[None]:
    """Turn a Kubernetes client failure while ``doing`` something into a jobfn error."""
    try:
        yield
    except ApiException as error:
        message = _api_message(error)
        status = error.status or 0
        if status == 404:
            if job_name is not None:
                raise JobNotFound(f"job {job_name!r} not found") from error
            raise NotFound(f"not found while trying to {doing}: {message}") from error
        if status == 409:
            raise Conflict(f"conflict while trying to {doing}: {message}") from error
        if status in (400, 422):
            raise InvalidRequest(f"Kubernetes refused to {doing}: {message}") from error
        if status == 410:
            raise InvalidRequest(
                f"the page token has expired; list again from the start ({doing})"
            ) from error
        if status == 429:
            retry = (error.headers or {}).get("Retry-After", "1")
            raise TooManyRequests(
                f"Kubernetes API is throttling requests ({doing})",
                int(retry) if str(retry).isdigit() else 1,
            ) from error
        if status == 0 or status >= 500:
            raise Unavailable(f"Kubernetes API failed to {doing}: {message}") from error
        raise KubernetesError(f"Kubernetes API refused to {doing} ({status}): {message}") from error
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise Unavailable(f"Kubernetes API cannot be reached to {doing}: {error}") from error


def _json(response: Any) -> Any:
    return json.loads(response.data)


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
        self._batch = k8s.BatchV1Api(self.api_client)
        self._core = k8s.CoreV1Api(self.api_client)
        self._timeout = request_timeout
        self._cap_lock = threading.Lock()

    # --- submitting -----------------------------------------------------------------------
    def create_job(self, job_definition_name: str, template_args: Mapping[str, Any] | None = None) -> str:
        """k8s-jobs' call: create a job of a definition and return its name."""
        return self.submit(Submission(job_definition_name, dict(template_args or {}))).name

    def submit(self, submission: Submission) -> JobView:
        """Validate, render and create one job; with an idempotency key, at most one ever."""
        definition = self.definitions.current().get(submission.definition)
        arguments = definition.validate(submission.arguments)
        key = submission.idempotency_key
        if key is not None and not 0 < len(key) <= _MAX_IDEMPOTENCY_KEY:
            raise InvalidRequest(f"an idempotency key must be 1 to {_MAX_IDEMPOTENCY_KEY} characters")
        if submission.queue is not None:
            check_labels({"queue": submission.queue})
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
                response = self._batch.create_namespaced_job(
                    self.namespace,
                    job,  # type: ignore[arg-type]  # a plain dict is sent as it is
                    _preload_content=False,
                    _request_timeout=self._timeout,
                )
        except Conflict:
            if submission.idempotency_key is None:
                raise  # a random name clashed: astronomically rare; let the caller retry
            existing = self._existing_for_key(name, submission)
            if existing is None:
                raise Conflict(f"job {name!r} is being deleted; retry the submission shortly") from None
            return existing
        return job_status.job_view(_json(response), created_now=True)

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
        token: str | None = None
        while True:
            page, token = self.list_page(job_definition_name, labels, page_size, token)
            yield from page
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
        selector = self.signer.label_selector(job_definition_name, labels)
        kwargs: dict[str, Any] = {"label_selector": selector, "limit": limit}
        if token:
            kwargs["_continue"] = token
        with translate_errors("list jobs"):
            body = _json(
                self._batch.list_namespaced_job(
                    self.namespace, _preload_content=False, _request_timeout=self._timeout, **kwargs
                )
            )
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
        if not name or len(name) > 253:
            raise JobNotFound(f"job {name[:80]!r} not found")
        with translate_errors(f"read job {name!r}", job_name=name):
            job: Job = _json(
                self._batch.read_namespaced_job(
                    name, self.namespace, _preload_content=False, _request_timeout=self._timeout
                )
            )
        if not self.signer.is_signed(job):
            raise JobNotFound(f"job {name!r} not found")
        return job

    def job_pods(self, name: str) -> list[Job]:
        """The pods the Job controller created for job ``name``."""
        with translate_errors(f"list pods of job {name!r}"):
            body = _json(
                self._core.list_namespaced_pod(
                    self.namespace,
                    label_selector=f"{JOB_NAME_POD_LABEL}={name}",
                    _preload_content=False,
                    _request_timeout=self._timeout,
                )
            )
        pods: list[Job] = body.get("items") or []
        return pods

    def describe_job(self, name: str) -> JobView:
        """State, reason, times, pods and arguments of one job."""
        job = self.read_job(name)
        return job_status.job_view(job, self.job_pods(name))

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
        metadata = job["metadata"]
        patch = {
            "metadata": {
                "resourceVersion": metadata["resourceVersion"],
                "annotations": {DELETION_TIME_ANNOTATION: str(int(unix_time))},
            }
        }
        try:
            self._patch(metadata["name"], patch)
        except (Conflict, JobNotFound):
            return False
        return True

    def delete_job(self, job: Job) -> bool:
        """Delete a job and, in the background, its pods; False if it is gone or changed.

        The uid and resourceVersion preconditions mean that a newer job reusing the
        name, or a job whose deletion time was changed since it was read, is never
        deleted in its place.
        """
        metadata = job["metadata"]
        options = k8s.V1DeleteOptions(
            propagation_policy="Background",
            preconditions=k8s.V1Preconditions(
                uid=metadata["uid"], resource_version=metadata["resourceVersion"]
            ),
        )
        try:
            with translate_errors(f"delete job {metadata['name']!r}", job_name=metadata["name"]):
                self._batch.delete_namespaced_job(
                    metadata["name"],
                    self.namespace,
                    body=options,
                    _preload_content=False,
                    _request_timeout=self._timeout,
                )
        except (Conflict, JobNotFound):
            return False
        return True

    def _patch(self, name: str, patch: Mapping[str, Any]) -> Job:
        with translate_errors(f"update job {name!r}", job_name=name):
            job: Job = _json(
                self._batch.patch_namespaced_job(
                    name,
                    self.namespace,
                    dict(patch),
                    _preload_content=False,
                    _request_timeout=self._timeout,
                    _content_type="application/merge-patch+json",
                )
            )
        return job

    # --- supporting calls -----------------------------------------------------------------
    def read_config_map(self, namespace: str, name: str, key: str) -> str:
        """Key ``key`` of a ConfigMap (for definitions whose template lives in one)."""
        with translate_errors(f"read ConfigMap {name!r}"):
            body = _json(
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

    def check_reachable(self) -> None:
        """Raise Unavailable unless jobs can be listed (for the readiness probe)."""
        self.list_page(limit=1)
