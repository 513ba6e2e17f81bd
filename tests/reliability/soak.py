"""The soak: the fault scenarios of the reliability tests, repeated for as long as many submissions take.

    python -m tests.reliability.soak        (make soak)

A fault cluster of its own (never the shared one) and one function; clients submit
through REST and CloudEvents (binary and structured), retrying as production callers
do, while faults follow each other: kube-apiserver stopped, etcd restarted,
kube-apiserver frozen, the function killed (SIGKILL) and stopped (SIGTERM), each
function restarted on the same port. At the end every submission must have exactly
one job. Settings, from the environment:

    SOAK_SUBMISSIONS          submissions in all (10000)
    SOAK_SECONDS              spread the first deliveries over at least this long (0: as fast as possible)
    SOAK_FAULT_EVERY_SECONDS  quiet time between two faults (15)
    SOAK_WORKERS              client threads (16)
    SOAK_KEEP_CLUSTER         1 keeps the fault cluster, its logs and the function's afterwards

Exit status 0 when nothing was lost or duplicated and every non-2xx answer was a
503 or 429 with Retry-After; 1 otherwise.
"""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.helpers import FUNCTION_SIGNATURE, FunctionServer, create_namespace, free_port
from tests.reliability.clients import Burst, RetryPolicy, audit, new_run_id, signed_jobs, submissions
from tests.reliability.faults import FaultCluster, free_port_block, outage, peak_rss_kib, start_fault_function

# With 16 clients and 16 threads, a cap of 12 requests at once makes the function shed load (429) too.
FUNCTION_ENV = {"THREADS": "16", "JOBFN_MAX_IN_FLIGHT": "12"}


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    try:
        return float(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number") from None


@dataclass
class Soak:
    """The cluster, the function under test (replaced when restarted) and what happened to them."""

    cluster: FaultCluster
    namespace: str
    directory: Path
    port: int
    function: FunctionServer | None = None
    faults: Counter[str] = field(default_factory=Counter)
    peak_rss_kib: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    failure: str | None = None

    def start_function(self) -> None:
        self.function = start_fault_function(
            self.cluster, self.namespace, self.directory, port=self.port, extra_env=FUNCTION_ENV
        )

    def sample_rss(self) -> None:
        if self.function is not None:
            self.peak_rss_kib = max(self.peak_rss_kib, peak_rss_kib(self.function))

    # --- the faults, each leaving everything running again -----------------------------------
    def apiserver_stopped(self) -> None:
        with outage(self.cluster, "kube-apiserver", 10):
            pass

    def etcd_restarted(self) -> None:
        with outage(self.cluster, "etcd", 5):
            pass

    def apiserver_frozen(self) -> None:
        self.cluster.pause("kube-apiserver")
        try:
            time.sleep(8)  # longer than the function's API timeout: hung requests are answered 503
        finally:
            self.cluster.resume("kube-apiserver")

    def function_killed(self) -> None:
        assert self.function is not None
        self.sample_rss()
        self.function.kill()
        self.start_function()

    def function_terminated(self) -> None:
        assert self.function is not None
        self.sample_rss()
        self.function.stop()
        self.start_function()

    def run_faults(self, every: float) -> None:
        """Fault after fault, ``every`` seconds apart, until ``stop`` is set."""
        faults: list[Callable[[], None]] = [
            self.apiserver_stopped,
            self.function_killed,
            self.etcd_restarted,
            self.function_terminated,
            self.apiserver_frozen,
        ]
        for fault in itertools.cycle(faults):
            if self.stop.wait(every):
                return
            began = time.monotonic()
            try:
                fault()
            except BaseException as error:  # the soak cannot go on: report it instead of hanging
                self.failure = f"{fault.__name__} failed: {error}"
                return
            self.faults[fault.__name__] += 1
            print(f"[soak] survived {fault.__name__} ({time.monotonic() - began:.1f}s)", file=sys.stderr)


def main() -> int:
    count = int(_env_number("SOAK_SUBMISSIONS", 10000))
    seconds = _env_number("SOAK_SECONDS", 0)
    every = _env_number("SOAK_FAULT_EVERY_SECONDS", 15)
    workers = int(_env_number("SOAK_WORKERS", 16))
    keep = os.environ.get("SOAK_KEEP_CLUSTER") == "1"

    directory = Path(tempfile.mkdtemp(prefix="jobfn-soak-"))
    cluster = FaultCluster(directory / "fault-cluster", free_port_block())
    print(f"[soak] starting the fault cluster in {cluster.state_dir}", file=sys.stderr)
    cluster.up()
    soak: Soak | None = None
    try:
        with cluster.api_client() as api:
            namespace = create_namespace(api, "soak", wait_for_service_account=False)
            function_dir = directory / "function"
            function_dir.mkdir()
            soak = Soak(cluster, namespace, function_dir, free_port())
            soak.start_function()
            chaos = threading.Thread(target=soak.run_faults, args=(every,), name="faults", daemon=True)
            began = time.monotonic()
            burst = Burst(
                f"http://127.0.0.1:{soak.port}",
                submissions(new_run_id(), count),
                workers=workers,
                policy=RetryPolicy(give_up_after=900),
                rate=count / seconds if seconds > 0 else None,
            ).start()
            chaos.start()
            while not burst.done:
                if soak.failure:
                    burst.cancel()
                    raise SystemExit(f"[soak] {soak.failure}")
                time.sleep(5)
                soak.sample_rss()
                print(f"[soak] {burst.answered} of {count} answered", file=sys.stderr)
            soak.stop.set()
            chaos.join()
            outcomes = burst.wait()
            elapsed = time.monotonic() - began
            soak.sample_rss()
            result = audit(outcomes, signed_jobs(api, namespace, FUNCTION_SIGNATURE))
    finally:
        if soak is not None and soak.function is not None:
            soak.function.stop()
        if keep:
            print(f"[soak] fault cluster kept in {cluster.state_dir}", file=sys.stderr)
        else:
            cluster.down()

    figures = {
        "submissions": result.submissions,
        "answered 2xx": result.answered_2xx,
        "429 seen": result.statuses[429],
        "503 seen": result.statuses[503],
        "no answer (connection failed)": result.statuses[0],
        "retries": result.retries,
        "outages survived": f"{sum(soak.faults.values())} ({', '.join(f'{k} {v}' for k, v in soak.faults.items())})",
        "jobs": result.jobs,
        "never answered 2xx": len(result.unanswered),
        "jobs lost": len(result.lost),
        "jobs duplicated": len(result.duplicated),
        "answered with another job": len(result.answered_wrong),
        "bad answers (not 2xx, 503 or 429 + Retry-After)": len(result.bad_answers),
        "peak RSS of the function": f"{soak.peak_rss_kib / 1024:.0f} MiB",
        "duration": f"{elapsed:.0f} s",
    }
    print()
    for name, value in figures.items():
        print(f"{name:>48}: {value}")
    try:
        result.assert_exactly_one_job_each()
    except AssertionError as failure:
        print(f"\nFAILED: {failure}\nthe function's log: {soak.directory / 'function.log'}")
        return 1
    if not keep:
        shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
