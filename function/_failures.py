"""A failed pod as AWS Batch reports a failed attempt: exit code, the container's reason and the
attempt's status reason.

evaluateOnExit rules written for AWS match these strings, so jobfn spells a Kubernetes
failure the way AWS spells the same event:

    the node was drained, preempted, lost     reason: the pod's (Evicted) or the disruption's
      or pressed (condition DisruptionTarget)    (PreemptionByScheduler, ...); status reason:
                                                 ``Host EC2 (instance <node>) terminated.``
    the container was OOM-killed              reason ``OutOfMemoryError: Container killed due to
                                                 memory usage``; ``Essential container in task exited``
    the container could not start             reason ``CannotStartContainerError: <message>``;
                                                 status reason ``Task failed to start``
    the pod's activeDeadlineSeconds passed    reason ``DeadlineExceeded``; ``Job attempt duration
                                                 exceeded timeout``
    the container exited non-zero             no reason; ``Essential container in task exited``
    the pod failed otherwise                  the pod's reason; ``<reason>: <message>``

Pure: the decision pass and the AWS answers read the same spelling from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._retry_rules import LOST_HOST, Failure

#: AWS's words for an attempt whose container exited (with any code) or was OOM-killed.
CONTAINER_EXITED = "Essential container in task exited"
OUT_OF_MEMORY = "OutOfMemoryError: Container killed due to memory usage"
CANNOT_START = "CannotStartContainerError"
FAILED_TO_START = "Task failed to start"
TIMED_OUT = "Job attempt duration exceeded timeout"
_NOT_STARTED = {"ContainerCannotRun", "StartError", "CreateContainerError", "RunContainerError"}

Json = Mapping[str, Any]


def failure_of(pod: Json) -> Failure:
    """How AWS Batch would report ``pod``'s failure (its first container is the job's)."""
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    terminated = ((statuses[0] if statuses else {}).get("state") or {}).get("terminated") or {}
    exit_code = int(terminated["exitCode"]) if "exitCode" in terminated else None
    disruption = next(
        (
            condition
            for condition in status.get("conditions") or []
            if condition.get("type") == "DisruptionTarget" and condition.get("status") == "True"
        ),
        None,
    )
    if disruption is not None:
        node = (pod.get("spec") or {}).get("nodeName") or "unknown"
        reason = str(status.get("reason") or disruption.get("reason") or "")
        return Failure(exit_code, reason, LOST_HOST.format(node=node))
    if status.get("reason") == "DeadlineExceeded":  # the pod's own activeDeadlineSeconds passed
        return Failure(exit_code, "DeadlineExceeded", TIMED_OUT)
    container_reason = str(terminated.get("reason") or "")
    if container_reason == "OOMKilled":
        return Failure(exit_code, OUT_OF_MEMORY, CONTAINER_EXITED)
    if container_reason in _NOT_STARTED:
        message = str(terminated.get("message") or container_reason)
        return Failure(exit_code, f"{CANNOT_START}: {message}"[:255], FAILED_TO_START)
    if exit_code is not None:
        return Failure(exit_code, "", CONTAINER_EXITED)
    pod_reason = str(status.get("reason") or "Failed")
    message = str(status.get("message") or "the pod failed before its container exited")
    return Failure(None, pod_reason, f"{pod_reason}: {message}"[:255])
