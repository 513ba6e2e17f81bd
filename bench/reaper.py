"""Measurement 3: reaping N finished jobs, beside ``kubectl delete jobs -l`` on an identical set.

Both get N jobs that finished (Complete) a moment ago under their own signature, and
run to completion as a separate process; wall time, CPU and peak RSS come from the
process's own rusage. kubectl runs with ``--wait=false``: like the reaper, it returns
once every delete is accepted. (Its default then GETs each job until it is gone, at
kubectl's client-side limit of about 5 requests/s: 1,000 jobs would add ~200 s that
measure kubectl's throttle, not deleting.) The reaper runs with retention 0, so every job is due: it
marks and deletes each. API calls are the reaper's own count, and for both, the API
server's count of requests on jobs during the run (other clients of the cluster,
e.g. concurrent test runs, would show up there too).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .harness import Bench
from .processes import run_measured

SIGNATURE = "jobfn-bench-reap"
SELECTOR = f"app.kubernetes.io/managed-by={SIGNATURE}"
CONTENDERS = ("reaper", "kubectl")


@dataclass(frozen=True)
class ReaperFigure:
    """One contender clearing one set of finished jobs."""

    contender: str
    jobs: int
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    api_calls: int | None
    """As the contender reports it (the reaper's summary); None when it reports none."""
    server_counted_requests: int
    """Requests on batch/v1 jobs the API server served during the run."""
    jobs_left: int
    returncode: int


def _summary(path: Path) -> dict[str, Any]:
    """The reaper's one-line JSON summary: the last JSON line that has ``api_calls``."""
    for line in reversed(path.read_text(errors="replace").splitlines()):
        if '"api_calls"' in line:
            try:
                summary: dict[str, Any] = json.loads(line)
                return summary
            except ValueError:
                continue
    return {}


def _argv(bench: Bench, contender: str) -> list[str]:
    if contender == "reaper":
        return [sys.executable, "-m", "jobfn.reaper", "--succeeded-retention", "0", "--failed-retention", "0"]
    return [
        bench.cluster.kubectl, f"--kubeconfig={bench.cluster.kubeconfig}",
        "delete", "jobs", "-n", bench.namespace, "-l", SELECTOR, "--wait=false",
    ]  # fmt: skip


def _run(bench: Bench, contender: str, jobs: int) -> ReaperFigure:
    bench.cluster.delete_jobs(bench.namespace, SELECTOR)
    bench.cluster.create_finished_jobs(bench.namespace, SIGNATURE, jobs, prefix=contender)
    output = bench.log_dir / f"{contender}-{jobs}.out"
    errors = bench.log_dir / f"{contender}-{jobs}.err"
    served_before = sum(bench.cluster.job_requests_served().values())
    with output.open("wb") as stdout, errors.open("wb") as stderr:
        finished = run_measured(_argv(bench, contender), bench.server_env(SIGNATURE), stdout, stderr)
    served = sum(bench.cluster.job_requests_served().values()) - served_before
    summary = _summary(output) or _summary(errors)
    left = bench.cluster.count_jobs(bench.namespace, SELECTOR)
    if finished.returncode != 0:
        tail = errors.read_text(errors="replace")[-1500:]
        raise RuntimeError(f"{contender} on {jobs} jobs exited {finished.returncode}:\n{tail}")
    calls = summary.get("api_calls")
    return ReaperFigure(
        contender=contender,
        jobs=jobs,
        wall_seconds=finished.wall_seconds,
        cpu_seconds=finished.cpu_seconds,
        peak_rss_mib=finished.peak_rss_bytes / 2**20,
        api_calls=int(calls) if isinstance(calls, int | float) else None,
        server_counted_requests=served,
        jobs_left=left,
        returncode=finished.returncode,
    )


def measure_reaper(bench: Bench) -> list[ReaperFigure]:
    figures = []
    for jobs in bench.plan.reaper_sizes:
        for contender in CONTENDERS:
            figure = _run(bench, contender, jobs)
            bench.say(
                f"reap {contender:<8} {jobs:>6} jobs: {figure.wall_seconds:7.2f} s wall, "
                f"{figure.cpu_seconds:6.2f} s CPU, peak RSS {figure.peak_rss_mib:6.1f} MiB, "
                f"{figure.server_counted_requests} requests on jobs, {figure.jobs_left} left"
            )
            figures.append(figure)
    bench.cluster.delete_jobs(bench.namespace, SELECTOR)
    return figures
