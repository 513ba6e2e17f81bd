"""RegisterJobDefinition and its kin through boto3, with jobs that run on the real node.

Two function processes share the cluster, as two replicas would: what one registers
the other describes and submits, because revisions live in the cluster (ConfigMaps).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.exceptions
import pytest
import yaml
from kubernetes import client

from tests.e2e.test_aws_batch import batch_client, start_aws_function, wait_for_status
from tests.helpers import ROOT, FunctionServer, create_namespace

REGISTRATION = {"JOBFN_REGISTRATION": "on", "JOBFN_REGISTRATION_IMAGES": "busybox*"}
ECHO = {
    "type": "container",
    "parameters": {"message": "the default message"},
    "containerProperties": {
        "image": "busybox",
        "command": ["sh", "-c", 'echo "$0 from $MODE"', "Ref::message"],
        "environment": [{"name": "MODE", "value": "a registered definition"}],
        "resourceRequirements": [{"type": "VCPU", "value": "0.1"}, {"type": "MEMORY", "value": "32"}],
    },
    "retryStrategy": {"attempts": 1},
    "timeout": {"attemptDurationSeconds": 120},
}


@pytest.fixture(scope="module")
def registry_namespace(api_client: client.ApiClient) -> Iterator[str]:
    name = create_namespace(api_client, "e2e-registered")
    yield name
    client.CoreV1Api(api_client).delete_namespace(name, propagation_policy="Background")


@pytest.fixture(scope="module")
def replicas(
    kubeconfig: Path, module_namespace: str, registry_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, Any]]:
    env = {**REGISTRATION, "JOBFN_REGISTRATION_NAMESPACE": registry_namespace}
    servers = [start_aws_function(module_namespace, tmp_path_factory, env) for _ in range(2)]
    yield batch_client(servers[0].url), batch_client(servers[1].url)
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def echo(replicas: tuple[Any, Any]) -> list[dict[str, Any]]:
    """Two revisions of `echo-registered`, registered through the first replica."""
    first, _ = replicas
    return [first.register_job_definition(jobDefinitionName="echo-registered", **ECHO) for _ in range(2)]


def pod_log(api_client: client.ApiClient, namespace: str, job_id: str) -> str:
    core = client.CoreV1Api(api_client)
    [pod] = core.list_namespaced_pod(namespace, label_selector=f"batch.kubernetes.io/job-name={job_id}").items
    log: str = core.read_namespaced_pod_log(pod.metadata.name, namespace)
    return log


def refusal(call: Any, **fields: Any) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(**fields)
    assert raised.value.response["Error"]["Code"] == "ClientException", raised.value.response
    message: str = raised.value.response["Error"]["Message"]
    return message


def test_each_registration_is_the_next_revision_with_its_arn(echo: list[dict[str, Any]]) -> None:
    assert [answer["revision"] for answer in echo] == [1, 2]
    assert echo[1]["jobDefinitionArn"].endswith(":job-definition/echo-registered:2")


def test_another_replica_submits_the_newest_revision_and_the_job_runs_for_real(
    replicas: tuple[Any, Any], echo: list[dict[str, Any]], api_client: client.ApiClient, module_namespace: str
) -> None:
    _, second = replicas
    job_id = second.submit_job(
        jobName="from-a-registration",
        jobQueue="main",
        jobDefinition="echo-registered",
        parameters={"message": "hello"},
    )["jobId"]

    job = wait_for_status(second, job_id, "SUCCEEDED", timeout=90)

    assert job["jobDefinition"] == echo[1]["jobDefinitionArn"]
    assert job["container"]["exitCode"] == 0
    assert pod_log(api_client, module_namespace, job_id) == "hello from a registered definition\n"


def test_a_pinned_revision_and_the_default_parameter_are_used(
    replicas: tuple[Any, Any], echo: list[dict[str, Any]], api_client: client.ApiClient, module_namespace: str
) -> None:
    first, _ = replicas
    job_id = first.submit_job(jobName="pinned", jobQueue="main", jobDefinition=echo[0]["jobDefinitionArn"])[
        "jobId"
    ]

    job = wait_for_status(first, job_id, "SUCCEEDED", timeout=90)

    assert job["jobDefinition"].endswith("echo-registered:1")
    assert (
        pod_log(api_client, module_namespace, job_id) == "the default message from a registered definition\n"
    )


def test_describe_filters_by_name_revision_arn_and_status_and_deregister_makes_inactive(
    replicas: tuple[Any, Any], echo: list[dict[str, Any]]
) -> None:
    first, second = replicas

    def revisions(**filters: Any) -> list[tuple[str, int, str]]:
        answer = second.describe_job_definitions(**filters)["jobDefinitions"]
        return [
            (d["jobDefinitionName"], d["revision"], d["status"])
            for d in answer
            if d["jobDefinitionName"] == "echo-registered"
        ]

    assert revisions(jobDefinitionName="echo-registered") == [
        ("echo-registered", 1, "ACTIVE"),
        ("echo-registered", 2, "ACTIVE"),
    ]
    assert revisions(jobDefinitions=["echo-registered:2"]) == [("echo-registered", 2, "ACTIVE")]
    assert revisions(jobDefinitions=[echo[0]["jobDefinitionArn"]]) == [("echo-registered", 1, "ACTIVE")]
    [described] = second.describe_job_definitions(jobDefinitions=["echo-registered:2"])["jobDefinitions"]
    assert described["containerProperties"]["command"] == ECHO["containerProperties"]["command"]  # type: ignore[index]
    assert described["parameters"] == {"message": "the default message"}

    first.deregister_job_definition(jobDefinition="echo-registered:1")

    assert revisions(status="INACTIVE") == [("echo-registered", 1, "INACTIVE")]
    assert revisions(status="ACTIVE") == [("echo-registered", 2, "ACTIVE")]
    message = refusal(second.submit_job, jobName="old", jobQueue="main", jobDefinition="echo-registered:1")
    assert "INACTIVE" in message
    # the file's definitions are described beside the registered ones, and always ACTIVE
    assert any(
        d["jobDefinitionName"] == "hello"
        for d in second.describe_job_definitions(status="ACTIVE")["jobDefinitions"]
    )


def test_what_the_operator_does_not_allow_is_refused_saying_what_to_change(replicas: tuple[Any, Any]) -> None:
    first, _ = replicas
    perl = {**ECHO, "containerProperties": {**ECHO["containerProperties"], "image": "perl:5.40"}}  # type: ignore[dict-item]
    assert "use one matching busybox*" in refusal(
        first.register_job_definition, jobDefinitionName="perl", **perl
    )

    limits = {
        **ECHO,
        "containerProperties": {
            **ECHO["containerProperties"],
            "ulimits": [{"name": "nofile", "hardLimit": 1, "softLimit": 1}],
        },
    }  # type: ignore[dict-item]
    assert "containerProperties.ulimits" in refusal(
        first.register_job_definition, jobDefinitionName="ulimits", **limits
    )

    # `hello` is a definition of the operator's file: it wins, so it cannot be registered over
    assert "definitions file" in refusal(first.register_job_definition, jobDefinitionName="hello", **ECHO)
    assert "definitions file" in refusal(first.deregister_job_definition, jobDefinition="hello:1")


def test_registration_is_refused_where_the_operator_did_not_turn_it_on(
    kubeconfig: Path, module_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    server: FunctionServer = start_aws_function(module_namespace, tmp_path_factory)
    try:
        batch = batch_client(server.url)
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            batch.register_job_definition(jobDefinitionName="echo-registered", **ECHO)
        assert "JOBFN_REGISTRATION=on" in raised.value.response["Error"]["Message"]
    finally:
        server.stop()


def test_each_array_child_reads_batchs_variables_on_the_real_node(
    replicas: tuple[Any, Any], api_client: client.ApiClient, module_namespace: str
) -> None:
    first, _ = replicas
    shard = {
        **ECHO,
        "containerProperties": {
            "image": "busybox",
            "command": ["sh", "-c", 'echo "$AWS_BATCH_JOB_ID $AWS_BATCH_JOB_ARRAY_INDEX $AWS_BATCH_JQ_NAME"'],
        },
    }
    first.register_job_definition(jobDefinitionName="shard", **shard)
    job_id = first.submit_job(
        jobName="shards", jobQueue="main", jobDefinition="shard", arrayProperties={"size": 3}
    )["jobId"]

    wait_for_status(first, job_id, "SUCCEEDED", timeout=90)

    core = client.CoreV1Api(api_client)
    pods = core.list_namespaced_pod(
        module_namespace, label_selector=f"batch.kubernetes.io/job-name={job_id}"
    ).items
    logs = sorted(core.read_namespaced_pod_log(pod.metadata.name, module_namespace) for pod in pods)
    assert logs == [f"{job_id}:{index} {index} main\n" for index in range(3)]


def exiting(code: int) -> dict[str, Any]:
    return {
        **ECHO,
        "containerProperties": {"image": "busybox", "command": ["sh", "-c", f"exit {code}"]},
        "retryStrategy": {"attempts": 2, "evaluateOnExit": [{"onExitCode": "3", "action": "EXIT"}]},
    }


def test_an_exit_rule_stops_retries_and_an_unmatched_failure_is_retried_on_the_real_node(
    replicas: tuple[Any, Any],
) -> None:
    first, _ = replicas
    first.register_job_definition(jobDefinitionName="exits-3", **exiting(3))
    first.register_job_definition(jobDefinitionName="exits-4", **exiting(4))
    stopped = first.submit_job(jobName="stopped", jobQueue="main", jobDefinition="exits-3")["jobId"]
    retried = first.submit_job(jobName="retried", jobQueue="main", jobDefinition="exits-4")["jobId"]

    # No rule matches 4, so it is retried (AWS's rule), after the Job controller's 10 s back-off.
    retried_job = wait_for_status(first, retried, "FAILED", timeout=120)
    stopped_job = wait_for_status(first, stopped, "FAILED", timeout=30)

    assert [a["container"]["exitCode"] for a in stopped_job["attempts"]] == [3]
    assert [a["container"]["exitCode"] for a in retried_job["attempts"]] == [4, 4]


def test_tags_of_jobs_and_registered_revisions_are_listed_added_and_removed(
    replicas: tuple[Any, Any], echo: list[dict[str, Any]]
) -> None:
    first, second = replicas
    job_arn = first.submit_job(
        jobName="tagged", jobQueue="main", jobDefinition="echo-registered", tags={"team": "a"}
    )["jobArn"]

    first.tag_resource(resourceArn=job_arn, tags={"cost-centre": "42", "team": "b"})
    assert second.list_tags_for_resource(resourceArn=job_arn)["tags"] == {"cost-centre": "42", "team": "b"}
    first.untag_resource(resourceArn=job_arn, tagKeys=["team"])
    assert second.list_tags_for_resource(resourceArn=job_arn)["tags"] == {"cost-centre": "42"}
    assert describe_job_tags(second, job_arn) == {"cost-centre": "42"}

    revision_arn = echo[1]["jobDefinitionArn"]
    first.tag_resource(resourceArn=revision_arn, tags={"owner": "pipelines"})
    assert second.list_tags_for_resource(resourceArn=revision_arn)["tags"] == {"owner": "pipelines"}
    [described] = second.describe_job_definitions(jobDefinitions=[revision_arn])["jobDefinitions"]
    assert described["tags"] == {"owner": "pipelines"}

    queue_arn = "arn:aws:batch:us-east-1:000000000000:job-queue/main"
    assert "queues and compute environments" in refusal(
        first.tag_resource, resourceArn=queue_arn, tags={"a": "b"}
    )
    assert "reserved" in refusal(first.tag_resource, resourceArn=job_arn, tags={"aws:x": "y"})
    assert "the operator's" in refusal(
        first.tag_resource,
        resourceArn="arn:aws:batch:us-east-1:000000000000:job-definition/hello:1",
        tags={"a": "b"},
    )


def describe_job_tags(batch: Any, job_arn: str) -> dict[str, str]:
    [job] = batch.describe_jobs(jobs=[job_arn.rpartition("/")[2]])["jobs"]
    tags: dict[str, str] = job["tags"]
    return tags


def nodes_service() -> dict[str, Any]:
    """deploy/components/registration's headless Service, in the test's namespace instead."""
    path = ROOT / "deploy" / "components" / "registration" / "nodes-service.yaml"
    service: dict[str, Any] = yaml.safe_load(path.read_text())
    del service["metadata"]["namespace"]
    return service


MEETING = (
    'if [ "$AWS_BATCH_JOB_NODE_INDEX" = "$AWS_BATCH_JOB_MAIN_NODE_INDEX" ]; then nc -l -p 7000; '
    'else until echo "node $AWS_BATCH_JOB_NODE_INDEX of $AWS_BATCH_JOB_NUM_NODES" '
    '| nc -w 2 "$AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS" 7000; do sleep 1; done; fi'
)


def test_a_multinode_job_runs_its_nodes_at_once_they_meet_at_the_main_node_and_it_succeeds_with_it(
    replicas: tuple[Any, Any], api_client: client.ApiClient, module_namespace: str
) -> None:
    first, _ = replicas
    client.CoreV1Api(api_client).create_namespaced_service(module_namespace, nodes_service())
    container = {"image": "busybox", "command": ["sh", "-c", MEETING]}
    first.register_job_definition(
        jobDefinitionName="meeting",
        type="multinode",
        nodeProperties={
            "numNodes": 2,
            "mainNode": 0,
            "nodeRangeProperties": [{"targetNodes": "0:", "container": container}],
        },
        timeout={"attemptDurationSeconds": 120},
    )
    [described] = first.describe_job_definitions(jobDefinitions=["meeting:1"])["jobDefinitions"]
    assert (described["type"], described["nodeProperties"]["numNodes"]) == ("multinode", 2)

    job_id = first.submit_job(jobName="meeting", jobQueue="main", jobDefinition="meeting")["jobId"]

    wait_for_status(first, job_id, "SUCCEEDED", timeout=90)
    core = client.CoreV1Api(api_client)
    pods = core.list_namespaced_pod(
        module_namespace, label_selector=f"batch.kubernetes.io/job-name={job_id}"
    ).items
    main = next(p for p in pods if p.metadata.annotations["batch.kubernetes.io/job-completion-index"] == "0")
    assert core.read_namespaced_pod_log(main.metadata.name, module_namespace) == "node 1 of 2\n"
    assert main.spec.hostname == f"{job_id}-0" and main.spec.subdomain == "jobfn-nodes"
