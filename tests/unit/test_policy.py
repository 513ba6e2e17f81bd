"""What every created Job is forced to be, and how overrides apply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jobfn._contract import CALLER_ANNOTATION, JobSigner
from jobfn._definitions import JobDefinitions
from jobfn._errors import Forbidden, InvalidRequest
from jobfn._policy import check_caller_allowed, request_hash, shape_job
from jobfn._status import job_view
from jobfn._submission import Overrides, Submission

DEFINITIONS = JobDefinitions.from_yaml(
    (Path(__file__).parent.parent / "data" / "definitions" / "core.yaml").read_text()
)


def shaped(definition: str = "echo", **submission: Any) -> dict[str, Any]:
    the_definition = DEFINITIONS.get(definition)
    request = Submission(definition, **submission)
    arguments = the_definition.validate(request.arguments)
    return shape_job(
        the_definition.template.render(arguments),
        name="echo-abc",
        namespace="jobs",
        signer=JobSigner("sig"),
        definition=the_definition,
        submission=request,
        arguments=arguments,
    )


def test_identity_is_forced_over_what_the_template_says() -> None:
    job = shaped(arguments={"message": "hi"})
    metadata = job["metadata"]
    assert metadata["name"] == "echo-abc"
    assert metadata["namespace"] == "jobs"
    assert metadata["labels"] == {
        "app.kubernetes.io/managed-by": "sig",
        "job_definition_name": "echo",
        "team": "core",
    }


def test_template_cannot_preset_retention_or_forge_jobfn_records() -> None:
    annotations = shaped(arguments={"message": "hi"})["metadata"]["annotations"]
    assert "job_deletion_time_unix_sec" not in annotations
    assert (
        annotations["jobfn.dev/arguments"] == '{"message": "hi", "mode": "plain", "repeat": 1, "tag": "abc"}'
    )
    assert annotations["note"] == "hi"


def test_array_size_makes_an_indexed_job() -> None:
    spec = shaped(arguments={"message": "hi", "repeat": 3}, overrides=Overrides(array_size=10))["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 10, 3)


def test_overrides_reach_the_first_container() -> None:
    job = shaped(
        arguments={"message": "hi"},
        overrides=Overrides(
            timeout=60,
            retries=2,
            command=("run", "--fast"),
            environment={"MESSAGE": "replaced", "NEW": "1"},
            resources={"limits": {"cpu": "2"}},
        ),
    )
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert job["spec"]["activeDeadlineSeconds"] == 60
    assert job["spec"]["backoffLimit"] == 2
    assert container["command"] == ["run", "--fast"]
    assert container["env"] == [{"name": "MESSAGE", "value": "replaced"}, {"name": "NEW", "value": "1"}]
    assert container["resources"] == {"limits": {"cpu": "2"}}
    assert job_view(job).overrides == {
        "timeout": 60,
        "retries": 2,
        "command": ["run", "--fast"],
        "environment": {"MESSAGE": "replaced", "NEW": "1"},
        "resources": {"limits": {"cpu": "2"}},
    }


def test_a_job_without_overrides_records_none() -> None:
    job = shaped(arguments={"message": "hi"})
    assert not any(key.endswith("/overrides") for key in job["metadata"]["annotations"])
    assert job_view(job).overrides == {}


@pytest.mark.parametrize(
    ("definition", "overrides", "message"),
    [
        ("echo", Overrides(timeout=601), "between 1 and 600"),
        ("echo", Overrides(array_size=21), "between 1 and 20"),
        ("echo", Overrides(environment={"bad name": "x"}), "environment variable names"),
        ("echo", Overrides(command=()), "non-empty"),
        ("sleep", Overrides(array_size=2), "does not allow overriding array_size"),
    ],
)
def test_override_outside_what_the_definition_allows_is_refused(
    definition: str, overrides: Overrides, message: str
) -> None:
    arguments = {"message": "hi"} if definition == "echo" else {}
    with pytest.raises(InvalidRequest, match=message):
        shaped(definition, arguments=arguments, overrides=overrides)


def test_request_hash_tells_a_retry_from_a_different_request() -> None:
    one = Submission("echo", {"message": "a"}, idempotency_key="k")
    assert request_hash(one) == request_hash(Submission("echo", {"message": "a"}, idempotency_key="k2"))
    assert request_hash(one) != request_hash(Submission("echo", {"message": "b"}, idempotency_key="k"))
    assert request_hash(one) != request_hash(Submission("echo", {"message": "a"}, Overrides(timeout=5)))


def test_values_the_api_takes_only_as_strings_become_strings() -> None:
    job = shaped("fail", arguments={"exit_code": 7})
    assert job["spec"]["backoffLimit"] == 1
    assert job["spec"]["template"]["metadata"]["annotations"]["jobfn.test/exit-code"] == "7"


GROUP_ONLY = JobDefinitions.from_yaml(
    """
- name: team
  allowed_subjects: ["group:system:serviceaccounts:apps", "system:serviceaccount:ops:admin"]
  template: |
    apiVersion: batch/v1
    kind: Job
    metadata: {name: team}
    spec: {template: {spec: {restartPolicy: Never, containers: [{name: m, image: busybox}]}}}
"""
).get("team")


def test_allowed_subjects_may_name_a_group_of_the_caller() -> None:
    check_caller_allowed(GROUP_ONLY, "system:serviceaccount:apps:worker", {"system:serviceaccounts:apps"})
    check_caller_allowed(GROUP_ONLY, "system:serviceaccount:ops:admin", {"system:serviceaccounts:ops"})
    with pytest.raises(Forbidden):
        check_caller_allowed(GROUP_ONLY, "system:serviceaccount:web:x", {"system:serviceaccounts:web"})
    with pytest.raises(Forbidden):  # a username that looks like the group is not the group
        check_caller_allowed(GROUP_ONLY, "system:serviceaccounts:apps", ())


def test_a_group_allowed_caller_is_recorded_by_its_username() -> None:
    job = shaped(
        "echo",
        arguments={"message": "m"},
        caller="system:serviceaccount:apps:w",
        caller_groups=frozenset({"a-group-name"}),
    )
    assert job["metadata"]["annotations"][CALLER_ANNOTATION] == "system:serviceaccount:apps:w"
    assert "a-group-name" not in json.dumps(job)
