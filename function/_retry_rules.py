"""AWS Batch's ``retryStrategy.evaluateOnExit``: its rules, how a failed attempt matches them,
and which of them the Job controller can run itself.

AWS evaluates up to five rules in order on each failed attempt; the first whose conditions
all match decides (RETRY or EXIT), and when none matches the job is retried while attempts
remain. A pattern is matched whole, except that one ending in ``*`` matches any value that
starts with what comes before it (AWS's only wildcard). An attempt is seen as AWS reports
it (``_failures``): its exit code, the container's ``reason`` and the attempt's
``statusReason``.

A podFailurePolicy is the same machine run by the Job controller, so rules it can express
compile into it and need nothing else:

    onExitCode only                        → onExitCodes In [the codes 1 to 255 it matches]
    onStatusReason matching only a lost    → onPodConditions DisruptionTarget (the node was
      host ("Host EC2*", a spot reclaim)     drained, preempted or lost)
    RETRY / EXIT                           → Count / FailJob (an array child: FailIndex)

Every other rule (``onReason``, other status reasons, conditions together) is decided by
the level-triggered pass (``_decisions``): the retry's pod waits in its gate until the pass
has matched the failed attempt against all the rules, in order (``_attempts``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

MAX_RULES = 5  # AWS's bound
MAX_PATTERN_LENGTH = 512  # AWS's bound
#: How AWS reports an attempt whose host went away (a spot reclaim); ``_failures`` says it of a
#: pod whose node was drained, preempted or lost (the DisruptionTarget condition).
LOST_HOST = "Host EC2 (instance {node}) terminated."
_LOST_HOST_PREFIX = LOST_HOST.partition("{")[0]


@dataclass(frozen=True)
class Failure:
    """One failed attempt, as AWS Batch's rules see it."""

    exit_code: int | None
    """The container's exit code; None when it never exited (its pod was removed)."""
    reason: str
    """The container's reason, AWS's spelling (``OutOfMemoryError: Container killed ...``); "" if none."""
    status_reason: str
    """The attempt's status reason (``Essential container in task exited``, ``Host EC2 ...``)."""


@dataclass(frozen=True)
class RetryRule:
    """One evaluateOnExit entry."""

    action: str
    """RETRY or EXIT."""
    on_exit_code: str | None = None
    on_reason: str | None = None
    on_status_reason: str | None = None

    def matches(self, failure: Failure) -> bool:
        """Whether every condition the rule gives matches ``failure`` (a missing exit code matches
        no ``onExitCode``)."""
        if self.on_exit_code is not None and (
            failure.exit_code is None or not glob_matches(self.on_exit_code, str(failure.exit_code))
        ):
            return False
        if self.on_reason is not None and not glob_matches(self.on_reason, failure.reason):
            return False
        return self.on_status_reason is None or glob_matches(self.on_status_reason, failure.status_reason)

    def describe(self) -> str:
        """The rule as a person reads it: ``EXIT on onReason 'OutOfMemory*'``."""
        conditions = [
            f"{name} {value!r}"
            for name, value in (
                ("onExitCode", self.on_exit_code),
                ("onReason", self.on_reason),
                ("onStatusReason", self.on_status_reason),
            )
            if value is not None
        ]
        return f"{self.action} on {' and '.join(conditions)}"


def glob_matches(pattern: str, value: str) -> bool:
    """AWS's match: whole, or a prefix when the pattern ends with ``*``."""
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return value == pattern


def read_rules(raw: Any, where: str, problems: list[str]) -> tuple[RetryRule, ...]:
    """``evaluateOnExit`` as rules; every problem appended to ``problems``, naming the field."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(item, Mapping) for item in raw):
        problems.append(f"{where}: must be a list of rules")
        return ()
    if len(raw) > MAX_RULES:
        problems.append(f"{where}: at most {MAX_RULES} rules")
    rules = []
    for item in raw:
        action = str(item.get("action", "")).upper()
        if action not in ("RETRY", "EXIT"):
            problems.append(f"{where}: action must be RETRY or EXIT")
            continue
        rule = RetryRule(action, item.get("onExitCode"), item.get("onReason"), item.get("onStatusReason"))
        problems.extend(_problems(rule, where))
        rules.append(rule)
    return tuple(rules)


def _problems(rule: RetryRule, where: str) -> list[str]:
    found = []
    patterns = (("onExitCode", rule.on_exit_code), ("onReason", rule.on_reason),
                ("onStatusReason", rule.on_status_reason))  # fmt: skip
    for name, pattern in patterns:
        if pattern is None:
            continue
        if not isinstance(pattern, str) or not 0 < len(pattern) <= MAX_PATTERN_LENGTH:
            found.append(f"{where}: {name} must be a pattern of 1 to {MAX_PATTERN_LENGTH} characters")
        elif name == "onExitCode" and not pattern.rstrip("*").isdigit() and pattern != "*":
            found.append(f"{where}: onExitCode {pattern[:20]!r} must be digits, optionally ending with '*'")
    if all(pattern is None for _, pattern in patterns):
        found.append(f"{where}: a rule needs onExitCode, onReason or onStatusReason")
    return found


def decide(rules: Sequence[RetryRule], failure: Failure) -> tuple[str, RetryRule | None]:
    """What AWS does after ``failure``: the first matching rule's action, else RETRY (AWS's rule)."""
    for rule in rules:
        if rule.matches(failure):
            return rule.action, rule
    return "RETRY", None


def exit_codes(glob: str) -> list[int]:
    """The exit codes from 1 to 255 an onExitCode pattern matches (0 is success, never a failure)."""
    return [code for code in range(1, 256) if glob_matches(glob, str(code))]


def _lost_host_only(pattern: str) -> bool:
    """Whether a status-reason pattern matches the lost-host reason of every node and nothing else
    jobfn reports (every other status reason starts otherwise)."""
    return (
        pattern.endswith("*")
        and 0 < len(pattern) - 1 <= len(_LOST_HOST_PREFIX)
        and (_LOST_HOST_PREFIX.startswith(pattern[:-1]))
    )


def compiled(rules: Sequence[RetryRule], per_index: bool) -> list[dict[str, Any]] | None:
    """``rules`` as podFailurePolicy rules (``per_index``: an array's children), in order; None when
    one of them needs the pass (then the pass decides them all, keeping AWS's order)."""
    exit_action = "FailIndex" if per_index else "FailJob"
    found: list[dict[str, Any]] = []
    for rule in rules:
        action = exit_action if rule.action == "EXIT" else "Count"
        if rule.on_reason is not None or (rule.on_exit_code is None) == (rule.on_status_reason is None):
            return None
        if rule.on_exit_code is not None:
            codes = exit_codes(rule.on_exit_code)
            if codes:  # a pattern matching no failure's code ("0") can never match: nothing to run
                found.append({"action": action, "onExitCodes": {"operator": "In", "values": codes}})
        elif rule.on_status_reason is not None and _lost_host_only(rule.on_status_reason):
            found.append({"action": action, "onPodConditions": [{"type": "DisruptionTarget"}]})
        else:
            return None
    return found


def needs_pass(rules: Sequence[RetryRule]) -> bool:
    """Whether the pass must decide ``rules`` (a podFailurePolicy cannot express them)."""
    return bool(rules) and compiled(rules, per_index=False) is None


def rules_text(rules: Sequence[RetryRule]) -> str:
    """The rules as the JSON a pod carries for the pass (``rules_from_text`` reads it back)."""
    return json.dumps([{k: v for k, v in asdict(rule).items() if v is not None} for rule in rules])


def rules_from_text(text: str | None) -> tuple[RetryRule, ...]:
    """The rules a pod carries; () when none or unreadable (then no rule matches: RETRY)."""
    try:
        raw = json.loads(text) if text else []
    except ValueError:
        return ()
    if not isinstance(raw, list):
        return ()
    fields = ("on_exit_code", "on_reason", "on_status_reason")
    return tuple(
        RetryRule(str(item["action"]), *(item.get(name) for name in fields))
        for item in raw
        if isinstance(item, dict) and "action" in item
    )
