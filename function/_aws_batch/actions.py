"""The AWS Batch actions jobfn serves, each one read → core call → answer.

SubmitJob goes through the same ``Submission`` as every front door; the other
actions read through the manager. Nothing here decides a job's state: the core
does, and ``answers`` only spells it AWS's way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .._contract import QUEUE_LABEL
from .._definitions import JobDefinition, JobDefinitions
from .._errors import InvalidRequest, JobNotFound
from .._paging import MAX_PAGE_SIZE
from .._queues import JobQueue
from .._submission import JobView, Submission
from .answers import (
    JOB_NAME_TAG,
    Arns,
    compute_environment,
    job_definition,
    job_detail,
    job_name,
    job_queue,
    job_summary,
    registered_job_definition,
)
from .parsing import (
    MAX_DESCRIBE_JOBS,
    RESERVED_TAG_PREFIXES,
    arn_kind,
    decode_token,
    definition_reference,
    encode_token,
    job_status,
    list_filter,
    max_results,
    required_string,
    resource_name,
    split_job_id,
    submission_from_request,
    tags_of,
)

if TYPE_CHECKING:
    from .._manager import JobManager
    from .._registration import Registration
    from .._registry import RegisteredDefinitions

#: The front door's name in metrics and logs.
DOOR = "aws_batch"

T = TypeVar("T")


class Backend(Protocol):
    """What the actions need from the function (``service.Service``)."""

    def definitions(self) -> JobDefinitions: ...

    def manager(self) -> JobManager: ...

    def submit(
        self, submission: Submission, door: str, definition: JobDefinition | None = None
    ) -> JobView: ...

    def registration(self, name: str, revision: int | None) -> Registration | None: ...

    def registered_definition(self, name: str, revision: int | None) -> JobDefinition | None: ...

    def registry(self) -> RegisteredDefinitions | None: ...

    def register(self, registration: Registration, caller: str | None) -> Registration: ...


@dataclass(frozen=True)
class Call:
    """One AWS Batch request, read and authenticated."""

    body: dict[str, Any]
    backend: Backend
    arns: Arns
    caller: str | None
    """``aws:<access key id>`` when signatures are verified, else None."""


Action = Callable[[Call], dict[str, Any]]


def submit_job(call: Call) -> dict[str, Any]:
    reference = call.body.get("jobDefinition")
    registered = None
    if isinstance(reference, str):
        registered = call.backend.registered_definition(*definition_reference(reference))
    definitions = call.backend.definitions()
    if registered is not None:
        definitions = JobDefinitions([registered], definitions.queues)
    submission = submission_from_request(call.body, definitions, call.caller)
    view = call.backend.submit(submission, DOOR, registered)
    return {"jobArn": call.arns.job(view.name), "jobName": job_name(view), "jobId": view.name}


def describe_jobs(call: Call) -> dict[str, Any]:
    """Each job asked for, array children (``<id>:<index>``) included; unknown ids are left out."""
    ids = call.body.get("jobs")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids) or len(ids) > MAX_DESCRIBE_JOBS:
        raise InvalidRequest(f"jobs: required, a list of up to {MAX_DESCRIBE_JOBS} job ids")
    asked: list[tuple[str, int | None]] = []
    for job_id in ids:
        try:
            asked.append(split_job_id(job_id))
        except JobNotFound:
            continue
    # One read per job (a parent once however many children are asked), pods in one list.
    described = call.backend.manager().describe_jobs(name for name, _ in asked)
    details = []
    for name, index in asked:
        description = described.get(name)
        if description is None:
            continue
        if index is None:
            details.append(
                job_detail(description.view, description.manifest, call.arns, description.children)
            )
        elif index < len(description.children):
            details.append(
                job_detail(description.children[index], description.manifest, call.arns, index=index)
            )
    return {"jobs": details}


def list_jobs(call: Call) -> dict[str, Any]:
    """A queue's jobs newest first, or an array job's children by index; RUNNING unless asked."""
    body = call.body
    if body.get("multiNodeJobId") is not None:
        raise InvalidRequest("multiNodeJobId: multi-node parallel jobs are not supported by jobfn")
    queue, array_job = body.get("jobQueue"), body.get("arrayJobId")
    if (queue is None) == (array_job is None):
        raise InvalidRequest("give exactly one of jobQueue and arrayJobId")
    limit = max_results(body, default=100, maximum=MAX_PAGE_SIZE)
    if array_job is not None:
        return _list_children(call, str(array_job), limit)
    queue_name = _queue(call, str(queue)).name
    keep = list_filter(body.get("filters"), body.get("jobStatus"))
    token = body.get("nextToken")
    page = call.backend.manager().list_jobs(
        labels={QUEUE_LABEL: queue_name},
        keep=keep,
        limit=limit,
        next_token=str(token) if token is not None else None,
    )
    answer: dict[str, Any] = {"jobSummaryList": [job_summary(view, call.arns) for view in page.jobs]}
    if page.next_token:
        answer["nextToken"] = page.next_token
    return answer


def _list_children(call: Call, array_job: str, limit: int) -> dict[str, Any]:
    name, index = split_job_id(array_job)
    if index is not None:
        raise InvalidRequest("arrayJobId: give the array job's id, not one of its children's")
    description = call.backend.manager().describe_jobs([name]).get(name)
    if description is None:
        raise JobNotFound(f"job {name!r} not found")
    if not description.children:
        raise InvalidRequest(f"arrayJobId: job {name!r} is not an array job")
    wanted = job_status(call.body.get("jobStatus"))
    start = decode_token(call.body.get("nextToken")) or 0
    if not isinstance(start, int):
        raise InvalidRequest("nextToken: not a token this API gave; list again from the start")
    matching = [i for i, child in enumerate(description.children) if i >= start and child.state == wanted]
    summaries = [job_summary(description.children[i], call.arns, index=i) for i in matching[:limit]]
    answer: dict[str, Any] = {"jobSummaryList": summaries}
    if len(matching) > limit:
        answer["nextToken"] = encode_token(matching[limit])
    return answer


def cancel_job(call: Call) -> dict[str, Any]:
    """Stop a job that has not started; a started one is left running and the call still succeeds."""
    name, reason = _job_and_reason(call)
    call.backend.manager().cancel_job(name, reason)
    return {}


def terminate_job(call: Call) -> dict[str, Any]:
    """Stop a job whatever its state; a finished job is left as it is."""
    name, reason = _job_and_reason(call)
    call.backend.manager().terminate_job(name, reason)
    return {}


def _job_and_reason(call: Call) -> tuple[str, str]:
    problems: list[str] = []
    job_id = required_string(call.body, "jobId", problems)
    reason = required_string(call.body, "reason", problems)
    if problems or job_id is None or reason is None:
        raise InvalidRequest("; ".join(problems), problems)
    name, index = split_job_id(job_id)
    if index is not None:
        raise InvalidRequest(
            f"jobId: the children of an array job stop with it; cancel or terminate {name!r} itself"
        )
    return name, reason


def register_job_definition(call: Call) -> dict[str, Any]:
    from .._registration import read_registration  # registering is rare: not on the cold start

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
    asked = _names(body, "jobDefinitions", definition_reference)
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
    return _paged(
        "jobDefinitions", found, lambda item: f"{item[0]}:{item[1]:09d}", lambda item: item[2], body
    )


def describe_job_queues(call: Call) -> dict[str, Any]:
    """The configured queues, else a default one; with none configured, any queue asked for exists."""
    body = call.body
    asked = _names(body, "jobQueues", lambda q: resource_name(q, "job-queue"))
    queues = call.backend.definitions().queues
    if asked is not None and not queues.configured:
        selected = [JobQueue(name) for name in sorted(asked)]
    else:
        selected = [queue for queue in queues.listed() if asked is None or queue.name in asked]
    return _paged(
        "jobQueues", selected, lambda q: q.name, lambda q: job_queue(q, call.arns, queues.placement(q)), body
    )


def describe_compute_environments(call: Call) -> dict[str, Any]:
    """The definitions file's compute environments, in name order."""
    body = call.body
    asked = _names(body, "computeEnvironments", lambda e: resource_name(e, "compute-environment"))
    environments = call.backend.definitions().queues.environments
    selected = [environments[name] for name in sorted(environments) if asked is None or name in asked]
    return _paged(
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


def _queue(call: Call, reference: str) -> JobQueue:
    return call.backend.definitions().queues.get(resource_name(reference, "job-queue"))


def _names(body: dict[str, Any], key: str, read: Callable[[str], T]) -> set[T] | None:
    raw = body.get(key)
    if raw is None or raw == []:
        return None
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise InvalidRequest(f"{key}: must be a list of names or ARNs")
    return {read(item) for item in raw}


def _paged(
    field: str,
    items: list[T],
    key: Callable[[T], str],
    render: Callable[[T], dict[str, Any]],
    body: dict[str, Any],
) -> dict[str, Any]:
    """AWS's ``{field: [...], "nextToken"}``: up to ``maxResults`` (100) items after the token's
    key, in key order (``items`` are sorted by it)."""
    limit = max_results(body, default=100, maximum=100)
    after = decode_token(body.get("nextToken"))
    if after is not None and not isinstance(after, str):
        raise InvalidRequest("nextToken: not a token this API gave; list again from the start")
    rest = [item for item in items if after is None or key(item) > after]
    page = rest[:limit]
    answer: dict[str, Any] = {field: [render(item) for item in page]}
    if len(rest) > limit:
        answer["nextToken"] = encode_token(key(page[-1]))
    return answer


ACTIONS: dict[str, Action] = {
    "submitjob": submit_job,
    "describejobs": describe_jobs,
    "listjobs": list_jobs,
    "canceljob": cancel_job,
    "terminatejob": terminate_job,
    "describejobdefinitions": describe_job_definitions,
    "registerjobdefinition": register_job_definition,
    "deregisterjobdefinition": deregister_job_definition,
    "describejobqueues": describe_job_queues,
    "describecomputeenvironments": describe_compute_environments,
    "listtagsforresource": list_tags_for_resource,
    "tagresource": tag_resource,
    "untagresource": untag_resource,
}
"""Every action served, by its REST path's last segment (``/v1/submitjob``)."""

#: Every action of the AWS Batch API (REST paths ``/v1/<action in lower case>``): those in
#: ACTIONS, and the rest, answered in AWS's error shape as not served by jobfn.
AWS_BATCH_ACTIONS = frozenset(
    {
        "canceljob", "createcomputeenvironment", "createjobqueue", "createschedulingpolicy",
        "deletecomputeenvironment", "deletejobqueue", "deleteschedulingpolicy",
        "deregisterjobdefinition", "describecomputeenvironments", "describejobdefinitions",
        "describejobqueues", "describejobs", "describeschedulingpolicies", "listjobs",
        "listschedulingpolicies", "listtagsforresource", "registerjobdefinition", "submitjob",
        "tagresource", "terminatejob", "untagresource", "updatecomputeenvironment",
        "updatejobqueue", "updateschedulingpolicy",
    }
)  # fmt: skip
