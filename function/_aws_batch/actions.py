"""The AWS Batch actions jobfn serves, each one read → core call → answer.

SubmitJob goes through the same ``Submission`` as every front door; the other
actions read through the manager. Nothing here decides a job's state: the core
does, and ``answers`` only spells it AWS's way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .._contract import QUEUE_LABEL
from .._definitions import JobDefinitions
from .._errors import InvalidRequest, JobNotFound
from .._paging import MAX_PAGE_SIZE
from .._queues import JobQueue
from .._submission import JobView, Submission
from .answers import (
    Arns,
    job_definition,
    job_detail,
    job_name,
    job_queue,
    job_summary,
)
from .parsing import (
    MAX_DESCRIBE_JOBS,
    decode_token,
    definition_name,
    encode_token,
    job_status,
    list_filter,
    max_results,
    required_string,
    resource_name,
    split_job_id,
    submission_from_request,
)

if TYPE_CHECKING:
    from .._manager import JobManager

#: The front door's name in metrics and logs.
DOOR = "aws_batch"

T = TypeVar("T")


class Backend(Protocol):
    """What the actions need from the function (``service.Service``)."""

    def definitions(self) -> JobDefinitions: ...

    def manager(self) -> JobManager: ...

    def submit(self, submission: Submission, door: str) -> JobView: ...


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
    submission = submission_from_request(call.body, call.backend.definitions(), call.caller)
    view = call.backend.submit(submission, DOOR)
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


def describe_job_definitions(call: Call) -> dict[str, Any]:
    body = call.body
    limit = max_results(body, default=100, maximum=100)
    status = body.get("status")
    if status not in (None, "ACTIVE", "INACTIVE"):
        raise InvalidRequest("status: ACTIVE or INACTIVE")
    asked = _names(body, "jobDefinitions", definition_name)
    named = body.get("jobDefinitionName")
    definitions = [
        definition
        for definition in call.backend.definitions()
        if (asked is None or definition.name in asked) and (named is None or definition.name == named)
    ]
    if status == "INACTIVE":
        definitions = []  # every definition in the file is the active one
    page, token = _page(sorted(definitions, key=lambda d: d.name), lambda d: d.name, limit, body)
    answer: dict[str, Any] = {"jobDefinitions": [job_definition(d, call.arns) for d in page]}
    if token:
        answer["nextToken"] = token
    return answer


def describe_job_queues(call: Call) -> dict[str, Any]:
    """The configured queues, else a default one; with none configured, any queue asked for exists."""
    body = call.body
    limit = max_results(body, default=100, maximum=100)
    asked = _names(body, "jobQueues", lambda q: resource_name(q, "job-queue"))
    queues = call.backend.definitions().queues
    if asked is not None and not queues.configured:
        selected = [JobQueue(name) for name in sorted(asked)]
    else:
        selected = [queue for queue in queues.listed() if asked is None or queue.name in asked]
    page, token = _page(selected, lambda q: q.name, limit, body)
    answer: dict[str, Any] = {"jobQueues": [job_queue(q, call.arns) for q in page]}
    if token:
        answer["nextToken"] = token
    return answer


def _queue(call: Call, reference: str) -> JobQueue:
    return call.backend.definitions().queues.get(resource_name(reference, "job-queue"))


def _names(body: dict[str, Any], key: str, read: Callable[[str], str]) -> set[str] | None:
    raw = body.get(key)
    if raw is None or raw == []:
        return None
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise InvalidRequest(f"{key}: must be a list of names or ARNs")
    return {read(item) for item in raw}


def _page(
    items: list[T], key: Callable[[T], str], limit: int, body: dict[str, Any]
) -> tuple[list[T], str | None]:
    """The ``limit`` items after the token's name, in name order, and the next token."""
    after = decode_token(body.get("nextToken"))
    if after is not None and not isinstance(after, str):
        raise InvalidRequest("nextToken: not a token this API gave; list again from the start")
    rest = [item for item in items if after is None or key(item) > after]
    page = rest[:limit]
    return page, encode_token(key(page[-1])) if len(rest) > limit else None


ACTIONS: dict[str, Action] = {
    "submitjob": submit_job,
    "describejobs": describe_jobs,
    "listjobs": list_jobs,
    "canceljob": cancel_job,
    "terminatejob": terminate_job,
    "describejobdefinitions": describe_job_definitions,
    "describejobqueues": describe_job_queues,
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
