"""The AWS Batch API front door: existing Batch clients work with only a new endpoint URL.

``POST /v1/<action>`` in AWS Batch's REST-JSON shapes (botocore's ``batch`` service
model), translated into the same submission and job views as every other front
door; ``actions.ACTIONS`` lists each action served.

    door.py      HTTP: body, SigV4 check, action, AWS-shaped answers and errors
    call.py      Call: one request as an action takes it; Backend, names, pages
    actions.py   the job actions (read → core call → answer) and the table of all
    resources.py definitions (registered and the file's), queues, compute envs, tags
    parsing.py   request bodies → Submission, ids, filters (pure)
    fields.py    one field of a body read, problems collected; page tokens (pure)
    answers.py   JobView, definitions, queues → AWS shapes (pure)
    sigv4.py     Signature Version 4 verification (pure)

A job's id is its Kubernetes name; the children of an array job are
``<id>:<index>``. Its jobName and tags are recorded on the Job.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import flask

    from .._service import Service

#: Every action of the AWS Batch API (REST paths ``/v1/<action in lower case>``): those in
#: ``actions.ACTIONS``, and the rest, answered in AWS's error shape as not served by jobfn.
AWS_BATCH_ACTIONS = frozenset(
    {
        "canceljob", "createcomputeenvironment", "createjobqueue", "createschedulingpolicy",
        "deletecomputeenvironment", "deletejobqueue", "deleteschedulingpolicy",
        "deregisterjobdefinition", "describecomputeenvironments", "describejobdefinitions",
        "describejobqueues", "describejobs", "describeschedulingpolicies", "getjobqueuesnapshot", "listjobs",
        "listschedulingpolicies", "listtagsforresource", "registerjobdefinition", "submitjob",
        "tagresource", "terminatejob", "untagresource", "updatecomputeenvironment",
        "updatejobqueue", "updateschedulingpolicy",
    }
)  # fmt: skip


# The door is imported by its first request: a function that serves no AWS client never pays
# for it on a cold start (python -X importtime: door, actions, SigV4 and answers).
def handle(request: flask.Request, service: Service) -> flask.Response:
    from .door import handle as door

    return door(request, service)


def error_response(error: BaseException) -> flask.Response:
    from .door import error_response as answer

    return answer(error)


__all__ = ["AWS_BATCH_ACTIONS", "error_response", "handle"]
