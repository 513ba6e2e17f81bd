"""Prometheus metrics of the function, served at ``/metrics``.

Label values are bounded on purpose: a definition label only ever holds a loaded
definition's name (``unknown`` otherwise), so a caller inventing names cannot grow
the number of series.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

UNKNOWN_DEFINITION = "unknown"

SUBMISSIONS = Counter(
    "jobfn_submissions",
    "Job submissions by definition, front door and outcome "
    "(created, existing, rejected, throttled, unavailable, failed).",
    ["definition", "door", "outcome"],
)
REQUEST_SECONDS = Histogram(
    "jobfn_request_duration_seconds",
    "Time to answer a request, by front door and endpoint.",
    ["door", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
API_ERRORS = Counter(
    "jobfn_api_errors",
    "Error responses by HTTP status and error code.",
    ["status", "code"],
)


def submission_outcome(status: int, created: bool = False) -> str:
    """The outcome label for a submission answered with ``status``."""
    if status < 300:
        return "created" if created else "existing"
    if status == 429:
        return "throttled"
    if status == 503:
        return "unavailable"
    return "rejected" if status < 500 else "failed"


def exposition() -> tuple[bytes, str]:
    """The current metrics in Prometheus' text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
