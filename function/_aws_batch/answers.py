"""jobfn's views of jobs, definitions and queues in the shapes AWS Batch answers with.

Pure: ``JobView`` s (with the Job manifest and pods where a detail needs them),
definitions and queues become botocore's ``JobDetail``, ``JobSummary``,
``JobDefinition`` and ``JobQueueDetail``. States and reasons are the core's; only
their spelling is AWS's: times in epoch milliseconds, ids and ARNs, all-string
parameters, and the reason a caller gave when terminating as ``statusReason``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from .._contract import ANNOTATION_PREFIX, GPU_RESOURCE, QUEUE_LABEL, TERMINATION_REASON_ANNOTATION
from .._definitions import JobDefinition
from .._errors import DefinitionError
from .._policy import TAGS_ANNOTATION
from .._queues import KUEUE_QUEUE_LABEL, JobQueue
from .._status import FAILED, STATES, pod_index, unix_time
from .._submission import JobView

Json = Mapping[str, Any]

#: The tag a job's AWS ``jobName`` is kept under (jobId is the Kubernetes name).
JOB_NAME_TAG = ANNOTATION_PREFIX + "aws-job-name"
#: Definitions have one revision: the one in the definitions file now.
REVISION = 1
_QUANTITY_SUFFIXES = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15, "E": Decimal(10) ** 18, "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}  # fmt: skip


@dataclass(frozen=True)
class Arns:
    """The ARNs of this deployment's jobs, definitions and queues."""

    region: str
    account: str

    def _arn(self, resource: str) -> str:
        return f"arn:aws:batch:{self.region}:{self.account}:{resource}"

    def job(self, job_id: str) -> str:
        return self._arn(f"job/{job_id}")

    def job_definition(self, name: str) -> str:
        return self._arn(f"job-definition/{name}:{REVISION}")

    def job_queue(self, name: str) -> str:
        return self._arn(f"job-queue/{name}")


# --- jobs ----------------------------------------------------------------------------------------
def job_tags(view: JobView) -> dict[str, str]:
    """The tags the job was submitted with (its jobName among them)."""
    try:
        tags = json.loads(view.annotations.get(TAGS_ANNOTATION) or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}


def job_name(view: JobView) -> str:
    """The jobName given at submission; a job submitted through another door is named by its id."""
    return job_tags(view).get(JOB_NAME_TAG) or view.name.partition(":")[0]


def created_at_ms(view: JobView) -> int:
    return (view.created or 0) * 1000


def status_reason(view: JobView) -> str:
    """The core's reason, except that a terminated job gives the caller's own words, as AWS does."""
    terminated = view.annotations.get(TERMINATION_REASON_ANNOTATION)
    return terminated if view.state == FAILED and terminated is not None else view.reason


def _job_fields(view: JobView, arns: Arns) -> dict[str, Any]:
    body: dict[str, Any] = {
        "jobArn": arns.job(view.name),
        "jobId": view.name,
        "jobName": job_name(view),
        "status": view.state,
        "statusReason": status_reason(view),
        "createdAt": created_at_ms(view),
        "jobDefinition": arns.job_definition(view.definition),
    }
    if view.started is not None:
        body["startedAt"] = view.started * 1000
    if view.stopped is not None:
        body["stoppedAt"] = view.stopped * 1000
    return body


def job_summary(
    view: JobView, arns: Arns, pods: Sequence[Json] = (), index: int | None = None
) -> dict[str, Any]:
    """A ListJobs ``JobSummary``: an array's size, a child's index, an exit code once known."""
    body = _job_fields(view, arns)
    if view.array_size is not None:
        body["arrayProperties"] = {"size": view.array_size}
    if index is not None:
        body["arrayProperties"] = {"index": index}
    exit_code, reason, _ = _last_exit(pods)
    if exit_code is not None:
        body["container"] = {"exitCode": exit_code, **({"reason": reason} if reason else {})}
    return body


def job_detail(
    view: JobView,
    manifest: Json,
    pods: Sequence[Json],
    arns: Arns,
    children: Sequence[JobView] = (),
    index: int | None = None,
) -> dict[str, Any]:
    """A DescribeJobs ``JobDetail`` of a job, an array job (with ``children``) or one child."""
    body = _job_fields(view, arns)
    queue = view.labels.get(QUEUE_LABEL)
    if queue:
        body["jobQueue"] = arns.job_queue(queue)
    body["parameters"] = {name: parameter_text(value) for name, value in view.arguments.items()}
    body["tags"] = {k: v for k, v in job_tags(view).items() if k != JOB_NAME_TAG}
    spec = manifest.get("spec") or {}
    container = container_properties(manifest)
    if index is not None:
        body["arrayProperties"] = {"index": index}
    if view.array_size is not None and index is None:
        summary = dict.fromkeys(STATES, 0)
        for child in children:
            summary[child.state] += 1
        body["arrayProperties"] = {"size": view.array_size, "statusSummary": summary}
        body["attempts"] = []  # the children make the attempts, as in AWS Batch
    else:
        exit_code, reason, stream = _last_exit(pods)
        if exit_code is not None:
            container.update(exitCode=exit_code, reason=reason or "", logStreamName=stream)
        body["attempts"] = _attempts(pods)
    body["container"] = container
    # Terminating sets a past deadline, which is not the timeout the job was given.
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and TERMINATION_REASON_ANNOTATION not in view.annotations:
        body["timeout"] = {"attemptDurationSeconds": deadline}
    if isinstance(spec.get("backoffLimit"), int):
        body["retryStrategy"] = {"attempts": spec["backoffLimit"] + 1}
    return body


def pods_of_index(pods: Sequence[Json], index: int) -> list[Json]:
    return [pod for pod in pods if pod_index(pod) == index]


def _by_creation(pods: Sequence[Json]) -> list[Json]:
    return sorted(pods, key=lambda pod: (pod.get("metadata") or {}).get("creationTimestamp") or "")


def _first_container_status(pod: Json) -> Json:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return statuses[0] if statuses else {}


def _last_exit(pods: Sequence[Json]) -> tuple[int | None, str | None, str | None]:
    """Exit code, reason and log stream (``<pod>/<container>``) of the newest finished attempt."""
    for pod in reversed(_by_creation(pods)):
        container = _first_container_status(pod)
        terminated = (container.get("state") or {}).get("terminated") or {}
        if "exitCode" in terminated:
            stream = f"{(pod.get('metadata') or {}).get('name')}/{container.get('name')}"
            return int(terminated["exitCode"]), terminated.get("reason"), stream
    return None, None, None


def _attempts(pods: Sequence[Json]) -> list[dict[str, Any]]:
    """One ``AttemptDetail`` per pod that finished, oldest first."""
    attempts = []
    for pod in _by_creation(pods):
        container = _first_container_status(pod)
        terminated = (container.get("state") or {}).get("terminated") or {}
        if "exitCode" not in terminated:
            continue
        attempt: dict[str, Any] = {
            "container": {
                "exitCode": int(terminated["exitCode"]),
                "reason": terminated.get("reason") or "",
                "logStreamName": f"{(pod.get('metadata') or {}).get('name')}/{container.get('name')}",
            },
            "statusReason": terminated.get("message") or terminated.get("reason") or "",
        }
        started = unix_time(terminated.get("startedAt") or (pod.get("status") or {}).get("startTime"))
        stopped = unix_time(terminated.get("finishedAt"))
        if started is not None:
            attempt["startedAt"] = started * 1000
        if stopped is not None:
            attempt["stoppedAt"] = stopped * 1000
        attempts.append(attempt)
    return attempts


def container_properties(manifest: Json) -> dict[str, Any]:
    """Image, command, environment and resources of a Job's first container, in AWS's terms."""
    pod_spec = ((manifest.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = pod_spec.get("containers") or [{}]
    container = containers[0] if isinstance(containers[0], dict) else {}
    command = [str(part) for part in (container.get("command") or []) + (container.get("args") or [])]
    properties: dict[str, Any] = {
        "image": str(container.get("image") or ""),
        "command": command,
        # Values from secrets or fields (valueFrom) are not shown: only literal values.
        "environment": [
            {"name": str(var["name"]), "value": str(var["value"])}
            for var in container.get("env") or []
            if isinstance(var, dict) and "name" in var and "value" in var
        ],
        "resourceRequirements": resource_requirements(container.get("resources") or {}),
    }
    return properties


def resource_requirements(resources: Json) -> list[dict[str, str]]:
    """Kubernetes requests/limits as AWS's VCPU, MEMORY (MiB) and GPU requirements."""
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}
    found = []
    cpu = _quantity(requests.get("cpu") or limits.get("cpu"))
    if cpu is not None:
        found.append({"type": "VCPU", "value": _plain(cpu)})
    memory = _quantity(limits.get("memory") or requests.get("memory"))
    if memory is not None:
        found.append({"type": "MEMORY", "value": str(int(memory / _QUANTITY_SUFFIXES["Mi"]))})
    gpu = _quantity(limits.get(GPU_RESOURCE) or requests.get(GPU_RESOURCE))
    if gpu is not None:
        found.append({"type": "GPU", "value": _plain(gpu)})
    return found


def _quantity(raw: Any) -> Decimal | None:
    """A Kubernetes quantity ("500m", "2Gi", "1e3") as a number; None when absent or unreadable."""
    if raw is None:
        return None
    text = str(raw).strip()
    number = text.rstrip("numkMGTPEi")
    suffix = text[len(number) :]
    if suffix not in _QUANTITY_SUFFIXES:
        return None
    try:
        return Decimal(number) * _QUANTITY_SUFFIXES[suffix]
    except InvalidOperation:
        return None


def _plain(number: Decimal) -> str:
    """A number as AWS writes vCPUs and GPUs: ``0.25``, ``2``, never ``2.5E+1``."""
    return format(number.normalize(), "f")


def parameter_text(value: Any) -> str:
    """An argument as an AWS parameter (always a string): JSON for arrays, true/false for booleans."""
    if isinstance(value, str):
        return value
    return json.dumps(value)


# --- definitions and queues ---------------------------------------------------------------------
def job_definition(definition: JobDefinition, arns: Arns) -> dict[str, Any]:
    """A DescribeJobDefinitions ``JobDefinition``.

    The container's properties come from rendering the template with each parameter
    as ``Ref::<name>`` — AWS's own placeholder — and its defaults are the parameters.
    """
    body: dict[str, Any] = {
        "jobDefinitionName": definition.name,
        "jobDefinitionArn": arns.job_definition(definition.name),
        "revision": REVISION,
        "status": "ACTIVE",
        "type": "container",
        "parameters": {
            name: parameter_text(spec["default"])
            for name, spec in definition.parameters.items()
            if "default" in spec
        },
        "tags": {},
    }
    try:
        sketch = definition.template.render({name: f"Ref::{name}" for name in definition.parameters})
    except DefinitionError:
        return body  # a template that computes with its values cannot be shown with placeholders
    body["containerProperties"] = container_properties(sketch)
    spec = sketch.get("spec") or {}
    if isinstance(spec.get("activeDeadlineSeconds"), int):
        body["timeout"] = {"attemptDurationSeconds": spec["activeDeadlineSeconds"]}
    if isinstance(spec.get("backoffLimit"), int):
        body["retryStrategy"] = {"attempts": spec["backoffLimit"] + 1}
    return body


def job_queue(queue: JobQueue, arns: Arns) -> dict[str, Any]:
    """A DescribeJobQueues ``JobQueueDetail``; Kubernetes does the computing, so no environments."""
    tags = {}
    if queue.kueue_queue is not None:
        tags[KUEUE_QUEUE_LABEL] = queue.kueue_queue
    if queue.priority_class is not None:
        tags["priorityClassName"] = queue.priority_class
    return {
        "jobQueueName": queue.name,
        "jobQueueArn": arns.job_queue(queue.name),
        "state": "ENABLED",
        "status": "VALID",
        "statusReason": queue.description,
        "priority": queue.priority,
        "computeEnvironmentOrder": [],
        "tags": tags,
    }
