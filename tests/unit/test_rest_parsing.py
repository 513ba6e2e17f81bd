"""REST bodies and query strings into the core's types: shapes checked, every problem listed."""

from __future__ import annotations

from typing import Any

import pytest

from jobfn._auth import Caller
from jobfn._errors import InvalidRequest
from jobfn._rest_parsing import (
    DEFAULT_TERMINATION_REASON,
    int_from_query,
    labels_from_query,
    retention_change,
    submission_from_body,
    termination_reason,
)
from jobfn._retention import HOLD_FOREVER
from jobfn._submission import Overrides


def problems_of(call: Any, *args: Any) -> list[str]:
    with pytest.raises(InvalidRequest) as caught:
        call(*args)
    return caught.value.problems


def test_k8s_jobs_body_names_the_definition_beside_the_arguments() -> None:
    submission, k8s_jobs = submission_from_body(
        {"job_definition_name": "echo", "message": "hi", "definition": "x"}
    )
    assert k8s_jobs
    assert submission.definition == "echo"
    assert submission.arguments == {"message": "hi", "definition": "x"}


def test_own_body_becomes_a_submission_with_overrides_key_and_caller() -> None:
    body = {
        "definition": "echo",
        "arguments": {"message": "hi"},
        "overrides": {
            "timeout": 5,
            "command": ["a", "b"],
            "environment": {"A": "1"},
            "resources": {"limits": {}},
        },
        "tags": {"team": "x"},
        "queue": "batch",
    }
    submission, k8s_jobs = submission_from_body(body, idempotency_key="k", caller=Caller("me"))
    assert not k8s_jobs
    assert submission.overrides == Overrides(
        timeout=5, command=("a", "b"), environment={"A": "1"}, resources={"limits": {}}
    )
    assert (submission.idempotency_key, submission.caller, submission.queue) == ("k", "me", "batch")
    assert submission.tags == {"team": "x"}


def test_every_problem_of_a_body_is_listed_at_once() -> None:
    body = {
        "definition": "",
        "arguments": [],
        "colour": "red",
        "overrides": {"timeout": True, "retries": 1.5, "command": "ls", "environment": {"A": 1}, "speed": 2},
        "tags": {"a": 1},
        "queue": 3,
    }
    problems = problems_of(submission_from_body, body)
    assert len(problems) == 10, problems
    for word in (
        "colour",
        "definition",
        "arguments",
        "timeout",
        "retries",
        "command",
        "environment",
        "speed",
    ):
        assert any(word in problem for problem in problems), word


@pytest.mark.parametrize("body", [[], "echo", None, 3])
def test_a_body_that_is_not_an_object_is_refused(body: Any) -> None:
    with pytest.raises(InvalidRequest, match="must be a JSON object"):
        submission_from_body(body)


def test_k8s_jobs_definition_name_must_be_a_string() -> None:
    with pytest.raises(InvalidRequest, match="job_definition_name"):
        submission_from_body({"job_definition_name": 3})


def test_labels_query_is_parsed_and_broken_pairs_are_refused() -> None:
    assert labels_from_query("team=core,tier=") == {"team": "core", "tier": ""}
    assert labels_from_query(None) == {}
    assert len(problems_of(labels_from_query, "team,=x")) == 2


@pytest.mark.parametrize(("raw", "expected"), [(None, 10), ("1", 1), ("1000", 1000)])
def test_whole_number_query_parameters(raw: str | None, expected: int) -> None:
    assert int_from_query(raw, "limit", 10, 1, 1000) == expected


@pytest.mark.parametrize("raw", ["", "0", "1001", "ten", "1.5", "-3", " 5", "+5", "5_0", "9" * 30])
def test_out_of_range_or_malformed_query_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidRequest, match="limit"):
        int_from_query(raw, "limit", 10, 1, 1000)


def test_termination_reason_defaults_and_is_checked() -> None:
    assert termination_reason(None) == DEFAULT_TERMINATION_REASON
    assert termination_reason({"reason": "done"}) == "done"
    for body in ({"reason": ""}, {"reason": " "}, {"reason": 5}, {"reason": "x" * 1025}, {"why": "x"}):
        with pytest.raises(InvalidRequest):
            termination_reason(body)


def test_retention_hold_set_and_extend() -> None:
    now = 1_000_000
    assert retention_change({"hold": True}).deletion_time(None, now) == HOLD_FOREVER
    assert retention_change({"delete_after": 5}).deletion_time(None, now) == 5
    assert retention_change({"extend_seconds": 60}).deletion_time(None, now) == now + 60
    assert retention_change({"extend_seconds": 60}).deletion_time(now + 100, now) == now + 160
    assert (
        retention_change({"extend_seconds": 60}).deletion_time(now - 100, now) == now + 60
    )  # past: from now
    assert retention_change({"extend_seconds": 60}).deletion_time(HOLD_FOREVER, now) == HOLD_FOREVER


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"hold": True, "delete_after": 5},
        {"hold": False},
        {"delete_after": -1},
        {"delete_after": True},
        {"extend_seconds": 0},
        {"extend_seconds": "60"},
        {"forever": True},
        [],
    ],
)
def test_retention_requests_that_are_not_exactly_one_valid_choice_are_refused(body: Any) -> None:
    with pytest.raises(InvalidRequest):
        retention_change(body)
