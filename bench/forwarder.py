"""The least a function can do and still create the job: the floor under jobfn's doors.

A functions-framework function that parses the request's JSON body, creates the benchmark's
already-rendered Job through jobfn's own Kubernetes boundary (``KubeApi``: libcurl on a
kept-alive connection, one per serving thread) and answers 201 with the job's name. No
definitions, validation, templating, labels, idempotency, logs or metrics: what jobfn
costs beyond this is what those cost, and what it costs up to this no front end on
functions-framework and this client can avoid.

Reads ``FORWARDER_JOB_FILE`` (the direct client's Job, as JSON), ``JOB_NAMESPACE``,
``THREADS`` and the kubeconfig as jobfn does.
"""

from __future__ import annotations

import functools
import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import flask

if TYPE_CHECKING:
    from jobfn._kube import KubeApi

_JOB: dict[str, Any] = json.loads(Path(os.environ["FORWARDER_JOB_FILE"]).read_text())
_JOBS_PATH = f"/apis/batch/v1/namespaces/{os.environ['JOB_NAMESPACE']}/jobs"


@functools.cache
def _api() -> KubeApi:
    """Imported and built by the first request, in the serving worker, as jobfn's own is:
    functions-framework imports this file in gunicorn's arbiter, and what is imported there
    is counted in both processes. (A race of the first requests may build two; one is
    dropped.) A connection per serving thread."""
    from jobfn._kube import KubeApi

    return KubeApi.from_environment(pool_size=max(32, int(os.environ.get("THREADS", "1"))))


def forward(request: flask.Request) -> tuple[dict[str, str], int]:
    request.get_json(force=True)  # read and parsed, as any front end must
    job = {**_JOB, "metadata": {**_JOB["metadata"], "name": f"bench-forwarded-{uuid.uuid4().hex[:12]}"}}
    created = _api().request("POST", _JOBS_PATH, doing="create the job", body=job)
    return {"name": created["metadata"]["name"]}, 201
