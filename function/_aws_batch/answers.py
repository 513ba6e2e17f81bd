"""jobfn's views of jobs, definitions and queues in the shapes AWS Batch answers with.

Pure: ``JobView`` s (with the Job manifest where a detail shows its container),
definitions and queues become botocore's ``JobDetail``, ``JobSummary``,
``JobDefinition`` and ``JobQueueDetail``. States and reasons are the core's; only
their spelling is AWS's: times in epoch milliseconds, ids and ARNs, all-string
parameters, and the reason a caller gave when terminating as ``statusReason``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .._attempts import MULTINODE
from .._contract import AWS_JOB_NAME_TAG, GPU_RESOURCE
from .._definitions import JobDefinition
from .._failures import CONTAINER_EXITED
from .._kueue import QueueSnapshot
from .._plan import sketch_job
from .._policy import QUANTITY_FACTORS, parse_quantity
from .._queues import KUEUE_PRIORITY_CLASS_LABEL, KUEUE_QUEUE_LABEL, ComputeEnvironment, JobQueue
from .._status import STATES
from .._submission import Attempt, JobView

if TYPE_CHECKING:
    from .._registration import Registration

Json = Mapping[str, Any]

JOB_NAME_TAG = AWS_JOB_NAME_TAG
#: Definitions have one revision: the one in the definitions file now.
REVISION = 1


@dataclass(frozen=True)
class Arns:
    """The ARNs of this deployment's jobs, definitions and queues."""

    region: str
    account: str

    def _arn(self, resource: str) -> str:
        return f"arn:aws:batch:{self.region}:{self.account}:{resource}"

    def job(self, job_id: str) -> str:
        return self._arn(f"job/{job_id}")

    def job_definition(self, name: str, revision: int | None = None) -> str:
        return self._arn(f"job-definition/{name}:{revision or REVISION}")

    def job_queue(self, name: str) -> str:
        return self._arn(f"job-queue/{name}")

    def compute_environment(self, name: str) -> str:
        return self._arn(f"compute-environment/{name}")


# --- jobs ----------------------------------------------------------------------------------------
def job_name(view: JobView) -> str:
    """The jobName given at submission; a job submitted through another door is named by its id."""
    return view.tags.get(JOB_NAME_TAG) or view.name.partition(":")[0].partition("#")[0]


def created_at_ms(view: JobView) -> int:
    return (view.created or 0) * 1000


def status_reason(view: JobView) -> str:
    """The core's reason, except that a terminated job gives the caller's own words, as AWS does."""
    return view.termination_reason if view.termination_reason is not None else view.reason


def _job_fields(view: JobView, arns: Arns) -> dict[str, Any]:
    body: dict[str, Any] = {
        "jobArn": arns.job(view.name),
        "jobId": view.name,
        "jobName": job_name(view),
        "status": view.state,
        "statusReason": status_reason(view),
        "createdAt": created_at_ms(view),
        "jobDefinition": arns.job_definition(view.definition, view.definition_revision),
    }
    if view.started is not None:
        body["startedAt"] = view.started * 1000
    if view.stopped is not None:
        body["stoppedAt"] = view.stopped * 1000
    return body


def job_summary(view: JobView, arns: Arns, index: int | None = None) -> dict[str, Any]:
    """A ListJobs ``JobSummary``: an array's size, a child's index, an exit code once known."""
    body = _job_fields(view, arns)
    if view.array_size is not None:
        body["arrayProperties"] = {"size": view.array_size}
    if index is not None and view.kind == MULTINODE:
        body["nodeProperties"] = {"nodeIndex": index}
    elif index is not None:
        body["arrayProperties"] = {"index": index}
    if view.attempts:
        last = view.attempts[-1]
        reason = last.failure.reason if last.failure is not None else ""
        body["container"] = {"exitCode": last.exit_code, **({"reason": reason} if reason else {})}
    return body


def job_detail(
    view: JobView,
    manifest: Json,
    arns: Arns,
    children: Sequence[JobView] = (),
    index: int | None = None,
) -> dict[str, Any]:
    """A DescribeJobs ``JobDetail`` of a job, an array or multi-node job (with ``children``: its
    children or nodes), or one child or node (``index``)."""
    body = _job_fields(view, arns)
    if view.queue:
        body["jobQueue"] = arns.job_queue(view.queue)
    body["parameters"] = {name: parameter_text(value) for name, value in view.arguments.items()}
    body["tags"] = {k: v for k, v in view.tags.items() if k != JOB_NAME_TAG}
    body["dependsOn"] = [{"jobId": name} for name in view.depends_on] + [
        {"jobId": name, "type": "N_TO_N"} for name in view.n_to_n
    ]
    spec = manifest.get("spec") or {}
    container = container_properties(manifest, view.cpu_request_ratio)
    nodes = view.kind == MULTINODE
    if index is not None and nodes:
        body["nodeDetails"] = {"nodeIndex": index, "isMainNode": index == main_node(spec)}
    elif index is not None:
        body["arrayProperties"] = {"index": index}
    if index is None and (view.array_size is not None or nodes):
        if nodes:
            body["nodeProperties"] = {
                "numNodes": int(spec.get("completions") or 0),
                "mainNode": main_node(spec),
                "nodeRangeProperties": [{"targetNodes": "0:", "container": dict(container)}],
            }
        else:
            summary = dict.fromkeys(STATES, 0)
            for child in children:
                summary[child.state] += 1
            body["arrayProperties"] = {"size": view.array_size, "statusSummary": summary}
        body["attempts"] = []  # the children (nodes) make the attempts, as in AWS Batch
    else:
        attempts = view.attempts or []
        if attempts:
            last = attempts[-1]
            container.update(exitCode=last.exit_code, logStreamName=_log_stream(last))
            if last.failure is not None and last.failure.reason:
                container["reason"] = last.failure.reason
        body["attempts"] = [_attempt_detail(attempt) for attempt in attempts]
    body["container"] = container
    # Terminating sets a past deadline, which is not the timeout the job was given.
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and view.termination_reason is None:
        body["timeout"] = {"attemptDurationSeconds": deadline}
    retries = spec.get("backoffLimitPerIndex", spec.get("backoffLimit"))
    if isinstance(retries, int):
        body["retryStrategy"] = {"attempts": retries + 1}
    return body


def main_node(spec: Json) -> int:
    """The main node of a multi-node job: the index its success policy waits for."""
    rules = (spec.get("successPolicy") or {}).get("rules") or [{}]
    indexes = str(rules[0].get("succeededIndexes") or "0")
    return int(indexes) if indexes.isdigit() else 0


def _log_stream(attempt: Attempt) -> str:
    return f"{attempt.pod}/{attempt.container}"


def _attempt_detail(attempt: Attempt) -> dict[str, Any]:
    """An ``AttemptDetail``: a failed attempt with AWS's reason and status reason (``_failures``)."""
    container: dict[str, Any] = {"exitCode": attempt.exit_code, "logStreamName": _log_stream(attempt)}
    if attempt.failure is not None and attempt.failure.reason:
        container["reason"] = attempt.failure.reason
    detail: dict[str, Any] = {
        "container": container,
        "statusReason": attempt.failure.status_reason if attempt.failure is not None else CONTAINER_EXITED,
    }
    if attempt.started is not None:
        detail["startedAt"] = attempt.started * 1000
    if attempt.stopped is not None:
        detail["stoppedAt"] = attempt.stopped * 1000
    return detail


def container_properties(manifest: Json, cpu_request_ratio: Decimal = Decimal(1)) -> dict[str, Any]:
    """Image, command, environment and resources of a Job's first container, in AWS's terms (the
    vCPUs asked for: its CPU request over the operator's overcommit ratio)."""
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
        "resourceRequirements": resource_requirements(container.get("resources") or {}, cpu_request_ratio),
    }
    return properties


def resource_requirements(resources: Json, cpu_request_ratio: Decimal = Decimal(1)) -> list[dict[str, str]]:
    """Kubernetes requests/limits as AWS's VCPU, MEMORY (MiB) and GPU requirements."""
    requests = resources.get("requests") or {}
    limits = resources.get("limits") or {}
    found = []
    cpu = parse_quantity(requests.get("cpu") or limits.get("cpu"))
    if cpu is not None:
        asked = (cpu / cpu_request_ratio).quantize(Decimal("0.001"))
        found.append({"type": "VCPU", "value": _plain(asked)})
    memory = parse_quantity(limits.get("memory") or requests.get("memory"))
    if memory is not None:
        found.append({"type": "MEMORY", "value": str(int(memory / QUANTITY_FACTORS["Mi"]))})
    gpu = parse_quantity(limits.get(GPU_RESOURCE) or requests.get(GPU_RESOURCE))
    if gpu is not None:
        found.append({"type": "GPU", "value": _plain(gpu)})
    return found


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
    sketch = sketch_job(definition, lambda name: f"Ref::{name}")
    if sketch is None:
        return body
    body["containerProperties"] = container_properties(sketch)
    spec = sketch.get("spec") or {}
    if isinstance(spec.get("activeDeadlineSeconds"), int):
        body["timeout"] = {"attemptDurationSeconds": spec["activeDeadlineSeconds"]}
    if isinstance(spec.get("backoffLimit"), int):
        body["retryStrategy"] = {"attempts": spec["backoffLimit"] + 1}
    return body


def registered_job_definition(registration: Registration, arns: Arns) -> dict[str, Any]:
    """A DescribeJobDefinitions ``JobDefinition`` of a registered revision: what was registered."""
    return {
        **registration.to_request(),
        "jobDefinitionArn": arns.job_definition(registration.name, registration.revision),
        "revision": registration.revision,
        "status": "ACTIVE" if registration.active else "INACTIVE",
    }


def compute_environment(environment: ComputeEnvironment, arns: Arns) -> dict[str, Any]:
    """A DescribeComputeEnvironments ``ComputeEnvironmentDetail``: nodes the operator manages."""
    tags = dict(environment.node_selector)
    if environment.kueue_flavor is not None:
        tags["kueue.x-k8s.io/resource-flavor"] = environment.kueue_flavor
    return {
        "computeEnvironmentName": environment.name,
        "computeEnvironmentArn": arns.compute_environment(environment.name),
        "type": "UNMANAGED",  # the cluster's nodes, not instances Batch launches
        "state": "ENABLED",
        "status": "VALID",
        "statusReason": environment.description,
        "containerOrchestrationType": "EKS",
        "tags": tags,
    }


def job_queue(queue: JobQueue, arns: Arns, environments: Sequence[ComputeEnvironment] = ()) -> dict[str, Any]:
    """A DescribeJobQueues ``JobQueueDetail``, its compute environments in order."""
    tags = {}
    if queue.kueue_queue is not None:
        tags[KUEUE_QUEUE_LABEL] = queue.kueue_queue
    if queue.kueue_priority_class is not None:
        tags[KUEUE_PRIORITY_CLASS_LABEL] = queue.kueue_priority_class
    if queue.priority_class is not None:
        tags["priorityClassName"] = queue.priority_class
    return {
        "jobQueueName": queue.name,
        "jobQueueArn": arns.job_queue(queue.name),
        "state": "ENABLED",
        "status": "VALID",
        "statusReason": queue.description,
        "priority": queue.priority,
        "computeEnvironmentOrder": [
            {"order": rank + 1, "computeEnvironment": arns.compute_environment(e.name)}
            for rank, e in enumerate(environments)
        ],
        "tags": tags,
    }


def queue_snapshot(snapshot: QueueSnapshot, arns: Arns) -> dict[str, Any]:
    """A GetJobQueueSnapshot answer: Kueue's order, and the CPUs its admitted jobs use (as EKS
    reports capacity, in ``cpu``). A job's ``earliestTimeAtPosition`` is when it joined the queue:
    Kueue does not record when a job reached its position."""
    return {
        "frontOfQueue": {
            "jobs": [
                {"jobArn": arns.job(job.name), "earliestTimeAtPosition": (job.queued_since or 0) * 1000}
                for job in snapshot.front
            ],
            "lastUpdatedAt": snapshot.taken_at_ms,
        },
        "queueUtilization": {
            "totalCapacityUsage": [{"capacityUnit": "cpu", "quantity": float(snapshot.cpu_in_use)}],
            "lastUpdatedAt": snapshot.taken_at_ms,
        },
    }
