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
        kueue_priority_class: high    # optional: Kueue WorkloadPriorityClass (admission order)
        priority_class: high-priority # optional: the pods' priorityClassName
        priority: 100                 # optional: reported by DescribeJobQueues (default 1)
        compute_environments: [spot, on-demand]   # optional: where its pods may run, in order

Compute environments are where pods run: a node selector, tolerations, a priority class
(and, informational, a Kueue ResourceFlavor). A queue's list is an order of preference:
its pods may land on the nodes of any of them and prefer the earlier ones (node affinity:
required across all, preferred by rank). ``default_compute_environment`` applies to every
job whose queue names none, so jobs stay off the nodes of live workloads (k8s-jobs' advice:
a dedicated node group for jobs).

    compute_environments:
      - name: spot
        node_selector: {pool: batch-spot}
        tolerations: [{key: dedicated, value: batch, effect: NoSchedule}]
    default_compute_environment: spot
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._contract import KUEUE_QUEUE_ANNOTATION, WAITING_LABEL, is_label_value
from ._errors import DefinitionError, InvalidRequest

#: Kueue admits a Job to the LocalQueue this label names.
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
#: The WorkloadPriorityClass of a Job's Workload: Kueue's order and preemption, not the pods'.
KUEUE_PRIORITY_CLASS_LABEL = "kueue.x-k8s.io/priority-class"
_QUEUE_KEYS = {"name", "kueue_queue", "kueue_priority_class", "priority_class", "priority", "description",
               "compute_environments"}  # fmt: skip
_ENVIRONMENT_KEYS = {"name", "node_selector", "tolerations", "priority_class", "kueue_flavor", "description"}
_TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}
_MAX_MESSAGE_VALUE = 80
#: The queue reported when the file lists none (any other name is accepted just as well).
DEFAULT_QUEUE_NAME = "default"


@dataclass(frozen=True)
class ComputeEnvironment:
    """Where a queue's pods may run."""

    name: str
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    priority_class: str | None = None
    kueue_flavor: str | None = None
    """The Kueue ResourceFlavor these nodes are, when Kueue manages quota; reported only."""
    description: str = ""


def place(job: dict[str, Any], environments: tuple[ComputeEnvironment, ...]) -> None:
    """Keep a Job's pods to the nodes of ``environments``, preferring the earlier ones."""
    if not environments:
        return
    pod = job["spec"]["template"].setdefault("spec", {})
    pod["tolerations"] = [
        *(pod.get("tolerations") or []),
        *(dict(t) for e in environments for t in e.tolerations),
    ]
    if pod.get("priorityClassName") is None and environments[0].priority_class is not None:
        pod["priorityClassName"] = environments[0].priority_class
    if any(not e.node_selector for e in environments):
        return  # one of them is any node: nothing to require
    if len(environments) == 1:
        selector = dict(pod.get("nodeSelector") or {})
        clashes = [k for k, v in environments[0].node_selector.items() if selector.get(k, v) != v]
        if clashes:
            raise DefinitionError(f"the template's nodeSelector and compute environment "
                                  f"'{environments[0].name}' disagree on {', '.join(clashes)}")  # fmt: skip
        pod["nodeSelector"] = {**selector, **environments[0].node_selector}
        return
    affinity = pod.setdefault("affinity", {}).setdefault("nodeAffinity", {})
    if "requiredDuringSchedulingIgnoredDuringExecution" in affinity:
        raise DefinitionError("the template's own required node affinity leaves no room for a queue's "
                              "compute environments")  # fmt: skip
    terms = [
        {
            "matchExpressions": [
                {"key": k, "operator": "In", "values": [v]} for k, v in e.node_selector.items()
            ]
        }
        for e in environments
    ]
    affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": terms}
    affinity["preferredDuringSchedulingIgnoredDuringExecution"] = [
        *(affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []),
        *({"weight": 100 - 10 * rank, "preference": term} for rank, term in enumerate(terms)),
    ]


@dataclass(frozen=True)
class JobQueue:
    """One queue jobs can be submitted to."""

    name: str
    kueue_queue: str | None = None
    """Kueue LocalQueue the queue's jobs are admitted through (``kueue.x-k8s.io/queue-name``)."""
    kueue_priority_class: str | None = None
    """Kueue WorkloadPriorityClass of the queue's jobs: who Kueue admits first (and may preempt)."""
    priority_class: str | None = None
    """PriorityClass of the queue's pods (``priorityClassName``); Kueue orders by it too."""
    priority: int = 1
    """The queue's priority as AWS Batch reports it; informational."""
    description: str = ""
    compute_environments: tuple[ComputeEnvironment, ...] = ()
    """Where its pods may run, in order of preference (else the default compute environment)."""

    def apply(self, job: dict[str, Any]) -> None:
        """Put the queue's Kueue labels and priority class on a shaped Job, in place (its compute
        environments: ``place`` with ``JobQueues.placement``).

        A job waiting for its dependencies must not reach Kueue, which would start it: its
        LocalQueue is recorded instead, and the release adds the label (``_kueue.released``).
        """
        metadata = job.setdefault("metadata", {})
        labels = metadata.setdefault("labels", {})
        if self.kueue_queue is not None and WAITING_LABEL in labels:
            metadata.setdefault("annotations", {})[KUEUE_QUEUE_ANNOTATION] = self.kueue_queue
        elif self.kueue_queue is not None:
            labels[KUEUE_QUEUE_LABEL] = self.kueue_queue
        if self.kueue_priority_class is not None:
            labels[KUEUE_PRIORITY_CLASS_LABEL] = self.kueue_priority_class
        if self.priority_class is not None:
            pod_spec = job["spec"]["template"].setdefault("spec", {})
            pod_spec["priorityClassName"] = self.priority_class


class JobQueues:
    """The configured queues; with none configured, every (valid) name is a plain queue."""

    def __init__(
        self,
        queues: Mapping[str, JobQueue] | None = None,
        environments: Mapping[str, ComputeEnvironment] | None = None,
        default_environment: ComputeEnvironment | None = None,
    ) -> None:
        self._by_name = dict(queues or {})
        self.environments = dict(environments or {})
        """The compute environments, by name."""
        self.default_environment = default_environment
        """Where jobs run whose queue names no compute environment (None: anywhere)."""

    def placement(self, queue: JobQueue | None) -> tuple[ComputeEnvironment, ...]:
        """The compute environments a job of ``queue`` (None: no queue) may run in."""
        if queue is not None and queue.compute_environments:
            return queue.compute_environments
        return (self.default_environment,) if self.default_environment is not None else ()

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


def parse_queues(raw: Any, raw_environments: Any = None, default_environment: Any = None) -> JobQueues:
    """The ``queues:`` and ``compute_environments:`` of a definitions file (and its
    ``default_compute_environment``); DefinitionError naming what is wrong."""
    environments = _parse_environments(raw_environments)
    default = None
    if default_environment is not None:
        if default_environment not in environments:
            raise DefinitionError(f"default_compute_environment {str(default_environment)[:80]!r} is not "
                                  "one of compute_environments")  # fmt: skip
        default = environments[default_environment]
    if raw is None:
        return JobQueues(environments=environments, default_environment=default)
    if not isinstance(raw, list):
        raise DefinitionError("queues must be a list of queues, each with a 'name'")
    queues: dict[str, JobQueue] = {}
    for item in raw:
        queue = _parse_queue(item, environments)
        if queue.name in queues:
            raise DefinitionError(f"queue '{queue.name}' is listed twice")
        queues[queue.name] = queue
    return JobQueues(queues, environments, default)


def _parse_environments(raw: Any) -> dict[str, ComputeEnvironment]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise DefinitionError("compute_environments must be a list, each with a 'name'")
    found: dict[str, ComputeEnvironment] = {}
    for item in raw:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not is_label_value(item["name"])
        ):
            raise DefinitionError(
                f"each compute environment needs a 'name' (a label value): got {str(item)[:100]}"
            )
        name = item["name"]
        unknown = set(item) - _ENVIRONMENT_KEYS
        if unknown:
            raise DefinitionError(f"compute environment '{name}': unknown keys {sorted(unknown)}")
        selector = item.get("node_selector") or {}
        if not isinstance(selector, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in selector.items()
        ):
            raise DefinitionError(
                f"compute environment '{name}': node_selector must map label keys to values"
            )
        tolerations = item.get("tolerations") or []
        if not isinstance(tolerations, list) or not all(
            isinstance(t, dict) and set(t) <= _TOLERATION_KEYS for t in tolerations
        ):
            raise DefinitionError(f"compute environment '{name}': tolerations must be a list of Kubernetes "
                                  f"tolerations ({', '.join(sorted(_TOLERATION_KEYS))})")  # fmt: skip
        if name in found:
            raise DefinitionError(f"compute environment '{name}' is listed twice")
        found[name] = ComputeEnvironment(
            name=name,
            node_selector=dict(selector),
            tolerations=tuple(dict(t) for t in tolerations),
            priority_class=item.get("priority_class"),
            kueue_flavor=item.get("kueue_flavor"),
            description=str(item.get("description") or ""),
        )
    return found


def _parse_queue(raw: Any, environments: Mapping[str, ComputeEnvironment]) -> JobQueue:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise DefinitionError(f"each queue needs a 'name': got {str(raw)[:100]}")
    name = raw["name"]
    unknown = set(raw) - _QUEUE_KEYS
    if unknown:
        raise DefinitionError(f"queue '{name}': unknown keys {sorted(unknown)}")
    # Names end up as label values (the queue label, Kueue's queue-name label).
    for key in ("name", "kueue_queue", "kueue_priority_class"):
        value = raw.get(key)
        if value is not None and not (isinstance(value, str) and value and is_label_value(value)):
            raise DefinitionError(f"queue '{name}': {key} must be a valid label value, not {value!r}")
    priority_class = raw.get("priority_class")
    if priority_class is not None and not (isinstance(priority_class, str) and priority_class):
        raise DefinitionError(f"queue '{name}': priority_class must be a PriorityClass name")
    priority = raw.get("priority", 1)
    if isinstance(priority, bool) or not isinstance(priority, int) or priority < 0:
        raise DefinitionError(f"queue '{name}': priority must be a whole number of zero or more")
    order = raw.get("compute_environments") or []
    if not isinstance(order, list) or any(e not in environments for e in order):
        known = ", ".join(sorted(environments)) or "none"
        raise DefinitionError(
            f"queue '{name}': compute_environments must name compute environments (defined: {known})"
        )
    return JobQueue(
        name=name,
        compute_environments=tuple(environments[e] for e in order),
        kueue_queue=raw.get("kueue_queue"),
        kueue_priority_class=raw.get("kueue_priority_class"),
        priority_class=priority_class,
        priority=priority,
        description=str(raw.get("description") or ""),
    )
