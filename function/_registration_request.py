"""Reading a RegisterJobDefinition request into a ``Registration``.

Every field jobfn maps is normalised; every other is refused by name, saying why it
does not map onto a Kubernetes Job, and every problem is reported at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from ._errors import InvalidRequest
from ._registration import MAX_ATTEMPTS, MAX_NODES, MIN_TIMEOUT_SECONDS, Registration
from ._retry_rules import read_rules

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
     "executionRoleArn", "readonlyRootFilesystem", "privileged", "user", "volumes", "mountPoints",
     "linuxParameters", "logConfiguration"}
)  # fmt: skip
#: What of linuxParameters maps onto a pod: memory-backed scratch directories.
_LINUX_FIELDS = frozenset({"sharedMemorySize", "tmpfs", "devices"})
_REFUSED_CONTAINER_FIELDS = {
    "ulimits": "Kubernetes sets no per-container ulimits",
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
    if not isinstance(privileged, bool):
        problems.append("containerProperties.privileged: must be true or false")
        privileged = False
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
        elif (
            not isinstance(volume.get("name"), str)
            or not _VOLUME_NAME.match(volume["name"])
            or volume["name"].startswith("jobfn-")
        ):
            problems.append("containerProperties.volumes: each needs a name of lower-case letters, digits and "
                            "'-' (not starting with 'jobfn-', which jobfn's own volumes use)")  # fmt: skip
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
        **_linux_parameters(raw.get("linuxParameters"), problems),
        "log_driver": _log_driver(raw.get("logConfiguration"), problems),
        "privileged": privileged,
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


def _linux_parameters(raw: Any, problems: list[str]) -> dict[str, Any]:
    """``sharedMemorySize`` and ``tmpfs`` (MiB) become memory-backed scratch directories; no devices."""
    where = "containerProperties.linuxParameters"
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: must be an object")
        return {}
    for key in raw:
        if key not in _LINUX_FIELDS:
            problems.append(f"{where}.{str(key)[:40]}: does not map onto a pod (it maps sharedMemorySize, "
                            "tmpfs and an empty devices list)")  # fmt: skip
    if raw.get("devices"):
        problems.append(f"{where}.devices: host devices are never passed to a container")
    shared = raw.get("sharedMemorySize")
    if shared is not None and (isinstance(shared, bool) or not isinstance(shared, int) or shared < 1):
        problems.append(f"{where}.sharedMemorySize: a whole number of MiB, 1 or more")
        shared = None
    tmpfs = []
    for mount in raw.get("tmpfs") or []:
        path, size = (mount.get("containerPath"), mount.get("size")) if isinstance(mount, Mapping) else (0, 0)
        if (
            not isinstance(path, str)
            or not path.startswith("/")
            or isinstance(size, bool)
            or not (isinstance(size, int) and size > 0)
        ):
            problems.append(f"{where}.tmpfs: each needs an absolute containerPath and a size in MiB")
        elif mount.get("mountOptions"):
            problems.append(f"{where}.tmpfs: mountOptions do not map onto a pod's volume")
        else:
            tmpfs.append((path, size))
    return {"shared_memory_mib": shared, "tmpfs": tuple(tmpfs)}


def _log_driver(raw: Any, problems: list[str]) -> str | None:
    """AWS's default driver (``awslogs``, no options) is accepted: a pod's log is its own, read through
    jobfn; any other driver or option would be ignored, so it is refused."""
    if raw is None:
        return None
    if (
        not isinstance(raw, Mapping)
        or raw.get("logDriver") != "awslogs"
        or raw.get("options")
        or (raw.get("secretOptions"))
    ):
        problems.append("containerProperties.logConfiguration: only the awslogs driver without options maps "
                        "(a pod's log is its own; read it with GET /jobs/<id>/logs)")  # fmt: skip
        return None
    return "awslogs"


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
