"""Pod start latency on the real node: create -> Running, one pod at a time.

    python -m tests.cluster podstart [--pods 50]

Each busybox pod is created, watched until its phase is Running (timed from the create
call), then deleted; the pods go one after the other so each figure is the node's own
latency, not a queue. Prints p50, p95 and max in seconds.
"""

from __future__ import annotations

import statistics
import time
import uuid

from kubernetes import client, config, watch

from tests.cluster import localcluster

IMAGE = "busybox"  # imported by tests/cluster/images.py


def _pod(name: str) -> client.V1Pod:
    container = client.V1Container(
        name="main", image=IMAGE, image_pull_policy="IfNotPresent", command=["sleep", "3600"]
    )
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            containers=[container], restart_policy="Never", termination_grace_period_seconds=0
        ),
    )


def _time_to_running(core: client.CoreV1Api, namespace: str, name: str, timeout: float = 120) -> float:
    began = time.monotonic()
    core.create_namespaced_pod(namespace, _pod(name))
    stream = watch.Watch()  # type: ignore[no-untyped-call]
    for event in stream.stream(  # type: ignore[no-untyped-call]
        core.list_namespaced_pod,
        namespace,
        field_selector=f"metadata.name={name}",
        timeout_seconds=int(timeout),
    ):
        phase = event["object"].status.phase
        if phase == "Running":
            stream.stop()  # type: ignore[no-untyped-call]
            return time.monotonic() - began
        if phase in ("Failed", "Succeeded"):
            raise RuntimeError(f"pod {name} ended {phase} before Running")
    raise TimeoutError(f"pod {name} not Running after {timeout} s")


def measure(pods: int) -> list[float]:
    """Seconds from create to Running for ``pods`` pods, in a namespace of their own (deleted after)."""
    kubeconfig = localcluster.ensure_running()
    with config.new_client_from_config(config_file=str(kubeconfig)) as api:  # type: ignore[no-untyped-call]
        core = client.CoreV1Api(api)
        namespace = f"podstart-{uuid.uuid4().hex[:6]}"
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        try:
            while not core.list_namespaced_service_account(
                namespace, field_selector="metadata.name=default"
            ).items:
                time.sleep(0.1)
            latencies = []
            for index in range(pods):
                name = f"pod-{index:03d}"
                latencies.append(_time_to_running(core, namespace, name))
                core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
            return latencies
        finally:
            core.delete_namespace(namespace, propagation_policy="Background")


def report(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)]
    return (
        f"pod start (create -> Running), {len(ordered)} pods one at a time: "
        f"p50 {statistics.median(ordered):.2f} s, p95 {p95:.2f} s, max {ordered[-1]:.2f} s"
    )
