"""The control plane failing under load: kube-apiserver stopped, etcd restarted, the reaper cut off.

Real clients (requests, the cloudevents SDK) retry the way production callers do
(tests/reliability/clients.py). Whatever the API does, every submission must end with
exactly one job, and every answer but a 2xx must be 503 or 429 with Retry-After.
"""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from jobfn._contract import DELETION_TIME_ANNOTATION, JobSigner
from tests.helpers import FUNCTION_SIGNATURE, FunctionServer, wait_for
from tests.integration.reaper_helpers import (
    DEFINITIONS_YAML,
    FINISHED_BY_TEST,
    parse_cli_output,
    reaper_env,
    run_cli,
    start_cli,
    write_final_status,
)
from tests.integration.reaper_helpers import SIGNATURE as REAPER_SIGNATURE
from tests.reliability.clients import Burst, audit, new_run_id, signed_jobs, submissions
from tests.reliability.faults import FaultCluster, outage

pytestmark = pytest.mark.cluster  # a control plane of its own: tests/reliability/faults.py

SUBMISSIONS = 1000
ANSWERED_BEFORE_FAULT = 300  # the fault strikes mid-burst, after this many answers
APISERVER_OUTAGE_SECONDS = 10.0
ETCD_OUTAGE_SECONDS = 8.0  # longer than the function's API timeout (5 s): requests in flight time out


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    ("component", "seconds"),
    [("kube-apiserver", APISERVER_OUTAGE_SECONDS), ("etcd", ETCD_OUTAGE_SECONDS)],
    ids=["apiserver-stopped", "etcd-restarted"],
)
def test_every_submission_ends_with_exactly_one_job_across_an_outage(
    component: str,
    seconds: float,
    fault_cluster: FaultCluster,
    fault_function: FunctionServer,
    fault_api: k8s.ApiClient,
    fault_namespace: str,
) -> None:
    with Burst(fault_function.url, submissions(new_run_id(), SUBMISSIONS)) as burst:
        burst.wait_for_answers(ANSWERED_BEFORE_FAULT, timeout=120)
        fault_began = time.monotonic()
        with outage(fault_cluster, component, seconds):
            answered_at_fault = burst.answered
        api_back_after = time.monotonic() - fault_began
        outcomes = burst.wait()

    result = audit(outcomes, signed_jobs(fault_api, fault_namespace, FUNCTION_SIGNATURE))
    print(
        f"\n{component} killed after {answered_at_fault} answers, started again {seconds:.0f} s later,"
        f" API ready again after {api_back_after:.1f} s: {result.summary()}"
    )
    assert result.statuses[503] > 0, "no submission met the outage: the test proved nothing"
    result.assert_exactly_one_job_each()


# --- the reaper cut off from the API ------------------------------------------------------------
DUE_JOBS = 300  # finished "quick" jobs, due at once with the retention given below
KEPT_JOBS = 20  # finished "kept" jobs: their definition keeps them a day
HELD_JOBS = 20  # finished "quick" jobs a user held (deletion time far ahead)
ACTIVE_JOBS = 20  # unfinished: never due
HELD_UNTIL = 4102444800  # 2100-01-01
REAPER_FLAGS = ("--succeeded-retention", "0", "--failed-retention", "0")


def make_job(
    batch: k8s.BatchV1Api, namespace: str, name: str, definition: str, outcome: str | None, **annotations: str
) -> None:
    """A signed job; finished (``outcome`` Complete or Failed) the way the Job controller writes it."""
    manifest: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "managedBy": FINISHED_BY_TEST,
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}
            },
        },
    }
    JobSigner(REAPER_SIGNATURE).sign(manifest, definition)
    batch.create_namespaced_job(namespace, manifest, _preload_content=False)
    if outcome is None:
        return
    write_final_status(batch, namespace, name, failed=outcome == "Failed")


def job_names(api: k8s.ApiClient, namespace: str) -> set[str]:
    return {job["metadata"]["name"] for job in signed_jobs(api, namespace, REAPER_SIGNATURE)}


@pytest.mark.timeout(300)
def test_reaper_cut_off_from_the_api_fails_deletes_nothing_wrongly_and_the_next_run_completes(
    fault_cluster: FaultCluster, fault_api: k8s.ApiClient, fault_namespace: str, tmp_path: Path
) -> None:
    batch = k8s.BatchV1Api(fault_api)
    due = {f"due-{i:04d}" for i in range(DUE_JOBS)}
    kept = {f"kept-{i:03d}" for i in range(KEPT_JOBS)}
    held = {f"held-{i:03d}" for i in range(HELD_JOBS)}
    active = {f"active-{i:03d}" for i in range(ACTIVE_JOBS)}
    outcomes = itertools.cycle(["Complete", "Complete", "Failed"])
    creations = [(name, "quick", next(outcomes), {}) for name in due]
    creations += [(name, "kept", next(outcomes), {}) for name in kept]
    creations += [
        (name, "quick", next(outcomes), {DELETION_TIME_ANNOTATION: str(HELD_UNTIL)}) for name in held
    ]
    creations += [(name, "quick", None, {}) for name in active]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda c: make_job(batch, fault_namespace, c[0], c[1], c[2], **c[3]), creations))
    never_due = kept | held | active
    assert job_names(fault_api, fault_namespace) == due | never_due

    definitions = tmp_path / "definitions.yaml"
    definitions.write_text(DEFINITIONS_YAML)
    env = reaper_env(
        fault_namespace,
        definitions,
        KUBECONFIG=str(fault_cluster.kubeconfig),
        JOBFN_API_TIMEOUT_SECONDS="5",
        JOBFN_LOG_LEVEL="WARNING",
    )

    # The API goes away in the middle of a run, and stays away for the whole of the next one.
    reaper = start_cli(env, *REAPER_FLAGS, "--workers", "1", "--page-size", "20")
    try:
        wait_for(
            lambda: len(job_names(fault_api, fault_namespace)) <= len(due | never_due) - 10,
            timeout=120,
            interval=0.05,
            what="the reaper deleting its first jobs",
        )
        with outage(fault_cluster, "kube-apiserver", 0):
            stdout, stderr = reaper.communicate(timeout=120)
            cut_off = run_cli(env, *REAPER_FLAGS, timeout=120)
    finally:
        if reaper.poll() is None:
            reaper.kill()
    interrupted = parse_cli_output(reaper.returncode, stdout, stderr)
    left = job_names(fault_api, fault_namespace)
    print(
        f"\nreaper cut off mid-run: {interrupted.summary}; {len(due - left)} of {DUE_JOBS} due jobs deleted"
        f"\nreaper run during the outage: {cut_off.summary}"
    )
    assert interrupted.returncode == 1, f"the reaper finished before the outage: {interrupted.summary}"
    assert interrupted.summary["errors"] >= 1, interrupted.summary
    assert cut_off.returncode == 1, cut_off.stderr[-2000:]
    assert cut_off.summary["errors"] >= 1 and cut_off.summary["deleted"] == 0, cut_off.summary
    assert never_due <= left, f"deleted before their time: {sorted(never_due - left)[:10]}"
    assert due - left, "nothing was deleted before the outage"
    assert left - due - never_due == set()

    # The next run completes.
    after = run_cli(env, *REAPER_FLAGS, timeout=120)
    assert after.returncode == 0, after.stderr[-2000:]
    assert after.summary["errors"] == 0, after.summary
    assert job_names(fault_api, fault_namespace) == never_due
