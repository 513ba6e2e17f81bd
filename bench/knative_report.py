"""The Knative parts' lines of the report: JobSink beside jobfn's CloudEvents door, and the
cold start from a revision at zero beside a hello-world's."""

from __future__ import annotations

from .jobsink import LABELS, JobSinkRun
from .knative_coldstart import KIND_LABELS, KnativeColdStartFigure
from .submission import cells
from .tables import TargetCheck, ratio, table

#: Issue 16: jobfn's CloudEvents door at ≥ 1.5 x JobSink's throughput on the same events.
JOBSINK_THROUGHPUT_GOAL = 1.5
#: No goal of its own yet: the process cold start's (exec → first job ≤ 1.8 x a hello-world's).
KNATIVE_COLD_START_GOAL = 1.8


def jobsink_checks(run: JobSinkRun | None) -> list[TargetCheck]:
    """The goal against JobSink as Eventing ships it, and the same ratio against its limits raised."""
    if run is None:
        return []
    speed = {(f.contender, f.concurrency): f.per_second for f in run.figures}
    checks = []
    for peer, what in (("jobsink", "as shipped"), ("jobsink-limits-raised", "API client limits raised")):
        for concurrency in sorted({f.concurrency for f in run.figures if f.contender == peer}):
            checks.append(
                TargetCheck(
                    f"jobfn CloudEvents throughput vs Knative JobSink ({what}), c={concurrency}",
                    ratio(speed.get(("jobfn-cloudevent", concurrency)), speed.get((peer, concurrency))),
                    JOBSINK_THROUGHPUT_GOAL,
                    at_least=True,
                )
            )
    return checks


def knative_cold_start_checks(figures: list[KnativeColdStartFigure]) -> list[TargetCheck]:
    by_kind = {f.kind: f for f in figures}
    jobfn, hello = by_kind.get("jobfn"), by_kind.get("hello-world")
    if jobfn is None or hello is None:
        return []
    return [
        TargetCheck(
            f"Knative cold start from zero, request → job created vs hello-world's 200, {name}",
            ratio(mine, theirs),
            KNATIVE_COLD_START_GOAL,
            at_least=False,
        )
        for name, mine, theirs in (("p50", jobfn.p50_ms, hello.p50_ms), ("p95", jobfn.p95_ms, hello.p95_ms))
    ]


def jobsink_lines(run: JobSinkRun | None) -> list[str]:
    if run is None:
        return []
    idle = ", ".join(f"{LABELS[name]} {value:.1f}" for name, value in run.idle_cpu_ms_per_second.items())
    return [
        "JobSink beside jobfn's CloudEvents door: the same events, a Job each on a KWOK node, both in the "
        "cluster's network; CPU per event of each server (jobfn's process tree, JobSink's container cgroup)",
        *table(
            ["server", "c", "events/s", "p50 ms", "p99 ms", "CPU ms/event", "peak RSS MiB", "errors"],
            [cells(LABELS[f.contender], f) for f in run.figures],
        ),
        f"At rest (CPU ms/s): {idle}. JobSink {run.jobsink_image}; API client limits: "
        + "; ".join(f"{LABELS[name]} {limits}" for name, limits in run.api_limits.items()),
        "",
    ]


def knative_cold_start_lines(figures: list[KnativeColdStartFigure]) -> list[str]:
    if not figures:
        return []
    rows = [
        [
            KIND_LABELS[f.kind],
            f"{f.p50_ms:.0f}",
            f"{f.p95_ms:.0f}",
            f"{f.min_ms:.0f}",
            f"{f.max_ms:.0f}",
            str(f.starts),
        ]
        for f in figures
    ]
    return [
        "Knative cold start: a request to a revision at zero (Traefik, activator) until its answer",
        *table(["start", "p50 ms", "p95 ms", "min ms", "max ms", "starts"], rows),
        f"(each start waited a median {figures[0].waited_for_zero_median_s:.1f} s for its namespace to reach zero)",
        "",
    ]
