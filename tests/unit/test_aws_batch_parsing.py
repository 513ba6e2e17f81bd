"""AWS Batch request bodies read into submissions, ids, filters and tokens (no cluster)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobfn._aws_batch.answers import JOB_NAME_TAG
from jobfn._aws_batch.fields import decode_token, encode_token
from jobfn._aws_batch.parsing import (
    arguments_from_parameters,
    definition_name,
    list_filter,
    split_job_id,
    submission_from_request,
)
from jobfn._definitions import JobDefinitions
from jobfn._errors import InvalidRequest, JobNotFound
from jobfn._submission import JobView

AWS_DEFINITIONS = Path(__file__).parent.parent / "data" / "definitions" / "aws.yaml"


@pytest.fixture(scope="module")
def definitions() -> JobDefinitions:
    return JobDefinitions.from_yaml(AWS_DEFINITIONS.read_text())


def submit(definitions: JobDefinitions, **fields: Any) -> Any:
    body = {"jobName": "nightly_run-1", "jobQueue": "main", "jobDefinition": "hello", **fields}
    return submission_from_request(body, definitions, caller="aws:AKID")


def test_a_full_submit_job_request_becomes_one_submission(definitions: JobDefinitions) -> None:
    submission = submit(
        definitions,
        jobDefinition="arn:aws:batch:eu-west-1:123456789012:job-definition/hello:7",
        jobQueue="arn:aws:batch:eu-west-1:123456789012:job-queue/main",
        parameters={"message": "hi there", "count": "3", "loud": "TRUE", "ratio": "0.25"},
        containerOverrides={
            "command": ["echo", "over"],
            "environment": [{"name": "A", "value": "1"}, {"name": "B"}],
            "resourceRequirements": [
                {"type": "VCPU", "value": "0.5"},
                {"type": "MEMORY", "value": "2048"},
                {"type": "GPU", "value": "1"},
            ],
        },
        timeout={"attemptDurationSeconds": 900},
        retryStrategy={"attempts": 3},
        arrayProperties={"size": 4},
        tags={"team": "data"},
        propagateTags=True,
    )
    assert submission.definition == "hello"
    assert submission.queue == "main"
    assert submission.caller == "aws:AKID"
    assert submission.arguments == {"message": "hi there", "count": 3, "loud": True, "ratio": 0.25}
    assert submission.tags == {"team": "data", JOB_NAME_TAG: "nightly_run-1"}
    overrides = submission.overrides
    assert overrides.command == ("echo", "over")
    assert overrides.environment == {"A": "1", "B": ""}
    assert overrides.resources == {
        "requests": {"cpu": "0.5", "memory": "2048Mi", "nvidia.com/gpu": "1"},
        "limits": {"memory": "2048Mi", "nvidia.com/gpu": "1"},
    }
    assert (overrides.timeout, overrides.retries, overrides.array_size) == (900, 2, 4)


def test_a_minimal_request_sets_no_override(definitions: JobDefinitions) -> None:
    submission = submit(definitions)
    assert submission.overrides.used() == []
    assert submission.arguments == {}


def test_every_problem_of_a_request_is_reported_at_once(definitions: JobDefinitions) -> None:
    with pytest.raises(InvalidRequest) as raised:
        submission_from_request(
            {
                "jobName": "has spaces",
                "jobDefinition": "hello",
                "dependsOn": [{"jobId": "x:3"}],
                "retryStrategy": {
                    "attempts": 11,
                    "evaluateOnExit": [{"onExitCode": "Oom*", "action": "EXIT"}],
                },
                "containerOverrides": {
                    "command": "echo",
                    "resourceRequirements": [{"type": "VCPU", "value": "-1"}],
                },
                "tags": {"aws:owner": "me"},
                "surprise": 1,
            },
            definitions,
            None,
        )
    problems = "\n".join(raised.value.problems)
    for expected in (
        "jobName: use up to 128",
        "jobQueue: required",
        "dependsOn: 'x:3' is an array child; depend on its array job",
        "retryStrategy.attempts: must be a whole number from 1 to 10",
        "retryStrategy.evaluateOnExit: onExitCode 'Oom*' must be digits",
        "containerOverrides.command: must be a non-empty list",
        "VCPU needs a positive number of vCPUs",
        "tags: keys starting with aws:",
        "surprise: not a SubmitJob field",
    ):
        assert expected in problems
    assert len(raised.value.problems) == 9


def test_an_unknown_definition_is_a_problem_of_the_request(definitions: JobDefinitions) -> None:
    with pytest.raises(InvalidRequest, match="no job definition named 'nope'"):
        submit(definitions, jobDefinition="nope:2")


def test_jobfn_s_own_tag_prefix_cannot_be_forged(definitions: JobDefinitions) -> None:
    with pytest.raises(InvalidRequest, match="reserved"):
        submit(definitions, tags={JOB_NAME_TAG: "other"})


@pytest.mark.parametrize(
    ("declared", "value", "argument"),
    [
        ("integer", " 42 ", 42),
        ("integer", "-7", -7),
        ("integer", "4.0", "4.0"),  # left as text: the schema refuses it, naming the parameter
        ("integer", "9" * 40, "9" * 40),
        ("number", "2.5", 2.5),
        ("number", "3", 3),
        ("number", "nan", "nan"),
        ("number", "1_000", "1_000"),
        ("boolean", "False", False),
        ("boolean", "yes", "yes"),
        ("array", '["a", 1]', ["a", 1]),
        ("array", "a,b", "a,b"),
        ("string", "007", "007"),
    ],
)
def test_parameters_take_their_declared_type_when_they_parse_as_it(
    declared: str, value: str, argument: Any
) -> None:
    assert arguments_from_parameters({"p": value}, {"p": {"type": declared}}) == {"p": argument}


def test_a_parameter_that_does_not_parse_is_refused_by_the_definition_s_schema(
    definitions: JobDefinitions,
) -> None:
    submission = submit(definitions, parameters={"count": "many"})
    with pytest.raises(InvalidRequest, match="count: 'many' is not of type 'integer'"):
        definitions.get("hello").validate(submission.arguments)


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("hello", "hello"),
        ("hello:12", "hello"),
        ("arn:aws:batch:us-east-1:123456789012:job-definition/hello:3", "hello"),
        ("odd:name", "odd:name"),
    ],
)
def test_definitions_are_named_by_name_revision_or_arn(reference: str, name: str) -> None:
    assert definition_name(reference) == name


def test_an_arn_of_another_kind_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="not a job-definition ARN"):
        definition_name("arn:aws:batch:us-east-1:123456789012:job-queue/main")


@pytest.mark.parametrize(
    ("job_id", "expected"),
    [
        ("hello-abc", ("hello-abc", None)),
        ("hello-abc:7", ("hello-abc", 7)),
        ("arn:aws:batch:us-east-1:000000000000:job/hello-abc:3", ("hello-abc", 3)),
    ],
)
def test_children_of_array_jobs_are_addressed_by_index(job_id: str, expected: tuple[str, int | None]) -> None:
    assert split_job_id(job_id) == expected


def test_a_child_id_that_is_no_index_is_not_found() -> None:
    with pytest.raises(JobNotFound):
        split_job_id("hello-abc:x")


def view(name: str, state: str = "RUNNING", created: int = 1000, definition: str = "hello") -> JobView:
    tags = json.dumps({JOB_NAME_TAG: name})
    return JobView(
        name=name.lower(), uid="u", definition=definition, state=state, reason="", created=created,
        started=None, stopped=None, arguments={}, deletion_time=None, array_size=None, labels={},
        annotations={"jobfn.dev/tags": tags},
    )  # fmt: skip


def test_listing_keeps_running_jobs_unless_a_status_is_asked() -> None:
    assert list_filter(None, None)(view("a"))
    assert not list_filter(None, None)(view("a", "SUCCEEDED"))
    assert list_filter([], "SUCCEEDED")(view("a", "SUCCEEDED"))
    with pytest.raises(InvalidRequest):
        list_filter(None, "DONE")


def test_filters_ignore_the_status_and_match_as_aws_batch_does() -> None:
    by_name = list_filter([{"name": "JOB_NAME", "values": ["Nightly*"]}], "RUNNING")
    assert by_name(view("nightly-1", "SUCCEEDED"))
    assert not by_name(view("daily", "RUNNING"))
    exact = list_filter([{"name": "JOB_NAME", "values": ["NIGHTLY"]}], None)
    assert exact(view("nightly")) and not exact(view("nightly-2"))
    by_definition = list_filter(
        [{"name": "JOB_DEFINITION", "values": ["arn:aws:batch:r:1:job-definition/fail:1"]}], None
    )
    assert by_definition(view("x", definition="fail")) and not by_definition(view("x"))
    before = list_filter([{"name": "BEFORE_CREATED_AT", "values": ["1500000"]}], None)
    assert before(view("x", created=1000)) and not before(view("x", created=2000))
    after = list_filter([{"name": "AFTER_CREATED_AT", "values": ["1500000"]}], None)
    assert after(view("x", created=2000)) and not after(view("x", created=1000))
    with pytest.raises(InvalidRequest, match="SHARE_IDENTIFIER"):
        list_filter([{"name": "SHARE_IDENTIFIER", "values": ["a"]}], None)


def test_tokens_round_trip_and_garbage_is_a_client_error() -> None:
    assert decode_token(encode_token(["x", 3])) == ["x", 3]
    with pytest.raises(InvalidRequest, match="nextToken"):
        decode_token("!!not a token!!")
