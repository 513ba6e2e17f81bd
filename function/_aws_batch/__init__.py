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

from .door import handle

__all__ = ["handle"]
