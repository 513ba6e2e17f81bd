"""The run's figures as a table (stdout) and JSON (bench/results/), each ratio beside its target."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .coldstart import ColdStartFigure
from .jobsink import JobSinkRun
from .knative_coldstart import KnativeColdStartFigure
from .knative_report import jobsink_checks, jobsink_lines, knative_cold_start_checks, knative_cold_start_lines
from .memory import MemoryFigure
from .reaper import ReaperFigure
from .scale import ScaleFigure
from .submission import LABELS, SubmissionFigure, cells
from .tables import TargetCheck, ratio, table

DOORS = ("function-http", "function-cloudevent")


@dataclass
class Results:
    """Everything one run measured (a part not run stays empty)."""

    meta: dict[str, Any]
    submission: list[SubmissionFigure] = field(default_factory=list)
    cold_start: list[ColdStartFigure] = field(default_factory=list)
    reaper: list[ReaperFigure] = field(default_factory=list)
    memory: MemoryFigure | None = None
    scale: list[ScaleFigure] = field(default_factory=list)
    jobsink: JobSinkRun | None = None
    knative_cold_start: list[KnativeColdStartFigure] = field(default_factory=list)


def _wall(figure: ReaperFigure | None) -> float | None:
    return figure.wall_seconds if figure is not None else None


def _peak(figure: ReaperFigure | None) -> float | None:
    return figure.peak_rss_mib if figure is not None else None


def target_checks(results: Results) -> list[TargetCheck]:
    checks: list[TargetCheck] = []
    by_key = {(f.contender, f.concurrency): f for f in results.submission}
    concurrencies = sorted({f.concurrency for f in results.submission})

    def figure(contender: str, concurrency: int, read: Callable[[SubmissionFigure], float]) -> float | None:
        found = by_key.get((contender, concurrency))
        return read(found) if found is not None else None

    for concurrency in concurrencies:
        for door in DOORS:
            name = LABELS[door]
            throughput = figure(door, concurrency, lambda f: f.per_second)
            cpu = figure(door, concurrency, lambda f: f.cpu_ms_per_submission)
            checks += [
                TargetCheck(
                    f"{name} throughput vs direct client, c={concurrency}",
                    ratio(throughput, figure("direct", concurrency, lambda f: f.per_second)),
                    0.95,
                    at_least=True,
                ),
                TargetCheck(
                    f"{name} throughput vs k8s-jobs, c={concurrency}",
                    ratio(throughput, figure("k8s-jobs", concurrency, lambda f: f.per_second)),
                    3.0,
                    at_least=True,
                ),
                TargetCheck(
                    f"{name} CPU/submission vs direct client, c={concurrency}",
                    ratio(cpu, figure("direct", concurrency, lambda f: f.cpu_ms_per_submission)),
                    1.3,
                    at_least=False,
                    never_beyond=1.5,
                ),
            ]
    starts = {f.kind: f.median_ms for f in results.cold_start}
    if starts:
        hello = starts.get("hello-world")
        checks += [
            TargetCheck(
                "cold start to first job created vs hello-world's first 200",
                ratio(starts.get("function-submission"), hello),
                1.8,
                at_least=False,
            ),
            TargetCheck(
                "cold start to /readyz vs hello-world's first 200",
                ratio(starts.get("function-ready"), hello),
                1.5,
                False,
            ),
        ]
    reaped = {(f.contender, f.jobs): f for f in results.reaper}
    sizes = sorted({f.jobs for f in results.reaper})
    for jobs in sizes:
        checks.append(
            TargetCheck(
                f"reaper wall time vs kubectl delete, {jobs} jobs",
                ratio(_wall(reaped.get(("reaper", jobs))), _wall(reaped.get(("kubectl", jobs)))),
                1.5,
                at_least=False,
            )
        )
    if len(sizes) >= 2:
        checks.append(
            TargetCheck(
                f"reaper peak RSS, {sizes[-1]} vs {sizes[0]} jobs (independent: within 10 %)",
                ratio(_peak(reaped.get(("reaper", sizes[-1]))), _peak(reaped.get(("reaper", sizes[0])))),
                1.1,
                at_least=False,
            )
        )
    if results.memory is not None:
        memory = results.memory
        checks.append(
            TargetCheck(
                f"function RSS after {memory.late_submissions} vs after {memory.early_submissions} submissions",
                ratio(memory.late_rss_mib, memory.early_rss_mib),
                1.1,
                at_least=False,
            )
        )
        checks.append(
            TargetCheck(
                f"function RSS vs hello-world's, each after {memory.late_submissions} requests",
                ratio(memory.late_rss_mib, memory.hello_world_rss_mib),
                1.2,
                at_least=False,
            )
        )
    checks += scale_checks(results.scale)
    checks += jobsink_checks(results.jobsink)
    checks += knative_cold_start_checks(results.knative_cold_start)
    return checks


def _spread(values: list[float]) -> float | None:
    return max(values) / min(values) if values and min(values) > 0 else None


def scale_checks(figures: list[ScaleFigure]) -> list[TargetCheck]:
    """Flat cost: submission latency within 1.2 x across sizes; listings under 1 s at the largest."""
    checks: list[TargetCheck] = []
    sizes = sorted({f.jobs for f in figures})
    if not sizes:
        return checks
    shown = " / ".join(f"{size:,}" for size in sizes)
    for measure in sorted({f.measure for f in figures if f.measure.startswith("submit ")}):
        of_measure = [f for f in figures if f.measure == measure]
        spreads = {
            "p50": _spread([f.p50_ms for f in of_measure]),
            "p99": _spread([f.p99_ms for f in of_measure]),
        }
        for percentile, spread in spreads.items():
            checks.append(TargetCheck(
                f"{measure} {percentile} latency, slowest vs fastest of {shown} jobs",
                spread, 1.2, at_least=False))  # fmt: skip
    largest = sizes[-1]
    for figure in figures:
        if figure.measure.startswith("list ") and figure.jobs == largest:
            checks.append(TargetCheck(
                f"{figure.measure} p99 at {largest:,} jobs, in seconds",
                figure.p99_ms / 1000 if figure.samples else None, 1.0, at_least=False))  # fmt: skip
    passes = sorted((f for f in figures if f.measure == "reaper pass" and f.jobs), key=lambda f: f.jobs)
    if len(passes) >= 2:
        checks.append(TargetCheck(
            f"reaper pass peak RSS, {passes[-1].jobs:,} vs {passes[0].jobs:,} jobs (within 10 %)",
            ratio(passes[-1].peak_rss_mib, passes[0].peak_rss_mib), 1.1, at_least=False))  # fmt: skip
    return checks


def ceilings(results: Results) -> dict[int, float | None]:
    """Per concurrency, the direct client's throughput over k8s-jobs' server.

    The direct client is the API server itself with nothing in front: no front end of
    it can beat k8s-jobs by more than this, so a "3 times k8s-jobs" target is only
    reachable where this is above 3.
    """
    by_key = {(f.contender, f.concurrency): f.per_second for f in results.submission}
    return {
        concurrency: ratio(by_key.get(("direct", concurrency)), by_key.get(("k8s-jobs", concurrency)))
        for concurrency in sorted({f.concurrency for f in results.submission})
    }


FLOOR_KEYS = ("cpu", "throughput", "forwarder_cpu", "forwarder_throughput")


def framework_floor(results: Results) -> dict[int, dict[str, float | None]]:
    """Per concurrency, what a front end on functions-framework costs beside the direct client.

    ``cpu``: the hello-world's CPU per request over the direct client's per create, the
    share of a "CPU within 1.3 x" target any front end on it spends before doing anything.
    ``throughput``: the direct client's p50 over itself plus the hello-world's p50, the
    best throughput ratio a front end that only forwarded could reach where latency, not
    CPU, bounds it (c=1).
    ``forwarder_cpu`` and ``forwarder_throughput``: the same two measured, not derived: the
    forwarder (``bench/forwarder.py``) creating the job through jobfn's client with nothing
    else, over the direct client. jobfn's features cost what its doors spend beyond it.
    """
    by_key = {(f.contender, f.concurrency): f for f in results.submission}
    floors: dict[int, dict[str, float | None]] = {}
    for concurrency in sorted({f.concurrency for f in results.submission}):
        direct, hello = by_key.get(("direct", concurrency)), by_key.get(("hello-world", concurrency))
        forwarder = by_key.get(("forwarder", concurrency))
        floor: dict[str, float | None] = dict.fromkeys(FLOOR_KEYS)
        if direct is not None and hello is not None:
            floor["cpu"] = ratio(hello.cpu_ms_per_submission, direct.cpu_ms_per_submission)
            floor["throughput"] = ratio(direct.p50_ms, direct.p50_ms + hello.p50_ms)
        if direct is not None and forwarder is not None:
            floor["forwarder_cpu"] = ratio(forwarder.cpu_ms_per_submission, direct.cpu_ms_per_submission)
            floor["forwarder_throughput"] = ratio(forwarder.per_second, direct.per_second)
        floors[concurrency] = floor
    return floors


def as_json(results: Results) -> dict[str, Any]:
    return {
        "meta": results.meta,
        "submission": [asdict(f) for f in results.submission],
        "cold_start": [asdict(f) for f in results.cold_start],
        "reaper": [asdict(f) for f in results.reaper],
        "scale": [asdict(f) for f in results.scale],
        "jobsink": asdict(results.jobsink) if results.jobsink is not None else None,
        "knative_cold_start": [asdict(f) for f in results.knative_cold_start],
        "memory": (
            {**asdict(results.memory), "growth": results.memory.growth}
            if results.memory is not None
            else None
        ),
        "targets": [check.as_dict() for check in target_checks(results)],
        "direct_client_vs_k8s_jobs": {str(c): ratio for c, ratio in ceilings(results).items()},
        "framework_floor_vs_direct_client": {str(c): floor for c, floor in framework_floor(results).items()},
    }


def _two_places(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _reaper_row(f: ReaperFigure) -> list[str]:
    return [
        f.contender,
        str(f.jobs),
        f"{f.wall_seconds:.2f}",
        f"{f.cpu_seconds:.2f}",
        f"{f.peak_rss_mib:.0f}",
        "-" if f.api_calls is None else str(f.api_calls),
        str(f.server_counted_requests),
        str(f.jobs_left),
    ]


def as_table(results: Results) -> str:
    meta = results.meta
    lines = [
        f"jobfn benchmark ({meta['plan']} run, {meta['finished']}, {meta['duration_seconds']:.0f} s; "
        f"{meta['cpus']} CPUs, load average {meta['load_before']} before, {meta['load_after']} after)",
        f"Kubernetes {meta.get('server_version', '?')} (local control plane + KWOK); command: {meta['command']}",
        "",
    ]
    if results.submission:
        lines.append("Submission: jobs/s, latency, CPU per submission of the submitting process tree")
        lines += table(
            ["contender", "c", "jobs/s", "p50 ms", "p99 ms", "CPU ms/job", "peak RSS MiB", "errors"],
            [cells(LABELS[f.contender], f) for f in results.submission],
        )
        bound = ", ".join(f"c={c}: {_two_places(r)}" for c, r in ceilings(results).items())
        floors = framework_floor(results)

        def each(key: str) -> str:
            return " / ".join(_two_places(floor[key]) for floor in floors.values())

        lines += [
            f"Ceiling for any front end vs k8s-jobs (direct client / k8s-jobs throughput): {bound}",
            f"functions-framework's floor vs the direct client, c={' / '.join(map(str, floors))}: CPU "
            f"(hello-world / direct client) {each('cpu')}; throughput a front end that only forwarded could "
            f"reach where latency bounds it (direct p50 / (direct p50 + hello-world p50)) {each('throughput')}",
            f"The forwarder (functions-framework + jobfn's client, nothing else) vs the direct client: "
            f"CPU {each('forwarder_cpu')}, throughput {each('forwarder_throughput')}",
            "",
        ]
    if results.cold_start:
        lines.append("Cold start: exec to first 2xx, median (min-max)")
        lines += table(
            ["start", "median ms", "min ms", "max ms", "starts"],
            [
                [f.kind, f"{f.median_ms:.0f}", f"{f.min_ms:.0f}", f"{f.max_ms:.0f}", str(f.starts)]
                for f in results.cold_start
            ],
        )
        lines.append("")
    if results.reaper:
        lines.append("Reaping finished jobs (retention 0)")
        lines += table(
            ["contender", "jobs", "wall s", "CPU s", "peak RSS MiB", "API calls", "server-counted", "left"],
            [_reaper_row(f) for f in results.reaper],
        )
        lines.append("")
    if results.memory is not None:
        memory = results.memory
        lines += [
            f"Memory: function RSS {memory.early_rss_mib:.1f} MiB after {memory.early_submissions} submissions, "
            f"{memory.late_rss_mib:.1f} MiB after {memory.late_submissions} ({memory.growth:+.1%}); "
            f"hello-world {memory.hello_world_rss_mib:.1f} MiB after {memory.hello_world_requests} requests; "
            f"forwarder {memory.forwarder_rss_mib:.1f} MiB after {memory.forwarder_submissions} submissions "
            f"({_two_places(ratio(memory.forwarder_rss_mib, memory.hello_world_rss_mib))} x the hello-world's)",
            "",
        ]
    if results.scale:
        lines.append("Scale: latency with N finished jobs already in the namespace (reaper pass: wall time)")
        lines += table(
            ["measure", "jobs", "p50 ms", "p99 ms", "samples", "errors", "CPU s", "peak RSS MiB"],
            [[f.measure, f"{f.jobs:,}", f"{f.p50_ms:.1f}", f"{f.p99_ms:.1f}", str(f.samples), str(f.errors),
              f"{f.cpu_seconds:.1f}" if f.peak_rss_mib else "-",
              f"{f.peak_rss_mib:.0f}" if f.peak_rss_mib else "-"] for f in results.scale],
        )  # fmt: skip
        lines.append("")
    lines += jobsink_lines(results.jobsink)
    lines += knative_cold_start_lines(results.knative_cold_start)
    checks = target_checks(results)
    if checks:
        lines.append("Targets")
        lines += table(
            ["target", "ratio", "limit", "result"],
            [
                [
                    check.target,
                    _two_places(check.ratio),
                    f"{'>=' if check.at_least else '<='} {check.limit:g}",
                    check.verdict,
                ]
                for check in checks
            ],
        )
    return "\n".join(lines) + "\n"


def write(results: Results, directory: Path) -> Path:
    """Write the JSON and the table; returns the JSON's path."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = results.meta["finished"].replace(":", "").replace("-", "")
    path = directory / f"bench-{results.meta['plan']}-{stamp}.json"
    text = json.dumps(as_json(results), indent=2) + "\n"
    path.write_text(text)
    (directory / f"latest-{results.meta['plan']}.json").write_text(text)
    (directory / f"latest-{results.meta['plan']}.txt").write_text(as_table(results))
    return path
