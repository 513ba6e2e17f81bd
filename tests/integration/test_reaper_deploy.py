"""deploy/reaper on the local cluster: its Role is enough and no more.

The CronJob itself, firing by itself and reaping on the real node, is in
tests/deploy/test_real_node.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s

from tests.helpers import wait_for
from tests.integration.reaper_helpers import (
    ROOT,
    job_manager,
    jobs_in,
    reaper_env,
    run_cli,
    submit_many,
    wait_until_terminal,
)

Kubectl = Callable[..., Any]
DEPLOY = ROOT / "deploy" / "reaper"
ACCOUNT = "jobfn-reaper"


def manifests(kubectl: Kubectl) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(kubectl("kustomize", str(DEPLOY)).stdout) if doc]


def apply(kubectl: Kubectl, namespace: str, documents: list[dict[str, Any]]) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", input="\n---\n".join(json.dumps(d) for d in documents))


def test_the_role_lets_the_reaper_do_its_work(
    kubectl: Kubectl, namespace: str, api_client: k8s.ApiClient, tmp_path: Path
) -> None:
    apply(kubectl, namespace, [doc for doc in manifests(kubectl) if doc["kind"] != "CronJob"])
    manager = job_manager(namespace, api_client)
    names = submit_many(manager, 3)
    wait_until_terminal(manager, names)
    token = kubectl("create", "token", ACCOUNT, "-n", namespace, "--duration=10m").stdout.strip()
    kubeconfig = write_token_kubeconfig(tmp_path / "reaper.kubeconfig", api_client.configuration, token)

    # RBAC is eventually consistent: retry until the binding is in effect.
    def run() -> Any:
        result = run_cli(reaper_env(namespace, KUBECONFIG=str(kubeconfig)), "--succeeded-retention", "0")
        return result if result.returncode == 0 else None

    result = wait_for(run, timeout=30, interval=1)

    assert (result.summary["deleted"], result.summary["errors"]) == (3, 0)
    assert jobs_in(api_client, namespace) == {}


GRANTS = {
    ("get", "jobs.batch"): True,  # a waiting job's dependencies, when it settles them
    ("list", "jobs.batch"): True,
    ("patch", "jobs.batch"): True,
    ("delete", "jobs.batch"): True,
    ("list", "pods"): True,
    ("create", "jobs.batch"): False,
    ("update", "jobs.batch"): False,
    ("watch", "jobs.batch"): False,
    ("get", "pods"): False,
    ("delete", "pods"): False,
    ("get", "configmaps"): False,
    ("get", "secrets"): False,
    ("list", "jobs.batch", "--all-namespaces"): False,
}


def test_the_role_grants_no_more_than_the_reaper_uses(kubectl: Kubectl, namespace: str) -> None:
    apply(kubectl, namespace, [doc for doc in manifests(kubectl) if doc["kind"] != "CronJob"])
    who = f"--as=system:serviceaccount:{namespace}:{ACCOUNT}"

    def can(*request: str) -> bool:
        answer = kubectl("auth", "can-i", *request, "-n", namespace, who, check=False).stdout.strip()
        return bool(answer == "yes")

    wait_for(lambda: can("list", "jobs.batch"), timeout=30)  # the binding is in effect

    assert {request: can(*request) for request in GRANTS} == GRANTS


def write_token_kubeconfig(path: Path, configuration: k8s.Configuration, token: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "local",
                        "cluster": {
                            "server": configuration.host,
                            "certificate-authority": configuration.ssl_ca_cert,
                        },
                    }
                ],
                "users": [{"name": ACCOUNT, "user": {"token": token}}],
                "contexts": [{"name": "reaper", "context": {"cluster": "local", "user": ACCOUNT}}],
                "current-context": "reaper",
            }
        )
    )
    return path
