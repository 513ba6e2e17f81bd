"""The AWS Batch actions on jobs, and the table of every action jobfn serves.

Each action is one read → core call → answer.

SubmitJob goes through the same ``Submission`` as every front door; the other
actions read through the manager. Nothing here decides a job's state: the core
does, and ``answers`` only spells it AWS's way.
"""

from __future__ import annotations

from typing import Any

from .._attempts import MULTINODE
from .._contract import QUEUE_LABEL
from .._definitions import JobDefinitions
from .._errors import InvalidRequest, JobNotFound
from .._paging import MAX_PAGE_SIZE
from .._queues import JobQueue
from .answers import job_detail, job_name, job_summary
from .call import DOOR, Action, Call
from .fields import decode_token, encode_token, max_results, required_string
from .parsing import (
    MAX_DESCRIBE_JOBS,
    definition_reference,
    job_status,
    list_filter,
    resource_name,
    split_job_id,
    submission_from_request,
)
from .resources import (
    deregister_job_definition,
    describe_compute_environments,
    describe_job_definitions,
    describe_job_queues,
    get_job_queue_snapshot,
    list_tags_for_resource,
    register_job_definition,
    tag_resource,
    untag_resource,
)


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
    asked: list[tuple[str, int | None, bool]] = []
    for job_id in ids:
        try:
            asked.append((*split_job_id(job_id), "#" in job_id))
        except JobNotFound:
            continue
    # One read per job (a parent once however many children are asked), pods in one list.
    described = call.backend.manager().describe_jobs(name for name, _, _ in asked)
    details = []
    for name, index, node in asked:
        description = described.get(name)
        if description is None or (index is not None and node != (description.view.kind == MULTINODE)):
            continue  # a node is <id>#<index>, an array child <id>:<index>
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
    queue, array_job, nodes_of = body.get("jobQueue"), body.get("arrayJobId"), body.get("multiNodeJobId")
    if sum(given is not None for given in (queue, array_job, nodes_of)) != 1:
        raise InvalidRequest("give exactly one of jobQueue, arrayJobId and multiNodeJobId")
    limit = max_results(body, default=100, maximum=MAX_PAGE_SIZE)
    if array_job is not None or nodes_of is not None:
        return _list_children(call, str(array_job or nodes_of), limit, nodes=nodes_of is not None)
    queue_name = _queue(call, str(queue)).name
    keep = list_filter(body.get("filters"), body.get("jobStatus"))
    token = body.get("nextToken")
    page = call.backend.manager().list_jobs(
        state=None if body.get("filters") else job_status(body.get("jobStatus")),
        labels={QUEUE_LABEL: queue_name},
        keep=keep,
        limit=limit,
        next_token=str(token) if token is not None else None,
    )
    answer: dict[str, Any] = {"jobSummaryList": [job_summary(view, call.arns) for view in page.jobs]}
    if page.next_token:
        answer["nextToken"] = page.next_token
    return answer


def _list_children(call: Call, array_job: str, limit: int, nodes: bool) -> dict[str, Any]:
    field, kind = ("multiNodeJobId", "a multi-node") if nodes else ("arrayJobId", "an array")
    name, index = split_job_id(array_job)
    if index is not None:
        raise InvalidRequest(f"{field}: give the job's own id, not one of its children's")
    description = call.backend.manager().describe_jobs([name]).get(name)
    if description is None:
        raise JobNotFound(f"job {name!r} not found")
    if not description.children or nodes != (description.view.kind == MULTINODE):
        raise InvalidRequest(f"{field}: job {name!r} is not {kind} job")
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


def _queue(call: Call, reference: str) -> JobQueue:
    return call.backend.definitions().queues.get(resource_name(reference, "job-queue"))


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
    "getjobqueuesnapshot": get_job_queue_snapshot,
    "listtagsforresource": list_tags_for_resource,
    "tagresource": tag_resource,
    "untagresource": untag_resource,
}
"""Every action served, by its REST path's last segment (``/v1/submitjob``)."""
