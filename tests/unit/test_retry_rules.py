"""evaluateOnExit compiled into podFailurePolicy: AWS's rules, in order, run by the Job controller."""

from __future__ import annotations

import pytest

from jobfn._retry_rules import RetryRule, apply_rules, exit_codes, read_rules


def test_exit_code_globs_expand_to_the_codes_they_match() -> None:
    assert exit_codes("137") == [137]
    assert exit_codes("1*") == [1, *range(10, 20), *range(100, 200)]
    assert exit_codes("*") == list(range(1, 256))
    assert exit_codes("0") == []  # success is never a failure to match


def test_rules_compile_in_order_with_exit_and_retry_and_a_lost_host() -> None:
    problems: list[str] = []
    rules = read_rules(
        [
            {"onStatusReason": "Host EC2*", "action": "RETRY"},
            {"onExitCode": "3", "action": "EXIT"},
            {"onExitCode": "*", "action": "RETRY"},
        ],
        "evaluateOnExit",
        problems,
    )
    spec: dict = {"backoffLimit": 2}
    apply_rules(spec, rules, 2)

    assert problems == []
    assert spec["podFailurePolicy"]["rules"] == [
        {"action": "Count", "onPodConditions": [{"type": "DisruptionTarget"}]},
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [3]}},
        {"action": "Count", "onExitCodes": {"operator": "In", "values": list(range(1, 256))}},
    ]
    assert spec["backoffLimit"] == 2


def test_an_array_child_fails_alone_and_retries_on_its_own() -> None:
    spec: dict = {"completionMode": "Indexed", "backoffLimit": 5}
    apply_rules(spec, (RetryRule("EXIT", on_exit_code="2"),), 1)

    assert spec["podFailurePolicy"]["rules"][0]["action"] == "FailIndex"
    assert spec["backoffLimitPerIndex"] == 1
    assert "backoffLimit" not in spec


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"onReason": "OutOfMemory*", "action": "EXIT"}, "onReason is not supported"),
        ({"onExitCode": "3", "onStatusReason": "Host*", "action": "EXIT"}, "together are not supported"),
        ({"onExitCode": "300", "action": "EXIT"}, "matches no exit code from 1 to 255"),
        ({"onExitCode": "abc", "action": "EXIT"}, "matches no exit code"),
        ({"onStatusReason": "Essential container*", "action": "RETRY"}, "can only match a lost host"),
        ({"onExitCode": "3", "action": "MAYBE"}, "action must be RETRY or EXIT"),
        ({"action": "EXIT"}, "needs onExitCode or onStatusReason"),
    ],
)
def test_what_a_pod_cannot_tell_is_refused_by_name(rule: dict, problem: str) -> None:
    problems: list[str] = []
    read_rules([rule], "evaluateOnExit", problems)
    assert any(problem in p for p in problems), problems


def test_at_most_five_rules() -> None:
    problems: list[str] = []
    read_rules([{"onExitCode": "1", "action": "EXIT"}] * 6, "evaluateOnExit", problems)
    assert "evaluateOnExit: at most 5 rules" in problems
