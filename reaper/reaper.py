"""One reaper run: stream the signature's jobs, mark the finished ones, archive and delete the due.

The decisions (what to mark, with which time, what is due) are ``function.retention``'s;
this module only sequences the API calls and counts what happened. Every write
carries a precondition, so a second reaper, a user's hold or a newer job reusing a
name makes the write fail harmlessly (counted as skipped) instead of doing damage.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass
from typing import Any, Literal

from function.contract import DELETION_TIME_ANNOTATION
from function.definitions import JobDefinition
from function.errors import JobfnError
from function.manager import Job, JobManager
from function.retention import RetentionPolicy, is_due, needs_mark, planned_deletion_time

from .archive import ArchiveSink, archive_event, archive_record

logger = logging.getLogger(__name__)

STOPPED_BY_TIME_BUDGET = "time_budget"
STOPPED_BY_MAX_DELETIONS = "max_deletions"
Outcome = Literal["seen", "marked", "deleted", "archived", "errors", "skipped"]


class CountingJobManager(JobManager):
    """A JobManager that counts the API requests the reaper makes through it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._calls = 0
        self._calls_lock = threading.Lock()

    @property
    def api_calls(self) -> int:
        return self._calls

    def _count(self) -> None:
        with self._calls_lock:
            self._calls += 1

    # Each of these sends exactly one request (fetch_jobs is a loop over list_page).
    def list_page(self, *args: Any, **kwargs: Any) -> tuple[list[Job], str | None]:
        self._count()
        return super().list_page(*args, **kwargs)

    def job_pods(self, name: str) -> list[Job]:
        self._count()
        return super().job_pods(name)

    def mark_job(self, job: Job, unix_time: int) -> Job | None:
        self._count()
        return super().mark_job(job, unix_time)

    def delete_job(self, job: Job) -> bool:
        self._count()
        return super().delete_job(job)

    def read_config_map(self, namespace: str, name: str, key: str) -> str:
        self._count()
        return super().read_config_map(namespace, name, key)


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
        manager: CountingJobManager,
        policy: RetentionPolicy,
        sink: ArchiveSink,
        *,
        dry_run: bool = False,
        max_deletions: int | None = None,
        time_budget_seconds: float | None = None,
        page_size: int = 500,
        workers: int = 4,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.manager = manager
        self.policy = policy
        self.sink = sink
        self.dry_run = dry_run
        self.max_deletions = max_deletions
        self.time_budget_seconds = time_budget_seconds
        self.page_size = page_size
        self.workers = workers
        self.clock = clock

    def run(self) -> RunSummary:
        started = time.monotonic()
        calls_before = self.manager.api_calls
        run = _Run(self.dry_run, self.max_deletions)
        jobs = self.manager.fetch_jobs(page_size=self.page_size)
        with ThreadPoolExecutor(self.workers, thread_name_prefix="reaper") as pool:
            waiting: set[Future[None]] = set()
            while True:
                budget = self.time_budget_seconds
                if budget is not None and time.monotonic() - started >= budget:
                    run.summary.stopped = STOPPED_BY_TIME_BUDGET
                    break
                if run.deletions_capped:
                    run.summary.stopped = STOPPED_BY_MAX_DELETIONS
                    break
                try:
                    job = next(jobs)
                except StopIteration:
                    break
                except JobfnError as error:
                    # A failed list ends the run: the rest is unknown; the next run resumes.
                    run.count("errors")
                    logger.error("listing jobs failed: %s", error.message, extra={"error": error.code})
                    break
                run.count("seen")
                waiting.add(pool.submit(self._reap, job, run))
                if len(waiting) >= 2 * self.workers:
                    _, waiting = wait(waiting, return_when=FIRST_COMPLETED)
        summary = run.summary
        if summary.stopped is None and run.deletion_refused:
            summary.stopped = STOPPED_BY_MAX_DELETIONS  # the list ended, but due jobs were left
        summary.duration_seconds = round(time.monotonic() - started, 3)
        summary.api_calls = self.manager.api_calls - calls_before
        return summary

    def _reap(self, job: Job, run: _Run) -> None:
        try:
            self._reap_one(job, run)
        except Exception:  # a bug must not stop the other jobs; it fails the run
            run.count("errors")
            logger.exception("unexpected failure", extra=_job_fields(job))

    def _reap_one(self, job: Job, run: _Run) -> None:
        metadata = job.get("metadata") or {}
        if not self.manager.signer.is_signed(job) or metadata.get("deletionTimestamp"):
            return  # not ours (the selector already says so), or already on its way out
        if needs_mark(job):
            planned = planned_deletion_time(job, self.policy)
            if planned is None:
                return
            marked = self._mark(job, planned, run)
            if marked is None:
                return
            job = marked  # its new resourceVersion is the delete's precondition
        if not is_due(job, self.clock()) or not run.take_deletion():
            return
        if not self._archive_and_delete(job, run):
            run.give_back_deletion()

    def _mark(self, job: Job, planned: int, run: _Run) -> Job | None:
        """The job with its deletion time written, or None when the write did not happen."""
        fields = _job_fields(job, deletion_time=planned)
        if self.dry_run:
            run.count("marked")
            logger.info("would mark job", extra=fields)
            return _with_deletion_time(job, planned)
        try:
            marked = self.manager.mark_job(job, planned)
        except JobfnError as error:
            run.count("errors")
            logger.error("marking failed: %s", error.message, extra={**fields, "error": error.code})
            return None
        if marked is None:
            run.count("skipped")  # changed since listed: a user's hold, another reaper, a new job
            logger.info("job changed since it was listed; not marked", extra=fields)
            return None
        run.count("marked")
        logger.info("marked job", extra=fields)
        return marked

    def _archive_and_delete(self, job: Job, run: _Run) -> bool:
        """Whether the job was deleted (dry run: would be)."""
        fields = _job_fields(job)
        if self.dry_run:
            run.count("deleted")
            logger.info("would archive and delete job", extra=fields)
            return True
        try:
            pods = self.manager.job_pods(fields["job"])
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
        logger.info("deleted job", extra=fields)
        return True


def _job_fields(job: Mapping[str, Any], **more: Any) -> dict[str, Any]:
    metadata = job.get("metadata") or {}
    return {"job": metadata.get("name", ""), "uid": metadata.get("uid", ""), **more}


def _with_deletion_time(job: Job, planned: int) -> Job:
    """A copy of ``job`` as a successful mark would leave it (for dry runs)."""
    shown = copy.copy(job)
    shown["metadata"] = {**job["metadata"]}
    shown["metadata"]["annotations"] = {
        **(job["metadata"].get("annotations") or {}),
        DELETION_TIME_ANNOTATION: str(planned),
    }
    return shown
