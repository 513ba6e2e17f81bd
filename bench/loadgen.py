"""The load generator: a separate, cheap process that submits jobs from N threads.

Run by the harness, never by hand. It speaks JSON lines: after setting up it prints
``{"ready": true}``; then each command read from stdin (``{"concurrency": C,
"count": N}`` or ``{"concurrency": C, "seconds": S}``) runs one burst from C threads
and prints its result; end of input ends it. Between bursts it is idle, so the
harness can read the CPU time of whatever is being measured (the server, or this
process itself for the direct client) around exactly one burst. Each thread keeps
its own keep-alive connection from burst to burst.

Targets:
  http        jobfn's REST API:           POST /jobs {"definition", "arguments"}
  cloudevent  jobfn's CloudEvents door:   binary mode, ce-* headers, arguments as data
              (or any CloudEvents sink: Knative's JobSink; --token adds a bearer token)
  k8s-jobs    the predecessor's route:    POST /jobs {"job_definition_name", **arguments}
  direct      the official kubernetes client creating the rendered Job itself
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3

Sender = Callable[[int], None]
"""Submits job number ``n``; raises on anything but success."""

TARGETS = ("http", "cloudevent", "k8s-jobs", "direct")


@dataclass(frozen=True)
class BurstResult:
    """What one burst of submissions did, as the load generator saw it."""

    completed: int
    errors: int
    elapsed_seconds: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    first_error: str | None = None

    @property
    def per_second(self) -> float:
        return self.completed / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0


#: Below gunicorn's default keep-alive (2 s), which functions-framework keeps.
IDLE_RECONNECT_SECONDS = 1.0


class SubmissionFailed(Exception):
    """The target answered, but not with success."""


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when there are none)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _http_sender(url: str, body_for: Callable[[int], tuple[bytes, dict[str, str]]]) -> Sender:
    parts = urlsplit(url)

    def connect() -> urllib3.HTTPConnectionPool:
        # One keep-alive connection per thread; no retries, so every failure is counted.
        return urllib3.HTTPConnectionPool(parts.hostname or "127.0.0.1", parts.port, maxsize=1, retries=False)

    pool, last_answer = connect(), time.monotonic()
    path = parts.path or "/"

    def send(n: int) -> None:
        nonlocal pool, last_answer
        if time.monotonic() - last_answer > IDLE_RECONNECT_SECONDS:
            # gunicorn closes a connection idle for 2 s; a POST sent as that close arrives is
            # reset (CI saw it at a burst's start under load), which is the client's race, not
            # the server's failure. A thread idle since its last burst starts on a new one.
            pool.close()
            pool = connect()
        body, headers = body_for(n)
        response = pool.urlopen("POST", path, body=body, headers=headers, timeout=30.0)
        last_answer = time.monotonic()
        if not 200 <= response.status < 300:
            raise SubmissionFailed(f"HTTP {response.status}: {response.data[:300]!r}")

    return send


def sender_factory(options: argparse.Namespace) -> Callable[[int], Sender]:
    """A function that makes one thread's sender for the chosen target."""
    arguments = {"message": options.message}
    if options.target == "http":
        rest_body = json.dumps({"definition": options.definition, "arguments": arguments}).encode()
        headers = {"Content-Type": "application/json"}
        return lambda _thread: _http_sender(options.url, lambda _n: (rest_body, headers))
    if options.target == "k8s-jobs":
        legacy_body = json.dumps({"job_definition_name": options.definition, **arguments}).encode()
        headers = {"Content-Type": "application/json"}
        return lambda _thread: _http_sender(options.url, lambda _n: (legacy_body, headers))
    if options.target == "cloudevent":
        data = json.dumps(arguments).encode()
        run = f"{os.getpid()}-{time.time_ns()}"
        auth = {"Authorization": f"Bearer {options.token}"} if options.token else {}

        def event(thread: int) -> Sender:
            def body_for(n: int) -> tuple[bytes, dict[str, str]]:
                return data, {
                    "Content-Type": "application/json",
                    "ce-specversion": "1.0",
                    "ce-type": options.event_type,
                    "ce-source": "/jobfn/bench/loadgen",
                    "ce-id": f"{run}-{thread}-{n}",  # unique: every event is a new submission
                    **auth,
                }

            return _http_sender(options.url, body_for)

        return event
    return _direct_sender_factory(options)


def _direct_sender_factory(options: argparse.Namespace) -> Callable[[int], Sender]:
    """The official client, used as its documentation shows: a dict body, a V1Job back."""
    from kubernetes import client, config

    with open(options.job_file) as handle:
        job: dict[str, Any] = json.load(handle)
    configuration = client.Configuration()
    config.load_kube_config(config_file=options.kubeconfig, client_configuration=configuration)  # type: ignore[no-untyped-call]
    configuration.connection_pool_maxsize = options.max_concurrency
    batch = client.BatchV1Api(client.ApiClient(configuration))
    prefix = f"bench-direct-{os.getpid():x}-{time.time_ns() % 0xFFFFFF:x}"

    def per_thread(thread: int) -> Sender:
        def send(n: int) -> None:
            body = {**job, "metadata": {**job["metadata"], "name": f"{prefix}-{n:x}"}}
            batch.create_namespaced_job(options.namespace, body, _request_timeout=30.0)  # type: ignore[arg-type]

        return send

    return per_thread


def run_burst(
    senders: list[Sender], counter: itertools.count[int], count: int | None, seconds: float | None
) -> BurstResult:
    """Submit from every sender at once until ``count`` are sent or ``seconds`` have passed."""
    stop_at = time.perf_counter() + seconds if seconds is not None else None
    limit = count if count is not None else sys.maxsize
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    issued = itertools.count()

    def work(send: Sender) -> None:
        own: list[float] = []
        own_errors: list[str] = []
        while next(issued) < limit and (stop_at is None or time.perf_counter() < stop_at):
            n = next(counter)
            began = time.perf_counter()
            try:
                send(n)
            except Exception as error:
                own_errors.append(f"{type(error).__name__}: {str(error)[:300]}")
                continue
            own.append(time.perf_counter() - began)
        with lock:
            latencies.extend(own)
            errors.extend(own_errors)

    threads = [threading.Thread(target=work, args=(send,), daemon=True) for send in senders]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    latencies.sort()
    return BurstResult(
        completed=len(latencies),
        errors=len(errors),
        elapsed_seconds=elapsed,
        p50_ms=percentile(latencies, 0.50) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        mean_ms=(sum(latencies) / len(latencies) * 1000) if latencies else 0.0,
        first_error=errors[0] if errors else None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__)
    parser.add_argument("--target", choices=TARGETS, required=True)
    parser.add_argument("--max-concurrency", type=int, default=64, help="direct: connection pool size")
    parser.add_argument("--url", help="where to POST (http, cloudevent, k8s-jobs)")
    parser.add_argument("--definition", default="bench")
    parser.add_argument("--event-type", default="dev.jobfn.bench")
    parser.add_argument("--message", default="submitted by the jobfn benchmark")
    parser.add_argument("--token", help="cloudevent: a bearer token to send (Eventing's OIDC)")
    parser.add_argument("--namespace", help="direct: namespace to create in")
    parser.add_argument("--kubeconfig", help="direct: admin kubeconfig")
    parser.add_argument("--job-file", help="direct: the rendered Job, as JSON")
    options = parser.parse_args(argv)

    make_sender = sender_factory(options)
    senders: list[Sender] = []
    counter = itertools.count()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        concurrency = int(command["concurrency"])
        senders += [make_sender(thread) for thread in range(len(senders), concurrency)]
        result = run_burst(senders[:concurrency], counter, command.get("count"), command.get("seconds"))
        print(json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
