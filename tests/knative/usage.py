"""What Knative's components cost on the real node at rest: CPU and memory per pod.

Read from the kubelet's summary API (through the API server's node proxy): each pod's
CPU rate (cAdvisor's, over its last few seconds) and working-set memory, sampled a few
times and averaged.

    python -m tests.knative usage [--samples N] [--interval SECONDS]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from dataclasses import dataclass

from tests.cluster import localcluster
from tests.cluster.node import NODE_NAME
from tests.knative.manifests import SYSTEM_NAMESPACES


@dataclass(frozen=True)
class PodUsage:
    namespace: str
    pod: str
    cpu_millicores: float
    memory_mib: float


def _summary() -> dict[str, object]:
    result = subprocess.run(
        [
            str(localcluster.kubectl_path()),
            f"--kubeconfig={localcluster.kubeconfig_path()}",
            "get",
            "--raw",
            f"/api/v1/nodes/{NODE_NAME}/proxy/stats/summary",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


def sample(namespaces: tuple[str, ...] = SYSTEM_NAMESPACES) -> list[PodUsage]:
    found = []
    for pod in _summary().get("pods", []):  # type: ignore[attr-defined]
        ref = pod["podRef"]
        if ref["namespace"] not in namespaces:
            continue
        cpu = (pod.get("cpu") or {}).get("usageNanoCores") or 0
        memory = (pod.get("memory") or {}).get("workingSetBytes") or 0
        found.append(PodUsage(ref["namespace"], ref["name"], cpu / 1e6, memory / 2**20))
    return found


def at_rest(samples: int = 4, interval: float = 10.0) -> list[PodUsage]:
    """Each pod's mean CPU and memory over ``samples`` readings ``interval`` seconds apart."""
    readings: dict[tuple[str, str], list[PodUsage]] = {}
    for index in range(samples):
        for usage in sample():
            readings.setdefault((usage.namespace, usage.pod), []).append(usage)
        if index < samples - 1:
            time.sleep(interval)
    return [
        PodUsage(
            namespace,
            pod,
            statistics.fmean(u.cpu_millicores for u in found),
            statistics.fmean(u.memory_mib for u in found),
        )
        for (namespace, pod), found in sorted(readings.items())
    ]


def report(usages: list[PodUsage]) -> str:
    lines = [f"{'namespace':18} {'pod':52} {'CPU (m)':>8} {'memory (MiB)':>13}"]
    for usage in usages:
        lines.append(
            f"{usage.namespace:18} {usage.pod[:52]:52} {usage.cpu_millicores:8.1f} {usage.memory_mib:13.1f}"
        )
    for namespace in SYSTEM_NAMESPACES:
        mine = [u for u in usages if u.namespace == namespace]
        cpu, memory = sum(u.cpu_millicores for u in mine), sum(u.memory_mib for u in mine)
        lines.append(f"{namespace:18} {f'({len(mine)} pods)':52} {cpu:8.1f} {memory:13.1f}")
    total_cpu, total_memory = sum(u.cpu_millicores for u in usages), sum(u.memory_mib for u in usages)
    lines.append(f"{'all':18} {f'({len(usages)} pods)':52} {total_cpu:8.1f} {total_memory:13.1f}")
    return "\n".join(lines)
