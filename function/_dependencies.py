"""Job dependencies (AWS Batch's ``dependsOn``), decided purely.

A job that depends on others is created suspended, its dependencies recorded on it and a
label marking it as waiting, so the pass that settles waiting jobs lists only those. The
pass (the reaper's CronJob: level-triggered, so it works while the function is at zero)
and the function itself (right after a submission, and when told a job changed) both
settle a waiting job the same way:

    every dependency SUCCEEDED          → released: unsuspended, no longer waiting
    a dependency FAILED (or is gone)    → FAILED, the reason naming the dependency
    otherwise                           → still PENDING

Both write with the job's resourceVersion, so two settling at once cannot disagree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._contract import DEPENDS_ON_ANNOTATION, TERMINATION_REASON_ANNOTATION, WAITING_LABEL
from ._errors import InvalidRequest

#: AWS Batch's bound on dependsOn.
MAX_DEPENDENCIES = 20
#: The value of WAITING_LABEL on a job waiting for its dependencies.
WAITING_FOR_DEPENDENCIES = "dependencies"
SEQUENTIAL = "SEQUENTIAL"
N_TO_N = "N_TO_N"


@dataclass(frozen=True)
class Dependency:
    """One job this job waits for (``type`` as AWS: None, ``SEQUENTIAL`` or ``N_TO_N``)."""

    job: str
    type: str | None = None


@dataclass(frozen=True)
class Settlement:
    """What to do with a waiting job now."""

    action: Literal["release", "fail", "wait"]
    reason: str = ""


def check_dependencies(dependencies: Sequence[Dependency], own_name: str | None = None) -> None:
    """Refuse what dependsOn cannot ask for, naming it; InvalidRequest."""
    if len(dependencies) > MAX_DEPENDENCIES:
        raise InvalidRequest(f"dependsOn: at most {MAX_DEPENDENCIES} jobs, not {len(dependencies)}")
    for dependency in dependencies:
        if dependency.type not in (None, SEQUENTIAL, N_TO_N):
            raise InvalidRequest(f"dependsOn: type {str(dependency.type)[:20]!r} is not N_TO_N or SEQUENTIAL")
        if dependency.type == N_TO_N and not dependency.job:
            raise InvalidRequest(
                "dependsOn: N_TO_N needs the jobId of the array job whose children to wait for"
            )
        if dependency.job and dependency.job == own_name:
            raise InvalidRequest("dependsOn: a job cannot depend on itself")


def sequential(dependencies: Sequence[Dependency]) -> bool:
    """Whether an array job's children must run one at a time, in index order (AWS's SEQUENTIAL
    without a jobId)."""
    return any(d.type == SEQUENTIAL and not d.job for d in dependencies)


def waits_on(dependencies: Sequence[Dependency]) -> list[str]:
    """The names of the jobs to wait for as a whole, each once, in the order given."""
    return list(dict.fromkeys(d.job for d in dependencies if d.job and d.type != N_TO_N))


def n_to_n(dependencies: Sequence[Dependency]) -> list[str]:
    """The array jobs whose child i each child i waits for (AWS's N_TO_N), each once."""
    return list(dict.fromkeys(d.job for d in dependencies if d.job and d.type == N_TO_N))


def mark_waiting(job: dict[str, Any], dependencies: Sequence[Dependency]) -> None:
    """Make a planned Job wait for ``dependencies``: suspended, recorded, labelled."""
    names = waits_on(dependencies)
    if sequential(dependencies):
        job["spec"]["parallelism"] = 1  # the Job controller starts the lowest pending index first
    if not names:
        return
    metadata = job["metadata"]
    metadata.setdefault("labels", {})[WAITING_LABEL] = WAITING_FOR_DEPENDENCIES
    metadata.setdefault("annotations", {})[DEPENDS_ON_ANNOTATION] = json.dumps(names)
    job["spec"]["suspend"] = True


def recorded_dependencies(job: Mapping[str, Any]) -> list[str]:
    """The jobs ``job`` was submitted to wait for, as recorded on it."""
    raw = ((job.get("metadata") or {}).get("annotations") or {}).get(DEPENDS_ON_ANNOTATION)
    try:
        names = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [str(name) for name in names] if isinstance(names, list) else []


def is_waiting(job: Mapping[str, Any]) -> bool:
    labels = (job.get("metadata") or {}).get("labels") or {}
    return bool(
        labels.get(WAITING_LABEL) == WAITING_FOR_DEPENDENCIES and (job.get("spec") or {}).get("suspend")
    )


def settle(dependencies: Sequence[str], states: Mapping[str, str | None]) -> Settlement:
    """What a waiting job's dependencies' states (None: the job is gone) make of it."""
    for name in dependencies:
        state = states.get(name)
        if state is None:
            return Settlement("fail", f"dependency {name} no longer exists")
        if state == "FAILED":
            return Settlement("fail", f"dependency {name} FAILED")
    unfinished = [name for name in dependencies if states.get(name) != "SUCCEEDED"]
    if unfinished:
        return Settlement("wait", "waiting for " + ", ".join(unfinished))
    return Settlement("release")


def release_patch() -> dict[str, Any]:
    return {"metadata": {"labels": {WAITING_LABEL: None}}, "spec": {"suspend": False}}


def fail_patch(reason: str) -> dict[str, Any]:
    # As a terminate: a deadline in the past makes the Job controller fail it at once.
    return {
        "metadata": {"labels": {WAITING_LABEL: None}, "annotations": {TERMINATION_REASON_ANNOTATION: reason}},
        "spec": {"activeDeadlineSeconds": 1, "suspend": False},
    }
