"""What every Job jobfn creates is forced to be, whatever its template or caller says.

Applied after rendering: the name and namespace are jobfn's, the signature labels
cannot be removed or changed, jobfn's own annotations cannot be forged by a
template, and each override is checked against what the definition allows.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, is_dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from ._attempts import ARRAY, MULTINODE, job_kind
from ._contract import (
    ANNOTATION_PREFIX,
    ARGUMENTS_ANNOTATION,
    CALLER_ANNOTATION,
    CPU_REQUEST_RATIO_ANNOTATION,
    DEFINITION_REVISION_ANNOTATION,
    DELETION_TIME_ANNOTATION,
    IDEMPOTENCY_KEY_ANNOTATION,
    OVERRIDES_ANNOTATION,
    QUEUE_LABEL,
    REQUEST_HASH_ANNOTATION,
    TAGS_ANNOTATION,
    JobSigner,
    is_label_key,
    is_label_value,
)
from ._definitions import JobDefinition
from ._dependencies import check_dependencies, mark_waiting
from ._errors import DefinitionError, Forbidden, InvalidRequest
from ._gate_state import COMPLETION_INDEX_ANNOTATION
from ._submission import Overrides, Submission

#: Without a definition's own bound, the largest array a caller may ask for (as AWS Batch).
DEFAULT_MAX_ARRAY_SIZE = 10_000
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_MAX_RETRIES = 100


def _jsonable(value: Any) -> Any:
    """What json cannot write itself: tuples (as lists) and retry rules (as objects)."""
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else list(value)


def used_overrides(submission: Submission) -> dict[str, Any]:
    return {name: getattr(submission.overrides, name) for name in submission.overrides.used()}


def request_hash(submission: Submission) -> str:
    """A fingerprint of what was asked, to tell a retry from a different request."""
    asked: list[Any] = [
        submission.definition,
        submission.arguments,
        used_overrides(submission),
        submission.tags,
        submission.queue,
    ]
    if submission.depends_on:  # only then, so keys used before dependencies existed still match
        asked.append([[d.job, d.type] for d in submission.depends_on])
    canonical = json.dumps(
        asked,
        sort_keys=True,
        separators=(",", ":"),
        default=_jsonable,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def shape_job(
    job: dict[str, Any],
    *,
    name: str,
    namespace: str,
    signer: JobSigner,
    definition: JobDefinition,
    submission: Submission,
    arguments: Mapping[str, Any],
) -> dict[str, Any]:
    """Force jobfn's identity onto a freshly rendered Job and apply the caller's overrides."""
    metadata = job.setdefault("metadata", {})
    if not isinstance(metadata, dict):
        raise DefinitionError(f"definition '{definition.name}' renders a Job whose metadata is not a mapping")
    metadata.pop("generateName", None)
    metadata["name"] = name
    metadata["namespace"] = namespace
    labels = {k: _as_string(v) for k, v in (metadata.get("labels") or {}).items()}
    labels.update(definition.labels)
    if submission.queue is not None:
        labels[QUEUE_LABEL] = submission.queue
    metadata["labels"] = labels
    signer.sign(job, definition.name)

    annotations = {
        key: _as_string(value)
        for key, value in (metadata.get("annotations") or {}).items()
        # A template cannot pre-set retention or forge jobfn's own records.
        if key != DELETION_TIME_ANNOTATION and not key.startswith(ANNOTATION_PREFIX)
    }
    annotations[ARGUMENTS_ANNOTATION] = json.dumps(arguments, sort_keys=True, ensure_ascii=False)
    if submission.idempotency_key is not None:
        annotations[IDEMPOTENCY_KEY_ANNOTATION] = submission.idempotency_key
        annotations[REQUEST_HASH_ANNOTATION] = request_hash(submission)
    if submission.caller:
        annotations[CALLER_ANNOTATION] = submission.caller
    if submission.tags:
        annotations[TAGS_ANNOTATION] = json.dumps(dict(submission.tags), sort_keys=True)
    if definition.revision is not None:
        annotations[DEFINITION_REVISION_ANNOTATION] = str(definition.revision)
    if submission.overrides.used():
        # What the caller changed, as asked: the dashboard shows it beside the arguments.
        annotations[OVERRIDES_ANNOTATION] = json.dumps(
            used_overrides(submission), sort_keys=True, default=_jsonable
        )
    metadata["annotations"] = annotations

    spec = job.get("spec")
    if not isinstance(spec, dict) or not _containers(spec):
        raise DefinitionError(
            f"definition '{definition.name}' renders a Job without spec.template.spec.containers"
        )
    apply_overrides(spec, submission.overrides, definition)
    if submission.depends_on:
        check_dependencies(submission.depends_on)
        mark_waiting(job, submission.depends_on)
    check_resource_bounds(spec, definition)
    if definition.cpu_request_ratio is not None:
        _scale_cpu_requests(spec, definition.cpu_request_ratio)
        annotations[CPU_REQUEST_RATIO_ANNOTATION] = str(definition.cpu_request_ratio)
    _stringify_string_fields(spec)
    return job


def _scale_cpu_requests(spec: Mapping[str, Any], ratio: Decimal) -> None:
    """Request ``ratio`` of each container's CPU (whole millicores, at least 1): the operator's
    overcommit of registered definitions, whose bounds apply to the vCPUs as asked."""
    for container in _containers(spec):
        requests = (container.get("resources") or {}).get("requests") or {}
        amount = parse_quantity(requests.get("cpu"))
        if amount is not None:
            requests["cpu"] = f"{max(1, int(amount * ratio * 1000))}m"


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _stringify_string_fields(spec: dict[str, Any]) -> None:
    """Make values the API only takes as strings strings.

    A whole-value expression keeps its argument's type (``"{{ count }}"`` → 3), which is
    right for ``parallelism`` but not for an annotation, an argument list or an env value.
    """
    template = spec.get("template") or {}
    pod_metadata = template.get("metadata") or {}
    for field_name in ("labels", "annotations"):
        if isinstance(pod_metadata.get(field_name), dict):
            pod_metadata[field_name] = {k: _as_string(v) for k, v in pod_metadata[field_name].items()}
    pod_spec = template.get("spec") or {}
    for container in [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]:
        for field_name in ("command", "args"):
            if isinstance(container.get(field_name), list):
                container[field_name] = [_as_string(part) for part in container[field_name]]
        for variable in container.get("env") or []:
            if isinstance(variable, dict) and variable.get("value") is not None:
                variable["value"] = _as_string(variable["value"])


def add_batch_environment(job: dict[str, Any], queue: str | None, compute_environment: str | None) -> None:
    """AWS Batch's variables in every container: the job's id (an array child's ``<id>:<index>``, a
    node's ``<id>#<index>``), the child's index, the queue and the first compute environment it may
    run in. A variable the template sets itself is left as it is."""
    spec, name = job["spec"], job["metadata"]["name"]
    kind = job_kind(job)
    first: list[dict[str, Any]] = []
    last: list[dict[str, Any]] = []
    if kind == ARRAY:
        index_field = f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"
        first.append(
            {"name": "AWS_BATCH_JOB_ARRAY_INDEX", "valueFrom": {"fieldRef": {"fieldPath": index_field}}}
        )
        first.append({"name": "AWS_BATCH_JOB_ID", "value": f"{name}:$(AWS_BATCH_JOB_ARRAY_INDEX)"})
    elif kind == MULTINODE:  # after the node's own variables, which it refers to
        last.append({"name": "AWS_BATCH_JOB_ID", "value": f"{name}#$(AWS_BATCH_JOB_NODE_INDEX)"})
    else:
        first.append({"name": "AWS_BATCH_JOB_ID", "value": name})
    if queue is not None:
        first.append({"name": "AWS_BATCH_JQ_NAME", "value": queue})
    if compute_environment is not None:
        first.append({"name": "AWS_BATCH_CE_NAME", "value": compute_environment})
    for container in _containers(spec):
        given = container.get("env")
        env: list[Any] = given if isinstance(given, list) else []
        own = {item.get("name") for item in env if isinstance(item, dict)}
        # First, so the template's own values may refer to them as $(AWS_BATCH_JOB_ID).
        container["env"] = (
            [v for v in first if v["name"] not in own] + env + [v for v in last if v["name"] not in own]
        )


def _containers(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    containers = pod_spec.get("containers")
    return containers if isinstance(containers, list) and containers else []


def check_overrides_allowed(overrides: Overrides, definition: JobDefinition) -> None:
    """Refuse overrides the definition does not allow, naming what it does."""
    # Retry rules decide which failures are retried: the same permission as the retries.
    asked = {"retries" if name == "retry_rules" else name for name in overrides.used()}
    refused = sorted(name for name in asked if name not in definition.allowed_overrides)
    if refused:
        allowed = ", ".join(sorted(definition.allowed_overrides)) or "none"
        raise InvalidRequest(
            f"definition '{definition.name}' does not allow overriding {', '.join(refused)} "
            f"(allowed: {allowed})"
        )


def apply_overrides(spec: dict[str, Any], overrides: Overrides, definition: JobDefinition) -> None:
    """Apply each override to a Job spec, within the definition's bounds."""
    check_overrides_allowed(overrides, definition)
    if overrides.timeout is not None:
        limit = definition.max_active_deadline_seconds
        if overrides.timeout < 1 or (limit is not None and overrides.timeout > limit):
            bound = f"between 1 and {limit}" if limit is not None else "at least 1"
            raise InvalidRequest(f"timeout must be {bound} seconds, not {overrides.timeout}")
        spec["activeDeadlineSeconds"] = overrides.timeout
    if overrides.array_size is not None:
        limit = definition.max_array_size or DEFAULT_MAX_ARRAY_SIZE
        if not 1 <= overrides.array_size <= limit:
            raise InvalidRequest(f"array size must be between 1 and {limit}, not {overrides.array_size}")
        spec["completionMode"] = "Indexed"
        spec["completions"] = overrides.array_size
        spec["parallelism"] = min(int(spec.get("parallelism") or overrides.array_size), overrides.array_size)
    if overrides.retries is not None:
        if not 0 <= overrides.retries <= _MAX_RETRIES:
            raise InvalidRequest(f"retries must be between 0 and {_MAX_RETRIES}, not {overrides.retries}")
        spec["backoffLimit"] = overrides.retries
    container = _containers(spec)[0]
    if overrides.command is not None:
        if not overrides.command or not all(isinstance(part, str) for part in overrides.command):
            raise InvalidRequest("command must be a non-empty list of strings")
        # A container given only args (a registered definition: AWS's command is the image's CMD)
        # keeps its image's entrypoint; one given a command has it replaced.
        field_name = "args" if "args" in container and "command" not in container else "command"
        container.pop("args", None)
        container[field_name] = list(overrides.command)
    if overrides.environment is not None:
        _override_environment(container, overrides.environment)
    if overrides.resources is not None:
        _override_resources(container, overrides.resources)


def _override_environment(container: dict[str, Any], environment: Mapping[str, str]) -> None:
    bad = [name for name in environment if not isinstance(name, str) or not _ENV_NAME.match(name)]
    if bad:
        raise InvalidRequest(f"invalid environment variable names: {', '.join(map(repr, bad))[:200]}")
    if not all(isinstance(value, str) for value in environment.values()):
        raise InvalidRequest("environment values must be strings")
    kept = [var for var in container.get("env") or [] if var.get("name") not in environment]
    container["env"] = kept + [{"name": k, "value": v} for k, v in environment.items()]


def _override_resources(container: dict[str, Any], resources: Mapping[str, Mapping[str, str]]) -> None:
    if set(resources) - {"requests", "limits"}:
        raise InvalidRequest("resources take 'requests' and 'limits'")
    current = container.setdefault("resources", {})
    for kind, quantities in resources.items():
        if not isinstance(quantities, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in quantities.items()
        ):
            raise InvalidRequest(f"resources.{kind} must map resource names to quantity strings")
        current.setdefault(kind, {}).update(quantities)


def check_resource_bounds(spec: Mapping[str, Any], definition: JobDefinition) -> None:
    """Refuse a Job whose containers ask for more CPU or memory than the definition allows
    (a registered definition's operator bounds, which overrides must not get around)."""
    bounds = {"cpu": definition.max_cpu, "memory": definition.max_memory_bytes}
    if not any(bounds.values()):
        return  # a file definition: the operator wrote its resources
    for container in _containers(spec):
        for kind in ("requests", "limits"):
            for resource, bound in bounds.items():
                raw = ((container.get("resources") or {}).get(kind) or {}).get(resource)
                if bound is None or raw is None:
                    continue
                amount = parse_quantity(raw)
                if amount is None or amount > bound:
                    raise InvalidRequest(
                        f"{resource} {kind} {str(raw)[:20]!r} is more than definition '{definition.name}' allows"
                    )


QUANTITY_FACTORS = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9, "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15, "E": Decimal(10) ** 18, "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}  # fmt: skip


def parse_quantity(raw: Any) -> Decimal | None:
    """A Kubernetes quantity ("500m", "2Gi", "1e3") as a number; None when absent or unreadable."""
    if raw is None:
        return None
    text = str(raw).strip()
    number = text.rstrip("numkMGTPEi")
    suffix = text[len(number) :]
    if suffix not in QUANTITY_FACTORS:
        return None
    try:
        return Decimal(number) * QUANTITY_FACTORS[suffix]
    except InvalidOperation:
        return None


def check_labels(labels: Mapping[str, str]) -> None:
    """Refuse label keys and values a caller passes that Kubernetes would reject.

    A key is checked too because it is pasted into a label selector: a key such as
    ``a!`` or ``a,b`` would otherwise change what the selector means.
    """
    bad_keys = [key for key in labels if not is_label_key(str(key))]
    if bad_keys:
        raise InvalidRequest(f"invalid label keys: {', '.join(map(repr, bad_keys))[:200]}")
    bad = [key for key, value in labels.items() if not is_label_value(str(value))]
    if bad:
        raise InvalidRequest(f"invalid label values for {', '.join(bad)[:200]}")


#: How ``allowed_subjects`` names a group rather than a username (``group:system:serviceaccounts:apps``).
GROUP_SUBJECT_PREFIX = "group:"


def check_caller_allowed(
    definition: JobDefinition, caller: str | None, caller_groups: Iterable[str] = ()
) -> None:
    """Refuse an authenticated caller the definition does not list in ``allowed_subjects``,
    by its username or (``group:<name>``) one of its groups.

    Without authentication (``caller`` is None) there is no one to check; an empty
    list allows every authenticated caller.
    """
    if caller is None or not definition.allowed_subjects:
        return
    subjects = {caller, *(GROUP_SUBJECT_PREFIX + group for group in caller_groups)}
    if not subjects.isdisjoint(definition.allowed_subjects):
        return
    raise Forbidden(f"{caller[:120]!r} may not submit jobs of definition '{definition.name}'")
