"""The AWS Batch actions on what surrounds jobs: job definitions (registered and the
operator's), job queues, compute environments, and tags.

Registered definitions are read by ``_registration`` and kept by the registry; the
definitions file's own are the operator's and win on a name clash.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._errors import InvalidRequest
from .._queues import JobQueue
from .answers import (
    JOB_NAME_TAG,
    compute_environment,
    job_definition,
    job_queue,
    queue_snapshot,
    registered_job_definition,
)
from .call import Call, names, paged
from .fields import required_string
from .parsing import (
    RESERVED_TAG_PREFIXES,
    arn_kind,
    definition_reference,
    resource_name,
    split_job_id,
    tags_of,
)


def register_job_definition(call: Call) -> dict[str, Any]:
    from .._registration_request import read_registration  # registering is rare: not on the cold start

    registration = call.backend.register(read_registration(call.body, call.caller), call.caller)
    return {
        "jobDefinitionName": registration.name,
        "jobDefinitionArn": call.arns.job_definition(registration.name, registration.revision),
        "revision": registration.revision,
    }


def deregister_job_definition(call: Call) -> dict[str, Any]:
    problems: list[str] = []
    reference = required_string(call.body, "jobDefinition", problems)
    if reference is None:
        raise InvalidRequest(problems[0])
    name, revision = definition_reference(reference)
    registry = call.backend.registry()
    if revision is None:
        raise InvalidRequest("jobDefinition: give name:revision or the revision's ARN")
    if name in call.backend.definitions().names():
        raise InvalidRequest(
            f"job definition {name!r} is the operator's (the definitions file); it cannot be deregistered"
        )
    if registry is None:
        raise InvalidRequest(f"job definition {name}:{revision} is not registered (registration is off)")
    registry.deregister(name, revision)
    return {}


def describe_job_definitions(call: Call) -> dict[str, Any]:
    """The file's definitions (revision 1, always ACTIVE) and every registered revision.

    The file holds one revision of each of its definitions, so any revision pinned names it
    (as SubmitJob takes it); a registered revision is matched exactly."""
    body = call.body
    status = body.get("status")
    if status not in (None, "ACTIVE", "INACTIVE"):
        raise InvalidRequest("status: ACTIVE or INACTIVE")
    asked = names(body, "jobDefinitions", definition_reference)
    named = body.get("jobDefinitionName")

    def wanted(name: str, revision: int | None) -> bool:
        """``revision`` None: any revision asked for names it (a file definition)."""
        if named is not None and name != named:
            return False
        if asked is None:
            return True
        return (name, None) in asked or (name, revision) in asked or (revision is None and name in pinned)

    pinned = {name for name, _ in asked or ()}
    file_definitions = call.backend.definitions()
    found: list[tuple[str, int, dict[str, Any]]] = [
        (d.name, 1, job_definition(d, call.arns)) for d in file_definitions if wanted(d.name, None)
    ]
    registry = call.backend.registry()
    for registration in registry.revisions() if registry is not None else []:
        if registration.name not in file_definitions.names() and wanted(
            registration.name, registration.revision
        ):
            found.append(
                (registration.name, registration.revision, registered_job_definition(registration, call.arns))
            )
    if status is not None:
        found = [item for item in found if item[2]["status"] == status]
    found.sort(key=lambda item: (item[0], item[1]))
    return paged("jobDefinitions", found, lambda item: f"{item[0]}:{item[1]:09d}", lambda item: item[2], body)


def describe_job_queues(call: Call) -> dict[str, Any]:
    """The configured queues, else a default one; with none configured, any queue asked for exists."""
    body = call.body
    asked = names(body, "jobQueues", lambda q: resource_name(q, "job-queue"))
    queues = call.backend.definitions().queues
    if asked is not None and not queues.configured:
        selected = [JobQueue(name) for name in sorted(asked)]
    else:
        selected = [queue for queue in queues.listed() if asked is None or queue.name in asked]
    return paged(
        "jobQueues", selected, lambda q: q.name, lambda q: job_queue(q, call.arns, queues.placement(q)), body
    )


def get_job_queue_snapshot(call: Call) -> dict[str, Any]:
    """The front of a Kueue-backed queue, in the order Kueue will admit it (its visibility API)."""
    problems: list[str] = []
    reference = required_string(call.body, "jobQueue", problems)
    if reference is None:
        raise InvalidRequest(problems[0])
    queue = call.backend.definitions().queues.get(resource_name(reference, "job-queue"))
    return queue_snapshot(call.backend.queue_snapshot(queue), call.arns)


def describe_compute_environments(call: Call) -> dict[str, Any]:
    """The definitions file's compute environments, in name order."""
    body = call.body
    asked = names(body, "computeEnvironments", lambda e: resource_name(e, "compute-environment"))
    environments = call.backend.definitions().queues.environments
    selected = [environments[name] for name in sorted(environments) if asked is None or name in asked]
    return paged(
        "computeEnvironments", selected, lambda e: e.name, lambda e: compute_environment(e, call.arns), body
    )


# --- tags -----------------------------------------------------------------------------------
def list_tags_for_resource(call: Call) -> dict[str, Any]:
    kind, name, revision = _tagged_resource(call)
    if kind == "job":
        view = call.backend.manager().view_job(name)
        return {"tags": {k: v for k, v in view.tags.items() if k != JOB_NAME_TAG}}
    registration = call.backend.registration(name, revision)
    return {"tags": dict(registration.tags) if registration is not None else {}}


def tag_resource(call: Call) -> dict[str, Any]:
    problems: list[str] = []
    tags = tags_of(call.body, problems)
    if not tags and not problems:
        problems.append("tags: give at least one tag")
    if problems:
        raise InvalidRequest("invalid TagResource request: " + "; ".join(problems), problems)
    _change_tags(call, tags, ())
    return {}


def untag_resource(call: Call) -> dict[str, Any]:
    keys = [key for key in call.body.get("tagKeys") or [] if isinstance(key, str)]
    if not keys:
        raise InvalidRequest("tagKeys: give at least one tag key")
    if any(key.startswith(RESERVED_TAG_PREFIXES) for key in keys):
        raise InvalidRequest(f"tagKeys: keys starting with {' or '.join(RESERVED_TAG_PREFIXES)} are reserved")
    _change_tags(call, {}, keys)
    return {}


def _change_tags(call: Call, add: dict[str, str], remove: Sequence[str]) -> None:
    kind, name, revision = _tagged_resource(call)
    if kind == "job":
        call.backend.manager().change_tags(name, add, remove)
        return
    registry = call.backend.registry()
    if registry is None or call.backend.registration(name, revision) is None:
        raise InvalidRequest(f"job definition {name!r} is the operator's (the definitions file) or not "
                             "registered; its tags cannot be changed here")  # fmt: skip
    assert revision is not None  # _tagged_resource asks a revision of a definition
    registry.change_tags(name, revision, add, remove)


def _tagged_resource(call: Call) -> tuple[str, str, int | None]:
    """``("job", name, None)`` or ``("job-definition", name, revision)`` from the resource ARN."""
    arn = str(call.body.get("resourceArn") or "")
    kind = arn_kind(arn)
    if kind == "job":
        name, index = split_job_id(arn)
        if index is not None:
            raise InvalidRequest("an array child has its array job's tags: tag the array job")
        return kind, name, None
    if kind == "job-definition":
        name, revision = definition_reference(arn)
        if revision is None:
            raise InvalidRequest("a job definition's ARN names its revision (name:revision)")
        return kind, name, revision
    raise InvalidRequest(f"jobfn keeps tags on jobs and registered job definitions, not on {arn[:120]!r} "
                         "(queues and compute environments are the definitions file's)")  # fmt: skip
