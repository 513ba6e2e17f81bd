"""Jobs on the local cluster's real node: real containers under containerd and runc.

Plain batch/v1 Jobs made with kubectl, without the function, and without the KWOK
opt-in (tests/helpers.py SIMULATED_NODE), so the scheduler puts their pods on the
real node. The images come from tests/cluster/images.py; nothing is ever pulled.
"""

from __future__ import annotations

from typing import Any

from kubernetes import client

from tests.cluster.node import NODE_NAME
from tests.helpers import Kubectl, wait_for
from tests.integration.test_cluster import create_job, job_condition, job_pods

BUSYBOX = "busybox"  # docker.io/library/busybox:latest to the kubelet, imported by images.py
POD_START_TIMEOUT = 90.0  # first pods on a cold node also wait for the pause image to unpack


def real_job(
    name: str, namespace: str, command: list[str], image: str = BUSYBOX, **spec: Any
) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main",
        "image": image,
        "imagePullPolicy": "IfNotPresent",  # :latest would mean Always, and there is no registry
        "command": command,
    }
    container.update(spec.pop("container", {}))
    pod_spec = {"restartPolicy": "Never", "containers": [container], **spec.pop("pod", {})}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            **spec,
            "template": {"spec": pod_spec},
        },
    }


def finished(api: client.ApiClient, namespace: str, name: str) -> client.V1JobCondition:
    return wait_for(
        lambda: job_condition(api, namespace, name), timeout=POD_START_TIMEOUT, what=f"Job {name} finished"
    )


def terminated_state(pod: client.V1Pod) -> client.V1ContainerStateTerminated:
    [status] = pod.status.container_statuses
    return status.state.terminated


def test_busybox_job_runs_on_the_real_node_and_its_log_has_the_echoed_text(
    api_client: client.ApiClient, kubectl: Kubectl, namespace: str
) -> None:
    create_job(kubectl, real_job("hello", namespace, ["sh", "-c", "echo hello from $(hostname)"]))

    condition = finished(api_client, namespace, "hello")

    assert condition.type == "Complete"
    [pod] = job_pods(api_client, namespace, "hello")
    assert pod.spec.node_name == NODE_NAME
    assert pod.status.pod_ip.startswith("10.244.0.")
    logs = kubectl("logs", "-n", namespace, "job/hello").stdout
    assert logs.strip() == f"hello from {pod.metadata.name}"


def test_container_exiting_3_fails_the_job_with_exit_code_3(
    api_client: client.ApiClient, kubectl: Kubectl, namespace: str
) -> None:
    create_job(kubectl, real_job("three", namespace, ["sh", "-c", "exit 3"]))

    condition = finished(api_client, namespace, "three")

    assert (condition.type, condition.reason) == ("Failed", "BackoffLimitExceeded")
    [pod] = job_pods(api_client, namespace, "three")
    assert pod.status.phase == "Failed"
    terminated = terminated_state(pod)
    assert (terminated.exit_code, terminated.reason) == (3, "Error")


def test_image_that_does_not_exist_leaves_the_pod_waiting_on_the_pull(
    api_client: client.ApiClient, kubectl: Kubectl, namespace: str
) -> None:
    create_job(kubectl, real_job("nowhere", namespace, ["true"], image="jobfn-test/does-not-exist:0"))

    def pull_failure() -> str | None:
        for pod in job_pods(api_client, namespace, "nowhere"):
            for status in pod.status.container_statuses or []:
                waiting = status.state.waiting
                if waiting and waiting.reason in ("ErrImagePull", "ImagePullBackOff"):
                    return str(waiting.reason)
        return None

    wait_for(pull_failure, timeout=POD_START_TIMEOUT, what="ErrImagePull or ImagePullBackOff")
    assert job_condition(api_client, namespace, "nowhere") is None  # still trying, not failed


def test_container_over_its_memory_limit_is_oom_killed(
    api_client: client.ApiClient, kubectl: Kubectl, namespace: str
) -> None:
    # dd holds one 64 MiB block in memory: twice the limit.
    command = ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"]
    limits = {"resources": {"limits": {"memory": "32Mi"}, "requests": {"memory": "32Mi"}}}
    create_job(kubectl, real_job("hungry", namespace, command, container=limits))

    condition = finished(api_client, namespace, "hungry")

    assert condition.type == "Failed"
    [pod] = job_pods(api_client, namespace, "hungry")
    terminated = terminated_state(pod)
    assert (terminated.reason, terminated.exit_code) == ("OOMKilled", 137)


def test_sleep_past_active_deadline_fails_with_deadline_exceeded_and_removes_the_pod(
    api_client: client.ApiClient, kubectl: Kubectl, namespace: str
) -> None:
    # sleep as PID 1 ignores SIGTERM: a short grace period spares the default 30 s wait.
    pod = {"terminationGracePeriodSeconds": 2}
    create_job(kubectl, real_job("slow", namespace, ["sleep", "300"], activeDeadlineSeconds=5, pod=pod))
    wait_for(
        lambda: any(p.status.phase == "Running" for p in job_pods(api_client, namespace, "slow")),
        timeout=POD_START_TIMEOUT,
        what="the pod Running",
    )

    condition = finished(api_client, namespace, "slow")

    assert (condition.type, condition.reason) == ("Failed", "DeadlineExceeded")
    wait_for(lambda: not job_pods(api_client, namespace, "slow"), timeout=60, what="its pod gone")


def test_indexed_array_job_children_each_print_their_own_index(
    api_client: client.ApiClient, kubectl: Kubectl, namespace: str
) -> None:
    command = ["sh", "-c", "echo index=$JOB_COMPLETION_INDEX"]
    create_job(
        kubectl,
        real_job("array", namespace, command, completionMode="Indexed", completions=3, parallelism=3),
    )

    condition = finished(api_client, namespace, "array")

    assert condition.type == "Complete"
    printed = {}
    for pod in job_pods(api_client, namespace, "array"):
        index = pod.metadata.annotations["batch.kubernetes.io/job-completion-index"]
        printed[index] = kubectl("logs", "-n", namespace, pod.metadata.name).stdout.strip()
    assert printed == {str(i): f"index={i}" for i in range(3)}


def test_pod_resolves_the_kubernetes_service_and_reaches_the_api_through_it(
    api_client: client.ApiClient, kubectl: Kubectl, namespace: str
) -> None:
    host = "kubernetes.default.svc.cluster.local"
    # Plain HTTP to the HTTPS port: Go's TLS server answers it in clear text, which proves
    # the connection reached the apiserver (busybox's nc has no -z here).
    script = f"nslookup {host} && printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {host} 443"
    create_job(kubectl, real_job("dns", namespace, ["sh", "-c", script]))

    condition = finished(api_client, namespace, "dns")

    logs = kubectl("logs", "-n", namespace, "job/dns").stdout
    assert condition.type == "Complete", logs
    service_ip = client.CoreV1Api(api_client).read_namespaced_service("kubernetes", "default").spec.cluster_ip
    assert service_ip in logs
    assert "Client sent an HTTP request to an HTTPS server." in logs
