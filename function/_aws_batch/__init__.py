"""The AWS Batch API front door: existing Batch clients work with only a new endpoint URL.

``POST /v1/<action>`` in AWS Batch's REST-JSON shapes (botocore's ``batch`` service
model) for SubmitJob, DescribeJobs, ListJobs, CancelJob, TerminateJob,
DescribeJobDefinitions and DescribeJobQueues, translated into the same submission
and job views as every other front door.

    door.py      HTTP: body, SigV4 check, action, AWS-shaped answers and errors
    actions.py   one function per action: read → core call → answer
    parsing.py   request bodies → Submission, ids, filters, tokens (pure)
    answers.py   JobView, definitions, queues → AWS shapes (pure)
    sigv4.py     Signature Version 4 verification (pure)

A job's id is its Kubernetes name; the children of an array job are
``<id>:<index>``. Its jobName and tags are recorded on the Job.
"""

from __future__ import annotations

from .door import handle

__all__ = ["handle"]
