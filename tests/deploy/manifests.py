"""deploy/ as objects: rendering it, finding objects in it, and installing it into a test namespace."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PLAIN = DEPLOY / "plain"  # deploy/ without its Knative objects
DEFINITIONS_FILE = DEPLOY / "base" / "definitions.yaml"
# Generated from DEFINITIONS_FILE (deploy/base/kustomization.yaml).
DEFINITIONS_CONFIG_MAP = "jobfn-definitions"

KNATIVE_GROUPS = frozenset({"serving.knative.dev", "eventing.knative.dev", "sources.knative.dev"})
CLUSTER_SCOPED_KINDS = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding"})
SUFFIXED_KINDS = ("ClusterRole", "ClusterRoleBinding")  # Namespace is renamed by `namespace:`

Manifest = dict[str, Any]


def render(kubectl: Path, directory: Path) -> list[Manifest]:
    """`kubectl kustomize directory` as a list of objects; AssertionError with kustomize's message."""
    result = subprocess.run(
        [str(kubectl), "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed: {result.stderr.strip()}")
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def group(manifest: Manifest) -> str:
    api_version: str = manifest["apiVersion"]
    return api_version.split("/")[0] if "/" in api_version else ""


def is_knative(manifest: Manifest) -> bool:
    return group(manifest) in KNATIVE_GROUPS


def find(manifests: Iterable[Manifest], kind: str, group_name: str | None = None) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind and (group_name is None or group(m) == group_name)]


def one(manifests: Iterable[Manifest], kind: str, group_name: str | None = None) -> Manifest:
    found = find(manifests, kind, group_name)
    assert len(found) == 1, f"expected one {kind}, found {[m['metadata']['name'] for m in found]}"
    return found[0]


def knative_service(manifests: Iterable[Manifest]) -> Manifest:
    return one(manifests, "Service", "serving.knative.dev")


def function_container(manifests: Iterable[Manifest]) -> Manifest:
    containers: list[Manifest] = knative_service(manifests)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, "a Knative Service serves one container"
    return containers[0]


def reaper_cronjob(manifests: Iterable[Manifest]) -> Manifest:
    return one(manifests, "CronJob", "batch")


def reaper_container(manifests: Iterable[Manifest]) -> Manifest:
    [container] = reaper_cronjob(manifests)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    return container


def env_of(container: Manifest) -> dict[str, Any]:
    """name → value, or the ``valueFrom`` object where there is no value."""
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env") or []}


def function_account(manifests: Iterable[Manifest]) -> str:
    name: str = knative_service(manifests)["spec"]["template"]["spec"]["serviceAccountName"]
    return name


def reaper_account(manifests: Iterable[Manifest]) -> str:
    name: str = reaper_cronjob(manifests)["spec"]["jobTemplate"]["spec"]["template"]["spec"][
        "serviceAccountName"
    ]
    return name


def definitions_text(manifests: Iterable[Manifest]) -> str:
    """The definitions file the function reads: the mounted ConfigMap's key at JOB_DEFINITIONS_CONFIG_PATH."""
    manifests = list(manifests)
    container = function_container(manifests)
    path = Path(env_of(container)["JOB_DEFINITIONS_CONFIG_PATH"])
    volumes = {v["name"]: v for v in knative_service(manifests)["spec"]["template"]["spec"]["volumes"]}
    for mount in container.get("volumeMounts") or []:
        if path.parent == Path(mount["mountPath"]) and "configMap" in volumes[mount["name"]]:
            config_map_name = volumes[mount["name"]]["configMap"]["name"]
            config_map = next(
                m for m in find(manifests, "ConfigMap") if m["metadata"]["name"] == config_map_name
            )
            text: str = config_map["data"][path.name]
            return text
    raise AssertionError(f"JOB_DEFINITIONS_CONFIG_PATH={path} is not a file of a mounted ConfigMap")


def write_overlay(
    directory: Path,
    namespace: str,
    suffix: str,
    base: Path = DEPLOY,
    reaper_schedule: str | None = None,
    definitions: str | None = None,
) -> Path:
    """A kustomization in ``directory`` that installs ``base`` (deploy/ or one of its
    overlays) into ``namespace``.

    Cluster-scoped objects get ``suffix`` so that tests running side by side never
    share one; the Namespace object becomes ``namespace`` itself. The reaper's CronJob
    is suspended (the tests run the reaper themselves, when they choose) unless
    ``reaper_schedule`` is given: it then runs by itself on that schedule.
    ``definitions`` replaces the definitions file in the ConfigMap.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if reaper_schedule is None:
        cronjob_patch = [{"op": "add", "path": "/spec/suspend", "value": True}]
    else:
        cronjob_patch = [{"op": "replace", "path": "/spec/schedule", "value": reaper_schedule}]
    kustomization: Manifest = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": namespace,
        # kustomize takes bases by relative path only.
        "resources": [os.path.relpath(base, directory)],
        "transformers": ["cluster-scoped-suffix.yaml"],
        "patches": [{"target": {"group": "batch", "kind": "CronJob"}, "patch": json.dumps(cronjob_patch)}],
    }
    if definitions is not None:
        (directory / DEFINITIONS_FILE.name).write_text(definitions)
        kustomization["configMapGenerator"] = [
            {
                "name": DEFINITIONS_CONFIG_MAP,
                "behavior": "merge",
                "files": [DEFINITIONS_FILE.name],
                "options": {"disableNameSuffixHash": True},
            }
        ]
    transformer = {
        "apiVersion": "builtin",
        "kind": "PrefixSuffixTransformer",
        "metadata": {"name": "cluster-scoped-suffix"},
        "suffix": suffix,
        "fieldSpecs": [{"kind": kind, "path": "metadata/name"} for kind in SUFFIXED_KINDS],
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    (directory / "cluster-scoped-suffix.yaml").write_text(yaml.safe_dump(transformer))
    return directory


def function_deployment(manifests: Iterable[Manifest], replicas: int = 1) -> list[Manifest]:
    """The Knative Service's revision template as a Deployment behind a ClusterIP Service:
    the function where Knative Serving is not installed (deploy/plain/).

    The pod spec is the Knative Service's own, so the ServiceAccount, the container's
    security settings, env, resources, probes and volumes cannot drift from deploy/.
    Only what Knative supplies itself is added: the probes' port (Knative infers it) and
    ``PORT`` (Knative sets it to the container port); ``timeoutSeconds`` is a revision
    field, not a pod's, and the autoscaling annotations are Knative's alone.
    """
    service = knative_service(manifests)
    template = copy.deepcopy(service["spec"]["template"])
    template["metadata"].pop("annotations", None)
    pod_spec = template["spec"]
    pod_spec.pop("timeoutSeconds", None)
    [container] = pod_spec["containers"]
    [port] = container["ports"]
    for probe in ("readinessProbe", "livenessProbe"):
        if "httpGet" in container.get(probe, {}):
            container[probe]["httpGet"].setdefault("port", port["containerPort"])
    if "PORT" not in env_of(container):
        container.setdefault("env", []).append({"name": "PORT", "value": str(port["containerPort"])})
    labels = template["metadata"]["labels"]
    name = service["metadata"]["name"]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": template},
    }
    cluster_ip = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": labels,
            "ports": [{"name": "http", "port": 80, "targetPort": port["containerPort"]}],
        },
    }
    return [deployment, cluster_ip]


def as_stream(manifests: Iterable[Manifest]) -> str:
    """Objects as one multi-document stream for ``kubectl apply -f -``."""
    return "\n---\n".join(json.dumps(manifest) for manifest in manifests)
