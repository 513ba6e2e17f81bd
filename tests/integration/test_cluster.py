"""The local test cluster behaves like the parts of Kubernetes jobfn relies on.

Runs against the real control plane (tests/cluster); pods are simulated by KWOK,
driven by the jobfn.test/* annotations described in tests/cluster/README.md.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import requests
from kubernetes import client

from tests.helpers import Kubectl, on_simulated_node, wait_for

RUN_DURATION = "jobfn.test/run-duration-ms"
EXIT_CODE = "jobfn.test/exit-code"


def job_manifest(name: str, namespace: str, annotations: dict[str, str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            **spec,
            "template": {
                "metadata": {"annotations": annotations},
                "spec": on_simulated_node(
                    {
                        "restartPolicy": "Never",
                        "containers": [{"name": "main", "image": "busybox", "command": ["true"]}],
                    }
                ),
            },
        },
    }


def create_job(kubectl: Kubectl, manifest: dict[str, Any]) -> None:
    kubectl("create", "-f", "-", input=json.dumps(manifest))


def job_condition(api: client.ApiClient, namespace: str, name: str) -> client.V1JobCondition | None:
    """The Job's terminal condition (Complete or Failed, status True), if any."""
    job = client.BatchV1Api(api).read_namespaced_job_status(name, namespace)
    for condition in job.status.conditions or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return condition
    return None


def job_pods(api: client.ApiClient, namespace: str, name: str) -> list[client.V1Pod]:
    return client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=f"job-name={name}").items


def running_and_ready(pod: client.V1Pod) -> bool:
    statuses = pod.status.container_statuses or []
    return (
        pod.status.phase == "Running"
        and bool(statuses)
        and all(s.ready and s.state.running and s.state.running.started_at for s in statuses)
    )


def test_job_created_with_kubectl_runs_then_completes(
    api_client: client.ApiClient, kubectl: Kubectl, namespace: str
) -> None:
    create_job(kubectl, job_manifest("ok", namespace, {RUN_DURATION: "1500"}))

    pod = wait_for(
        lambda: next((p for p in job_pods(api_client, namespace, "ok") if running_and_ready(p)), None),
        what="a Running, Ready pod",
    )
    assert pod.status.pod_ip
    condition = wait_for(lambda: job_condition(api_client, namespace, "ok"), what="Job Complete")

    assert condition.type == "Complete"
    [pod] = job_pods(api_client, namespace, "ok")
    assert pod.status.phase == "Succeeded"
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 0
    assert terminated.finished_at - terminated.started_at >= timedelta(seconds=1)


def test_failing_job_retries_then_fails_with_backoff_limit_exceeded(
    api_client: client.ApiClient, kubectl: Kubectl, namespace: str
) -> None:
    create_job(kubectl, job_manifest("bad", namespace, {EXIT_CODE: "3", RUN_DURATION: "200"}, backoffLimit=1))

    condition = wait_for(lambda: job_condition(api_client, namespace, "bad"), timeout=90, what="Job Failed")

    assert (condition.type, condition.reason) == ("Failed", "BackoffLimitExceeded")
    pods = job_pods(api_client, namespace, "bad")
    assert len(pods) == 2
    for pod in pods:
        assert pod.status.phase == "Failed"
        terminated = pod.status.container_statuses[0].state.terminated
        assert (terminated.exit_code, terminated.reason) == (3, "Error")
    assert client.BatchV1Api(api_client).read_namespaced_job_status("bad", namespace).status.failed == 2


def test_job_running_past_active_deadline_fails_with_deadline_exceeded(
    api_client: client.ApiClient, kubectl: Kubectl, namespace: str
) -> None:
    create_job(kubectl, job_manifest("slow", namespace, {RUN_DURATION: "forever"}, activeDeadlineSeconds=2))

    condition = wait_for(lambda: job_condition(api_client, namespace, "slow"), what="Job Failed")

    assert (condition.type, condition.reason) == ("Failed", "DeadlineExceeded")
    wait_for(lambda: not job_pods(api_client, namespace, "slow"), what="its pod gone")


def test_deleting_job_in_background_removes_its_pods(
    api_client: client.ApiClient, kubectl: Kubectl, namespace: str
) -> None:
    create_job(kubectl, job_manifest("doomed", namespace, {RUN_DURATION: "forever"}))
    wait_for(
        lambda: any(running_and_ready(p) for p in job_pods(api_client, namespace, "doomed")),
        what="a Running pod",
    )
    [pod] = job_pods(api_client, namespace, "doomed")
    assert "batch.kubernetes.io/job-tracking" in (pod.metadata.finalizers or [])

    client.BatchV1Api(api_client).delete_namespaced_job("doomed", namespace, propagation_policy="Background")

    wait_for(lambda: not job_pods(api_client, namespace, "doomed"), what="the Job's pods gone")


@pytest.fixture
def reader_token(api_client: client.ApiClient, kubectl: Kubectl, namespace: str) -> str:
    """A TokenRequest token for ServiceAccount "reader", bound to a Role allowing get/list Jobs."""
    rbac = client.RbacAuthorizationV1Api(api_client)
    client.CoreV1Api(api_client).create_namespaced_service_account(
        namespace, {"metadata": {"name": "reader"}}
    )
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "job-reader"},
            "rules": [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader-reads-jobs"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "job-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    return kubectl("create", "token", "reader", "-n", namespace, "--duration=10m").stdout.strip()


def test_service_account_token_is_limited_to_its_role(
    api_client: client.ApiClient, namespace: str, reader_token: str
) -> None:
    jobs = f"/apis/batch/v1/namespaces/{namespace}/jobs"
    with bearer_session(api_client.configuration, reader_token) as status:
        # RBAC caches are eventually consistent: wait for the binding to take effect.
        wait_for(lambda: status("GET", jobs) == 200, timeout=30, what="the Role to allow listing Jobs")

        assert status("GET", f"{jobs}/missing") == 404  # allowed verb, object absent
        assert status("POST", jobs, job_manifest("forbidden", namespace, {})) == 403
        assert status("GET", f"/api/v1/namespaces/{namespace}/secrets") == 403
        assert status("GET", "/apis/batch/v1/jobs") == 403  # all namespaces


@contextlib.contextmanager
def bearer_session(cfg: client.Configuration, token: str) -> Iterator[Callable[..., int]]:
    """Yields status(method, path, body=None) -> HTTP status, authenticated by token only."""
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"

        def status(method: str, path: str, body: Any = None) -> int:
            # verify per request: a session-level one loses to $REQUESTS_CA_BUNDLE.
            url = f"{cfg.host}{path}"
            return session.request(method, url, json=body, verify=cfg.ssl_ca_cert, timeout=10).status_code

        yield status


def test_token_review_authenticates_service_account_token(
    kubectl: Kubectl, namespace: str, reader_token: str
) -> None:
    review = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": reader_token},
    }

    result = json.loads(kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review)).stdout)

    assert result["status"]["authenticated"] is True
    user = result["status"]["user"]
    assert user["username"] == f"system:serviceaccount:{namespace}:reader"
    assert f"system:serviceaccounts:{namespace}" in user["groups"]


def test_token_review_rejects_a_forged_token(kubectl: Kubectl, reader_token: str) -> None:
    header, payload, signature = reader_token.split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": forged}}

    result = json.loads(kubectl("create", "-f", "-", "-o", "json", input=json.dumps(review)).stdout)

    assert not result["status"].get("authenticated")


def test_kubectl_logs_of_finished_pod_returns_simulated_output(
    api_client: client.ApiClient, kubectl: Kubectl, namespace: str
) -> None:
    create_job(kubectl, job_manifest("talk", namespace, {RUN_DURATION: "100"}))
    wait_for(lambda: job_condition(api_client, namespace, "talk"), what="Job Complete")
    [pod] = job_pods(api_client, namespace, "talk")

    logs = kubectl("logs", pod.metadata.name, "-n", namespace).stdout

    assert "simulated" in logs
    assert len(logs.splitlines()) >= 2
