"""What a Job's pods say about the pass's gate (``_attempts``), read purely: which pod waits for a
decision and why, which exited its gate as decided, which jobs an N_TO_N child waits for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ._attempts import ARRAY, FAILURE_COUNT_ANNOTATION, job_kind
from ._contract import (
    DECISION_ANNOTATION,
    DECISION_REASON_ANNOTATION,
    N_TO_N_ANNOTATION,
    RETRY_RULES_ANNOTATION,
    SCHEDULING_GATE,
)

#: Set by the Job controller on each pod of an Indexed Job.
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"

Json = Mapping[str, Any]


def pod_index(pod: Json) -> int | None:
    """The completion index an Indexed Job's pod runs, if it has one."""
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(COMPLETION_INDEX_ANNOTATION)
    return int(raw) if raw is not None and str(raw).isdigit() else None


def decided_exit(pods: Sequence[Json]) -> str | None:
    """Why the pass made one of ``pods`` exit its gate (``_gate_decisions``), if it did."""
    for pod in pods:
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        if annotations.get(DECISION_ANNOTATION) == "exit":
            return str(annotations.get(DECISION_REASON_ANNOTATION) or "")
    return None


def held_reason(pod: Json) -> str | None:
    """Why a pod waits for the pass (``_attempts``): an N_TO_N child, or a retry under rules."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if annotations.get(DECISION_ANNOTATION):
        return None
    gates = (pod.get("spec") or {}).get("schedulingGates") or []
    if any(gate.get("name") == SCHEDULING_GATE for gate in gates):
        names = annotations.get(N_TO_N_ANNOTATION, "")
        return f"Waiting for dependencies (N_TO_N, child {pod_index(pod)}): {', '.join(json.loads(names or '[]'))}"
    if annotations.get(RETRY_RULES_ANNOTATION) and annotations.get(FAILURE_COUNT_ANNOTATION, "0") != "0":
        return "Waiting for the retry to be matched against evaluateOnExit"
    return None


def n_to_n_dependencies(job: Json) -> list[str]:
    """The array jobs whose child i each of ``job``'s children i waits for (AWS's N_TO_N)."""
    template = ((job.get("spec") or {}).get("template") or {}).get("metadata") or {}
    raw = (template.get("annotations") or {}).get(N_TO_N_ANNOTATION)
    try:
        names = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [str(name) for name in names] if isinstance(names, list) else []


def may_free_a_waiting_pod(job: Json) -> bool:
    """Whether a change of ``job`` may be what a pod waiting in its gate needs: a failed attempt
    under rules for the pass, or a finished child an N_TO_N child may wait for."""
    spec, status = job.get("spec") or {}, job.get("status") or {}
    template = (spec.get("template") or {}).get("metadata") or {}
    if (template.get("annotations") or {}).get(RETRY_RULES_ANNOTATION) and status.get("failed"):
        return True
    return job_kind(job) == ARRAY and bool(
        status.get("completedIndexes") or status.get("failedIndexes") or status.get("failed")
    )
