"""What the reaper's cluster tests share: definitions, job factories, ways to run a reaper, a sink.

No tests here. Jobs are created through a real JobManager; their pods are simulated
by KWOK (the jobfn.test/* annotations, see tests/cluster/README.md).
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloudevents.http import CloudEvent, from_http
from kubernetes import client as k8s

from jobfn._contract import JobSigner
from jobfn._definitions import JobDefinitions
from jobfn._kube import KubeApi
from jobfn._manager import JobManager
from jobfn._status import is_terminal
from jobfn._submission import Submission
from jobfn.reaper._archive import ArchiveSink, StdoutSink
from jobfn.reaper._reaping import Reaper, RunSummary, retention_policy
from tests.helpers import SIMULATED_NODE

ROOT = Path(__file__).resolve().parents[2]
SIGNATURE = "jobfn-reaper-test"
KEPT_A_DAY = 86400
#: ``spec.managedBy`` of jobs a test finishes itself: the Job controller leaves them alone.
FINISHED_BY_TEST = "jobfn.test/finished-by-test"


def write_final_status(batch: k8s.BatchV1Api, namespace: str, name: str, failed: bool = False) -> None:
    """Finish a ``FINISHED_BY_TEST`` job the way the Job controller would: Complete or Failed, now."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def condition(kind: str) -> dict[str, str]:
        reason = "BackoffLimitExceeded" if failed else "CompletionsReached"
        return {"type": kind, "status": "True", "reason": reason, "lastTransitionTime": now}

    if failed:
        outcome: dict[str, Any] = {
            "failed": 1,
            "conditions": [condition("FailureTarget"), condition("Failed")],
        }
    else:
        outcome = {
            "succeeded": 1,
            "completionTime": now,
            "conditions": [condition("SuccessCriteriaMet"), condition("Complete")],
        }
    batch.patch_namespaced_job_status(
        name, namespace, {"status": {"startTime": now, **outcome}}, _preload_content=False
    )


def _definition(name: str, retention: str = "") -> str:
    """A job whose pod, on a KWOK node, runs ``run_ms`` and exits with ``exit_code``."""
    return f"""
  - name: {name}
    {retention}
    parameters:
      run_ms: {{type: string, default: "20"}}
      exit_code: {{type: string, pattern: "^[0-9]{{1,3}}$", default: "0"}}
    template: |
      apiVersion: batch/v1
      kind: Job
      metadata: {{name: {name}}}
      spec:
        backoffLimit: 0
        template:
          metadata:
            annotations:
              jobfn.test/run-duration-ms: "{{{{ run_ms }}}}"
              jobfn.test/exit-code: "{{{{ exit_code }}}}"
          spec:
            nodeSelector: {json.dumps(SIMULATED_NODE["nodeSelector"])}
            tolerations: {json.dumps(SIMULATED_NODE["tolerations"])}
            restartPolicy: Never
            containers:
              - {{name: main, image: busybox, command: ["true"]}}
"""


DEFINITIONS_YAML = "definitions:" + (
    _definition("quick")  # kept only as long as the reaper's defaults say
    + _definition("kept", f"retention: {{succeeded: {KEPT_A_DAY}, failed: {KEPT_A_DAY}}}")  # a day, always
)


def definitions() -> JobDefinitions:
    return JobDefinitions.from_yaml(DEFINITIONS_YAML)


def job_manager(namespace: str, api_client: k8s.ApiClient, signature: str = SIGNATURE) -> JobManager:
    return JobManager(namespace, JobSigner(signature), definitions(), api=KubeApi(api_client))


def submit(manager: JobManager, definition: str = "quick", **arguments: Any) -> str:
    return manager.submit(Submission(definition, arguments)).name


def submit_many(
    manager: JobManager, count: int, definition: str = "quick", workers: int = 8, **arguments: Any
) -> list[str]:
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(lambda _: submit(manager, definition, **arguments), range(count)))


def wait_until_terminal(manager: JobManager, names: Sequence[str], timeout: float = 120) -> None:
    """Until every named job is Complete or Failed (one paginated list per poll)."""
    wanted = set(names)
    deadline = time.monotonic() + timeout
    while True:
        finished = {job["metadata"]["name"] for job in manager.fetch_jobs() if is_terminal(job)}
        if wanted <= finished:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{len(wanted - finished)} of {len(wanted)} jobs not finished after {timeout}s"
            )
        time.sleep(0.5)


def jobs_in(api_client: k8s.ApiClient, namespace: str) -> dict[str, dict[str, Any]]:
    """Every Job in the namespace, whoever made it, by name (read around jobfn)."""
    response = k8s.BatchV1Api(api_client).list_namespaced_job(namespace, _preload_content=False)
    return {job["metadata"]["name"]: job for job in json.loads(response.data)["items"]}


def annotations_of(job: dict[str, Any]) -> dict[str, str]:
    return dict(job["metadata"].get("annotations") or {})


# --- running a reaper ----------------------------------------------------------------------
def reap(
    namespace: str,
    api_client: k8s.ApiClient,
    *,
    succeeded: int = 0,
    failed: int = 0,
    sink: ArchiveSink | None = None,
    signature: str = SIGNATURE,
    **options: Any,
) -> tuple[RunSummary, list[dict[str, Any]]]:
    """One in-process run, as ``python -m reaper`` does it; the summary and the stdout records."""
    out = io.StringIO()
    manager = JobManager(namespace, JobSigner(signature), JobDefinitions(), api=KubeApi(api_client))
    policy = retention_policy(succeeded, failed, definitions())
    summary = Reaper(manager, policy, sink or StdoutSink(out), **options).run()
    return summary, [json.loads(line) for line in out.getvalue().splitlines()]


@dataclass
class CliRun:
    returncode: int
    summary: dict[str, Any]
    records: list[dict[str, Any]]
    stdout: str
    stderr: str
    max_rss_kib: int = 0


def reaper_env(namespace: str, definitions_path: Path | None = None, **extra: str) -> dict[str, str]:
    # Without PYTHONUNBUFFERED stdout is block-buffered, so the reaper's own flush is what is tested.
    dropped = ("JOBFN_", "K_SINK", "JOB_", "PYTHONUNBUFFERED")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env.update({"JOB_SIGNATURE": SIGNATURE, "JOB_NAMESPACE": namespace, "PYTHONPATH": str(ROOT)})
    if definitions_path is not None:
        env["JOB_DEFINITIONS_CONFIG_PATH"] = str(definitions_path)
    env.update(extra)
    return env


def start_cli(env: dict[str, str], *flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "jobfn.reaper", *flags],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def parse_cli_output(returncode: int, stdout: str, stderr: str) -> CliRun:
    """Split stdout into archive records and the final summary; every line must be JSON."""
    lines = [json.loads(line) for line in stdout.splitlines()]
    summary = lines[-1] if lines and "specversion" not in lines[-1] else {}
    records = [line for line in lines if "specversion" in line]
    if returncode != 2:  # a configuration error is one plain sentence for a person
        for line in stderr.splitlines():
            json.loads(line)  # logs are JSON too, and never on stdout
    return CliRun(returncode, summary, records, stdout, stderr)


def run_cli(env: dict[str, str], *flags: str, timeout: float = 180) -> CliRun:
    process = start_cli(env, *flags)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
    return parse_cli_output(process.returncode, stdout, stderr)


# --- a K_SINK -------------------------------------------------------------------------------
@dataclass
class SinkReceiver:
    """A real HTTP receiver: keeps every CloudEvent that arrives, answers ``status``."""

    url: str
    status: int = 202
    events: list[CloudEvent] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)  # each request's Authorization header


@contextlib.contextmanager
def sink_receiver(status: int = 202) -> Iterator[SinkReceiver]:
    state = SinkReceiver(url="", status=status)
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real broker

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            answer = state.status
            with lock:
                state.authorizations.append(self.headers.get("Authorization"))
            if 200 <= answer < 300:
                with lock:
                    state.events.append(from_http(dict(self.headers), body))
            self.send_response(answer)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
