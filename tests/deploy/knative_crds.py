"""Knative's own CustomResourceDefinitions, read from the Knative Serving and Eventing Go modules.

The releases are those tests/knative builds and installs (pinned once, in
tests/knative/build/go.mod). `go mod download -json` there fetches the two modules
(verified against go.sum) into the Go module cache and says where they are; nothing is
built here. The CRDs are the YAML files under config/core/300-resources/ (Serving) and
config/core/resources/ (Eventing).

On a cluster where tests/knative has installed Knative for real, its own CRDs, conversion
webhooks and admission webhooks are there: nothing is applied (the fixture checks the
record of that installation), and a dry run then meets Knative's webhooks too.

What is changed before they are applied, and why: a CRD whose spec.conversion uses a
webhook gets strategy None instead. Knative's conversion webhook (a Service in
knative-serving / knative-eventing) is not installed on the test cluster; with the
webhook strategy, any request that needs an object in a version other than its stored
one would fail trying to reach it. Our manifests use only the storage versions, so
None changes nothing they rely on, and no request can end in a dial error. Knative's
admission webhooks (defaulting and validation) are not installed either, so a dry run
here checks our manifests against the CRDs' OpenAPI schemas (with strict field
validation), not against Knative's feature-flag rules.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tests.knative.manifests import BUILD_MODULE, module_dirs

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ten times faster on 400 kB
GO_MODULE = BUILD_MODULE
# Module path → the directory in it that holds its CRDs.
CRD_DIRECTORIES = {
    "knative.dev/serving": "config/core/300-resources",
    "knative.dev/eventing": "config/core/resources",
}


def module_key() -> str:
    """Identifies the pinned releases: a new go.mod or go.sum invalidates a cached lookup."""
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum"):
        digest.update((GO_MODULE / name).read_bytes())
    return digest.hexdigest()[:16]


def download_modules() -> dict[str, Path]:
    """Module path → its directory in the Go module cache (downloaded if missing)."""
    return module_dirs(tuple(CRD_DIRECTORIES))


def crd_files(module_dirs: dict[str, Path]) -> list[Path]:
    files = []
    for module, subdirectory in CRD_DIRECTORIES.items():
        found = sorted((module_dirs[module] / subdirectory).glob("*.yaml"))
        if not found:
            raise RuntimeError(f"no CRD files in {module_dirs[module] / subdirectory}")
        files.extend(found)
    return files


def custom_resource_definitions(files: list[Path]) -> Iterator[dict[str, Any]]:
    """The CRDs in ``files`` (nothing else), ready to apply to a cluster without Knative's webhooks."""
    for path in files:
        for document in yaml.load_all(path.read_text(), Loader=_LOADER):
            if not document or document.get("kind") != "CustomResourceDefinition":
                continue
            conversion = document["spec"].get("conversion") or {}
            if conversion.get("strategy") == "Webhook":
                document["spec"]["conversion"] = {"strategy": "None"}
            yield document


def digest(crds: list[dict[str, Any]]) -> str:
    """Identifies a set of CRDs exactly as applied (so an unchanged set need not be applied again)."""
    return hashlib.sha256(json.dumps(crds, sort_keys=True).encode()).hexdigest()[:16]
