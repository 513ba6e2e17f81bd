"""Kueue's part, decided purely: queue labels, dependencies released into Kueue, why a queued
job waits, a queue's order, and the names of the cap's Leases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobfn._contract import KUEUE_QUEUE_ANNOTATION, WAITING_LABEL, JobSigner
from jobfn._definitions import JobDefinitions
from jobfn._dependencies import Dependency, is_waiting, release_patch
from jobfn._job_cap import lease_name
from jobfn._kueue import front_of_queue, is_queued, released, waiting_reason
from jobfn._plan import plan_submission
from jobfn._queues import KUEUE_PRIORITY_CLASS_LABEL, KUEUE_QUEUE_LABEL
from jobfn._status import RUNNABLE, job_state
from jobfn._submission import Submission

DEFINITIONS = JobDefinitions.from_yaml(
    (Path(__file__).parent.parent / "data" / "definitions" / "core.yaml")
    .read_text()
    .replace(
        "definitions:",
        "queues:\n  - {name: quota, kueue_queue: team-a, kueue_priority_class: high}\ndefinitions:",
        1,
    )
)


def _plan(**fields: Any) -> dict[str, Any]:
    submission = Submission("echo", {"message": "hi"}, queue="quota", **fields)
    return plan_submission(DEFINITIONS, submission, JobSigner("sig"), "jobs").manifest


def _merge(job: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) applied, as the API server does."""
    merged = dict(job)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def test_a_kueue_queue_labels_its_jobs_with_its_local_queue_and_workload_priority_class() -> None:
    labels = _plan()["metadata"]["labels"]
    assert labels[KUEUE_QUEUE_LABEL] == "team-a"
    assert labels[KUEUE_PRIORITY_CLASS_LABEL] == "high"


def test_a_job_with_dependencies_joins_its_kueue_queue_only_when_released() -> None:
    job = _plan(depends_on=(Dependency("a"),))
    assert KUEUE_QUEUE_LABEL not in job["metadata"]["labels"], "Kueue would start it before its dependencies"
    assert job["metadata"]["annotations"][KUEUE_QUEUE_ANNOTATION] == "team-a"
    assert is_waiting(job) and not is_queued(job)

    after = _merge(job, released(release_patch(), job))

    assert after["metadata"]["labels"][KUEUE_QUEUE_LABEL] == "team-a"
    assert WAITING_LABEL not in after["metadata"]["labels"]
    assert after["spec"]["suspend"] is True, "Kueue unsuspends it when it admits it"
    assert is_queued(after) and not is_waiting(after)


def test_a_job_of_a_plain_queue_is_released_by_unsuspending_it() -> None:
    job = plan_submission(
        DEFINITIONS, Submission("echo", {"message": "hi"}, depends_on=(Dependency("a"),)), JobSigner("s"), "j"
    ).manifest
    assert released(release_patch(), job) == release_patch()


def _workload(*conditions: dict[str, str]) -> dict[str, Any]:
    return {"status": {"conditions": list(conditions)}}


def test_a_queued_job_waits_for_the_reason_kueue_gives() -> None:
    pending = _workload(
        {
            "type": "QuotaReserved",
            "status": "False",
            "reason": "Pending",
            "message": "couldn't assign flavors to pod set main: insufficient unused quota for cpu in "
            "flavor default, 100m more needed",
        }
    )
    job = _plan()
    job["spec"]["suspend"] = True

    state, reason = job_state(job, [], waiting_reason(pending))

    assert state == RUNNABLE
    assert reason == (
        "Waiting for quota: couldn't assign flavors to pod set main: insufficient unused quota for cpu "
        "in flavor default, 100m more needed"
    )
    assert waiting_reason(None).startswith("Waiting for quota: Kueue has not made a Workload")
    assert waiting_reason(_workload({"type": "Admitted", "status": "True"})).startswith("Admitted by Kueue")
    evicted = _workload(
        {"type": "Evicted", "status": "True", "reason": "Preempted", "message": "by a higher"}
    )
    assert waiting_reason(evicted) == "Waiting for quota: evicted (Preempted): by a higher"


def test_the_front_of_a_queue_is_kueues_order_of_its_jobs() -> None:
    def item(job: str, position: int) -> dict[str, Any]:
        owner = {"apiVersion": "batch/v1", "kind": "Job", "name": job, "uid": "u"}
        return {
            "metadata": {
                "name": f"job-{job}-1",
                "ownerReferences": [owner],
                "creationTimestamp": "2026-12-03T10:00:00Z",
            },
            "positionInLocalQueue": position,
            "priority": 100 - position,
        }

    pending = {"items": [item("b", 1), item("a", 0), {"metadata": {"name": "no-owner"}}]}

    front = front_of_queue(pending)

    assert [(job.name, job.position) for job in front] == [("a", 0), ("b", 1)]
    assert front[0].queued_since == 1796292000


def test_each_signature_and_definition_has_its_own_lease() -> None:
    names = {lease_name(sig, d) for sig in ("one", "two") for d in ("Echo_Job", "echo-job")}
    assert len(names) == 4
    assert all(len(n) <= 63 and n.startswith("jobfn-cap-echo-job-") for n in names)
