"""An array job's children, one state per index, each ``<job>:<index>``; a multi-node job's
nodes, ``<job>#<index>``, alike.

Pure, like ``_status``, which it builds on: an index's state comes from the Job's record
of finished indexes first, then from the pods running it, then from the job as a whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ._attempts import ARRAY, MULTINODE, job_kind
from ._gate_state import decided_exit, pod_index
from ._status import (
    FAILED,
    PENDING,
    RUNNABLE,
    SUBMITTED,
    SUCCEEDED,
    TERMINAL_STATES,
    Json,
    attempts,
    exit_codes,
    job_view,
    pod_view,
    state_from_pods,
)
from ._submission import JobView
from ._times import unix_time


def index_set(text: str | None) -> set[int]:
    """The indexes of a Job's ``completedIndexes``/``failedIndexes`` (``"0,2-4"``)."""
    indexes: set[int] = set()
    for part in (text or "").split(","):
        first, _, last = part.strip().partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            indexes.update(range(int(first), int(last or first) + 1))
    return indexes


def array_child_views(job: Json, pods: Sequence[Json]) -> list[JobView]:
    """One view per index of an array job (``<job>:<index>``) or node of a multi-node job
    (``<job>#<index>``); [] for a single job.

    An index's state comes from the Job's record of finished indexes first (pods of
    finished indexes may already be gone), then from the pods running it, then from
    the job as a whole: a failed or terminated job fails every unfinished index.
    """
    spec = job.get("spec") or {}
    kind = job_kind(job)
    if kind not in (ARRAY, MULTINODE):
        return []
    separator = ":" if kind == ARRAY else "#"
    parent = job_view(job, pods)
    status = job.get("status") or {}
    completed = index_set(status.get("completedIndexes"))
    failed = index_set(status.get("failedIndexes"))
    by_index: dict[int, list[Json]] = {}
    for pod in pods:
        index = pod_index(pod)
        if index is not None:
            by_index.setdefault(index, []).append(pod)
    children = []
    for index in range(int(spec.get("completions") or 0)):
        own = sorted(
            by_index.get(index, []), key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or ""
        )
        state, reason = _index_state(index, own, parent, completed, failed)
        started = [unix_time((p.get("status") or {}).get("startTime")) for p in own]
        finished = [t for p in own for t in _finish_times(p)]
        children.append(
            replace(
                parent,
                name=f"{parent.name}{separator}{index}",
                state=state,
                reason=reason,
                started=min((t for t in started if t is not None), default=None),
                stopped=(max(finished, default=None) or parent.stopped) if state in TERMINAL_STATES else None,
                array_size=None,
                succeeded=int(index in completed),
                failed=sum(1 for p in own if (p.get("status") or {}).get("phase") == "Failed"),
                active=sum(1 for p in own if _is_live(p)),
                pods=[pod_view(p) for p in own],
                attempts=attempts(own),
                termination_reason=parent.termination_reason if state == FAILED else None,
                created_now=False,
            )
        )
    return children


def _index_state(
    index: int, pods: Sequence[Json], parent: JobView, completed: set[int], failed: set[int]
) -> tuple[str, str]:
    if index in completed:
        return SUCCEEDED, "Completed"
    if index in failed:
        decided = decided_exit(pods)
        if decided:
            return FAILED, decided
        codes = sorted({code for code in exit_codes(pods) if code})
        detail = f"; exit code(s) {', '.join(map(str, codes))}" if codes else ""
        return FAILED, f"Failed: index {index} used up its retries{detail}"
    if parent.state in TERMINAL_STATES:
        return parent.state, parent.reason
    live = [p for p in pods if _is_live(p)]
    if live:
        return state_from_pods(live)
    attempts = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Failed")
    if attempts:
        return PENDING, f"Retrying after {attempts} failed attempt(s)"
    if parent.state in (SUBMITTED, RUNNABLE):
        return parent.state, parent.reason
    return PENDING, "Waiting for a pod (the job runs at most its parallelism at once)"


def _is_live(pod: Json) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Pending", "Running")


def _finish_times(pod: Json) -> list[int]:
    times = []
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        finished = unix_time(((container.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        if finished is not None:
            times.append(finished)
    return times
