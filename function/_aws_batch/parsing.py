"""AWS Batch request bodies, as botocore's ``batch`` service model shapes them, read into jobfn's terms.

Pure: a SubmitJob body becomes a ``Submission``; job ids, ARNs, ListJobs filters and
page tokens become what the core's calls take. Every problem a body has is reported
at once. Validation of arguments and overrides is not repeated here: the core does it
for every front door.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from .._contract import ANNOTATION_PREFIX, GPU_RESOURCE
from .._definitions import JobDefinitions
from .._dependencies import Dependency
from .._errors import InvalidRequest, JobfnError, JobNotFound
from .._retry_rules import read_rules
from .._status import STATES
from .._submission import JobView, Overrides, Submission
from .answers import JOB_NAME_TAG, created_at_ms, job_name
from .fields import optional_int, optional_object, request_object, required_string, string_map

#: Kubernetes' name for a GPU, which AWS calls ``GPU`` in resourceRequirements.
MAX_DESCRIBE_JOBS = 100
MAX_TAGS = 50
RESERVED_TAG_PREFIXES = ("aws:", ANNOTATION_PREFIX)
_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_ARN = re.compile(r"^arn:aws[a-z-]*:batch:[^:]*:[^:]*:(?P<kind>[a-z-]+)/(?P<name>.+)$")
_INTEGER = re.compile(r"^[+-]?\d{1,18}$")
_DECIMAL = re.compile(r"^\d{1,9}(\.\d{1,6})?$")
_SUBMIT_FIELDS = {
    "jobName", "jobQueue", "jobDefinition", "parameters", "containerOverrides", "timeout",
    "retryStrategy", "arrayProperties", "tags", "propagateTags", "dependsOn",
}  # fmt: skip
# Refused rather than ignored: a caller relying on one of these must learn it has no effect.
_UNSUPPORTED_FIELDS = {
    "nodeOverrides": "multi-node parallel jobs",
    "eksPropertiesOverride": "EKS pod overrides",
    "ecsPropertiesOverride": "ECS task overrides",
    "shareIdentifier": "fair-share scheduling",
    "schedulingPriorityOverride": "fair-share scheduling",
    "consumableResourcePropertiesOverride": "consumable resources",
}


# --- names, ids and ARNs ----------------------------------------------------------------------
def resource_name(reference: str, kind: str) -> str:
    """The name inside an ARN of ``kind`` (``job``, ``job-queue``, ...), or ``reference`` itself."""
    match = _ARN.match(reference)
    if match is None:
        return reference
    if match.group("kind") != kind:
        raise InvalidRequest(f"{reference[:120]!r} is not a {kind} ARN")
    return match.group("name")


def definition_name(reference: str) -> str:
    """A definition's name from ``name``, ``name:revision`` or its ARN.

    The definitions file holds one revision of each definition, so any revision a
    caller pins is accepted and the current definition is used.
    """
    name = resource_name(reference, "job-definition")
    base, colon, revision = name.rpartition(":")
    return base if colon and revision.isdigit() else name


def arn_kind(reference: str) -> str | None:
    """The resource kind an ARN names (``job``, ``job-definition``, ...); None when not an ARN."""
    match = _ARN.match(reference)
    return match.group("kind") if match else None


def definition_reference(reference: str) -> tuple[str, int | None]:
    """A definition's name and the revision pinned, from ``name``, ``name:revision`` or its ARN."""
    name = resource_name(reference, "job-definition")
    base, colon, revision = name.rpartition(":")
    if colon and revision.isdigit() and len(revision) <= 9:
        return base, int(revision)
    return name, None


def split_job_id(job_id: str) -> tuple[str, int | None]:
    """The Kubernetes job name of ``<name>``, an array child's ``<name>:<index>`` or a node's
    ``<name>#<index>`` (or its ARN), and the index."""
    reference = resource_name(job_id, "job")
    separator = "#" if "#" in reference else ":"
    name, colon, index = reference.partition(separator)
    if not colon:
        return name, None
    if not index.isdigit() or len(index) > 6:
        raise JobNotFound(f"job {job_id[:120]!r} not found")
    return name, int(index)


# --- SubmitJob ---------------------------------------------------------------------------------
def submission_from_request(body: Any, definitions: JobDefinitions, caller: str | None) -> Submission:
    """A SubmitJob body as a Submission; InvalidRequest listing every problem."""
    body = request_object(body)
    problems: list[str] = []
    for key in body:
        if key in _UNSUPPORTED_FIELDS:
            problems.append(f"{key}: {_UNSUPPORTED_FIELDS[key]} are not supported by jobfn")
        elif key not in _SUBMIT_FIELDS:
            problems.append(f"{str(key)[:60]}: not a SubmitJob field")
    name = required_string(body, "jobName", problems)
    if name is not None and not _JOB_NAME.match(name):
        problems.append(
            "jobName: use up to 128 letters, digits, hyphens and underscores, starting with a letter or digit"
        )
    queue = required_string(body, "jobQueue", problems)
    reference = required_string(body, "jobDefinition", problems)
    declared: Mapping[str, Mapping[str, Any]] = {}
    definition = None
    if reference is not None:
        definition = _named(definition_name, reference, problems)
        if definition is not None:
            try:
                declared = definitions.get(definition).parameters
            except JobfnError as error:
                problems.append(error.message)
    parameters = string_map(body, "parameters", problems)
    tags = tags_of(body, problems)
    overrides = _overrides(body, problems)
    queue_name = _named(lambda q: resource_name(q, "job-queue"), queue, problems) if queue else None
    depends_on = _dependencies(body.get("dependsOn"), problems)
    if problems or definition is None or name is None:
        raise InvalidRequest("invalid SubmitJob request: " + "; ".join(problems), problems)
    return Submission(
        definition=definition,
        arguments=arguments_from_parameters(parameters, declared),
        overrides=overrides,
        caller=caller,
        tags={**tags, JOB_NAME_TAG: name},
        queue=queue_name,
        depends_on=depends_on,
        batch_environment=True,
    )


def _dependencies(raw: Any, problems: list[str]) -> tuple[Dependency, ...]:
    """``dependsOn``: ``[{"jobId": ..., "type": ...}]``; a jobId may be an ARN, not an array child."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(item, Mapping) for item in raw):
        problems.append("dependsOn: must be a list of {jobId, type}")
        return ()
    found = []
    for item in raw:
        job_id, kind = item.get("jobId") or "", item.get("type")
        if not isinstance(job_id, str) or (kind is not None and not isinstance(kind, str)):
            problems.append("dependsOn: jobId and type must be strings")
            continue
        name = resource_name(job_id, "job") if job_id else ""
        if ":" in name or "#" in name:
            problems.append(f"dependsOn: {job_id[:80]!r} is an array child; depend on its array job")
            continue
        found.append(Dependency(name, kind))
    return tuple(found)


def arguments_from_parameters(
    parameters: Mapping[str, str], declared: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """AWS parameters (all strings) as arguments of the types the definition declares.

    A value that does not parse as its declared type is passed on as the string it is,
    so the definition's schema refuses it together with every other problem.
    """
    return {
        name: _typed(value, str((declared.get(name) or {}).get("type", "string")))
        for name, value in parameters.items()
    }


def _typed(value: str, kind: str) -> Any:
    text = value.strip()
    if kind == "integer" and _INTEGER.match(text):
        return int(text)
    if kind == "number":
        if _INTEGER.match(text):
            return int(text)
        try:
            number = float(text)
        except ValueError:
            return value
        return number if math.isfinite(number) and "_" not in text else value
    if kind == "boolean" and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if kind == "array":
        try:
            parsed = json.loads(text)
        except ValueError:
            return value
        return parsed if isinstance(parsed, list) else value
    return value


def _overrides(body: Mapping[str, Any], problems: list[str]) -> Overrides:
    container = optional_object(body, "containerOverrides", problems)
    if "instanceType" in container:
        problems.append("containerOverrides.instanceType: choosing instance types is not supported by jobfn")
    command = container.get("command")
    if command is not None and not (
        isinstance(command, list) and command and all(isinstance(part, str) for part in command)
    ):
        problems.append("containerOverrides.command: must be a non-empty list of strings")
        command = None
    retry = optional_object(body, "retryStrategy", problems)
    rules = read_rules(retry.get("evaluateOnExit"), "retryStrategy.evaluateOnExit", problems)
    attempts = optional_int(retry, "attempts", problems, "retryStrategy.", 1, 10)
    return Overrides(
        timeout=optional_int(optional_object(body, "timeout", problems), "attemptDurationSeconds", problems, "timeout."),
        array_size=optional_int(optional_object(body, "arrayProperties", problems), "size", problems, "arrayProperties."),
        retries=attempts - 1 if attempts is not None else None,
        retry_rules=rules or None,
        command=tuple(command) if command is not None else None,
        environment=_environment(container.get("environment"), problems),
        resources=_resources(container, problems),
    )  # fmt: skip


def _environment(raw: Any, problems: list[str]) -> dict[str, str] | None:
    if raw is None:
        return None
    where = "containerOverrides.environment"
    if not isinstance(raw, list):
        problems.append(f"{where}: must be a list of {{name, value}}")
        return None
    environment: dict[str, str] = {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            problems.append(f"{where}[{i}]: needs a name")
        elif not isinstance(item.get("value", ""), str):
            problems.append(f"{where}[{i}].value: must be a string")
        else:
            environment[item["name"]] = item.get("value", "")
    return environment


def _resources(container: Mapping[str, Any], problems: list[str]) -> dict[str, dict[str, str]] | None:
    """AWS resource requirements as Kubernetes requests and limits.

    VCPU is a request (as on ECS, a container may use idle CPU beyond it); MEMORY, in
    MiB, is requested and also the limit (AWS stops a container that exceeds it); GPUs
    are an extended resource, whose request and limit Kubernetes wants equal.
    """
    wanted: list[tuple[str, Any]] = [
        (str(r.get("type")), r.get("value")) for r in _requirements(container, problems)
    ]
    for legacy, kind in (("vcpus", "VCPU"), ("memory", "MEMORY")):
        if legacy in container:
            wanted.append((kind, str(container[legacy]) if isinstance(container[legacy], int) else None))
    if not wanted:
        return None
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    for kind, value in wanted:
        if kind == "VCPU" and isinstance(value, str) and _DECIMAL.match(value) and float(value) > 0:
            requests["cpu"] = value
        elif kind == "MEMORY" and isinstance(value, str) and value.isdigit() and int(value) > 0:
            requests["memory"] = limits["memory"] = f"{int(value)}Mi"
        elif kind == "GPU" and isinstance(value, str) and value.isdigit() and int(value) > 0:
            requests[GPU_RESOURCE] = limits[GPU_RESOURCE] = str(int(value))
        else:
            problems.append(
                f"containerOverrides.resourceRequirements: {kind[:20]} needs a positive "
                f"{'number of vCPUs' if kind == 'VCPU' else 'whole number'}, not {str(value)[:40]!r}"
            )
    return {"requests": requests, "limits": limits} if limits else {"requests": requests}


def _requirements(container: Mapping[str, Any], problems: list[str]) -> list[Mapping[str, Any]]:
    raw = container.get("resourceRequirements")
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        problems.append("containerOverrides.resourceRequirements: must be a list of {type, value}")
        return []
    return raw


def tags_of(body: Mapping[str, Any], problems: list[str]) -> dict[str, str]:
    """A request's ``tags``, within AWS's bounds and without the reserved prefixes."""
    tags = string_map(body, "tags", problems)
    reserved = [key for key in tags if key.startswith(RESERVED_TAG_PREFIXES)]
    if reserved:
        problems.append(f"tags: keys starting with {' or '.join(RESERVED_TAG_PREFIXES)} are reserved")
    if len(tags) > MAX_TAGS or any(len(k) > 128 or len(v) > 256 for k, v in tags.items()):
        problems.append(f"tags: at most {MAX_TAGS}, keys up to 128 and values up to 256 characters")
    return tags


def _named(read: Callable[[str], str], reference: str, problems: list[str]) -> str | None:
    try:
        return read(reference)
    except JobfnError as error:
        problems.append(error.message)
        return None


# --- ListJobs ------------------------------------------------------------------------------------
def list_filter(raw_filters: Any, status: str | None) -> Callable[[JobView], bool]:
    """Which jobs a ListJobs request wants: its filters, else its status (RUNNING by default).

    As in AWS Batch, filters make the status irrelevant, a trailing ``*`` matches any
    ending, job names match case-insensitively and times are epoch milliseconds.
    """
    if raw_filters is None or raw_filters == []:
        wanted = job_status(status)
        return lambda view: view.state == wanted
    if not isinstance(raw_filters, list):
        raise InvalidRequest("filters: must be a list of {name, values}")
    checks = [_filter(item) for item in raw_filters]
    return lambda view: all(check(view) for check in checks)


def job_status(status: Any) -> str:
    """The state a listing asks for (RUNNING when none is given)."""
    if status is None:
        return "RUNNING"
    if status not in STATES:
        raise InvalidRequest(f"jobStatus: must be one of {', '.join(STATES)}")
    return str(status)


def _filter(item: Any) -> Callable[[JobView], bool]:
    if not isinstance(item, dict) or not isinstance(item.get("values"), list) or len(item["values"]) != 1:
        raise InvalidRequest("filters: each filter needs a name and exactly one value")
    name, value = item.get("name"), item["values"][0]
    if not isinstance(value, str):
        raise InvalidRequest("filters: values must be strings")
    if name == "JOB_NAME":
        return _matcher(value.lower(), lambda view: job_name(view).lower())
    if name == "JOB_DEFINITION":
        if value.startswith("arn:"):
            wanted = definition_name(value)
            return lambda view: view.definition == wanted
        return _matcher(value, lambda view: view.definition)
    if name in ("BEFORE_CREATED_AT", "AFTER_CREATED_AT"):
        if not value.isdigit():
            raise InvalidRequest(f"filters: {name} takes epoch milliseconds")
        moment = int(value)
        if name == "BEFORE_CREATED_AT":
            return lambda view: created_at_ms(view) < moment
        return lambda view: created_at_ms(view) > moment
    raise InvalidRequest(
        f"filters: {str(name)[:40]!r} is not supported; use JOB_NAME, JOB_DEFINITION, "
        "BEFORE_CREATED_AT or AFTER_CREATED_AT"
    )


def _matcher(pattern: str, field: Callable[[JobView], str]) -> Callable[[JobView], bool]:
    if pattern.endswith("*"):
        prefix = pattern[:-1]
        return lambda view: field(view).startswith(prefix)
    return lambda view: field(view) == pattern
