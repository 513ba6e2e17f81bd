"""Dependencies, decided purely: what a waiting job's dependencies make of it, and its state."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobfn._contract import JobSigner
from jobfn._definitions import JobDefinitions
from jobfn._dependencies import Dependency, check_dependencies, is_waiting, settle
from jobfn._errors import InvalidRequest
from jobfn._plan import plan_submission
from jobfn._policy import request_hash
from jobfn._status import PENDING, job_state, job_view
from jobfn._submission import Submission

DEFINITIONS = JobDefinitions.from_yaml(
    (Path(__file__).parent.parent / "data" / "definitions" / "core.yaml").read_text()
)


@pytest.mark.parametrize(
    ("states", "action", "reason"),
    [
        ({"a": "SUCCEEDED", "b": "SUCCEEDED"}, "release", ""),
        ({"a": "SUCCEEDED", "b": "RUNNING"}, "wait", "waiting for b"),
        ({"a": "RUNNING", "b": "FAILED"}, "fail", "dependency b FAILED"),
        ({"a": "SUCCEEDED", "b": None}, "fail", "dependency b no longer exists"),
    ],
)
def test_settling(states: dict[str, str | None], action: str, reason: str) -> None:
    settlement = settle(["a", "b"], states)
    assert (settlement.action, settlement.reason) == (action, reason)


def test_a_planned_job_with_dependencies_is_suspended_waiting_and_pending() -> None:
    submission = Submission("echo", {"message": "hi"}, depends_on=(Dependency("a"), Dependency("b")))
    job = plan_submission(DEFINITIONS, submission, JobSigner("sig"), "jobs").manifest

    assert job["spec"]["suspend"] is True
    assert is_waiting(job)
    assert job_state(job) == (PENDING, "Waiting for dependencies: a, b")
    assert job_view(job).depends_on == ("a", "b")


def test_dependencies_change_the_request_hash_and_no_dependencies_keep_it() -> None:
    plain = Submission("echo", {"message": "hi"})
    assert request_hash(plain) == request_hash(Submission("echo", {"message": "hi"}, depends_on=()))
    assert request_hash(plain) != request_hash(
        Submission("echo", {"message": "hi"}, depends_on=(Dependency("a"),))
    )


@pytest.mark.parametrize(
    ("dependencies", "message"),
    [
        ([Dependency(f"j{i}") for i in range(21)], "at most 20 jobs"),
        ([Dependency("", "N_TO_N")], "N_TO_N needs the jobId"),
        ([Dependency("a", "SOMETIMES")], "is not N_TO_N or SEQUENTIAL"),
    ],
)
def test_what_depends_on_cannot_ask_is_refused(dependencies: list[Dependency], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        check_dependencies(dependencies)
