"""DescribeJobQueues shows a newcomer a queue to use, configured or not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobfn._aws_batch.answers import Arns
from jobfn._aws_batch.call import Call
from jobfn._aws_batch.resources import describe_job_queues
from jobfn._definitions import JobDefinitions
from jobfn._queues import DEFAULT_QUEUE_NAME

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_DEFINITIONS = ROOT / "deploy" / "base" / "definitions.yaml"


class DefinitionsOnly:
    """The function as far as DescribeJobQueues needs it: its definitions, nothing on a cluster."""

    def __init__(self, definitions: JobDefinitions) -> None:
        self._definitions = definitions

    def definitions(self) -> JobDefinitions:
        return self._definitions

    def manager(self) -> Any:
        raise AssertionError("DescribeJobQueues needs no manager")

    def submit(self, submission: Any, door: str) -> Any:
        raise AssertionError("DescribeJobQueues submits nothing")


def queue_names(definitions: JobDefinitions, body: dict[str, Any]) -> list[str]:
    call = Call(body, DefinitionsOnly(definitions), Arns("us-east-1", "000000000000"), None)
    return [queue["jobQueueName"] for queue in describe_job_queues(call)["jobQueues"]]


def test_without_queues_a_default_queue_is_reported() -> None:
    assert queue_names(JobDefinitions(), {}) == [DEFAULT_QUEUE_NAME]


def test_without_queues_any_queue_asked_for_by_name_exists() -> None:
    assert queue_names(JobDefinitions(), {"jobQueues": ["nightly"]}) == ["nightly"]


def test_configured_queues_are_reported_and_no_default_beside_them() -> None:
    definitions = JobDefinitions.from_yaml("queues: [{name: main}, {name: gpu}]\ndefinitions: []")
    assert queue_names(definitions, {}) == ["gpu", "main"]
    assert queue_names(definitions, {"jobQueues": [DEFAULT_QUEUE_NAME]}) == []


def test_the_sample_definitions_declare_the_queue_the_readme_submits_to() -> None:
    sample = JobDefinitions.from_yaml(SAMPLE_DEFINITIONS.read_text(), SAMPLE_DEFINITIONS.parent)
    assert queue_names(sample, {}) == ["main"]
    assert "--job-queue main" in (ROOT / "README.md").read_text()
