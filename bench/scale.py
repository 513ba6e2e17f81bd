"""Measurement 5: does a submission, a listing or a reaper pass cost more when the namespace holds many jobs?

One function process serves each fixture namespace (``fixtures``: 0, 10,000 and 50,000
finished jobs in the full plan). Their bursts are taken round-robin, size by size, so a
noisy moment touches each alike (each round's submissions first, from another size each
round, then its listings):

- submission latency at c=1, for the plain definition and for the capped one (its cap
  check counts the definition's active jobs before each create);
- ``GET /jobs?state=`` and AWS ``ListJobs`` (``jobStatus``), one request at a time: for
  RUNNING (what a caller watches; the default of ListJobs) and FAILED (one job in ten)
  at every size, and for SUCCEEDED (nine in ten) at the largest, fewer times;
- a reaper pass over each namespace (every job already marked for later, so the pass
  reads and decides and writes nothing): wall time, CPU and peak RSS.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import dataclass

import urllib3

from . import fixtures
from .harness import Bench
from .loadgen import percentile
from .processes import LoadGenerator, Server, run_measured
from .workload import CAPPED_DEFINITION_NAME, DEFINITION_NAME, SIGNATURE

CREATED_SELECTOR = f"app.kubernetes.io/managed-by={SIGNATURE},!{fixtures.FIXTURE_LABEL}"
LISTINGS = {
    "rest RUNNING": ("GET", "/jobs?state=RUNNING&limit=100", None),
    "rest FAILED": ("GET", "/jobs?state=FAILED&limit=100", None),
    "aws RUNNING": ("POST", "/v1/listjobs", {"jobQueue": "default", "jobStatus": "RUNNING"}),
    "aws FAILED": ("POST", "/v1/listjobs", {"jobQueue": "default", "jobStatus": "FAILED"}),
}
LARGE_LISTINGS = {
    "rest SUCCEEDED": ("GET", "/jobs?state=SUCCEEDED&limit=100", None),
    "aws SUCCEEDED": ("POST", "/v1/listjobs", {"jobQueue": "default", "jobStatus": "SUCCEEDED"}),
}


@dataclass(frozen=True)
class ScaleFigure:
    """One measure at one namespace size."""

    measure: str
    """``submit <definition>``, ``list <door> <state>`` or ``reaper pass``."""
    jobs: int
    p50_ms: float
    p99_ms: float
    samples: int
    errors: int
    cpu_seconds: float = 0.0
    peak_rss_mib: float = 0.0


def _timed_requests(
    server: Server, method: str, path: str, body: object, count: int
) -> tuple[list[float], int]:
    seconds: list[float] = []
    errors = 0
    data = json.dumps(body).encode() if body is not None else None
    with urllib3.HTTPConnectionPool("127.0.0.1", server.port, maxsize=1, retries=False) as pool:
        for _ in range(count):
            began = time.perf_counter()
            response = pool.urlopen(method, path, body=data, headers={"Content-Type": "application/json"},
                                    timeout=120.0)  # fmt: skip
            if response.status != 200:
                errors += 1
                continue
            seconds.append(time.perf_counter() - began)
    return seconds, errors


def _figure(measure: str, jobs: int, seconds: list[float], errors: int) -> ScaleFigure:
    ordered = sorted(seconds)
    return ScaleFigure(measure, jobs, percentile(ordered, 0.5) * 1000, percentile(ordered, 0.99) * 1000,
                       len(ordered), errors)  # fmt: skip


def _reaper_pass(bench: Bench, namespace: str, jobs: int) -> ScaleFigure:
    env = {**bench.server_env(SIGNATURE), "JOB_NAMESPACE": namespace}
    argv = [sys.executable, "-m", "jobfn.reaper"]
    with (bench.log_dir / f"reaper-pass-{jobs}.out").open("wb") as out, \
            (bench.log_dir / f"reaper-pass-{jobs}.err").open("wb") as err:  # fmt: skip
        finished = run_measured(argv, env, out, err)
    wall = finished.wall_seconds * 1000
    return ScaleFigure("reaper pass", jobs, wall, wall, 1, int(finished.returncode != 0),
                       finished.cpu_seconds, finished.peak_rss_bytes / 2**20)  # fmt: skip


def measure_scale(bench: Bench) -> list[ScaleFigure]:
    plan = bench.plan
    namespaces = {size: fixtures.ensure(bench.cluster, size, bench.say) for size in plan.scale_sizes}
    servers: dict[int, Server] = {}
    loads: dict[tuple[int, str], LoadGenerator] = {}
    latencies: dict[tuple[str, int], list[float]] = {}
    errors: dict[tuple[str, int], int] = {}
    figures: list[ScaleFigure] = []
    try:
        for size, namespace in namespaces.items():
            servers[size] = bench.start_function(f"function-scale-{size}", namespace=namespace)
            for definition in (DEFINITION_NAME, CAPPED_DEFINITION_NAME):
                options = {"url": f"{servers[size].base_url}/jobs", "definition": definition}
                loads[(size, definition)] = LoadGenerator("http", options, bench.log_dir)
                loads[(size, definition)].burst(1, count=plan.warmup_per_thread)
        sizes = list(namespaces)
        for round_index in range(plan.rounds):
            # All sizes' submissions, then all clean-ups and listings, each round's
            # submissions starting at another size. In one fixed order, size by size, the
            # smallest namespace's bursts always came right after the largest's listings
            # and clean-up (the API server's heaviest work here) and were the slowest: p50
            # 8.5 ms at 0 jobs against 6.9 at 10,000 and 50,000 in the full run of 17:32Z.
            start = round_index % len(sizes)
            for size in sizes[start:] + sizes[:start]:
                for definition in (DEFINITION_NAME, CAPPED_DEFINITION_NAME):
                    result = loads[(size, definition)].burst(1, count=plan.scale_submissions // plan.rounds)
                    measure = f"submit {definition}"
                    # Rounds give their percentiles; the median round's stands for the size.
                    latencies.setdefault((measure + " p50", size), []).append(result.p50_ms)
                    latencies.setdefault((measure + " p99", size), []).append(result.p99_ms)
                    errors[(measure, size)] = errors.get((measure, size), 0) + result.errors
            for size, namespace in namespaces.items():
                bench.cluster.delete_jobs(namespace, CREATED_SELECTOR)
                for name, (method, path, body) in LISTINGS.items():
                    seconds, failed = _timed_requests(servers[size], method, path, body, plan.scale_listings)
                    latencies.setdefault((f"list {name}", size), []).extend(seconds)
                    errors[(f"list {name}", size)] = errors.get((f"list {name}", size), 0) + failed
        for size in namespaces:
            for definition in (DEFINITION_NAME, CAPPED_DEFINITION_NAME):
                measure = f"submit {definition}"
                figures.append(ScaleFigure(
                    measure, size, statistics.median(latencies[(measure + " p50", size)]),
                    statistics.median(latencies[(measure + " p99", size)]),
                    plan.scale_submissions, errors[(measure, size)]))  # fmt: skip
            for name in LISTINGS:
                figures.append(_figure(f"list {name}", size, latencies[(f"list {name}", size)],
                                       errors[(f"list {name}", size)]))  # fmt: skip
        largest = max(namespaces)
        for name, (method, path, body) in LARGE_LISTINGS.items():
            seconds, failed = _timed_requests(servers[largest], method, path, body, plan.scale_large_listings)
            figures.append(_figure(f"list {name}", largest, seconds, failed))
    finally:
        for load in loads.values():
            load.close()
        for server in servers.values():
            server.stop()
        for namespace in namespaces.values():
            bench.cluster.delete_jobs(namespace, CREATED_SELECTOR)
    for size, namespace in namespaces.items():
        figures.append(_reaper_pass(bench, namespace, size))
    for figure in figures:
        bench.say(
            f"scale {figure.measure:<22} {figure.jobs:>6} jobs: p50 {figure.p50_ms:8.1f} ms "
            f"p99 {figure.p99_ms:8.1f} ms ({figure.samples} samples, {figure.errors} errors)"
            + (
                f", RSS {figure.peak_rss_mib:.0f} MiB, CPU {figure.cpu_seconds:.1f} s"
                if figure.peak_rss_mib
                else ""
            )
        )
    return figures
