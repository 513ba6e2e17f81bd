"""Knative's own manifests, read from its Go modules' config/ directories and changed only
where this machine requires it. Every change is one function below, saying why; README.md
in this directory lists them.

The release is the one tests/knative/build/go.mod pins (the binaries are built from the
same module). A module zip holds no symlinks, so the files Serving links in from
knative.dev/networking (the KIngress, ServerlessService, Certificate and DomainClaim CRDs,
config-network) and knative.dev/caching (the Image CRD) are read from those modules, at
the versions Serving requires, as Serving's release script resolves them; Eventing's
integration-image ConfigMaps from its third_party/ directory, as its release does.
"""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Manifest = dict[str, Any]
BUILD_MODULE = Path(__file__).resolve().parent / "build"
TRAEFIK_MANIFEST = Path(__file__).resolve().parent / "traefik.yaml"

# (module, path in it): every *.yaml below the path, in name order.
SOURCES = (
    ("knative.dev/caching", "config/image.yaml"),
    ("knative.dev/networking", "config/certificate.yaml"),
    ("knative.dev/networking", "config/domain-claim.yaml"),
    ("knative.dev/networking", "config/ingress.yaml"),
    ("knative.dev/networking", "config/serverlessservice.yaml"),
    ("knative.dev/networking", "config/config-network.yaml"),
    ("knative.dev/serving", "config/core"),
    ("knative.dev/eventing", "config/core"),
    # The integration images' ConfigMaps the controller reads (the release links them into
    # config/core/configmaps/); their images are only run by IntegrationSource/Sink objects.
    ("knative.dev/eventing", "third_party/eventing-integrations-latest"),
    ("knative.dev/eventing", "config/brokers/mt-channel-broker"),
    ("knative.dev/eventing", "config/channels/in-memory-channel"),
)
MODULES = tuple(dict.fromkeys(module for module, _ in SOURCES))
SYSTEM_NAMESPACES = ("knative-serving", "knative-eventing", "traefik")
WORKLOADS = ("Deployment", "StatefulSet")  # request-reply is a StatefulSet

# What this machine needs set (the rest of each ConfigMap stays Knative's default).
INGRESS_CLASS = "traefik.ingress.networking.knative.dev"
# Serving resolves a revision's image tag to a digest by asking its registry, unless the
# registry is listed here. Nothing here has a registry: the node's containerd holds every
# image, imported under docker.io names (index.docker.io to Serving's parser) or dev.local.
SKIP_TAG_RESOLVING = "kind.local,ko.local,dev.local,index.docker.io"
# Scale-to-zero quickly enough for the tests (Knative's minimum is 6 s; default 30 s).
SCALE_TO_ZERO_GRACE = "6s"
# CPU requested by each Knative container, and the silence its liveness probe tolerates
# (patient_containers says why).
SYSTEM_CPU_REQUEST = "10m"
LIVENESS_TOLERANCE = 60  # seconds
# Public routes' domain. Knative's default, svc.cluster.local, makes every route cluster-local;
# there is no DNS for this one (CoreDNS here serves cluster.local only): clients send the Host.
PUBLIC_DOMAIN = "example.com"
CONFIG = {
    ("knative-serving", "config-network"): {"ingress-class": INGRESS_CLASS},
    ("knative-serving", "config-domain"): {PUBLIC_DOMAIN: ""},
    ("knative-serving", "config-deployment"): {"registries-skipping-tag-resolving": SKIP_TAG_RESOLVING},
    ("knative-serving", "config-autoscaler"): {"scale-to-zero-grace-period": SCALE_TO_ZERO_GRACE},
    # Brokers and Triggers send and check OIDC tokens (the function checks its audience).
    ("knative-eventing", "config-features"): {"authentication-oidc": "enabled"},
}


def module_dirs(modules: tuple[str, ...] = MODULES) -> dict[str, Path]:
    """Module path → its directory in the Go module cache (downloaded, verified by go.sum)."""
    result = subprocess.run(
        ["go", "mod", "download", "-json", *modules],
        cwd=BUILD_MODULE,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    decoder, text, position, found = json.JSONDecoder(), result.stdout.strip(), 0, {}
    while position < len(text):
        module, position = decoder.raw_decode(text, position)
        position = len(text) - len(text[position:].lstrip())
        if module.get("Error"):
            raise RuntimeError(f"go mod download {module['Path']}: {module['Error']}")
        found[module["Path"]] = Path(module["Dir"])
    if result.returncode != 0 or set(found) != set(modules):
        raise RuntimeError(f"go mod download failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return found


def source_files(dirs: dict[str, Path]) -> list[Path]:
    files = []
    for module, path in SOURCES:
        where = dirs[module] / path
        found = [where] if where.is_file() else sorted(where.rglob("*.yaml"))
        if not found:
            raise RuntimeError(f"no manifests at {where}")
        files.extend(found)
    return files


def load(files: Iterable[Path]) -> Iterator[Manifest]:
    for path in files:
        for document in yaml.load_all(path.read_text(), Loader=_LOADER):
            if document:
                yield document


@dataclass(frozen=True)
class Images:
    """ko:// package → the local image name the node's containerd holds."""

    by_package: dict[str, str]

    def resolve(self, value: str) -> str:
        package = value.removeprefix("ko://")
        if package not in self.by_package:
            raise KeyError(f"no local image for {value}: build it (tests/knative/build.sh)")
        return self.by_package[package]


def _replace_strings(node: Any, change: Callable[[str], str]) -> Any:
    if isinstance(node, dict):
        return {key: _replace_strings(value, change) for key, value in node.items()}
    if isinstance(node, list):
        return [_replace_strings(value, change) for value in node]
    return change(node) if isinstance(node, str) else node


def local_images(manifest: Manifest, images: Images) -> Manifest:
    """ko://<package> (image fields, the controllers' *_IMAGE variables, config-deployment's
    queue-sidecar-image, the caching Image) → the image built here: ko publishes to a
    registry, and there is none."""
    return _replace_strings(manifest, lambda s: images.resolve(s) if s.startswith("ko://") else s)  # type: ignore[no-any-return]


def is_wanted(manifest: Manifest) -> bool:
    """HorizontalPodAutoscalers are left out: there is no metrics API here, so they could
    only log failures (every Knative deployment runs its one replica)."""
    return manifest.get("kind") != "HorizontalPodAutoscaler"


def patient_containers(manifest: Manifest) -> Manifest:
    """Each container of a Knative workload requests SYSTEM_CPU_REQUEST CPU and has no CPU limit,
    and its liveness probe tolerates LIVENESS_TOLERANCE seconds of silence.

    Knative asks 1.6 CPUs in all, more than a 2-core node shared with every other test can
    give. Its CPU limits (200m for Eventing's webhook) and its liveness probes (the webhook's:
    every second, 1 s timeout, 3 failures) are tuned for dedicated nodes: on this machine,
    shared with Go builds at load average 10-15, the webhook was throttled past three probes,
    killed, and spent its 300 s of graceful termination not reconciling SinkBindings. Memory
    limits are kept.
    """
    if manifest.get("kind") not in WORKLOADS:
        return manifest
    changed = copy.deepcopy(manifest)
    for container in changed["spec"]["template"]["spec"]["containers"]:
        resources = container.setdefault("resources", {})
        resources.setdefault("requests", {})["cpu"] = SYSTEM_CPU_REQUEST
        (resources.get("limits") or {}).pop("cpu", None)
        probe = container.get("livenessProbe")
        if probe:
            period = probe.get("periodSeconds", 10)
            probe["timeoutSeconds"] = max(probe.get("timeoutSeconds", 1), 5)
            probe["failureThreshold"] = max(
                probe.get("failureThreshold", 3), -(-LIVENESS_TOLERANCE // period)
            )
    return changed


def configured(manifest: Manifest) -> Manifest:
    """CONFIG's keys set in Knative's ConfigMaps (ingress class, public domain, tag
    resolution, scale-to-zero grace, OIDC)."""
    metadata = manifest.get("metadata") or {}
    wanted = CONFIG.get((metadata.get("namespace", ""), metadata.get("name", "")))
    if manifest.get("kind") != "ConfigMap" or wanted is None:
        return manifest
    changed = copy.deepcopy(manifest)
    changed.setdefault("data", {}).update(wanted)
    return changed


def sink_binding_inclusion(manifest: Manifest) -> Manifest:
    """SinkBinding's webhook intercepts only namespaces and objects labelled
    bindings.knative.dev/include=true (Knative's default intercepts every Job and
    Deployment of every namespace but those excluded), and fails open: a webhook that is
    down never stops a Job outside Knative's namespaces from being created (the Job then
    runs without K_SINK; the reaper says so and reaps on)."""
    kind, name = manifest.get("kind"), (manifest.get("metadata") or {}).get("name")
    if kind == "Deployment" and name == "eventing-webhook":
        changed = copy.deepcopy(manifest)
        for container in changed["spec"]["template"]["spec"]["containers"]:
            for variable in container.get("env", []):
                if variable["name"] == "SINK_BINDING_SELECTION_MODE":
                    variable["value"] = "inclusion"
        return changed
    if kind == "MutatingWebhookConfiguration" and name == "sinkbindings.webhook.sources.knative.dev":
        changed = copy.deepcopy(manifest)
        for webhook in changed["webhooks"]:
            webhook["failurePolicy"] = "Ignore"
        return changed
    return manifest


CHANGES: tuple[Callable[[Manifest], Manifest], ...] = (patient_containers, configured, sink_binding_inclusion)


def render(dirs: dict[str, Path], images: Images) -> list[Manifest]:
    """Knative Serving, Eventing and Traefik, as applied to this machine's cluster."""
    manifests = []
    for manifest in load([*source_files(dirs), TRAEFIK_MANIFEST]):
        if not is_wanted(manifest):
            continue
        manifest = local_images(manifest, images)
        for change in CHANGES:
            manifest = change(manifest)
        manifests.append(manifest)
    return manifests


def is_crd(manifest: Manifest) -> bool:
    return manifest.get("kind") == "CustomResourceDefinition"


def is_custom_resource(manifest: Manifest) -> bool:
    """An object that Knative's own webhooks admit (so it waits until they serve)."""
    group = str(manifest.get("apiVersion", "")).split("/")[0]
    return group.endswith("knative.dev")


def digest(manifests: list[Manifest]) -> str:
    """Identifies a rendered set exactly (an installation of the same set is left alone)."""
    return hashlib.sha256(json.dumps(manifests, sort_keys=True).encode()).hexdigest()[:16]
