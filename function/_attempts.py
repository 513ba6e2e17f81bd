"""AWS Batch's attempts on a Kubernetes Job: each child retried on its own, the attempt each pod
runs as (``AWS_BATCH_JOB_ATTEMPT``), and the gate that holds a pod until a decision is made.

Kubernetes counts the failed pods of each index of an Indexed Job (``backoffLimitPerIndex``) and
writes on each new pod how many of its index failed before it (the annotation
``batch.kubernetes.io/job-index-failure-count``). So a job whose attempts are counted runs
Indexed (a single job as its only index, marked ``jobfn.dev/kind: single``), and a small init
container, the gate, turns that count into AWS's attempt number (1 for the first) in an
environment file every container reads ``AWS_BATCH_JOB_ATTEMPT`` from (``fileKeyRef``):
Kubernetes cannot add one by itself. A job never retried gets the literal 1 and no gate.

The gate also holds a pod while a decision is due, written on the pod by the pass
(``_decisions``) as ``jobfn.dev/decision`` (run or exit) and read from a downward-API file:

    evaluateOnExit rules a podFailurePolicy cannot express: a retry's pod waits in its gate until
      its predecessor's failure was matched against every rule, in AWS's order;
    dependsOn N_TO_N: child i's pod is created scheduling-gated (it holds no node) until child i of
      every such dependency SUCCEEDED.

``exit`` ends the gate with GATE_EXIT_CODE, which the podFailurePolicy's first rule turns into
FailIndex: that child fails and is retried no more.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ._contract import (
    DECISION_ANNOTATION,
    GATE_LABEL,
    JOB_KIND_ANNOTATION,
    MULTINODE_LABEL,
    N_TO_N_ANNOTATION,
    RETRY_RULES_ANNOTATION,
    SCHEDULING_GATE,
)
from ._errors import InvalidRequest
from ._retry_rules import RetryRule, compiled, needs_pass, rules_text

GATE_CONTAINER = "jobfn-gate"
GATE_EXIT_CODE = 86
ATTEMPT_VARIABLE = "AWS_BATCH_JOB_ATTEMPT"
_GATE_VOLUME, _PODINFO_VOLUME = "jobfn-gate", "jobfn-podinfo"
_ENV_FILE = "attempt.env"
#: Set by the Job controller on each pod of an Indexed Job with backoffLimitPerIndex.
FAILURE_COUNT_ANNOTATION = "batch.kubernetes.io/job-index-failure-count"
IGNORED_COUNT_ANNOTATION = "batch.kubernetes.io/job-index-ignored-failure-count"
_DECISION_PATTERN = DECISION_ANNOTATION.replace(".", r"\.").replace("/", r"\/")
GATE_SCRIPT = f"""set -eu
attempt=$(( ${{JOBFN_FAILURES:-0}} + ${{JOBFN_IGNORED:-0}} + 1 ))
echo "{ATTEMPT_VARIABLE}='$attempt'" > /jobfn/gate/{_ENV_FILE}
case "$JOBFN_DECIDE" in always) ;; retries) [ "$attempt" -gt 1 ] || exit 0 ;; *) exit 0 ;; esac
while :; do
  decision=$(sed -n 's/^{_DECISION_PATTERN}="\\(.*\\)"$/\\1/p' /jobfn/podinfo/annotations)
  case "$decision" in run) exit 0 ;; exit) exit {GATE_EXIT_CODE} ;; esac
  sleep 1
done
"""

SINGLE, ARRAY, MULTINODE = "single", "array", "multinode"


def job_kind(job: dict[str, Any] | Any) -> str:
    """``array`` (an Indexed Job, one child per index), ``multinode`` or ``single``."""
    annotations = (job.get("metadata") or {}).get("annotations") or {}
    kind = annotations.get(JOB_KIND_ANNOTATION)
    if kind in (SINGLE, MULTINODE):
        return str(kind)
    return ARRAY if (job.get("spec") or {}).get("completionMode") == "Indexed" else SINGLE


def shape_attempts(
    job: dict[str, Any],
    *,
    rules: Sequence[RetryRule],
    n_to_n: Sequence[str],
    sequential: bool,
    batch: bool,
    gate_image: str,
) -> None:
    """Give a planned Job AWS's attempts: per-child retries, the rules, the attempt variable
    (``batch``: a job of the AWS Batch door) and the gate, in place."""
    spec = job["spec"]
    pod = spec["template"]["spec"]
    decisions = bool(n_to_n) or needs_pass(rules)
    if (decisions or rules) and pod.get("restartPolicy") != "Never":
        raise InvalidRequest("this definition restarts failed containers in place (restartPolicy is not Never), "
                             "so retry rules and N_TO_N dependencies cannot apply to it")  # fmt: skip
    retries = int(spec.get("backoffLimitPerIndex", spec.get("backoffLimit", 6)))
    counted = batch and retries > 0
    labels = (spec["template"].get("metadata") or {}).get("labels") or {}
    kind = ARRAY if spec.get("completionMode") == "Indexed" else SINGLE
    kind = MULTINODE if labels.get(MULTINODE_LABEL) else kind
    if kind == SINGLE and (counted or decisions):
        spec.update(completionMode="Indexed", completions=1, parallelism=1)
        job["metadata"].setdefault("annotations", {})[JOB_KIND_ANNOTATION] = SINGLE
    if kind == MULTINODE:
        job["metadata"].setdefault("annotations", {})[JOB_KIND_ANNOTATION] = MULTINODE
    indexed = spec.get("completionMode") == "Indexed"
    if indexed and (
        (kind == ARRAY and (batch or decisions or bool(rules))) or (kind != ARRAY and (counted or decisions))
    ):
        # Each child retries on its own, as each AWS array child has its own attempts.
        spec.pop("backoffLimit", None)
        spec["backoffLimitPerIndex"] = retries
        if sequential or kind == MULTINODE:
            spec["maxFailedIndexes"] = 0  # a failed child fails the rest (SEQUENTIAL), a node the job
    per_index = "backoffLimitPerIndex" in spec
    policy: list[dict[str, Any]] = []
    if decisions:
        policy.append({"action": "FailIndex", "onExitCodes": {
            "containerName": GATE_CONTAINER, "operator": "In", "values": [GATE_EXIT_CODE]}})  # fmt: skip
    if rules and not needs_pass(rules):
        policy += compiled(rules, per_index) or []
    if policy:
        spec["podFailurePolicy"] = {"rules": policy}
    template = spec["template"]
    if decisions:
        _mark_for_decisions(template, rules if needs_pass(rules) else (), n_to_n)
    if counted or decisions:
        _add_gate(template, gate_image, "always" if n_to_n else ("retries" if decisions else "never"))
    if batch:
        if counted or decisions:
            value: dict[str, Any] = {"valueFrom": {"fileKeyRef": {
                "volumeName": _GATE_VOLUME, "path": _ENV_FILE, "key": ATTEMPT_VARIABLE}}}  # fmt: skip
        else:
            value = {"value": "1"}
        for container in pod.get("containers") or []:
            env = [v for v in container.get("env") or [] if v.get("name") != ATTEMPT_VARIABLE]
            container["env"] = [{"name": ATTEMPT_VARIABLE, **value}, *env]


def _mark_for_decisions(template: dict[str, Any], rules: Sequence[RetryRule], n_to_n: Sequence[str]) -> None:
    """What the pass reads off a waiting pod: the label it lists by, the rules, the N_TO_N jobs."""
    metadata = template.setdefault("metadata", {})
    metadata.setdefault("labels", {})[GATE_LABEL] = "decide"
    annotations = metadata.setdefault("annotations", {})
    if rules:
        annotations[RETRY_RULES_ANNOTATION] = rules_text(rules)
    if n_to_n:
        annotations[N_TO_N_ANNOTATION] = json.dumps(list(n_to_n))
        gates = [g for g in template["spec"].get("schedulingGates") or [] if g.get("name") != SCHEDULING_GATE]
        template["spec"]["schedulingGates"] = [*gates, {"name": SCHEDULING_GATE}]


def _add_gate(template: dict[str, Any], image: str, decide: str) -> None:
    pod = template["spec"]
    index = "metadata.annotations['{}']"
    gate: dict[str, Any] = {
        "name": GATE_CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", GATE_SCRIPT],
        "env": [
            {
                "name": "JOBFN_FAILURES",
                "valueFrom": {"fieldRef": {"fieldPath": index.format(FAILURE_COUNT_ANNOTATION)}},
            },
            {
                "name": "JOBFN_IGNORED",
                "valueFrom": {"fieldRef": {"fieldPath": index.format(IGNORED_COUNT_ANNOTATION)}},
            },
            {"name": "JOBFN_DECIDE", "value": decide},
        ],
        "volumeMounts": [{"name": _GATE_VOLUME, "mountPath": "/jobfn/gate"}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "16Mi"}},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "runAsGroup": 65534,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    volumes = [{"name": _GATE_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}]
    if decide != "never":
        gate["volumeMounts"].append(
            {"name": _PODINFO_VOLUME, "mountPath": "/jobfn/podinfo", "readOnly": True}
        )
        volumes.append({"name": _PODINFO_VOLUME, "downwardAPI": {
            "items": [{"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}]}})  # fmt: skip
    pod["initContainers"] = [gate, *(pod.get("initContainers") or [])]
    pod["volumes"] = [*(pod.get("volumes") or []), *volumes]
