"""The function as Knative scales it: from zero on a submission, back to zero when idle, one pod
for the whole concurrency target, and nothing lost or doubled when its pod goes mid-burst.

Every request goes through Traefik to deploy/'s cluster-local Knative Service, from inside
the cluster's network, as the function's callers do (tests/knative/services.py).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import requests

from jobfn._contract import IDEMPOTENCY_KEY_ANNOTATION
from tests.helpers import wait_for
from tests.knative.conftest import Deployed
from tests.knative.services import in_cluster_soon

IN_FLIGHT = 50  # deploy/base/function.yaml's autoscaling.knative.dev/target
RETRIED = frozenset({502, 503, 504})  # what a client retries with the same key (and 429, after Retry-After)


def test_a_submission_at_zero_starts_one_pod_makes_exactly_one_job_and_the_pod_goes_when_idle(
    deployed: Deployed,
) -> None:
    # No pod at all, draining ones included: a pod of the last start still draining could answer
    # (the activator may not have dropped it yet) and no pod would start. The cold CI run of
    # 2026-12-04 met that: 201, and no pod that was not already there before the request.
    deployed.wait_scaled_to_zero(timeout=180, drained=True)
    key = f"from-zero-{uuid.uuid4().hex}"

    began = time.monotonic()
    answer = deployed.submit("simulated", key=key, tag="from-zero")
    cold = time.monotonic() - began
    # Counted with those already terminating: on a loaded machine the autoscaler may have
    # chosen zero again by the time of the listing, and the pod that answered is then being
    # deleted (CI run 9).
    started = {pod["metadata"]["name"] for pod in deployed.function_pods(terminating=True)}
    idle = deployed.wait_scaled_to_zero()

    assert answer.status_code == 201, answer.text
    assert len(started) == 1, started
    [job] = [j for j in deployed.jobs("simulated") if j["metadata"]["name"] == answer.json()["name"]]
    assert job["metadata"]["annotations"][IDEMPOTENCY_KEY_ANNOTATION] == key
    print(f"\nfrom zero: 201 after {cold:.2f} s; back to zero {idle:.1f} s after the answer")


def test_fifty_requests_in_flight_are_served_by_one_pod(deployed: Deployed) -> None:
    """IN_FLIGHT clients, each sending its next submission as soon as the last is answered, for
    15 s: the pod has that many requests at once (the clients never wait on anything else),
    which is the revision's whole target, so the autoscaler keeps it at one pod. A client
    retries a 502/503/504 with its key, as clients of the function do; they are counted."""
    assert deployed.submit("simulated", key="in-flight").status_code in (200, 201)  # up, and the job exists
    # Its job's changes reach the function too (ApiServerSource): let them pass, so that the
    # clients' requests are all the pod has (one more in flight would ask for a second pod).
    deployed.kubectl("wait", "--for=condition=Complete", "-n", deployed.namespace, "--timeout=60s",
                     "job", "-l", "job_definition_name=simulated")  # fmt: skip
    time.sleep(5)
    stop = threading.Event()
    statuses: Counter[int] = Counter()
    retried: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        while not stop.is_set():
            answer = deployed.submit("simulated", key="in-flight")
            with lock:
                if answer.status_code in RETRIED:
                    retried.append(
                        f"{answer.status_code} from {answer.headers.get('Server')}: {answer.text[:200]}"
                    )
                else:
                    statuses[answer.status_code] += 1

    workers = [in_cluster_soon(client) for _ in range(IN_FLIGHT)]
    most_pods, began = 0, time.monotonic()
    while time.monotonic() - began < 15:
        most_pods = max(most_pods, deployed.desired_pods(), len(deployed.function_pods()))
        time.sleep(0.5)
    stop.set()
    for worker in workers:
        worker.result()
    seconds = time.monotonic() - began

    print(
        f"\n{IN_FLIGHT} clients: {sum(statuses.values())} answers in {seconds:.1f} s, {dict(statuses)}; "
        f"{len(retried)} retried: {Counter(r.split(':')[0] for r in retried)} {retried[:2]}"
    )
    assert set(statuses) == {200}  # every one a replay of the same key
    assert most_pods == 1
    keys = [j["metadata"]["annotations"].get(IDEMPOTENCY_KEY_ANNOTATION) for j in deployed.jobs("simulated")]
    assert keys.count("in-flight") == 1


BURST, CLIENTS = 300, 8


@dataclass
class Burst:
    """What the burst's clients saw: each key's final answer and when, and every retried failure."""

    answers: dict[str, tuple[int, float]] = field(default_factory=dict)
    retried: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _submit_until_answered(deployed: Deployed, key: str, burst: Burst) -> None:
    """A client that retries with its key until it has an answer that is not a failure of the path."""
    for attempt in range(40):
        try:
            answer = deployed.submit("simulated", key=key, tag="burst")
        except requests.RequestException as error:
            failure = type(error).__name__
        else:
            if answer.status_code not in RETRIED and answer.status_code != 429:
                with burst.lock:
                    burst.answers[key] = (answer.status_code, time.monotonic())
                return
            failure = str(answer.status_code)
        with burst.lock:
            burst.retried.append(failure)
        time.sleep(min(0.2 * 2**attempt, 2))
    raise AssertionError(f"{key}: no answer after 40 attempts")


def test_the_function_pod_deleted_mid_burst_loses_and_duplicates_nothing(deployed: Deployed) -> None:
    """CLIENTS clients submit BURST jobs, each with its own key; after a fifth are answered the
    function's pod is deleted (as a scale-down or an eviction does): Knative drains it while a
    new one starts, and every client ends with exactly one job for its key."""
    assert deployed.submit("simulated", key="warm").status_code in (200, 201)
    [pod] = deployed.function_pods()
    keys = [f"burst-{uuid.uuid4().hex}" for _ in range(BURST)]
    burst = Burst()

    def client(mine: list[str]) -> None:
        for key in mine:
            _submit_until_answered(deployed, key, burst)

    clients = [in_cluster_soon(lambda i=i: client(keys[i::CLIENTS])) for i in range(CLIENTS)]  # type: ignore[misc]
    wait_for(lambda: len(burst.answers) >= BURST // 5, timeout=120, interval=0.05, what="a fifth answered")
    deployed.kubectl("delete", "pod", "-n", deployed.namespace, pod["metadata"]["name"], "--wait=false")
    deleted = time.monotonic()
    for future in clients:
        future.result(timeout=600)

    statuses = Counter(status for status, _ in burst.answers.values())
    after = sum(1 for _, when in burst.answers.values() if when > deleted)
    keys_of_jobs = Counter(
        j["metadata"]["annotations"].get(IDEMPOTENCY_KEY_ANNOTATION, "") for j in deployed.jobs("simulated")
    )
    print(
        f"\nburst of {BURST} ({CLIENTS} clients), pod deleted after {BURST - after}: answers {dict(statuses)}, "
        f"{after} after the deletion; retried {dict(Counter(burst.retried))}"
    )
    assert set(statuses) <= {200, 201}
    assert after >= BURST // 2  # the deletion did happen mid-burst
    assert pod["metadata"]["name"] not in {p["metadata"]["name"] for p in deployed.function_pods()}
    assert {key: keys_of_jobs[key] for key in keys} == dict.fromkeys(keys, 1)
