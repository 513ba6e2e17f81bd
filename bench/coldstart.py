"""Measurement 2: cold start, from exec to the first answer that counts.

Three kinds of start, interleaved start by start so the machine's drift touches each
alike: a bare functions-framework hello-world (exec → first 200: the floor any
function pays), the function (exec → first successful submission), and the function
again (exec → /readyz 200). Each start is a fresh process on a fresh port.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from .harness import READY_PROBE, REST_PROBE, Bench
from .processes import Probe, free_port, function_argv, hello_world_argv, start_server, wait_until_ok

KINDS = ("hello-world", "function-submission", "function-ready")


@dataclass(frozen=True)
class ColdStartFigure:
    """Median and spread of one kind of start."""

    kind: str
    median_ms: float
    min_ms: float
    max_ms: float
    starts: int


def _one_start(bench: Bench, kind: str, index: int) -> float:
    port = free_port()
    if kind == "hello-world":
        argv, env, probe = hello_world_argv(port), bench.hello_world_env(), Probe("GET", "/")
    else:
        argv, env = function_argv(port), bench.function_env()
        probe = REST_PROBE if kind == "function-submission" else READY_PROBE
    server = start_server(f"coldstart-{kind}-{index}", argv, port, env, bench.log_dir)
    try:
        return wait_until_ok(server, probe, timeout=60)
    finally:
        server.stop()


def measure_cold_start(bench: Bench) -> list[ColdStartFigure]:
    samples: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for index in range(bench.plan.cold_starts):
        for kind in KINDS:
            samples[kind].append(_one_start(bench, kind, index))
    bench.clean()
    figures = []
    for kind, seconds in samples.items():
        figure = ColdStartFigure(
            kind=kind,
            median_ms=statistics.median(seconds) * 1000,
            min_ms=min(seconds) * 1000,
            max_ms=max(seconds) * 1000,
            starts=len(seconds),
        )
        bench.say(f"cold start {kind:<20} median {figure.median_ms:7.1f} ms over {figure.starts} starts")
        figures.append(figure)
    return figures
