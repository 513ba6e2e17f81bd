"""Namespaces holding N finished jobs, made for the scale part and deleted after it.

Making 50,000 jobs takes minutes (a create and a status write each: 229 s for 10,000 and
50,000 on a quiet machine), so a fixture namespace is named by its size and a key of what
its jobs hold, and a run reuses one that a previous run completed and kept
(``--keep-fixtures``; the namespace's ``jobfn-bench/complete`` annotation says it is
complete). A fixture of an older content is deleted when a newer one is made; a run
that did not ask to keep them, and ``python -m bench --drop-fixtures``, delete them all:
60,000 Jobs left in the shared cluster slowed it and made Knative's eventing webhook
(200 MiB as shipped; it caches Jobs for SinkBindings) run out of memory.

The jobs are what jobfn leaves once jobs of the capped definition have finished and the
reaper has marked them: nine in ten SUCCEEDED, one in ten FAILED, a deletion time a
month ahead and the final-state label; named as jobfn names them (the definition, then a
random suffix, drawn here from the index so a re-run names them alike) and labelled with
when they were made, as jobfn's job store labels every job it creates. ``spec.managedBy``
hands them to an absent controller, so the Job controller makes no pods and never touches
them, and their status is written here as an external controller's would be.
"""

from __future__ import annotations

import hashlib
import json
import random
import string
import time
from datetime import UTC, datetime
from typing import Any

from jobfn._contract import (
    CREATED_LABEL,
    DEFINITION_LABEL,
    DELETION_TIME_ANNOTATION,
    FINAL_STATE_LABEL,
    QUEUE_LABEL,
    name_prefix,
)
from jobfn._kube import KubeApi
from jobfn._queues import DEFAULT_QUEUE_NAME

from .cluster import BenchCluster, parallel
from .workload import CAPPED_DEFINITION_NAME, rendered_job

FIXTURE_LABEL = "jobfn-bench-fixture"
COMPLETE_ANNOTATION = "jobfn-bench/complete"
PREFIX = "jobfn-scale-"
#: Bump when the fixture jobs change in a way the rendered Job does not show.
VERSION = 2
FAILED_EVERY = 10


def _template() -> dict[str, Any]:
    job = rendered_job("fixture")
    metadata = job["metadata"]
    metadata["labels"][DEFINITION_LABEL] = CAPPED_DEFINITION_NAME
    metadata["labels"][QUEUE_LABEL] = DEFAULT_QUEUE_NAME
    metadata["annotations"][DELETION_TIME_ANNOTATION] = "0"  # set per fixture
    job["spec"]["suspend"] = False
    job["spec"]["managedBy"] = "bench.jobfn.dev/finished-by-the-benchmark"
    return job


def key() -> str:
    """What the fixture jobs hold, hashed: a fixture made from other content is not reused."""
    text = json.dumps({"version": VERSION, "job": _template(), "failed_every": FAILED_EVERY}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def namespace_for(size: int) -> str:
    return f"{PREFIX}{size}-{key()}"


def _status(failed: bool, at: str) -> dict[str, Any]:
    condition = {"status": "True", "lastProbeTime": at, "lastTransitionTime": at}
    if failed:
        return {"status": {"startTime": at, "failed": 1, "conditions": [
            {**condition, "type": "FailureTarget", "reason": "BackoffLimitExceeded"},
            {**condition, "type": "Failed", "reason": "BackoffLimitExceeded"}]}}  # fmt: skip
    return {"status": {"startTime": at, "completionTime": at, "succeeded": 1, "conditions": [
        {**condition, "type": "SuccessCriteriaMet", "reason": "CompletionsReached"},
        {**condition, "type": "Complete", "reason": "CompletionsReached"}]}}  # fmt: skip


def _name(index: int) -> str:
    suffix = "".join(random.Random(index).choices(string.ascii_lowercase + string.digits, k=8))
    return f"{name_prefix(CAPPED_DEFINITION_NAME, len(suffix))}-{suffix}"


def _make(cluster: BenchCluster, namespace: str, size: int, say: Any) -> None:
    api = KubeApi(cluster.api, timeout=120, pool_size=16)
    template = _template()
    fixture = key()
    finished_at = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    delete_at = str(int(time.time()) + 30 * 86400)
    jobs = f"/apis/batch/v1/namespaces/{namespace}/jobs"

    def create(index: int) -> None:
        failed = index % FAILED_EVERY == 0
        name = _name(index)
        metadata = template["metadata"]
        labels = {
            **metadata["labels"],
            FIXTURE_LABEL: fixture,
            FINAL_STATE_LABEL: "FAILED" if failed else "SUCCEEDED",
            CREATED_LABEL: str(time.time_ns() // 1_000_000),
        }
        annotations = {**metadata["annotations"], DELETION_TIME_ANNOTATION: delete_at}
        job = {**template, "metadata": {**metadata, "name": name, "namespace": namespace,
                                        "labels": labels, "annotations": annotations}}  # fmt: skip
        try:
            api.request_bytes("POST", jobs, body=job, doing=f"create {name}")
        except Exception as error:  # a re-run after an interrupted one: the job is there
            if "already exists" not in str(error):
                raise
        api.request_bytes(
            "PATCH", f"{jobs}/{name}/status", body=_status(failed, finished_at),
            content_type="application/merge-patch+json", doing=f"finish {name}",
        )  # fmt: skip

    started = time.monotonic()
    parallel(create, range(size), threads=16)
    api.close()
    say(f"fixture {namespace}: {size} finished jobs made in {time.monotonic() - started:.0f} s")


def ensure(cluster: BenchCluster, size: int, say: Any) -> str:
    """The namespace holding ``size`` finished jobs, made unless a complete one is kept."""
    namespace = namespace_for(size)
    found = cluster.namespace_annotations(namespace)
    if found is not None and found.get(COMPLETE_ANNOTATION) == str(size):
        return namespace
    for stale in cluster.namespaces_with_prefix(f"{PREFIX}{size}-"):
        if stale != namespace:
            say(f"fixture {stale}: older content, deleted")
            cluster.delete_namespace(stale)
    cluster.ensure_namespace(namespace)
    _make(cluster, namespace, size, say)
    cluster.annotate_namespace(namespace, {COMPLETE_ANNOTATION: str(size)})
    return namespace


def drop_all(cluster: BenchCluster, say: Any) -> None:
    """Delete every fixture namespace (the shared cluster should not keep 60,000 jobs)."""
    for namespace in cluster.namespaces_with_prefix(PREFIX):
        say(f"fixture {namespace}: deleted")
        cluster.delete_namespace(namespace)
