"""What the pass decides for a pod waiting in its gate (``_attempts``), purely.

    an N_TO_N dependency's child i FAILED or is gone   → exit: this child fails, naming it
    an N_TO_N dependency's child i not finished        → wait (the pod stays scheduling-gated)
    a retry, and the rules' first match on the failed  → exit: this child fails, naming the rule
      attempt before it is EXIT
    otherwise (RETRY, or no rule matched: AWS's rule)  → run

The decision is written on the pod with its resourceVersion (``_decisions``), so two passes
deciding at once cannot disagree, and the gate reads it from a downward-API file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._attempts import FAILURE_COUNT_ANNOTATION, IGNORED_COUNT_ANNOTATION
from ._contract import (
    DECISION_ANNOTATION,
    DECISION_REASON_ANNOTATION,
    JOB_NAME_POD_LABEL,
    N_TO_N_ANNOTATION,
    RETRY_RULES_ANNOTATION,
    SCHEDULING_GATE,
)
from ._failures import failure_of
from ._gate_state import pod_index
from ._retry_rules import LOST_HOST, Failure, decide
from ._retry_rules import rules_from_text as rules_of
from ._status import FAILED, SUCCEEDED

Json = Mapping[str, Any]


@dataclass(frozen=True)
class Decision:
    """What to do with a waiting pod now."""

    action: Literal["run", "exit", "wait"]
    reason: str = ""


def _annotations(pod: Json) -> Mapping[str, str]:
    return (pod.get("metadata") or {}).get("annotations") or {}


def job_of(pod: Json) -> str:
    return str(((pod.get("metadata") or {}).get("labels") or {}).get(JOB_NAME_POD_LABEL) or "")


def attempt_of(pod: Json) -> int:
    """The attempt a pod of an Indexed Job with per-index retries runs as (1 for the first)."""
    counts = [
        _annotations(pod).get(name) or "0" for name in (FAILURE_COUNT_ANNOTATION, IGNORED_COUNT_ANNOTATION)
    ]
    return 1 + sum(int(count) for count in counts if count.isdigit())


def undecided(pod: Json) -> bool:
    """Whether a waiting pod still needs a decision: an N_TO_N child, or a retry under rules."""
    annotations = _annotations(pod)
    if annotations.get(DECISION_ANNOTATION):
        return False
    return bool(annotations.get(N_TO_N_ANNOTATION)) or (
        bool(annotations.get(RETRY_RULES_ANNOTATION)) and attempt_of(pod) > 1
    )


def n_to_n_children(pod: Json) -> list[str]:
    """The children (``<job>:<index>``) of other array jobs this pod's child waits for."""
    try:
        names = json.loads(_annotations(pod).get(N_TO_N_ANNOTATION) or "[]")
    except ValueError:
        names = []
    index = pod_index(pod)
    return [f"{name}:{index}" for name in names if isinstance(name, str)] if index is not None else []


def predecessor(pod: Json, pods_of_job: Sequence[Json]) -> Json | None:
    """The failed pod of the same index that ``pod`` replaces (the newest one)."""
    index = pod_index(pod)
    failed = [
        other
        for other in pods_of_job
        if pod_index(other) == index and (other.get("status") or {}).get("phase") == "Failed"
    ]
    return max(failed, key=lambda other: (attempt_of(other), (other.get("metadata") or {}).get("creationTimestamp") or ""), default=None)  # fmt: skip


def decide_pod(pod: Json, before: Json | None, children: Mapping[str, str | None]) -> Decision:
    """The decision for ``pod``: ``before`` is the failed attempt it replaces (None for a first
    attempt), ``children`` the state of each child it waits for (None: gone)."""
    for child in n_to_n_children(pod):
        state = children.get(child)
        if state is None:
            return Decision("exit", f"dependency {child} no longer exists")
        if state == FAILED:
            return Decision("exit", f"dependency {child} FAILED")
        if state != SUCCEEDED:
            return Decision("wait", f"waiting for {child}")
    rules = rules_of(_annotations(pod).get(RETRY_RULES_ANNOTATION))
    if rules and attempt_of(pod) > 1:
        # A failed pod of an Indexed Job is kept; one gone was deleted: evicted, preempted, its
        # node lost (the Job controller drops its finalizer once the retry exists).
        failure = (
            failure_of(before) if before is not None else Failure(None, "", LOST_HOST.format(node="unknown"))
        )
        action, rule = decide(rules, failure)
        if action == "EXIT" and rule is not None:
            detail = (
                f"{failure.status_reason} ({failure.reason})" if failure.reason else failure.status_reason
            )
            number = attempt_of(pod) - 1  # the attempt that failed
            return Decision("exit", f"evaluateOnExit: {rule.describe()} matched attempt {number}: {detail}")
    return Decision("run")


def decision_patch(pod: Json, decision: Decision) -> dict[str, Any]:
    """The pod patch recording ``decision`` and, for an N_TO_N child, lifting its scheduling gate."""
    patch: dict[str, Any] = {
        "metadata": {"annotations": {DECISION_ANNOTATION: decision.action,
                                     DECISION_REASON_ANNOTATION: decision.reason[:1024]}}
    }  # fmt: skip
    gates = (pod.get("spec") or {}).get("schedulingGates") or []
    if any(gate.get("name") == SCHEDULING_GATE for gate in gates):
        patch["spec"] = {"schedulingGates": [g for g in gates if g.get("name") != SCHEDULING_GATE] or None}
    return patch
