"""Compute environments: where a queue's pods may run, in order, and the deployment's default."""

from __future__ import annotations

import textwrap

import pytest

from jobfn._contract import JobSigner
from jobfn._definitions import JobDefinitions
from jobfn._errors import DefinitionError
from jobfn._plan import plan_submission
from jobfn._submission import Submission

FILE = textwrap.dedent(
    """
    compute_environments:
      - name: spot
        node_selector: {pool: spot}
        tolerations: [{key: dedicated, value: batch, effect: NoSchedule}]
        priority_class: batch-low
      - name: on-demand
        node_selector: {pool: on-demand}
      - name: jobs-pool
        node_selector: {role: jobs}
    default_compute_environment: jobs-pool
    queues:
      - name: cheap
        compute_environments: [spot, on-demand]
      - name: plain
    definitions:
      - name: echo
        template: |
          apiVersion: batch/v1
          kind: Job
          metadata: {name: echo}
          spec:
            template:
              spec:
                restartPolicy: Never
                containers: [{name: main, image: busybox}]
    """
)


def pod_of(queue: str | None, batch: bool = False) -> dict:
    submission = Submission("echo", queue=queue, batch_environment=batch)
    job = plan_submission(JobDefinitions.from_yaml(FILE), submission, JobSigner("sig"), "jobs").manifest
    pod: dict = job["spec"]["template"]["spec"]
    return pod


def test_a_queue_of_two_requires_either_and_prefers_the_first() -> None:
    pod = pod_of("cheap", batch=True)

    affinity = pod["affinity"]["nodeAffinity"]
    spot = {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["spot"]}]}
    on_demand = {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["on-demand"]}]}
    assert affinity["requiredDuringSchedulingIgnoredDuringExecution"] == {
        "nodeSelectorTerms": [spot, on_demand]
    }
    assert affinity["preferredDuringSchedulingIgnoredDuringExecution"] == [
        {"weight": 100, "preference": spot},
        {"weight": 90, "preference": on_demand},
    ]
    assert pod["tolerations"] == [{"key": "dedicated", "value": "batch", "effect": "NoSchedule"}]
    assert pod["priorityClassName"] == "batch-low"
    assert {"name": "AWS_BATCH_CE_NAME", "value": "spot"} in pod["containers"][0]["env"]


@pytest.mark.parametrize("queue", ["plain", None])
def test_a_job_whose_queue_names_none_runs_in_the_default(queue: str | None) -> None:
    assert pod_of(queue)["nodeSelector"] == {"role": "jobs"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("default_compute_environment: jobs-pool", "default_compute_environment: gone"), "is not one of"),
        (
            ("compute_environments: [spot, on-demand]", "compute_environments: [spot, gone]"),
            "must name compute",
        ),
        (("node_selector: {role: jobs}", "node_selector: [role]"), "node_selector must map"),
    ],
)
def test_a_wrong_reference_is_refused_when_the_file_loads(change: tuple[str, str], message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        JobDefinitions.from_yaml(FILE.replace(*change))
