"""AWS Batch's ``retryStrategy.evaluateOnExit``, compiled into a Job's ``podFailurePolicy``.

AWS evaluates up to five rules in order on each failed attempt; the first whose
conditions all match decides (RETRY or EXIT), and when none matches the job is retried
while attempts remain. A podFailurePolicy is the same machine run by the Job controller,
so the rules compile into it and need no pass:

    onExitCode glob ("137", "1*", "*")      → onExitCodes In [the codes 1 to 255 it matches]
    onStatusReason matching a lost host     → onPodConditions DisruptionTarget (the node
      ("Host EC2*", AWS's spot reclaim)       was drained, preempted or lost)
    RETRY / EXIT                            → Count / FailJob (an array child: FailIndex,
                                              with backoffLimitPerIndex, so it fails alone)

What a pod's state cannot tell (``onReason``, other status reasons, an exit code together
with a reason) is refused by name rather than half applied.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._errors import InvalidRequest

MAX_RULES = 5  # AWS's bound
_EXIT_CODE_GLOB = re.compile(r"^[0-9]{0,3}\*?$")
#: The status reason AWS gives a job whose host went away (a spot reclaim, a drained node).
_LOST_HOST = "Host EC2 (instance i-0) terminated."


@dataclass(frozen=True)
class RetryRule:
    """One evaluateOnExit entry."""

    action: str
    """RETRY or EXIT."""
    on_exit_code: str | None = None
    on_reason: str | None = None
    on_status_reason: str | None = None


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
    if rule.on_reason is not None:
        found.append(f"{where}: onReason is not supported (a pod gives no reason to match); use onExitCode")
    if rule.on_exit_code is not None and rule.on_status_reason is not None:
        found.append(f"{where}: onExitCode and onStatusReason together are not supported; give one per rule")
    if rule.on_exit_code is not None and not (
        isinstance(rule.on_exit_code, str)
        and _EXIT_CODE_GLOB.match(rule.on_exit_code)
        and exit_codes(rule.on_exit_code)
    ):
        found.append(
            f"{where}: onExitCode {str(rule.on_exit_code)[:20]!r} matches no exit code from 1 to 255"
        )
    if rule.on_status_reason is not None and not (
        isinstance(rule.on_status_reason, str) and fnmatch.fnmatchcase(_LOST_HOST, rule.on_status_reason)
    ):
        found.append(f"{where}: onStatusReason can only match a lost host (e.g. 'Host EC2*'), not "
                     f"{str(rule.on_status_reason)[:40]!r}")  # fmt: skip
    if rule.on_exit_code is None and rule.on_status_reason is None and rule.on_reason is None:
        found.append(f"{where}: a rule needs onExitCode or onStatusReason")
    return found


def exit_codes(glob: str) -> list[int]:
    """The exit codes from 1 to 255 an AWS onExitCode glob matches (0 is success, never a failure)."""
    return [code for code in range(1, 256) if fnmatch.fnmatchcase(str(code), glob)]


def pod_failure_policy(rules: Sequence[RetryRule], per_index: bool) -> dict[str, Any]:
    """The podFailurePolicy running ``rules`` in order (``per_index``: an array's children)."""
    exit_action = "FailIndex" if per_index else "FailJob"
    compiled: list[dict[str, Any]] = []
    for rule in rules:
        action = exit_action if rule.action == "EXIT" else "Count"
        if rule.on_exit_code is not None:
            codes = exit_codes(rule.on_exit_code)
            compiled.append({"action": action, "onExitCodes": {"operator": "In", "values": codes}})
        elif rule.on_status_reason is not None:
            compiled.append({"action": action, "onPodConditions": [{"type": "DisruptionTarget"}]})
        else:  # pragma: no cover - read_rules refused it
            raise InvalidRequest("an evaluateOnExit rule needs onExitCode or onStatusReason")
    return {"rules": compiled}


def apply_rules(spec: dict[str, Any], rules: Sequence[RetryRule], retries: int) -> None:
    """Put ``rules`` on a Job spec whose pods may be retried ``retries`` times."""
    per_index = spec.get("completionMode") == "Indexed"
    spec["podFailurePolicy"] = pod_failure_policy(rules, per_index)
    if per_index:
        # Each child retries on its own, as each AWS array child has its own attempts.
        spec.pop("backoffLimit", None)
        spec["backoffLimitPerIndex"] = retries
