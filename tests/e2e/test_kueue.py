"""Queues backed by a real Kueue, through boto3 and REST, with jobs running on the real node.

Kueue is built from its Go module and installed on first use (the ``kueue`` fixture,
tests/kueue/install.py); it sees only namespaces labelled ``jobfn.test/kueue=true``, so this
module's namespace opts in and no other test's Job ever passes through its webhooks.

The Kueue objects: one ResourceFlavor, two WorkloadPriorityClasses, and per test a
ClusterQueue of this namespace with a CPU quota a few 100m jobs fill.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from kubernetes import client

from tests.cluster.node import NODE_NAME
from tests.e2e.test_aws_batch import batch_client, describe, wait_for_status
from tests.e2e.test_dependencies import settling_pass
from tests.helpers import FunctionServer, create_namespace, start_function, wait_for
from tests.kueue.install import OPT_IN_LABEL

GROUP, VERSION = "kueue.x-k8s.io", "v1beta2"
FLAVOR = "jobfn-test-flavor"
LOW, HIGH = "jobfn-test-low", "jobfn-test-high"

DEFINITIONS = f"""
queues:
  - {{name: two-at-a-time, kueue_queue: two}}
  - {{name: low, kueue_queue: low, kueue_priority_class: {LOW}, priority: 1}}
  - {{name: high, kueue_queue: high, kueue_priority_class: {HIGH}, priority: 10}}
  - {{name: plain}}
definitions:
  - name: work
    parameters:
      seconds: {{type: integer, minimum: 0, maximum: 600, default: 0}}
    template: |
      apiVersion: batch/v1
      kind: Job
      metadata: {{name: work}}
      spec:
        backoffLimit: 0
        template:
          spec:
            restartPolicy: Never
            terminationGracePeriodSeconds: 1
            containers:
              - name: main
                image: busybox
                imagePullPolicy: IfNotPresent
                command: ["sleep", "{{{{ seconds }}}}"]
                resources: {{requests: {{cpu: 100m}}}}
"""


@pytest.fixture(scope="module")
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


@pytest.fixture(scope="module")
def kueue_namespace(
    kueue: float, api_client: client.ApiClient, custom: client.CustomObjectsApi
) -> Iterator[str]:
    """A namespace opted into Kueue, with its cluster-wide objects in place."""
    _apply_cluster_object(custom, "resourceflavors", {"metadata": {"name": FLAVOR}, "spec": {}})
    for name, value in ((LOW, 10), (HIGH, 1000)):
        _apply_cluster_object(custom, "workloadpriorityclasses", {"metadata": {"name": name}, "value": value})
    name = create_namespace(api_client, "e2e-kueue")
    core = client.CoreV1Api(api_client)
    core.patch_namespace(name, {"metadata": {"labels": {OPT_IN_LABEL: "true"}}})
    yield name
    core.delete_namespace(name, propagation_policy="Background")
    # Gone while Kueue still runs: it must drop its finalizers from the Workloads, and it is
    # stopped when the session's last user leaves.
    wait_for(lambda: not core.list_namespace(field_selector=f"metadata.name={name}").items, timeout=120)


def _apply_cluster_object(custom: client.CustomObjectsApi, plural: str, body: dict[str, Any]) -> None:
    kind = {"resourceflavors": "ResourceFlavor", "workloadpriorityclasses": "WorkloadPriorityClass"}[plural]
    try:
        custom.create_cluster_custom_object(
            GROUP, VERSION, plural, {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, **body}
        )
    except client.ApiException as error:
        if error.status != 409:
            raise


@pytest.fixture
def cluster_queue(
    custom: client.CustomObjectsApi, kueue_namespace: str
) -> Iterator[Callable[[str, list[str]], str]]:
    """``make(cpu, local_queues)``: a ClusterQueue of this test with that CPU quota, and
    LocalQueues of those names in the namespace pointing at it; deleted after the test."""
    made: list[str] = []

    def make(cpu: str, local_queues: list[str]) -> str:
        name = f"{kueue_namespace}-{uuid.uuid4().hex[:4]}"
        spec = {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": kueue_namespace}},
            "resourceGroups": [
                {
                    "coveredResources": ["cpu"],
                    "flavors": [{"name": FLAVOR, "resources": [{"name": "cpu", "nominalQuota": cpu}]}],
                }
            ],
        }
        custom.create_cluster_custom_object(
            GROUP, VERSION, "clusterqueues",
            {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ClusterQueue", "metadata": {"name": name}, "spec": spec},
        )  # fmt: skip
        made.append(name)
        for local in local_queues:
            custom.create_namespaced_custom_object(
                GROUP, VERSION, kueue_namespace, "localqueues",
                {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LocalQueue", "metadata": {"name": local},
                 "spec": {"clusterQueue": name}},
            )  # fmt: skip
        return name

    yield make
    for local in custom.list_namespaced_custom_object(GROUP, VERSION, kueue_namespace, "localqueues")[
        "items"
    ]:
        custom.delete_namespaced_custom_object(
            GROUP, VERSION, kueue_namespace, "localqueues", local["metadata"]["name"]
        )
    for name in made:  # Kueue keeps it until its last workload is gone (the namespace's deletion)
        custom.delete_cluster_custom_object(GROUP, VERSION, "clusterqueues", name)


@pytest.fixture(scope="module")
def server(kueue_namespace: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionServer]:
    directory = tmp_path_factory.mktemp("kueue")
    (directory / "definitions.yaml").write_text(DEFINITIONS)
    server = start_function(kueue_namespace, directory / "definitions.yaml", directory / "log")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def batch(server: FunctionServer) -> Any:
    return batch_client(server.url)


def submit(batch: Any, queue: str, seconds: int, **fields: Any) -> str:
    job_id: str = batch.submit_job(
        jobName=f"{queue}-{seconds}s", jobQueue=queue, jobDefinition="work",
        parameters={"seconds": str(seconds)}, **fields,
    )["jobId"]  # fmt: skip
    return job_id


def rest_job(server: FunctionServer, name: str) -> dict[str, Any]:
    answer = requests.get(f"{server.url}/jobs/{name}", timeout=30)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def workloads_of(custom: client.CustomObjectsApi, namespace: str, job_uid: str) -> list[dict[str, Any]]:
    found = custom.list_namespaced_custom_object(
        GROUP, VERSION, namespace, "workloads", label_selector=f"kueue.x-k8s.io/job-uid={job_uid}"
    )
    return list(found["items"])


def test_a_third_job_waits_runnable_for_quota_until_one_of_two_finishes(
    batch: Any, server: FunctionServer, cluster_queue: Callable[[str, list[str]], str]
) -> None:
    cluster_queue("200m", ["two"])  # two jobs of 100m at a time
    short, long = submit(batch, "two-at-a-time", 8), submit(batch, "two-at-a-time", 120)
    wait_for_status(batch, short, "RUNNING", timeout=120)
    wait_for_status(batch, long, "RUNNING", timeout=120)

    third = requests.post(
        f"{server.url}/jobs",
        json={"definition": "work", "arguments": {"seconds": 0}, "queue": "two-at-a-time"},
        timeout=30,
    ).json()["name"]
    waiting = wait_for(
        lambda: "insufficient unused quota" in (job := rest_job(server, third))["reason"] and job, timeout=30
    )

    assert waiting["state"] == "RUNNABLE"
    assert waiting["reason"].startswith("Waiting for quota: couldn't assign flavors to pod set main")
    assert describe(batch, third)["statusReason"] == waiting["reason"]
    done = wait_for_status(batch, third, "SUCCEEDED", timeout=120)
    first = describe(batch, short)
    assert first["status"] == "SUCCEEDED"
    assert done["startedAt"] >= first["stoppedAt"], "admitted only once a place of the quota was free"
    assert describe(batch, long)["status"] == "RUNNING", "the quota held two jobs, not three"
    assert [pod["node"] for pod in rest_job(server, third)["pods"]] == [NODE_NAME]
    batch.terminate_job(jobId=long, reason="done")


def test_a_higher_priority_job_is_admitted_first_and_the_snapshot_shows_kueues_order(
    batch: Any, cluster_queue: Callable[[str, list[str]], str]
) -> None:
    cluster_queue("100m", ["low", "high"])  # one job at a time, both queues in one ClusterQueue
    holding = submit(batch, "low", 300)  # until the order is seen, then terminated
    wait_for_status(batch, holding, "RUNNING", timeout=120)
    first_low = submit(batch, "low", 1)
    time.sleep(1.1)  # Kueue's FIFO is by creation time, which Kubernetes keeps in whole seconds
    second_low, high = submit(batch, "low", 1), submit(batch, "high", 1)

    def front(queue: str) -> list[str]:
        snapshot = batch.get_job_queue_snapshot(jobQueue=queue)
        return [job["jobArn"].rpartition("/")[2] for job in snapshot["frontOfQueue"]["jobs"]]

    assert wait_for(lambda: front("low") == [first_low, second_low], timeout=30)
    assert wait_for(lambda: front("high") == [high], timeout=30)
    snapshot = batch.get_job_queue_snapshot(jobQueue="low")
    usage = snapshot["queueUtilization"]["totalCapacityUsage"]
    assert usage == [{"capacityUnit": "cpu", "quantity": 0.1}]  # the holding job's 100m
    assert all(job["earliestTimeAtPosition"] > 0 for job in snapshot["frontOfQueue"]["jobs"])
    batch.terminate_job(jobId=holding, reason="let the queue move")

    high_done, first_done, second_done = (
        wait_for_status(batch, job, "SUCCEEDED", timeout=180) for job in (high, first_low, second_low)
    )
    # One at a time (100m), each running a second: an order is told apart from its reverse.
    assert high_done["startedAt"] >= describe(batch, holding)["stoppedAt"]
    assert first_done["startedAt"] >= high_done["stoppedAt"], "Kueue admits the higher priority first"
    assert second_done["startedAt"] >= first_done["stoppedAt"], "then in submission order"


def test_a_job_with_dependencies_reaches_kueue_only_when_they_succeed(
    batch: Any,
    kueue_namespace: str,
    custom: client.CustomObjectsApi,
    batch_api: client.BatchV1Api,
    cluster_queue: Callable[[str, list[str]], str],
) -> None:
    cluster_queue("200m", ["two"])
    dependency = submit(batch, "plain", 3)
    after = submit(batch, "two-at-a-time", 0, dependsOn=[{"jobId": dependency}])

    waiting = describe(batch, after)
    assert (waiting["status"], waiting["statusReason"]) == (
        "PENDING",
        f"Waiting for dependencies: {dependency}",
    )
    uid = batch_api.read_namespaced_job(after, kueue_namespace).metadata.uid
    assert workloads_of(custom, kueue_namespace, uid) == [], "Kueue must not see it before its dependency"
    wait_for_status(batch, dependency, "SUCCEEDED", timeout=120)
    assert settling_pass(kueue_namespace)["released"] == 1

    wait_for_status(batch, after, "SUCCEEDED", timeout=120)
    [workload] = workloads_of(custom, kueue_namespace, uid)
    admitted = {c["type"]: c["status"] for c in workload["status"]["conditions"]}
    assert admitted["Admitted"] == "True", "Kueue admitted it"


def test_kueue_sees_no_job_outside_the_namespaces_that_opt_in(
    kueue: float, namespace: str, batch_api: client.BatchV1Api, api_client: client.ApiClient
) -> None:
    admission = client.AdmissionregistrationV1Api(api_client)
    configurations = [
        *admission.list_mutating_webhook_configuration(label_selector="app.kubernetes.io/name=kueue").items,
        *admission.list_validating_webhook_configuration(label_selector="app.kubernetes.io/name=kueue").items,
    ]
    on_jobs = [
        webhook
        for configuration in configurations
        for webhook in configuration.webhooks
        if any("batch" in (rule.api_groups or []) for rule in webhook.rules or [])
    ]
    assert len(on_jobs) == 2  # Kueue's mutating and validating webhooks on batch/v1 Jobs
    assert all(w.namespace_selector.match_labels == {OPT_IN_LABEL: "true"} for w in on_jobs)
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "labelled", "labels": {"kueue.x-k8s.io/queue-name": "no-such-queue"}},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
                                       "containers": [{"name": "main", "image": "busybox", "command": ["true"]}]}}},
    }  # fmt: skip

    created = batch_api.create_namespaced_job(namespace, job)

    assert not created.spec.suspend, "Kueue's webhook suspended a Job of a namespace that did not opt in"
