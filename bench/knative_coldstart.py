"""Measurement: the cold start users feel on Knative, beside a hello-world deployed the same way.

A request arriving at a Knative revision of jobfn scaled to zero, through Traefik and the
activator, until the job is created (201); beside it a bare functions-framework hello-world
Knative Service made from the same template (same image, annotations and resources), from
zero to its 200. The machinery is the Knative test's (tests/knative/coldstart.py): PAIRS
namespaces of both Services, taking turns so one scales down while the other starts; each
start waits until both revisions of its namespace are at zero, then starts the function,
then the hello-world, one at a time. Knative is installed on demand (tests/knative).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .harness import Bench
from .knative_cluster import knative_kubectl

PAIRS = 2
KIND_LABELS = {"jobfn": "jobfn request → 201 (job created)", "hello-world": "hello-world request → 200"}


@dataclass(frozen=True)
class KnativeColdStartFigure:
    """Request → answer from zero, over the starts, for one kind of Service."""

    kind: str
    p50_ms: float
    p95_ms: float
    min_ms: float
    max_ms: float
    starts: int
    waited_for_zero_median_s: float
    """How long each start waited for its namespace's revisions to reach zero (not measured time)."""


def measure_knative_cold_start(bench: Bench) -> list[KnativeColdStartFigure]:
    from tests.knative.coldstart import KINDS, cold_start_pairs, percentile, run_starts
    from tests.knative.jobfn import project_images

    kubectl = knative_kubectl(bench, "knative-coldstart")
    began = time.monotonic()
    images = project_images()
    bench.say(f"knative-coldstart: this tree's images in the cluster, {time.monotonic() - began:.1f} s")
    began = time.monotonic()
    # The overlays hold Python (a recorder the Services do not use): not under bench/, where mypy looks.
    with (
        tempfile.TemporaryDirectory(prefix="jobfn-bench-knative-") as work_dir,
        cold_start_pairs(bench.cluster.api, kubectl, images, Path(work_dir), PAIRS) as pairs,
    ):
        bench.say(f"knative cold start: {PAIRS} namespaces Ready in {time.monotonic() - began:.1f} s")
        starts = run_starts(
            pairs, bench.plan.knative_cold_starts, lambda line: bench.say(f"knative cold {line}")
        )
    figures = []
    for kind in KINDS:
        seconds = starts.seconds[kind]
        figure = KnativeColdStartFigure(
            kind=kind,
            p50_ms=statistics.median(seconds) * 1000,
            p95_ms=percentile(seconds, 0.95) * 1000,
            min_ms=min(seconds) * 1000,
            max_ms=max(seconds) * 1000,
            starts=len(seconds),
            waited_for_zero_median_s=statistics.median(starts.waited),
        )
        bench.say(f"knative cold start {starts.summary(kind)}")
        figures.append(figure)
    return figures
