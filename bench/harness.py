"""What a run measures (the plan) and what every measurement shares (the bench)."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .cluster import BenchCluster
from .processes import (
    Probe,
    Server,
    deployed_threads,
    free_port,
    function_argv,
    start_server,
    wait_until_ok,
)
from .workload import DEFINITION_NAME, MESSAGE, SIGNATURE, rendered_job, write_definitions


@dataclass(frozen=True)
class Plan:
    """How much of each measurement a run does."""

    name: str
    concurrencies: tuple[int, ...]
    phase_seconds: float
    """Time each contender submits at each concurrency, split over ``rounds`` bursts."""
    rounds: int
    warmup_per_thread: int
    """Submissions per load-generator thread before a burst (connections, caches), not counted."""
    cold_starts: int
    knative_cold_starts: int
    """Starts from zero of each Knative Service (the knative-coldstart part)."""
    reaper_sizes: tuple[int, ...]
    memory_early: int
    memory_late: int
    memory_concurrency: int
    scale_sizes: tuple[int, ...]
    """Finished jobs already in the namespace (fixtures kept between runs: bench/fixtures.py)."""
    scale_submissions: int
    """Submissions per definition and size, at c=1, split over ``rounds``."""
    scale_listings: int
    """Listing requests per kind, size and round."""
    scale_large_listings: int
    """Listing requests that select most of the largest namespace's jobs (slow by nature)."""


FULL = Plan(
    name="full",
    concurrencies=(1, 8, 32),
    phase_seconds=6.0,
    rounds=3,
    warmup_per_thread=3,
    cold_starts=10,
    # About 7 s a start (two namespaces in turn, each ~12 s from an answer to zero) plus 20-50 s
    # to make the Services: ~2 min, inside the full run's 20. Of 10 starts, p95 is the slowest.
    knative_cold_starts=10,
    # Deleting runs against kubectl, on jobs made for each run (10,000 takes ~4 min to make):
    # the reaper at 10,000 and 50,000 is measured by the scale part's passes over its fixtures.
    reaper_sizes=(1_000,),
    memory_early=100,
    memory_late=10_000,
    memory_concurrency=32,
    scale_sizes=(0, 10_000, 50_000),
    scale_submissions=300,
    scale_listings=5,
    scale_large_listings=1,
)
SMOKE = Plan(
    name="smoke",
    concurrencies=(1, 2),
    phase_seconds=0.5,
    rounds=2,
    warmup_per_thread=1,
    cold_starts=2,
    knative_cold_starts=2,
    reaper_sizes=(10, 20),
    memory_early=20,
    memory_late=100,
    memory_concurrency=2,
    scale_sizes=(0, 30),
    scale_submissions=4,
    scale_listings=2,
    scale_large_listings=1,
)

REST_PROBE = Probe(
    "POST",
    "/jobs",
    json.dumps({"definition": DEFINITION_NAME, "arguments": {"message": MESSAGE}}).encode(),
    {"Content-Type": "application/json"},
)
READY_PROBE = Probe("GET", "/readyz")


@dataclass
class Bench:
    """The cluster, namespace and files every measurement of one run uses."""

    plan: Plan
    cluster: BenchCluster
    namespace: str
    work_dir: Path
    jobfn_definitions: Path = field(init=False)
    k8s_jobs_definitions: Path = field(init=False)
    direct_job_file: Path = field(init=False)
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.jobfn_definitions, self.k8s_jobs_definitions = write_definitions(self.work_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.direct_job_file = self.work_dir / "direct-job.json"
        self.direct_job_file.write_text(json.dumps(rendered_job(self.namespace)))

    @property
    def log_dir(self) -> Path:
        return self.work_dir / "logs"

    @property
    def selector(self) -> str:
        return f"app.kubernetes.io/managed-by={SIGNATURE}"

    def say(self, message: str) -> None:
        print(f"[bench {time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)

    def server_env(self, signature: str = SIGNATURE) -> dict[str, str]:
        """What jobfn and k8s-jobs read from their environment."""
        return {
            "JOB_NAMESPACE": self.namespace,
            "JOB_SIGNATURE": signature,
            "KUBECONFIG": str(self.cluster.kubeconfig),
        }

    def function_env(self, namespace: str | None = None) -> dict[str, str]:
        return {
            **self.server_env(),
            "JOB_NAMESPACE": namespace or self.namespace,
            "JOB_DEFINITIONS_CONFIG_PATH": str(self.jobfn_definitions),
            "THREADS": deployed_threads(),
        }

    @staticmethod
    def hello_world_env() -> dict[str, str]:
        return {"THREADS": deployed_threads()}

    def forwarder_env(self) -> dict[str, str]:
        return {
            **self.server_env(),
            "FORWARDER_JOB_FILE": str(self.direct_job_file),
            "THREADS": deployed_threads(),
        }

    def start_function(self, name: str = "function", namespace: str | None = None) -> Server:
        """A fresh function process, answered /readyz."""
        port = free_port()
        server = start_server(name, function_argv(port), port, self.function_env(namespace), self.log_dir)
        try:
            wait_until_ok(server, READY_PROBE, timeout=60, interval=0.02)
        except BaseException:
            server.stop()
            raise
        return server

    def clean(self) -> None:
        """Delete every job the submission contenders created."""
        self.cluster.delete_jobs(self.namespace, self.selector)
