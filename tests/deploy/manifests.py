"""deploy/ as objects: rendering it, finding objects in it, and installing it into a test namespace."""

from __future__ import annotations

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


def write_overlay(directory: Path, namespace: str, suffix: str) -> Path:
    """A kustomization in ``directory`` that installs deploy/ into ``namespace``.

    Cluster-scoped objects get ``suffix`` so that tests running side by side never
    share one; the Namespace object becomes ``namespace`` itself. The reaper's CronJob
    is suspended: the tests run the reaper themselves, when they choose.
    """
    directory.mkdir(parents=True, exist_ok=True)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": namespace,
        # kustomize takes bases by relative path only.
        "resources": [os.path.relpath(DEPLOY, directory)],
        "transformers": ["cluster-scoped-suffix.yaml"],
        "patches": [
            {
                "target": {"group": "batch", "kind": "CronJob"},
                "patch": json.dumps([{"op": "add", "path": "/spec/suspend", "value": True}]),
            }
        ],
    }
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


def as_stream(manifests: Iterable[Manifest]) -> str:
    """Objects as one multi-document stream for ``kubectl apply -f -``."""
    return "\n---\n".join(json.dumps(manifest) for manifest in manifests)
