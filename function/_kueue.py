"""Kueue as jobfn reads it, decided purely: why a queued job waits, the front of a queue, and
when a job waiting for its dependencies joins its Kueue queue.

A queue with ``kueue_queue`` labels its Jobs with Kueue's queue name; Kueue's webhook
suspends each one and its controller makes a Workload for it, admits the Workload when the
ClusterQueue's quota allows (higher priority first), and then unsuspends the Job. jobfn
reads what Kueue reports: the Workload's conditions say why a job still waits, and the
visibility API's pending workloads of a LocalQueue give the queue's order.

A job with dependencies must not reach Kueue before they are met (Kueue would start it):
it is created without the queue label, its LocalQueue recorded on it instead, and the
settling that releases it adds the label and leaves it suspended, for Kueue to admit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ._contract import KUEUE_QUEUE_ANNOTATION
from ._policy import parse_quantity
from ._queues import KUEUE_QUEUE_LABEL
from ._times import unix_time

#: On each Workload: the uid of the Job it was made for.
WORKLOAD_JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"
WAITING_FOR_QUOTA = "Waiting for quota"

Json = Mapping[str, Any]


def is_queued(job: Json) -> bool:
    """Whether Kueue holds the job: suspended with a Kueue queue's label (a job waiting for its
    dependencies gets the label only when they are met)."""
    labels = (job.get("metadata") or {}).get("labels") or {}
    return bool((job.get("spec") or {}).get("suspend") and KUEUE_QUEUE_LABEL in labels)


def waiting_reason(workload: Json | None) -> str:
    """Why Kueue has not started a suspended job yet, from its Workload's conditions."""
    if workload is None:
        return f"{WAITING_FOR_QUOTA}: Kueue has not made a Workload for the job yet"
    conditions = {c.get("type"): c for c in (workload.get("status") or {}).get("conditions") or []}
    for kind in ("Evicted", "Preempted"):
        condition = conditions.get(kind) or {}
        if condition.get("status") == "True":
            return (
                f"{WAITING_FOR_QUOTA}: {kind.lower()} ({condition.get('reason')}): {condition.get('message')}"
            )
    reserved = conditions.get("QuotaReserved") or {}
    if reserved.get("status") == "False" and reserved.get("message"):
        return f"{WAITING_FOR_QUOTA}: {reserved['message']}"
    admitted = conditions.get("Admitted") or {}
    if reserved.get("status") == "True" and admitted.get("status") != "True":
        return f"Waiting for admission checks: {admitted.get('message') or 'quota is reserved'}"
    if admitted.get("status") == "True":
        return "Admitted by Kueue: the job is being started"
    return f"{WAITING_FOR_QUOTA}: the job is suspended until Kueue admits it"


def released(patch: dict[str, Any], job: Json) -> dict[str, Any]:
    """The release of a waiting job, joining its Kueue queue if it has one: the label added,
    the job left suspended for Kueue to admit."""
    queue = ((job.get("metadata") or {}).get("annotations") or {}).get(KUEUE_QUEUE_ANNOTATION)
    if queue is None:
        return patch
    labels = {**patch["metadata"]["labels"], KUEUE_QUEUE_LABEL: queue}
    return {**patch, "metadata": {**patch["metadata"], "labels": labels}, "spec": {}}


@dataclass(frozen=True)
class QueuedJob:
    """A job in a Kueue queue's order."""

    name: str
    position: int
    """From 0, in its LocalQueue, as Kueue reports it."""
    queued_since: int | None
    """When its Workload was made (unix seconds): Kueue does not record when a job took its position."""
    priority: int = 0


@dataclass(frozen=True)
class QueueSnapshot:
    """A Kueue queue as Kueue reports it now: its order, and what its admitted jobs use."""

    front: list[QueuedJob]
    cpu_in_use: Decimal
    taken_at_ms: int


def front_of_queue(pending: Json) -> list[QueuedJob]:
    """The Jobs of a LocalQueue's pending workloads (the visibility API's answer), in Kueue's order."""
    found = []
    for item in pending.get("items") or []:
        metadata = item.get("metadata") or {}
        owners = [o for o in metadata.get("ownerReferences") or [] if o.get("kind") == "Job"]
        if not owners:
            continue
        found.append(
            QueuedJob(
                name=str(owners[0].get("name")),
                position=int(item.get("positionInLocalQueue") or 0),
                queued_since=unix_time(metadata.get("creationTimestamp")),
                priority=int(item.get("priority") or 0),
            )
        )
    return sorted(found, key=lambda queued: queued.position)


def cpu_in_use(local_queue: Json) -> Decimal:
    """CPUs the LocalQueue's admitted workloads use, summed over its flavors (Kueue's status)."""
    total = Decimal(0)
    for flavor in (local_queue.get("status") or {}).get("flavorsUsage") or []:
        for resource in flavor.get("resources") or []:
            if resource.get("name") == "cpu":
                total += parse_quantity(resource.get("total")) or 0
    return total


def workloads_by_job(workloads: Sequence[Json]) -> dict[str, Json]:
    """Workloads by the uid of their Job (the newest one where a Job has had several)."""
    found: dict[str, Json] = {}
    for workload in sorted(workloads, key=lambda w: (w.get("metadata") or {}).get("creationTimestamp") or ""):
        uid = ((workload.get("metadata") or {}).get("labels") or {}).get(WORKLOAD_JOB_UID_LABEL)
        if uid:
            found[uid] = workload
    return found
