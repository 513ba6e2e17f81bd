"""REST request bodies and query strings, turned into the core's types.

Parsing here checks JSON types and shapes only, and lists every problem at once. What
a value means — is the definition known, is the timeout within its bounds, are the
arguments valid — is decided once, in the core, for every front door.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._auth import Caller, caller_fields
from ._dependencies import Dependency
from ._errors import InvalidRequest
from ._retention import HOLD_FOREVER, RetentionChange
from ._submission import OVERRIDE_NAMES, Overrides, Submission

#: The body of k8s-jobs' example server: ``{"job_definition_name": ..., <arguments>}``.
K8S_JOBS_DEFINITION_KEY = "job_definition_name"
SUBMISSION_FIELDS = ("definition", "arguments", "overrides", "tags", "queue", "depends_on")
RETENTION_FIELDS = ("hold", "delete_after", "extend_seconds")
MAX_REASON_LENGTH = 1024
DEFAULT_TERMINATION_REASON = "terminated through the REST API"
_INTEGER_OVERRIDES = ("timeout", "array_size", "retries")
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,18}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


def _require_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest(f"{what} must be a JSON object, not {_json_type(body)}")
    return body


def _unknown_fields(body: Mapping[str, Any], known: tuple[str, ...]) -> list[str]:
    return [
        f"{str(key)[:80]}: not a field of this request (fields: {', '.join(known)})"
        for key in body
        if key not in known
    ]


def _raise_if(problems: list[str], what: str) -> None:
    if problems:
        raise InvalidRequest(f"invalid {what}: " + "; ".join(problems), problems)


def _string_map(value: Any, where: str, problems: list[str]) -> dict[str, str] | None:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        problems.append(f"{where}: must be an object of strings")
        return None
    return value


def submission_from_body(
    body: Any, idempotency_key: str | None = None, caller: Caller | None = None
) -> tuple[Submission, bool]:
    """The submission a ``POST /jobs`` body asks for, and whether it is in k8s-jobs' shape."""
    body = _require_object(body, "the submission")
    if K8S_JOBS_DEFINITION_KEY in body:
        definition = body[K8S_JOBS_DEFINITION_KEY]
        if not isinstance(definition, str) or not definition:
            raise InvalidRequest(f"{K8S_JOBS_DEFINITION_KEY} must be a non-empty string")
        arguments = {key: value for key, value in body.items() if key != K8S_JOBS_DEFINITION_KEY}
        return Submission(
            definition, arguments, idempotency_key=idempotency_key, **caller_fields(caller)
        ), True

    problems = _unknown_fields(body, SUBMISSION_FIELDS)
    definition = body.get("definition")
    if not isinstance(definition, str) or not definition:
        problems.append("definition: a non-empty string naming a job definition is required")
    arguments = body.get("arguments", {})
    if not isinstance(arguments, dict):
        problems.append(f"arguments: must be an object, not {_json_type(arguments)}")
    overrides = overrides_from_json(body.get("overrides"), problems)
    tags = _string_map(body.get("tags", {}), "tags", problems)
    queue = body.get("queue")
    if queue is not None and not isinstance(queue, str):
        problems.append("queue: must be a string")
    depends_on = dependencies_from_json(body.get("depends_on"), problems)
    _raise_if(problems, "submission")
    submission = Submission(
        definition=str(definition),
        arguments=arguments,
        overrides=overrides,
        idempotency_key=idempotency_key,
        tags=tags or {},
        queue=queue,
        depends_on=depends_on,
        **caller_fields(caller),
    )
    return submission, False


def dependencies_from_json(raw: Any, problems: list[str]) -> tuple[Dependency, ...]:
    """``depends_on``: job names, or ``{"job": name, "type": "SEQUENTIAL"}`` objects as AWS's."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append("depends_on: must be a list of job names")
        return ()
    found = []
    for item in raw:
        if isinstance(item, str) and item:
            found.append(Dependency(item))
        elif isinstance(item, dict) and set(item) <= {"job", "type"} and isinstance(item.get("job", ""), str):
            found.append(Dependency(item.get("job", ""), item.get("type")))
        else:
            problems.append(f"depends_on: {str(item)[:80]!r} is not a job name or {{'job', 'type'}}")
    return tuple(found)


def idempotency_key_from_header(raw: str | None) -> str | None:
    """The ``Idempotency-Key`` header's key; a comma means the header came twice (joined by the server)."""
    if raw is not None and "," in raw:
        raise InvalidRequest(
            "the Idempotency-Key header holds a comma, as when it is sent twice; send one key, without commas"
        )
    return raw


def overrides_from_json(raw: Any, problems: list[str]) -> Overrides:
    """Overrides from their JSON object, adding type problems to ``problems``."""
    if raw is None:
        return Overrides()
    if not isinstance(raw, dict):
        problems.append(f"overrides: must be an object, not {_json_type(raw)}")
        return Overrides()
    problems.extend(f"overrides.{problem}" for problem in _unknown_fields(raw, OVERRIDE_NAMES))
    values: dict[str, Any] = {}
    for name in _INTEGER_OVERRIDES:
        value = raw.get(name)
        if value is None:
            continue
        if _is_int(value):
            values[name] = value
        else:
            problems.append(f"overrides.{name}: must be a whole number")
    command = raw.get("command")
    if command is not None:
        if isinstance(command, list) and command and all(isinstance(part, str) for part in command):
            values["command"] = tuple(command)
        else:
            problems.append("overrides.command: must be a non-empty array of strings")
    environment = raw.get("environment")
    if environment is not None:
        values["environment"] = _string_map(environment, "overrides.environment", problems)
    resources = raw.get("resources")
    if resources is not None:
        if isinstance(resources, dict) and all(isinstance(v, dict) for v in resources.values()):
            values["resources"] = resources
        else:
            problems.append("overrides.resources: must be an object of objects (requests, limits)")
    return Overrides(**values)


def labels_from_query(raw: str | None) -> dict[str, str]:
    """``k=v,k2=v2`` as a mapping (key and value syntax is checked by the core)."""
    if not raw:
        return {}
    labels: dict[str, str] = {}
    problems = []
    for pair in raw.split(","):
        key, equals, value = pair.partition("=")
        if not equals or not key:
            problems.append(f"labels: {pair[:80]!r} is not key=value")
        else:
            labels[key] = value
    _raise_if(problems, "query")
    return labels


def int_from_query(raw: str | None, name: str, default: int | None, minimum: int, maximum: int) -> int | None:
    """A whole-number query parameter within ``minimum``..``maximum``."""
    if raw is None:
        return default
    if not _WHOLE_NUMBER.fullmatch(raw):  # int() would also take " 5", "+5" and "5_0"
        raise InvalidRequest(f"{name} must be a whole number, not {raw[:40]!r}")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise InvalidRequest(f"{name} must be between {minimum} and {maximum}, not {value}")
    return value


def termination_reason(body: Any) -> str:
    """The reason of a ``POST /jobs/<name>/terminate`` body (which may be empty)."""
    if body is None:
        return DEFAULT_TERMINATION_REASON
    body = _require_object(body, "the termination request")
    problems = _unknown_fields(body, ("reason",))
    reason = body.get("reason", DEFAULT_TERMINATION_REASON)
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_LENGTH:
        problems.append(f"reason: must be a non-empty string of at most {MAX_REASON_LENGTH} characters")
    _raise_if(problems, "termination request")
    return str(reason)


def retention_change(body: Any) -> RetentionChange:
    """The change a ``PUT /jobs/<name>/retention`` body asks for: ``{"hold": true}``,
    ``{"delete_after": <unix time>}`` or ``{"extend_seconds": n}``."""
    body = _require_object(body, "the retention request")
    problems = _unknown_fields(body, RETENTION_FIELDS)
    given = [name for name in RETENTION_FIELDS if name in body]
    if len(given) != 1:
        problems.append(f"give exactly one of {', '.join(RETENTION_FIELDS)}")
    _raise_if(problems, "retention request")
    name = given[0]
    value = body[name]
    if name == "hold":
        if value is not True:
            raise InvalidRequest("hold must be true; to release a hold, set delete_after")
        return RetentionChange("hold")
    if not _is_int(value):
        raise InvalidRequest(f"{name} must be a whole number")
    if name == "delete_after":
        if not 0 <= value <= HOLD_FOREVER:
            raise InvalidRequest(f"delete_after must be a unix time between 0 and {HOLD_FOREVER}")
        return RetentionChange("delete_after", int(value))
    if not 1 <= value <= HOLD_FOREVER:
        raise InvalidRequest(f"extend_seconds must be between 1 and {HOLD_FOREVER}")
    return RetentionChange("extend", int(value))
