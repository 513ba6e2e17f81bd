"""Measurement 1: submissions per second, latency and CPU per submission, per contender.

Contenders, each at every concurrency, interleaved so drift in the machine's load
touches them alike:

- direct: the official kubernetes client creating the rendered Job (the ceiling);
- function-http and function-cloudevent: jobfn's two front doors, one server process;
- k8s-jobs: the predecessor's Flask route, in its own virtualenv;
- forwarder: a functions-framework function that parses the body and creates the
  rendered Job through jobfn's own client (``bench/forwarder.py``): the least any
  function doing this job on this framework and client pays, so what jobfn's features
  cost shows as the difference;
- hello-world: a bare functions-framework function (no job made), for scale: the CPU
  any function pays per request before doing anything, so jobfn's own share shows.

Each contender's time at a concurrency is split into short bursts taken round-robin
(``Plan.rounds``), so a noisy moment on a shared machine touches every contender alike.
A server's CPU time is read from /proc around each of its bursts; the direct client is
measured the same way on its own load-generator process.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from .harness import Bench
from .loadgen import BurstResult
from .predecessor import server_argv as k8s_jobs_argv
from .processes import (
    FORWARDER_PROBE,
    LoadGenerator,
    Probe,
    Server,
    forwarder_argv,
    free_port,
    hello_world_argv,
    start_server,
    wait_until_ok,
)
from .procfs import TreeSample, sample_tree
from .workload import DEFINITION_NAME, EVENT_TYPE

CONTENDERS = ("direct", "function-http", "function-cloudevent", "k8s-jobs", "forwarder", "hello-world")
LABELS = {
    "direct": "direct client",
    "function-http": "jobfn REST",
    "function-cloudevent": "jobfn CloudEvents",
    "k8s-jobs": "k8s-jobs 0.2.0",
    "forwarder": "ff forwarder",
    "hello-world": "ff hello-world",
}
SERVER_OF = {
    "function-http": "function",
    "function-cloudevent": "function",
    "k8s-jobs": "k8s-jobs",
    "forwarder": "forwarder",
    "hello-world": "hello-world",
}


@dataclass(frozen=True)
class SubmissionFigure:
    """One contender at one concurrency."""

    contender: str
    concurrency: int
    per_second: float
    p50_ms: float
    p99_ms: float
    completed: int
    errors: int
    cpu_ms_per_submission: float
    """CPU of the process tree that does the submitting (server, or the direct client)."""
    peak_rss_mib: float
    """VmHWM of that process tree at the end of the burst."""
    loadgen_cpu_ms_per_submission: float
    """What the load generator itself spent (shows it is cheap next to what it measures)."""
    first_error: str | None


def _start_k8s_jobs(bench: Bench) -> Server:
    port = free_port()
    env = {**bench.server_env(), "JOB_DEFINITIONS_CONFIG_PATH": str(bench.k8s_jobs_definitions)}
    return start_server("k8s-jobs", k8s_jobs_argv(port), port, env, bench.log_dir)


def _loadgen_options(bench: Bench, contender: str, servers: dict[str, Server]) -> tuple[str, dict[str, str]]:
    if contender == "direct":
        return "direct", {
            "namespace": bench.namespace,
            "kubeconfig": str(bench.cluster.kubeconfig),
            "job-file": str(bench.direct_job_file),
        }
    if contender == "hello-world":
        return "http", {"url": f"{servers['hello-world'].base_url}/"}
    if contender == "k8s-jobs":
        return "k8s-jobs", {"url": f"{servers['k8s-jobs'].base_url}/jobs", "definition": DEFINITION_NAME}
    if contender == "forwarder":
        return "http", {"url": f"{servers['forwarder'].base_url}/jobs", "definition": DEFINITION_NAME}
    function = servers["function"].base_url
    if contender == "function-http":
        return "http", {"url": f"{function}/jobs", "definition": DEFINITION_NAME}
    return "cloudevent", {"url": f"{function}/", "event-type": EVENT_TYPE}


@dataclass
class Tally:
    """One contender's bursts at one concurrency, added up over the rounds."""

    completed: int = 0
    errors: int = 0
    elapsed_seconds: float = 0.0
    cpu_seconds: float = 0.0
    load_cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0
    p50s_ms: list[float] = field(default_factory=list)
    p99s_ms: list[float] = field(default_factory=list)
    first_error: str | None = None

    def add(
        self,
        result: BurstResult,
        measured: tuple[TreeSample, TreeSample],
        load: tuple[TreeSample, TreeSample],
    ) -> None:
        self.completed += result.completed
        self.errors += result.errors
        self.elapsed_seconds += result.elapsed_seconds
        self.cpu_seconds += measured[1].cpu_seconds - measured[0].cpu_seconds
        self.load_cpu_seconds += load[1].cpu_seconds - load[0].cpu_seconds
        self.peak_rss_bytes = max(self.peak_rss_bytes, measured[1].peak_rss_bytes)
        self.p50s_ms.append(result.p50_ms)
        self.p99s_ms.append(result.p99_ms)
        self.first_error = self.first_error or result.first_error

    def figure(self, contender: str, concurrency: int) -> SubmissionFigure:
        done = max(self.completed, 1)
        return SubmissionFigure(
            contender=contender,
            concurrency=concurrency,
            per_second=self.completed / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0,
            # Percentiles do not add up: the median round's p50 and the worst round's p99.
            p50_ms=statistics.median(self.p50s_ms),
            p99_ms=max(self.p99s_ms),
            completed=self.completed,
            errors=self.errors,
            cpu_ms_per_submission=self.cpu_seconds * 1000 / done,
            peak_rss_mib=self.peak_rss_bytes / 2**20,
            loadgen_cpu_ms_per_submission=self.load_cpu_seconds * 1000 / done,
            first_error=self.first_error,
        )


def cells(label: str, f: SubmissionFigure) -> list[str]:
    """One figure as the report's table shows it."""
    return [
        label,
        str(f.concurrency),
        f"{f.per_second:.1f}",
        f"{f.p50_ms:.1f}",
        f"{f.p99_ms:.1f}",
        f"{f.cpu_ms_per_submission:.2f}",
        f"{f.peak_rss_mib:.0f}",
        str(f.errors),
    ]


def describe(label: str, figure: SubmissionFigure) -> str:
    """One figure on one line, as the run goes."""
    return (
        f"{label:<18} c={figure.concurrency:<3} {figure.per_second:7.1f}/s "
        f"p50 {figure.p50_ms:6.1f} ms p99 {figure.p99_ms:6.1f} ms "
        f"cpu {figure.cpu_ms_per_submission:5.2f} ms/sub errors {figure.errors}"
    )


def warm_up(load: LoadGenerator, concurrency: int, per_thread: int) -> None:
    """Submissions not counted: each thread's connection, the server's caches."""
    warmup = load.burst(concurrency, count=concurrency * per_thread)
    if warmup.completed == 0:
        raise RuntimeError(f"every warm-up submission failed: {warmup.first_error}")


def measure_round(
    bench: Bench, load: LoadGenerator, sample: Callable[[], TreeSample], concurrency: int, tally: Tally
) -> None:
    """One burst, with the CPU of what ``sample`` reads and the load generator's around it."""
    before, load_before = sample(), sample_tree(load.pid)
    result = load.burst(concurrency, seconds=bench.plan.phase_seconds / bench.plan.rounds)
    after, load_after = sample(), sample_tree(load.pid)
    tally.add(result, (before, after), (load_before, load_after))


def measure_submission(bench: Bench) -> list[SubmissionFigure]:
    """Every contender at every concurrency of the plan, the namespace cleaned between bursts."""
    servers: dict[str, Server] = {}
    loads: dict[str, LoadGenerator] = {}
    figures: list[SubmissionFigure] = []
    try:
        # The servers start at once; each is waited for before any load.
        servers["k8s-jobs"] = _start_k8s_jobs(bench)
        hello_port, forwarder_port = free_port(), free_port()
        servers["hello-world"] = start_server(
            "hello-world", hello_world_argv(hello_port), hello_port, bench.hello_world_env(), bench.log_dir
        )
        servers["forwarder"] = start_server(
            "forwarder", forwarder_argv(forwarder_port), forwarder_port, bench.forwarder_env(), bench.log_dir
        )
        servers["function"] = bench.start_function()
        wait_until_ok(servers["k8s-jobs"], Probe("GET", "/healthcheck"), timeout=60, interval=0.02)
        wait_until_ok(servers["hello-world"], Probe("GET", "/"), timeout=60, interval=0.02)
        # The forwarder's probe creates one job: cleaned before the first burst.
        wait_until_ok(servers["forwarder"], FORWARDER_PROBE, timeout=60, interval=0.02)
        for contender in CONTENDERS:
            target, options = _loadgen_options(bench, contender, servers)
            loads[contender] = LoadGenerator(target, options, bench.log_dir)
        bench.clean()
        for concurrency in bench.plan.concurrencies:
            for contender in CONTENDERS:
                warm_up(loads[contender], concurrency, bench.plan.warmup_per_thread)
            bench.clean()
            # Round-robin in short bursts: a noisy moment on a shared machine lands on
            # every contender alike instead of on whichever one was running.
            tallies = {contender: Tally() for contender in CONTENDERS}
            for _ in range(bench.plan.rounds):
                for contender in CONTENDERS:
                    load = loads[contender]
                    measured_pid = load.pid if contender == "direct" else servers[SERVER_OF[contender]].pid
                    sample = functools.partial(sample_tree, measured_pid)
                    measure_round(bench, load, sample, concurrency, tallies[contender])
                    bench.clean()
            for contender in CONTENDERS:
                figure = tallies[contender].figure(contender, concurrency)
                bench.say(f"submission {describe(LABELS[contender], figure)}")
                figures.append(figure)
    finally:
        for load in loads.values():
            load.close()
        for server in servers.values():
            server.stop()
    return figures
