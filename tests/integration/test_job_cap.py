"""A definition's cap on active jobs (max_active_jobs) against the real API server: places held
in a Lease, taken and given back without listing the definition's jobs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobfn._contract import JobSigner
from jobfn._definitions import JobDefinitions
from jobfn._errors import TooManyRequests
from jobfn._job_cap import lease_name
from jobfn._kube import KubeApi
from jobfn._manager import JobManager
from jobfn._submission import Submission
from tests.helpers import SIMULATED_NODE, wait_for


def _definitions(cap: int | None) -> JobDefinitions:
    limit = f"max_active_jobs: {cap}" if cap is not None else ""
    return JobDefinitions.from_yaml(f"""
definitions:
  - name: capped
    {limit}
    parameters:
      run_ms: {{type: string, default: forever}}
    template: |
      apiVersion: batch/v1
      kind: Job
      metadata: {{name: capped}}
      spec:
        backoffLimit: 0
        template:
          metadata:
            annotations: {{jobfn.test/run-duration-ms: "{{{{ run_ms }}}}"}}
          spec:
            nodeSelector: {json.dumps(SIMULATED_NODE["nodeSelector"])}
            tolerations: {json.dumps(SIMULATED_NODE["tolerations"])}
            restartPolicy: Never
            containers: [{{name: main, image: busybox, command: ["true"]}}]
""")


def _manager(namespace: str, api_client: Any, cap: int | None) -> tuple[JobManager, list[tuple[str, str]]]:
    """A manager of the ``capped`` definition, and the (method, path) of every request it sends."""
    api = KubeApi(api_client)
    sent: list[tuple[str, str]] = []
    api.on_request.append(lambda method, path: sent.append((method, path)))
    return JobManager(namespace, JobSigner("jobfn-cap-test"), _definitions(cap), api=api), sent


def test_a_capped_submission_lists_no_jobs(namespace: str, api_client: Any) -> None:
    manager, sent = _manager(namespace, api_client, cap=5)
    manager.submit(Submission("capped"))  # the first use makes the Lease (from one listing)
    sent.clear()

    created = manager.submit(Submission("capped")).name

    lease = (
        f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{lease_name('jobfn-cap-test', 'capped')}"
    )
    jobs = f"/apis/batch/v1/namespaces/{namespace}/jobs"
    assert sent == [("GET", lease), ("PUT", lease), ("POST", jobs)], (
        "a read and a write of the Lease, the create"
    )
    assert created


def test_a_finished_job_gives_its_place_to_the_next_submission(namespace: str, api_client: Any) -> None:
    manager, sent = _manager(namespace, api_client, cap=2)
    quick = manager.submit(Submission("capped", {"run_ms": "200"})).name
    manager.submit(Submission("capped"))
    with pytest.raises(TooManyRequests, match="already has 2 active job"):
        manager.submit(Submission("capped"))
    wait_for(lambda: manager.view_job(quick).state == "SUCCEEDED", timeout=60)
    sent.clear()

    manager.submit(Submission("capped"))

    assert ("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/{quick}") in sent, "the holder was read"
    with pytest.raises(TooManyRequests, match="its cap is 2"):
        manager.submit(Submission("capped"))


def test_jobs_active_before_the_cap_was_first_used_hold_their_places(namespace: str, api_client: Any) -> None:
    uncapped, _ = _manager(namespace, api_client, cap=None)
    uncapped.submit(Submission("capped"))
    uncapped.submit(Submission("capped"))
    capped, _ = _manager(namespace, api_client, cap=2)

    with pytest.raises(TooManyRequests, match="already has 2 active job"):
        capped.submit(Submission("capped"))
