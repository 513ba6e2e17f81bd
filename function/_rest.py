"""The REST API: jobs, definitions, probes, metrics and the OpenAPI document.

It also serves the routes and the ``POST /jobs`` body of k8s-jobs' example server
(``{"job_definition_name": ..., <arguments>}``, ``GET /jobs/<name>/status``,
``GET /jobs/<name>/logs``, ``GET /healthcheck``) so its callers can switch unchanged.
Every route is described in ``openapi.py``; a route added here is added there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import flask
from werkzeug.routing import Map, Rule

from . import _dashboard as dashboard_assets
from ._auth import Caller
from ._metrics import exposition
from ._paging import MAX_PAGE_SIZE
from ._rest_parsing import (
    idempotency_key_from_header,
    int_from_query,
    labels_from_query,
    retention_change,
    submission_from_body,
    termination_reason,
)
from ._service import Service
from ._web import ENDPOINT_KEY, json_response, read_json, text_response

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
DEFAULT_PAGE_SIZE = 100
MAX_TAIL_LINES = 100_000

#: Paths that must answer even when the function is saturated (probes and scrapes).
UNCAPPED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
#: Endpoints that answer without authentication: probes, metrics and the API description.
#: The dashboard's page and assets hold no data and no secret: the page asks the API for
#: everything it shows, with the person's token, so it needs what the API needs.
PUBLIC_ENDPOINTS = frozenset(
    {"healthcheck", "healthz", "readyz", "metrics", "openapi", "dashboard", "dashboard_asset"}
)


class _MatchedRule(Rule):
    """A route jobfn matches requests against and never builds a URL from.

    werkzeug compiles two URL builders for every rule as the table is made (5.4 of the
    table's 5.9 ms, on the first request's path); only ``url_for`` and ``MapAdapter.build``
    use them, and jobfn calls neither. Should werkzeug rename this method the builders are
    compiled again: slower, never wrong (``tests/unit/test_rest_plumbing.py`` says so).
    """

    def _compile_builder(self, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        return _unbuildable


def _unbuildable(*args: object, **kwargs: object) -> tuple[str, str]:
    raise NotImplementedError("jobfn's routes are matched, never built into URLs")


ROUTES = Map(
    [
        _MatchedRule("/jobs", methods=["POST"], endpoint="submit_job"),
        _MatchedRule("/jobs", methods=["GET"], endpoint="list_jobs"),
        _MatchedRule("/jobs/<name>", methods=["GET"], endpoint="describe_job"),
        _MatchedRule("/jobs/<name>/status", methods=["GET"], endpoint="job_status"),
        _MatchedRule("/jobs/<name>/logs", methods=["GET"], endpoint="job_logs"),
        _MatchedRule("/jobs/<name>/terminate", methods=["POST"], endpoint="terminate_job"),
        _MatchedRule("/jobs/<name>/retention", methods=["PUT"], endpoint="set_retention"),
        _MatchedRule("/jobs/<name>/events", methods=["GET"], endpoint="job_events"),
        _MatchedRule("/summary", methods=["GET"], endpoint="summary"),
        _MatchedRule("/definitions", methods=["GET"], endpoint="list_definitions"),
        _MatchedRule("/definitions/<name>", methods=["GET"], endpoint="describe_definition"),
        _MatchedRule("/healthcheck", methods=["GET"], endpoint="healthcheck"),
        _MatchedRule("/healthz", methods=["GET"], endpoint="healthz"),
        _MatchedRule("/readyz", methods=["GET"], endpoint="readyz"),
        _MatchedRule("/metrics", methods=["GET"], endpoint="metrics"),
        _MatchedRule("/openapi.json", methods=["GET"], endpoint="openapi"),
        _MatchedRule("/ui", methods=["GET"], endpoint="dashboard"),
        _MatchedRule("/ui/<asset>", methods=["GET"], endpoint="dashboard_asset"),
    ],
    strict_slashes=False,  # "/jobs/" is "/jobs", not a redirect
    merge_slashes=False,
)


@dataclass(frozen=True)
class Call:
    """One REST request, with who made it (None when authentication is off)."""

    request: flask.Request
    service: Service
    caller: Caller | None

    @property
    def max_body(self) -> int:
        return self.service.settings.max_body_bytes


Handler = Callable[..., flask.Response]


def handle(request: flask.Request, service: Service) -> flask.Response:
    """Answer a REST request (404 and 405 come from the route table as errors)."""
    # bind(), not bind_to_environ(): the path is all the table matches on, and the
    # host and scheme handling it skips was half a route match's cost.
    endpoint, values = ROUTES.bind("").match(request.path, request.method)
    request.environ[ENDPOINT_KEY] = endpoint
    caller = None if endpoint in PUBLIC_ENDPOINTS else service.caller(request)
    return _HANDLERS[endpoint](Call(request, service, caller), **values)


# --- jobs ----------------------------------------------------------------------------------
def submit_job(call: Call) -> flask.Response:
    body = read_json(call.request, call.max_body)
    key = idempotency_key_from_header(call.request.headers.get(IDEMPOTENCY_KEY_HEADER))
    submission, k8s_jobs_body = submission_from_body(body, key, call.caller)
    view = call.service.submit(submission, door="rest")
    answer = view.to_json()
    if k8s_jobs_body:
        answer["job_name"] = view.name  # what k8s-jobs' server answered
    if view.created_now:
        return json_response(answer, 201, {"Location": f"/jobs/{view.name}"})
    return json_response(answer, 200)


def list_jobs(call: Call) -> flask.Response:
    args = call.request.args
    page = call.service.manager().list_jobs(
        job_definition_name=args.get("definition") or args.get("job_definition_name") or None,
        state=args.get("state"),
        labels=labels_from_query(args.get("labels")),
        queue=args.get("queue") or None,
        name_prefix=args.get("name_prefix") or None,
        limit=int_from_query(args.get("limit"), "limit", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        or DEFAULT_PAGE_SIZE,
        next_token=args.get("next_token") or None,
    )
    return json_response({"jobs": [job.to_json() for job in page.jobs], "next_token": page.next_token})


def describe_job(call: Call, name: str) -> flask.Response:
    return json_response(call.service.manager().describe_job(name).to_json())


def job_status(call: Call, name: str) -> flask.Response:
    """k8s-jobs' status route: the state without pods."""
    view = call.service.manager().view_job(name)
    return json_response(
        {
            "job_name": view.name,
            "state": view.state,
            "reason": view.reason,
            "started": view.started,
            "stopped": view.stopped,
            "counts": {"active": view.active, "succeeded": view.succeeded, "failed": view.failed},
        }
    )


def job_logs(call: Call, name: str) -> flask.Response:
    """Logs as text: one container's log as it is, or each one under a ``Pod:`` header (as k8s-jobs)."""
    args = call.request.args
    logs = call.service.manager().job_logs(
        name,
        pod=args.get("pod") or None,
        container=args.get("container") or None,
        tail_lines=int_from_query(args.get("tail"), "tail", None, 0, MAX_TAIL_LINES),
    )
    headers = {"X-Logs-Truncated": "true"} if any(log.truncated for log in logs) else {}
    if args.get("pod") and args.get("container") and len(logs) == 1:
        return text_response(logs[0].text, headers=headers)
    text = "".join(f"Pod: {log.pod}\nContainer: {log.container}\n{log.text}\n=======\n" for log in logs)
    return text_response(text, headers=headers)


def terminate_job(call: Call, name: str) -> flask.Response:
    reason = termination_reason(read_json(call.request, call.max_body, optional=True))
    return json_response(call.service.manager().terminate_job(name, reason).to_json())


def set_retention(call: Call, name: str) -> flask.Response:
    change = retention_change(read_json(call.request, call.max_body))
    return json_response(call.service.manager().change_retention(name, change).to_json())


def job_events(call: Call, name: str) -> flask.Response:
    events = call.service.manager().job_events(name)
    return json_response({"events": [event.to_json() for event in events]})


def summary(call: Call) -> flask.Response:
    """Counts by state per definition and per queue: the dashboard's overview."""
    return json_response(call.service.manager().summarize_jobs().to_json())


# --- definitions ---------------------------------------------------------------------------
def list_definitions(call: Call) -> flask.Response:
    return json_response({"definitions": call.service.definitions().describe()})


def describe_definition(call: Call, name: str) -> flask.Response:
    return json_response(call.service.definitions().get(name).describe())


# --- operations ----------------------------------------------------------------------------
def healthcheck(call: Call) -> flask.Response:
    """k8s-jobs' health check: the process answers."""
    return json_response({"healthy": True})


def healthz(call: Call) -> flask.Response:
    """Liveness: the process answers; nothing is loaded or asked."""
    return json_response({"status": "ok"})


def readyz(call: Call) -> flask.Response:
    """Readiness: definitions are loaded and the Kubernetes API answers."""
    count = call.service.check_ready()  # Unavailable (503) unless ready
    body: dict[str, object] = {"status": "ready", "definitions": count}
    problem = call.service.definitions_problem()
    if problem:
        body["definitions_problem"] = problem  # serving the last good definitions meanwhile
    return json_response(body)


def metrics(call: Call) -> flask.Response:
    data, content_type = exposition()
    return flask.Response(data, content_type=content_type)


def openapi_document(call: Call) -> flask.Response:
    from . import _openapi as openapi  # on the first request for it: no other request needs it

    return json_response(openapi.document(authentication=call.service.settings.auth != "none"))


def dashboard(call: Call) -> flask.Response:
    if call.request.path.endswith("/"):
        # The page's links are relative to /ui (so it works under any path prefix): /ui/ would break them.
        return flask.Response(status=308, headers={"Location": "../ui"})
    return dashboard_assets.response("index.html")


def dashboard_asset(call: Call, asset: str) -> flask.Response:
    return dashboard_assets.response(asset)


_HANDLERS: dict[str, Handler] = {
    "submit_job": submit_job,
    "list_jobs": list_jobs,
    "describe_job": describe_job,
    "job_status": job_status,
    "job_logs": job_logs,
    "terminate_job": terminate_job,
    "set_retention": set_retention,
    "job_events": job_events,
    "summary": summary,
    "list_definitions": list_definitions,
    "describe_definition": describe_definition,
    "healthcheck": healthcheck,
    "healthz": healthz,
    "readyz": readyz,
    "metrics": metrics,
    "openapi": openapi_document,
    "dashboard": dashboard,
    "dashboard_asset": dashboard_asset,
}
