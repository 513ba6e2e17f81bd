"""Kueue on the local cluster, installed on demand, running only while a test session uses it.

The binary is built from the Go module (``tests/kueue/build.sh``, once per
machine), made into an image here (no registry: the node's containerd imports it), and
installed from the release's own manifests, ``config/default`` of the same module,
rendered with ``kubectl kustomize``. They are changed only where this machine or the
shared cluster requires it; each change is one function below, saying why:

- ``local_image``: the image built here, never pulled;
- ``resources_for_this_cluster``: a 2-core node shared by every test cannot reserve half a
  CPU, and the benchmark's Jobs, which Kueue caches too, need more than 512 MiB;
- ``configured``: Kueue manages batch/v1 Jobs only, in opted-in namespaces only;
- ``opted_in_webhooks``: its webhooks on anything but Kueue's own objects see only
  opted-in namespaces, so no other test's Job passes through them and a Kueue that is
  down fails no Job outside them.

Webhook certificates are Kueue's own (``internalCertManagement``, on by default): it
makes a CA and a serving certificate into the ``kueue-webhook-server-cert`` Secret and
writes the CA into its webhook configurations, CRD conversion and APIServices; no
cert-manager is needed. The visibility APIService (``pendingworkloads``) is applied only
once Kueue serves, because an aggregated API that does not answer stalls every namespace
deletion of the cluster (the namespace controller must discover every group first).

Kueue watches every Job of the cluster, so it runs only while some session uses it
(``in_use``): the last one to leave removes the visibility APIServices, then scales Kueue to
zero; CRDs and webhooks stay (the webhooks see only opted-in namespaces), so the next
session's install only brings it back (about 45 s) instead of leaving its CPU and memory
to the benchmark's tens of thousands of Jobs.
"""

from __future__ import annotations

import copy
import fcntl
import hashlib
import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.cluster import images, localcluster
from tests.cluster.imagebuild import ImageConfig

Manifest = dict[str, Any]
HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build.sh"
BUILD_MODULE = HERE / "build"
NAMESPACE = "kueue-system"
DEPLOYMENT = "kueue-controller-manager"
#: A namespace whose Jobs Kueue may see carries this label with the value "true".
OPT_IN_LABEL = "jobfn.test/kueue"
#: jobfn creates batch/v1 Jobs and nothing else Kueue integrates with.
FRAMEWORKS = ("batch/job",)
#: The release asks 500m CPU and 512 MiB, more than a 2-core node shared by every test can
#: reserve; it uses 0.6% of a CPU and 118 MiB idle here.
CPU_REQUEST, MEMORY_REQUEST = "10m", "128Mi"
#: Kueue caches every Job of the cluster, its own or not (about 31 KiB each, measured with
#: 3,000 on KWOK nodes), and the shared cluster may hold the benchmark's tens of thousands:
#: the release's 512 MiB limit would have it killed over and over. The CPU limit stays 2.
MEMORY_LIMIT = "2Gi"
NONROOT = "65532:65532"  # the release image's user (distroless nonroot); runAsNonRoot needs a number
KUEUE_GROUP = "kueue.x-k8s.io"
#: On the Deployment's pods: a hash of the image and manifests applied, so an unchanged
#: install is left alone and a changed one rolls Kueue's pod.
MANIFESTS_ANNOTATION = "jobfn.test/kueue-manifests"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class KueueError(Exception):
    pass


def version() -> str:
    found = re.search(r"^require sigs\.k8s\.io/kueue (v\S+)$", (BUILD_MODULE / "go.mod").read_text(), re.M)
    if not found:
        raise KueueError(f"no sigs.k8s.io/kueue requirement in {BUILD_MODULE / 'go.mod'}")
    return found.group(1)


def image_ref() -> str:
    return f"dev.local/kueue:{version()}"


def binary() -> Path:
    """The Kueue binary, built first if this machine has none (its progress on our stderr)."""
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise KueueError(f"{BUILD_SCRIPT} failed (exit {result.returncode})")
    return Path(lines[-1]) / "kueue"


def image(kueue_binary: Path) -> images.Image:
    """The release image's layout: the command at /manager, run as the nonroot user."""
    config = ImageConfig(entrypoint=("/manager",), env={}, user=NONROOT)
    return images.binary_image("kueue", image_ref(), kueue_binary, "/manager", config)


def module_dir() -> Path:
    """The Kueue module in the Go module cache (downloaded and verified against go.sum)."""
    result = subprocess.run(
        ["go", "mod", "download", "-json", f"sigs.k8s.io/kueue@{version()}"],
        cwd=BUILD_MODULE,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    try:
        found = json.loads(result.stdout)
    except ValueError:
        found = {}
    if result.returncode != 0 or "Dir" not in found:
        raise KueueError(f"go mod download sigs.k8s.io/kueue failed: {result.stderr.strip()[-2000:]}")
    return Path(found["Dir"])


# --- the changes to the release's manifests --------------------------------------------------
def local_image(manifest: Manifest) -> Manifest:
    """The manager runs the image built here; IfNotPresent, as nothing can be pulled."""
    if manifest["kind"] != "Deployment":
        return manifest
    changed = copy.deepcopy(manifest)
    for container in changed["spec"]["template"]["spec"]["containers"]:
        container["image"] = image_ref()
        container["imagePullPolicy"] = "IfNotPresent"
    return changed


def resources_for_this_cluster(manifest: Manifest) -> Manifest:
    """CPU_REQUEST, MEMORY_REQUEST and MEMORY_LIMIT instead of the release's (see there)."""
    if manifest["kind"] != "Deployment":
        return manifest
    changed = copy.deepcopy(manifest)
    for container in changed["spec"]["template"]["spec"]["containers"]:
        resources = container.setdefault("resources", {})
        resources["requests"] = {"cpu": CPU_REQUEST, "memory": MEMORY_REQUEST}
        resources.setdefault("limits", {})["memory"] = MEMORY_LIMIT
    return changed


def configured(manifest: Manifest) -> Manifest:
    """Kueue's configuration: only the batch/job integration (the others watch every Pod,
    Deployment and StatefulSet of a cluster the benchmark fills with thousands), and
    ``managedJobsNamespaceSelector`` on the opt-in label (Kueue reconciles no Job elsewhere,
    whatever its labels)."""
    if manifest["kind"] != "ConfigMap" or "controller_manager_config.yaml" not in manifest.get("data", {}):
        return manifest
    changed = copy.deepcopy(manifest)
    config = yaml.load(changed["data"]["controller_manager_config.yaml"], Loader=_LOADER)
    config["integrations"]["frameworks"] = list(FRAMEWORKS)
    config["managedJobsNamespaceSelector"] = {"matchLabels": {OPT_IN_LABEL: "true"}}
    changed["data"]["controller_manager_config.yaml"] = yaml.safe_dump(config, sort_keys=False)
    return changed


def opted_in_webhooks(manifest: Manifest) -> Manifest:
    """Every webhook on objects other than Kueue's own (Jobs, Pods, Deployments, ...) sees
    only namespaces labelled OPT_IN_LABEL: the release sends every Job of the cluster
    through Kueue with ``failurePolicy: Fail``, so a Kueue that is down or starting would
    refuse every test's Jobs."""
    if manifest["kind"] not in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        return manifest
    changed = copy.deepcopy(manifest)
    for webhook in changed["webhooks"]:
        groups = {group for rule in webhook.get("rules") or [] for group in rule.get("apiGroups") or []}
        if groups != {KUEUE_GROUP}:
            webhook["namespaceSelector"] = {"matchLabels": {OPT_IN_LABEL: "true"}}
    return changed


CHANGES = (local_image, resources_for_this_cluster, configured, opted_in_webhooks)


def render(kubectl: Path) -> list[Manifest]:
    """The release's config/default, with CHANGES applied."""
    result = subprocess.run(
        [str(kubectl), "kustomize", str(module_dir() / "config" / "default")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise KueueError(f"kubectl kustomize failed: {result.stderr.strip()[-2000:]}")
    manifests = [m for m in yaml.load_all(result.stdout, Loader=_LOADER) if m]
    for change in CHANGES:
        manifests = [change(m) for m in manifests]
    return manifests


# --- installing ------------------------------------------------------------------------------
def _lock() -> AbstractContextManager[None]:
    """One installer per machine: parallel test sessions share one cluster."""
    return localcluster.file_lock(localcluster.cache_dir() / "kueue.lock")


def _kubectl(kubectl: Path, kubeconfig: Path, *args: str, input: str | None = None) -> str:
    result = subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise KueueError(f"kubectl {' '.join(args[:3])} failed: {(result.stderr or result.stdout)[-3000:]}")
    return result.stdout


def _dump(manifests: list[Manifest]) -> str:
    return yaml.safe_dump_all(manifests, sort_keys=True)


def _installed_digest(kubectl: Path, kubeconfig: Path, apiservices: list[str]) -> str | None:
    """The manifests' hash on a Deployment that is available, with ``apiservices`` available."""
    try:
        found = json.loads(
            _kubectl(kubectl, kubeconfig, "get", "deployment", DEPLOYMENT, "-n", NAMESPACE, "-o", "json")
        )
        services = [
            json.loads(_kubectl(kubectl, kubeconfig, "get", "apiservice", name, "-o", "json"))
            for name in apiservices
        ]
    except KueueError:
        return None
    if not (found.get("status") or {}).get("availableReplicas"):
        return None
    for service in services:
        conditions = (service.get("status") or {}).get("conditions") or []
        if not any(c["type"] == "Available" and c["status"] == "True" for c in conditions):
            return None
    annotations = found["spec"]["template"]["metadata"].get("annotations") or {}
    return str(annotations.get(MANIFESTS_ANNOTATION) or "")


def check_server_version(kubectl: Path, kubeconfig: Path) -> str:
    """The API server's release; KueueError unless it is semver, which Kueue's manager parses at
    start (and exits on ``v0.0.0-master+$Format:%H$``, what an unstamped build reports)."""
    version = str(json.loads(_kubectl(kubectl, kubeconfig, "get", "--raw", "/version")).get("gitVersion"))
    if not re.fullmatch(r"v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?", version):
        raise KueueError(
            f"the API server reports version {version!r}, which Kueue cannot parse: run a kube-apiserver "
            "built with its release stamped (tests/cluster/build.sh rebuilds one that is not) and restart it"
        )
    return version


def ensure_installed(kubeconfig: Path) -> float:
    """Install Kueue unless it is installed as rendered now and serving; seconds it took.

    Idempotent and serialised by a lock, so concurrent sessions install it once.
    """
    started = time.monotonic()
    kubectl = localcluster.kubectl_path()
    check_server_version(kubectl, kubeconfig)  # before anything is applied
    with _lock():
        kueue_image = image(binary())
        images.ensure_images(localcluster.containerd_address(), catalog=[kueue_image])
        manifests = render(kubectl)
        digest = hashlib.sha256((kueue_image.key + _dump(manifests)).encode()).hexdigest()[:20]
        served_later = [m for m in manifests if m["kind"] == "APIService"]
        names = [m["metadata"]["name"] for m in served_later]
        if _installed_digest(kubectl, kubeconfig, names) == digest:
            return time.monotonic() - started
        for manifest in manifests:
            if manifest["kind"] == "Deployment":  # a new binary or manifest restarts Kueue's pod
                template = manifest["spec"]["template"].setdefault("metadata", {})
                template.setdefault("annotations", {})[MANIFESTS_ANNOTATION] = digest
        apply = ("apply", "--server-side", "--force-conflicts", "--field-manager", "jobfn-tests", "-f", "-")
        _kubectl(kubectl, kubeconfig, *apply, input=_dump([m for m in manifests if m not in served_later]))
        _kubectl(kubectl, kubeconfig, "rollout", "status", f"deployment/{DEPLOYMENT}", "-n", NAMESPACE,
                 "--timeout=240s")  # fmt: skip
        _kubectl(kubectl, kubeconfig, *apply, input=_dump(served_later))
        for manifest in served_later:
            _kubectl(kubectl, kubeconfig, "wait", "--for=condition=Available", "--timeout=120s",
                     f"apiservice/{manifest['metadata']['name']}")  # fmt: skip
    return time.monotonic() - started


def stop(kubeconfig: Path) -> None:
    """Kueue stopped, the APIServices first (an unserved aggregated API stalls namespace deletion)."""
    kubectl = localcluster.kubectl_path()
    with _lock():
        # Only the visibility APIServices carry the label (those of the CRDs are the API server's).
        _kubectl(kubectl, kubeconfig, "delete", "apiservice", "-l", "app.kubernetes.io/name=kueue")
        _kubectl(kubectl, kubeconfig, "scale", f"deployment/{DEPLOYMENT}", "-n", NAMESPACE, "--replicas=0")


@contextmanager
def in_use(kubeconfig: Path) -> Iterator[float]:
    """Kueue installed and serving while the block runs (the seconds that took); stopped after
    the last session using it leaves. Each user holds a shared lock; the one that can turn
    it into an exclusive lock on leaving was the last, and a session arriving meanwhile waits."""
    path = localcluster.cache_dir() / "kueue.users"
    with path.open("w") as users:
        fcntl.flock(users, fcntl.LOCK_SH)
        try:
            yield ensure_installed(kubeconfig)
        finally:
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # another session still uses it
            else:
                stop(kubeconfig)
