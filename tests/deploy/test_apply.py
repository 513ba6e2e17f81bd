"""deploy/ on the local cluster: the core objects applied for real, the Knative ones accepted by a
server-side dry run against Knative's own CRDs (see knative_crds.py for what is installed and how)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import install, uninstall_cluster_scoped
from tests.deploy.manifests import as_stream, is_knative
from tests.helpers import Kubectl

KNATIVE_KINDS_OF_OURS = {
    "services.serving.knative.dev",
    "brokers.eventing.knative.dev",
    "triggers.eventing.knative.dev",
    "sinkbindings.sources.knative.dev",
}


def test_knatives_crds_from_its_go_modules_are_established(knative_crds_installed: list[str]) -> None:
    assert set(knative_crds_installed) >= KNATIVE_KINDS_OF_OURS
    assert len(knative_crds_installed) > len(KNATIVE_KINDS_OF_OURS)  # the whole set, not a hand-picked few


def test_core_objects_apply_and_knative_objects_pass_a_server_side_dry_run(
    knative_crds_installed: list[str],
    kubectl: Kubectl,
    kubectl_binary: Path,
    namespace: str,
    tmp_path: Path,
) -> None:
    installation = install(kubectl, kubectl_binary, namespace, tmp_path / "overlay")
    try:
        dry_run = kubectl("apply", "--dry-run=server", "-f", "-", input=as_stream(installation.knative))

        live = json.loads(kubectl("get", "-f", "-", "-o", "json", input=as_stream(installation.core)).stdout)
        assert sorted(_identity(m) for m in live["items"]) == sorted(_identity(m) for m in installation.core)
        assert sorted(dry_run.stdout.splitlines()) == sorted(
            f"{m['kind'].lower()}.{m['apiVersion'].split('/')[0]}/{m['metadata']['name']} created (server dry run)"
            for m in installation.knative
        )
        # A dry run creates nothing.
        assert (
            kubectl(
                "get", "-f", "-", "--ignore-not-found", "-o", "name", input=as_stream(installation.knative)
            ).stdout.strip()
            == ""
        )
    finally:
        uninstall_cluster_scoped(kubectl, installation)


def _identity(manifest: dict[str, Any]) -> tuple[str, str, str, str]:
    metadata = manifest["metadata"]
    return manifest["apiVersion"], manifest["kind"], metadata.get("namespace", ""), metadata["name"]


@pytest.mark.parametrize(
    ("kind", "breakage"),
    [
        (
            "Service",
            lambda s: s["spec"]["template"]["spec"]["containers"][0].update(imagePullPolicyy="Always"),
        ),
        ("Service", lambda s: s["spec"]["template"]["metadata"]["annotations"].update({"x": 1})),
        ("Trigger", lambda t: t["spec"].update(broker=["default"])),
        ("Trigger", lambda t: t["spec"]["filter"].update(attributes="dev.jobfn.hello")),
        ("SinkBinding", lambda b: b["spec"]["sink"]["ref"].update(nmae="default")),
        ("Broker", lambda b: b["spec"]["delivery"].update(retry="three")),
    ],
    # Knative's webhooks (not installed) check more; these are what the schemas alone catch.
    ids=[
        "unknown-container-field",
        "non-string-annotation",
        "broker-not-a-string",
        "filter-not-a-map",
        "unknown-sink-field",
        "retry-not-a-number",
    ],
)
def test_the_dry_run_does_check_our_knative_objects_against_the_schemas(
    knative_crds_installed: list[str],
    kubectl: Kubectl,
    rendered: list[dict[str, Any]],
    namespace: str,
    kind: str,
    breakage: Callable[[dict[str, Any]], object],
) -> None:
    manifest = copy.deepcopy(next(m for m in rendered if is_knative(m) and m["kind"] == kind))
    manifest["metadata"]["namespace"] = namespace
    breakage(manifest)

    result = kubectl("apply", "--dry-run=server", "-f", "-", input=as_stream([manifest]), check=False)

    assert result.returncode != 0, f"a broken {kind} was accepted: {result.stdout}"
