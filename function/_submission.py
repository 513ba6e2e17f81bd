"""What the front doors hand to the core, and what the core hands back.

REST, CloudEvents and the AWS Batch API each translate their request into a
``Submission`` and translate a ``JobView`` back into their own answer shape; nothing
behind this line knows which door a request came through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

from ._dependencies import Dependency
from ._retry_rules import Failure, RetryRule

#: The longest idempotency key a submission may carry (it is stored as an annotation value).
MAX_IDEMPOTENCY_KEY_LENGTH = 255

#: Names a definition's ``allowed_overrides`` may list, one per ``Overrides`` field.
OVERRIDE_NAMES = ("timeout", "array_size", "retries", "command", "environment", "resources")


@dataclass(frozen=True)
class Overrides:
    """Changes a caller asks for on top of the rendered template, each allowed per definition."""

    timeout: int | None = None
    """``activeDeadlineSeconds``, bounded by the definition's ``max_active_deadline_seconds``."""
    array_size: int | None = None
    """Run N indexed copies (an Indexed Job with N completions)."""
    retries: int | None = None
    """``backoffLimit``: how many failed pods are retried."""
    command: tuple[str, ...] | None = None
    """Replaces the first container's command."""
    environment: Mapping[str, str] | None = None
    """Added to (or replacing same-named) environment variables of the first container."""
    resources: Mapping[str, Mapping[str, str]] | None = None
    """``requests``/``limits`` merged into the first container's resources."""
    retry_rules: tuple[RetryRule, ...] | None = None
    """AWS Batch's ``evaluateOnExit``: which failures are retried (allowed with ``retries``)."""

    def used(self) -> list[str]:
        """Names of the overrides this request actually sets."""
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


@dataclass(frozen=True)
class Submission:
    """One request to run a job, whichever front door it came through."""

    definition: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    overrides: Overrides = field(default_factory=Overrides)
    idempotency_key: str | None = None
    """Submissions with the same key (per definition) get the same job, never a second one."""
    caller: str | None = None
    """Authenticated identity of the caller, recorded on the job."""
    caller_groups: frozenset[str] = frozenset()
    """The caller's groups, which a definition's ``allowed_subjects`` may name; not recorded."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Free-form key/value pairs recorded on the job (AWS Batch ``tags``)."""
    queue: str | None = None
    """Name of the queue the job was submitted to (AWS Batch ``jobQueue``)."""
    depends_on: tuple[Dependency, ...] = ()
    """Jobs that must succeed before this one starts (AWS Batch ``dependsOn``)."""
    batch_environment: bool = False
    """Give every container AWS Batch's ``AWS_BATCH_*`` variables (set by the AWS Batch door)."""


@dataclass(frozen=True)
class PodView:
    """One pod of a job, as far as callers care."""

    name: str
    phase: str
    node: str | None
    index: int | None
    containers: list[dict[str, Any]]
    """Per container: name, state (waiting/running/terminated), reason, exit_code."""


@dataclass(frozen=True)
class Attempt:
    """One finished try of a job: a pod whose first container has terminated."""

    pod: str
    container: str
    exit_code: int
    reason: str
    """The container's own word for how it ended: ``Completed``, ``Error``, ``OOMKilled``, ..."""
    message: str
    started: int | None
    stopped: int | None
    failure: Failure | None = None
    """How AWS Batch reports it, when it failed (``_failures``)."""


@dataclass(frozen=True)
class JobView:
    """A job as every front door describes it."""

    name: str
    uid: str
    definition: str
    state: str
    reason: str
    created: int | None
    started: int | None
    stopped: int | None
    arguments: Mapping[str, Any]
    deletion_time: int | None
    array_size: int | None
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    succeeded: int = 0
    failed: int = 0
    active: int = 0
    pods: list[PodView] | None = None
    attempts: list[Attempt] | None = None
    """Finished tries, oldest first; None when the pods were not read."""
    termination_reason: str | None = None
    """The reason a caller gave when terminating the job, in their own words."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """The tags it was submitted with."""
    queue: str | None = None
    """The queue it was submitted to."""
    overrides: Mapping[str, Any] = field(default_factory=dict)
    """The overrides it was submitted with."""
    definition_revision: int | None = None
    """The revision of the registered definition it follows; None for a file definition."""
    depends_on: tuple[str, ...] = ()
    """The jobs it waited (or waits) for."""
    n_to_n: tuple[str, ...] = ()
    """The array jobs whose child i each child i waits for (AWS's N_TO_N)."""
    kind: str = "single"
    """``single``, ``array`` (children ``<job>:<index>``) or ``multinode`` (nodes ``<job>#<index>``)."""
    cpu_request_ratio: Decimal = Decimal(1)
    """The share of the vCPUs asked for that its containers request (the operator's overcommit)."""
    created_now: bool = False
    """True when this request created the job; False when it returned an existing one."""

    def to_json(self) -> dict[str, Any]:
        """The REST API's job object."""
        body: dict[str, Any] = {
            "name": self.name,
            "uid": self.uid,
            "definition": self.definition,
            "state": self.state,
            "reason": self.reason,
            "created": self.created,
            "started": self.started,
            "stopped": self.stopped,
            "arguments": dict(self.arguments),
            "deletion_time": self.deletion_time,
            "array_size": self.array_size,
            "labels": dict(self.labels),
            "counts": {"active": self.active, "succeeded": self.succeeded, "failed": self.failed},
            "queue": self.queue,
            "tags": dict(self.tags),
            "overrides": dict(self.overrides),
            "depends_on": list(self.depends_on) + [{"job": name, "type": "N_TO_N"} for name in self.n_to_n],
        }
        if self.pods is not None:
            body["pods"] = [
                {
                    "name": pod.name,
                    "phase": pod.phase,
                    "node": pod.node,
                    "index": pod.index,
                    "containers": pod.containers,
                }
                for pod in self.pods
            ]
        if self.attempts is not None:
            body["attempts"] = [
                {
                    "pod": attempt.pod,
                    "container": attempt.container,
                    "exit_code": attempt.exit_code,
                    "reason": attempt.reason,
                    "message": attempt.message,
                    "started": attempt.started,
                    "stopped": attempt.stopped,
                }
                for attempt in self.attempts
            ]
        return body


@dataclass(frozen=True)
class JobPage:
    """One page of a job listing; pass ``next_token`` back for the next page."""

    jobs: list[JobView]
    next_token: str | None


@dataclass(frozen=True)
class JobSummary:
    """How many jobs are in each state, per definition and per queue ("" for no queue)."""

    by_definition: Mapping[str, Mapping[str, int]]
    by_queue: Mapping[str, Mapping[str, int]]
    total: int

    def to_json(self) -> dict[str, Any]:
        return {
            "definitions": {name: dict(counts) for name, counts in sorted(self.by_definition.items())},
            "queues": {name: dict(counts) for name, counts in sorted(self.by_queue.items())},
            "total": self.total,
        }


@dataclass(frozen=True)
class JobEvent:
    """A Kubernetes Event about a job or one of its pods."""

    time: int | None
    type: str
    reason: str
    object: str
    """``Job/<name>`` or ``Pod/<name>``."""
    message: str
    count: int

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "type": self.type,
            "reason": self.reason,
            "object": self.object,
            "message": self.message,
            "count": self.count,
        }
