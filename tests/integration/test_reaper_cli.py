"""``python -m reaper`` as a CronJob runs it: real processes, a real K_SINK, kills and races."""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from jobfn._status import terminal_time
from jobfn.reaper._archive import ARCHIVED_EVENT_TYPE
from tests.integration.reaper_helpers import (
    DEFINITIONS_YAML,
    KEPT_A_DAY,
    annotations_of,
    job_manager,
    jobs_in,
    reaper_env,
    run_cli,
    sink_receiver,
    start_cli,
    submit,
    submit_many,
    wait_until_terminal,
)

RETENTION_ZERO = ("--succeeded-retention", "0", "--failed-retention", "0")
DELETION_TIME = "job_deletion_time_unix_sec"


def uids_by_name(api_client: Any, namespace: str) -> dict[str, str]:
    return {name: job["metadata"]["uid"] for name, job in jobs_in(api_client, namespace).items()}


def test_records_go_to_k_sink_as_cloudevents_and_stdout_holds_only_the_summary(
    namespace: str, api_client: Any
) -> None:
    manager = job_manager(namespace, api_client)
    names = submit_many(manager, 3)
    wait_until_terminal(manager, names)
    uids = uids_by_name(api_client, namespace)

    with sink_receiver() as receiver:
        run = run_cli(reaper_env(namespace, K_SINK=receiver.url), *RETENTION_ZERO)

    assert run.returncode == 0, run.stderr
    assert run.stdout.count("\n") == 1 and run.records == []
    assert {k: run.summary[k] for k in ("seen", "marked", "archived", "deleted", "errors", "skipped")} == {
        "seen": 3,
        "marked": 0,  # due at first sight: deleted without a mark first
        "archived": 3,
        "deleted": 3,
        "errors": 0,
        "skipped": 0,
    }
    # waiting jobs, waiting pods, list, pods of the page, a delete each
    assert run.summary["api_calls"] == 1 + 1 + 1 + 1 + 3
    assert run.summary["duration_seconds"] > 0
    assert sorted(event["id"] for event in receiver.events) == sorted(uids.values())
    for event in receiver.events:
        assert event["type"] == ARCHIVED_EVENT_TYPE
        assert event["source"] == f"jobfn/reaper/{namespace}"
        assert event.data["uid"] == uids[event.data["name"]]
        assert event.data["state"] == "SUCCEEDED"
    assert jobs_in(api_client, namespace) == {}


def test_a_sink_answering_500_keeps_every_job_and_the_run_exits_1(namespace: str, api_client: Any) -> None:
    manager = job_manager(namespace, api_client)
    names = submit_many(manager, 2)
    wait_until_terminal(manager, names)

    with sink_receiver(status=500) as receiver:
        failed = run_cli(reaper_env(namespace, K_SINK=receiver.url), *RETENTION_ZERO)
        receiver.status = 200
        retried = run_cli(reaper_env(namespace, K_SINK=receiver.url), *RETENTION_ZERO)

    assert failed.returncode == 1
    assert (failed.summary["errors"], failed.summary["deleted"], failed.summary["marked"]) == (2, 0, 0)
    assert any("answered 500" in line for line in failed.stderr.splitlines())
    assert retried.returncode == 0, retried.stderr
    assert (retried.summary["archived"], retried.summary["deleted"]) == (2, 2)
    assert sorted(event["subject"] for event in receiver.events) == sorted(names)


def test_an_unreachable_sink_keeps_the_job(namespace: str, api_client: Any) -> None:
    manager = job_manager(namespace, api_client)
    names = submit_many(manager, 1)
    wait_until_terminal(manager, names)

    run = run_cli(reaper_env(namespace, K_SINK="http://127.0.0.1:9/"), *RETENTION_ZERO)

    assert run.returncode == 1
    assert set(jobs_in(api_client, namespace)) == set(names)


def test_without_k_sink_each_record_is_a_json_line_on_stdout_before_the_summary(
    namespace: str, api_client: Any
) -> None:
    manager = job_manager(namespace, api_client)
    names = submit_many(manager, 2)
    wait_until_terminal(manager, names)

    run = run_cli(reaper_env(namespace), *RETENTION_ZERO)

    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 3
    assert json.loads(lines[-1]) == run.summary
    assert sorted(record["subject"] for record in run.records) == sorted(names)
    assert all(json.loads(line)["level"] for line in run.stderr.splitlines())


def test_per_definition_retention_comes_from_the_definitions_file(
    namespace: str, api_client: Any, tmp_path: Path
) -> None:
    manager = job_manager(namespace, api_client)
    [quick] = submit_many(manager, 1)
    [kept] = submit_many(manager, 1, "kept")
    wait_until_terminal(manager, [quick, kept])
    definitions_file = tmp_path / "definitions.yaml"
    definitions_file.write_text(DEFINITIONS_YAML)

    run = run_cli(reaper_env(namespace, definitions_file), *RETENTION_ZERO)

    assert run.returncode == 0, run.stderr
    remaining = jobs_in(api_client, namespace)
    assert set(remaining) == {kept}
    assert int(annotations_of(remaining[kept])["job_deletion_time_unix_sec"]) == (
        terminal_time(remaining[kept]) + KEPT_A_DAY
    )


def test_a_broken_definitions_file_exits_2_before_any_write(
    namespace: str, api_client: Any, tmp_path: Path
) -> None:
    manager = job_manager(namespace, api_client)
    names = submit_many(manager, 1)
    wait_until_terminal(manager, names)
    broken = tmp_path / "definitions.yaml"
    broken.write_text("- name: [not, a, name]\n")

    run = run_cli(reaper_env(namespace, broken), *RETENTION_ZERO)

    assert run.returncode == 2
    assert "JOB_DEFINITIONS_CONFIG_PATH" in run.stderr
    assert run.stdout == ""
    assert DELETION_TIME not in annotations_of(jobs_in(api_client, namespace)[names[0]])


def test_two_reapers_at_once_finish_without_errors_and_archive_every_deleted_job(
    namespace: str, api_client: Any
) -> None:
    manager = job_manager(namespace, api_client)
    names = submit_many(manager, 150)
    wait_until_terminal(manager, names)
    uids = set(uids_by_name(api_client, namespace).values())
    env = reaper_env(namespace)

    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda _: run_cli(env, *RETENTION_ZERO, "--page-size", "10"), range(2)))

    for run in runs:
        assert run.returncode == 0, run.stderr
        assert run.summary["errors"] == 0
    assert sum(run.summary["deleted"] for run in runs) == 150
    assert {record["id"] for run in runs for record in run.records} == uids
    assert jobs_in(api_client, namespace) == {}
    print(f"\ntwo reapers: {[{k: r.summary[k] for k in ('marked', 'deleted', 'skipped')} for r in runs]}")


def test_a_reaper_killed_mid_run_then_run_again_loses_nothing_and_deletes_nothing_early(
    namespace: str, api_client: Any, tmp_path: Path
) -> None:
    manager = job_manager(namespace, api_client)
    due = submit_many(manager, 300)
    kept = submit_many(manager, 20, "kept")
    wait_until_terminal(manager, [*due, *kept])
    due_uids = {uid for name, uid in uids_by_name(api_client, namespace).items() if name in due}
    definitions_file = tmp_path / "definitions.yaml"
    definitions_file.write_text(DEFINITIONS_YAML)  # "kept" is kept a day, whatever the flags say
    env = reaper_env(namespace, definitions_file, JOBFN_LOG_LEVEL="WARNING")  # stderr unread while it runs

    killed = start_cli(env, *RETENTION_ZERO, "--page-size", "10", "--workers", "2")
    archived: set[str] = set()
    assert killed.stdout is not None
    for line in killed.stdout:
        archived.add(json.loads(line)["id"])
        if len(archived) >= 30:
            time.sleep(0.3)  # not just after a line arrived: in the middle of some job's work
            killed.send_signal(signal.SIGKILL)
            break
    written_before_the_kill, _ = killed.communicate(timeout=30)
    archived |= {json.loads(line)["id"] for line in written_before_the_kill.splitlines()}
    after_kill = jobs_in(api_client, namespace)
    rerun = run_cli(env, *RETENTION_ZERO)

    assert killed.returncode == -signal.SIGKILL
    assert 0 < len(due) - (len(after_kill) - len(kept)) < len(due), "killed before or after all the work"
    assert rerun.returncode == 0, rerun.stderr
    assert archived | {record["id"] for record in rerun.records} >= due_uids  # nothing lost
    remaining = jobs_in(api_client, namespace)
    assert set(remaining) == set(kept)  # nothing deleted before its time
    for job in remaining.values():
        assert int(annotations_of(job)[DELETION_TIME]) == terminal_time(job) + KEPT_A_DAY


def test_state_changes_go_to_k_sink_once_each_with_ids_stable_per_job_and_state(
    namespace: str, api_client: Any
) -> None:
    manager = job_manager(namespace, api_client)
    done, failed = submit(manager), submit(manager, exit_code="3")
    running = submit(manager, run_ms="600000")
    wait_until_terminal(manager, [done, failed])
    uids = uids_by_name(api_client, namespace)
    keep = ("--succeeded-retention", "86400", "--failed-retention", "86400", "--state-events")

    with sink_receiver() as receiver:
        first = run_cli(reaper_env(namespace, K_SINK=receiver.url), *keep)
        again = run_cli(reaper_env(namespace, K_SINK=receiver.url), *keep)

    assert (first.returncode, again.returncode) == (0, 0), first.stderr + again.stderr
    changes = {
        event["subject"]: event for event in receiver.events if event["type"] == "dev.jobfn.job.state-changed"
    }
    assert set(changes) == {done, failed, running}
    assert changes[done]["id"] == f"{uids[done]}:SUCCEEDED"
    assert changes[failed]["id"] == f"{uids[failed]}:FAILED"
    assert changes[failed].data["attempts"][0]["container"]["exitCode"] == 3
    assert changes[running].data["status"] in ("STARTING", "RUNNING", "PENDING")
    assert (first.summary["announced"], first.summary["marked"]) == (3, 2)  # marks carry the record
    assert again.summary["announced"] == 0  # each state once: recorded when it was sent
    annotations = {
        name: job["metadata"]["annotations"] for name, job in jobs_in(api_client, namespace).items()
    }
    assert annotations[done]["jobfn.dev/announced-state"] == "SUCCEEDED"
    assert "job_deletion_time_unix_sec" in annotations[done]


def test_state_events_without_a_sink_are_reported_and_the_run_reaps_on(namespace: str) -> None:
    run = run_cli(reaper_env(namespace), "--state-events")
    assert run.returncode == 0, run.stderr
    assert "state events are on but K_SINK is not set" in run.stderr
    assert run.summary["announced"] == 0
