"""Jobs, array children, definitions and queues in AWS Batch's answer shapes (no cluster)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobfn._array_jobs import array_child_views
from jobfn._aws_batch.answers import (
    JOB_NAME_TAG,
    Arns,
    job_definition,
    job_detail,
    job_queue,
    job_summary,
    resource_requirements,
)
from jobfn._contract import QUEUE_LABEL, TERMINATION_REASON_ANNOTATION
from jobfn._definitions import JobDefinitions
from jobfn._errors import DefinitionError, InvalidRequest
from jobfn._policy import TAGS_ANNOTATION
from jobfn._queues import KUEUE_QUEUE_LABEL, JobQueue, parse_queues
from jobfn._status import job_view

ARNS = Arns("eu-west-1", "123456789012")
AWS_DEFINITIONS = Path(__file__).parent.parent / "data" / "definitions" / "aws.yaml"
CREATED = "2026-03-01T12:00:00Z"
CREATED_MS = 1772366400000


def job(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "hello-abc",
            "uid": "u1",
            "creationTimestamp": CREATED,
            "labels": {"job_definition_name": "hello", QUEUE_LABEL: "main"},
            "annotations": {
                "jobfn.dev/arguments": json.dumps({"message": "hi", "count": 2, "loud": True}),
                TAGS_ANNOTATION: json.dumps({"team": "data", JOB_NAME_TAG: "nightly"}),
            },
        },
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": 600,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "main",
                            "image": "busybox",
                            "command": ["echo"],
                            "args": ["hi"],
                            "env": [{"name": "A", "value": "1"}, {"name": "S", "valueFrom": {"secretKeyRef": {}}}],
                            "resources": {"requests": {"cpu": "1500m", "memory": "1Gi"}, "limits": {"nvidia.com/gpu": "2"}},
                        }
                    ]
                }
            },
        },
        "status": {"startTime": "2026-03-01T12:00:05Z", **status},
    }  # fmt: skip


def pod(
    name: str, phase: str, index: int | None = None, exit_code: int | None = None, created: str = CREATED
) -> dict[str, Any]:
    state: dict[str, Any] = {"running": {"startedAt": "2026-03-01T12:00:06Z"}}
    if exit_code is not None:
        state = {"terminated": {"exitCode": exit_code, "reason": "Error" if exit_code else "Completed",
                                "startedAt": "2026-03-01T12:00:06Z", "finishedAt": "2026-03-01T12:00:09Z"}}  # fmt: skip
    annotations = {} if index is None else {"batch.kubernetes.io/job-completion-index": str(index)}
    return {
        "metadata": {"name": name, "creationTimestamp": created, "annotations": annotations},
        "status": {"phase": phase, "startTime": "2026-03-01T12:00:06Z",
                   "containerStatuses": [{"name": "main", "state": state}]},
    }  # fmt: skip


def test_a_finished_job_is_described_with_times_in_milliseconds_and_its_exit_code() -> None:
    manifest = job(
        succeeded=1,
        completionTime="2026-03-01T12:00:10Z",
        conditions=[{"type": "Complete", "status": "True", "lastTransitionTime": "2026-03-01T12:00:10Z"}],
    )
    pods = [
        pod("p1", "Failed", exit_code=3),
        pod("p2", "Succeeded", exit_code=0, created="2026-03-01T12:00:07Z"),
    ]
    detail = job_detail(job_view(manifest, pods), manifest, ARNS)
    assert detail["jobId"] == "hello-abc"
    assert detail["jobArn"] == "arn:aws:batch:eu-west-1:123456789012:job/hello-abc"
    assert detail["jobName"] == "nightly"
    assert detail["jobQueue"] == "arn:aws:batch:eu-west-1:123456789012:job-queue/main"
    assert detail["jobDefinition"] == "arn:aws:batch:eu-west-1:123456789012:job-definition/hello:1"
    assert (detail["status"], detail["statusReason"]) == ("SUCCEEDED", "Completed")
    assert (detail["createdAt"], detail["startedAt"], detail["stoppedAt"]) == (
        CREATED_MS, CREATED_MS + 5000, CREATED_MS + 10000,
    )  # fmt: skip
    assert detail["parameters"] == {"message": "hi", "count": "2", "loud": "true"}
    assert detail["tags"] == {"team": "data"}
    assert detail["container"] == {
        "image": "busybox",
        "command": ["echo", "hi"],
        "environment": [{"name": "A", "value": "1"}],
        "resourceRequirements": [
            {"type": "VCPU", "value": "1.5"},
            {"type": "MEMORY", "value": "1024"},
            {"type": "GPU", "value": "2"},
        ],
        "exitCode": 0,  # a container that exited is no failure: AWS gives it no reason
        "logStreamName": "p2/main",
    }
    assert [a["container"]["exitCode"] for a in detail["attempts"]] == [3, 0]
    assert [a["statusReason"] for a in detail["attempts"]] == ["Essential container in task exited"] * 2
    assert detail["attempts"][0]["stoppedAt"] == CREATED_MS + 9000
    assert detail["timeout"] == {"attemptDurationSeconds": 600}
    assert detail["retryStrategy"] == {"attempts": 3}


def test_a_terminated_job_gives_the_caller_s_reason_and_no_timeout() -> None:
    manifest = job(conditions=[{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}])
    manifest["metadata"]["annotations"][TERMINATION_REASON_ANNOTATION] = "operator said stop"
    detail = job_detail(job_view(manifest, []), manifest, ARNS)
    assert (detail["status"], detail["statusReason"]) == ("FAILED", "operator said stop")
    assert "timeout" not in detail


def test_an_array_job_summarises_its_children_and_each_child_has_its_own_state() -> None:
    manifest = job(completedIndexes="0-2", active=2, failed=1, conditions=[])
    manifest["spec"].update(completionMode="Indexed", completions=6, parallelism=2)
    pods = [
        pod("p3", "Running", index=3),
        pod("p4a", "Failed", index=4, exit_code=1),
        pod("p4b", "Pending", index=4, created="2026-03-01T12:00:08Z"),
        pod("p0", "Succeeded", index=0, exit_code=0),
    ]
    children = array_child_views(manifest, pods)
    assert [c.name for c in children] == [f"hello-abc:{i}" for i in range(6)]
    assert [c.state for c in children] == ["SUCCEEDED"] * 3 + ["RUNNING", "STARTING", "PENDING"]
    parent = job_detail(job_view(manifest, pods), manifest, ARNS, children)
    assert parent["arrayProperties"] == {
        "size": 6,
        "statusSummary": {"SUBMITTED": 0, "PENDING": 1, "RUNNABLE": 0, "STARTING": 1, "RUNNING": 1,
                          "SUCCEEDED": 3, "FAILED": 0},
    }  # fmt: skip
    assert "exitCode" not in parent["container"] and parent["attempts"] == []
    child = job_detail(children[4], manifest, ARNS, index=4)
    assert child["jobId"] == "hello-abc:4"
    assert child["arrayProperties"] == {"index": 4}
    assert child["jobName"] == "nightly"
    assert [a["container"]["exitCode"] for a in child["attempts"]] == [1]
    summary = job_summary(children[0], ARNS, index=0)
    assert summary["arrayProperties"] == {"index": 0}
    assert summary["container"] == {"exitCode": 0}


def test_a_failed_array_job_fails_its_unfinished_children_with_its_reason() -> None:
    manifest = job(
        completedIndexes="1", conditions=[{"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}]
    )
    manifest["spec"].update(completionMode="Indexed", completions=3)
    manifest["metadata"]["annotations"][TERMINATION_REASON_ANNOTATION] = "enough"
    children = array_child_views(manifest, [])
    assert [c.state for c in children] == ["FAILED", "SUCCEEDED", "FAILED"]
    assert job_detail(children[0], manifest, ARNS, index=0)["statusReason"] == "enough"


def test_a_job_that_is_no_array_has_no_children() -> None:
    assert array_child_views(job(), []) == []


@pytest.mark.parametrize(
    ("resources", "expected"),
    [
        ({"requests": {"cpu": "2", "memory": "512Mi"}}, [("VCPU", "2"), ("MEMORY", "512")]),
        ({"limits": {"cpu": "250m", "memory": "1G"}}, [("VCPU", "0.25"), ("MEMORY", "953")]),
        ({"requests": {"cpu": "1e3"}}, [("VCPU", "1000")]),
        ({"requests": {"cpu": "lots"}}, []),
    ],
)
def test_kubernetes_quantities_become_vcpus_and_mebibytes(
    resources: Any, expected: list[tuple[str, str]]
) -> None:
    assert [(r["type"], r["value"]) for r in resource_requirements(resources)] == expected


def test_a_definition_is_described_with_aws_placeholders_for_its_parameters() -> None:
    definitions = JobDefinitions.from_yaml(AWS_DEFINITIONS.read_text())
    described = job_definition(definitions.get("hello"), ARNS)
    assert described["jobDefinitionArn"] == "arn:aws:batch:eu-west-1:123456789012:job-definition/hello:1"
    assert (described["revision"], described["status"], described["type"]) == (1, "ACTIVE", "container")
    assert described["parameters"] == {"message": "hi", "count": "1", "loud": "false", "ratio": "0.5"}
    assert described["containerProperties"]["command"] == ["echo", "Ref::message"]
    assert described["retryStrategy"] == {"attempts": 1}


def test_queues_are_read_from_the_definitions_file_and_described() -> None:
    queues = JobDefinitions.from_yaml(AWS_DEFINITIONS.read_text()).queues
    assert [q.name for q in queues] == ["bulk", "kueued", "main"]
    kueued = queues.get("kueued")
    described = job_queue(kueued, ARNS)
    assert described["jobQueueArn"] == "arn:aws:batch:eu-west-1:123456789012:job-queue/kueued"
    assert (described["state"], described["status"], described["priority"]) == ("ENABLED", "VALID", 100)
    assert described["computeEnvironmentOrder"] == []
    with pytest.raises(InvalidRequest, match="no job queue named 'other' \\(queues: bulk, kueued, main\\)"):
        queues.get("other")


def test_a_queue_puts_its_kueue_label_and_priority_class_on_the_job() -> None:
    manifest = job()
    JobQueue("q", kueue_queue="team-a", priority_class="high").apply(manifest)
    assert manifest["metadata"]["labels"][KUEUE_QUEUE_LABEL] == "team-a"
    assert manifest["spec"]["template"]["spec"]["priorityClassName"] == "high"


def test_without_configured_queues_any_queue_name_is_a_plain_queue() -> None:
    queues = JobDefinitions.from_yaml("definitions: []").queues
    assert not queues.configured
    assert queues.get("anything") == JobQueue("anything")


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("queues: {a: 1}", "queues must be a list"),
        ("queues: [{name: a}, {name: a}]", "listed twice"),
        ("queues: [{name: 'has space'}]", "valid label value"),
        ("queues: [{name: a, kueue: x}]", "unknown keys"),
        ("queues: [{name: a, priority: -1}]", "priority"),
    ],
)
def test_a_wrong_queue_list_is_a_definitions_error(raw: str, problem: str) -> None:
    with pytest.raises(DefinitionError, match=problem):
        JobDefinitions.from_yaml(raw)
    with pytest.raises(DefinitionError):
        parse_queues(1)
