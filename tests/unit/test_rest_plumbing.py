"""The shared HTTP plumbing: the one error shape, JSON bodies, the in-flight cap, routing, auth."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flask
import pytest
from openapi_spec_validator import validate
from werkzeug.exceptions import MethodNotAllowed as WerkzeugMethodNotAllowed
from werkzeug.exceptions import NotFound as WerkzeugNotFound
from werkzeug.routing import Rule

from jobfn import _errors as errors
from jobfn import _openapi as openapi
from jobfn import _rest as rest
from jobfn._auth import Caller, TokenAuthenticator, bearer_token
from jobfn._logs import JsonFormatter, request_id
from jobfn._routing import choose_door, is_aws_batch_path
from jobfn._web import InFlightLimit, error_response, parse_json

ROOT = Path(__file__).resolve().parents[2]
APP = flask.Flask(__name__)


def body_of(response: flask.Response) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(response.get_data())["error"]
    return error


@pytest.mark.parametrize(
    ("error", "status", "headers"),
    [
        (errors.InvalidArguments("bad", ["a: x", "b: y"]), 400, {}),
        (errors.Unauthenticated("who?"), 401, {"WWW-Authenticate": 'Bearer realm="jobfn"'}),
        (errors.MethodNotAllowed("no", ["GET", "POST"]), 405, {"Allow": "GET, POST"}),
        (errors.TooManyRequests("full", retry_after=7), 429, {"Retry-After": "7"}),
        (errors.Unavailable("down", retry_after=3), 503, {"Retry-After": "3"}),
        (errors.KubernetesError("odd"), 502, {}),
    ],
)
def test_each_error_class_gets_its_status_and_headers_in_one_shape(
    error: errors.JobfnError, status: int, headers: dict[str, str]
) -> None:
    response = error_response(error)
    assert response.status_code == status
    assert response.mimetype == "application/json"
    for name, value in headers.items():
        assert response.headers[name] == value
    body = body_of(response)
    assert set(body) == {"code", "message", "problems", "request_id"}
    assert body["code"] == error.code and body["message"] == error.message


def test_every_problem_is_listed() -> None:
    assert body_of(error_response(errors.InvalidArguments("bad", ["a", "b"])))["problems"] == ["a", "b"]


def test_an_unexpected_exception_is_a_500_without_internals() -> None:
    response = error_response(KeyError("secret internal detail"))
    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert "secret internal detail" not in text and "Traceback" not in text and "KeyError" not in text
    assert "request id" in body_of(response)["message"]


def test_flask_routing_errors_take_the_json_shape() -> None:
    with APP.test_request_context("/nowhere", method="PATCH"):
        assert body_of(error_response(WerkzeugNotFound()))["code"] == "NotFound"
        response = error_response(WerkzeugMethodNotAllowed(valid_methods=["GET"]))
    assert response.status_code == 405 and response.headers["Allow"] == "GET"


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b'{"a": ', "line 1 column"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"a": NaN}', "NaN"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_json_says_what_is_wrong(data: bytes, fragment: str) -> None:
    with pytest.raises(errors.InvalidRequest, match=fragment):
        parse_json(data)


def test_in_flight_limit_refuses_beyond_the_cap_and_frees_slots() -> None:
    limit = InFlightLimit(1)
    with limit.slot(), pytest.raises(errors.TooManyRequests), limit.slot():
        pass
    with limit.slot():
        pass  # the slot was given back
    with InFlightLimit(0).slot(), InFlightLimit(0).slot():
        pass  # 0 means no cap


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/submitjob", True),
        ("/v1/DescribeJobs", True),
        ("/v1/jobs", False),
        ("/jobs", False),
        ("/v2/submitjob", False),
        ("/v1/tags/arn:aws:batch:us-east-1:000000000000:job/hello-1", True),
        ("/v1/tags", False),
    ],
)
def test_aws_batch_paths_are_recognised(path: str, expected: bool) -> None:
    assert is_aws_batch_path(path) is expected


@pytest.mark.parametrize(
    ("path", "headers", "door"),
    [
        ("/", {"ce-specversion": "1.0"}, "events"),
        ("/jobs", {"Content-Type": "application/cloudevents+json"}, "events"),
        ("/v1/submitjob", {}, "aws_batch"),
        ("/jobs", {"Content-Type": "application/json"}, "rest"),
    ],
)
def test_one_place_chooses_the_front_door(path: str, headers: dict[str, str], door: str) -> None:
    with APP.test_request_context(path, method="POST", headers=headers):
        assert choose_door(flask.request)[0] == door


def test_the_route_table_matches_without_compiling_url_builders() -> None:
    # jobfn's rules skip werkzeug's URL builders by overriding the method that compiles
    # them; if werkzeug renamed it, the override would silently stop saving the time.
    assert "_compile_builder" in vars(Rule)
    adapter = rest.ROUTES.bind("")
    assert adapter.match("/jobs/echo-1/status", "GET") == ("job_status", {"name": "echo-1"})
    assert adapter.match("/jobs/", "POST") == ("submit_job", {})
    with pytest.raises(WerkzeugMethodNotAllowed):
        adapter.match("/jobs/echo-1/status", "DELETE")
    with pytest.raises(NotImplementedError, match="never built"):
        adapter.build("job_status", {"name": "echo-1"})


@dataclass(frozen=True)
class ReviewedToken:
    username: str
    groups: tuple[str, ...]


class Reviewer:
    """Stands in for the TokenReview API: knows one token, counts the reviews."""

    def __init__(self) -> None:
        self.reviews = 0

    def __call__(self, token: str) -> Any:
        self.reviews += 1
        return (
            ReviewedToken("system:serviceaccount:ns:sa", ("system:serviceaccounts:ns",))
            if token == "good"
            else None
        )


def test_a_good_token_is_reviewed_once_then_remembered_until_it_expires() -> None:
    reviewer, now = Reviewer(), [0.0]
    authenticator = TokenAuthenticator(reviewer, ttl_seconds=60, clock=lambda: now[0])
    caller = Caller("system:serviceaccount:ns:sa", frozenset({"system:serviceaccounts:ns"}))
    assert authenticator.caller("Bearer good") == caller
    assert authenticator.caller("bearer good") == caller
    assert reviewer.reviews == 1
    now[0] = 61
    authenticator.caller("Bearer good")
    assert reviewer.reviews == 2


def test_a_bad_token_is_never_remembered() -> None:
    reviewer = Reviewer()
    authenticator = TokenAuthenticator(reviewer)
    for _ in range(2):
        with pytest.raises(errors.Unauthenticated):
            authenticator.caller("Bearer bad")
    assert reviewer.reviews == 2


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "Bearer a b", "Token x"])
def test_missing_or_malformed_authorization_is_unauthenticated(header: str | None) -> None:
    with pytest.raises(errors.Unauthenticated):
        bearer_token(header)


@pytest.mark.parametrize("authentication", [False, True])
def test_the_openapi_document_is_valid(authentication: bool) -> None:
    validate(openapi.document(authentication))


def test_loading_the_target_does_not_import_the_kubernetes_client(tmp_path: Path) -> None:
    # As functions-framework does: main.py loaded from its file as a top-level module.
    script = textwrap.dedent(
        f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("main", {str(ROOT / "function" / "main.py")!r})
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert callable(module.handle)
        print(sorted(name for name in sys.modules if name.split(".")[0] == "kubernetes"))
        """
    )
    env = {"JOB_DEFINITIONS_CONFIG_PATH": str(tmp_path / "none.yaml"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_log_lines_are_json_with_the_request_id_extras_and_traceback() -> None:
    formatter = JsonFormatter()
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info(), extra={"job": "echo-1"}
        )
    token = request_id.set("req-1")
    try:
        line = json.loads(formatter.format(record))
    finally:
        request_id.reset(token)
    assert line["message"] == "failed x" and line["level"] == "ERROR"
    assert (line["request_id"], line["job"]) == ("req-1", "echo-1")
    assert "ValueError: boom" in line["exception"]
