"""The Knative func CLI's ``func invoke`` against the running function (http and cloudevent formats).

func is built from its Go module by tests/tools/build-func.sh (cached: a second run
builds nothing) and run on a copy of the project's func.yaml, which it loads and
validates before invoking.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import ROOT
from tests.helpers import FunctionServer

# The first run on a machine builds func (many minutes on two cores) in the func_binary fixture.
pytestmark = pytest.mark.timeout(3600)


@pytest.fixture(scope="module")
def func_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the project's func.yaml, for func to load (and scribble in)."""
    directory = tmp_path_factory.mktemp("func-project")
    shutil.copy(ROOT / "func.yaml", directory / "func.yaml")
    return directory


def func_invoke(func_binary: Path, project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(project), "XDG_CONFIG_HOME": str(project / ".config")}
    return subprocess.run(
        [str(func_binary), "invoke", "--path", str(project), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def attribute(output: str, name: str) -> str:
    """One context attribute from func's printout of the reply event (``  name: value``)."""
    found = re.search(rf"^\s*{name}: (\S+)$", output, re.M)
    assert found, f"no {name} in:\n{output}"
    return found.group(1)


def test_func_invoke_http_submits_a_job(
    func_binary: Path, func_project: Path, function_server: FunctionServer
) -> None:
    body = {"definition": "echo", "arguments": {"message": "from func invoke"}}
    result = func_invoke(
        func_binary, func_project,
        "--target", f"{function_server.url}/jobs",
        "--format", "http",
        "--content-type", "application/json",
        "--data", json.dumps(body),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    job = json.loads(result.stdout)
    assert job["definition"] == "echo" and job["arguments"]["message"] == "from func invoke"
    assert requests.get(f"{function_server.url}/jobs/{job['name']}", timeout=30).status_code == 200


def invoke_event(
    func_binary: Path, project: Path, server: FunctionServer, event_id: str
) -> subprocess.CompletedProcess[str]:
    return func_invoke(
        func_binary, project,
        "--target", server.url,
        "--format", "cloudevent",
        "--type", "dev.jobfn.test.echo",
        "--source", "/tests/func-invoke",
        "--id", event_id,
        "--content-type", "application/json",
        "--data", json.dumps({"message": "an event from func invoke"}),
    )  # fmt: skip


def test_func_invoke_cloudevent_submits_a_job_and_gets_the_reply_event(
    func_binary: Path, func_project: Path, function_server: FunctionServer
) -> None:
    result = invoke_event(func_binary, func_project, function_server, uuid.uuid4().hex)
    assert result.returncode == 0, result.stdout + result.stderr
    assert attribute(result.stdout, "type") == "dev.jobfn.job.submitted"
    name = attribute(result.stdout, "subject")
    job = requests.get(f"{function_server.url}/jobs/{name}", timeout=30).json()
    assert job["arguments"]["message"] == "an event from func invoke"


def test_func_invoke_of_the_same_event_twice_gets_the_same_job(
    func_binary: Path, func_project: Path, function_server: FunctionServer
) -> None:
    event_id = uuid.uuid4().hex
    first = invoke_event(func_binary, func_project, function_server, event_id)
    second = invoke_event(func_binary, func_project, function_server, event_id)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    assert attribute(first.stdout, "subject") == attribute(second.stdout, "subject")
