"""The Knative func CLI against the cluster: `func deploy` of the project's func.yaml with the
pre-built image (no build, no push: nothing can be pushed here) creates a Knative Service that
serves, and `func invoke` reaches it in both formats, from inside the cluster's network with
cluster DNS, as func would from a pod.

The namespace gets deploy/plain/ first (the ServiceAccount, RBAC and definitions ConfigMap
func.yaml names). func invoke cannot send a bearer token, so the deployment sets
JOBFN_AUTH=none and no event audience (func deploy --env), the one change to func.yaml's
settings.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from tests.cluster import localcluster
from tests.deploy.conftest import install_plain, uninstall_cluster_scoped
from tests.e2e.test_func_cli import attribute
from tests.helpers import ROOT, Kubectl, create_namespace
from tests.knative import install
from tests.knative.jobfn import ProjectImages
from tests.knative.services import get_json, run_with_cluster_dns, wait_ready


@pytest.fixture(scope="module")
def func_deployed(
    knative: install.Installed,
    jobfn_images: ProjectImages,
    func_binary: Path,
    api_client: client.ApiClient,
    kubectl: Kubectl,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, str]]:
    """func deploy of func.yaml into a namespace holding deploy/plain/; (project dir, namespace)."""
    namespace = create_namespace(api_client, "knative-func")
    project = tmp_path_factory.mktemp("func-project")
    shutil.copy(ROOT / "func.yaml", project / "func.yaml")
    installation = install_plain(
        kubectl, localcluster.kubectl_path(), namespace, tmp_path_factory.mktemp("plain")
    )
    try:
        result = func(
            func_binary, project,
            "deploy", "--build=false", "--push=false", "--image", jobfn_images.function,
            "--namespace", namespace, "--env", "JOBFN_AUTH=none", "--env", "JOBFN_EVENT_AUDIENCE-",
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        wait_ready(kubectl, "ksvc/jobfn", namespace)
        yield project, namespace
    finally:
        uninstall_cluster_scoped(kubectl, installation)
        client.CoreV1Api(api_client).delete_namespace(namespace, propagation_policy="Background")


def func(binary: Path, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """func in the cluster's network with CoreDNS as its resolver (as in a pod), on ``project``."""
    environment = {
        "HOME": str(project),
        "XDG_CONFIG_HOME": str(project / ".config"),
        "KUBECONFIG": str(localcluster.kubeconfig_path()),
        "PATH": os.environ.get("PATH", ""),
    }
    settings = [f"{name}={value}" for name, value in environment.items()]
    return run_with_cluster_dns("env", "-i", *settings, str(binary), *args, "--path", str(project))


def test_func_deploy_makes_the_knative_service_func_yaml_describes(
    func_deployed: tuple[Path, str], kubectl: Kubectl, jobfn_images: ProjectImages
) -> None:
    _, namespace = func_deployed
    service = get_json(kubectl, "ksvc", "-n", namespace, "jobfn")
    spec = service["spec"]["template"]["spec"]
    [container] = spec["containers"]

    assert container["image"] == jobfn_images.function
    assert spec["serviceAccountName"] == "jobfn-function"
    annotations = service["spec"]["template"]["metadata"]["annotations"]
    assert float(annotations["autoscaling.knative.dev/target"]) == 50
    assert (
        float(annotations["autoscaling.knative.dev/target-utilization-percentage"]) == 100
    )  # func writes 100.000000
    env = {v["name"]: v.get("value") for v in container["env"]}
    assert env["JOBFN_AUTH"] == "none" and "JOBFN_EVENT_AUDIENCE" not in env


def test_func_invoke_http_submits_a_job_to_the_deployed_function(
    func_deployed: tuple[Path, str], func_binary: Path
) -> None:
    project, namespace = func_deployed
    body = {"definition": "hello", "arguments": {"message": "from func invoke"}}
    result = func(
        func_binary, project, "invoke",
        "--target", f"http://jobfn.{namespace}.svc.cluster.local/jobs",
        "--format", "http", "--content-type", "application/json", "--data", json.dumps(body),
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    job = json.loads(result.stdout[result.stdout.index("{") :])
    assert job["definition"] == "hello" and job["arguments"]["message"] == "from func invoke"


def test_func_invoke_cloudevent_gets_the_reply_event_from_the_deployed_function(
    func_deployed: tuple[Path, str], func_binary: Path
) -> None:
    project, namespace = func_deployed
    result = func(
        func_binary, project, "invoke",
        "--target", f"http://jobfn.{namespace}.svc.cluster.local",
        "--format", "cloudevent", "--type", "dev.jobfn.hello", "--source", "/tests/knative/func",
        "--id", uuid.uuid4().hex, "--content-type", "application/json",
        "--data", json.dumps({"message": "an event from func invoke"}),
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert attribute(result.stdout, "type") == "dev.jobfn.job.submitted"
    assert re.match(r"hello-[0-9a-f]{16}$", attribute(result.stdout, "subject"))
