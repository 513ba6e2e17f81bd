"""Flags and environment → the reaper's frozen settings, read and validated once.

A flag wins over its environment variable, which wins over the default. Every
problem names the flag or variable at fault; all problems are reported together.
"""

from __future__ import annotations

import argparse
import os
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from jobfn._contract import DEFINITIONS_PATH_ENV
from jobfn._errors import ConfigurationError
from jobfn._settings import (
    non_negative_int,
    positive_float,
    read_definitions_path,
    read_namespace,
    read_signature,
)

T = TypeVar("T")

SUCCEEDED_RETENTION_ENV = "JOBFN_REAPER_SUCCEEDED_RETENTION_SECONDS"
FAILED_RETENTION_ENV = "JOBFN_REAPER_FAILED_RETENTION_SECONDS"
DRY_RUN_ENV = "JOBFN_REAPER_DRY_RUN"
STATE_EVENTS_ENV = "JOBFN_REAPER_STATE_EVENTS"
MAX_DELETIONS_ENV = "JOBFN_REAPER_MAX_DELETIONS"
TIME_BUDGET_ENV = "JOBFN_REAPER_TIME_BUDGET_SECONDS"
PAGE_SIZE_ENV = "JOBFN_REAPER_PAGE_SIZE"
WORKERS_ENV = "JOBFN_REAPER_WORKERS"
SINK_ENV = "K_SINK"  # set by a Knative SinkBinding
SINK_TIMEOUT_ENV = "JOBFN_REAPER_SINK_TIMEOUT_SECONDS"
API_TIMEOUT_ENV = "JOBFN_API_TIMEOUT_SECONDS"
LOG_LEVEL_ENV = "JOBFN_LOG_LEVEL"

MAX_PAGE_SIZE = 1000  # what a list request is allowed to ask the API server for, as in list_jobs
MAX_WORKERS = 32
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class ReaperSettings:
    """What one reaper run needs to know."""

    signature: str
    """Only jobs labelled ``app.kubernetes.io/managed-by=<signature>`` are touched (``JOB_SIGNATURE``)."""
    namespace: str
    """Namespace swept (``JOB_NAMESPACE``; in-cluster default: the pod's own)."""
    definitions_path: Path | None = None
    """Definitions file whose ``retention`` overrides the defaults (``JOB_DEFINITIONS_CONFIG_PATH``)."""
    succeeded_retention_seconds: int = 3600
    """Kept this long after succeeding (``--succeeded-retention``, ``JOBFN_REAPER_SUCCEEDED_RETENTION_SECONDS``)."""
    failed_retention_seconds: int = 7 * 24 * 3600
    """Kept this long after failing (``--failed-retention``, ``JOBFN_REAPER_FAILED_RETENTION_SECONDS``)."""
    dry_run: bool = False
    """Decide and report, write nothing (``--dry-run``, ``JOBFN_REAPER_DRY_RUN``)."""
    state_events: bool = False
    """Send each job's state changes to the sink (``--state-events``, ``JOBFN_REAPER_STATE_EVENTS``)."""
    max_deletions: int | None = None
    """At most this many deletions per run; None is no cap (``--max-deletions``, ``JOBFN_REAPER_MAX_DELETIONS``)."""
    time_budget_seconds: float | None = None
    """Stop starting work after this long; None is no limit (``--time-budget``, ``JOBFN_REAPER_TIME_BUDGET_SECONDS``)."""
    page_size: int = 500
    """Jobs per list request; bounds the reaper's memory (``--page-size``, ``JOBFN_REAPER_PAGE_SIZE``)."""
    workers: int = 4
    """Jobs handled at once; each makes its calls one after the other (``--workers``, ``JOBFN_REAPER_WORKERS``)."""
    sink: str | None = None
    """URL archive records are POSTed to as CloudEvents; None prints them on stdout (``K_SINK``)."""
    sink_timeout_seconds: float = 10.0
    """Timeout of each POST to the sink (``JOBFN_REAPER_SINK_TIMEOUT_SECONDS``)."""
    api_timeout_seconds: float = 10.0
    """Timeout of each Kubernetes API request (``JOBFN_API_TIMEOUT_SECONDS``)."""
    log_level: str = "INFO"
    """Python log level name (``JOBFN_LOG_LEVEL``)."""


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jobfn-reaper",
        description="Mark finished jobfn jobs with their deletion time, archive them and delete them when due.",
    )
    # Flags are parsed as text so that a bad value is reported like a bad variable.
    parser.add_argument(
        "--succeeded-retention", metavar="SECONDS", help=f"default: ${SUCCEEDED_RETENTION_ENV} or 3600"
    )
    parser.add_argument(
        "--failed-retention", metavar="SECONDS", help=f"default: ${FAILED_RETENTION_ENV} or 604800"
    )
    parser.add_argument(
        "--dry-run",
        action="store_const",
        const="true",
        help=f"decide and report, write nothing (${DRY_RUN_ENV})",
    )
    parser.add_argument(
        "--state-events",
        action="store_const",
        const="true",
        help=f"send each job's state changes to K_SINK as CloudEvents (${STATE_EVENTS_ENV})",
    )
    parser.add_argument(
        "--max-deletions", metavar="N", help=f"cap on deletions per run (${MAX_DELETIONS_ENV})"
    )
    parser.add_argument("--time-budget", metavar="SECONDS", help=f"stop after this long (${TIME_BUDGET_ENV})")
    parser.add_argument(
        "--page-size", metavar="N", help=f"jobs per list request (${PAGE_SIZE_ENV}, default 500)"
    )
    parser.add_argument("--workers", metavar="N", help=f"jobs handled at once (${WORKERS_ENV}, default 4)")
    return parser


def load_settings(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> ReaperSettings:
    """Settings from ``argv`` (default: none) and ``env`` (default: the process environment).

    Raises ConfigurationError naming every flag or variable that is wrong.
    """
    env = os.environ if env is None else env
    flags = argument_parser().parse_args(list(argv or []))
    problems: list[str] = []

    def option(flag: str, given: str | None, variable: str, convert: Callable[[str], T], default: T) -> T:
        name, raw = (flag, given) if given is not None else (variable, env.get(variable))
        if raw is None or (raw == "" and name == variable):
            return default
        try:
            return convert(raw)
        except ValueError as error:
            problems.append(f"{name}={raw!r} is invalid: {error}")
            return default

    def core(read: Callable[[Mapping[str, str]], T], default: T) -> T:
        try:
            return read(env)
        except ConfigurationError as error:
            problems.append(error.message)
            return default

    settings = ReaperSettings(
        signature=core(read_signature, ""),
        namespace=core(read_namespace, ""),
        definitions_path=core(read_definitions_path, None),
        succeeded_retention_seconds=option(
            "--succeeded-retention", flags.succeeded_retention, SUCCEEDED_RETENTION_ENV, seconds, 3600
        ),
        failed_retention_seconds=option(
            "--failed-retention", flags.failed_retention, FAILED_RETENTION_ENV, seconds, 7 * 24 * 3600
        ),
        dry_run=option("--dry-run", flags.dry_run, DRY_RUN_ENV, boolean, False),
        state_events=option("--state-events", flags.state_events, STATE_EVENTS_ENV, boolean, False),
        max_deletions=option("--max-deletions", flags.max_deletions, MAX_DELETIONS_ENV, optional_count, None),
        time_budget_seconds=option(
            "--time-budget", flags.time_budget, TIME_BUDGET_ENV, optional_duration, None
        ),
        page_size=option("--page-size", flags.page_size, PAGE_SIZE_ENV, page_size, 500),
        workers=option("--workers", flags.workers, WORKERS_ENV, workers, 4),
        sink=option("", None, SINK_ENV, sink_url, None),
        sink_timeout_seconds=option("", None, SINK_TIMEOUT_ENV, duration, 10.0),
        api_timeout_seconds=option("", None, API_TIMEOUT_ENV, duration, 10.0),
        log_level=option("", None, LOG_LEVEL_ENV, log_level, "INFO"),
    )
    if settings.definitions_path is not None and not settings.definitions_path.is_file():
        problems.append(f"{DEFINITIONS_PATH_ENV}={str(settings.definitions_path)!r} is not a readable file")
    if problems:
        raise ConfigurationError("; ".join(problems))
    return settings


# --- converters: raise ValueError saying what is expected --------------------------------
# Whole seconds of zero or more, and a positive number of seconds: the function's own rules.
seconds = non_negative_int
duration = positive_float


def optional_count(raw: str) -> int | None:
    """A cap; 0 or empty means none."""
    value = int(raw) if raw else 0
    if value < 0:
        raise ValueError("must be zero (no cap) or more")
    return value or None


def optional_duration(raw: str) -> float | None:
    """A time limit; 0 or empty means none."""
    value = float(raw) if raw else 0.0
    if value < 0:
        raise ValueError("must be zero (no limit) or more")
    return value or None


def page_size(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise ValueError(f"must be between 1 and {MAX_PAGE_SIZE}")
    return value


def workers(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= MAX_WORKERS:
        raise ValueError(f"must be between 1 and {MAX_WORKERS}")
    return value


def boolean(raw: str) -> bool:
    if raw.lower() in _TRUE:
        return True
    if raw.lower() in _FALSE:
        return False
    raise ValueError("use true or false")


def sink_url(raw: str) -> str | None:
    if not raw:
        return None
    parts = urllib.parse.urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    return raw


def log_level(raw: str) -> str:
    level = raw.upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError("use DEBUG, INFO, WARNING or ERROR")
    return level
