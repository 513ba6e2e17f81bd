"""The OpenAPI document of the REST API, served at ``/openapi.json``.

Every route of ``rest.py`` is described here, with each status code it can answer;
the end-to-end tests run schemathesis against this document, so a response that
breaks it, or a route missing from it, fails a test.
"""

from __future__ import annotations

import functools

from ._openapi_schemas import Schema, component_schemas, ref
from ._status import STATES

_REASONS = {
    400: "Malformed JSON, an invalid field or invalid arguments (every problem is listed)",
    401: "No valid bearer token (when authentication is on)",
    403: "The caller may not submit this definition",
    404: "No such job, definition or route",
    405: "The route does not take this method (see Allow)",
    409: "The idempotency key was used for a different request, or the job is being deleted",
    413: "The body is larger than the limit",
    415: "The body is not JSON",
    429: "A definition's cap on active jobs, or the function's in-flight cap, is reached (see Retry-After)",
    500: "An unexpected error; the message quotes a request id",
    502: "The Kubernetes API answered something unexpected",
    503: "The Kubernetes API cannot be reached, or definitions are not loaded (see Retry-After)",
}
_SERVER_ERRORS = (500, 502, 503)


def _json(schema: Schema, description: str, headers: Schema | None = None) -> Schema:
    response: Schema = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _retry_after() -> Schema:
    return {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "string"}}}


def _errors(*codes: int) -> dict[str, Schema]:
    answers = {}
    for code in (*codes, *_SERVER_ERRORS):
        headers = _retry_after() if code in (429, 503) else None
        if code == 405:
            headers = {"Allow": {"description": "Methods the route takes", "schema": {"type": "string"}}}
        answers[str(code)] = _json(ref("Error"), _REASONS[code], headers)
    return answers


def _query(name: str, description: str, schema: Schema) -> Schema:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


_JOB_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_DEFINITION_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}


def _operation(
    summary: str,
    responses: dict[str, Schema],
    *,
    parameters: list[Schema] | None = None,
    body: Schema | None = None,
    body_required: bool = True,
    public: bool = False,
) -> Schema:
    operation: Schema = {"summary": summary, "responses": responses}
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = {
            "required": body_required,
            "content": {"application/json": {"schema": body}},
        }
    if public:
        operation["security"] = []
    return operation


def _paths() -> dict[str, Schema]:
    job_answer = {"200": _json(ref("Job"), "The job")}
    return {
        "/jobs": {
            "post": _operation(
                "Submit a job (also takes k8s-jobs' body)",
                {
                    "201": _json(
                        ref("Job"),
                        "Created",
                        {"Location": {"description": "The job's URL", "schema": {"type": "string"}}},
                    ),
                    "200": _json(ref("Job"), "The job an earlier request with this Idempotency-Key created"),
                    **_errors(400, 401, 403, 404, 409, 413, 415, 429),
                },
                parameters=[
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "Retries with the same key get the same job, never a second one",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                    }
                ],
                body={"anyOf": [ref("Submission"), ref("K8sJobsSubmission")]},
            ),
            "get": _operation(
                "List jobs, newest pages first (a page may hold fewer jobs than the limit)",
                {"200": _json(ref("JobPage"), "A page of jobs"), **_errors(400, 401, 429)},
                parameters=[
                    _query("definition", "Only this definition's jobs", {"type": "string"}),
                    _query("job_definition_name", "k8s-jobs' name for definition", {"type": "string"}),
                    _query("state", "Only jobs in this state", {"type": "string", "enum": list(STATES)}),
                    _query("labels", "Label selector k=v,k2=v2", {"type": "string"}),
                    _query("queue", "Only jobs submitted to this queue", {"type": "string"}),
                    _query("name_prefix", "Only jobs whose name starts with this", {"type": "string"}),
                    _query("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    _query("next_token", "Token of the next page", {"type": "string"}),
                ],
            ),
        },
        "/jobs/{name}": {
            "get": _operation(
                "Describe a job, with its pods",
                {**job_answer, **_errors(401, 404, 429)},
                parameters=[_JOB_NAME],
            )
        },
        "/jobs/{name}/status": {
            "get": _operation(
                "A job's state (k8s-jobs route)",
                {"200": _json(ref("JobStatus"), "The state"), **_errors(401, 404, 429)},
                parameters=[_JOB_NAME],
            )
        },
        "/jobs/{name}/logs": {
            "get": _operation(
                "A job's logs as text: one container's, or each under 'Pod:' and 'Container:' lines",
                {
                    "200": {"description": "Logs", "content": {"text/plain": {"schema": {"type": "string"}}}},
                    **_errors(400, 401, 404, 429),
                },
                parameters=[
                    _JOB_NAME,
                    _query("pod", "Only this pod", {"type": "string"}),
                    _query("container", "Only this container", {"type": "string"}),
                    _query(
                        "tail", "Only the last N lines", {"type": "integer", "minimum": 0, "maximum": 100000}
                    ),
                ],
            )
        },
        "/jobs/{name}/terminate": {
            "post": _operation(
                "Stop a job, recording a reason (a finished job is returned unchanged)",
                {**job_answer, **_errors(400, 401, 404, 409, 413, 415, 429)},
                parameters=[_JOB_NAME],
                body=ref("Termination"),
                body_required=False,
            )
        },
        "/jobs/{name}/retention": {
            "put": _operation(
                "Hold a job, or set or extend the time after which it may be deleted",
                {**job_answer, **_errors(400, 401, 404, 409, 413, 415, 429)},
                parameters=[_JOB_NAME],
                body=ref("Retention"),
            )
        },
        "/jobs/{name}/events": {
            "get": _operation(
                "The Kubernetes Events about a job and its pods, oldest first",
                {"200": _json(ref("Events"), "The events"), **_errors(401, 404, 429)},
                parameters=[_JOB_NAME],
            )
        },
        "/summary": {
            "get": _operation(
                "How many jobs are in each state, per definition and per queue",
                {"200": _json(ref("Summary"), "The counts"), **_errors(401, 429)},
            )
        },
        "/definitions": {
            "get": _operation(
                "List job definitions with their parameter schemas",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["definitions"],
                            "properties": {"definitions": {"type": "array", "items": ref("Definition")}},
                        },
                        "The definitions",
                    ),
                    **_errors(401, 429),
                },
            )
        },
        "/definitions/{name}": {
            "get": _operation(
                "Describe a job definition",
                {"200": _json(ref("Definition"), "The definition"), **_errors(401, 404, 429)},
                parameters=[_DEFINITION_NAME],
            )
        },
        "/healthcheck": {"get": _probe("k8s-jobs' health check", {"healthy": {"type": "boolean"}})},
        "/healthz": {"get": _probe("Liveness: the process answers", {"status": {"type": "string"}})},
        "/readyz": {
            "get": _probe(
                "Readiness: definitions are loaded and the Kubernetes API answers",
                {"status": {"type": "string"}, "definitions": {"type": "integer"}},
            )
        },
        "/metrics": {
            "get": _operation(
                "Prometheus metrics",
                {
                    "200": {
                        "description": "Metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
                public=True,
            )
        },
        "/ui": {
            "get": _operation(
                "The dashboard (a page of this API: it asks the API for all it shows)",
                {
                    "200": {
                        "description": "The page",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                    **_errors(429),
                },
                public=True,
            )
        },
        "/ui/{asset}": {
            "get": _operation(
                "The dashboard's script and style",
                {
                    "200": {
                        "description": "The asset",
                        "content": {
                            "text/javascript": {"schema": {"type": "string"}},
                            "text/css": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(404, 429),
                },
                parameters=[{"name": "asset", "in": "path", "required": True, "schema": {"type": "string"}}],
                public=True,
            )
        },
        "/openapi.json": {
            "get": _operation(
                "This document", {"200": _json({"type": "object"}, "The OpenAPI document")}, public=True
            )
        },
    }


def _probe(summary: str, properties: Schema) -> Schema:
    schema = {"type": "object", "required": list(properties), "properties": properties}
    return _operation(summary, {"200": _json(schema, "OK"), **_errors(429)}, public=True)


@functools.cache
def document(authentication: bool = False) -> Schema:
    """The OpenAPI 3.0 document; with ``authentication``, operations need a bearer token."""
    doc: Schema = {
        "openapi": "3.0.3",
        "info": {
            "title": "jobfn",
            "version": "1",
            "description": "Submit and follow Kubernetes Jobs rendered from named job definitions.",
        },
        "paths": _paths(),
        "components": {"schemas": component_schemas()},
    }
    if authentication:
        doc["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer", "description": "A Kubernetes ServiceAccount token"}
        }
        doc["security"] = [{"bearer": []}]
    return doc
