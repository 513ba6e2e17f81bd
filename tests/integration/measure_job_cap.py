"""What a capped submission costs with 0 and with N jobs of its definition kept (on KWOK nodes).

    python -m tests.integration.measure_job_cap [--jobs 3000] [--rounds 20]

Prints, at 0 and at N kept jobs: the median time and the API requests of a submission to a
capped definition, of its place in the cap alone (the Lease, function/_job_cap.py; taken
and given back), and of the count the cap made before (one listing of every job of the
definition, kept ones too). Runs against
the local cluster in a namespace of its own, deleted afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from kubernetes import client, config

from jobfn._contract import JobSigner
from jobfn._kube import KubeApi
from jobfn._manager import JobManager
from jobfn._status import is_terminal
from jobfn._submission import Submission
from tests.cluster import localcluster
from tests.helpers import create_namespace
from tests.integration.test_job_cap import _definitions

SIGNATURE = "jobfn-cap-measure"


def _timed(action: Callable[[], object], sent: list[tuple[str, str]], rounds: int) -> tuple[float, float]:
    """Median milliseconds of ``action`` and the API requests it sent per call."""
    sent.clear()
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), len(sent) / rounds


def take_and_give_back(manager: JobManager) -> None:
    """The cap's own part of a submission: a place taken (then given back, to leave no trace)."""
    manager.caps.take("capped", "measure-place", 100_000)
    manager.caps.give_back("capped", "measure-place")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    api_client = config.new_client_from_config(config_file=str(localcluster.ensure_running()))
    namespace = create_namespace(api_client, "measure-job-cap")
    try:
        api = KubeApi(api_client)
        sent: list[tuple[str, str]] = []
        api.on_request.append(lambda method, path: sent.append((method, path)))
        signer = JobSigner(SIGNATURE)
        # A cap no round reaches, so every submission takes a free place (the usual case).
        capped = JobManager(namespace, signer, _definitions(100_000), api=api)
        uncapped = JobManager(namespace, signer, _definitions(None), api=KubeApi(api_client))
        capped.submit(Submission("capped", {"run_ms": "10"}))  # the Lease's first use

        def old_count() -> int:
            return sum(1 for job in capped.store.jobs("capped") if not is_terminal(job))

        rows = []
        for kept in (0, args.jobs):
            missing = kept - sum(1 for _ in capped.store.jobs("capped"))
            with ThreadPoolExecutor(16) as pool:
                list(
                    pool.map(
                        lambda _: uncapped.submit(Submission("capped", {"run_ms": "10"})),
                        range(max(0, missing)),
                    )
                )
            while old_count() > 0:  # measured once the Job controller and KWOK are done with them
                time.sleep(2)
            total = sum(1 for _ in capped.store.jobs("capped"))
            new = _timed(lambda: capped.submit(Submission("capped", {"run_ms": "10"})), sent, args.rounds)
            place = _timed(lambda: take_and_give_back(capped), sent, args.rounds)
            old = _timed(old_count, sent, args.rounds)
            rows.append((total, new, place, old))
        print(f"{'jobs kept':>10} {'submission':>16} {'its place':>16} {'old count':>16}")
        for total, *measured in rows:
            print(f"{total:>10} " + " ".join(f"{ms:>7.1f} ms {n:>3.0f} req" for ms, n in measured))
    finally:
        client.CoreV1Api(api_client).delete_namespace(namespace, propagation_policy="Background")


if __name__ == "__main__":
    main()
