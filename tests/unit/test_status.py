"""The state model, from Job and pod objects shaped as the API returns them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from jobfn._status import (
    FAILED,
    PENDING,
    RUNNABLE,
    RUNNING,
    STARTING,
    STATES,
    SUBMITTED,
    SUCCEEDED,
    event_view,
    job_state,
    job_view,
    state_counts,
    terminal_time,
)

T0 = "2026-11-28T10:00:00Z"
T1 = "2026-11-28T10:05:00Z"


def job(
    spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None, **annotations: str
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "j",
            "uid": "u",
            "labels": {"job_definition_name": "d"},
            "annotations": annotations,
            "creationTimestamp": T0,
        },
        "spec": spec or {},
        "status": status or {},
    }


def condition(kind: str, reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": kind, "status": "True", "reason": reason, "message": message, "lastTransitionTime": T1}


def pod(
    phase: str, waiting: str | None = None, scheduled: bool = True, exit_code: int | None = None
) -> dict[str, Any]:
    state: dict[str, Any] = {"running": {}} if phase == "Running" else {}
    if waiting:
        state = {"waiting": {"reason": waiting, "message": "pull failed"}}
    if exit_code is not None:
        state = {"terminated": {"exitCode": exit_code}}
    conditions = [] if scheduled else [{"type": "PodScheduled", "status": "False", "message": "0/1 nodes"}]
    return {
        "metadata": {"name": "p"},
        "spec": {},
        "status": {
            "phase": phase,
            "containerStatuses": [{"name": "main", "state": state}],
            "conditions": conditions,
        },
    }


STARTED = {"startTime": T0}


@pytest.mark.parametrize(
    ("the_job", "pods", "expected"),
    [
        (job(), None, SUBMITTED),
        (job({"suspend": True}), None, RUNNABLE),
        (job(status=STARTED), None, PENDING),
        (job(status={**STARTED, "active": 1}), None, STARTING),
        (job(status={**STARTED, "active": 1, "ready": 1}), None, RUNNING),
        (job(status={**STARTED, "active": 1}), [pod("Pending", scheduled=False)], RUNNABLE),
        (job(status={**STARTED, "active": 1}), [pod("Pending")], STARTING),
        (job(status={**STARTED, "active": 1}), [pod("Pending", waiting="ImagePullBackOff")], STARTING),
        (job(status={**STARTED, "active": 1}), [pod("Running")], RUNNING),
        (job(status={**STARTED, "conditions": [condition("Complete")]}), None, SUCCEEDED),
        (job(status={**STARTED, "conditions": [condition("Failed", "BackoffLimitExceeded")]}), None, FAILED),
        (
            job(status={**STARTED, "conditions": [condition("FailureTarget", "DeadlineExceeded")]}),
            None,
            FAILED,
        ),
    ],
)
def test_state(the_job: dict[str, Any], pods: list[dict[str, Any]] | None, expected: str) -> None:
    assert job_state(the_job, pods)[0] == expected


def test_image_pull_error_is_the_reason() -> None:
    _, reason = job_state(job(status={**STARTED, "active": 1}), [pod("Pending", waiting="ErrImagePull")])
    assert reason.startswith("Image pull error (ErrImagePull)")


def test_backoff_limit_reason_counts_failures_and_exit_codes() -> None:
    failed = job(
        {"backoffLimit": 1},
        {**STARTED, "failed": 2, "conditions": [condition("Failed", "BackoffLimitExceeded")]},
    )
    _, reason = job_state(failed, [pod("Failed", exit_code=3), pod("Failed", exit_code=3)])
    assert reason == (
        "BackoffLimitExceeded: the job failed 2 time(s), more than its backoffLimit of 1 allows; exit code(s) 3"
    )


def test_deadline_reason_names_the_deadline() -> None:
    timed_out = job(
        {"activeDeadlineSeconds": 5}, {**STARTED, "conditions": [condition("Failed", "DeadlineExceeded")]}
    )
    assert (
        job_state(timed_out)[1] == "DeadlineExceeded: the job ran longer than its activeDeadlineSeconds (5 s)"
    )


def test_recorded_termination_reason_wins() -> None:
    terminated = job(
        status={**STARTED, "conditions": [condition("Failed", "DeadlineExceeded")]},
        **{"jobfn.dev/termination-reason": "user asked"},
    )
    assert job_state(terminated) == (FAILED, "Terminated: user asked")


def test_suspended_job_waits_for_quota() -> None:
    assert "quota" in job_state(job({"suspend": True}))[1]


def test_retrying_job_is_pending_with_its_failures() -> None:
    assert job_state(job(status={**STARTED, "failed": 1})) == (PENDING, "Retrying after 1 failed attempt(s)")


def test_terminal_time_comes_from_the_condition_not_the_clock() -> None:
    done = job(status={**STARTED, "conditions": [condition("Complete")], "completionTime": T1})
    assert terminal_time(done) == 1795860300


def test_running_job_has_no_terminal_time() -> None:
    assert terminal_time(job(status={**STARTED, "active": 1})) is None


def test_view_carries_arguments_and_deletion_time() -> None:
    view = job_view(
        job(**{"jobfn.dev/arguments": '{"a": 1}', "job_deletion_time_unix_sec": "42"}),
    )
    assert view.arguments == {"a": 1}
    assert view.deletion_time == 42
    assert view.definition == "d"
    assert view.created == 1795860000


def test_state_counts_group_by_definition_and_by_queue_with_every_state_present() -> None:
    def view(definition: str, state: str, queue: str | None) -> Any:
        return replace(job_view(job()), definition=definition, state=state, queue=queue)

    summary = state_counts(
        [
            view("a", SUCCEEDED, "main"),
            view("a", SUCCEEDED, None),
            view("a", FAILED, "main"),
            view("b", RUNNING, "main"),
        ]
    )

    assert summary.total == 4
    assert summary.by_definition["a"] == {**dict.fromkeys(STATES, 0), SUCCEEDED: 2, FAILED: 1}
    assert summary.by_definition["b"][RUNNING] == 1
    assert summary.by_queue["main"] == {**dict.fromkeys(STATES, 0), SUCCEEDED: 1, FAILED: 1, RUNNING: 1}
    assert summary.by_queue[""][SUCCEEDED] == 1  # submitted to no queue


def test_event_view_takes_the_newest_time_the_api_gives() -> None:
    core_event = {
        "involvedObject": {"kind": "Pod", "name": "j-abc"},
        "type": "Warning",
        "reason": "BackOff",
        "message": "Back-off pulling image",
        "count": 3,
        "lastTimestamp": T1,
        "metadata": {"creationTimestamp": T0},
    }
    events_v1 = {"involvedObject": {"kind": "Job", "name": "j"}, "reason": "SuccessfulCreate",
                 "eventTime": "2026-11-28T10:05:00.123456Z", "metadata": {"creationTimestamp": T0}}  # fmt: skip

    first, second = event_view(core_event), event_view(events_v1)

    assert (first.object, first.type, first.count, first.time) == ("Pod/j-abc", "Warning", 3, 1795860300)
    assert (second.object, second.count, second.time, second.message) == ("Job/j", 1, 1795860300, "")


def test_a_finished_jobs_write_carries_its_final_state_label() -> None:
    from jobfn._contract import FINAL_STATE_LABEL
    from jobfn._status import with_final_state

    done = {"status": {"conditions": [{"type": "Complete", "status": "True"}]}}
    failed = {
        "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}
    }
    patch = with_final_state({"metadata": {"annotations": {"a": "1"}}}, done)
    assert patch == {"metadata": {"annotations": {"a": "1"}, "labels": {FINAL_STATE_LABEL: "SUCCEEDED"}}}
    assert with_final_state({}, failed)["metadata"]["labels"] == {FINAL_STATE_LABEL: "FAILED"}
    assert with_final_state({"metadata": {}}, {"status": {"active": 1}}) == {"metadata": {}}


def test_a_listing_by_state_selects_every_job_that_may_be_in_it() -> None:
    from jobfn._status import candidates_selector

    assert candidates_selector(None) is None
    assert candidates_selector("RUNNING") == "!jobfn.dev/final-state"  # unfinished: never labelled
    assert candidates_selector("SUCCEEDED") == "jobfn.dev/final-state notin (FAILED)"  # or unlabelled
    assert candidates_selector("FAILED") == "jobfn.dev/final-state notin (SUCCEEDED)"
