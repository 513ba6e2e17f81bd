"""The state model: a Job (and, when known, its pods) → an AWS Batch state and a reason.

Pure functions of the API objects as the server returns them (JSON dicts), so the
same mapping serves the function, the reaper and the tests without a cluster.

    SUBMITTED  created; the Job controller has not started it yet
    RUNNABLE   waiting for resources: suspended (e.g. queued by Kueue) or pods unscheduled
    PENDING    started, no pod active: creating pods or waiting to retry a failed one
    STARTING   a pod is scheduled, its containers are not running yet (image pulls, ...)
    RUNNING    a pod's containers are running
    SUCCEEDED  condition Complete
    FAILED     condition Failed (or FailureTarget): backoff limit, deadline, pod failure
               policy, or terminated through jobfn (the recorded reason wins)

An array (Indexed) job also has one state per index, its children ``<job>:<index>``
(``_array_jobs``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from ._attempts import ARRAY, job_kind
from ._contract import (
    ARGUMENTS_ANNOTATION,
    CPU_REQUEST_RATIO_ANNOTATION,
    DEFINITION_LABEL,
    DEFINITION_REVISION_ANNOTATION,
    DELETION_TIME_ANNOTATION,
    FINAL_STATE_LABEL,
    OVERRIDES_ANNOTATION,
    QUEUE_LABEL,
    TAGS_ANNOTATION,
    TERMINATION_REASON_ANNOTATION,
)
from ._dependencies import is_waiting, recorded_dependencies
from ._failures import failure_of
from ._gate_state import (
    decided_exit,
    held_reason,
    n_to_n_dependencies,
    pod_index,
)
from ._submission import Attempt, JobEvent, JobSummary, JobView, PodView
from ._times import created_time, unix_time

SUBMITTED = "SUBMITTED"
PENDING = "PENDING"
RUNNABLE = "RUNNABLE"
STARTING = "STARTING"
RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
STATES = (SUBMITTED, PENDING, RUNNABLE, STARTING, RUNNING, SUCCEEDED, FAILED)
TERMINAL_STATES = (SUCCEEDED, FAILED)


_IMAGE_PROBLEMS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
_START_PROBLEMS = {"CreateContainerConfigError", "CreateContainerError", "CrashLoopBackOff",
                   "RunContainerError"}  # fmt: skip

Json = Mapping[str, Any]


def _true_conditions(job: Json) -> dict[str, Json]:
    conditions = (job.get("status") or {}).get("conditions") or []
    return {c["type"]: c for c in conditions if c.get("status") == "True"}


def terminal_condition(job: Json) -> Json | None:
    """The condition that made the job terminal (Complete or Failed), if it is."""
    conditions = _true_conditions(job)
    return conditions.get("Complete") or conditions.get("Failed")


def is_terminal(job: Json) -> bool:
    """Whether the Job controller has finished the job (Complete or Failed)."""
    return terminal_condition(job) is not None


#: The jobs that may still be active: every job not labelled finished (``FINAL_STATE_LABEL``).
UNFINISHED_SELECTOR = f"!{FINAL_STATE_LABEL}"


def with_final_state(patch: dict[str, Any], job: Json) -> dict[str, Any]:
    """``patch`` to ``job``, carrying the index label too when the job is finished (one write)."""
    if is_terminal(job):
        metadata = patch.setdefault("metadata", {})
        metadata["labels"] = {**(metadata.get("labels") or {}), FINAL_STATE_LABEL: job_state(job)[0]}
    return patch


def candidates_selector(state: str | None) -> str | None:
    """A label requirement every job in ``state`` meets (None: every job may be).

    A finished job's state is final, so a job labelled with another finished state is
    skipped; a job without the label is examined, whatever its state.
    """
    if state is None:
        return None
    if state in TERMINAL_STATES:
        return f"{FINAL_STATE_LABEL} notin ({','.join(s for s in TERMINAL_STATES if s != state)})"
    return UNFINISHED_SELECTOR


def terminal_time(job: Json) -> int | None:
    """When the job became terminal, from its own record, not from when anyone looked."""
    condition = terminal_condition(job)
    if condition is None:
        return None
    status = job.get("status") or {}
    return unix_time(
        condition.get("lastTransitionTime") or status.get("completionTime") or condition.get("lastProbeTime")
    )


def job_state(job: Json, pods: Sequence[Json] | None = None, admission: str | None = None) -> tuple[str, str]:
    """The job's state and a reason a person understands; ``admission`` says why Kueue holds
    a suspended job, when its Workload was read (``_kueue.waiting_reason``)."""
    spec = job.get("spec") or {}
    status = job.get("status") or {}
    annotations = (job.get("metadata") or {}).get("annotations") or {}
    conditions = _true_conditions(job)
    if "Complete" in conditions:
        return SUCCEEDED, "Completed"
    failed = conditions.get("Failed") or conditions.get("FailureTarget")
    if failed is not None:
        terminated = annotations.get(TERMINATION_REASON_ANNOTATION)
        if terminated is not None:
            return FAILED, f"Terminated: {terminated}"
        return FAILED, _failure_reason(failed, spec, status, pods)
    if is_waiting(job):
        return PENDING, "Waiting for dependencies: " + ", ".join(recorded_dependencies(job))
    if spec.get("suspend"):
        return RUNNABLE, admission or "Waiting for quota: the job is suspended until it is admitted"
    if not status.get("startTime"):
        return SUBMITTED, "Waiting for the job controller to start the job"
    active = int(status.get("active") or 0)
    if active == 0:
        failures = int(status.get("failed") or 0)
        if failures:
            return PENDING, f"Retrying after {failures} failed attempt(s)"
        return PENDING, "Creating pods"
    if pods is None:
        if int(status.get("ready") or 0) > 0:
            return RUNNING, "Running"
        return STARTING, "Starting pods"
    return state_from_pods(pods)


def state_from_pods(pods: Sequence[Json]) -> tuple[str, str]:
    live = [p for p in pods if (p.get("status") or {}).get("phase") in ("Pending", "Running")]
    if any((p.get("status") or {}).get("phase") == "Running" for p in live):
        return RUNNING, "Running"
    held = [why for why in map(held_reason, live) if why]
    if held:
        return PENDING, held[0]
    for pod in live:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (container.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason in _IMAGE_PROBLEMS:
                return (
                    STARTING,
                    f"Image pull error ({reason}): {waiting.get('message', '')}".strip(),
                )
            if reason in _START_PROBLEMS:
                return (
                    STARTING,
                    f"Container cannot start ({reason}): {waiting.get('message', '')}".strip(),
                )
    for pod in live:
        for condition in (pod.get("status") or {}).get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                return RUNNABLE, f"Waiting for a node: {condition.get('message', 'unschedulable')}"
    return STARTING, "Starting containers"


def _failure_reason(condition: Json, spec: Json, status: Json, pods: Sequence[Json] | None) -> str:
    reason = condition.get("reason") or "Failed"
    decided = decided_exit(pods or [])
    if decided:
        return decided
    limit = "backoffLimit"
    if (
        reason == "FailedIndexes" and int(spec.get("completions") or 0) == 1
    ):  # a single job, counted per index
        reason, limit = "BackoffLimitExceeded", "backoffLimitPerIndex"
    if reason == "BackoffLimitExceeded":
        detail = (
            f"the job failed {status.get('failed', 0)} time(s), "
            f"more than its {limit} of {spec.get(limit, 6)} allows"
        )
        codes = sorted({code for code in exit_codes(pods or []) if code})
        if codes:
            detail += f"; exit code(s) {', '.join(map(str, codes))}"
        return f"{reason}: {detail}"
    if reason == "DeadlineExceeded":
        return (
            f"{reason}: the job ran longer than its activeDeadlineSeconds "
            f"({spec.get('activeDeadlineSeconds')} s)"
        )
    message = condition.get("message")
    return f"{reason}: {message}" if message else reason


def exit_codes(pods: Sequence[Json]) -> list[int]:
    codes = []
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            terminated = (container.get("state") or {}).get("terminated") or {}
            if "exitCode" in terminated:
                codes.append(int(terminated["exitCode"]))
    return codes


def deletion_time(job: Json) -> int | None:
    """The job's ``job_deletion_time_unix_sec``, or None when unset or unreadable."""
    raw = ((job.get("metadata") or {}).get("annotations") or {}).get(DELETION_TIME_ANNOTATION)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _recorded_object(job: Json, annotation: str) -> dict[str, Any]:
    raw = ((job.get("metadata") or {}).get("annotations") or {}).get(annotation)
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def submitted_arguments(job: Json) -> dict[str, Any]:
    """The arguments the job was submitted with, as recorded on it."""
    return _recorded_object(job, ARGUMENTS_ANNOTATION)


def submitted_tags(job: Json) -> dict[str, str]:
    """The tags the job was submitted with, as recorded on it."""
    return {str(k): str(v) for k, v in _recorded_object(job, TAGS_ANNOTATION).items()}


def _ratio(raw: str | None) -> Decimal:
    try:
        ratio = Decimal(raw) if raw else Decimal(1)
    except ArithmeticError:
        return Decimal(1)
    return ratio if 0 < ratio <= 1 else Decimal(1)


def _revision(raw: str | None) -> int | None:
    return int(raw) if raw is not None and raw.isdigit() else None


def submitted_overrides(job: Json) -> dict[str, Any]:
    """The overrides the job was submitted with, as recorded on it."""
    return _recorded_object(job, OVERRIDES_ANNOTATION)


def state_counts(views: Iterable[JobView]) -> JobSummary:
    """How many jobs are in each state, per definition and per queue (the dashboard's overview)."""
    by_definition: dict[str, dict[str, int]] = {}
    by_queue: dict[str, dict[str, int]] = {}
    total = 0
    for view in views:
        total += 1
        for groups, key in ((by_definition, view.definition), (by_queue, view.queue or "")):
            counts = groups.setdefault(key, dict.fromkeys(STATES, 0))
            counts[view.state] += 1
    return JobSummary(by_definition, by_queue, total)


def event_view(event: Json) -> JobEvent:
    involved = event.get("involvedObject") or {}
    when = (
        event.get("lastTimestamp")
        or event.get("eventTime")
        or (event.get("metadata") or {}).get("creationTimestamp")
    )
    return JobEvent(
        time=unix_time(when),
        type=str(event.get("type") or ""),
        reason=str(event.get("reason") or ""),
        object=f"{involved.get('kind', '')}/{involved.get('name', '')}",
        message=str(event.get("message") or ""),
        count=int(event.get("count") or 1),
    )


def _by_creation(pods: Sequence[Json]) -> list[Json]:
    return sorted(pods, key=lambda pod: (pod.get("metadata") or {}).get("creationTimestamp") or "")


def attempts(pods: Sequence[Json]) -> list[Attempt]:
    """One ``Attempt`` per pod whose first container has terminated, oldest first."""
    found = []
    for pod in _by_creation(pods):
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        container = statuses[0] if statuses else {}
        terminated = (container.get("state") or {}).get("terminated") or {}
        if "exitCode" not in terminated:
            continue
        found.append(
            Attempt(
                pod=str((pod.get("metadata") or {}).get("name") or ""),
                container=str(container.get("name") or ""),
                exit_code=int(terminated["exitCode"]),
                reason=str(terminated.get("reason") or ""),
                message=str(terminated.get("message") or ""),
                started=unix_time(terminated.get("startedAt") or (pod.get("status") or {}).get("startTime")),
                stopped=unix_time(terminated.get("finishedAt")),
                failure=failure_of(pod) if (pod.get("status") or {}).get("phase") == "Failed" else None,
            )
        )
    return found


def pod_view(pod: Json) -> PodView:
    metadata = pod.get("metadata") or {}
    status = pod.get("status") or {}
    containers = []
    for container in status.get("containerStatuses") or []:
        state_name, detail = next(iter((container.get("state") or {"waiting": {}}).items()))
        containers.append(
            {
                "name": container.get("name"),
                "state": state_name,
                "reason": detail.get("reason"),
                "exit_code": detail.get("exitCode"),
            }
        )
    return PodView(
        name=metadata.get("name", ""),
        phase=status.get("phase", "Unknown"),
        node=(pod.get("spec") or {}).get("nodeName"),
        index=pod_index(pod),
        containers=containers,
    )


def job_view(
    job: Json, pods: Sequence[Json] | None = None, created_now: bool = False, admission: str | None = None
) -> JobView:
    """Everything a front door may show about a job (``admission``: as ``job_state``)."""
    metadata = job.get("metadata") or {}
    spec = job.get("spec") or {}
    status = job.get("status") or {}
    state, reason = job_state(job, pods, admission)
    condition = terminal_condition(job)
    annotations = metadata.get("annotations") or {}
    kind = job_kind(job)
    return JobView(
        name=metadata.get("name", ""),
        uid=metadata.get("uid", ""),
        definition=(metadata.get("labels") or {}).get(DEFINITION_LABEL, ""),
        state=state,
        reason=reason,
        created=created_time(metadata),
        started=unix_time(status.get("startTime")),
        stopped=terminal_time(job) if condition else None,
        arguments=submitted_arguments(job),
        deletion_time=deletion_time(job),
        array_size=spec.get("completions") if kind == ARRAY else None,
        kind=kind,
        cpu_request_ratio=_ratio(annotations.get(CPU_REQUEST_RATIO_ANNOTATION)),
        n_to_n=tuple(n_to_n_dependencies(job)),
        labels=dict(metadata.get("labels") or {}),
        annotations=dict(metadata.get("annotations") or {}),
        succeeded=int(status.get("succeeded") or 0),
        failed=int(status.get("failed") or 0),
        active=int(status.get("active") or 0),
        pods=[pod_view(p) for p in pods] if pods is not None else None,
        attempts=attempts(pods) if pods is not None else None,
        termination_reason=annotations.get(TERMINATION_REASON_ANNOTATION) if state == FAILED else None,
        tags=submitted_tags(job),
        overrides=submitted_overrides(job),
        definition_revision=_revision(annotations.get(DEFINITION_REVISION_ANNOTATION)),
        depends_on=tuple(recorded_dependencies(job)),
        queue=(metadata.get("labels") or {}).get(QUEUE_LABEL),
        created_now=created_now,
    )
