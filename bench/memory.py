"""Measurement 4: the function's memory after many submissions, beside a bare function's after as many requests.

A fresh function process serves ``memory_early`` submissions, then the rest up to
``memory_late``, through the REST door; its RSS (whole process tree: functions-framework's
gunicorn arbiter and its worker) is read after each. A fresh functions-framework
hello-world then serves ``memory_late`` requests and is read the same way: the floor
any function pays for the same traffic. So does the forwarder (``bench/forwarder.py``),
with ``memory_late`` submissions: what any function that creates the job through
jobfn's client holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from .harness import Bench
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
from .procfs import sample_tree
from .workload import DEFINITION_NAME


@dataclass(frozen=True)
class MemoryFigure:
    early_submissions: int
    early_rss_mib: float
    late_submissions: int
    late_rss_mib: float
    errors: int
    hello_world_requests: int
    hello_world_rss_mib: float
    forwarder_submissions: int
    forwarder_rss_mib: float

    @property
    def growth(self) -> float:
        """Late RSS over early RSS, minus one (0.05 is 5 % growth)."""
        return self.late_rss_mib / self.early_rss_mib - 1


def _rss_after(
    bench: Bench, server: Server, probe: Probe, options: dict[str, str], requests: int, concurrency: int
) -> tuple[int, float]:
    """Requests served by a fresh ``server`` (stopped after), and its RSS in MiB after them."""
    try:
        wait_until_ok(server, probe, timeout=60, interval=0.02)
        with LoadGenerator("http", options, bench.log_dir) as load:
            served = load.burst(concurrency, count=requests)
            return served.completed, sample_tree(server.pid).rss_bytes / 2**20
    finally:
        server.stop()


def _hello_world_rss(bench: Bench, requests: int, concurrency: int) -> tuple[int, float]:
    port = free_port()
    server = start_server(
        "hello-world-memory", hello_world_argv(port), port, bench.hello_world_env(), bench.log_dir
    )
    return _rss_after(bench, server, Probe("GET", "/"), {"url": f"{server.base_url}/"}, requests, concurrency)


def _forwarder_rss(bench: Bench, submissions: int, concurrency: int) -> tuple[int, float]:
    port = free_port()
    server = start_server(
        "forwarder-memory", forwarder_argv(port), port, bench.forwarder_env(), bench.log_dir
    )
    options = {"url": f"{server.base_url}/jobs", "definition": DEFINITION_NAME}
    try:
        return _rss_after(bench, server, FORWARDER_PROBE, options, submissions, concurrency)
    finally:
        bench.clean()


def measure_memory(bench: Bench) -> MemoryFigure:
    plan = bench.plan
    server = bench.start_function("function-memory")
    options = {"url": f"{server.base_url}/jobs", "definition": DEFINITION_NAME}
    try:
        with LoadGenerator("http", options, bench.log_dir) as load:
            early = load.burst(plan.memory_concurrency, count=plan.memory_early)
            early_rss = sample_tree(server.pid).rss_bytes
            late = load.burst(plan.memory_concurrency, count=plan.memory_late - plan.memory_early)
            late_rss = sample_tree(server.pid).rss_bytes
    finally:
        server.stop()
    bench.clean()
    hello_requests, hello_rss = _hello_world_rss(bench, plan.memory_late, plan.memory_concurrency)
    forwarded, forwarder_rss = _forwarder_rss(bench, plan.memory_late, plan.memory_concurrency)
    figure = MemoryFigure(
        early_submissions=early.completed,
        early_rss_mib=early_rss / 2**20,
        late_submissions=early.completed + late.completed,
        late_rss_mib=late_rss / 2**20,
        errors=early.errors + late.errors,
        hello_world_requests=hello_requests,
        hello_world_rss_mib=hello_rss,
        forwarder_submissions=forwarded,
        forwarder_rss_mib=forwarder_rss,
    )
    bench.say(
        f"memory: {figure.early_rss_mib:.1f} MiB after {figure.early_submissions}, "
        f"{figure.late_rss_mib:.1f} MiB after {figure.late_submissions} ({figure.growth:+.1%}); "
        f"hello-world {figure.hello_world_rss_mib:.1f} MiB after {figure.hello_world_requests} requests; "
        f"forwarder {figure.forwarder_rss_mib:.1f} MiB after {figure.forwarder_submissions} submissions"
    )
    return figure
