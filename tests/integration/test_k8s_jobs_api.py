"""jobfn.k8s_jobs, k8s-jobs 0.2.0's API, against the real local API server.

Jobs run on KWOK nodes: the pod-template annotations ``jobfn.test/run-duration-ms`` and
``jobfn.test/exit-code`` say how long a simulated container runs and how it ends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from jobfn._contract import CREATED_LABEL
from jobfn._errors import InvalidArguments
from jobfn.k8s_jobs import (
    ConfigMapSpecSource,
    JobDeleter,
    JobGenerator,
    JobManager,
    JobSigner,
    NotFoundException,
    StaticJobDefinitionsRegister,
    YamlFileSpecSource,
    YamlStringSpecSource,
)
from tests.helpers import Kubectl, wait_for

SIGNATURE = "k8s-jobs-test"
DELETION_TIME = "job_deletion_time_unix_sec"


def spec(name: str, exit_code: int = 0, run_ms: int = 200) -> str:
    """A k8s-jobs style template (unquoted ``{{ }}`` values) of a simulated job."""
    return f"""\
apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  backoffLimit: 0
  template:
    metadata:
      annotations:
        jobfn.test/run-duration-ms: "{run_ms}"
        jobfn.test/exit-code: "{exit_code}"
    spec:
      nodeSelector: {{type: kwok}}  # KWOK simulates the pod: SIMULATED_NODE in tests/helpers.py
      tolerations: [{{key: jobfn.dev/simulated, operator: Exists, effect: NoSchedule}}]
      containers:
      - name: {{{{ name }}}}
        image: busybox
        command: ["echo", "{{{{ name }}}}"]
      restartPolicy: Never
"""


def indented(text: str, by: int) -> str:
    return "\n".join(" " * by + line for line in text.splitlines())


@pytest.fixture
def register() -> StaticJobDefinitionsRegister:
    return StaticJobDefinitionsRegister(
        {
            "hello": JobGenerator(YamlStringSpecSource(spec("hello"))),
            "fail": JobGenerator(YamlStringSpecSource(spec("fail", exit_code=3))),
        }
    )


@pytest.fixture
def manager(namespace: str, api_client: Any, register: StaticJobDefinitionsRegister) -> JobManager:
    return JobManager(namespace, JobSigner(SIGNATURE), register, api_client=api_client)


def finished(manager: JobManager, name: str) -> JobManager.JobStatus:
    wait_for(lambda: manager.job_is_finished(name), timeout=60, what=f"job {name} finished")
    return manager.job_status(name)


@pytest.fixture
def kubernetes_default_configuration(kubeconfig: Path) -> Iterator[None]:
    """What a k8s-jobs program does first: load the kubeconfig as the client's default."""
    k8s_config.load_kube_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    yield
    k8s.Configuration.set_default(None)


def test_a_k8s_jobs_program_runs_end_to_end(
    namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kubectl: Kubectl,
    kubernetes_default_configuration: None,
) -> None:
    (tmp_path / "fail.yaml").write_text(spec("fail", exit_code=3))
    (tmp_path / "job_definitions").write_text(
        f"- name: hello\n  spec: |\n{indented(spec('hello'), 4)}\n"
        f"- name: fail\n  spec_path: {tmp_path / 'fail.yaml'}\n"
    )
    monkeypatch.setenv("JOB_SIGNATURE", SIGNATURE)
    monkeypatch.setenv("JOB_NAMESPACE", namespace)
    monkeypatch.setenv("JOB_DEFINITIONS_CONFIG_PATH", str(tmp_path / "job_definitions"))

    # --- the program, as written for k8s-jobs but for its imports ---------------------------
    from jobfn.k8s_jobs import JobDeleter, JobManager, JobManagerFactory

    manager = JobManagerFactory.from_env().manager()
    hello = manager.create_job("hello", template_args={"name": "bob"})
    failing = manager.create_job("fail", template_args={"name": "alice"})
    assert [job.metadata.name for job in manager.list_jobs(job_definition_name="hello")] == [hello]
    while not (manager.job_is_finished(hello) and manager.job_is_finished(failing)):
        time.sleep(0.2)
    assert manager.job_status(hello) is JobManager.JobStatus.COMPLETE
    assert manager.job_status(failing) is JobManager.JobStatus.FAILED
    logs = manager.job_logs(hello)
    ((pod, containers),) = logs.items()
    assert pod.startswith(hello) and list(containers) == ["bob"]
    assert "[kwok] simulated output line 1" in "\n".join(containers["bob"])

    # (the test lets a few seconds pass, so that "from when it finished" and "from now" differ)
    finished_at = manager.read_job(hello).status.completion_time.timestamp()
    wait_for(lambda: time.time() > finished_at + 3, what="3 s since the job finished")

    deleter = JobDeleter(manager)
    archived: list[str] = []
    deleter.mark_jobs_for_deletion(retention_period_sec=3600)
    deleter.cleanup_jobs(delete_callback=lambda job: archived.append(job.metadata.name))
    # ------------------------------------------------------------------------------------------
    assert archived == [], "nothing is due before its deletion time"
    marked = manager.read_job(hello).metadata.annotations[DELETION_TIME]
    assert abs(int(marked) - (finished_at + 3600)) <= 1, "retention counts from when the job finished"

    # An operator brings the deletion time forward: the job is now due.
    past = str(int(time.time()) - 1)
    kubectl("annotate", "--overwrite", "-n", namespace, "job", hello, f"{DELETION_TIME}={past}")

    def refuse(job: k8s.V1Job) -> None:
        raise RuntimeError(f"archive unavailable for {job.metadata.name}")

    deleter.cleanup_jobs(delete_callback=refuse)
    assert manager.read_job(hello).metadata.name == hello, "a failing callback keeps the job"

    deleter.cleanup_jobs(delete_callback=lambda job: archived.append(job.metadata.name))
    assert archived == [hello]
    wait_for(lambda: hello not in {j.metadata.name for j in manager.list_jobs()}, what="job deleted")
    assert {j.metadata.name for j in manager.list_jobs()} == {failing}


def test_created_job_carries_the_contract_and_pre_create_sees_the_signed_v1_job(
    manager: JobManager, api_client: Any, namespace: str
) -> None:
    seen: list[dict[str, str]] = []

    def pre_create(job: k8s.V1Job) -> None:
        seen.append(dict(job.metadata.labels))
        job.metadata.labels["team"] = "data"

    name = manager.create_job("hello", {"name": "bob"}, pre_create=pre_create)
    assert seen == [{"app.kubernetes.io/managed-by": SIGNATURE, "job_definition_name": "hello"}]
    stored = k8s.BatchV1Api(api_client).read_namespaced_job(name, namespace)
    created_ms = stored.metadata.labels.pop(CREATED_LABEL)  # the store's own, after the hook
    assert stored.metadata.labels == {**seen[0], "team": "data"}
    assert abs(int(created_ms) / 1000 - stored.metadata.creation_timestamp.timestamp()) < 60
    assert json.loads(stored.metadata.annotations["jobfn.dev/arguments"]) == {"name": "bob"}
    assert name.startswith("hello-")


def test_read_job_is_a_v1_job_with_its_status(manager: JobManager) -> None:
    name = manager.create_job("hello", {"name": "bob"})
    assert finished(manager, name) is JobManager.JobStatus.COMPLETE
    job = manager.read_job(name)
    assert isinstance(job, k8s.V1Job)
    assert [c.type for c in job.status.conditions if c.status == "True"][-1] == "Complete"
    assert job.spec.template.spec.containers[0].command == ["echo", "bob"]


def test_arguments_the_template_does_not_take_are_left_out_as_k8s_jobs_did(manager: JobManager) -> None:
    name = manager.create_job("hello", {"name": "bob", "templatevar": "xyz"})
    job = manager.read_job(name)
    assert job.spec.template.spec.containers[0].command == ["echo", "bob"]
    assert "templatevar" not in job.metadata.annotations["jobfn.dev/arguments"]


def test_a_template_variable_without_an_argument_is_refused(manager: JobManager) -> None:
    with pytest.raises(InvalidArguments, match="name"):
        manager.create_job("hello", {"templatevar": "xyz"})
    assert manager.list_jobs() == []


def test_unknown_definitions_and_jobs_raise_not_found(manager: JobManager, namespace: str) -> None:
    with pytest.raises(NotFoundException):
        manager.create_job("nope")
    with pytest.raises(NotFoundException):
        manager.read_job("foobar")
    with pytest.raises(NotFoundException):
        manager.job_logs("foobar")


def test_fetch_jobs_selects_by_signature_definition_and_extra_labels(
    manager: JobManager, namespace: str, api_client: Any, register: StaticJobDefinitionsRegister
) -> None:
    hello = manager.create_job("hello", {"name": "a"}, pre_create=lambda j: j.metadata.labels.update(run="2"))
    fail = manager.create_job("fail", {"name": "b"})
    other = JobManager(namespace, JobSigner("someone-else"), register, api_client=api_client)
    other.create_job("hello", {"name": "c"})
    assert sorted(j.metadata.name for j in manager.fetch_jobs()) == sorted([hello, fail])
    assert [j.metadata.name for j in manager.list_jobs("fail")] == [fail]
    assert [j.metadata.name for j in manager.list_jobs(run=2)] == [hello]
    assert len(other.list_jobs()) == 1


def test_delete_job_refuses_a_job_changed_since_it_was_read(
    manager: JobManager, namespace: str, kubectl: Kubectl
) -> None:
    name = manager.create_job("hello", {"name": "bob"})
    stale = manager.read_job(name)
    kubectl("annotate", "-n", namespace, "job", name, f"{DELETION_TIME}=253402300799")  # a user's hold
    assert manager.delete_job(stale) is False
    assert manager.read_job(name).metadata.name == name
    assert manager.delete_job(k8s.V1Job(metadata=k8s.V1ObjectMeta(name=name))) is True
    wait_for(lambda: manager.list_jobs() == [], what="job deleted")


def test_mark_keeps_an_existing_deletion_time(manager: JobManager, namespace: str, kubectl: Kubectl) -> None:
    name = manager.create_job("hello", {"name": "bob"})
    finished(manager, name)
    kubectl("annotate", "-n", namespace, "job", name, f"{DELETION_TIME}=253402300799")
    deleter = JobDeleter(manager)
    assert deleter.mark_deletion_time(manager.read_job(name), 0) is False
    deleter.mark_and_delete_old_jobs(retention_period_sec=0)
    assert manager.read_job(name).metadata.annotations[DELETION_TIME] == "253402300799"


def test_running_jobs_are_neither_marked_nor_deleted(manager: JobManager) -> None:
    name = manager.create_job("hello", {"name": "bob"}, pre_create=slow)
    JobDeleter(manager).mark_and_delete_old_jobs(retention_period_sec=0)
    job = manager.read_job(name)
    assert manager.job_status(job) is JobManager.JobStatus.RUNNING
    assert DELETION_TIME not in (job.metadata.annotations or {})


def slow(job: k8s.V1Job) -> None:
    job.spec.template.metadata.annotations["jobfn.test/run-duration-ms"] = "600000"


def test_background_cleanup_deletes_finished_jobs(manager: JobManager) -> None:
    names = {manager.create_job("hello", {"name": "bob"}) for _ in range(3)}
    for name in names:
        finished(manager, name)
    archived: list[str] = []
    stop = JobDeleter(manager).run_background_cleanup(
        0.2, retention_period_sec=0, delete_callback=lambda job: archived.append(job.metadata.name)
    )
    try:
        wait_for(lambda: manager.list_jobs() == [], what="every finished job deleted")
    finally:
        stop()
    assert names <= set(archived)


def test_file_and_config_map_spec_sources(namespace: str, api_client: Any, tmp_path: Path) -> None:
    (tmp_path / "job.yaml").write_text(spec("from-file"))
    config_map = k8s.V1ConfigMap(
        metadata=k8s.V1ObjectMeta(name="helloworld"), data={"helloworld": spec("cm")}
    )
    k8s.CoreV1Api(api_client).create_namespaced_config_map(namespace, config_map)
    register = StaticJobDefinitionsRegister(
        {
            "file": JobGenerator(YamlFileSpecSource(tmp_path / "job.yaml")),
            "config-map": JobGenerator(ConfigMapSpecSource("helloworld", namespace, api_client)),
        }
    )
    manager = JobManager(namespace, JobSigner(SIGNATURE), register, api_client=api_client)
    from_file = manager.read_job(manager.create_job("file", {"name": "f"}))
    from_map = manager.read_job(manager.create_job("config-map", {"name": "m"}))
    assert from_file.spec.template.spec.containers[0].command == ["echo", "f"]
    assert from_map.spec.template.spec.containers[0].command == ["echo", "m"]
    assert register.get_generator("config-map").spec_source.get({"name": "m"})["metadata"]["name"] == "cm"


def test_factory_definitions_file_with_a_config_map_spec_and_hot_reload(
    namespace: str, api_client: Any, tmp_path: Path, kubernetes_default_configuration: None
) -> None:
    from jobfn.k8s_jobs import JobManagerFactory

    config_map = k8s.V1ConfigMap(
        metadata=k8s.V1ObjectMeta(name="helloworld"), data={"helloworld": spec("cm")}
    )
    k8s.CoreV1Api(api_client).create_namespaced_config_map(namespace, config_map)
    definitions = tmp_path / "job_definitions"
    via_map = (
        f"- name: via-map\n  spec_config_map_name: helloworld\n  spec_config_map_namespace: {namespace}\n"
    )
    definitions.write_text(via_map)
    manager = JobManagerFactory.from_vars(SIGNATURE, namespace, str(definitions)).manager()
    job = manager.read_job(manager.create_job("via-map", {"name": "m"}))
    assert job.spec.template.spec.containers[0].command == ["echo", "m"]
    with pytest.raises(NotFoundException):
        manager.create_job("added-later", {"name": "x"})

    definitions.write_text(via_map + f"- name: added-later\n  spec: |\n{indented(spec('later'), 4)}\n")

    def create_added() -> str | None:
        try:
            return manager.create_job("added-later", {"name": "x"})
        except NotFoundException:
            return None

    added = wait_for(create_added, timeout=10, what="the edited definitions file loaded")
    assert [j.metadata.name for j in manager.list_jobs("added-later")] == [added]
