"""2,000 finished jobs reaped in one run: how long it takes, how many API calls, how much memory.

The jobs here are finished by the test itself: ``spec.managedBy`` hands each Job's
status to its creator, and the test writes Complete or Failed the way the Job
controller would. On a busy 2-core machine the local control plane completes only a
few KWOK pods per second, which would make the setup, not the reaper, the thing
measured; the other reaper tests use KWOK-run jobs.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from jobfn._contract import ARGUMENTS_ANNOTATION, JobSigner
from tests.integration.reaper_helpers import (
    FINISHED_BY_TEST,
    ROOT,
    SIGNATURE,
    job_manager,
    jobs_in,
    parse_cli_output,
    reaper_env,
    wait_until_terminal,
    write_final_status,
)

JOBS = 2000
FAILED_EVERY = 10  # every tenth job failed, the rest succeeded
PAGE_SIZE = 500


@pytest.fixture
def wide_api_client(kubeconfig: Path) -> Any:
    """An API client with a connection per creating thread."""
    configuration = k8s.Configuration()
    k8s_config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    configuration.connection_pool_maxsize = 16
    with k8s.ApiClient(configuration) as api:
        yield api


def finished_job(namespace: str, api: Any, index: int) -> str:
    """Create one signed job and write its final status; its name."""
    batch = k8s.BatchV1Api(api)
    manifest: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"quick-{index:05d}",
            "annotations": {ARGUMENTS_ANNOTATION: json.dumps({"i": index})},
        },
        "spec": {
            "managedBy": FINISHED_BY_TEST,
            "backoffLimit": 0,
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}
            },
        },
    }
    JobSigner(SIGNATURE).sign(manifest, "quick")
    name = manifest["metadata"]["name"]
    batch.create_namespaced_job(namespace, manifest, _preload_content=False)
    write_final_status(batch, namespace, name, failed=index % FAILED_EVERY == 0)
    return name


@pytest.mark.timeout(900)
def test_two_thousand_finished_jobs_are_reaped_in_one_run(
    namespace: str, api_client: Any, wide_api_client: Any
) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        names = list(pool.map(lambda i: finished_job(namespace, wide_api_client, i), range(JOBS)))
    wait_until_terminal(job_manager(namespace, api_client), names, timeout=60)
    ready = time.monotonic() - started

    flags = ["--succeeded-retention", "0", "--failed-retention", "0", "--page-size", str(PAGE_SIZE)]
    reaper_started = time.monotonic()
    with open(os.devnull, "w") as no_logs:
        process = subprocess.Popen(
            [sys.executable, "-m", "jobfn.reaper", *flags],
            cwd=ROOT,
            env=reaper_env(namespace, JOBFN_LOG_LEVEL="WARNING"),
            stdout=subprocess.PIPE,
            stderr=no_logs,
            text=True,
        )
        assert process.stdout is not None
        with process.stdout:
            stdout = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)  # wait4: this child's own peak RSS
        process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - reaper_started
    run = parse_cli_output(process.returncode, stdout, "")

    print(
        f"\n{JOBS} finished jobs ready in {ready:.1f}s; reaper: wall time {wall:.1f}s"
        f" (run {run.summary['duration_seconds']}s), {run.summary['api_calls']} API calls,"
        f" peak RSS {usage.ru_maxrss / 1024:.0f} MiB, load average {os.getloadavg()[0]:.1f}"
    )
    assert process.returncode == 0
    expected = {"seen": JOBS, "marked": 0, "archived": JOBS, "deleted": JOBS, "errors": 0, "skipped": 0}
    assert {key: run.summary[key] for key in expected} == expected
    assert len({record["id"] for record in run.records}) == JOBS
    assert sum(record["data"]["state"] == "FAILED" for record in run.records) == JOBS // FAILED_EVERY
    # Per job one delete (due at first sight: no mark); per page one job list and a pod
    # list per hundred jobs.
    pages = math.ceil(JOBS / PAGE_SIZE)
    assert run.summary["api_calls"] <= JOBS + pages + math.ceil(JOBS / 100) + 2  # + waiting jobs and pods
    assert jobs_in(api_client, namespace) == {}
