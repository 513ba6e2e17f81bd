"""Registered job definitions (AWS Batch's RegisterJobDefinition), decided purely.

A registration is read into a ``Registration``: the request's fields jobfn maps,
normalised, with everything else refused by name. The operator's ``RegistrationPolicy``
bounds what one may run (images, CPU, memory, time, retries, who may register), and is
checked again at every submission, so tightening it also stops older revisions.

A registration becomes an ordinary ``JobDefinition`` whose template builds the Job
directly from the fields: no Jinja is ever made from a caller's text. ``Ref::name``
command arguments take the submitted parameter (else the registered default), as AWS
does; one with neither stays as written, as AWS leaves it.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from ._contract import JOB_NAME_POD_LABEL
from ._definitions import JobDefinition
from ._errors import Forbidden, InvalidRequest
from ._retry_rules import RetryRule, apply_rules, read_rules
from ._settings import RegistrationPolicy
from ._status import COMPLETION_INDEX_ANNOTATION

#: Top-level RegisterJobDefinition fields jobfn maps.
REGISTER_FIELDS = frozenset(
    {"jobDefinitionName", "type", "parameters", "containerProperties", "retryStrategy", "timeout", "tags",
     "propagateTags", "platformCapabilities", "nodeProperties"}
)  # fmt: skip
#: Fields that cannot map onto a Kubernetes Job, and why, so the refusal says so.
_REFUSED_FIELDS = {
    "eksProperties": "jobfn builds the pod itself; give containerProperties",
    "ecsProperties": "jobfn builds the pod itself; give containerProperties",
    "schedulingPriority": "use a job queue's priority class instead",
    "consumableResourceProperties": "consumable resources are not supported",
}
_CONTAINER_FIELDS = frozenset(
    {"image", "command", "environment", "resourceRequirements", "vcpus", "memory", "jobRoleArn",
     "executionRoleArn", "readonlyRootFilesystem", "privileged", "user", "volumes", "mountPoints"}
)  # fmt: skip
_REFUSED_CONTAINER_FIELDS = {
    "ulimits": "Kubernetes sets no per-container ulimits",
    "linuxParameters": "Linux parameters (devices, tmpfs, swap) do not map onto a pod",
    "logConfiguration": "logs are the pod's own; read them with GetJobLogs-style GET /jobs/<id>/logs",
    "secrets": "mount Kubernetes Secrets through a file definition instead",
    "instanceType": "Kubernetes schedules on its nodes; ask for resources instead",
    "networkConfiguration": "Fargate networking does not apply",
    "fargatePlatformConfiguration": "Fargate does not apply",
    "ephemeralStorage": "Fargate storage does not apply",
    "runtimePlatform": "the node's platform decides",
    "repositoryCredentials": "image pull secrets are the operator's",
    "enableExecuteCommand": "ECS Exec does not apply",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VOLUME_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_REF = "Ref::"
MAX_ATTEMPTS = 10  # AWS's bound
MAX_NODES = 1000  # AWS's bound
#: The headless Service a multi-node job's pods are named under (deploy/components/registration).
NODES_SERVICE = "jobfn-nodes"
#: The pod label that Service selects.
MULTINODE_LABEL = "jobfn.dev/multinode"
MIN_TIMEOUT_SECONDS = 60  # AWS's bound


@dataclass(frozen=True)
class Registration:
    """One revision of a registered definition, as stored and as described back."""

    name: str
    revision: int
    image: str
    command: tuple[str, ...] = ()
    environment: Mapping[str, str] = field(default_factory=dict)
    vcpus: Decimal | None = None
    memory_mib: int | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    attempts: int = 1
    retry_rules: tuple[RetryRule, ...] = ()
    timeout_seconds: int | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    propagate_tags: bool = False
    read_only_root: bool = False
    user: int | None = None
    volumes: tuple[str, ...] = ()
    mount_points: tuple[tuple[str, str, bool], ...] = ()
    """(volume, container path, read only)."""
    roles: Mapping[str, str] = field(default_factory=dict)
    """jobRoleArn / executionRoleArn as given: recorded and described, with no effect here."""
    active: bool = True
    registered_by: str | None = None
    num_nodes: int = 0
    """A multi-node parallel definition's nodes (0: a single container job)."""
    main_node: int = 0

    # --- the stored record (a ConfigMap's data) and AWS's JobDefinition ----------------
    def container_properties(self) -> dict[str, Any]:
        properties: dict[str, Any] = {"image": self.image, "command": list(self.command)}
        properties["environment"] = [{"name": k, "value": v} for k, v in self.environment.items()]
        requirements = []
        if self.vcpus is not None:
            requirements.append({"type": "VCPU", "value": str(self.vcpus)})
        if self.memory_mib is not None:
            requirements.append({"type": "MEMORY", "value": str(self.memory_mib)})
        properties["resourceRequirements"] = requirements
        properties["readonlyRootFilesystem"] = self.read_only_root
        if self.user is not None:
            properties["user"] = str(self.user)
        properties["volumes"] = [{"name": name} for name in self.volumes]
        properties["mountPoints"] = [
            {"sourceVolume": v, "containerPath": p, "readOnly": ro} for v, p, ro in self.mount_points
        ]
        properties.update(self.roles)
        return properties

    def to_request(self) -> dict[str, Any]:
        """The registration as a RegisterJobDefinition body (what is stored, and read back)."""
        body: dict[str, Any] = {
            "jobDefinitionName": self.name,
            "type": "multinode" if self.num_nodes else "container",
            "parameters": dict(self.parameters),
            "retryStrategy": {
                "attempts": self.attempts,
                "evaluateOnExit": [_rule_json(r) for r in self.retry_rules],
            },
            "tags": dict(self.tags),
            "propagateTags": self.propagate_tags,
        }
        if self.timeout_seconds is not None:
            body["timeout"] = {"attemptDurationSeconds": self.timeout_seconds}
        if self.num_nodes:
            body["nodeProperties"] = {
                "numNodes": self.num_nodes,
                "mainNode": self.main_node,
                "nodeRangeProperties": [{"targetNodes": "0:", "container": self.container_properties()}],
            }
        else:
            body["containerProperties"] = self.container_properties()
        return body

    def references(self) -> frozenset[str]:
        """The parameters its command refers to as ``Ref::<name>``."""
        return frozenset(
            arg[len(_REF) :] for arg in self.command if arg.startswith(_REF) and len(arg) > len(_REF)
        )


# --- reading a RegisterJobDefinition request ------------------------------------------------
def read_registration(body: Mapping[str, Any], caller: str | None = None) -> Registration:
    """A RegisterJobDefinition body as a Registration (revision 0 until stored); InvalidRequest
    listing every problem, each naming its field."""
    problems: list[str] = []
    for key in body:
        if key in _REFUSED_FIELDS:
            problems.append(f"{key}: {_REFUSED_FIELDS[key]}")
        elif key not in REGISTER_FIELDS:
            problems.append(f"{str(key)[:60]}: not a RegisterJobDefinition field jobfn maps")
    name = body.get("jobDefinitionName")
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append("jobDefinitionName: use up to 63 letters, digits, hyphens and underscores, "
                        "starting with a letter or digit (it becomes a label value)")  # fmt: skip
        name = ""
    kind = body.get("type")
    if kind not in ("container", "multinode"):
        problems.append(f"type: 'container' or 'multinode', not {str(kind)[:40]!r}")
    for capability in _string_list(body, "platformCapabilities", problems):
        if capability != "EC2":
            problems.append(f"platformCapabilities: {capability[:20]!r} does not apply; give EC2 or nothing")
    parameters = _string_map(body, "parameters", problems)
    tags = _string_map(body, "tags", problems)
    propagate = body.get("propagateTags", False)
    if not isinstance(propagate, bool):
        problems.append("propagateTags: must be true or false")
        propagate = False
    attempts = _retry_attempts(body.get("retryStrategy"), problems)
    retry = body.get("retryStrategy")
    rules = read_rules(retry.get("evaluateOnExit") if isinstance(retry, Mapping) else None,
                       "retryStrategy.evaluateOnExit", problems)  # fmt: skip
    timeout = _timeout(body.get("timeout"), problems)
    num_nodes, main_node = 0, 0
    if kind == "multinode":
        num_nodes, main_node, container = _node_properties(body, problems)
    else:
        if "nodeProperties" in body:
            problems.append("nodeProperties: only for type 'multinode'")
        given = body.get("containerProperties")
        container = given if isinstance(given, Mapping) else {}
        if not isinstance(given, Mapping):
            problems.append("containerProperties: required, an object with at least an image")
    registration = _container(container, problems)
    if problems:
        raise InvalidRequest("invalid RegisterJobDefinition request: " + "; ".join(problems), problems)
    return Registration(
        name=name,
        revision=0,
        parameters=parameters,
        attempts=attempts,
        retry_rules=rules,
        timeout_seconds=timeout,
        tags=tags,
        propagate_tags=propagate,
        registered_by=caller,
        num_nodes=num_nodes,
        main_node=main_node,
        **registration,
    )


def _node_properties(body: Mapping[str, Any], problems: list[str]) -> tuple[int, int, Mapping[str, Any]]:
    """numNodes, mainNode and the one node range's container of a multi-node definition."""
    raw = body.get("nodeProperties")
    if "containerProperties" in body:
        problems.append("containerProperties: a multinode definition gives its container in nodeProperties")
    if not isinstance(raw, Mapping):
        problems.append("nodeProperties: required for type 'multinode'")
        return 0, 0, {}
    num_nodes, main_node = raw.get("numNodes"), raw.get("mainNode", 0)
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, int) or not 2 <= num_nodes <= MAX_NODES:
        problems.append(f"nodeProperties.numNodes: between 2 and {MAX_NODES}")
        num_nodes = 2
    if isinstance(main_node, bool) or not isinstance(main_node, int) or not 0 <= main_node < num_nodes:
        problems.append("nodeProperties.mainNode: the index of one of the nodes")
        main_node = 0
    ranges = raw.get("nodeRangeProperties")
    if not isinstance(ranges, list) or len(ranges) != 1 or not isinstance(ranges[0], Mapping):
        problems.append("nodeProperties.nodeRangeProperties: exactly one range, for every node, is supported")
        return num_nodes, main_node, {}
    [node_range] = ranges
    if node_range.get("targetNodes") not in ("0:", f"0:{num_nodes - 1}"):
        problems.append("nodeProperties.nodeRangeProperties: the one range must target every node ('0:')")
    container = node_range.get("container")
    if not isinstance(container, Mapping):
        problems.append("nodeProperties.nodeRangeProperties: the range needs a container")
        container = {}
    return num_nodes, main_node, container


def _container(raw: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    for key in raw:
        if key in _REFUSED_CONTAINER_FIELDS:
            problems.append(f"containerProperties.{key}: {_REFUSED_CONTAINER_FIELDS[key]}")
        elif key not in _CONTAINER_FIELDS:
            problems.append(f"containerProperties.{str(key)[:60]}: not a field jobfn maps "
                            f"(it maps {', '.join(sorted(_CONTAINER_FIELDS))})")  # fmt: skip
    given_image = raw.get("image")
    image = given_image if isinstance(given_image, str) else ""
    if not image or len(image) > 512 or any(c.isspace() for c in image):
        problems.append("containerProperties.image: required, an image reference")
    command = _string_list(raw, "command", problems, where="containerProperties.command")
    environment: dict[str, str] = {}
    for item in _object_list(raw, "environment", problems):
        variable, value = item.get("name"), item.get("value", "")
        if not isinstance(variable, str) or not _ENV_NAME.match(variable) or not isinstance(value, str):
            problems.append("containerProperties.environment: each needs a variable name and a string value")
        elif variable.startswith("AWS_BATCH_"):
            problems.append(
                f"containerProperties.environment: {variable} is reserved (AWS_BATCH_ variables are set by Batch)"
            )
        else:
            environment[variable] = value
    vcpus, memory = _resources(raw, problems)
    privileged = raw.get("privileged", False)
    if privileged is not False:
        problems.append("containerProperties.privileged: privileged containers are never run")
    read_only = raw.get("readonlyRootFilesystem", False)
    if not isinstance(read_only, bool):
        problems.append("containerProperties.readonlyRootFilesystem: must be true or false")
        read_only = False
    user = raw.get("user")
    if user is not None and not (isinstance(user, str) and user.isdigit() and int(user) < 2**31):
        problems.append(
            "containerProperties.user: give a numeric uid (a user name means nothing outside the image)"
        )
        user = None
    volumes = []
    for volume in _object_list(raw, "volumes", problems):
        if "host" in volume or "efsVolumeConfiguration" in volume:
            problems.append("containerProperties.volumes: host and EFS volumes are refused; a volume with only a "
                            "name is an empty scratch directory")  # fmt: skip
        elif not isinstance(volume.get("name"), str) or not _VOLUME_NAME.match(volume["name"]):
            problems.append(
                "containerProperties.volumes: each needs a name of lower-case letters, digits and '-'"
            )
        else:
            volumes.append(volume["name"])
    mounts = []
    for mount in _object_list(raw, "mountPoints", problems):
        source, path, ro = mount.get("sourceVolume"), mount.get("containerPath"), mount.get("readOnly", False)
        if (
            source not in volumes
            or not isinstance(path, str)
            or not path.startswith("/")
            or not isinstance(ro, bool)
        ):
            problems.append("containerProperties.mountPoints: each needs a declared sourceVolume and an absolute "
                            "containerPath")  # fmt: skip
        else:
            mounts.append((source, path, ro))
    roles = {
        key: str(raw[key]) for key in ("jobRoleArn", "executionRoleArn") if isinstance(raw.get(key), str)
    }
    return {
        "image": image,
        "command": tuple(command),
        "environment": environment,
        "vcpus": vcpus,
        "memory_mib": memory,
        "read_only_root": read_only,
        "user": int(user) if user is not None else None,
        "volumes": tuple(volumes),
        "mount_points": tuple(mounts),
        "roles": roles,
    }


def _resources(raw: Mapping[str, Any], problems: list[str]) -> tuple[Decimal | None, int | None]:
    vcpus: Decimal | None = None
    memory: int | None = None
    if raw.get("vcpus") is not None:
        vcpus = _decimal(raw["vcpus"], "containerProperties.vcpus", problems)
    if raw.get("memory") is not None:
        memory = _mebibytes(raw["memory"], "containerProperties.memory", problems)
    for item in _object_list(raw, "resourceRequirements", problems):
        kind, value = item.get("type"), item.get("value")
        where = f"containerProperties.resourceRequirements {kind}"
        if kind == "VCPU":
            vcpus = _decimal(value, where, problems)
        elif kind == "MEMORY":
            memory = _mebibytes(value, where, problems)
        elif kind == "GPU":
            problems.append(f"{where}: this cluster's jobs cannot ask for GPUs")
        else:
            problems.append(
                f"containerProperties.resourceRequirements: type must be VCPU or MEMORY, not {str(kind)[:20]!r}"
            )
    return vcpus, memory


def _decimal(value: Any, where: str, problems: list[str]) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        number = Decimal(0)
    if not number.is_finite() or number <= 0 or number != number.quantize(Decimal("0.001")):
        problems.append(f"{where}: a positive number of vCPUs (at most 3 decimals), not {str(value)[:20]!r}")
        return None
    return number.normalize()


def _mebibytes(value: Any, where: str, problems: list[str]) -> int | None:
    if isinstance(value, bool) or not str(value).isdigit() or int(value) < 4:
        problems.append(f"{where}: a whole number of MiB, 4 or more, not {str(value)[:20]!r}")
        return None
    return int(value)


def _retry_attempts(raw: Any, problems: list[str]) -> int:
    if raw is None:
        return 1
    if not isinstance(raw, Mapping):
        problems.append("retryStrategy: must be an object")
        return 1
    attempts = raw.get("attempts", 1)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= MAX_ATTEMPTS:
        problems.append(f"retryStrategy.attempts: between 1 and {MAX_ATTEMPTS}")
        return 1
    return attempts


def _timeout(raw: Any, problems: list[str]) -> int | None:
    if raw is None:
        return None
    seconds = raw.get("attemptDurationSeconds") if isinstance(raw, Mapping) else None
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < MIN_TIMEOUT_SECONDS:
        problems.append(
            f"timeout.attemptDurationSeconds: a whole number of seconds, {MIN_TIMEOUT_SECONDS} or more"
        )
        return None
    return seconds


def _string_list(
    raw: Mapping[str, Any], key: str, problems: list[str], where: str | None = None
) -> list[str]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        problems.append(f"{where or key}: must be a list of strings")
        return []
    return value


def _object_list(raw: Mapping[str, Any], key: str, problems: list[str]) -> list[Mapping[str, Any]]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        problems.append(f"containerProperties.{key}: must be a list of objects")
        return []
    return value


def _string_map(raw: Mapping[str, Any], key: str, problems: list[str]) -> dict[str, str]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        problems.append(f"{key}: must map strings to strings")
        return {}
    return dict(value)


# --- the operator's bounds ------------------------------------------------------------------
def check_may_register(policy: RegistrationPolicy, caller: str | None, groups: frozenset[str]) -> None:
    """Refuse unless registration is on and the caller is one the operator allows."""
    if not policy.enabled:
        raise Forbidden("registering job definitions is turned off here; the operator enables it with "
                        "JOBFN_REGISTRATION=on")  # fmt: skip
    if policy.allowed_subjects and not ({caller, *groups} & set(policy.allowed_subjects)):
        raise Forbidden(f"{caller or 'an unauthenticated caller'} may not register job definitions "
                        "(JOBFN_REGISTRATION_SUBJECTS)")  # fmt: skip


def check_within_bounds(registration: Registration, policy: RegistrationPolicy) -> None:
    """Refuse what the operator does not allow, saying what to change; InvalidRequest."""
    problems = []
    if not any(fnmatch.fnmatchcase(registration.image, pattern) for pattern in policy.images):
        allowed = ", ".join(policy.images) or "none (JOBFN_REGISTRATION_IMAGES is empty)"
        problems.append(f"containerProperties.image: {registration.image[:120]!r} is not an image the operator "
                        f"allows; use one matching {allowed}")  # fmt: skip
    if registration.vcpus is not None and registration.vcpus > policy.max_vcpus:
        problems.append(f"containerProperties VCPU: at most {policy.max_vcpus}, not {registration.vcpus}")
    if registration.memory_mib is not None and registration.memory_mib > policy.max_memory_mib:
        problems.append(
            f"containerProperties MEMORY: at most {policy.max_memory_mib} MiB, not {registration.memory_mib}"
        )
    if registration.timeout_seconds is not None and registration.timeout_seconds > policy.max_timeout_seconds:
        problems.append(f"timeout.attemptDurationSeconds: at most {policy.max_timeout_seconds}")
    if problems:
        raise InvalidRequest(
            "job definition outside what the operator allows: " + "; ".join(problems), problems
        )


# --- a registration as a JobDefinition ------------------------------------------------------
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
            container["command"] = command
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
        if r.mount_points:
            container["volumeMounts"] = [
                {"name": v, "mountPath": p, "readOnly": ro} for v, p, ro in r.mount_points
            ]
        pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
        if r.volumes:
            pod["volumes"] = [{"name": name, "emptyDir": {}} for name in r.volumes]
        spec: dict[str, Any] = {"backoffLimit": r.attempts - 1, "template": {"spec": pod}}
        if r.retry_rules:
            apply_rules(spec, r.retry_rules, r.attempts - 1)
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


def _rule_json(rule: RetryRule) -> dict[str, str]:
    fields = {"action": rule.action, "onExitCode": rule.on_exit_code, "onReason": rule.on_reason,
              "onStatusReason": rule.on_status_reason}  # fmt: skip
    return {key: value for key, value in fields.items() if value is not None}


def _substitute(argument: str, values: Mapping[str, str]) -> str:
    if argument.startswith(_REF):
        return values.get(argument[len(_REF) :], argument)
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
        name: {"type": "string", "default": registration.parameters.get(name, f"{_REF}{name}")}
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
        allowed_overrides=frozenset(
            {"timeout", "retries", "command", "environment", "resources", "array_size"}
        ),
    )


def select_revision(revisions: Sequence[Registration], revision: int | None) -> Registration | None:
    """The revision asked for, or (none asked) the newest ACTIVE one, as SubmitJob chooses."""
    if revision is not None:
        return next((r for r in revisions if r.revision == revision), None)
    active = [r for r in revisions if r.active]
    return max(active, key=lambda r: r.revision) if active else None
