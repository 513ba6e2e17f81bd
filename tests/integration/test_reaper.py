"""The reaper against the real local API server: what it marks, archives, deletes and leaves alone."""

from __future__ import annotations

from typing import Any

from cloudevents.http import CloudEvent
from kubernetes import client as k8s

from jobfn._contract import JOB_NAME_POD_LABEL
from jobfn._retention import HOLD_FOREVER, RetentionChange
from jobfn._status import terminal_time
from jobfn.reaper._archive import ARCHIVED_EVENT_TYPE, ArchiveError
from tests.helpers import on_simulated_node, wait_for
from tests.integration.reaper_helpers import (
    KEPT_A_DAY,
    annotations_of,
    job_manager,
    jobs_in,
    reap,
    submit,
    submit_many,
    wait_until_terminal,
)

DELETION_TIME = "job_deletion_time_unix_sec"


def test_finished_jobs_already_due_are_archived_and_deleted_in_one_run(
    namespace: str, api_client: Any
) -> None:
    manager = job_manager(namespace, api_client)
    good = submit(manager)
    bad = submit(manager, exit_code="3")
    wait_until_terminal(manager, [good, bad])
    uids = {name: job["metadata"]["uid"] for name, job in jobs_in(api_client, namespace).items()}

    summary, records = reap(namespace, api_client)

    # Due at first sight (retention 0), so not marked first: a mark nobody could act on.
    assert (summary.seen, summary.marked, summary.archived, summary.deleted) == (2, 0, 2, 2)
    assert (summary.errors, summary.skipped) == (0, 0)
    # the waiting jobs' and waiting pods' lists (none wait), one list, one pod list for the page,
    # a delete per job
    assert summary.api_calls == 1 + 1 + 1 + 1 + 2
    assert jobs_in(api_client, namespace) == {}
    by_name = {record["data"]["name"]: record for record in records}
    assert {record["id"] for record in records} == {uids[good], uids[bad]}
    assert by_name[good]["type"] == ARCHIVED_EVENT_TYPE
    assert by_name[good]["source"] == f"jobfn/reaper/{namespace}"
    assert by_name[good]["data"]["state"] == "SUCCEEDED"
    assert by_name[bad]["data"]["state"] == "FAILED"
    assert by_name[bad]["data"]["pods"][0]["containers"][0]["exit_code"] == 3
    assert by_name[bad]["data"]["definition"] == "quick"
    assert by_name[bad]["data"]["arguments"] == {"run_ms": "20", "exit_code": "3"}
    assert (
        by_name[bad]["data"]["stopped"] >= by_name[bad]["data"]["started"] >= by_name[bad]["data"]["created"]
    )


def test_deleted_job_takes_its_pods_with_it(namespace: str, api_client: Any) -> None:
    manager = job_manager(namespace, api_client)
    name = submit(manager)
    wait_until_terminal(manager, [name])
    assert manager.job_pods(name)

    reap(namespace, api_client)

    pods = k8s.CoreV1Api(api_client)
    selector = f"{JOB_NAME_POD_LABEL}={name}"
    wait_for(lambda: not pods.list_namespaced_pod(namespace, label_selector=selector).items, timeout=30)


def test_mark_is_terminal_time_plus_retention_and_nothing_is_deleted_early(
    namespace: str, api_client: Any
) -> None:
    manager = job_manager(namespace, api_client)
    succeeded, failed = submit(manager), submit(manager, exit_code="1")
    own = submit(manager, "kept")
    wait_until_terminal(manager, [succeeded, failed, own])

    first, _ = reap(namespace, api_client, succeeded=600, failed=1200)
    again, records = reap(namespace, api_client, succeeded=600, failed=1200)

    jobs = jobs_in(api_client, namespace)
    assert set(jobs) == {succeeded, failed, own}
    assert int(annotations_of(jobs[succeeded])[DELETION_TIME]) == terminal_time(jobs[succeeded]) + 600
    assert int(annotations_of(jobs[failed])[DELETION_TIME]) == terminal_time(jobs[failed]) + 1200
    assert int(annotations_of(jobs[own])[DELETION_TIME]) == terminal_time(jobs[own]) + KEPT_A_DAY
    assert (first.marked, first.deleted) == (3, 0)
    assert (again.marked, again.deleted, again.api_calls, records) == (0, 0, 3, [])  # the three lists


def test_a_users_hold_is_respected(namespace: str, api_client: Any) -> None:
    manager = job_manager(namespace, api_client)
    held_while_running = submit(manager, run_ms="1500")
    manager.change_retention(held_while_running, RetentionChange("delete_after", HOLD_FOREVER))
    held_after = submit(manager)
    wait_until_terminal(manager, [held_while_running, held_after])
    reap(namespace, api_client, succeeded=3600)  # marks held_after for an hour from now
    manager.change_retention(held_after, RetentionChange("delete_after", HOLD_FOREVER))  # the user extends it

    summary, records = reap(namespace, api_client)  # retention 0 now: only holds keep them

    jobs = jobs_in(api_client, namespace)
    assert set(jobs) == {held_while_running, held_after}
    assert annotations_of(jobs[held_while_running])[DELETION_TIME] == str(HOLD_FOREVER)
    assert annotations_of(jobs[held_after])[DELETION_TIME] == str(HOLD_FOREVER)
    assert (summary.marked, summary.deleted, records) == (0, 0, [])


def test_jobs_of_another_signature_are_untouched(namespace: str, api_client: Any) -> None:
    ours = job_manager(namespace, api_client)
    theirs = job_manager(namespace, api_client, signature="someone-else")
    mine, other = submit(ours), submit(theirs)
    wait_until_terminal(ours, [mine])
    wait_until_terminal(theirs, [other])
    before = jobs_in(api_client, namespace)[other]

    summary, _ = reap(namespace, api_client)

    jobs = jobs_in(api_client, namespace)
    assert set(jobs) == {other}
    assert jobs[other]["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert DELETION_TIME not in annotations_of(jobs[other])
    assert summary.seen == 1


def test_a_running_job_is_never_marked_nor_deleted(namespace: str, api_client: Any) -> None:
    manager = job_manager(namespace, api_client)
    running = submit(manager, run_ms="forever")
    running_with_past_time = submit(manager, run_ms="forever")
    manager.change_retention(
        running_with_past_time, RetentionChange("delete_after", 1)
    )  # "due" since 1970, but not finished

    summary, records = reap(namespace, api_client)

    jobs = jobs_in(api_client, namespace)
    assert set(jobs) == {running, running_with_past_time}
    assert DELETION_TIME not in annotations_of(jobs[running])
    assert annotations_of(jobs[running_with_past_time])[DELETION_TIME] == "1"
    assert (summary.seen, summary.marked, summary.deleted, records) == (2, 0, 0, [])


class SwapsTheJobWhileArchiving:
    """A sink that, while a job is being archived, lets someone else change it first."""

    def __init__(self, change: Any) -> None:
        self.change = change
        self.delivered: list[CloudEvent] = []

    def emit(self, event: CloudEvent) -> None:
        self.delivered.append(event)
        self.change(event["subject"])


def test_a_name_reused_by_a_newer_job_survives(namespace: str, api_client: Any) -> None:
    manager = job_manager(namespace, api_client)
    name = submit(manager)
    wait_until_terminal(manager, [name])
    batch = k8s.BatchV1Api(api_client)
    newer_uid: list[str] = []

    def replace_with_newer_job(job_name: str) -> None:
        labels = manager.read_job(job_name)["metadata"]["labels"]
        batch.delete_namespaced_job(job_name, namespace, propagation_policy="Background")
        wait_for(lambda: job_name not in jobs_in(api_client, namespace), timeout=30)
        newer = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": job_name, "labels": labels},
            "spec": {
                "template": {
                    "metadata": {"annotations": {"jobfn.test/run-duration-ms": "forever"}},
                    "spec": on_simulated_node(
                        {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}
                    ),
                }
            },
        }
        newer_uid.append(batch.create_namespaced_job(namespace, newer).metadata.uid)

    sink = SwapsTheJobWhileArchiving(replace_with_newer_job)
    summary, _ = reap(namespace, api_client, sink=sink)

    survivor = jobs_in(api_client, namespace)[name]
    assert survivor["metadata"]["uid"] == newer_uid[0]
    assert (summary.archived, summary.deleted, summary.skipped, summary.errors) == (1, 0, 1, 0)


def test_a_hold_set_after_the_reaper_read_the_job_wins(namespace: str, api_client: Any) -> None:
    manager = job_manager(namespace, api_client)
    name = submit(manager)
    wait_until_terminal(manager, [name])
    sink = SwapsTheJobWhileArchiving(
        lambda job_name: manager.change_retention(job_name, RetentionChange("delete_after", HOLD_FOREVER))
    )

    summary, _ = reap(namespace, api_client, sink=sink)

    assert annotations_of(jobs_in(api_client, namespace)[name])[DELETION_TIME] == str(HOLD_FOREVER)
    assert (summary.marked, summary.archived, summary.deleted, summary.skipped) == (0, 1, 0, 1)


class RefusingSink:
    def emit(self, event: CloudEvent) -> None:
        raise ArchiveError("the archive is down")


def test_a_job_whose_record_is_refused_is_kept_and_deleted_by_a_later_run(
    namespace: str, api_client: Any
) -> None:
    manager = job_manager(namespace, api_client)
    names = submit_many(manager, 3)
    wait_until_terminal(manager, names)

    refused, _ = reap(namespace, api_client, sink=RefusingSink())
    assert set(jobs_in(api_client, namespace)) == set(names)
    later, records = reap(namespace, api_client)

    assert (refused.marked, refused.archived, refused.deleted, refused.errors) == (0, 0, 0, 3)
    assert (later.marked, later.archived, later.deleted, later.errors) == (0, 3, 3, 0)
    assert sorted(record["subject"] for record in records) == sorted(names)
    assert jobs_in(api_client, namespace) == {}


def test_dry_run_decides_and_reports_but_writes_nothing(namespace: str, api_client: Any) -> None:
    manager = job_manager(namespace, api_client)
    due = submit_many(manager, 3)
    later = submit(manager, "kept")
    wait_until_terminal(manager, [*due, later])
    before = {
        name: job["metadata"]["resourceVersion"] for name, job in jobs_in(api_client, namespace).items()
    }

    summary, records = reap(namespace, api_client, dry_run=True)

    after = {name: job["metadata"]["resourceVersion"] for name, job in jobs_in(api_client, namespace).items()}
    assert after == before
    assert records == []
    assert (summary.dry_run, summary.seen, summary.marked, summary.deleted, summary.archived) == (
        True,
        4,
        1,  # "kept" is kept a day: marked; the other three are due at once: deleted unmarked
        3,
        0,
    )
    assert summary.api_calls == 1


def test_deletions_are_capped_per_run_and_the_next_run_continues(namespace: str, api_client: Any) -> None:
    manager = job_manager(namespace, api_client)
    names = submit_many(manager, 5)
    wait_until_terminal(manager, names)

    capped, _ = reap(namespace, api_client, max_deletions=2, page_size=2)
    rest, _ = reap(namespace, api_client)

    assert (capped.deleted, capped.stopped) == (2, "max_deletions")
    assert (rest.deleted, rest.stopped) == (3, None)
    assert jobs_in(api_client, namespace) == {}


def test_a_spent_time_budget_stops_the_run_before_any_write(namespace: str, api_client: Any) -> None:
    manager = job_manager(namespace, api_client)
    wait_until_terminal(manager, [submit(manager)])

    summary, _ = reap(namespace, api_client, time_budget_seconds=1e-9)

    assert (summary.stopped, summary.marked, summary.deleted, summary.errors) == ("time_budget", 0, 0, 0)
    assert len(jobs_in(api_client, namespace)) == 1
