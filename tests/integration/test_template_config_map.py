"""Templates held in a ConfigMap (``template_config_map``, k8s-jobs' ``spec_config_map_name``),
read through the real API server: rendered, re-read when edited, retried when a read fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from jobfn._config_maps import ConfigMapReader
from jobfn._contract import JobSigner
from jobfn._definitions import JobDefinitions
from jobfn._definitions_file import DefinitionsFile
from jobfn._errors import DefinitionsNotLoaded
from jobfn._kube import KubeApi
from jobfn._manager import JobManager
from jobfn._submission import Submission
from tests.helpers import wait_for

SIGNATURE = "jobfn-test"
RELOAD_SECONDS = 0.05


def job_template(word: str) -> str:
    return f"""\
apiVersion: batch/v1
kind: Job
metadata: {{name: from-a-config-map}}
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - {{name: say, image: busybox, command: ["echo", "{word}", "{{{{ message }}}}"]}}
"""


def definitions_naming(directory: Path, config_map: str, namespace: str, key: str = "job.yaml") -> Path:
    path = directory / "definitions.yaml"
    path.write_text(
        "definitions:\n"
        "  - name: held\n"
        "    parameters: {message: {type: string}}\n"
        f"    template_config_map: {{name: {config_map}, namespace: {namespace}, key: {key}}}\n"
    )
    return path


def put_config_map(api_client: Any, namespace: str, name: str, data: dict[str, str]) -> None:
    core = k8s.CoreV1Api(api_client)
    body = k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=name), data=data)
    try:
        core.replace_namespaced_config_map(name, namespace, body)
    except k8s.ApiException as error:
        if error.status != 404:
            raise
        core.create_namespaced_config_map(namespace, body)


def watched(path: Path, namespace: str, api_client: Any) -> tuple[DefinitionsFile, JobManager]:
    """The definitions file read through the real API, and a manager submitting from it."""
    definitions = DefinitionsFile(
        path, RELOAD_SECONDS, read_config_map=ConfigMapReader(KubeApi(api_client), namespace)
    )
    return definitions, JobManager(namespace, JobSigner(SIGNATURE), definitions, KubeApi(api_client))


def submitted_command(manager: JobManager, message: str) -> list[str]:
    job = manager.read_job(manager.submit(Submission("held", {"message": message})).name)
    command: list[str] = job["spec"]["template"]["spec"]["containers"][0]["command"]
    return command


def rendered_command(definitions: DefinitionsFile, message: str) -> list[str]:
    job = definitions.current().get("held").template.render({"message": message})
    command: list[str] = job["spec"]["template"]["spec"]["containers"][0]["command"]
    return command


def last_error_after_a_check(definitions: DefinitionsFile) -> str | None:
    """The problem recorded once a request has let the file check (checks happen on use)."""
    definitions.current()
    return definitions.last_error


def loaded_or_none(definitions: DefinitionsFile) -> JobDefinitions | None:
    try:
        return definitions.current()
    except DefinitionsNotLoaded:
        return None


def test_a_config_map_held_template_is_rendered(tmp_path: Path, namespace: str, api_client: Any) -> None:
    put_config_map(api_client, namespace, "templates", {"job.yaml": job_template("first")})
    _, manager = watched(definitions_naming(tmp_path, "templates", namespace), namespace, api_client)
    assert submitted_command(manager, "hi") == ["echo", "first", "hi"]


def test_an_edited_config_map_is_read_again(tmp_path: Path, namespace: str, api_client: Any) -> None:
    put_config_map(api_client, namespace, "templates", {"job.yaml": job_template("first")})
    definitions, manager = watched(
        definitions_naming(tmp_path, "templates", namespace), namespace, api_client
    )
    assert submitted_command(manager, "a") == ["echo", "first", "a"]
    put_config_map(api_client, namespace, "templates", {"job.yaml": job_template("second")})
    wait_for(
        lambda: rendered_command(definitions, "b") == ["echo", "second", "b"],
        timeout=10,
        what="the edited ConfigMap's template in use",
    )
    assert submitted_command(manager, "b") == ["echo", "second", "b"]


def test_a_config_map_that_is_missing_at_start_is_read_once_it_exists(
    tmp_path: Path, namespace: str, api_client: Any
) -> None:
    definitions, manager = watched(definitions_naming(tmp_path, "late", namespace), namespace, api_client)
    with pytest.raises(DefinitionsNotLoaded, match=r"ConfigMap .*late.* cannot be read") as raised:
        definitions.current()
    assert str(tmp_path) not in raised.value.message
    put_config_map(api_client, namespace, "late", {"job.yaml": job_template("arrived")})
    wait_for(
        lambda: loaded_or_none(definitions), timeout=10, what="definitions loaded once the ConfigMap exists"
    )
    assert submitted_command(manager, "x") == ["echo", "arrived", "x"]


def test_a_failed_read_keeps_the_last_good_definitions_and_is_retried(
    tmp_path: Path, namespace: str, api_client: Any
) -> None:
    put_config_map(api_client, namespace, "templates", {"job.yaml": job_template("good")})
    definitions, manager = watched(
        definitions_naming(tmp_path, "templates", namespace), namespace, api_client
    )
    assert submitted_command(manager, "a") == ["echo", "good", "a"]
    put_config_map(api_client, namespace, "templates", {"other-key": "x"})  # the template's key is gone
    wait_for(lambda: last_error_after_a_check(definitions), timeout=10, what="the failed read recorded")
    assert "cannot be read" in str(definitions.last_error)
    assert submitted_command(manager, "b") == ["echo", "good", "b"]  # the last good definitions
    put_config_map(api_client, namespace, "templates", {"job.yaml": job_template("back")})
    wait_for(
        lambda: last_error_after_a_check(definitions) is None,
        timeout=10,
        what="the read retried and succeeding",
    )
    assert submitted_command(manager, "c") == ["echo", "back", "c"]


def test_k8s_jobs_spec_config_map_name_reads_the_key_named_like_the_config_map(
    tmp_path: Path, namespace: str, api_client: Any
) -> None:
    put_config_map(api_client, namespace, "legacy-spec", {"legacy-spec": job_template("legacy")})
    path = tmp_path / "definitions.yaml"
    path.write_text(
        f"- name: held\n  spec_config_map_name: legacy-spec\n  spec_config_map_namespace: {namespace}\n"
    )
    _, manager = watched(path, namespace, api_client)
    assert submitted_command(manager, "old") == ["echo", "legacy", "old"]
