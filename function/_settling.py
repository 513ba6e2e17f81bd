"""Jobs waiting for their dependencies, settled: released, failed, or left waiting.

``_dependencies`` decides purely from the dependencies' states; this module reads those
states and writes the decision with the job's resourceVersion, so a settlement never
overwrites a change it did not see. The reaper's pass and the job-change events both
settle through here, as does a new job whose dependencies finished already.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ._contract import WAITING_LABEL
from ._dependencies import (
    WAITING_FOR_DEPENDENCIES,
    Dependency,
    fail_patch,
    is_waiting,
    n_to_n,
    recorded_dependencies,
    release_patch,
    settle,
    waits_on,
)
from ._errors import InvalidRequest, JobNotFound, StaleWrite
from ._kueue import released
from ._status import job_view
from ._store import WRITE_ATTEMPTS, Job, JobStore
from ._submission import JobView

#: A dependency's state by name, None when it does not exist; filled as a pass reads them.
States = dict[str, str | None]


class DependencySettler:
    """Settles the waiting jobs of one store; ``view_of`` reads a dependency with its pods, as
    DescribeJobs tells it: a dependency a caller saw SUCCEEDED releases its dependents even
    before the Job controller marks it Complete."""

    def __init__(self, store: JobStore, view_of: Callable[[str], JobView]) -> None:
        self.store = store
        self.view_of = view_of

    def state_of(self, name: str) -> str:
        return self.view_of(name).state

    def dependency_states(self, dependencies: Sequence[Dependency], planned: Job | None = None) -> States:
        """The state of each job a submission depends on, read once (the new job is settled
        with them); InvalidRequest naming those that do not exist, and N_TO_N dependencies that
        are not array jobs of the ``planned`` job's size."""
        states: States = {}
        self._read(waits_on(dependencies), states)
        sizes: dict[str, int | None] = {}
        for name in n_to_n(dependencies):
            try:
                view = self.view_of(name)
            except JobNotFound:
                states[name] = None
                continue
            states[name], sizes[name] = view.state, view.array_size
        missing = [name for name, state in states.items() if state is None]
        if missing:
            raise InvalidRequest(f"dependsOn: no job {', '.join(repr(m) for m in missing)} to depend on")
        size = ((planned or {}).get("spec") or {}).get("completions")
        wrong = [name for name, each in sizes.items() if each != size]
        if wrong:
            raise InvalidRequest(f"dependsOn: N_TO_N needs array jobs of this job's size ({size}); "
                                 f"{', '.join(map(repr, wrong))} is not")  # fmt: skip
        return states

    def settle_waiting(self, only_dependents_of: str | None = None) -> dict[str, int]:
        """Settle each waiting job (``only_dependents_of``: just those waiting on it); counts by outcome."""
        outcomes = {"released": 0, "failed": 0, "waiting": 0, "skipped": 0}
        states: States = {}  # each dependency read once per pass
        for job in list(self.store.jobs(labels={WAITING_LABEL: WAITING_FOR_DEPENDENCIES})):
            if only_dependents_of is not None and only_dependents_of not in recorded_dependencies(job):
                continue
            outcome, _ = self.settle(job, states)
            outcomes[outcome] += 1
        return outcomes

    def settle(self, job: Job, states: States) -> tuple[str, JobView]:
        """Settle one waiting job: what was done (released, failed, waiting, or skipped when others
        kept changing it) and its view after. A write that lost to a concurrent one (the Job
        controller marks a new suspended job at once) is decided again on a fresh read."""
        dependencies = recorded_dependencies(job)
        self._read([name for name in dependencies if name not in states], states)
        settlement = settle(dependencies, states)
        if settlement.action == "wait":
            return "waiting", job_view(job)
        # A job of a Kueue queue is released into it: Kueue admits (and unsuspends) it.
        patch = (
            released(release_patch(), job)
            if settlement.action == "release"
            else fail_patch(settlement.reason)
        )
        name = job["metadata"]["name"]
        for _ in range(WRITE_ATTEMPTS):
            try:
                written = self.store.patch(name, patch, job["metadata"]["resourceVersion"])
            except StaleWrite:
                job = self.store.get(name)
                if not is_waiting(job):
                    return "skipped", job_view(job)  # someone else settled it
                continue
            return ("released" if settlement.action == "release" else "failed"), job_view(written)
        return "skipped", job_view(job)  # the next pass looks again

    def _read(self, names: Sequence[str], states: States) -> None:
        for name in names:
            try:
                states[name] = self.state_of(name)
            except JobNotFound:
                states[name] = None
