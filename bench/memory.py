"""Measurement 4: does the function's memory grow with the submissions it has served?

A fresh function process serves ``memory_early`` submissions, then the rest up to
``memory_late``, through the REST door; its RSS (whole process tree) is read after each.
"""

from __future__ import annotations

from dataclasses import dataclass

from .harness import Bench
from .processes import LoadGenerator
from .procfs import sample_tree
from .workload import DEFINITION_NAME


@dataclass(frozen=True)
class MemoryFigure:
    early_submissions: int
    early_rss_mib: float
    late_submissions: int
    late_rss_mib: float
    errors: int

    @property
    def growth(self) -> float:
        """Late RSS over early RSS, minus one (0.05 is 5 % growth)."""
        return self.late_rss_mib / self.early_rss_mib - 1


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
    figure = MemoryFigure(
        early_submissions=early.completed,
        early_rss_mib=early_rss / 2**20,
        late_submissions=early.completed + late.completed,
        late_rss_mib=late_rss / 2**20,
        errors=early.errors + late.errors,
    )
    bench.say(
        f"memory: {figure.early_rss_mib:.1f} MiB after {figure.early_submissions}, "
        f"{figure.late_rss_mib:.1f} MiB after {figure.late_submissions} ({figure.growth:+.1%})"
    )
    bench.clean()
    return figure
