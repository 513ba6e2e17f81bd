"""``python -m bench``: measure jobfn beside the raw API and k8s-jobs, print the table, write JSON.

Every measurement runs in this one process's run, against the same cluster, so the
figures that matter are ratios, which survive a noisy machine. ``--smoke`` runs every
measurement with tiny counts, to prove the harness works, not to measure.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import __version__ as kubernetes_client_version
from kubernetes import client

from . import fixtures, report
from .cluster import BenchCluster
from .coldstart import measure_cold_start
from .harness import FULL, SMOKE, Bench
from .jobsink import measure_jobsink
from .knative_coldstart import measure_knative_cold_start
from .memory import measure_memory
from .processes import compile_like_the_images
from .reaper import measure_reaper
from .scale import measure_scale
from .submission import measure_submission

PARTS = ("submission", "coldstart", "memory", "scale", "reaper", "jobsink", "knative-coldstart")
#: Parts that install Knative into the cluster (tests/knative) and take minutes whatever the
#: counts: in the full run, not in the smoke run the test suite makes (ask with --only).
KNATIVE_PARTS = ("jobsink", "knative-coldstart")
#: What runs each part, and the field of report.Results its figures go to.
MEASURES: dict[str, tuple[str, Callable[[Bench], object]]] = {
    "submission": ("submission", measure_submission),
    "coldstart": ("cold_start", measure_cold_start),
    "memory": ("memory", measure_memory),
    "scale": ("scale", measure_scale),
    "reaper": ("reaper", measure_reaper),
    "jobsink": ("jobsink", measure_jobsink),
    "knative-coldstart": ("knative_cold_start", measure_knative_cold_start),
}
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _git_commit() -> str:
    result = subprocess.run(
        ["git", "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent,
    )
    return result.stdout.strip() or "unknown"


def _server_version(cluster: BenchCluster) -> str:
    try:
        version = str(client.VersionApi(cluster.api).get_code().git_version)
    except Exception:
        version = "unknown"
    if version.startswith("v0.0.0"):
        # Built from source without version stamping: the local cluster's build names it.
        from tests.cluster import localcluster

        version = localcluster.bin_dir().name.split("-etcd-")[0].removeprefix("k8s-")
    return version


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny counts: proves the harness, measures nothing"
    )
    parser.add_argument(
        "--only",
        help=f"comma-separated parts to run (default: all of {','.join(PARTS)}; "
        f"with --smoke, all but {','.join(KNATIVE_PARTS)})",
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS_DIR, help="directory for the JSON and the table"
    )
    parser.add_argument("--namespace", help="namespace jobs are created in (default: jobfn-bench[-smoke])")
    parser.add_argument(
        "--reaper-sizes",
        help="comma-separated job counts for the reaper part (default: the plan's, 1000,10000)",
    )
    parser.add_argument(
        "--keep-fixtures",
        action="store_true",
        help="keep the scale part's fixture namespaces for the next run (deleted by default: "
        "60,000 Jobs weigh on the shared cluster; Knative's eventing webhook, which caches "
        "Jobs for SinkBindings, ran out of memory beside them)",
    )
    parser.add_argument(
        "--drop-fixtures",
        action="store_true",
        help="delete the kept fixture namespaces (thousands of finished jobs) and exit",
    )
    options = parser.parse_args(argv)
    if options.only is None:
        default = [part for part in PARTS if not (options.smoke and part in KNATIVE_PARTS)]
        options.only = ",".join(default)
    parts = [part.strip() for part in options.only.split(",") if part.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    plan = SMOKE if options.smoke else FULL
    if options.reaper_sizes:
        sizes = tuple(int(size) for size in options.reaper_sizes.split(","))
        plan = dataclasses.replace(plan, reaper_sizes=sizes)
    namespace = options.namespace or ("jobfn-bench-smoke" if options.smoke else "jobfn-bench")

    started, load_before = time.monotonic(), _load()
    cluster = BenchCluster.connect()
    if options.drop_fixtures:
        fixtures.drop_all(cluster, lambda message: print(message, file=sys.stderr))
        return 0
    cluster.ensure_namespace(namespace)
    work_dir = options.output / f"run-{plan.name}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
    bench = Bench(plan, cluster, namespace, work_dir)
    bench.say(f"{plan.name} run in namespace {namespace}; logs in {bench.log_dir}")

    meta: dict[str, Any] = {
        "plan": plan.name,
        "command": "python -m bench " + shlex.join(sys.argv[1:] if argv is None else argv),
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "commit": _git_commit(),
        "python": sys.version.split()[0],
        "kubernetes_client": kubernetes_client_version,
        "server_version": _server_version(cluster),
        "namespace": namespace,
    }
    results = report.Results(meta)
    compile_like_the_images()  # every part measures the function as its image runs it
    try:
        bench.clean()
        for part in PARTS:  # in this order, whatever the order asked
            if part in parts:
                bench.say(f"{part} ...")
                attribute, measure = MEASURES[part]
                setattr(results, attribute, measure(bench))
    finally:
        bench.clean()
        if "scale" in parts and not options.keep_fixtures:
            fixtures.drop_all(cluster, bench.say)
    meta["load_after"] = _load()
    meta["duration_seconds"] = time.monotonic() - started
    meta["finished"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = report.write(results, options.output)
    print(report.as_table(results), end="")
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
