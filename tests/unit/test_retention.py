"""Retention decisions: when a finished job is marked and when it may go."""

from __future__ import annotations

from typing import Any

from jobfn._definitions import Retention
from jobfn._retention import (
    DELETE,
    KEEP,
    RetentionPolicy,
    Verdict,
    decide,
    is_due,
    needs_mark,
    planned_deletion_time,
)

FINISHED_AT = 1795860300


def job(kind: str | None = "Complete", definition: str = "d", **annotations: str) -> dict[str, Any]:
    conditions = []
    if kind:
        conditions = [{"type": kind, "status": "True", "lastTransitionTime": "2026-11-28T10:05:00Z"}]
    return {
        "metadata": {"labels": {"job_definition_name": definition}, "annotations": annotations},
        "spec": {},
        "status": {"startTime": "2026-11-28T10:00:00Z", "active": 0 if kind else 1, "conditions": conditions},
    }


POLICY = RetentionPolicy(
    succeeded_seconds=100, failed_seconds=1000, per_definition={"kept": Retention(5, None)}
)


def test_deletion_time_is_terminal_time_plus_retention_by_outcome() -> None:
    assert planned_deletion_time(job("Complete"), POLICY) == FINISHED_AT + 100
    assert planned_deletion_time(job("Failed"), POLICY) == FINISHED_AT + 1000


def test_definition_retention_overrides_the_default_per_outcome() -> None:
    assert planned_deletion_time(job("Complete", "kept"), POLICY) == FINISHED_AT + 5
    assert planned_deletion_time(job("Failed", "kept"), POLICY) == FINISHED_AT + 1000


def test_running_job_is_never_marked_nor_due() -> None:
    running = job(None, job_deletion_time_unix_sec="1")
    assert not needs_mark(job(None))
    assert planned_deletion_time(running, POLICY) is None
    assert not is_due(running, now=FINISHED_AT * 2)


def test_existing_value_is_never_replaced() -> None:
    assert needs_mark(job())
    assert not needs_mark(job(job_deletion_time_unix_sec="99999999999"))
    assert not needs_mark(job(job_deletion_time_unix_sec="keep please"))


def test_due_only_once_the_time_has_passed() -> None:
    marked = job(job_deletion_time_unix_sec=str(FINISHED_AT + 100))
    assert not is_due(marked, now=FINISHED_AT + 99)
    assert is_due(marked, now=FINISHED_AT + 100)


def test_unreadable_user_value_is_never_due() -> None:
    assert not is_due(job(job_deletion_time_unix_sec="keep please"), now=FINISHED_AT * 2)


def test_a_finished_job_is_marked_while_its_time_is_ahead() -> None:
    assert decide(job(), POLICY, now=FINISHED_AT + 99) == Verdict("mark", FINISHED_AT + 100)


def test_a_finished_job_already_due_is_deleted_without_a_mark_first() -> None:
    assert decide(job(), POLICY, now=FINISHED_AT + 100) == DELETE


def test_a_marked_job_is_deleted_once_due_and_kept_before() -> None:
    marked = job(job_deletion_time_unix_sec=str(FINISHED_AT + 100))
    assert decide(marked, POLICY, now=FINISHED_AT + 99) == KEEP
    assert decide(marked, POLICY, now=FINISHED_AT + 100) == DELETE


def test_a_running_job_or_a_users_hold_is_kept() -> None:
    assert decide(job(None), POLICY, now=FINISHED_AT * 2) == KEEP
    assert decide(job(None, job_deletion_time_unix_sec="1"), POLICY, now=FINISHED_AT * 2) == KEEP
    assert decide(job(job_deletion_time_unix_sec="keep please"), POLICY, now=FINISHED_AT * 2) == KEEP
