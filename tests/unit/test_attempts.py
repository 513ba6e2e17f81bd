"""AWS Batch's attempts, planned purely: per-child retries, AWS_BATCH_JOB_ATTEMPT, the gate,
N_TO_N children, and what the pass decides for a pod waiting in its gate."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobfn._array_jobs import array_child_views
from jobfn._attempts import GATE_CONTAINER, GATE_EXIT_CODE, SINGLE, job_kind
from jobfn._contract import JobSigner
from jobfn._definitions import JobDefinitions
from jobfn._dependencies import Dependency
from jobfn._errors import InvalidRequest
from jobfn._failures import CONTAINER_EXITED, OUT_OF_MEMORY, failure_of
from jobfn._gate_decisions import Decision, decide_pod, decision_patch, predecessor, undecided
from jobfn._plan import plan_submission
from jobfn._registered_template import as_definition
from jobfn._registration_request import read_registration
from jobfn._retry_rules import read_rules
from jobfn._settings import RegistrationPolicy
from jobfn._status import job_view
from jobfn._submission import Overrides, Submission

POLICY = RegistrationPolicy(enabled=True, images=("busybox*",))


def planned(
    attempts: int = 1,
    rules: list[dict[str, str]] | None = None,
    size: int | None = None,
    depends_on: tuple[Dependency, ...] = (),
    batch: bool = True,
) -> dict[str, Any]:
    body = {
        "jobDefinitionName": "work",
        "type": "container",
        "containerProperties": {"image": "busybox", "command": ["sh", "-c", "echo $AWS_BATCH_JOB_ATTEMPT"]},
        "retryStrategy": {"attempts": attempts, "evaluateOnExit": rules or []},
    }
    definition = as_definition(read_registration(body), POLICY)
    overrides = Overrides(array_size=size)
    submission = Submission("work", overrides=overrides, depends_on=depends_on, batch_environment=batch)
    return plan_submission(JobDefinitions([definition]), submission, JobSigner("sig"), "jobs").manifest


def env_of(job: dict[str, Any]) -> dict[str, Any]:
    [container] = job["spec"]["template"]["spec"]["containers"]
    return {var["name"]: var.get("value", var.get("valueFrom")) for var in container["env"]}


def test_a_job_never_retried_runs_as_attempt_1_with_no_gate() -> None:
    job = planned(attempts=1)
    assert env_of(job)["AWS_BATCH_JOB_ATTEMPT"] == "1"
    assert "initContainers" not in job["spec"]["template"]["spec"]
    assert "completionMode" not in job["spec"]


def test_a_retried_job_runs_as_its_only_index_and_reads_its_attempt_from_the_gate() -> None:
    job = planned(attempts=3)
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["backoffLimitPerIndex"]) == ("Indexed", 1, 2)
    assert "backoffLimit" not in spec
    assert env_of(job)["AWS_BATCH_JOB_ATTEMPT"] == {
        "fileKeyRef": {"volumeName": "jobfn-gate", "path": "attempt.env", "key": "AWS_BATCH_JOB_ATTEMPT"}
    }
    [gate] = spec["template"]["spec"]["initContainers"]
    assert gate["name"] == GATE_CONTAINER and gate["securityContext"]["runAsNonRoot"] is True
    # a single job still: not an array, no children, AWS's job id without an index
    assert job_kind(job) == SINGLE and job_view(job).array_size is None
    assert array_child_views(job, []) == []
    assert env_of(job)["AWS_BATCH_JOB_ID"] == job["metadata"]["name"]


def test_each_array_child_retries_on_its_own_and_sequential_children_stop_at_the_first_failure() -> None:
    array = planned(attempts=2, size=3)["spec"]
    assert (array["backoffLimitPerIndex"], "maxFailedIndexes" in array) == (1, False)

    sequential = planned(attempts=2, size=3, depends_on=(Dependency("", "SEQUENTIAL"),))["spec"]
    assert (sequential["parallelism"], sequential["maxFailedIndexes"]) == (1, 0)


def test_rules_a_pod_failure_policy_can_run_are_compiled_and_need_no_decision() -> None:
    job = planned(attempts=2, rules=[{"onExitCode": "3", "action": "EXIT"}])
    assert job["spec"]["podFailurePolicy"]["rules"] == [
        {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [3]}}
    ]
    assert "jobfn.dev/gate" not in (job["spec"]["template"].get("metadata") or {}).get("labels", {})


def test_rules_on_reasons_make_a_retry_wait_in_its_gate_for_the_pass() -> None:
    job = planned(attempts=3, rules=[{"onReason": "OutOfMemory*", "action": "EXIT"}])
    template = job["spec"]["template"]
    assert template["metadata"]["labels"]["jobfn.dev/gate"] == "decide"
    assert json.loads(template["metadata"]["annotations"]["jobfn.dev/retry-rules"]) == [
        {"action": "EXIT", "on_reason": "OutOfMemory*"}
    ]
    # every failure is counted; only the gate's own exit fails the child, as the pass decided
    assert job["spec"]["podFailurePolicy"]["rules"] == [
        {
            "action": "FailIndex",
            "onExitCodes": {"containerName": GATE_CONTAINER, "operator": "In", "values": [GATE_EXIT_CODE]},
        }
    ]
    [gate] = template["spec"]["initContainers"]
    assert {"name": "JOBFN_DECIDE", "value": "retries"} in gate["env"]


def test_an_n_to_n_child_is_created_scheduling_gated_and_only_an_array_may_ask() -> None:
    job = planned(size=2, depends_on=(Dependency("first", "N_TO_N"),))
    template = job["spec"]["template"]
    assert template["spec"]["schedulingGates"] == [{"name": "jobfn.dev/n-to-n"}]
    assert json.loads(template["metadata"]["annotations"]["jobfn.dev/n-to-n"]) == ["first"]
    assert "suspend" not in job["spec"]  # it does not wait for all of `first`, child by child
    assert job_view(job).n_to_n == ("first",)
    with pytest.raises(InvalidRequest, match="submit an array job"):
        planned(depends_on=(Dependency("first", "N_TO_N"),))


def pod(
    index: int = 0,
    failures: int = 0,
    phase: str = "Pending",
    annotations: dict[str, str] | None = None,
    terminated: dict[str, Any] | None = None,
    created: str = "2026-03-01T12:00:00Z",
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if terminated is not None:
        status["containerStatuses"] = [{"name": "main", "state": {"terminated": terminated}}]
    return {
        "metadata": {
            "name": f"work-{index}-{failures}",
            "creationTimestamp": created,
            "resourceVersion": "7",
            "labels": {"batch.kubernetes.io/job-name": "work"},
            "annotations": {
                "batch.kubernetes.io/job-completion-index": str(index),
                "batch.kubernetes.io/job-index-failure-count": str(failures),
                **(annotations or {}),
            },
        },
        "spec": {"nodeName": "jobfn-node", "schedulingGates": [{"name": "jobfn.dev/n-to-n"}]},
        "status": status,
    }


RULES = json.dumps(
    [{"action": "RETRY", "on_exit_code": "1"}, {"action": "EXIT", "on_reason": "OutOfMemory*"}]
)


def test_a_retry_whose_predecessor_matched_an_exit_rule_exits_and_other_failures_run() -> None:
    oom = pod(phase="Failed", terminated={"exitCode": 137, "reason": "OOMKilled"})
    plain = pod(phase="Failed", terminated={"exitCode": 1, "reason": "Error"})
    waiting = pod(failures=1, annotations={"jobfn.dev/retry-rules": RULES})

    assert undecided(waiting) and not undecided(pod(annotations={"jobfn.dev/retry-rules": RULES}))
    assert predecessor(waiting, [oom, waiting]) is oom
    decision = decide_pod(waiting, oom, {})
    assert decision.action == "exit"
    assert "EXIT on onReason 'OutOfMemory*' matched attempt 1" in decision.reason
    assert decide_pod(waiting, plain, {}) == Decision("run")  # the first rule: RETRY on exit code 1


def test_an_n_to_n_child_runs_once_its_dependency_s_child_succeeded_and_exits_if_it_failed() -> None:
    waiting = pod(index=1, annotations={"jobfn.dev/n-to-n": json.dumps(["first"])})
    assert decide_pod(waiting, None, {"first:1": "RUNNING"}).action == "wait"
    assert decide_pod(waiting, None, {"first:1": "FAILED"}) == Decision("exit", "dependency first:1 FAILED")
    assert decide_pod(waiting, None, {}).reason == "dependency first:1 no longer exists"
    run = decide_pod(waiting, None, {"first:1": "SUCCEEDED"})
    assert decision_patch(waiting, run) == {
        "metadata": {"annotations": {"jobfn.dev/decision": "run", "jobfn.dev/decision-reason": ""}},
        "spec": {"schedulingGates": None},  # the scheduler may place it now
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"containerStatuses": [{"state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]},
         (137, OUT_OF_MEMORY, CONTAINER_EXITED)),
        ({"containerStatuses": [{"state": {"terminated": {"exitCode": 2, "reason": "Error"}}}]},
         (2, "", CONTAINER_EXITED)),
        ({"reason": "Evicted", "conditions": [{"type": "DisruptionTarget", "status": "True",
                                               "reason": "TerminationByKubelet"}]},
         (None, "Evicted", "Host EC2 (instance jobfn-node) terminated.")),
        ({"reason": "DeadlineExceeded",
          "containerStatuses": [{"state": {"terminated": {"exitCode": 137, "reason": "Error"}}}]},
         (137, "DeadlineExceeded", "Job attempt duration exceeded timeout")),
        ({"conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}]},
         (None, "PreemptionByScheduler", "Host EC2 (instance jobfn-node) terminated.")),
    ],
)  # fmt: skip
def test_a_failed_pod_is_spelled_as_aws_reports_the_attempt(status: dict, expected: tuple) -> None:
    failure = failure_of({"spec": {"nodeName": "jobfn-node"}, "status": {"phase": "Failed", **status}})
    assert (failure.exit_code, failure.reason, failure.status_reason) == expected
    problems: list[str] = []
    [lost_host] = read_rules([{"onStatusReason": "Host EC2*", "action": "RETRY"}], "", problems)
    assert lost_host.matches(failure) == ("Host" in expected[2])


def test_a_retry_whose_predecessor_is_gone_is_decided_as_after_a_lost_host() -> None:
    # Failed pods of an Indexed Job are kept; a predecessor gone was deleted (evicted, preempted).
    rules = json.dumps([{"action": "EXIT", "on_status_reason": "Host EC2*"}])
    waiting = pod(failures=1, annotations={"jobfn.dev/retry-rules": rules})
    decision = decide_pod(waiting, predecessor(waiting, [waiting]), {})
    assert decision.action == "exit"
    assert decision.reason.endswith("matched attempt 1: Host EC2 (instance unknown) terminated.")


def test_a_multinode_job_is_no_array_and_each_node_is_its_id_and_index() -> None:
    body = {
        "jobDefinitionName": "train",
        "type": "multinode",
        "nodeProperties": {"numNodes": 2, "mainNode": 0,
                           "nodeRangeProperties": [{"targetNodes": "0:", "container": {"image": "busybox"}}]},
        "retryStrategy": {"attempts": 2},
    }  # fmt: skip
    definition = as_definition(read_registration(body), POLICY)
    submission = Submission("train", batch_environment=True)
    job = plan_submission(JobDefinitions([definition]), submission, JobSigner("sig"), "jobs").manifest

    env = env_of(job)
    assert "AWS_BATCH_JOB_ARRAY_INDEX" not in env
    assert env["AWS_BATCH_JOB_ID"] == f"{job['metadata']['name']}#$(AWS_BATCH_JOB_NODE_INDEX)"
    names = [var["name"] for var in job["spec"]["template"]["spec"]["containers"][0]["env"]]
    assert names.index("AWS_BATCH_JOB_ID") > names.index("AWS_BATCH_JOB_NODE_INDEX")  # expanded from it
    # retried per node, and a node out of attempts fails the job
    assert (job["spec"]["backoffLimitPerIndex"], job["spec"]["maxFailedIndexes"]) == (1, 0)
    view = job_view(job)
    assert (view.kind, view.array_size) == ("multinode", None)
    assert [child.name for child in array_child_views(job, [])] == [f"{view.name}#0", f"{view.name}#1"]


def test_only_a_change_that_may_free_a_waiting_pod_makes_the_function_look_for_one() -> None:
    from jobfn._gate_state import may_free_a_waiting_pod

    plain = planned(attempts=3)
    assert not may_free_a_waiting_pod({**plain, "status": {"failed": 1}})  # the Job controller decides
    ruled = planned(attempts=3, rules=[{"onReason": "OutOfMemory*", "action": "EXIT"}])
    assert not may_free_a_waiting_pod(ruled)
    assert may_free_a_waiting_pod({**ruled, "status": {"failed": 1}})
    array = planned(size=2)
    assert may_free_a_waiting_pod({**array, "status": {"completedIndexes": "0"}})
