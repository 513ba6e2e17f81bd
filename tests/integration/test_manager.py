"""The JobManager against the real local API server."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from jobfn._contract import JobSigner
from jobfn._definitions import JobDefinitions
from jobfn._definitions_file import DefinitionsFile
from jobfn._errors import (
    Conflict,
    DefinitionNotFound,
    InvalidArguments,
    InvalidRequest,
    JobNotFound,
    TooManyRequests,
    Unavailable,
)
from jobfn._kube import KubeApi
from jobfn._manager import JobManager
from jobfn._retention import RetentionChange
from jobfn._submission import Overrides, Submission
from tests.helpers import wait_for

DATA = Path(__file__).parent.parent / "data"
HOSTILE = json.loads((DATA / "hostile_values.json").read_text())


def raw_job(api_client: Any, namespace: str, name: str) -> dict[str, Any]:
    """A job as the API server stores it, read without going through jobfn."""
    response = k8s.BatchV1Api(api_client).read_namespaced_job(name, namespace, _preload_content=False)
    return json.loads(response.data)  # type: ignore[no-any-return]


def state_of(manager: JobManager, name: str, wanted: str) -> str | None:
    view = manager.describe_job(name)
    return view.reason if view.state == wanted else None


def test_created_job_carries_the_k8s_jobs_contract(
    manager: JobManager, api_client: Any, namespace: str
) -> None:
    view = manager.submit(Submission("echo", {"message": "hi"}))
    selected = k8s.BatchV1Api(api_client).list_namespaced_job(
        namespace, label_selector="app.kubernetes.io/managed-by=jobfn-test,job_definition_name=echo"
    )
    assert [job.metadata.name for job in selected.items] == [view.name]
    assert view.name.startswith("echo-")
    assert view.created_now
    assert "job_deletion_time_unix_sec" not in (selected.items[0].metadata.annotations or {})


def test_k8s_jobs_create_job_call_and_unquoted_template_work(manager: JobManager) -> None:
    name = manager.create_job("legacy", {"name": "bob"})
    job = manager.read_job(name)
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["echo", "bob"]


def test_hostile_values_are_refused_or_stored_verbatim(
    manager: JobManager, api_client: Any, namespace: str
) -> None:
    benign = raw_job(api_client, namespace, manager.submit(Submission("echo", {"message": "x"})).name)

    def submit(value: str) -> tuple[str, str | None, str | None]:
        try:
            return value, manager.submit(Submission("echo", {"message": value})).name, None
        except (InvalidArguments, InvalidRequest) as refused:
            return value, None, refused.message

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(submit, [*HOSTILE["values"], HOSTILE["too_long"]]))
    stored = 0
    for value, name, refusal in outcomes:
        if name is None:
            assert refusal and ("message" in refusal or "Kubernetes refused" in refusal), refusal
            continue
        stored += 1
        job = raw_job(api_client, namespace, name)
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert container["command"][1] == value
        assert container["env"] == [{"name": "MESSAGE", "value": value}]
        assert job["metadata"]["annotations"]["note"] == value
        assert json.loads(job["metadata"]["annotations"]["jobfn.dev/arguments"])["message"] == value
        assert sorted(job["spec"]) == sorted(benign["spec"])
        assert sorted(container) == sorted(benign["spec"]["template"]["spec"]["containers"][0])
    assert stored >= 30
    assert outcomes[-1][1] is None, "a value beyond maxLength must be refused"


def test_concurrent_creates_with_one_idempotency_key_give_exactly_one_job(manager: JobManager) -> None:
    barrier = threading.Barrier(16)

    def submit(_: int) -> str:
        barrier.wait()
        return manager.submit(Submission("echo", {"message": "once"}, idempotency_key="order-42")).name

    with ThreadPoolExecutor(16) as pool:
        names = set(pool.map(submit, range(16)))
    assert len(names) == 1
    assert [job["metadata"]["name"] for job in manager.fetch_jobs("echo")] == list(names)


def test_replayed_key_returns_the_existing_job_and_a_changed_request_is_a_conflict(
    manager: JobManager,
) -> None:
    first = manager.submit(Submission("echo", {"message": "a"}, idempotency_key="k"))
    again = manager.submit(Submission("echo", {"message": "a"}, idempotency_key="k"))
    assert (first.created_now, again.created_now, again.uid) == (True, False, first.uid)
    with pytest.raises(Conflict, match="different request"):
        manager.submit(Submission("echo", {"message": "b"}, idempotency_key="k"))


def test_hot_reload_while_the_manager_is_in_use(
    tmp_path: Path, namespace: str, api_client: Any, core_definitions: JobDefinitions
) -> None:
    core = (DATA / "definitions" / "core.yaml").read_text()
    path = tmp_path / "definitions.yaml"
    path.write_text(core)
    manager = JobManager(
        namespace,
        JobSigner("jobfn-test"),
        DefinitionsFile(path, reload_interval_seconds=0.05),
        KubeApi(api_client),
    )
    manager.submit(Submission("echo", {"message": "before"}))
    renamed = core.replace("- name: fail\n", "- name: fail-renamed\n")
    path.with_suffix(".new").write_text(renamed)
    path.with_suffix(".new").replace(path)
    view = wait_for(lambda: _try_submit(manager, "fail-renamed"), timeout=5)
    assert view.definition == "fail-renamed"
    path.write_text("definitions: [{name: broken}]")
    wait_for(
        lambda: manager.definitions.current() and getattr(manager.definitions, "last_error", None), timeout=5
    )
    assert manager.submit(Submission("echo", {"message": "still served"})).created_now


def _try_submit(manager: JobManager, definition: str) -> Any:
    try:
        return manager.submit(Submission(definition, {}))
    except DefinitionNotFound:  # until the reload lands
        return None


def test_succeeded_job(manager: JobManager) -> None:
    name = manager.submit(Submission("echo", {"message": "done"})).name
    assert wait_for(lambda: state_of(manager, name, "SUCCEEDED"), timeout=60) == "Completed"
    view = manager.describe_job(name)
    assert view.stopped is not None and view.started is not None
    assert view.pods and view.pods[0].containers[0]["exit_code"] == 0


def test_failed_job_reports_backoff_and_exit_code(manager: JobManager) -> None:
    name = manager.submit(Submission("fail", {"exit_code": 3, "retries": 1})).name
    # Wait for condition Failed itself (stopped is set), not FailureTarget, which the
    # Job controller sets before it has counted the last failed pod.
    reason = wait_for(lambda: (view := manager.describe_job(name)).stopped and view.reason, timeout=90)
    assert reason.startswith("BackoffLimitExceeded: the job failed 2 time(s)")
    assert "exit code(s) 3" in reason


def test_timed_out_job(manager: JobManager) -> None:
    name = manager.submit(Submission("sleep", {}, Overrides(timeout=2))).name
    reason = wait_for(lambda: state_of(manager, name, "FAILED"), timeout=60)
    assert reason.startswith("DeadlineExceeded")


def test_suspended_job_is_runnable_waiting_for_quota(manager: JobManager) -> None:
    name = manager.submit(Submission("queued")).name
    assert "quota" in wait_for(lambda: state_of(manager, name, "RUNNABLE"), timeout=10)


def test_running_job_then_terminated_with_a_reason(manager: JobManager) -> None:
    name = manager.submit(Submission("sleep")).name
    wait_for(lambda: state_of(manager, name, "RUNNING"), timeout=60)
    manager.terminate_job(name, "no longer needed")
    assert wait_for(lambda: state_of(manager, name, "FAILED"), timeout=60) == "Terminated: no longer needed"
    wait_for(lambda: not manager.job_pods(name) or None, timeout=60)


def test_array_job_runs_indexed_children(manager: JobManager) -> None:
    view = manager.submit(Submission("echo", {"message": "x"}, Overrides(array_size=3)))
    assert view.array_size == 3
    wait_for(lambda: state_of(manager, view.name, "SUCCEEDED"), timeout=90)
    indexes = sorted(pod.index for pod in manager.describe_job(view.name).pods or [] if pod.index is not None)
    assert indexes == [0, 1, 2]


def test_pods_of_many_jobs_are_read_in_batches_and_match_each_jobs_own(manager: JobManager) -> None:
    names = [
        manager.submit(Submission("echo", {"message": "batch"}, Overrides(array_size=2))).name,
        manager.submit(Submission("echo", {"message": "batch"})).name,
        manager.submit(Submission("echo", {"message": "batch"})).name,
    ]
    for name in names:
        wait_for(lambda name=name: state_of(manager, name, "SUCCEEDED"), timeout=90)
    jobs = [manager.read_job(name) for name in names]

    by_uid = manager.store.pods_of(jobs)

    for job in jobs:
        own = {pod["metadata"]["name"] for pod in manager.job_pods(job["metadata"]["name"])}
        assert own and {pod["metadata"]["name"] for pod in by_uid[job["metadata"]["uid"]]} == own
    assert len(by_uid[jobs[0]["metadata"]["uid"]]) == 2


def test_describing_many_matches_describing_each_and_leaves_out_unknown_jobs(manager: JobManager) -> None:
    name = manager.submit(Submission("echo", {"message": "many"}, Overrides(array_size=2))).name
    wait_for(lambda: state_of(manager, name, "SUCCEEDED"), timeout=90)

    described = manager.describe_jobs([name, "no-such-job", name])

    assert list(described) == [name]
    one = manager.describe_jobs([name])[name]
    assert described[name].view == one.view and described[name].children == one.children
    assert sorted(p["metadata"]["name"] for p in described[name].pods) == sorted(
        p["metadata"]["name"] for p in one.pods
    )


def test_active_job_cap_refuses_with_too_many_requests(manager: JobManager) -> None:
    manager.submit(Submission("sleep"))
    manager.submit(Submission("sleep"))
    with pytest.raises(TooManyRequests, match="cap is 2"):
        manager.submit(Submission("sleep"))


def test_a_marked_job_is_indexed_and_listings_by_state_still_see_unmarked_ones(manager: JobManager) -> None:
    marked, unmarked = (manager.submit(Submission("echo", {"message": m})).name for m in ("a", "b"))
    running = manager.submit(Submission("sleep")).name
    for name in (marked, unmarked):
        wait_for(lambda name=name: state_of(manager, name, "SUCCEEDED"), timeout=60)
    written = manager.mark_deletion_time(manager.read_job(marked), 4_000_000_000)
    assert written is not None and written["metadata"]["labels"]["jobfn.dev/final-state"] == "SUCCEEDED"

    assert {job.name for job in manager.list_jobs(state="SUCCEEDED").jobs} == {marked, unmarked}
    assert manager.list_jobs(state="FAILED").jobs == []
    assert running in {
        job.name
        for job in manager.list_jobs(state="RUNNING").jobs
        + manager.list_jobs(state="STARTING").jobs
        + manager.list_jobs(state="PENDING").jobs
        + manager.list_jobs(state="SUBMITTED").jobs
    }


def test_logs_per_pod_and_container_with_tail(manager: JobManager) -> None:
    name = manager.submit(Submission("echo", {"message": "logs"})).name
    wait_for(lambda: state_of(manager, name, "SUCCEEDED"), timeout=60)
    logs = manager.job_logs(name)
    assert len(logs) == 1 and logs[0].container == "main" and logs[0].text
    tail = manager.job_logs(name, tail_lines=1)[0].text
    assert tail.count("\n") <= 1 and tail.strip() in logs[0].text


def test_listing_pages_and_filters(manager: JobManager) -> None:
    names = {manager.submit(Submission("echo", {"message": str(i)})).name for i in range(5)}
    manager.submit(Submission("queued"))
    first = manager.list_jobs("echo", limit=2)
    assert len(first.jobs) == 2 and first.next_token
    seen = {job.name for job in first.jobs}
    token = first.next_token
    while token:
        page = manager.list_jobs("echo", limit=2, next_token=token)
        seen |= {job.name for job in page.jobs}
        token = page.next_token
    assert seen == names
    assert [job.definition for job in manager.list_jobs(state="RUNNABLE").jobs] == ["queued"]
    assert len(manager.list_jobs(labels={"team": "core"}).jobs) == 5


def test_retention_hold_sets_the_annotation(manager: JobManager) -> None:
    name = manager.submit(Submission("echo", {"message": "keep"})).name
    assert (
        manager.change_retention(name, RetentionChange("delete_after", 4_000_000_000)).deletion_time
        == 4_000_000_000
    )


def test_pre_create_hook_changes_the_job(
    namespace: str, api_client: Any, core_definitions: JobDefinitions
) -> None:
    def hook(job: dict[str, Any]) -> dict[str, Any]:
        job["metadata"]["annotations"]["audited"] = "yes"
        return job

    manager = JobManager(
        namespace, JobSigner("jobfn-test"), core_definitions, KubeApi(api_client), pre_create=hook
    )
    name = manager.submit(Submission("echo", {"message": "x"})).name
    assert raw_job(api_client, namespace, name)["metadata"]["annotations"]["audited"] == "yes"


def test_jobs_of_another_signature_are_not_found(
    manager: JobManager, api_client: Any, namespace: str
) -> None:
    other = JobManager(namespace, JobSigner("someone-else"), manager.definitions, KubeApi(api_client))
    name = other.submit(Submission("echo", {"message": "theirs"})).name
    with pytest.raises(JobNotFound):
        manager.describe_job(name)
    assert name not in {job["metadata"]["name"] for job in manager.fetch_jobs()}


def test_unknown_job_is_not_found(manager: JobManager) -> None:
    with pytest.raises(JobNotFound, match="nope"):
        manager.describe_job("nope")


def test_stale_mark_never_overwrites_and_stale_delete_never_deletes(manager: JobManager) -> None:
    name = manager.submit(Submission("echo", {"message": "x"})).name
    seen = manager.read_job(name)
    manager.change_retention(
        name, RetentionChange("delete_after", 4_000_000_000)
    )  # a user's hold lands after we read
    assert manager.mark_deletion_time(seen, 1) is None
    assert manager.read_job(name)["metadata"]["annotations"]["job_deletion_time_unix_sec"] == "4000000000"
    assert manager.delete_job(seen) is False
    assert manager.read_job(name)


def test_unreachable_api_is_unavailable(namespace: str, core_definitions: JobDefinitions) -> None:
    configuration = k8s.Configuration(host="https://127.0.0.1:1")
    configuration.retries = False
    manager = JobManager(namespace, JobSigner("x"), core_definitions, KubeApi(k8s.ApiClient(configuration)))
    with pytest.raises(Unavailable, match="cannot be reached"):
        manager.submit(Submission("echo", {"message": "x"}))
