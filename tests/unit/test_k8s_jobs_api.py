"""The pure parts of jobfn.k8s_jobs: signing, statuses, retention candidates, spec sources, config.

Nothing here reaches an API server: where a manager is needed, it is built on a client
whose server does not exist, and only calls that never send a request are made.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import (
    ApiClient,
    Configuration,
    V1Job,
    V1JobCondition,
    V1JobStatus,
    V1ObjectMeta,
)

from jobfn._errors import ConfigurationError, DefinitionError, InvalidArguments
from jobfn.k8s_jobs import (
    ConfigMapSpecSource,
    JobDefinition,
    JobDeleter,
    JobGenerator,
    JobManager,
    JobManagerFactory,
    JobSigner,
    NotFoundException,
    ReloadingJobDefinitionsRegister,
    StaticJobDefinitionsRegister,
    StaticSpecSource,
    YamlFileSpecSource,
    YamlStringSpecSource,
)

SPEC = """\
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ name }}
spec:
  template:
    spec:
      containers:
      - name: {{ name }}
        image: busybox
        command: ["echo", "{{ name }}"]
      restartPolicy: Never
"""
STATIC_JOB: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "iloveyouabushelandapeck"},
    "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}},
}


def unreachable_client() -> ApiClient:
    return ApiClient(Configuration(host="http://127.0.0.1:9"))


def offline_manager(register: StaticJobDefinitionsRegister | None = None) -> JobManager:
    return JobManager(
        "ns", JobSigner("sig"), register or StaticJobDefinitionsRegister(), unreachable_client()
    )


def job_with(conditions: list[tuple[str, str]], annotations: dict[str, str] | None = None) -> V1Job:
    return V1Job(
        metadata=V1ObjectMeta(name="j", annotations=annotations),
        status=V1JobStatus(
            conditions=[
                V1JobCondition(type=kind, status=status, last_transition_time="2026-01-01T00:00:00Z")
                for kind, status in conditions
            ]
        ),
    )


# --- JobSigner ---------------------------------------------------------------------------
def test_signer_labels_a_v1_job_and_a_dict_alike() -> None:
    signer = JobSigner("hehehe")
    model, manifest = V1Job(metadata=V1ObjectMeta(labels={"keep": "me"})), {"metadata": {}}
    signer.sign(model, "funfun")
    signer.sign(manifest, "funfun")
    expected = {JobSigner.LABEL_KEY: "hehehe", JobSigner.JOB_DEFINITION_NAME_KEY: "funfun"}
    assert model.metadata is not None and model.metadata.labels == {"keep": "me", **expected}
    assert manifest["metadata"]["labels"] == expected


def test_signer_selector_is_narrowed_by_definition_and_any_extra_label_value() -> None:
    signer = JobSigner("woahhhh")
    assert signer.label_selector() == "app.kubernetes.io/managed-by=woahhhh"
    assert (
        signer.label_selector(extra="label", another=2, job_definition_name="jd")
        == "app.kubernetes.io/managed-by=woahhhh,job_definition_name=jd,extra=label,another=2"
    )


def test_signer_refuses_a_signature_that_is_no_label_value() -> None:
    with pytest.raises(ValueError, match="label value"):
        JobSigner("not a label!")


# --- statuses ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("conditions", "status"),
    [
        ([], JobManager.JobStatus.RUNNING),
        ([("Complete", "False")], JobManager.JobStatus.RUNNING),
        ([("Suspended", "True")], JobManager.JobStatus.RUNNING),
        ([("Complete", "True")], JobManager.JobStatus.COMPLETE),
        ([("FailureTarget", "True"), ("Failed", "True")], JobManager.JobStatus.FAILED),
    ],
)
def test_job_status_of_a_v1_job(conditions: list[tuple[str, str]], status: JobManager.JobStatus) -> None:
    manager = offline_manager()
    assert manager.job_status(job_with(conditions)) is status
    assert manager.job_is_finished(job_with(conditions)) is (status is not JobManager.JobStatus.RUNNING)


# --- retention candidates ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("conditions", "deletion_time", "candidate"),
    [
        ([("Complete", "True")], None, False),
        ([("Complete", "True")], "0", True),
        ([("Failed", "True")], "0", True),
        ([("Complete", "True")], str(int(time.time()) + 10_000), False),
        ([], "0", False),  # a running job is never deleted, whatever its mark says
    ],
    # Named, not derived from the values: a clock-made id differs between xdist's workers.
    ids=["finished-unmarked", "complete-due", "failed-due", "finished-not-yet-due", "running-marked-due"],
)
def test_candidate_for_deletion(
    conditions: list[tuple[str, str]], deletion_time: str | None, candidate: bool
) -> None:
    annotations = {JobDeleter.JOB_DELETION_TIME_ANNOTATION: deletion_time} if deletion_time else None
    deleter = JobDeleter(offline_manager())
    assert deleter.is_candidate_for_deletion(job_with(conditions, annotations)) is candidate


def test_background_cleanup_stops_at_once_and_survives_an_unreachable_api() -> None:
    stop = JobDeleter(offline_manager()).run_background_cleanup(3600, retention_period_sec=0)
    started = time.monotonic()
    stop()
    assert time.monotonic() - started < 5


# --- spec sources and generators ---------------------------------------------------------
def test_yaml_string_source_renders_values_and_lists_its_variables() -> None:
    source = YamlStringSpecSource(SPEC)
    job = source.get({"name": "bob"})
    assert isinstance(job, dict)
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "bob"]
    assert source.template_vars() == ["name"]


def test_a_template_argument_cannot_change_the_jobs_structure() -> None:
    hostile = 'x"]\n        privileged: true\n{{ 7 * 7 }}'
    job = YamlStringSpecSource(SPEC).get({"name": hostile})
    assert isinstance(job, dict)
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["echo", hostile]
    assert sorted(container) == ["command", "image", "name"]


def test_a_missing_template_argument_is_an_error() -> None:
    with pytest.raises(DefinitionError, match="name"):
        YamlStringSpecSource(SPEC).get({"unknown": "var"})


def test_yaml_file_source_reads_the_file_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text(SPEC)
    source = YamlFileSpecSource(str(path))
    assert source.template_vars() == ["name"]
    path.write_text(SPEC.replace("{{ name }}", "{{ other }}"))
    assert source.template_vars() == ["other"]


def test_static_source_hands_back_a_copy_of_what_it_was_given() -> None:
    model = V1Job(metadata=V1ObjectMeta(name="static"))
    copy = StaticSpecSource(model).get({"ignored": "args"})
    assert isinstance(copy, V1Job) and copy == model and copy is not model
    assert StaticSpecSource(STATIC_JOB).get() == STATIC_JOB


def test_generated_jobs_have_unique_kubernetes_names() -> None:
    generator = JobGenerator(StaticSpecSource(STATIC_JOB))
    first, second = generator.generate(), generator.generate()
    assert isinstance(first, dict) and isinstance(second, dict)
    assert first["metadata"]["name"] != second["metadata"]["name"]
    assert first["metadata"]["name"].startswith("iloveyouabushelandapeck-")
    long = JobGenerator(StaticSpecSource({**STATIC_JOB, "metadata": {"name": "x" * 80}})).generate()
    assert isinstance(long, dict) and len(long["metadata"]["name"]) <= 63


# --- registers ---------------------------------------------------------------------------
def test_static_register_unknown_definition_is_not_found() -> None:
    register = StaticJobDefinitionsRegister({"known": JobGenerator(YamlStringSpecSource(SPEC))})
    with pytest.raises(NotFoundException, match="known"):
        register.get_generator("unknown")
    with pytest.raises(NotFoundException):
        offline_manager(register).create_job("unknown")


def test_registered_spec_becomes_a_definition_taking_exactly_its_template_variables() -> None:
    register = StaticJobDefinitionsRegister({"hello": JobGenerator(YamlStringSpecSource(SPEC))})
    definition = register.definitions().current().get("hello")
    assert definition.validate({"name": "bob"}) == {"name": "bob"}
    with pytest.raises(InvalidArguments) as refused:
        definition.validate({"templatevar": "xyz"})
    assert len(refused.value.problems) == 2  # the unknown argument, and the missing one


def test_reloading_register_reads_k8s_jobs_definitions_file(tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(SPEC)
    indented = "\n".join("      " + line for line in SPEC.splitlines())
    (tmp_path / "definitions.yaml").write_text(
        f"- name: from-file\n  spec_path: {tmp_path / 'job.yaml'}\n- name: inline\n  spec: |\n{indented}\n"
    )
    register = ReloadingJobDefinitionsRegister(tmp_path / "definitions.yaml")
    assert sorted(register.generators) == ["from-file", "inline"]
    assert register.get_generator("inline").template_vars() == ["name"]
    with pytest.raises(NotFoundException):
        register.get_generator("absent")


def test_definition_entry_picks_its_spec_source() -> None:
    assert isinstance(JobDefinition("a", spec=SPEC).spec_source(), YamlStringSpecSource)
    assert isinstance(JobDefinition("a", spec_path="/x").spec_source(), YamlFileSpecSource)
    on_map = JobDefinition("a", spec_config_map_name="m", spec_config_map_namespace="default")
    assert isinstance(on_map.spec_source(), ConfigMapSpecSource)
    with pytest.raises(ValueError, match="empty or incomplete"):
        JobDefinition("a", spec_config_map_name="m").spec_source()


# --- factory -----------------------------------------------------------------------------
def test_factory_from_env_names_every_missing_variable() -> None:
    with pytest.raises(ConfigurationError) as missing:
        JobManagerFactory.from_env({"JOB_NAMESPACE": "ns"})
    assert "JOB_SIGNATURE" in missing.value.message
    assert "JOB_DEFINITIONS_CONFIG_PATH" in missing.value.message
    assert "JOB_NAMESPACE" not in missing.value.message


def test_factory_from_env_reads_the_three_variables() -> None:
    env = {"JOB_SIGNATURE": "xyz", "JOB_NAMESPACE": "notdefault", "JOB_DEFINITIONS_CONFIG_PATH": "/etc/foo"}
    factory = JobManagerFactory.from_env(env)
    assert (factory.namespace, factory.signature) == ("notdefault", "xyz")
    assert isinstance(factory.register, ReloadingJobDefinitionsRegister)
    assert factory.register.file.path == Path("/etc/foo")


# --- the public surface ------------------------------------------------------------------
def test_k8s_jobs_is_a_submodule_whose_names_do_not_shadow_jobfns() -> None:
    import jobfn

    fresh = "import jobfn; print(jobfn.k8s_jobs.JobManager.__module__, jobfn.JobManager.__module__)"
    root = Path(__file__).resolve().parents[2]
    answer = subprocess.run(
        [sys.executable, "-c", fresh], cwd=root, capture_output=True, text=True, check=True
    )
    assert answer.stdout.split() == ["jobfn.k8s_jobs._manager", "jobfn._manager"]
    from jobfn._manager import JobManager as NativeJobManager

    assert jobfn.k8s_jobs.JobManager is JobManager
    assert jobfn.JobManager is NativeJobManager
    assert "k8s_jobs" not in jobfn.__all__
    assert set(jobfn.k8s_jobs.__all__) >= {
        "JobSigner", "JobManager", "JobDeleter", "JobManagerFactory", "StaticJobDefinitionsRegister",
        "JobGenerator", "StaticSpecSource", "YamlStringSpecSource", "YamlFileSpecSource", "ConfigMapSpecSource",
    }  # fmt: skip
