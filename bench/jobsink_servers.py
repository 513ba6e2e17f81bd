"""The jobsink part's servers: Knative's JobSink as Eventing installs it, the same JobSink with
its API client's rate limits raised, and jobfn, all in the local cluster's network namespace.

JobSink as Eventing's manifests deploy it runs its Kubernetes client at client-go's defaults
(5 requests/s, burst 10, for each API group's client) and spends two batch/v1 calls on an
event (a list, its duplicate check, and the create): it cannot pass ~2.5 events/s, whatever
its code costs. So the part also runs a second JobSink Deployment, Eventing's own spec with
``KUBE_API_QPS``/``KUBE_API_BURST`` (knative.dev/pkg's knobs for that client) raised, in the
bench's JobSink namespace, bound to Eventing's job-sink ClusterRole: the same binary serving
the same JobSink object, without the throttle.
"""

from __future__ import annotations

import glob
import json
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EVENTING_NAMESPACE = "knative-eventing"
JOBSINK_SELECTOR = "sinks.knative.dev/sink=job-sink"
RAISED_NAME = "job-sink-limits-raised"
RAISED_LABEL = ("jobfn.dev/bench", RAISED_NAME)
RAISED_LIMITS = {"KUBE_API_QPS": "1000", "KUBE_API_BURST": "2000"}
JOBSINK_ROLE = "knative-eventing-job-sink"  # Eventing's ClusterRole for its job-sink account
ACCOUNT = "job-sink"
DEFAULT_LIMITS = "client-go defaults (5 requests/s, burst 10, per API group)"


@dataclass(frozen=True)
class Container:
    """A running JobSink pod's one container: where to reach it and where its CPU is counted."""

    cgroup: Path
    """Its cgroup v1 cpuacct directory (``cpuacct.usage``, ``cgroup.procs``)."""
    image: str
    pod_ip: str
    api_limits: str


def running_container(kubectl: Any, namespace: str, selector: str) -> Container:
    """The one running, not deleting, pod's container that ``selector`` picks."""
    from tests.knative.services import get_json

    pods = get_json(kubectl, "pods", "-n", namespace, "-l", selector)["items"]
    running = [
        p
        for p in pods
        if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
    ]
    if len(running) != 1:
        raise RuntimeError(f"expected one running pod {selector} in {namespace}, found {len(running)}")
    [pod] = running
    [status] = pod["status"]["containerStatuses"]
    container_id = status["containerID"].split("://", 1)[1]
    uid = pod["metadata"]["uid"]
    # The kubelet's cgroupfs layout: <cgroup root>/kubepods/[<QoS class>/]pod<uid>/<container id>.
    patterns = [
        f"/sys/fs/cgroup/cpuacct/{middle}pod{uid}/{container_id}"
        for middle in ("*/kubepods/*/", "*/kubepods/", "kubepods/*/", "kubepods/")
    ]
    found = [path for pattern in patterns for path in glob.glob(pattern)]
    if len(found) != 1:
        raise RuntimeError(f"no cgroup for pod {uid}'s container {container_id[:12]} ({len(found)} found)")
    env = {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0].get("env", [])}
    limits = ", ".join(f"{name}={env[name]}" for name in RAISED_LIMITS if name in env)
    return Container(Path(found[0]), status["image"], pod["status"]["podIP"], limits or DEFAULT_LIMITS)


def raised_limits_deployment(installed: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    """Eventing's job-sink Deployment (``installed``, as read from the cluster) moved to
    ``namespace`` with its API client's limits raised, and the account it runs as."""
    spec = installed["spec"]
    labels = dict([RAISED_LABEL])
    spec["selector"] = {"matchLabels": labels}
    spec["template"]["metadata"] = {"labels": labels}
    pod = spec["template"]["spec"]
    pod.pop("affinity", None)
    pod.pop("serviceAccount", None)
    pod["serviceAccountName"] = ACCOUNT
    [container] = pod["containers"]
    # It still reads its configuration (logging, features: OIDC) from Eventing's namespace.
    fixed = {"SYSTEM_NAMESPACE": EVENTING_NAMESPACE, "NAMESPACE": EVENTING_NAMESPACE, **RAISED_LIMITS}
    container["env"] = [e for e in container["env"] if e["name"] not in fixed]
    container["env"] += [{"name": name, "value": value} for name, value in fixed.items()]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": ACCOUNT, "namespace": namespace}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{namespace}-{ACCOUNT}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": JOBSINK_ROLE},
            "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": namespace}],
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": RAISED_NAME, "namespace": namespace},
            "spec": spec,
        },
    ]


def start_raised_limits(kubectl: Any, namespace: str, stack: ExitStack) -> Container:
    """The raised-limits JobSink in ``namespace``, rolled out; its binding removed by ``stack``
    (the rest goes with the namespace)."""
    from tests.knative.services import get_json

    objects = raised_limits_deployment(
        get_json(kubectl, "deployment", "-n", EVENTING_NAMESPACE, "job-sink"), namespace
    )
    binding = objects[1]["metadata"]["name"]
    stack.callback(
        lambda: kubectl("delete", "clusterrolebinding", binding, "--ignore-not-found", check=False)
    )
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    kubectl("rollout", "status", "-n", namespace, f"deployment/{RAISED_NAME}", "--timeout=180s")
    return running_container(kubectl, namespace, "=".join(RAISED_LABEL))
