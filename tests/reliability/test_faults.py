"""The control plane failing under load: kube-apiserver stopped, etcd restarted, the reaper cut off.

Real clients (requests, the cloudevents SDK) retry the way production callers do
(tests/reliability/clients.py). Whatever the API does, every submission must end with
exactly one job, and every answer but a 2xx must be 503 or 429 with Retry-After.
"""

from __future__ import annotations

import pytest
from kubernetes import client as k8s

from tests.helpers import FUNCTION_SIGNATURE, FunctionServer
from tests.reliability.clients import Burst, audit, new_run_id, signed_jobs, submissions
from tests.reliability.faults import FaultCluster, outage

SUBMISSIONS = 1000
ANSWERED_BEFORE_FAULT = 300  # the fault strikes mid-burst, after this many answers
APISERVER_OUTAGE_SECONDS = 10.0
ETCD_OUTAGE_SECONDS = 5.0


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
    burst = Burst(fault_function.url, submissions(new_run_id(), SUBMISSIONS)).start()
    burst.wait_for_answers(ANSWERED_BEFORE_FAULT, timeout=120)
    with outage(fault_cluster, component, seconds):
        answered_at_fault = burst.answered
    outcomes = burst.wait()

    result = audit(outcomes, signed_jobs(fault_api, fault_namespace, FUNCTION_SIGNATURE))
    print(f"\n{component} down {seconds:.0f} s after {answered_at_fault} answers: {result.summary()}")
    assert result.statuses[503] > 0, "no submission met the outage: the test proved nothing"
    result.assert_exactly_one_job_each()
