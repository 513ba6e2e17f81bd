"""Job state-change events: AWS Batch's "Batch Job State Change", as CloudEvents.

Each time a job's state (the state model's, ``_status``) differs from the one last
announced (annotation ``jobfn.dev/announced-state``), an event of type
``dev.jobfn.job.state-changed`` is sent, its data shaped like EventBridge's detail. The id
is ``<job uid>:<state>``: the same change sent twice is the same event, so consumers drop
redeliveries (delivery is at least once: the event is sent first, the state recorded after).

Two senders, as for dependencies: the reaper's run (level-triggered, so nothing is lost
while the function is at zero; it records what it sent) and the function's answer to an
ApiServerSource event (sooner, as a reply event; it records nothing, so the run may send
the same id again, which consumers drop).
"""

from __future__ import annotations

import json
from typing import Any

from ._contract import ANNOTATION_PREFIX, ANNOUNCED_STATE_ANNOTATION, AWS_JOB_NAME_TAG
from ._submission import JobView

STATE_CHANGED_EVENT_TYPE = "dev.jobfn.job.state-changed"


def unannounced_state(view: JobView) -> str | None:
    """The job's state when it has not been announced yet; None when it has."""
    return None if view.annotations.get(ANNOUNCED_STATE_ANNOTATION) == view.state else view.state


def announced_patch(state: str) -> dict[str, Any]:
    return {"metadata": {"annotations": {ANNOUNCED_STATE_ANNOTATION: state}}}


def state_change(view: JobView, namespace: str) -> tuple[dict[str, str], dict[str, Any]]:
    """The CloudEvent attributes and data announcing ``view``'s state."""
    attributes = {
        "type": STATE_CHANGED_EVENT_TYPE,
        "source": f"jobfn/{namespace}",
        "id": f"{view.uid}:{view.state}",
        "subject": view.name,
        "datacontenttype": "application/json",
    }
    return attributes, state_change_detail(view)


def state_change_detail(view: JobView) -> dict[str, Any]:
    """EventBridge's "Batch Job State Change" detail, from what jobfn knows of the job."""
    detail: dict[str, Any] = {
        "jobName": view.tags.get(AWS_JOB_NAME_TAG) or view.name,
        "jobId": view.name,
        "jobQueue": view.queue,
        "status": view.state,
        "statusReason": view.termination_reason if view.termination_reason is not None else view.reason,
        "jobDefinition": f"{view.definition}:{view.definition_revision or 1}",
        "parameters": {name: _text(value) for name, value in view.arguments.items()},
        "dependsOn": [{"jobId": name} for name in view.depends_on],
        "tags": {k: v for k, v in view.tags.items() if not k.startswith(ANNOTATION_PREFIX)},
        "createdAt": (view.created or 0) * 1000,
    }
    if view.started is not None:
        detail["startedAt"] = view.started * 1000
    if view.stopped is not None:
        detail["stoppedAt"] = view.stopped * 1000
    if view.array_size is not None:
        detail["arrayProperties"] = {"size": view.array_size}
    if view.attempts is not None:
        detail["attempts"] = [
            {
                "container": {
                    "exitCode": a.exit_code,
                    "reason": a.reason,
                    "logStreamName": f"{a.pod}/{a.container}",
                },
                **({"startedAt": a.started * 1000} if a.started is not None else {}),
                **({"stoppedAt": a.stopped * 1000} if a.stopped is not None else {}),
            }
            for a in view.attempts
        ]
        if view.attempts:
            detail["container"] = {
                "exitCode": view.attempts[-1].exit_code,
                "reason": view.attempts[-1].reason,
            }
    return detail


def _text(value: Any) -> str:
    # AWS's parameters are strings; jobfn's arguments are typed (JSON spells the rest).
    return value if isinstance(value, str) else json.dumps(value)
