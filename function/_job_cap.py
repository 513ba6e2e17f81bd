"""A definition's cap on active jobs (``max_active_jobs``), held across every replica.

Each capped definition has one Lease in the jobs namespace (``jobfn-cap-<definition>-<hash>``)
whose annotation lists the jobs holding a place, each with when it took it. A submission
takes a place before it creates its Job and writes the Lease with the resourceVersion it
read, so two replicas (or two threads) can never both take the last place: the API server
refuses the second write, which reads again. Places come back lazily: only when the
definition is at its cap are the holders read, oldest first, until one has finished (or
is gone), and those are dropped. A submission thus costs one read and one write of a
small object while a place is free and at most ``cap`` job reads when every place is
taken, never a listing of the definition's jobs however many are kept. The Lease is made
on first use from one listing of the definition's active jobs, so a cap holds across an
upgrade from counting.

A Lease, not a ConfigMap: the function then needs no write access to ConfigMaps in the
jobs namespace, where the operator's templates may live (``template_config_map``).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from ._contract import DEFINITION_LABEL, MANAGED_BY_LABEL
from ._errors import (
    AlreadyExists,
    JobfnError,
    JobNotFound,
    NotFound,
    StaleWrite,
    TooManyRequests,
    Unavailable,
)
from ._status import TERMINAL_STATES, UNFINISHED_SELECTOR, job_state
from ._store import JobStore
from ._submission import JobView

#: The Lease's annotation: ``{job name: unix time it took its place}`` as JSON.
HOLDERS_ANNOTATION = "jobfn.dev/active-jobs"
#: A holder whose Job does not exist yet may still be being created (a create waits up to
#: the API client's timeout); after this long it is taken to have failed.
CREATE_GRACE_SECONDS = 30
#: Conflicting writes (other submissions to the same definition) are retried this often.
TAKE_ATTEMPTS = 8


class CapReached(Exception):
    """Every place of the definition is held by an active job."""

    def __init__(self, active: int) -> None:
        super().__init__(f"{active} active")
        self.active = active


def lease_name(signature: str, definition: str) -> str:
    """A DNS name per (deployment signature, definition): readable, and unique by its hash."""
    slug = re.sub(r"[^a-z0-9]+", "-", definition.lower()).strip("-")[:30].strip("-") or "definition"
    digest = hashlib.sha256(f"{signature}/{definition}".encode()).hexdigest()[:10]
    return f"jobfn-cap-{slug}-{digest}"


class JobCaps:
    """The places of capped definitions in one store's namespace."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._path = f"/apis/coordination.k8s.io/v1/namespaces/{store.namespace}/leases"
        self._lock = threading.Lock()  # this replica's threads take turns; replicas meet at the Lease

    def within(
        self,
        definition: str,
        job: str,
        cap: int,
        create: Callable[[], JobView],
        existing: Callable[[], JobView | None],
    ) -> JobView:
        """``create`` the job in a place of the cap; when none is free, the ``existing`` job
        this submission made before (an idempotent retry), else TooManyRequests."""
        try:
            with self._lock:
                self.take(definition, job, cap)
        except CapReached as full:
            earlier = existing()
            if earlier is not None:
                return earlier
            raise TooManyRequests(
                f"definition '{definition}' already has {full.active} active job(s), "
                f"its cap is {cap}; retry when one finishes"
            ) from None
        try:
            return create()
        except Unavailable:
            raise  # the Job may exist: its place stays, and is dropped later if it does not
        except JobfnError:
            self.give_back(definition, job)  # refused: the place is free again
            raise

    def take(self, definition: str, job: str, cap: int, now: float | None = None) -> None:
        """Give ``job`` a place among ``definition``'s ``cap``; CapReached when none is free."""
        for attempt in range(TAKE_ATTEMPTS):
            clock = time.time() if now is None else now
            lease = self._lease(definition)
            holders = _holders(lease)
            if job in holders:
                return  # a retry of the same submission (its idempotency key names the job)
            if len(holders) >= cap:
                holders = self._without_finished(holders, cap, clock)
            if len(holders) >= cap:
                raise CapReached(len(holders))
            holders[job] = int(clock)
            try:
                self._write(lease, holders)
            except StaleWrite:
                time.sleep(0.01 * (attempt + 1))  # another submission wrote first: read again
                continue
            return
        raise TooManyRequests(f"definition '{definition}' is taking many submissions at once; retry", 1)

    def give_back(self, definition: str, job: str) -> None:
        """Drop ``job``'s place (its create failed); best effort, as a stale place is dropped
        anyway once CREATE_GRACE_SECONDS have passed."""
        for _ in range(TAKE_ATTEMPTS):
            try:
                lease = self._lease(definition)
                holders = _holders(lease)
                if holders.pop(job, None) is None:
                    return
                self._write(lease, holders)
                return
            except StaleWrite:
                continue

    def _without_finished(self, holders: dict[str, int], cap: int, now: float) -> dict[str, int]:
        """``holders`` less those that finished (read oldest first, until one place is free)."""
        remaining = dict(holders)
        for name, since in sorted(holders.items(), key=lambda item: (item[1], item[0])):
            try:
                job = self.store.get(name)
            except JobNotFound:
                if now - since < CREATE_GRACE_SECONDS:
                    continue  # may be being created right now
                job = None
            if job is None or _finished(job) or job["metadata"].get("deletionTimestamp"):
                del remaining[name]
                if len(remaining) < cap:
                    break
        return remaining

    def _lease(self, definition: str) -> dict[str, Any]:
        name = lease_name(self.store.signer.signature, definition)
        try:
            return self.store.api.request("GET", f"{self._path}/{name}", doing=f"read lease {name!r}")
        except NotFound:
            pass
        # First use: the definition's active jobs hold their places from the start.
        now = int(time.time())
        active = {
            job["metadata"]["name"]: now
            for job in self.store.jobs(definition, also=UNFINISHED_SELECTOR)
            if not _finished(job)
        }
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": name,
                "labels": {MANAGED_BY_LABEL: self.store.signer.signature, DEFINITION_LABEL: definition},
                "annotations": {HOLDERS_ANNOTATION: _encode(active)},
            },
            "spec": {},
        }
        try:
            return self.store.api.request("POST", self._path, body=lease, doing=f"create lease {name!r}")
        except AlreadyExists:
            return self.store.api.request("GET", f"{self._path}/{name}", doing=f"read lease {name!r}")

    def _write(self, lease: Mapping[str, Any], holders: Mapping[str, int]) -> None:
        """Replace the holders, if the Lease is still as read (else StaleWrite)."""
        metadata = lease["metadata"]
        annotations = {**(metadata.get("annotations") or {}), HOLDERS_ANNOTATION: _encode(holders)}
        body = {**lease, "metadata": {**metadata, "annotations": annotations}}
        self.store.api.request(
            "PUT", f"{self._path}/{metadata['name']}", body=body, doing=f"update lease {metadata['name']!r}"
        )


def _finished(job: Mapping[str, Any]) -> bool:
    """SUCCEEDED or FAILED as every door shows it (a failing job's pods may still be stopping)."""
    return job_state(job)[0] in TERMINAL_STATES


def _holders(lease: Mapping[str, Any]) -> dict[str, int]:
    raw = ((lease.get("metadata") or {}).get("annotations") or {}).get(HOLDERS_ANNOTATION)
    try:
        found = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return {str(k): int(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _encode(holders: Mapping[str, int]) -> str:
    return json.dumps(dict(holders), sort_keys=True, separators=(",", ":"))
