"""Job queues: the names callers submit to, and what a queue adds to each of its jobs.

Queues are listed under ``queues:`` in the definitions file, beside ``definitions:``.
A queue may hand its jobs to Kueue (the ``kueue.x-k8s.io/queue-name`` label names a
LocalQueue, and Kueue admits the job when quota allows) and give their pods a
PriorityClass. When the file lists no queues, any queue name is accepted and only
recorded on the job, so a deployment without Kueue needs no queue configuration;
listing the queues then shows one, ``default``, so a newcomer sees a name to use.

    queues:
      - name: high                    # what callers pass as jobQueue (or its ARN)
        kueue_queue: team-a-high      # optional: Kueue LocalQueue in the job namespace
        priority_class: high-priority # optional: the pods' priorityClassName
        priority: 100                 # optional: reported by DescribeJobQueues (default 1)
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ._contract import is_label_value
from ._errors import DefinitionError, InvalidRequest

#: Kueue admits a Job to the LocalQueue this label names.
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
_QUEUE_KEYS = {"name", "kueue_queue", "priority_class", "priority", "description"}
_MAX_MESSAGE_VALUE = 80
#: The queue reported when the file lists none (any other name is accepted just as well).
DEFAULT_QUEUE_NAME = "default"


@dataclass(frozen=True)
class JobQueue:
    """One queue jobs can be submitted to."""

    name: str
    kueue_queue: str | None = None
    """Kueue LocalQueue the queue's jobs are admitted through (``kueue.x-k8s.io/queue-name``)."""
    priority_class: str | None = None
    """PriorityClass of the queue's pods (``priorityClassName``); Kueue orders by it too."""
    priority: int = 1
    """The queue's priority as AWS Batch reports it; informational."""
    description: str = ""

    def apply(self, job: dict[str, Any]) -> None:
        """Put the queue's Kueue label and priority class on a shaped Job, in place."""
        if self.kueue_queue is not None:
            job.setdefault("metadata", {}).setdefault("labels", {})[KUEUE_QUEUE_LABEL] = self.kueue_queue
        if self.priority_class is not None:
            pod_spec = job["spec"]["template"].setdefault("spec", {})
            pod_spec["priorityClassName"] = self.priority_class


class JobQueues:
    """The configured queues; with none configured, every (valid) name is a plain queue."""

    def __init__(self, queues: Mapping[str, JobQueue] | None = None) -> None:
        self._by_name = dict(queues or {})

    @property
    def configured(self) -> bool:
        """Whether the definitions file lists queues (then only those are accepted)."""
        return bool(self._by_name)

    def get(self, name: str) -> JobQueue:
        """The queue called ``name``; InvalidRequest naming the known ones if it is not listed."""
        if not self._by_name:
            return JobQueue(name)
        try:
            return self._by_name[name]
        except KeyError:
            raise InvalidRequest(
                f"no job queue named {name[:_MAX_MESSAGE_VALUE]!r} "
                f"(queues: {', '.join(sorted(self._by_name))})"
            ) from None

    def listed(self) -> list[JobQueue]:
        """The queues to show a caller: the configured ones, else the one default queue."""
        if not self._by_name:
            return [
                JobQueue(
                    DEFAULT_QUEUE_NAME,
                    description="no queues are configured: this one, or any other name, may be used",
                )
            ]
        return list(self)

    def __iter__(self) -> Iterator[JobQueue]:
        """The configured queues, by name."""
        return iter([self._by_name[name] for name in sorted(self._by_name)])

    def __len__(self) -> int:
        return len(self._by_name)


def parse_queues(raw: Any) -> JobQueues:
    """The ``queues:`` list of a definitions file; DefinitionError naming what is wrong."""
    if raw is None:
        return JobQueues()
    if not isinstance(raw, list):
        raise DefinitionError("queues must be a list of queues, each with a 'name'")
    queues: dict[str, JobQueue] = {}
    for item in raw:
        queue = _parse_queue(item)
        if queue.name in queues:
            raise DefinitionError(f"queue '{queue.name}' is listed twice")
        queues[queue.name] = queue
    return JobQueues(queues)


def _parse_queue(raw: Any) -> JobQueue:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise DefinitionError(f"each queue needs a 'name': got {str(raw)[:100]}")
    name = raw["name"]
    unknown = set(raw) - _QUEUE_KEYS
    if unknown:
        raise DefinitionError(f"queue '{name}': unknown keys {sorted(unknown)}")
    # Names end up as label values (the queue label, Kueue's queue-name label).
    for key in ("name", "kueue_queue"):
        value = raw.get(key)
        if value is not None and not (isinstance(value, str) and value and is_label_value(value)):
            raise DefinitionError(f"queue '{name}': {key} must be a valid label value, not {value!r}")
    priority_class = raw.get("priority_class")
    if priority_class is not None and not (isinstance(priority_class, str) and priority_class):
        raise DefinitionError(f"queue '{name}': priority_class must be a PriorityClass name")
    priority = raw.get("priority", 1)
    if isinstance(priority, bool) or not isinstance(priority, int) or priority < 0:
        raise DefinitionError(f"queue '{name}': priority must be a whole number of zero or more")
    return JobQueue(
        name=name,
        kueue_queue=raw.get("kueue_queue"),
        priority_class=priority_class,
        priority=priority,
        description=str(raw.get("description") or ""),
    )
