"""One reaper run: stream the signature's jobs, mark the finished ones, archive and delete the due.

The decisions (what to mark, with which time, what is due) are ``jobfn._retention``'s;
this module only sequences the API calls and counts what happened. Every write
carries a precondition, so a second reaper, a user's hold or a newer job reusing a
name makes the write fail harmlessly (counted as skipped) instead of doing damage.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import Any, Literal

from cloudevents.http import CloudEvent

from jobfn._definitions import JobDefinition
from jobfn._errors import JobfnError
from jobfn._manager import JobManager
from jobfn._retention import KEEP, RetentionPolicy, Verdict, decide
from jobfn._state_events import announced_patch, state_change, unannounced_state
from jobfn._status import job_view
from jobfn._store import Job

from ._archive import ArchiveSink, archive_event, archive_record

logger = logging.getLogger(__name__)

STOPPED_BY_TIME_BUDGET = "time_budget"
STOPPED_BY_MAX_DELETIONS = "max_deletions"
Outcome = Literal["seen", "marked", "deleted", "archived", "errors", "skipped", "announced"]


class RequestCounter:
    """A boundary hook (``KubeApi.on_request``) counting the API requests a run makes."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, method: str, path: str) -> None:
        with self._lock:
            self.count += 1


@dataclass
class RunSummary:
    """What one run did; printed as the last line on stdout."""

    seen: int = 0
    """Jobs listed."""
    marked: int = 0
    """Deletion times written (dry run: that would be written)."""
    deleted: int = 0
    """Jobs deleted (dry run: that would be deleted)."""
    archived: int = 0
    """Archive records accepted by the sink."""
    errors: int = 0
    """Failures: API errors, records the sink refused (those jobs are kept)."""
    skipped: int = 0
    """Writes that lost to a concurrent change (another reaper, a user, a reused name)."""
    announced: int = 0
    """State-change events sent (with ``state_events``)."""
    released: int = 0
    """Jobs whose dependencies all succeeded, started (not in a dry run)."""
    dependency_failed: int = 0
    """Jobs failed because a dependency failed or is gone (not in a dry run)."""
    decided: int = 0
    """Pods waiting in their gate given a decision: run or exit (not in a dry run)."""
    duration_seconds: float = 0.0
    api_calls: int = 0
    """Kubernetes API requests made."""
    dry_run: bool = False
    stopped: str | None = None
    """Why the run stopped before the end of the list (``time_budget``, ``max_deletions``)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def retention_policy(
    succeeded_seconds: int, failed_seconds: int, definitions: Iterable[JobDefinition] = ()
) -> RetentionPolicy:
    """The defaults, overridden by each definition's own ``retention``."""
    return RetentionPolicy(
        succeeded_seconds=succeeded_seconds,
        failed_seconds=failed_seconds,
        per_definition={definition.name: definition.retention for definition in definitions},
    )


class _Run:
    """The state one run shares between its workers: the counts and the deletions in flight."""

    def __init__(self, dry_run: bool, max_deletions: int | None) -> None:
        self.summary = RunSummary(dry_run=dry_run)
        self._lock = threading.Lock()
        self._max_deletions = max_deletions
        self._deletions = 0  # done or in flight
        self.deletion_refused = False  # a due job was left because of the cap

    def count(self, outcome: Outcome) -> None:
        with self._lock:
            setattr(self.summary, outcome, getattr(self.summary, outcome) + 1)

    def take_deletion(self) -> bool:
        """Whether one more deletion fits under the cap (then it is reserved)."""
        with self._lock:
            if self._max_deletions is not None and self._deletions >= self._max_deletions:
                self.deletion_refused = True
                return False
            self._deletions += 1
            return True

    def give_back_deletion(self) -> None:
        with self._lock:
            self._deletions -= 1

    @property
    def deletions_capped(self) -> bool:
        with self._lock:
            return self._max_deletions is not None and self._deletions >= self._max_deletions


class Reaper:
    """Runs one pass over the jobs of ``manager``'s signature and namespace.

    Jobs are handed to ``workers`` threads as the list streams in; at most twice as
    many as there are workers wait, so memory stays one page plus a few jobs.
    """

    def __init__(
        self,
        manager: JobManager,
        policy: RetentionPolicy,
        sink: ArchiveSink,
        *,
        dry_run: bool = False,
        max_deletions: int | None = None,
        time_budget_seconds: float | None = None,
        page_size: int = 500,
        workers: int = 4,
        clock: Callable[[], float] = time.time,
        state_events: bool = False,
    ) -> None:
        self.manager = manager
        self.requests = RequestCounter()
        manager.store.api.on_request.append(self.requests)
        self.policy = policy
        self.sink = sink
        self.dry_run = dry_run
        self.max_deletions = max_deletions
        self.time_budget_seconds = time_budget_seconds
        self.page_size = page_size
        self.workers = workers
        self.clock = clock
        self.state_events = state_events
        """Send each job's state change to the sink before acting on it (``_state_events``)."""

    def run(self) -> RunSummary:
        started = time.monotonic()
        calls_before = self.requests.count
        run = _Run(self.dry_run, self.max_deletions)
        if not self.dry_run:
            self._settle_dependencies(run)
            self._decide_gates(run)
        pages = self.manager.store.pages(page_size=self.page_size)
        with (
            ThreadPoolExecutor(self.workers, thread_name_prefix="reaper") as pool,
            ThreadPoolExecutor(1, thread_name_prefix="reaper-list") as lister,
        ):
            workers = _BoundedPool(pool, 2 * self.workers)
            # The next page is listed while the workers delete this one's jobs.
            upcoming = lister.submit(next, pages, None)
            while run.summary.stopped is None:
                try:
                    page = upcoming.result()
                except JobfnError as error:
                    # A failed list ends the run: the rest is unknown; the next run resumes.
                    run.count("errors")
                    logger.error("listing jobs failed: %s", error.message, extra={"error": error.code})
                    break
                if page is None:
                    break
                upcoming = lister.submit(next, pages, None)
                self._reap_page(page, run, workers, started)
        summary = run.summary
        if summary.stopped is None and run.deletion_refused:
            summary.stopped = STOPPED_BY_MAX_DELETIONS  # the list ended, but due jobs were left
        summary.duration_seconds = round(time.monotonic() - started, 3)
        summary.api_calls = self.requests.count - calls_before
        return summary

    def _settle_dependencies(self, run: _Run) -> None:
        """First, start or fail the jobs waiting for dependencies that finished: the level-triggered
        half of ``_dependencies`` (it lists only waiting jobs)."""
        try:
            outcomes = self.manager.settle_waiting_jobs()
        except JobfnError as error:
            run.count("errors")
            logger.error("settling dependencies failed: %s", error.message, extra={"error": error.code})
            return
        run.summary.released += outcomes["released"]
        run.summary.dependency_failed += outcomes["failed"]
        run.summary.skipped += outcomes["skipped"]

    def _decide_gates(self, run: _Run) -> None:
        """Decide the pods waiting in their gate: retries under rules the Job controller cannot run,
        N_TO_N children (``_decisions``; it lists only waiting pods)."""
        try:
            outcomes = self.manager.decide_waiting_pods()
        except JobfnError as error:
            run.count("errors")
            logger.error("deciding waiting pods failed: %s", error.message, extra={"error": error.code})
            return
        run.summary.decided += outcomes["run"] + outcomes["exit"]
        run.summary.skipped += outcomes["skipped"]

    def _reap_page(self, page: list[Job], run: _Run, workers: _BoundedPool, started: float) -> None:
        """Mark what needs a time, then archive and delete the page's due jobs."""
        due: list[Job] = []
        announcing: list[tuple[Job, Verdict]] = []
        for job in page:
            budget = self.time_budget_seconds
            if budget is not None and time.monotonic() - started >= budget:
                run.summary.stopped = STOPPED_BY_TIME_BUDGET
                break
            if run.deletions_capped:
                run.summary.stopped = STOPPED_BY_MAX_DELETIONS
                break
            run.count("seen")
            verdict = self._verdict(job)
            if self.state_events and not self.dry_run and self._unannounced(job):
                announcing.append((job, verdict))
            elif verdict.action == "mark" and verdict.deletion_time is not None:
                workers.submit(self._guarded(self._mark, run), job, verdict.deletion_time, run)
            elif verdict.action == "delete" and run.take_deletion():
                due.append(job)
        if announcing:
            self._announce_page(announcing, run, workers)
        if not due:
            return
        if self.dry_run:
            for job in due:
                run.count("deleted")
                logger.info("would archive and delete job", extra=_job_fields(job))
            return
        try:
            pods = self.manager.store.pods_of(due)
        except JobfnError as error:  # no record, no delete: the next run tries again
            for _ in due:
                run.count("errors")
                run.give_back_deletion()
            logger.error(
                "listing pods failed; %d job(s) kept: %s",
                len(due),
                error.message,
                extra={"error": error.code},
            )
            return
        for job in due:
            pods_of_job = pods.get(job["metadata"]["uid"], [])
            workers.submit(self._guarded(self._archive_and_delete, run), job, pods_of_job, run)

    def _unannounced(self, job: Job) -> bool:
        return self.manager.signer.is_signed(job) and unannounced_state(job_view(job)) is not None

    def _announce_page(self, announcing: list[tuple[Job, Verdict]], run: _Run, workers: _BoundedPool) -> None:
        """Send the state changes of a page's jobs, then mark, delete or record each as usual."""
        try:
            pods = self.manager.store.pods_of([job for job, _ in announcing])  # attempts, exit codes
        except JobfnError as error:  # nothing sent, nothing recorded: the next run tries again
            run.count("errors")
            logger.error(
                "listing pods failed; states not announced: %s", error.message, extra={"error": error.code}
            )
            return
        for job, verdict in announcing:
            workers.submit(
                self._guarded(self._announce, run), job, verdict, pods.get(job["metadata"]["uid"], []), run
            )

    def _announce(self, job: Job, verdict: Verdict, pods: list[Job], run: _Run) -> None:
        view = job_view(job, pods)
        attributes, data = state_change(view, self.manager.namespace)
        try:
            self.sink.emit(CloudEvent(attributes, data))
        except JobfnError as error:
            run.count("errors")
            logger.error(
                "sending a state change failed: %s",
                error.message,
                extra={**_job_fields(job), "error": error.code},
            )
            return
        run.count("announced")
        # Recorded with what the run does anyway: one write per job, never two racing.
        if verdict.action == "mark" and verdict.deletion_time is not None:
            self._mark(
                job, verdict.deletion_time, run, also=announced_patch(view.state)["metadata"]["annotations"]
            )
        elif verdict.action == "delete" and run.take_deletion():
            self._archive_and_delete(job, pods, run)
        elif self.manager.record_announced_state(job, view.state) is None:
            run.count("skipped")  # changed since listed: the next run announces what it is then

    def _verdict(self, job: Job) -> Verdict:
        metadata = job.get("metadata") or {}
        if not self.manager.signer.is_signed(job) or metadata.get("deletionTimestamp"):
            return KEEP  # not ours (the selector already says so), or already on its way out
        return decide(job, self.policy, self.clock())

    @staticmethod
    def _guarded(work: Callable[..., object], run: _Run) -> Callable[..., None]:
        """``work`` for a worker thread: a bug must not stop the other jobs; it fails the run."""

        def guarded(job: Job, *args: Any) -> None:
            try:
                work(job, *args)
            except Exception:
                run.count("errors")
                logger.exception("unexpected failure", extra=_job_fields(job))

        return guarded

    def _mark(self, job: Job, planned: int, run: _Run, also: Mapping[str, str] | None = None) -> None:
        fields = _job_fields(job, deletion_time=planned)
        if self.dry_run:
            run.count("marked")
            logger.info("would mark job", extra=fields)
            return
        try:
            marked = self.manager.mark_deletion_time(job, planned, also)
        except JobfnError as error:
            run.count("errors")
            logger.error("marking failed: %s", error.message, extra={**fields, "error": error.code})
            return
        if marked is None:
            run.count("skipped")  # changed since listed: a user's hold, another reaper, a new job
            logger.info("job changed since it was listed; not marked", extra=fields)
            return
        run.count("marked")
        logger.debug("marked job", extra=fields)

    def _archive_and_delete(self, job: Job, pods: list[Job], run: _Run) -> None:
        if not self._archived_and_deleted(job, pods, run):
            run.give_back_deletion()

    def _archived_and_deleted(self, job: Job, pods: list[Job], run: _Run) -> bool:
        fields = _job_fields(job)
        try:
            self.sink.emit(archive_event(archive_record(job, pods), self.manager.namespace))
        except JobfnError as error:  # ArchiveError included
            run.count("errors")  # no record, no delete: the next run tries again
            logger.error(
                "archiving failed; job kept: %s", error.message, extra={**fields, "error": error.code}
            )
            return False
        run.count("archived")
        try:
            deleted = self.manager.delete_job(job)
        except JobfnError as error:
            run.count("errors")
            logger.error("deleting failed: %s", error.message, extra={**fields, "error": error.code})
            return False
        if not deleted:
            run.count("skipped")
            logger.info("job gone or changed since it was read; not deleted", extra=fields)
            return False
        run.count("deleted")
        logger.debug("deleted job", extra=fields)
        return True


class _BoundedPool:
    """Hands work to a thread pool, waiting while ``limit`` items are pending.

    Memory stays one page plus a few jobs however long the list is.
    """

    def __init__(self, pool: ThreadPoolExecutor, limit: int) -> None:
        self._pool = pool
        self._limit = limit
        self._pending: set[Future[None]] = set()

    def submit(self, work: Callable[..., None], *args: Any) -> None:
        self._pending.add(self._pool.submit(work, *args))
        if len(self._pending) >= self._limit:
            _, self._pending = wait(self._pending, return_when=FIRST_COMPLETED)


def _job_fields(job: Mapping[str, Any], **more: Any) -> dict[str, Any]:
    metadata = job.get("metadata") or {}
    return {"job": metadata.get("name", ""), "uid": metadata.get("uid", ""), **more}
