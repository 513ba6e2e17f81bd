"""Pods waiting in their gate, decided: run, exit, or left waiting (``_gate_decisions`` decides).

One list finds them (pending pods carrying the gate label, in the namespace); a retry's failed
predecessor is read with its job's pods, and an N_TO_N child's dependencies are described
once per pass. The decision is written with the pod's resourceVersion, so a pod changed
meanwhile (or decided by another pass) is left for the next look. The reaper's pass runs it
(level-triggered: it works while the function is at zero); the function runs it when told a
job changed, sooner.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ._array_jobs import array_child_views
from ._contract import GATE_LABEL
from ._errors import JobNotFound, NotFound, StaleWrite
from ._gate_decisions import decide_pod, decision_patch, job_of, n_to_n_children, predecessor, undecided
from ._store import Job, JobStore

logger = logging.getLogger(__name__)


class GateDecider:
    """Decides the waiting pods of one store's namespace."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def decide_waiting(self) -> dict[str, int]:
        """Decide every pod waiting for a decision; counts by outcome (run, exit, waiting, skipped)."""
        outcomes = {"run": 0, "exit": 0, "waiting": 0, "skipped": 0}
        waiting = [pod for pod in self.store.waiting_pods(f"{GATE_LABEL}=decide") if undecided(pod)]
        states: dict[str, str | None] = {}
        pods_by_job: dict[str, list[Job]] = {}
        for pod in waiting:
            self._read_children(n_to_n_children(pod), states)
            job = job_of(pod)
            if job and job not in pods_by_job:
                pods_by_job[job] = self.store.pods(job)
            decision = decide_pod(pod, predecessor(pod, pods_by_job.get(job, [])), states)
            if decision.action == "wait":
                outcomes["waiting"] += 1
                continue
            metadata = pod["metadata"]
            try:
                self.store.patch_pod(
                    metadata["name"], decision_patch(pod, decision), metadata["resourceVersion"]
                )
            except (StaleWrite, NotFound):
                outcomes["skipped"] += 1  # changed or gone since listed: the next look decides
                continue
            outcomes[decision.action] += 1
            logger.info("decided a waiting pod", extra={"pod": metadata["name"], "decision": decision.action,
                                                         "reason": decision.reason})  # fmt: skip
        return outcomes

    def _read_children(self, children: Sequence[str], states: dict[str, str | None]) -> None:
        """The state of each child asked for, each array job described once a pass."""
        for child in children:
            if child in states:
                continue
            name = child.rpartition(":")[0]
            try:
                job = self.store.get(name)
            except JobNotFound:
                job = None
            views = array_child_views(job, self.store.pods(name)) if job is not None else []
            states.update({view.name: view.state for view in views})
            states.setdefault(child, None)  # gone, or no such index
