"""evaluateOnExit: AWS's matching rules, and which rules the Job controller runs itself."""

from __future__ import annotations

import pytest

from jobfn._failures import CONTAINER_EXITED, OUT_OF_MEMORY
from jobfn._retry_rules import (
    Failure,
    RetryRule,
    compiled,
    decide,
    exit_codes,
    glob_matches,
    needs_pass,
    read_rules,
    rules_from_text,
    rules_text,
)

OOM = Failure(137, OUT_OF_MEMORY, CONTAINER_EXITED)
EXIT_3 = Failure(3, "", CONTAINER_EXITED)
SPOT = Failure(None, "PreemptionByScheduler", "Host EC2 (instance node-1) terminated.")


def rules(*raw: dict) -> tuple[RetryRule, ...]:
    problems: list[str] = []
    found = read_rules(list(raw), "evaluateOnExit", problems)
    assert problems == []
    return found


def test_a_pattern_matches_whole_or_by_its_start_when_it_ends_with_a_star() -> None:
    assert glob_matches("OutOfMemory*", OUT_OF_MEMORY)
    assert glob_matches("*", "")  # AWS's catch-all `onReason: "*"` matches an attempt without a reason
    assert not glob_matches("OutOfMemory", OUT_OF_MEMORY)
    assert not glob_matches("Out?fMemory*", OUT_OF_MEMORY)  # `*` at the end is AWS's only wildcard
    assert exit_codes("1*") == [1, *range(10, 20), *range(100, 200)]
    assert exit_codes("0") == []  # success is never a failure to match


def test_the_first_matching_rule_decides_and_no_match_retries() -> None:
    given = rules(
        {"onReason": "OutOfMemory*", "action": "RETRY"},
        {"onExitCode": "3", "onStatusReason": "Essential*", "action": "EXIT"},
        {"onReason": "*", "action": "exit"},  # actions are not case sensitive
    )
    assert decide(given, OOM) == ("RETRY", given[0])
    assert decide(given, EXIT_3) == ("EXIT", given[1])
    assert decide(given, SPOT) == ("EXIT", given[2])
    assert decide(given[:2], SPOT) == ("RETRY", None)


def test_every_condition_of_a_rule_must_match_and_a_missing_exit_code_matches_none() -> None:
    both = RetryRule("EXIT", on_exit_code="137", on_reason="OutOfMemory*")
    assert both.matches(OOM)
    assert not both.matches(Failure(137, "", CONTAINER_EXITED))
    assert not RetryRule("EXIT", on_exit_code="*").matches(SPOT)


def test_exit_codes_and_lost_hosts_compile_in_order_into_a_pod_failure_policy() -> None:
    given = rules(
        {"onStatusReason": "Host EC2*", "action": "RETRY"},
        {"onExitCode": "3", "action": "EXIT"},
        {"onExitCode": "0", "action": "EXIT"},  # TorchX sends it; it can never match a failure
        {"onExitCode": "*", "action": "RETRY"},
    )
    assert not needs_pass(given)
    assert compiled(given, per_index=False) == [
        {"action": "Count", "onPodConditions": [{"type": "DisruptionTarget"}]},
        {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [3]}},
        {"action": "Count", "onExitCodes": {"operator": "In", "values": list(range(1, 256))}},
    ]
    assert compiled(given[1:2], per_index=True) == [
        {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [3]}}
    ]


@pytest.mark.parametrize(
    "rule",
    [
        {"onReason": "OutOfMemory*", "action": "EXIT"},
        {"onExitCode": "137", "onReason": "OutOfMemory*", "action": "EXIT"},
        {"onStatusReason": "Essential container*", "action": "EXIT"},
        {"onStatusReason": "*", "action": "EXIT"},  # matches more than a lost host
        {"onStatusReason": "Host EC2 (instance node-1) terminated.", "action": "EXIT"},  # one node only
    ],
)
def test_what_a_pod_failure_policy_cannot_express_is_left_to_the_pass(rule: dict) -> None:
    assert needs_pass(rules(rule))
    assert needs_pass(rules({"onExitCode": "3", "action": "EXIT"}, rule))  # the pass keeps AWS's order


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ({"onExitCode": "abc", "action": "EXIT"}, "must be digits"),
        ({"onReason": "x" * 513, "action": "EXIT"}, "1 to 512 characters"),
        ({"onExitCode": "3", "action": "MAYBE"}, "action must be RETRY or EXIT"),
        ({"action": "EXIT"}, "needs onExitCode, onReason or onStatusReason"),
    ],
)
def test_a_malformed_rule_is_refused_by_name(rule: dict, problem: str) -> None:
    problems: list[str] = []
    read_rules([rule], "evaluateOnExit", problems)
    assert any(problem in p for p in problems), problems


def test_at_most_five_rules() -> None:
    problems: list[str] = []
    read_rules([{"onExitCode": "1", "action": "EXIT"}] * 6, "evaluateOnExit", problems)
    assert "evaluateOnExit: at most 5 rules" in problems


def test_rules_travel_on_a_pod_as_text_and_back() -> None:
    given = rules({"onReason": "OutOfMemory*", "action": "EXIT"}, {"onExitCode": "1*", "action": "RETRY"})
    assert rules_from_text(rules_text(given)) == given
    assert rules_from_text("not json") == ()
