"""Real clients that submit jobs and retry the way production callers do, and the audit of what they made.

Each submission carries an idempotency key and is retried until it gets a 2xx answer:

* REST: ``POST /jobs`` with an ``Idempotency-Key`` header;
* CloudEvents, binary or structured mode (the ``cloudevents`` SDK), retried like a Knative
  broker: the same ``id`` and ``source`` on every delivery, exponential backoff, and a
  ``Retry-After`` honoured.

A 503 or 429 must carry ``Retry-After``; any other non-2xx answer (a 500, a 409, a 502)
is recorded as a bad answer. A connection error or a timeout (the function killed or
restarting) is retried with backoff. ``audit`` then lists the jobs in the cluster and
compares them with the submissions: every submission exactly one job, nothing else.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent
from kubernetes import client as k8s

from jobfn._contract import IDEMPOTENCY_KEY_ANNOTATION, MANAGED_BY_LABEL, keyed_job_name

DEFINITION = "echo"  # tests/data/definitions/e2e.yaml
EVENT_TYPE = "dev.jobfn.test.echo"
DOORS = ("rest", "binary", "structured")
RETRYABLE = (429, 503)
CONNECTION_FAILED = 0  # the status recorded when no HTTP answer came back


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff as a Knative broker's ``delivery`` (backoffPolicy: exponential)."""

    first_delay: float = 0.2
    max_delay: float = 5.0
    give_up_after: float = 180.0
    """Seconds after the first attempt when a submission is abandoned (then it counts as lost)."""
    request_timeout: float = 30.0
    """Longer than the function's own API timeout, so a slow API is answered 503, not cut off."""

    def delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.max_delay, self.first_delay * 2**attempt)
        return max(backoff, retry_after or 0.0)


@dataclass(frozen=True)
class Submission:
    """One job a client wants, identified by its idempotency key."""

    door: str
    index: int
    run: str

    @property
    def event_source(self) -> str:
        return f"/reliability/{self.run}"

    @property
    def event_id(self) -> str:
        return f"event-{self.index}"

    @property
    def key(self) -> str:
        """The key the function derives: the header as sent, or JSON of an event's (source, id)."""
        if self.door == "rest":
            return f"{self.run}-rest-{self.index}"
        return json.dumps([self.event_source, self.event_id], separators=(",", ":"))

    @property
    def job_name(self) -> str:
        return keyed_job_name(DEFINITION, self.key)

    @property
    def arguments(self) -> dict[str, Any]:
        return {"message": f"{self.run} {self.door} {self.index}"}


def submissions(run: str, count: int, doors: Iterable[str] = DOORS) -> list[Submission]:
    """``count`` submissions spread evenly over ``doors``."""
    cycle = itertools.cycle(tuple(doors))
    return [Submission(next(cycle), index, run) for index in range(count)]


def new_run_id() -> str:
    return uuid.uuid4().hex[:10]


@dataclass
class Outcome:
    """Every answer one submission got, the last one first to matter."""

    submission: Submission
    statuses: list[int] = field(default_factory=list)
    bad_answers: list[str] = field(default_factory=list)
    job_name: str | None = None
    job_uid: str | None = None
    started: float = 0.0
    answered_at: float | None = None
    """time.monotonic() of the 2xx answer."""

    @property
    def succeeded(self) -> bool:
        return self.job_name is not None

    @property
    def retries(self) -> int:
        return max(0, len(self.statuses) - 1)


def _request(submission: Submission, base_url: str) -> tuple[str, dict[str, str], bytes]:
    """URL, headers and body of one delivery: identical on every retry."""
    if submission.door == "rest":
        body = json.dumps({"definition": DEFINITION, "arguments": submission.arguments}).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": submission.key}
        return f"{base_url}/jobs", headers, body
    event = CloudEvent(
        {"type": EVENT_TYPE, "source": submission.event_source, "id": submission.event_id},
        submission.arguments,
    )
    convert = to_binary if submission.door == "binary" else to_structured
    headers, body = convert(event)
    return f"{base_url}/", dict(headers), body


def _answered_job(submission: Submission, response: requests.Response) -> tuple[str, str]:
    """(name, uid) of the job a 2xx answer names."""
    if submission.door == "rest":
        body = response.json()
        return body["name"], body["uid"]
    # The reply is a binary-mode CloudEvent: subject is the job's name, id its uid.
    return response.headers["ce-subject"], response.headers["ce-id"]


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


class Tally:
    """Counts shared by the client threads, readable while a burst runs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.answered = 0
        self.statuses: Counter[int] = Counter()

    def record(self, status: int, *, final: bool) -> None:
        with self._lock:
            self.statuses[status] += 1
            if final:
                self.answered += 1


def submit_until_answered(
    submission: Submission,
    base_url: str,
    session: requests.Session,
    policy: RetryPolicy,
    tally: Tally,
    cancelled: threading.Event | None = None,
) -> Outcome:
    """Deliver ``submission`` until a 2xx answer, ``policy.give_up_after`` or ``cancelled``."""
    cancelled = cancelled or threading.Event()
    outcome = Outcome(submission, started=time.monotonic())
    deadline = outcome.started + policy.give_up_after
    for attempt in itertools.count():
        url, headers, body = _request(submission, base_url)
        retry_after = None
        try:
            response = session.post(url, data=body, headers=headers, timeout=policy.request_timeout)
        except requests.RequestException:
            outcome.statuses.append(CONNECTION_FAILED)
            tally.record(CONNECTION_FAILED, final=False)
        else:
            status = response.status_code
            outcome.statuses.append(status)
            if 200 <= status < 300:
                outcome.job_name, outcome.job_uid = _answered_job(submission, response)
                outcome.answered_at = time.monotonic()
                tally.record(status, final=True)
                return outcome
            tally.record(status, final=False)
            retry_after = _retry_after(response)
            if status not in RETRYABLE:
                outcome.bad_answers.append(f"{status}: {response.text[:300]}")
            elif retry_after is None:
                outcome.bad_answers.append(f"{status} without Retry-After: {response.text[:300]}")
        delay = policy.delay(attempt, retry_after)
        if time.monotonic() + delay > deadline or cancelled.wait(delay):
            return outcome
    raise AssertionError("unreachable")


class Burst:
    """Many submissions delivered by ``workers`` threads in the background."""

    def __init__(
        self,
        base_url: str,
        wanted: list[Submission],
        *,
        workers: int = 16,
        policy: RetryPolicy | None = None,
        rate: float | None = None,
    ) -> None:
        """``rate``: at most this many first deliveries per second (None: as fast as the workers go)."""
        self._base_url = base_url
        self._rate = rate
        self._began = 0.0
        self.wanted = wanted
        self.policy = policy or RetryPolicy()
        self.tally = Tally()
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="client")
        self._futures: list[Future[Outcome]] = []
        self._cancelled = threading.Event()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _deliver(self, position: int, submission: Submission) -> Outcome:
        if self._rate:
            self._cancelled.wait(max(0.0, self._began + position / self._rate - time.monotonic()))
        return submit_until_answered(
            submission, self._base_url, self._session(), self.policy, self.tally, self._cancelled
        )

    def __enter__(self) -> Burst:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.cancel()  # a test failing mid-burst leaves no client retrying behind it

    def cancel(self) -> None:
        """Stop retrying and drop what has not started (harmless once the burst is over)."""
        self._cancelled.set()
        for future in self._futures:
            future.cancel()
        self._pool.shutdown(wait=True)

    def start(self) -> Burst:
        self._began = time.monotonic()
        self._futures = [
            self._pool.submit(self._deliver, position, submission)
            for position, submission in enumerate(self.wanted)
        ]
        return self

    @property
    def done(self) -> bool:
        return all(future.done() for future in self._futures)

    def wait(self) -> list[Outcome]:
        try:
            return [future.result() for future in self._futures]
        finally:
            self._pool.shutdown(wait=True)

    def wait_for_answers(self, count: int, timeout: float) -> int:
        """Until ``count`` submissions were answered 2xx; fails with what the clients saw so far."""
        deadline = time.monotonic() + timeout
        while self.answered < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{self.answered} of {count} answers after {timeout} s; answers so far: {self.tally.statuses}"
                )
            time.sleep(0.1)
        return self.answered

    @property
    def answered(self) -> int:
        """2xx answers so far; raises what a client thread crashed with, so a wait on it fails at once."""
        for future in self._futures:
            if future.done() and not future.cancelled() and future.exception() is not None:
                raise AssertionError("a client thread crashed") from future.exception()
        return self.tally.answered


# --- what the cluster holds afterwards --------------------------------------------------------
def signed_jobs(api_client: k8s.ApiClient, namespace: str, signature: str) -> list[dict[str, Any]]:
    """Every job of ``signature`` in ``namespace``, listed page by page with the signature selector."""
    batch = k8s.BatchV1Api(api_client)
    jobs: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"label_selector": f"{MANAGED_BY_LABEL}={signature}", "limit": 500}
        if token:
            kwargs["_continue"] = token
        page = json.loads(
            batch.list_namespaced_job(namespace, _preload_content=False, _request_timeout=30, **kwargs).data
        )
        jobs.extend(page["items"])
        token = page["metadata"].get("continue")
        if not token:
            return jobs


@dataclass
class Audit:
    """Submissions compared with the jobs that exist."""

    submissions: int
    answered_2xx: int
    jobs: int
    lost: list[str]
    """Submissions without their job."""
    duplicated: list[str]
    """Jobs beyond one per submission: a second job for a key, or a job for no submission."""
    answered_wrong: list[str]
    """2xx answers naming a job other than the submission's own (name or uid)."""
    unanswered: list[str]
    """Submissions that never got a 2xx answer."""
    bad_answers: list[str]
    """Non-2xx answers other than 503/429 with Retry-After."""
    statuses: Counter[int]
    retries: int

    def summary(self) -> str:
        seen = ", ".join(
            f"{status or 'no answer'}: {count}" for status, count in sorted(self.statuses.items())
        )
        return (
            f"{self.submissions} submissions, {self.answered_2xx} answered 2xx, {self.jobs} jobs, "
            f"{self.retries} retries, answers ({seen}), lost {len(self.lost)}, "
            f"duplicated {len(self.duplicated)}, wrongly answered {len(self.answered_wrong)}, "
            f"bad answers {len(self.bad_answers)}"
        )

    def assert_exactly_one_job_each(self) -> None:
        """Every submission answered 2xx and has exactly one job; no other answer than 503/429 + Retry-After."""
        problems = {
            "bad answers": self.bad_answers,
            "unanswered": self.unanswered,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "answered with another job": self.answered_wrong,
        }
        found = {what: items[:5] for what, items in problems.items() if items}
        assert not found, f"{self.summary()}\nfirst of each: {found}"
        assert self.jobs == self.submissions == self.answered_2xx, self.summary()


def audit(outcomes: list[Outcome], jobs: list[dict[str, Any]]) -> Audit:
    """Compare what the clients were told with the signed jobs that exist."""
    by_name = {job["metadata"]["name"]: job for job in jobs}
    expected = {outcome.submission.job_name: outcome.submission for outcome in outcomes}
    # Names are unique, so a second job for a key, or a job for no submission, has a name no key maps to.
    duplicated = [
        f"{name} (key {(job['metadata'].get('annotations') or {}).get(IDEMPOTENCY_KEY_ANNOTATION)!r})"
        for name, job in by_name.items()
        if name not in expected
    ]
    lost, answered_wrong = [], []
    for name, submission in expected.items():
        job = by_name.get(name)
        if job is None:
            lost.append(name)
        elif (job["metadata"].get("annotations") or {}).get(IDEMPOTENCY_KEY_ANNOTATION) != submission.key:
            answered_wrong.append(f"{name} does not carry the key {submission.key!r}")
    for outcome in outcomes:
        if not outcome.succeeded:
            continue
        job = by_name.get(outcome.submission.job_name)
        if outcome.job_name != outcome.submission.job_name or job is None:
            answered_wrong.append(f"{outcome.submission.key}: answered {outcome.job_name}")
        elif job["metadata"]["uid"] != outcome.job_uid:
            answered_wrong.append(
                f"{outcome.job_name}: answered uid {outcome.job_uid}, is {job['metadata']['uid']}"
            )
    statuses: Counter[int] = Counter(itertools.chain.from_iterable(o.statuses for o in outcomes))
    return Audit(
        submissions=len(outcomes),
        answered_2xx=sum(outcome.succeeded for outcome in outcomes),
        jobs=len(jobs),
        lost=lost,
        duplicated=duplicated,
        answered_wrong=answered_wrong,
        unanswered=[o.submission.key for o in outcomes if not o.succeeded],
        bad_answers=[f"{o.submission.key}: {answer}" for o in outcomes for answer in o.bad_answers],
        statuses=statuses,
        retries=sum(outcome.retries for outcome in outcomes),
    )
