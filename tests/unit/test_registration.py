"""Registered job definitions, decided purely: reading, the operator's bounds, the Job built."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from jobfn._contract import DEFINITION_REVISION_ANNOTATION, JobSigner
from jobfn._definitions import JobDefinitions
from jobfn._errors import ConfigurationError, Forbidden, InvalidRequest
from jobfn._plan import plan_submission
from jobfn._registered_template import as_definition
from jobfn._registration import Registration, check_may_register, check_within_bounds, select_revision
from jobfn._registration_request import read_registration
from jobfn._settings import RegistrationPolicy, load_settings
from jobfn._submission import Overrides, Submission

POLICY = RegistrationPolicy(enabled=True, images=("busybox*", "registry.example.com/team/*"))


def request(**container: Any) -> dict[str, Any]:
    return {
        "jobDefinitionName": "ffmpeg_parameters",
        "type": "container",
        "parameters": {"codec": "mp4"},
        "containerProperties": {
            "image": "busybox",
            "command": ["ffmpeg", "-i", "Ref::inputfile", "-c", "Ref::codec", "-o", "Ref::outputfile"],
            "resourceRequirements": [{"type": "MEMORY", "value": "2000"}, {"type": "VCPU", "value": "0.5"}],
            "environment": [{"name": "MODE", "value": "fast"}],
            "jobRoleArn": "arn:aws:iam::123456789012:role/ECSTask-S3FullAccess",
            **container,
        },
        "retryStrategy": {"attempts": 3},
        "timeout": {"attemptDurationSeconds": 120},
        "tags": {"team": "media"},
    }


def registered(**container: Any) -> Registration:
    return read_registration(request(**container))


def test_aws_documented_example_reads_and_round_trips_through_what_is_stored() -> None:
    registration = registered()

    assert registration.vcpus == Decimal("0.5") and registration.memory_mib == 2000
    assert registration.references() == {"inputfile", "codec", "outputfile"}
    assert read_registration(registration.to_request()) == registration


def test_every_field_that_cannot_map_is_refused_by_name_in_one_answer() -> None:
    body = request(
        ulimits=[{"name": "nofile"}],
        privileged="yes",
        volumes=[{"name": "data", "host": {"sourcePath": "/"}}],
        linuxParameters={"devices": [{"hostPath": "/dev/fuse"}], "maxSwap": 1},
        logConfiguration={"logDriver": "splunk"},
    )
    body["nodeProperties"] = {}
    body["retryStrategy"] = {
        "attempts": 11,
        "evaluateOnExit": [{"onExitCode": "x", "action": "EXIT"}],
    }
    body["containerProperties"]["resourceRequirements"] = [{"type": "GPU", "value": "1"}]

    with pytest.raises(InvalidRequest) as refused:
        read_registration(body)

    problems = "\n".join(refused.value.problems)
    for named in ("nodeProperties", "containerProperties.ulimits", "containerProperties.privileged",
                  "containerProperties.volumes: host", "GPU", "onExitCode 'x' must be digits",
                  "retryStrategy.attempts", "linuxParameters.devices", "linuxParameters.maxSwap",
                  "logConfiguration: only the awslogs driver"):  # fmt: skip
        assert named in problems


def test_an_image_outside_the_allowlist_is_refused_saying_what_is_allowed() -> None:
    with pytest.raises(
        InvalidRequest, match=r"'perl:5' is not an image the operator allows; use one matching busybox\*"
    ):
        check_within_bounds(registered(image="perl:5"), POLICY)
    check_within_bounds(registered(image="registry.example.com/team/tool:1"), POLICY)


def test_resources_and_time_beyond_the_operator_bounds_are_refused() -> None:
    big = registered(
        resourceRequirements=[{"type": "VCPU", "value": "5"}, {"type": "MEMORY", "value": "9000"}]
    )
    with pytest.raises(InvalidRequest) as refused:
        check_within_bounds(big, POLICY)
    assert any("at most 4" in p for p in refused.value.problems)
    assert any("at most 8192 MiB" in p for p in refused.value.problems)


def test_registration_is_off_unless_enabled_and_only_for_allowed_subjects() -> None:
    with pytest.raises(Forbidden, match="JOBFN_REGISTRATION=on"):
        check_may_register(RegistrationPolicy(), "aws:AKID", frozenset())
    limited = RegistrationPolicy(enabled=True, images=("*",), allowed_subjects=("aws:AKIDTEAM",))
    with pytest.raises(Forbidden, match="aws:OTHER may not register"):
        check_may_register(limited, "aws:OTHER", frozenset())
    check_may_register(limited, "aws:AKIDTEAM", frozenset())


def test_the_built_job_substitutes_refs_keeps_unresolved_ones_and_maps_the_container() -> None:
    definition = as_definition(registered(), POLICY)
    job = definition.template.render(definition.validate({"inputfile": "in.mov"}))

    [container] = job["spec"]["template"]["spec"]["containers"]
    # AWS's command is the image's CMD (Kubernetes' args): the image's ENTRYPOINT still runs
    assert container["args"] == ["ffmpeg", "-i", "in.mov", "-c", "mp4", "-o", "Ref::outputfile"]
    assert "command" not in container
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "2000Mi"},
        "limits": {"memory": "2000Mi"},
    }
    assert container["env"] == [{"name": "MODE", "value": "fast"}]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert job["spec"]["backoffLimit"] == 2  # attempts 3
    assert job["spec"]["activeDeadlineSeconds"] == 360  # 120 s for each of 3 attempts


def test_caller_values_are_data_never_template_code() -> None:
    definition = as_definition(registered(command=["echo", "Ref::text", "{{ 7 * 7 }}"]), POLICY)
    job = definition.template.render(definition.validate({"text": "{{ 6 * 7 }}", "codec": "x"}))
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "echo",
        "{{ 6 * 7 }}",
        "{{ 7 * 7 }}",
    ]


def test_a_registered_definition_plans_like_any_other_and_records_its_revision() -> None:
    definition = as_definition(replace(registered(), revision=4), POLICY)
    plan = plan_submission(
        JobDefinitions([definition]),
        Submission("ffmpeg_parameters", {"inputfile": "a"}),
        JobSigner("sig"),
        "jobs",
    )
    metadata = plan.manifest["metadata"]
    assert metadata["labels"]["job_definition_name"] == "ffmpeg_parameters"
    assert metadata["labels"]["app.kubernetes.io/managed-by"] == "sig"
    assert metadata["annotations"][DEFINITION_REVISION_ANNOTATION] == "4"
    assert metadata["name"].startswith("ffmpeg-parameters-")


def test_submit_takes_the_pinned_revision_else_the_newest_active() -> None:
    one, two, three = (Registration("d", n, "busybox", active=n != 3) for n in (1, 2, 3))
    assert select_revision([one, two, three], None) == two
    assert select_revision([one, two, three], 3) == three
    assert select_revision([one, two, three], 7) is None


def test_turning_registration_on_needs_image_patterns() -> None:
    with pytest.raises(ConfigurationError, match="JOBFN_REGISTRATION_IMAGES"):
        load_settings({"JOBFN_REGISTRATION": "on"})
    policy = load_settings({"JOBFN_REGISTRATION": "on", "JOBFN_REGISTRATION_IMAGES": "busybox*, perl*",
                            "JOBFN_REGISTRATION_MAX_VCPUS": "1.5"}).registration  # fmt: skip
    assert (policy.enabled, policy.images, policy.max_vcpus) == (True, ("busybox*", "perl*"), Decimal("1.5"))


def test_overrides_cannot_get_around_the_operator_bounds() -> None:
    definition = as_definition(registered(), POLICY)
    within = Submission(
        "ffmpeg_parameters", overrides=Overrides(resources={"requests": {"cpu": "4", "memory": "8Gi"}})
    )
    beyond = Submission("ffmpeg_parameters", overrides=Overrides(resources={"limits": {"cpu": "4500m"}}))
    unreadable = Submission(
        "ffmpeg_parameters", overrides=Overrides(resources={"requests": {"memory": "lots"}})
    )

    plan_submission(JobDefinitions([definition]), within, JobSigner("sig"), "jobs")
    with pytest.raises(
        InvalidRequest, match="cpu limits '4500m' is more than definition 'ffmpeg_parameters' allows"
    ):
        plan_submission(JobDefinitions([definition]), beyond, JobSigner("sig"), "jobs")
    with pytest.raises(InvalidRequest, match="memory requests 'lots'"):
        plan_submission(JobDefinitions([definition]), unreadable, JobSigner("sig"), "jobs")


def test_a_multinode_definition_is_one_indexed_pod_per_node_succeeding_with_the_main_node() -> None:
    body = {
        "jobDefinitionName": "train",
        "type": "multinode",
        "nodeProperties": {
            "numNodes": 3,
            "mainNode": 1,
            "nodeRangeProperties": [
                {"targetNodes": "0:", "container": {"image": "busybox", "command": ["run"]}}
            ],
        },
    }
    registration = read_registration(body)
    assert read_registration(registration.to_request()) == registration

    spec = as_definition(registration, POLICY).template.render({})["spec"]

    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 3, 3)
    assert spec["successPolicy"] == {"rules": [{"succeededIndexes": "1"}]}
    assert spec["template"]["spec"]["subdomain"] == "jobfn-nodes"
    env = {e["name"]: e.get("value") for e in spec["template"]["spec"]["containers"][0]["env"]}
    assert env["AWS_BATCH_JOB_NUM_NODES"] == "3" and env["AWS_BATCH_JOB_MAIN_NODE_INDEX"] == "1"
    assert env["AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS"] == "$(JOBFN_JOB_NAME)-1.jobfn-nodes"


@pytest.mark.parametrize(
    ("node_properties", "problem"),
    [
        ({"numNodes": 1, "nodeRangeProperties": [{"targetNodes": "0:", "container": {"image": "busybox"}}]}, "numNodes"),
        ({"numNodes": 2, "mainNode": 2, "nodeRangeProperties": [{"targetNodes": "0:", "container": {"image": "busybox"}}]}, "mainNode"),
        ({"numNodes": 4, "nodeRangeProperties": [{"targetNodes": "0:1", "container": {"image": "busybox"}}, {"targetNodes": "2:"}]}, "exactly one range"),
    ],
)  # fmt: skip
def test_what_a_multinode_definition_cannot_ask_is_refused(
    node_properties: dict[str, Any], problem: str
) -> None:
    with pytest.raises(InvalidRequest, match=problem):
        read_registration(
            {"jobDefinitionName": "train", "type": "multinode", "nodeProperties": node_properties}
        )
