"""``JobManager``: the façade k8s-jobs users know, built from the planner, the store and the state model.

A submission is planned purely (``_plan``), then the manager only does I/O: the
definition's cap check, the create, and on a name clash the read that tells a retry
from a different request. Reads and changes go through the store (``_store``); every
decision is a pure module's (``_status``, ``_retention``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ._array_jobs import array_child_views
from ._contract import (
    DEFINITION_LABEL,
    DELETION_TIME_ANNOTATION,
    IDEMPOTENCY_KEY_ANNOTATION,
    QUEUE_LABEL,
    REQUEST_HASH_ANNOTATION,
    TAGS_ANNOTATION,
    TERMINATION_REASON_ANNOTATION,
    JobSigner,
)
from ._decisions import GateDecider
from ._definitions import JobDefinition, JobDefinitions
from ._dependencies import is_waiting
from ._errors import (
    AlreadyExists,
    Conflict,
    InvalidRequest,
    JobNotFound,
    StaleWrite,
)
from ._job_cap import JobCaps
from ._kube import KubeApi
from ._kueue import is_queued, waiting_reason
from ._kueue_reader import KueueReader
from ._plan import DEFAULT_GATE_IMAGE, JobPlan, plan_submission
from ._policy import request_hash
from ._retention import RetentionChange
from ._settling import DependencySettler
from ._state_events import announced_patch
from ._status import (
    STATES,
    candidates_selector,
    event_view,
    is_terminal,
    job_view,
    state_counts,
    submitted_tags,
    with_final_state,
)
from ._store import WRITE_ATTEMPTS, Job, JobStore, PodLog
from ._submission import JobEvent, JobPage, JobSummary, JobView, Submission

PreCreateHook = Callable[[Job], Job | None]
#: States CancelJob stops; a job past them keeps running, as AWS Batch documents.
NOT_STARTED = ("SUBMITTED", "PENDING", "RUNNABLE")


class DefinitionsSource(Protocol):
    """Anything that yields the current definitions (``JobDefinitions``, ``DefinitionsFile``)."""

    def current(self) -> JobDefinitions: ...


@dataclass(frozen=True)
class JobDescription:
    """A job in full: its view (with pods), one view per index of an array job, the raw objects."""

    view: JobView
    children: list[JobView]
    """``<job>:<index>`` for each index of an array (Indexed) job; empty for other jobs."""
    manifest: Job
    pods: list[Job]


def _description(job: Job, pods: list[Job], admission: str | None) -> JobDescription:
    return JobDescription(job_view(job, pods, admission=admission), array_child_views(job, pods), job, pods)


class JobManager:
    """Submits, finds, describes, terminates and deletes the jobs of one signature.

    ``pre_create`` (as in k8s-jobs) may change the final Job manifest just before it
    is sent.
    """

    def __init__(
        self,
        namespace: str,
        signer: JobSigner,
        definitions: DefinitionsSource,
        api: KubeApi | None = None,
        pre_create: PreCreateHook | None = None,
        gate_image: str = DEFAULT_GATE_IMAGE,
    ) -> None:
        self.namespace = namespace
        self.gate_image = gate_image
        self.signer = signer
        self.definitions = definitions
        self.store = JobStore(api or KubeApi.from_environment(), namespace, signer)
        self.pre_create = pre_create
        self.caps = JobCaps(self.store)
        self.kueue = KueueReader(self.store.api, namespace)
        self.settler = DependencySettler(self.store, self.describe_job)
        self.decider = GateDecider(self.store)

    # --- submitting -----------------------------------------------------------------------
    def create_job(self, job_definition_name: str, template_args: Mapping[str, Any] | None = None) -> str:
        """k8s-jobs' call: create a job of a definition and return its name."""
        return self.submit(Submission(job_definition_name, dict(template_args or {}))).name

    def submit(self, submission: Submission, definition: JobDefinition | None = None) -> JobView:
        """Plan and create one job; with an idempotency key, at most one ever.
        ``definition`` (a registered one) is followed instead of the definitions' own."""
        definitions = self.definitions.current()
        if definition is not None:
            definitions = JobDefinitions([definition], definitions.queues)
        plan = plan_submission(
            definitions, submission, self.signer, self.namespace, gate_image=self.gate_image
        )
        states = self.settler.dependency_states(submission.depends_on, plan.manifest)
        manifest = plan.manifest
        if self.pre_create is not None:
            manifest = self.pre_create(manifest) or manifest
        cap = plan.definition.max_active_jobs
        if cap is None:
            return self._create(manifest, submission, states)
        return self.caps.within(
            plan.definition.name,
            plan.name,
            cap,
            create=lambda: self._create(manifest, submission, states),
            existing=lambda: self._existing_for_key(plan, submission),
        )

    def _create(self, manifest: Job, submission: Submission, states: dict[str, str | None]) -> JobView:
        try:
            created = self.store.create(manifest)
        except AlreadyExists:
            if submission.idempotency_key is None:
                raise  # a random name clashed: astronomically rare; let the caller retry
            name = manifest["metadata"]["name"]
            existing = self._existing(name, submission)
            if existing is None:
                raise Conflict(f"job {name!r} is being deleted; retry the submission shortly") from None
            return existing
        if is_waiting(created):
            # Its dependencies may have finished already: settle it now, not at the next pass.
            return replace(self.settler.settle(created, states)[1], created_now=True)
        return job_view(created, created_now=True)

    def _existing_for_key(self, plan: JobPlan, submission: Submission) -> JobView | None:
        return self._existing(plan.name, submission) if submission.idempotency_key is not None else None

    def _existing(self, name: str, submission: Submission) -> JobView | None:
        """The job an earlier submission with the same key created, if it exists."""
        try:
            job = self.store.get(name)
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
        return job_view(job)

    def settle_waiting_jobs(self, only_dependents_of: str | None = None) -> dict[str, int]:
        """Release or fail each job waiting for dependencies that have finished; counts by outcome."""
        return self.settler.settle_waiting(only_dependents_of)

    def decide_waiting_pods(self) -> dict[str, int]:
        """Decide each pod waiting in its gate (``_decisions``); counts by outcome."""
        return self.decider.decide_waiting()

    # --- reading --------------------------------------------------------------------------
    def fetch_jobs(
        self, job_definition_name: str | None = None, labels: Mapping[str, str] | None = None
    ) -> Iterator[Job]:
        """k8s-jobs' call: every job of this signature, streamed page by page (memory: one page)."""
        return self.store.jobs(job_definition_name, labels)

    def list_jobs(
        self,
        job_definition_name: str | None = None,
        state: str | None = None,
        labels: Mapping[str, str] | None = None,
        limit: int = 100,
        next_token: str | None = None,
        keep: Callable[[JobView], bool] | None = None,
        queue: str | None = None,
        name_prefix: str | None = None,
    ) -> JobPage:
        """A page of job views newest first, filtered by definition, labels, queue, state,
        name prefix and ``keep``.

        The one listing rule of every door: a filter never makes a page short while
        more jobs match, and the token is a position, never the API's own.
        """
        if state is not None and state not in STATES:
            raise InvalidRequest(f"unknown state {state[:40]!r}; use one of {', '.join(STATES)}")
        selected = dict(labels or {})
        if job_definition_name:
            selected[DEFINITION_LABEL] = job_definition_name
        if queue:
            selected[QUEUE_LABEL] = queue

        def wanted(view: JobView) -> bool:
            return (
                (state is None or view.state == state)
                and (not name_prefix or view.name.startswith(name_prefix))
                and (keep is None or keep(view))
            )

        return self.store.newest_first(selected, wanted, limit, next_token, candidates_selector(state))

    def summarize_jobs(self) -> JobSummary:
        """How many jobs are in each state, per definition and per queue: one pass over them all."""
        return state_counts(map(job_view, self.store.jobs()))

    def job_events(self, name: str, max_pods: int = 10) -> list[JobEvent]:
        """The Events about job ``name`` and its newest pods, oldest first."""
        self.store.get(name)  # JobNotFound unless it is one of ours
        pods = sorted(self.store.pods(name), key=lambda pod: pod["metadata"].get("creationTimestamp") or "")
        events = self.store.events_about("Job", name)
        for pod in pods[-max_pods:]:
            events += self.store.events_about("Pod", pod["metadata"]["name"])
        return sorted(map(event_view, events), key=lambda event: (event.time or 0, event.object))

    def read_job(self, name: str) -> Job:
        """The job called ``name``, if it carries this signature; else JobNotFound."""
        return self.store.get(name)

    def job_pods(self, name: str) -> list[Job]:
        """The pods the Job controller created for job ``name``."""
        return self.store.pods(name)

    def view_job(self, name: str) -> JobView:
        """State, reason, times and arguments of one job, without reading its pods."""
        return job_view(self.store.get(name))

    def describe_job(self, name: str) -> JobView:
        """State, reason, times, pods, attempts and arguments of one job."""
        job = self.store.get(name)
        return job_view(job, self.store.pods(name), admission=self._admissions([job]).get(name))

    def describe_jobs(self, names: Iterable[str]) -> dict[str, JobDescription]:
        """Each job that exists, in full (array children too), by name: a read per job, and
        their pods in one list per hundred jobs rather than one per job."""
        jobs: dict[str, Job] = {}
        for name in dict.fromkeys(names):
            try:
                jobs[name] = self.store.get(name)
            except JobNotFound:
                continue
        pods = self.store.pods_of(list(jobs.values()))
        admissions = self._admissions(list(jobs.values()))
        return {
            name: _description(job, pods[job["metadata"]["uid"]], admissions.get(name))
            for name, job in jobs.items()
        }

    def _admissions(self, jobs: list[Job]) -> dict[str, str]:
        """Why Kueue has not started each of ``jobs`` it holds, by job name, from their Workloads."""
        queued = [job for job in jobs if is_queued(job)]
        workloads = self.kueue.workloads_of(queued) if queued else {}
        return {j["metadata"]["name"]: waiting_reason(workloads.get(j["metadata"]["uid"])) for j in queued}

    def job_logs(
        self,
        name: str,
        pod: str | None = None,
        container: str | None = None,
        tail_lines: int | None = None,
        limit_bytes: int | None = 1 << 20,
    ) -> list[PodLog]:
        """Logs of each container of each pod of the job (or just the one asked for)."""
        return self.store.logs(name, pod, container, tail_lines, limit_bytes)

    # --- changing -------------------------------------------------------------------------
    def terminate_job(self, name: str, reason: str) -> JobView:
        """Stop a job: record the reason and let the Job controller fail it and remove its pods.

        The Job is kept (failed, with the reason) so it can still be described; the
        controller deletes its active pods, and the reaper deletes the Job after its
        retention. A job already finished is returned unchanged.
        """
        return self._terminate(name, reason, only_states=None)

    def cancel_job(self, name: str, reason: str) -> JobView:
        """AWS Batch's CancelJob: stop a job that has not started; a started one keeps running."""
        return self._terminate(name, reason, only_states=NOT_STARTED)

    def _terminate(self, name: str, reason: str, only_states: tuple[str, ...] | None) -> JobView:
        patch = {
            "metadata": {"annotations": {TERMINATION_REASON_ANNOTATION: reason[:1024]}},
            # A deadline in the past makes the controller fail the job (DeadlineExceeded)
            # and delete its pods; a suspended job is resumed so that the deadline applies.
            "spec": {"activeDeadlineSeconds": 1, "suspend": False},
        }

        def change(job: Job) -> Mapping[str, Any] | None:
            view = job_view(job)
            if is_terminal(job) or (only_states is not None and view.state not in only_states):
                return None
            return patch

        return self._write(name, change)

    def change_tags(self, name: str, add: Mapping[str, str], remove: Iterable[str] = ()) -> JobView:
        """Add (or replace) and remove tags of job ``name`` (AWS's TagResource, UntagResource)."""
        removed = set(remove)

        def change(job: Job) -> Mapping[str, Any] | None:
            current = submitted_tags(job)
            tags = {k: v for k, v in current.items() if k not in removed} | dict(add)
            if tags == current:
                return None
            return {"metadata": {"annotations": {TAGS_ANNOTATION: json.dumps(tags, sort_keys=True)}}}

        return self._write(name, change)

    def change_retention(self, name: str, change: RetentionChange, now: int | None = None) -> JobView:
        """Hold, set or extend a job's deletion time, from the value it has when written."""
        clock = int(time.time()) if now is None else now

        def patch(job: Job) -> Mapping[str, Any]:
            wanted = change.deletion_time(job_view(job).deletion_time, clock)
            return {"metadata": {"annotations": {DELETION_TIME_ANNOTATION: str(wanted)}}}

        return self._write(name, patch)

    def _write(self, name: str, change: Callable[[Job], Mapping[str, Any] | None]) -> JobView:
        """Read, decide, write with the read's resourceVersion; again if someone wrote in between."""
        for attempt in range(WRITE_ATTEMPTS):
            job = self.store.get(name)
            patch = change(job)
            if patch is None:
                return job_view(job)
            try:
                return job_view(self.store.patch(name, patch, job["metadata"]["resourceVersion"]))
            except StaleWrite:
                if attempt == WRITE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def mark_deletion_time(
        self, job: Job, unix_time: int, also: Mapping[str, str] | None = None
    ) -> Job | None:
        """Set a deletion time (and ``also`` these annotations) on a job as it was read; the job
        as written, None if it changed since.

        The resourceVersion precondition means a value a user set meanwhile is never
        overwritten: the write fails and the next run sees the user's value. The
        written job carries the new resourceVersion, which a delete needs.
        """
        metadata = job["metadata"]
        annotations = {**(also or {}), DELETION_TIME_ANNOTATION: str(int(unix_time))}
        patch = with_final_state({"metadata": {"annotations": annotations}}, job)
        try:
            return self.store.patch(metadata["name"], patch, metadata["resourceVersion"])
        except (StaleWrite, JobNotFound):
            return None

    def record_announced_state(self, job: Job, state: str) -> Job | None:
        """Record on a job as it was read that its ``state`` was announced; None if it changed since."""
        metadata = job["metadata"]
        patch = with_final_state(announced_patch(state), job)
        try:
            return self.store.patch(metadata["name"], patch, metadata["resourceVersion"])
        except (StaleWrite, JobNotFound):
            return None

    def delete_job(self, job: Job) -> bool:
        """Delete a job as it was read (and its pods, in the background); False if gone or changed."""
        try:
            self.store.delete(job)
        except (StaleWrite, JobNotFound):
            return False
        return True

    def check_reachable(self) -> None:
        """Raise Unavailable unless jobs can be listed (for the readiness probe)."""
        next(self.store.pages(page_size=1))
