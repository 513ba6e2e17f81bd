"""Knative Serving, Eventing and Traefik installed into the local cluster, once.

    install()   build (once per machine), import the images (once per containerd), apply the
                manifests (once per cluster) and wait until every component serves

The applied set is recorded in the ConfigMap knative-serving/jobfn-knative (a digest of
every manifest): a cluster that already runs this exact set, all of it available, is left
alone, so a warm call costs a few kubectl calls. Installs are serialised by a lock file, so
parallel test sessions share one installation.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from tests.cluster import localcluster
from tests.knative import images, manifests
from tests.knative.manifests import SYSTEM_NAMESPACES, Manifest

RECORD = ("knative-serving", "jobfn-knative")
FIELD_MANAGER = "jobfn-knative"
TIMEOUT = float(300)
MINIMUM_KUBERNETES_MINOR = 34  # knative.dev/pkg's version.DefaultKubernetesMinVersion


class KnativeError(Exception):
    pass


@dataclass(frozen=True)
class Installed:
    """What install() found or did, and how long each step took."""

    digest: str
    knative_version: str
    traefik_version: str
    applied: bool  # False: the cluster already ran this exact set
    seconds: dict[str, float]


def _kubectl(*args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(localcluster.kubectl_path()), f"--kubeconfig={localcluster.kubeconfig_path()}", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    if check and result.returncode != 0:
        raise KnativeError(f"kubectl {' '.join(args[:3])} failed: {result.stderr.strip()[-3000:]}")
    return result


def _apply(objects: list[Manifest]) -> subprocess.CompletedProcess[str]:
    # Server-side: the largest CRDs exceed client-side apply's annotation limit, and fields the
    # webhooks set themselves (rules, CA bundles) stay theirs.
    stream = "\n---\n".join(json.dumps(m) for m in objects)
    return _kubectl(
        "apply", "--server-side", "--force-conflicts", f"--field-manager={FIELD_MANAGER}", "-f", "-",
        input=stream, check=False,
    )  # fmt: skip


def _wait_until(what: str, check: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise KnativeError(f"Knative install: {what} not within {timeout:.0f} s{_diagnosis()}")
        time.sleep(1)


def _diagnosis() -> str:
    pods = _kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout
    lines = [line for line in pods.splitlines() if line.split()[:1] and line.split()[0] in SYSTEM_NAMESPACES]
    return "\n" + "\n".join(lines) if lines else ""


def _workloads() -> dict[tuple[str, str, str], Manifest]:
    """(kind, namespace, name) → the live Deployments and StatefulSets of Knative's namespaces."""
    found: dict[tuple[str, str, str], Manifest] = {}
    for namespace in SYSTEM_NAMESPACES:
        result = _kubectl("get", "deployments,statefulsets", "-n", namespace, "-o", "json", check=False)
        for item in json.loads(result.stdout)["items"] if result.returncode == 0 else []:
            found[(item["kind"], namespace, item["metadata"]["name"])] = item
    return found


def _available(workload: Manifest) -> bool:
    wanted = workload["spec"].get("replicas", 1)
    status = workload.get("status") or {}
    return bool(
        status.get("observedGeneration") == workload["metadata"]["generation"]
        and status.get("updatedReplicas", 0) == wanted
        and status.get("readyReplicas", 0) == wanted
        and status.get("replicas", 0) == wanted
    )


def all_available(expected: list[Manifest]) -> bool:
    """Every Deployment and StatefulSet of ``expected`` runs its replicas, all updated and ready."""
    live = _workloads()
    keys = [
        (m["kind"], m["metadata"]["namespace"], m["metadata"]["name"])
        for m in expected
        if m["kind"] in manifests.WORKLOADS
    ]
    return all(key in live and _available(live[key]) for key in keys)


def recorded_digest() -> str | None:
    result = _kubectl("get", "configmap", "-n", RECORD[0], RECORD[1], "-o", "json", check=False)
    if result.returncode != 0:
        return None
    digest: str | None = json.loads(result.stdout).get("data", {}).get("digest")
    return digest


def _record(digest: str, binaries: images.Binaries) -> None:
    record = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": RECORD[1], "namespace": RECORD[0]},
        "data": {
            "digest": digest,
            "knative": binaries.knative_version,
            "traefik": binaries.traefik_version,
        },
    }
    result = _apply([record])
    if result.returncode != 0:
        raise KnativeError(f"recording the installation failed: {result.stderr[-2000:]}")


def _established(crds: list[Manifest]) -> bool:
    result = _kubectl("get", "crd", "-o", "json")
    ready = {
        crd["metadata"]["name"]
        for crd in json.loads(result.stdout)["items"]
        if any(
            c["type"] == "Established" and c["status"] == "True"
            for c in (crd.get("status") or {}).get("conditions") or []
        )
    }
    return {crd["metadata"]["name"] for crd in crds} <= ready


def _applied(objects: list[Manifest], what: str, timeout: float = TIMEOUT) -> None:
    """Apply until accepted: objects a webhook admits are refused until it serves."""
    last = ""

    def accepted() -> bool:
        nonlocal last
        result = _apply(objects)
        last = result.stderr.strip()[-2000:]
        return result.returncode == 0

    try:
        _wait_until(what, accepted, timeout)
    except KnativeError as error:
        raise KnativeError(f"{error}\nlast kubectl error: {last}") from None


def _apply_all(rendered: list[Manifest], seconds: dict[str, float]) -> None:
    began = time.monotonic()
    first = [m for m in rendered if m["kind"] == "Namespace" or manifests.is_crd(m)]
    crds = [m for m in first if manifests.is_crd(m)]
    custom = [m for m in rendered if manifests.is_custom_resource(m)]
    rest = [
        m
        for m in rendered
        if not (m["kind"] == "Namespace" or manifests.is_crd(m) or manifests.is_custom_resource(m))
    ]
    _applied(first, "the namespaces and CRDs")
    _wait_until("the CRDs established", lambda: _established(crds))
    _applied(rest, "the components")
    seconds["apply"] = time.monotonic() - began
    _wait_until("every Deployment available", lambda: all_available(rendered))
    seconds["available"] = time.monotonic() - began
    # The Certificate and the caching Image go through Serving's webhook, which now serves.
    _applied(custom, "Knative's own objects (through its webhooks)", timeout=120)
    seconds["webhooks"] = time.monotonic() - began


def check_server_version() -> str:
    """The API server's release; KnativeError unless Knative's components will accept it.

    Each of them checks the server's /version at start (at least v1.34, valid semver) and
    exits otherwise; a cluster started from binaries built before tests/cluster/build.sh
    stamped their release reports v0.0.0-master+$Format:%H$ until it is restarted.
    """
    version = str(json.loads(_kubectl("get", "--raw", "/version").stdout).get("gitVersion", ""))
    found = re.fullmatch(r"v1\.(\d+)\.\d+([-+][0-9A-Za-z.+-]*)?", version)
    if not found or int(found.group(1)) < MINIMUM_KUBERNETES_MINOR:
        raise KnativeError(
            f"the API server reports version {version!r}; Knative's components need v1.{MINIMUM_KUBERNETES_MINOR} "
            "or later, as valid semver. Restart the cluster's API server (its binary is rebuilt with its "
            "release stamped by tests/cluster/build.sh): python -m tests.cluster stop kube-apiserver && "
            "python -m tests.cluster start kube-apiserver (every client of the cluster sees it go away for ~10 s)"
        )
    return version


def _lock() -> AbstractContextManager[None]:
    """One installer per machine: parallel test sessions share one cluster."""
    return localcluster.file_lock(localcluster.cache_dir() / "knative.lock")


def install() -> Installed:
    """Knative and Traefik in the local cluster (started if needed), serving; idempotent."""
    seconds: dict[str, float] = {}
    began = time.monotonic()
    localcluster.ensure_running()
    check_server_version()  # before anything is applied: a half-installed Knative gets in others' way
    with _lock():
        binaries = images.build()
        seconds["build"] = time.monotonic() - began
        refs = images.ensure_imported(binaries)
        seconds["images"] = time.monotonic() - began - seconds["build"]
        rendered = manifests.render(manifests.module_dirs(), manifests.Images(refs))
        digest = manifests.digest(rendered)
        applied = False
        if recorded_digest() != digest or not all_available(rendered):
            _apply_all(rendered, seconds)
            _record(digest, binaries)
            applied = True
    seconds["total"] = time.monotonic() - began
    return Installed(digest, binaries.knative_version, binaries.traefik_version, applied, seconds)


def main() -> int:
    try:
        installed = install()
    except (KnativeError, RuntimeError, localcluster.ClusterError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    steps = ", ".join(f"{step} {value:.1f}s" for step, value in installed.seconds.items())
    verb = "installed" if installed.applied else "already installed"
    print(
        f"Knative {installed.knative_version} + Traefik {installed.traefik_version} {verb} "
        f"(set {installed.digest}): {steps}",
        file=sys.stderr,
    )
    print(f"export KUBECONFIG={localcluster.kubeconfig_path()}")
    return 0


__all__ = ["Installed", "KnativeError", "all_available", "install", "main"]


if __name__ == "__main__":
    sys.exit(main())
