"""The function stopped under load: SIGTERM drains what it accepted; after SIGKILL, retries make up for it.

SIGTERM is what Kubernetes (and Knative scaling down) sends first: requests already
accepted must still be answered, with their jobs created. SIGKILL cuts everything
off: clients retry with the same keys against a restarted function, and every
submission must still end with exactly one job.
"""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from kubernetes import client as k8s

from tests.helpers import FUNCTION_SIGNATURE, FunctionServer, wait_for
from tests.reliability.clients import Burst, audit, new_run_id, signed_jobs, submissions
from tests.reliability.faults import FaultCluster, start_fault_function

pytestmark = pytest.mark.cluster  # a control plane of its own: tests/reliability/faults.py

IN_FLIGHT = 8  # the function's THREADS: each one holds a request when SIGTERM arrives
API_HELD_SECONDS = 3.0  # the API stays frozen this long after SIGTERM, so the requests are still in flight
KILLED_BURST = 600
ANSWERED_BEFORE_KILL = 150


def requests_waiting_at(port: int) -> int:
    """Connections to ``port`` holding bytes the (frozen) server has not read: requests waiting there."""
    waiting = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        established = fields[3] == "01"
        unread = int(fields[4].split(":")[1], 16)
        if local_port == port and established and unread > 0:
            waiting += 1
    return waiting


@pytest.mark.timeout(180)
def test_sigterm_lets_accepted_requests_finish_with_their_jobs(
    fault_cluster: FaultCluster, fault_api: k8s.ApiClient, fault_namespace: str, tmp_path: Path
) -> None:
    # A frozen API server holds each submission inside the function for as long as the test wants.
    function = start_fault_function(
        fault_cluster, fault_namespace, tmp_path, extra_env={"JOBFN_API_TIMEOUT_SECONDS": "30"}
    )
    wanted = submissions(new_run_id(), IN_FLIGHT, doors=["rest"])
    try:
        fault_cluster.pause("kube-apiserver")
        with ThreadPoolExecutor(IN_FLIGHT) as pool:
            answers = [
                pool.submit(
                    requests.post,
                    f"{function.url}/jobs",
                    json={"definition": "echo", "arguments": submission.arguments},
                    headers={"Idempotency-Key": submission.key},
                    timeout=60,
                )
                for submission in wanted
            ]
            wait_for(
                lambda: requests_waiting_at(fault_cluster.apiserver_port) >= IN_FLIGHT,
                timeout=60,
                interval=0.05,
                what=f"{IN_FLIGHT} submissions waiting on the frozen API server",
            )
            function.process.send_signal(signal.SIGTERM)
            time.sleep(API_HELD_SECONDS)  # how long the API stays frozen: the fault, not a wait
            assert function.process.poll() is None, "the function exited with requests in flight"
            fault_cluster.resume("kube-apiserver")
            statuses = [answer.result().status_code for answer in answers]
        exit_code = function.process.wait(timeout=60)
    finally:
        fault_cluster.resume("kube-apiserver")
        function.kill()

    assert statuses == [201] * IN_FLIGHT, (
        f"answers to the requests in flight: {statuses}\n{function.log()[-3000:]}"
    )
    jobs = {job["metadata"]["name"] for job in signed_jobs(fault_api, fault_namespace, FUNCTION_SIGNATURE)}
    assert jobs == {submission.job_name for submission in wanted}
    assert exit_code == 0, function.log()[-3000:]


@pytest.mark.timeout(300)
def test_after_sigkill_mid_burst_retries_against_the_restarted_function_give_one_job_each(
    fault_cluster: FaultCluster,
    fault_function: FunctionServer,
    fault_api: k8s.ApiClient,
    fault_namespace: str,
) -> None:
    port = int(fault_function.url.rsplit(":", 1)[1])
    with Burst(fault_function.url, submissions(new_run_id(), KILLED_BURST)) as burst:
        burst.wait_for_answers(ANSWERED_BEFORE_KILL, timeout=120)
        fault_function.kill()
        answered_at_kill = burst.answered
        restarted = start_fault_function(
            fault_cluster, fault_namespace, fault_function.log_path.parent, port=port
        )
        try:
            outcomes = burst.wait()
        finally:
            restarted.stop()

    result = audit(outcomes, signed_jobs(fault_api, fault_namespace, FUNCTION_SIGNATURE))
    print(f"\nfunction killed after {answered_at_kill} answers: {result.summary()}")
    assert result.statuses[0] > 0, "no submission met the killed function: the test proved nothing"
    result.assert_exactly_one_job_each()
