"""k8s-jobs' ``JobDeleter``: retention marks and deletes, decided by jobfn's retention rules.

A finished job is marked with ``job_deletion_time_unix_sec`` once (a value already
there, a user's hold included, is never overwritten) and deleted when that time has
passed. Both writes carry the resourceVersion the job was read at, so a hold set
between the read and the write wins.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .. import _retention as retention
from .. import _status as job_status
from .._contract import DELETION_TIME_ANNOTATION
from .._errors import JobfnError
from ._manager import JobManager
from ._models import to_manifest, to_v1_job

if TYPE_CHECKING:
    from kubernetes.client import V1Job

logger = logging.getLogger(__name__)

DeleteCallback = Callable[["V1Job"], Any]


class JobDeleter:
    """Marks finished jobs with their deletion time and deletes them when it has passed."""

    JOB_DELETION_TIME_ANNOTATION = DELETION_TIME_ANNOTATION

    def __init__(self, manager: JobManager) -> None:
        self.manager = manager

    def mark_deletion_time(self, job: V1Job, retention_period_sec: int) -> bool:
        """Annotate the job: deletable ``retention_period_sec`` after it finished.

        A job that already has a deletion time keeps it. Counted from when the job
        finished (by its own record), else from now. False when nothing was written.
        """
        manifest = to_manifest(job)
        if not self._needs_deletion_time(manifest):
            return False
        finished = job_status.terminal_time(manifest)
        start = finished if finished is not None else time.time()
        marked = self.manager.jobfn_manager.mark_deletion_time(manifest, int(start + retention_period_sec))
        return marked is not None

    @staticmethod
    def _needs_deletion_time(manifest: dict[str, Any]) -> bool:
        annotations = (manifest.get("metadata") or {}).get("annotations") or {}
        return DELETION_TIME_ANNOTATION not in annotations

    def is_candidate_for_deletion(self, job: V1Job) -> bool:
        """Whether the job is finished, marked, and its deletion time has passed.

        Unlike k8s-jobs, a job still running is never a candidate, whatever its mark.
        """
        return retention.is_due(to_manifest(job), time.time())

    def mark_jobs_for_deletion(self, retention_period_sec: int = 3600) -> None:
        """Mark every finished, unmarked job of the manager's signature."""
        for manifest in self.manager.fetch_manifests():
            if not retention.needs_mark(manifest):
                continue
            try:
                self.mark_deletion_time(to_v1_job(manifest), retention_period_sec)
            except JobfnError:
                logger.warning("could not mark job %s", manifest["metadata"]["name"], exc_info=True)

    def cleanup_jobs(self, *, delete_callback: DeleteCallback | None = None) -> None:
        """Delete every job whose deletion time has passed.

        ``delete_callback`` is called with the job (at least once) before it is deleted,
        to archive or count it; if it raises, the job is kept for the next run.
        """
        for manifest in self.manager.fetch_manifests():
            if not retention.is_due(manifest, time.time()):
                continue
            name = manifest["metadata"]["name"]
            if delete_callback is not None:
                try:
                    delete_callback(to_v1_job(manifest))
                except Exception:
                    logger.warning("delete callback failed for job %s: it is kept", name, exc_info=True)
                    continue
            try:
                if not self.manager.jobfn_manager.delete_job(manifest):
                    logger.info("job %s changed or went away since it was read: not deleted", name)
            except JobfnError:
                logger.warning("could not delete job %s", name, exc_info=True)

    def mark_and_delete_old_jobs(
        self, *, retention_period_sec: int, delete_callback: DeleteCallback | None = None
    ) -> None:
        """Mark finished jobs, then delete those whose time has come."""
        self.mark_jobs_for_deletion(retention_period_sec=retention_period_sec)
        self.cleanup_jobs(delete_callback=delete_callback)

    def run_background_cleanup(self, interval_sec: float = 60, **kwargs: Any) -> Callable[[], None]:
        """Run ``mark_and_delete_old_jobs(**kwargs)`` every ``interval_sec`` in a thread.

        Returns a function that stops the loop (at once, even mid-wait) and waits for it.
        """
        stopped = threading.Event()

        def run() -> None:
            while not stopped.is_set():
                started = time.monotonic()
                try:
                    self.mark_and_delete_old_jobs(**kwargs)
                except Exception:
                    logger.warning("background job cleanup failed", exc_info=True)
                stopped.wait(max(0.0, interval_sec - (time.monotonic() - started)))

        thread = threading.Thread(target=run, name="k8s-jobs-cleanup", daemon=True)
        thread.start()

        def stop() -> None:
            stopped.set()
            thread.join()

        return stop
