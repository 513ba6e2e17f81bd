"""When a finished job may be deleted: pure decisions over a Job and ``now``.

The reaper marks a terminal job with ``job_deletion_time_unix_sec`` = the time it
became terminal + its retention, and deletes it once that time has passed. A value
already present (a user's hold, or an earlier mark) always wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._contract import DEFINITION_LABEL, DELETION_TIME_ANNOTATION
from ._definitions import Retention
from ._status import deletion_time, is_terminal, job_state, terminal_time

#: Far enough in the future to mean "keep until someone changes it" (9999-12-31).
HOLD_FOREVER = 253_402_300_799


@dataclass(frozen=True)
class RetentionChange:
    """What a caller asks of a job's deletion time (REST ``PUT /jobs/<name>/retention``).

    ``hold`` keeps the job until someone changes it; ``delete_after`` keeps it until
    unix time ``value``; ``extend`` adds ``value`` seconds to its current deletion
    time (or to now, when it has none or that time has passed).
    """

    kind: Literal["hold", "delete_after", "extend"]
    value: int = 0

    def deletion_time(self, current: int | None, now: int) -> int:
        if self.kind == "hold":
            return HOLD_FOREVER
        if self.kind == "delete_after":
            return self.value
        return min(max(current or now, now) + self.value, HOLD_FOREVER)


@dataclass(frozen=True)
class RetentionPolicy:
    """Default retention for each outcome, and per-definition overrides."""

    succeeded_seconds: int = 3600
    failed_seconds: int = 7 * 24 * 3600
    per_definition: Mapping[str, Retention] | None = None

    def seconds_for(self, job: Mapping[str, Any]) -> int:
        """How long this job is kept after it finished."""
        state, _ = job_state(job)
        definition = ((job.get("metadata") or {}).get("labels") or {}).get(DEFINITION_LABEL)
        own = (self.per_definition or {}).get(definition or "")
        if state == "SUCCEEDED":
            if own is not None and own.succeeded is not None:
                return own.succeeded
            return self.succeeded_seconds
        if own is not None and own.failed is not None:
            return own.failed
        return self.failed_seconds


def needs_mark(job: Mapping[str, Any]) -> bool:
    """Whether the job is terminal and carries no deletion time yet."""
    annotations = (job.get("metadata") or {}).get("annotations") or {}
    return is_terminal(job) and DELETION_TIME_ANNOTATION not in annotations


def planned_deletion_time(job: Mapping[str, Any], policy: RetentionPolicy) -> int | None:
    """The deletion time to mark a terminal job with; None for a job still running."""
    finished = terminal_time(job)
    if finished is None:
        return None
    return finished + policy.seconds_for(job)


def is_due(job: Mapping[str, Any], now: float) -> bool:
    """Whether the job may be deleted now: terminal, marked, and its time has come."""
    when = deletion_time(job)
    return when is not None and when <= now and is_terminal(job)


@dataclass(frozen=True)
class Verdict:
    """What one reaper pass does with a job."""

    action: Literal["keep", "mark", "delete"]
    deletion_time: int | None = None
    """``mark``: the time to write."""


KEEP = Verdict("keep")
DELETE = Verdict("delete")


def decide(job: Mapping[str, Any], policy: RetentionPolicy, now: float) -> Verdict:
    """Keep, mark (with its deletion time) or delete a job, as of ``now``.

    A terminal job without a deletion time whose planned time has already passed is
    deleted without being marked first: a mark nobody could act on would only cost a
    request. The delete's resourceVersion precondition still loses to a hold a user
    sets after the job was read.
    """
    if needs_mark(job):
        planned = planned_deletion_time(job, policy)
        if planned is None:
            return KEEP
        return DELETE if planned <= now else Verdict("mark", planned)
    return DELETE if is_due(job, now) else KEEP
