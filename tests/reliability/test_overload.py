"""Overload: a burst far beyond the in-flight cap is shed at once with 429, and memory stays bounded.

The function runs with ``JOBFN_MAX_IN_FLIGHT=4`` and 16 threads, so the cap, not the
thread pool, decides. The slow request is a real one: AWS Batch DescribeJobs of 50
existing jobs (a read of each Job and of its pods, one after the other), sent by a
client on a slow link — its body arrives in two parts, ``PAUSE`` seconds apart — so
that it holds its slot for seconds however fast the machine is. A burst of 200 of them
(one in five a REST listing instead) arrives at once. Then:

- every request is answered, 200 or 429, none is lost or left waiting (nothing queues
  without bound: a request the cap refuses costs a thread for milliseconds);
- a 429 carries Retry-After, in the door's shape: TooManyRequestsException with
  x-amzn-ErrorType on /v1/* (which botocore retries as throttling), the REST error
  shape elsewhere;
- 429s are quick: their p99 latency is below half the median latency of the slow
  requests that were served;
- the worker's memory stays bounded at ten times the cap. Concretely, with ``cost`` the
  RSS one in-flight slow request adds (measured in the same run: the worker first
  serves one slow request alone, then ``cap`` at once; the peak growth of the second
  step, over cap - 1 requests, is the cost of each, since the first request's memory
  was already in the allocator's hands), the peak RSS of the burst (VmHWM, the kernel's
  own high-water mark, so no spike between samples is missed) must not exceed the RSS
  before the burst by more than ``10 x cap x cost``. Serving the 200 requests at once
  instead of shedding them would need about 200 x cost, five times that bound.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from kubernetes import client as k8s

from tests.helpers import FunctionServer
from tests.reliability.rawhttp import Answer, request_bytes, send_slowly, serve_e2e_function

CAP = 4
THREADS = 16
BURST = 200
REST_SHARE = 5  # every fifth request of the burst is a REST listing, the rest DescribeJobs
JOBS = 50
PAUSE = 2.0  # seconds between the two parts of a slow request's body


@pytest.fixture(scope="module")
def server(api_client: k8s.ApiClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionServer]:
    env = {"JOBFN_MAX_IN_FLIGHT": str(CAP), "THREADS": str(THREADS)}
    yield from serve_e2e_function(api_client, tmp_path_factory, "overload", env)


@pytest.fixture(scope="module")
def job_ids(server: FunctionServer) -> list[str]:
    """Jobs for DescribeJobs to read, submitted through the function by as many clients as the cap."""
    names: list[str] = []

    def submit(first: int) -> None:
        with requests.Session() as session:
            for number in range(first, JOBS, CAP):
                response = session.post(
                    f"{server.url}/jobs",
                    json={"definition": "echo", "arguments": {"message": f"job {number}"}},
                    timeout=60,
                )
                assert response.status_code == 201, response.text
                names.append(response.json()["name"])

    submitters = [threading.Thread(target=submit, args=(first,)) for first in range(CAP)]
    for submitter in submitters:
        submitter.start()
    for submitter in submitters:
        submitter.join(timeout=300)
    assert len(names) == JOBS
    return names


def worker_pid(server: FunctionServer) -> int:
    """The gunicorn worker serving requests (the one child of the master functions-framework runs)."""
    master = server.process.pid
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid``, in KiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


@dataclass
class Sampler:
    """Polls a process's VmRSS every few milliseconds while running; ``peak`` is the largest seen."""

    pid: int
    peak: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, memory_kib(self.pid)["VmRSS"])
            time.sleep(0.005)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def describe_jobs(job_ids: list[str]) -> bytes:
    body = ('{"jobs": [' + ", ".join(f'"{name}"' for name in job_ids) + "]}").encode()
    return request_bytes("POST", "/v1/describejobs", [("Content-Type", "application/json")], body)


LIST_JOBS = request_bytes("GET", "/jobs?limit=1000")


def at_once(server: FunctionServer, requests_: list[bytes], timeout: float = 180) -> list[Answer]:
    """Send every request at the same moment, each on its own connection and slowly; the answers in order."""
    answers: list[Answer | BaseException | None] = [None] * len(requests_)
    barrier = threading.Barrier(len(requests_))

    def send(index: int, data: bytes) -> None:
        try:
            barrier.wait(timeout=60)
            # The body's last bytes come late; a request without a body is sent whole.
            answers[index] = send_slowly(
                server.url, data, len(data) - min(10, body_length(data)), PAUSE, timeout
            )
        except BaseException as error:  # recorded, and reported below with its index
            answers[index] = error

    threads = [threading.Thread(target=send, args=(i, data), daemon=True) for i, data in enumerate(requests_)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout + 60)
    failed = [(i, answer) for i, answer in enumerate(answers) if not isinstance(answer, Answer)]
    assert not failed, f"{len(failed)} requests got no answer, e.g. {failed[:3]}"
    return [answer for answer in answers if isinstance(answer, Answer)]


def body_length(data: bytes) -> int:
    return len(data) - data.index(b"\r\n\r\n") - 4


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def test_burst_beyond_the_cap_is_shed_quickly_with_429_and_memory_stays_bounded(
    server: FunctionServer, job_ids: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    pid = worker_pid(server)
    slow = describe_jobs(job_ids)
    one = send_slowly(
        server.url, slow, len(slow) - 10, PAUSE, timeout=180
    )  # warm: client, connection pool, every import on this path
    assert one.status == 200 and len(one.json()["jobs"]) == JOBS, one.text[:300]
    idle = memory_kib(pid)["VmRSS"]

    with Sampler(pid) as at_cap:  # exactly the cap at once: all served
        served = at_once(server, [slow] * CAP)
    assert [a.status for a in served] == [200] * CAP, [a.text[:200] for a in served]
    cost = max(at_cap.peak - idle, 0) / (CAP - 1)
    before_burst = memory_kib(pid)["VmRSS"]

    burst = [LIST_JOBS if i % REST_SHARE == 0 else slow for i in range(BURST)]
    started = time.monotonic()
    with Sampler(pid) as during:
        answers = at_once(server, burst)
    burst_seconds = time.monotonic() - started
    peak = max(memory_kib(pid)["VmHWM"], during.peak)

    statuses = [a.status for a in answers]
    served_slow = [
        a.seconds for a, data in zip(answers, burst, strict=True) if a.status == 200 and data is slow
    ]
    shed = [a for a in answers if a.status == 429]
    shed_seconds = [a.seconds for a in shed] or [float("nan")]  # nan: none shed (reported, then failed)
    bound = 10 * CAP * cost
    summary = (
        f"burst of {BURST} ({BURST - BURST // REST_SHARE} DescribeJobs of {JOBS} jobs, {BURST // REST_SHARE} REST "
        f"listings), cap {CAP}, {THREADS} threads: {statuses.count(200)} served, {len(shed)} answered 429, "
        f"all answered in {burst_seconds:.1f} s; 429 latency p50 {statistics.median(shed_seconds) * 1000:.0f} ms "
        f"p99 {percentile(shed_seconds, 0.99) * 1000:.0f} ms; slow requests served alone {one.seconds * 1000:.0f} ms, "
        f"in the burst p50 {statistics.median(served_slow) * 1000:.0f} ms (n={len(served_slow)}); RSS idle "
        f"{idle / 1024:.1f} MiB, cost of one in-flight DescribeJobs {cost / 1024:.2f} MiB, before the burst "
        f"{before_burst / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB (growth {(peak - before_burst) / 1024:.1f} MiB, "
        f"bound 10 x {CAP} x cost = {bound / 1024:.1f} MiB)"
    )
    with capsys.disabled():
        print("\n" + summary)

    assert set(statuses) <= {200, 429}, summary
    assert len(shed) >= BURST - 4 * CAP * 4, summary  # a handful served as slots free up; the rest shed
    assert statuses.count(200) > 0, summary
    for answer, data in zip(answers, burst, strict=True):
        if answer.status == 429:
            assert_throttled(answer, aws=data is slow)
    assert percentile(shed_seconds, 0.99) < statistics.median(served_slow) / 2, summary
    assert cost > 0, summary
    assert peak - before_burst <= bound, summary


def assert_throttled(answer: Answer, aws: bool) -> None:
    assert int(answer.headers["retry-after"]) >= 1
    body = answer.json()
    if aws:
        assert answer.headers["x-amzn-errortype"] == "TooManyRequestsException", (answer.headers, body)
        assert body["__type"] == "TooManyRequestsException"
        assert f"already serving {CAP} requests" in body["message"]
    else:
        assert body["error"]["code"] == "TooManyRequests"
        assert body["error"]["request_id"] == answer.headers["x-request-id"]
