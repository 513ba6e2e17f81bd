"""A registered revision as an ordinary ``JobDefinition``: its template builds the Job
directly from the registration's fields, so no Jinja is ever made from a caller's text.

``Ref::name`` command arguments take the submitted parameter (else the registered
default), as AWS does; one with neither stays as written, as AWS leaves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ._contract import JOB_NAME_POD_LABEL, MULTINODE_LABEL
from ._definitions import JobDefinition
from ._gate_state import COMPLETION_INDEX_ANNOTATION
from ._registration import REF, Registration, check_within_bounds
from ._settings import RegistrationPolicy

#: The headless Service a multi-node job's pods are named under (deploy/components/registration).
NODES_SERVICE = "jobfn-nodes"


class RegisteredTemplate:
    """Builds the Job of a registration; the same interface as ``JobTemplate``."""

    def __init__(self, registration: Registration) -> None:
        self.registration = registration
        self.source = f"job definition '{registration.name}:{registration.revision}'"
        self.variables = registration.references() | frozenset(registration.parameters)

    def render(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        r = self.registration
        values = {**r.parameters, **{k: str(v) for k, v in arguments.items()}}
        command = [_substitute(arg, values) for arg in r.command]
        container: dict[str, Any] = {"name": "main", "image": r.image, "imagePullPolicy": "IfNotPresent"}
        if command:
            container["args"] = command  # AWS's command is the image's CMD: its ENTRYPOINT still runs
        if r.environment:
            container["env"] = [{"name": k, "value": v} for k, v in r.environment.items()]
        resources = _pod_resources(r.vcpus, r.memory_mib)
        if resources:
            container["resources"] = resources
        security: dict[str, Any] = {"allowPrivilegeEscalation": False}
        if r.read_only_root:
            security["readOnlyRootFilesystem"] = True
        if r.user is not None:
            security["runAsUser"] = r.user
        container["securityContext"] = security
        mounts = [{"name": v, "mountPath": p, "readOnly": ro} for v, p, ro in r.mount_points]
        volumes: list[dict[str, Any]] = [{"name": name, "emptyDir": {}} for name in r.volumes]
        shm = "/dev/shm"  # noqa: S108 - the container's shared memory, not a file of this process
        in_memory = [(shm, r.shared_memory_mib)] if r.shared_memory_mib is not None else []
        for number, (path, mib) in enumerate([*in_memory, *r.tmpfs]):
            name = f"jobfn-memory-{number}"  # 'jobfn-' names are refused to registrations
            volumes.append({"name": name, "emptyDir": {"medium": "Memory", "sizeLimit": f"{mib}Mi"}})
            mounts.append({"name": name, "mountPath": path})
        if mounts:
            container["volumeMounts"] = mounts
        pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
        if volumes:
            pod["volumes"] = volumes
        spec: dict[str, Any] = {"backoffLimit": r.attempts - 1, "template": {"spec": pod}}
        if r.timeout_seconds is not None:
            # AWS times each attempt; a Job's deadline covers all of them, so it allows every attempt its time.
            spec["activeDeadlineSeconds"] = r.timeout_seconds * r.attempts
        if r.num_nodes:
            _multinode(spec, container, r.num_nodes, r.main_node)
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": r.name}, "spec": spec}


def _multinode(spec: dict[str, Any], container: dict[str, Any], nodes: int, main: int) -> None:
    """A multi-node parallel job: one indexed pod per node, all at once, reachable by name through
    the ``jobfn-nodes`` headless Service; it succeeds when the main node does (a success policy),
    and its retries (after the rules above: FailJob, not per index) restart the whole job, as AWS."""
    spec.update(completionMode="Indexed", completions=nodes, parallelism=nodes)
    spec["successPolicy"] = {"rules": [{"succeededIndexes": str(main)}]}
    pod = spec["template"]["spec"]
    pod["subdomain"] = NODES_SERVICE  # pods are <job>-<index>.jobfn-nodes
    spec["template"].setdefault("metadata", {}).setdefault("labels", {})[MULTINODE_LABEL] = "true"
    index = f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"
    job_name = f"metadata.labels['{JOB_NAME_POD_LABEL}']"
    container["env"] = [
        {"name": "JOBFN_JOB_NAME", "valueFrom": {"fieldRef": {"fieldPath": job_name}}},
        {"name": "AWS_BATCH_JOB_NODE_INDEX", "valueFrom": {"fieldRef": {"fieldPath": index}}},
        {"name": "AWS_BATCH_JOB_NUM_NODES", "value": str(nodes)},
        {"name": "AWS_BATCH_JOB_MAIN_NODE_INDEX", "value": str(main)},
        # A name, not an address: the main pod's address is only known once it runs, its name always.
        {
            "name": "AWS_BATCH_JOB_MAIN_NODE_PRIVATE_IPV4_ADDRESS",
            "value": f"$(JOBFN_JOB_NAME)-{main}.{NODES_SERVICE}",
        },
        *container.get("env", []),
    ]


def _substitute(argument: str, values: Mapping[str, str]) -> str:
    if argument.startswith(REF):
        return values.get(argument[len(REF) :], argument)
    return argument


def _pod_resources(vcpus: Decimal | None, memory_mib: int | None) -> dict[str, dict[str, str]]:
    # Batch reserves what it is asked for: requests, with memory also the limit (its hard cap).
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if vcpus is not None:
        requests["cpu"] = f"{int(vcpus * 1000)}m"
    if memory_mib is not None:
        requests["memory"] = limits["memory"] = f"{memory_mib}Mi"
    return {k: v for k, v in (("requests", requests), ("limits", limits)) if v}


def as_definition(registration: Registration, policy: RegistrationPolicy) -> JobDefinition:
    """The JobDefinition a registration submits as, within the operator's bounds today."""
    check_within_bounds(registration, policy)
    # A Ref:: without a value stays as written (AWS's rule), so every parameter has a default.
    parameters = {
        name: {"type": "string", "default": registration.parameters.get(name, f"{REF}{name}")}
        for name in sorted(registration.references() | set(registration.parameters))
    }
    return JobDefinition(
        name=registration.name,
        template=RegisteredTemplate(registration),
        parameters=parameters,
        description=f"registered revision {registration.revision}",
        max_active_deadline_seconds=policy.max_timeout_seconds,
        max_cpu=policy.max_vcpus,
        max_memory_bytes=policy.max_memory_mib * 2**20,
        revision=registration.revision,
        retry_rules=registration.retry_rules,
        cpu_request_ratio=policy.cpu_request_ratio if policy.cpu_request_ratio != 1 else None,
        allowed_overrides=frozenset(
            {"timeout", "retries", "command", "environment", "resources", "array_size"}
        ),
    )
