"""The function and the reaper do their whole work with nothing but their own ServiceAccount's token,
configured as deploy/ configures them; the function admits only the callers it should.

The function runs as its image does (functions-framework, target ``handle``) with the
environment of the rendered Knative Service, the definitions of the rendered ConfigMap
and a kubeconfig holding only the function ServiceAccount's token. For the fake nodes,
the definitions' pods are told to run until stopped, and each definition admits one
caller ServiceAccount.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from kubernetes import client

from jobfn._contract import DELETION_TIME_ANNOTATION
from jobfn._status import is_terminal
from tests.deploy.conftest import Installation, call, service_account_token, token_kubeconfig
from tests.deploy.manifests import ROOT, definitions_text, env_of, function_container, reaper_container
from tests.helpers import FunctionServer, on_simulated_node, start_function, wait_for

CALLER = "jobfn-test-caller"  # listed in every definition's allowed_subjects
STRANGER = "jobfn-test-stranger"  # a valid token, but not listed


def for_the_test_cluster(definitions: str, allowed_subjects: list[str]) -> str:
    """The deployed definitions, their pods kept running on the fake nodes until stopped."""
    document = yaml.safe_load(definitions)
    for definition in document["definitions"]:
        template = yaml.safe_load(definition["template"])
        pod_metadata = template["spec"]["template"].setdefault("metadata", {})
        pod_metadata.setdefault("annotations", {})["jobfn.test/run-duration-ms"] = "forever"
        template["spec"]["template"]["spec"] = on_simulated_node(template["spec"]["template"]["spec"])
        definition["template"] = yaml.safe_dump(template)
        definition["allowed_subjects"] = allowed_subjects
    return yaml.safe_dump(document)


@dataclass(frozen=True)
class Deployment:
    installation: Installation
    server: FunctionServer
    definitions_file: Path
    reaper_kubeconfig: Path
    caller_token: str
    stranger_token: str

    @property
    def namespace(self) -> str:
        return self.installation.namespace

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return call(self.server, "GET", path, kwargs.pop("token", self.caller_token), **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return call(self.server, "POST", path, kwargs.pop("token", self.caller_token), **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return call(self.server, "PUT", path, kwargs.pop("token", self.caller_token), **kwargs)


@pytest.fixture(scope="module")
def deployment(
    installed: Installation,
    api_client: client.ApiClient,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    namespace = installed.namespace
    directory = tmp_path_factory.mktemp("deployment")
    for account in (CALLER, STRANGER):
        client.CoreV1Api(api_client).create_namespaced_service_account(
            namespace, {"metadata": {"name": account}}
        )
    definitions_file = directory / "definitions.yaml"
    definitions_file.write_text(
        for_the_test_cluster(
            definitions_text(installed.manifests), [f"system:serviceaccount:{namespace}:{CALLER}"]
        )
    )
    env = {
        **env_of(function_container(installed.manifests)),
        # In the pod: the mounted ConfigMap, and the namespace of the pod's own token.
        "JOB_DEFINITIONS_CONFIG_PATH": str(definitions_file),
        "JOB_NAMESPACE": namespace,
        "KUBECONFIG": str(token_kubeconfig(api_client, namespace, installed.function_account, directory)),
    }
    # Ready once it can list jobs with its own token (the RoleBinding takes a moment).
    server = start_function(namespace, definitions_file, directory / "function.log", env)
    yield Deployment(
        installed,
        server,
        definitions_file,
        token_kubeconfig(api_client, namespace, installed.reaper_account, directory),
        service_account_token(api_client, namespace, CALLER),
        service_account_token(api_client, namespace, STRANGER),
    )
    server.stop()


def job_in_state(deployment: Deployment, name: str, state: str) -> dict[str, Any] | None:
    answer = deployment.get(f"/jobs/{name}")
    assert answer.status_code == 200, answer.text
    view: dict[str, Any] = answer.json()
    return view if view["state"] == state else None


def submit(deployment: Deployment, definition: str, **arguments: Any) -> str:
    answer = deployment.post("/jobs", json={"definition": definition, "arguments": arguments})
    assert answer.status_code == 201, answer.text
    name: str = answer.json()["name"]
    return name


def terminate(deployment: Deployment, names: list[str], reason: str) -> list[dict[str, Any]]:
    """Terminate the jobs; their views once they have failed."""
    for name in names:
        answer = deployment.post(f"/jobs/{name}/terminate", json={"reason": reason})
        assert answer.status_code == 200, answer.text
    return [
        wait_for(lambda name=name: job_in_state(deployment, name, "FAILED"), timeout=60) for name in names
    ]


def live_job(api_client: client.ApiClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        response = client.BatchV1Api(api_client).read_namespaced_job(name, namespace, _preload_content=False)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    job: dict[str, Any] = json.loads(response.data)
    return job


def test_the_function_submits_describes_logs_terminates_and_holds_with_its_role_alone(
    deployment: Deployment, api_client: client.ApiClient
) -> None:
    name = submit(deployment, "hello", message="from the deploy test")
    running = wait_for(lambda: job_in_state(deployment, name, "RUNNING"), timeout=60)
    logs = deployment.get(f"/jobs/{name}/logs")
    listed = deployment.get("/jobs", params={"definition": "hello"}).json()["jobs"]
    retried = [  # an idempotent retry finds the first job (a read after the create's conflict)
        deployment.post(
            "/jobs",
            json={"definition": "pi", "arguments": {"digits": 5}},
            headers={"Idempotency-Key": f"deploy-{name}"},
        )
        for _ in range(2)
    ]
    [failed] = terminate(deployment, [name], "stopped by the deploy test")
    held = deployment.put(f"/jobs/{name}/retention", json={"hold": True})

    assert running["arguments"] == {"message": "from the deploy test"}
    assert [pod["phase"] for pod in running["pods"]] == ["Running"]
    assert logs.status_code == 200 and "simulated output line 1" in logs.text, logs.text
    assert name in [job["name"] for job in listed]
    assert [answer.status_code for answer in retried] == [201, 200]
    assert retried[0].json()["name"] == retried[1].json()["name"]
    assert "stopped by the deploy test" in failed["reason"]
    assert held.status_code == 200, held.text
    job = live_job(api_client, deployment.namespace, name)
    assert job is not None
    assert int(job["metadata"]["annotations"][DELETION_TIME_ANNOTATION]) == held.json()["deletion_time"]
    assert held.json()["deletion_time"] > time.time() + 10 * 365 * 86400  # a hold, not a retention


def run_reaper(deployment: Deployment, *flags: str) -> subprocess.CompletedProcess[str]:
    """`python -m reaper` as the CronJob runs it: its env, the mounted definitions, its own token."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "JOB_", "JOBFN_", "K_SINK"))},
        **{
            k: v
            for k, v in env_of(reaper_container(deployment.installation.manifests)).items()
            if isinstance(v, str)
        },
        "JOB_NAMESPACE": deployment.namespace,  # the CronJob's fieldRef: its own namespace
        "JOB_DEFINITIONS_CONFIG_PATH": str(deployment.definitions_file),
        "KUBECONFIG": str(deployment.reaper_kubeconfig),
    }
    return subprocess.run(
        [sys.executable, "-m", "jobfn.reaper", *flags],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_reaper_marks_archives_and_deletes_with_its_role_alone(
    deployment: Deployment, api_client: client.ApiClient
) -> None:
    held = submit(deployment, "hello", message="held")
    due = submit(deployment, "pi", digits=3)  # pi has no retention of its own: the flag's 0 applies
    kept = submit(deployment, "hello", message="kept")  # hello keeps failed jobs a day
    terminate(deployment, [held, due, kept], "finished for the reaper")
    for name in (held, due, kept):  # FAILED shows from FailureTarget on; the reaper waits for Failed
        wait_for(
            lambda name=name: is_terminal(live_job(api_client, deployment.namespace, name) or {}), timeout=60
        )
    assert deployment.put(f"/jobs/{held}/retention", json={"hold": True}).ok
    held_until = (live_job(api_client, deployment.namespace, held) or {})["metadata"]["annotations"][
        DELETION_TIME_ANNOTATION
    ]

    result = run_reaper(deployment, "--failed-retention", "0")

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    summary, records = lines[-1], lines[:-1]
    assert summary["errors"] == 0, result.stderr
    assert due in [record["subject"] for record in records]
    assert all(record["type"] == "dev.jobfn.job.archived" for record in records)
    gone = live_job(api_client, deployment.namespace, due)
    assert gone is None or gone["metadata"].get("deletionTimestamp")
    held_job = live_job(api_client, deployment.namespace, held)
    kept_job = live_job(api_client, deployment.namespace, kept)
    assert held_job is not None and kept_job is not None
    assert held_job["metadata"]["annotations"][DELETION_TIME_ANNOTATION] == held_until
    assert int(kept_job["metadata"]["annotations"][DELETION_TIME_ANNOTATION]) > time.time() + 86000


@pytest.mark.parametrize(
    ("credentials", "status", "said"),
    [
        ("none", 401, "Authorization: Bearer"),
        ("garbage", 401, "not valid"),
        ("other-audience", 401, "not valid"),
        ("stranger", 403, "may not submit jobs of definition 'hello'"),
        ("caller", 201, ""),
    ],
)
def test_with_caller_authentication_only_an_allowed_service_account_may_submit(
    deployment: Deployment, api_client: client.ApiClient, credentials: str, status: int, said: str
) -> None:
    token = {
        "none": None,
        "garbage": "not-a-token",
        "other-audience": service_account_token(
            api_client, deployment.namespace, CALLER, audience="not-jobfn"
        ),
        "stranger": deployment.stranger_token,
        "caller": deployment.caller_token,
    }[credentials]

    answer = deployment.post("/jobs", token=token, json={"definition": "hello", "arguments": {}})

    assert answer.status_code == status, answer.text
    if status >= 400:
        assert said in answer.json()["error"]["message"]
