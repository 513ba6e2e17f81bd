"""The archive record and its delivery: a CloudEvent on stdout or POSTed to K_SINK."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from jobfn.reaper._archive import (
    ARCHIVED_EVENT_TYPE,
    ArchiveError,
    HttpSink,
    StdoutSink,
    archive_event,
    archive_record,
)
from tests.integration.reaper_helpers import sink_receiver

FAILED_JOB: dict[str, Any] = {
    "metadata": {
        "name": "train-abc",
        "namespace": "batch",
        "uid": "7d3c-uid",
        "creationTimestamp": "2026-11-28T10:00:00Z",
        "labels": {"app.kubernetes.io/managed-by": "jobfn", "job_definition_name": "train"},
        "annotations": {
            "jobfn.dev/arguments": '{"epochs": 3}',
            "job_deletion_time_unix_sec": "1795867500",
        },
    },
    "spec": {"backoffLimit": 0},
    "status": {
        "startTime": "2026-11-28T10:00:01Z",
        "failed": 1,
        "conditions": [
            {
                "type": "Failed",
                "status": "True",
                "reason": "BackoffLimitExceeded",
                "lastTransitionTime": "2026-11-28T10:05:00Z",
            }
        ],
    },
}
FAILED_POD: dict[str, Any] = {
    "metadata": {"name": "train-abc-x1"},
    "spec": {"nodeName": "node-1"},
    "status": {
        "phase": "Failed",
        "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": 3, "reason": "Error"}}}],
    },
}


def test_record_keeps_identity_inputs_outcome_times_and_exit_codes() -> None:
    record = archive_record(FAILED_JOB, [FAILED_POD])

    assert record["name"] == "train-abc"
    assert record["uid"] == "7d3c-uid"
    assert record["namespace"] == "batch"
    assert record["definition"] == "train"
    assert record["arguments"] == {"epochs": 3}
    assert record["state"] == "FAILED"
    assert record["reason"].startswith("BackoffLimitExceeded")
    assert "exit code(s) 3" in record["reason"]
    assert (record["created"], record["started"], record["stopped"]) == (1795860000, 1795860001, 1795860300)
    assert record["deletion_time"] == 1795867500
    assert record["pods"] == [
        {
            "name": "train-abc-x1",
            "phase": "Failed",
            "index": None,
            "containers": [{"name": "main", "exit_code": 3, "reason": "Error"}],
        }
    ]


def test_event_id_is_the_job_uid_so_a_redelivery_can_be_dropped() -> None:
    record = archive_record(FAILED_JOB, [FAILED_POD])

    first, again = archive_event(record, "batch"), archive_event(record, "batch")

    assert first["id"] == again["id"] == "7d3c-uid"
    assert first["type"] == ARCHIVED_EVENT_TYPE
    assert first["source"] == "jobfn/reaper/batch"
    assert first["subject"] == "train-abc"


def test_stdout_sink_writes_one_structured_cloudevent_per_line() -> None:
    stream = io.StringIO()
    sink = StdoutSink(stream)

    sink.emit(archive_event(archive_record(FAILED_JOB, []), "batch"))
    sink.emit(archive_event(archive_record(FAILED_JOB, []), "batch"))

    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    event = json.loads(lines[0])
    assert (event["specversion"], event["type"], event["id"]) == ("1.0", ARCHIVED_EVENT_TYPE, "7d3c-uid")
    assert event["data"]["state"] == "FAILED"


def test_http_sink_posts_a_cloudevent_the_sdk_reads_back() -> None:
    with sink_receiver() as receiver:
        HttpSink(receiver.url, timeout_seconds=5).emit(
            archive_event(archive_record(FAILED_JOB, [FAILED_POD]), "batch")
        )

    [event] = receiver.events
    assert event["id"] == "7d3c-uid"
    assert event["type"] == ARCHIVED_EVENT_TYPE
    assert event.data["pods"][0]["containers"][0]["exit_code"] == 3


def test_http_sink_sends_the_oidc_token_a_sink_binding_mounts_read_afresh_each_time(tmp_path: Path) -> None:
    token = tmp_path / "token"
    with sink_receiver() as receiver:
        sink = HttpSink(receiver.url, timeout_seconds=5, token_path=token)
        sink.emit(archive_event(archive_record(FAILED_JOB, []), "batch"))  # no file: the feature is off
        token.write_text("first.jwt\n")
        sink.emit(archive_event(archive_record(FAILED_JOB, []), "batch"))
        token.write_text("renewed.jwt")
        sink.emit(archive_event(archive_record(FAILED_JOB, []), "batch"))

    assert receiver.authorizations == [None, "Bearer first.jwt", "Bearer renewed.jwt"]


@pytest.mark.parametrize("answer", [500, 404, 302])
def test_http_sink_fails_on_any_answer_but_2xx(answer: int) -> None:
    with sink_receiver(status=answer) as receiver, pytest.raises(ArchiveError, match=str(answer)):
        HttpSink(receiver.url, timeout_seconds=5).emit(archive_event(archive_record(FAILED_JOB, []), "batch"))


def test_http_sink_fails_when_nothing_listens() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(ArchiveError, match="cannot deliver"):
        HttpSink(f"http://127.0.0.1:{port}/", timeout_seconds=2).emit(
            archive_event(archive_record(FAILED_JOB, []), "batch")
        )


def test_http_sink_fails_when_the_receiver_hangs() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections, never answers
        port = silent.getsockname()[1]

        with pytest.raises(ArchiveError, match="cannot deliver"):
            HttpSink(f"http://127.0.0.1:{port}/", timeout_seconds=0.5).emit(
                archive_event(archive_record(FAILED_JOB, []), "batch")
            )
