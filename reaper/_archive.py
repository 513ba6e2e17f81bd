"""The archive record of a job, sent before the job is deleted.

The record is a CloudEvent (structured JSON, one per job, id = the job's uid so a
receiver can drop redeliveries): POSTed to ``K_SINK`` when it is set, else written
as one line on stdout. Delivery is at least once: a run killed between the archive
and the delete archives the job again next time.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TextIO

import urllib3
from cloudevents.conversion import to_structured
from cloudevents.http import CloudEvent

from jobfn._errors import JobfnError
from jobfn._status import job_view

ARCHIVED_EVENT_TYPE = "dev.jobfn.job.archived"
# Where a Knative SinkBinding mounts the OIDC token for K_SINK's audience (Eventing's
# authentication-oidc feature); absent when the feature is off.
OIDC_TOKEN_PATH = Path("/oidc/token")
_STDOUT_LOCK = threading.Lock()


class ArchiveError(JobfnError):
    """Raised when the sink did not accept an archive record; the job must be kept."""

    status = 503
    code = "ArchiveFailed"


def archive_record(job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What is kept of a job once it is gone: identity, inputs, outcome, times, exit codes."""
    view = job_view(job, pods)
    metadata = job.get("metadata") or {}
    return {
        "name": view.name,
        "uid": view.uid,
        "namespace": metadata.get("namespace", ""),
        "definition": view.definition,
        "arguments": dict(view.arguments),
        "state": view.state,
        "reason": view.reason,
        "created": view.created,
        "started": view.started,
        "stopped": view.stopped,
        "deletion_time": view.deletion_time,
        "counts": {"succeeded": view.succeeded, "failed": view.failed},
        "pods": [
            {
                "name": pod.name,
                "phase": pod.phase,
                "index": pod.index,
                "containers": [
                    {"name": c["name"], "exit_code": c["exit_code"], "reason": c["reason"]}
                    for c in pod.containers
                ],
            }
            for pod in view.pods or []
        ],
    }


def archive_event(record: Mapping[str, Any], namespace: str) -> CloudEvent:
    attributes = {
        "type": ARCHIVED_EVENT_TYPE,
        "source": f"jobfn/reaper/{namespace}",
        "id": record["uid"],  # the same job archived twice is the same event
        "subject": record["name"],
        "datacontenttype": "application/json",
    }
    return CloudEvent(attributes, dict(record))


def _structured(event: CloudEvent) -> tuple[dict[str, str], bytes]:
    headers, body = to_structured(event)
    return dict(headers), body if isinstance(body, bytes) else str(body).encode("utf-8")


class ArchiveSink(Protocol):
    def emit(self, event: CloudEvent) -> None:
        """Deliver one archive event, or raise ArchiveError."""


class StdoutSink:
    """One structured CloudEvent per line, flushed before the job is deleted."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def emit(self, event: CloudEvent) -> None:
        _, body = _structured(event)
        stream = self._stream or sys.stdout
        try:
            with _STDOUT_LOCK:  # a line is never interleaved with another thread's
                stream.write(body.decode("utf-8") + "\n")
                stream.flush()  # written before the delete, or a kill loses the record
        except OSError as error:
            raise ArchiveError(f"cannot write the archive record to stdout: {error}") from error


class HttpSink:
    """POSTs structured CloudEvents to ``url``; anything but a 2xx answer is a failure.

    With Knative Eventing's OIDC authentication on, a SinkBinding mounts a token for the
    sink's audience at ``token_path`` (/oidc/token); when that file exists each request
    carries it as a bearer token, read afresh every time (Eventing renews it).
    """

    def __init__(
        self,
        url: str,
        timeout_seconds: float,
        connections: int = 4,
        token_path: Path | None = OIDC_TOKEN_PATH,
    ) -> None:
        self.url = url
        self._token_path = token_path
        # No retries and no redirects: a failure keeps the job, and the next run retries.
        self._pool = urllib3.PoolManager(
            retries=False, timeout=urllib3.Timeout(total=timeout_seconds), maxsize=connections
        )

    def emit(self, event: CloudEvent) -> None:
        headers, body = _structured(event)
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            response = self._pool.request("POST", self.url, body=body, headers=headers, redirect=False)
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise ArchiveError(f"cannot deliver the archive record to {self.url}: {error}") from error
        if not 200 <= response.status < 300:
            raise ArchiveError(f"the sink {self.url} answered {response.status} to an archive record")

    def _token(self) -> str | None:
        if self._token_path is None:
            return None
        try:
            return self._token_path.read_text().strip() or None
        except FileNotFoundError:
            return None
        except OSError as error:
            raise ArchiveError(f"cannot read the sink's token {self._token_path}: {error}") from error

    def close(self) -> None:
        self._pool.clear()
