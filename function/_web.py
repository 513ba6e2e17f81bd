"""HTTP plumbing every front door shares: the JSON error shape, body limits, the in-flight cap.

Every error — jobfn's own, Flask's routing errors, an unexpected crash — reaches the
caller in one shape, with the status from ``errors.http_status``::

    {"error": {"code": "InvalidArguments", "message": "...", "problems": ["..."],
               "request_id": "..."}}

An unexpected exception is logged with its traceback and answered with a generic
message and the request id, never with internals.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import flask
from werkzeug.datastructures import Headers
from werkzeug.exceptions import HTTPException

from ._errors import (
    InvalidRequest,
    JobfnError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RequestError,
    TooManyRequests,
    Unauthenticated,
    Unavailable,
    UnsupportedMediaType,
    http_status,
)
from ._logs import request_id
from ._metrics import API_ERRORS

#: CloudEvents' structured and batched modes (their media types start so).
STRUCTURED_MEDIA_TYPE_PREFIX = "application/cloudevents"

logger = logging.getLogger(__name__)

JSON_TYPE = "application/json"
REQUEST_ID_HEADER = "X-Request-Id"
ENDPOINT_KEY = "jobfn.endpoint"  # WSGI environ: the endpoint that served the request (metrics, logs)
_BODY_READ = "jobfn.body_read"  # WSGI environ flag: the whole request body was read
_INCOMING_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_READ_CHUNK = 64 * 1024


def begin_request(incoming_id: str | None) -> str:
    """Choose the request's id (the caller's ``X-Request-Id`` when it is sane) and log with it."""
    rid = incoming_id if incoming_id and _INCOMING_REQUEST_ID.match(incoming_id) else uuid.uuid4().hex
    request_id.set(rid)
    return rid


def dumps(body: Any) -> str:
    """JSON text of a response body (strict: NaN and Infinity are not JSON)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> flask.Response:
    return flask.Response(dumps(body), status=status, headers=dict(headers or {}), mimetype=JSON_TYPE)


def text_response(text: str, status: int = 200, headers: Mapping[str, str] | None = None) -> flask.Response:
    return flask.Response(text, status=status, headers=dict(headers or {}), mimetype="text/plain")


# --- errors ---------------------------------------------------------------------------------
def from_http_exception(error: HTTPException) -> JobfnError:
    """Flask's and Werkzeug's own errors (unknown route, wrong method, ...) as jobfn errors."""
    request = flask.request if flask.has_request_context() else None
    where = f"{request.method} {request.path[:200]}" if request is not None else "this request"
    code = error.code or 500
    if code == 404:
        return NotFound(f"no such route: {where}; the API is described at /openapi.json")
    if code == 405:
        allowed = sorted(getattr(error, "valid_methods", None) or [])
        return MethodNotAllowed(
            f"{where} is not allowed; use {', '.join(allowed) or 'another route'}", allowed
        )
    if code == 413:
        return PayloadTooLarge("the request body is too large")
    if code == 415:
        return UnsupportedMediaType(error.description or "unsupported content type")
    converted: JobfnError = (
        RequestError(error.description or error.name) if code < 500 else JobfnError(error.name)
    )
    converted.status = code
    return converted


def error_response(error: BaseException) -> flask.Response:
    """The one JSON answer to ``error``; unexpected errors are logged with their traceback."""
    if isinstance(error, HTTPException):
        error = from_http_exception(error)
    if not isinstance(error, JobfnError):
        logger.error("unexpected error while serving a request", exc_info=error)
        error = JobfnError(
            f"an unexpected error occurred; quote request id {request_id.get()} when reporting it"
        )
    elif error.status >= 500:
        level = logging.WARNING if isinstance(error, Unavailable) else logging.ERROR
        logger.log(level, "answering %s: %s", error.code, error.message)
    status = http_status(error)
    headers: dict[str, str] = {}
    if isinstance(error, TooManyRequests | Unavailable):
        headers["Retry-After"] = str(max(1, error.retry_after))
    if isinstance(error, MethodNotAllowed) and error.allowed:
        headers["Allow"] = ", ".join(error.allowed)
    if isinstance(error, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="jobfn"'
    problems = getattr(error, "problems", None) or [error.message]
    body = {
        "error": {
            "code": error.code,
            "message": error.message,
            "problems": [str(problem) for problem in problems],
            "request_id": request_id.get(),
        }
    }
    API_ERRORS.labels(str(status), error.code).inc()
    return json_response(body, status, headers)


# --- request headers ------------------------------------------------------------------------
#: Headers whose values jobfn reads as text (besides ``ce-*``), so they must be UTF-8.
TEXT_HEADERS = ("Authorization", "Idempotency-Key", "Content-Type")


def check_header_encoding(headers: Mapping[str, str] | Headers) -> None:
    """InvalidRequest when a header jobfn reads as text is not UTF-8.

    WSGI hands header values over as latin-1 text, so any byte sequence arrives; an
    idempotency key or event id that is not UTF-8 would be stored as something other
    than what the caller sent.
    """
    for name, value in headers.items():
        if value.isascii():
            continue
        if name.lower().startswith("ce-") or name.title() in TEXT_HEADERS:
            try:
                value.encode("latin-1").decode("utf-8")
            except UnicodeError:
                raise InvalidRequest(f"the {name[:80]} header is not valid UTF-8") from None


# --- request bodies -------------------------------------------------------------------------
def read_body(request: flask.Request, limit: int) -> bytes:
    """The request body, refusing one larger than ``limit`` bytes without reading it all."""
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"the request body has {length} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = request.stream.read(min(_READ_CHUNK, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes")
    request.environ[_BODY_READ] = True
    return b"".join(chunks)


def media_type_of(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_cloudevent(headers: Mapping[str, str] | Headers) -> bool:
    """Whether a request carries a CloudEvent: a ``ce-specversion`` header or a CloudEvents media type."""
    if headers.get("ce-specversion") is not None:
        return True
    return media_type_of(headers.get("Content-Type")).startswith(STRUCTURED_MEDIA_TYPE_PREFIX)


def is_json_media_type(media_type: str) -> bool:
    media_type = media_type.lower()
    return media_type == JSON_TYPE or (media_type.startswith("application/") and media_type.endswith("+json"))


def parse_json(data: bytes) -> Any:
    """A JSON document from bytes; InvalidRequest saying where it is broken.

    Beyond the grammar, what JSON leaves open is refused rather than guessed: a name
    given twice in one object (which one would count?), a number too large for a
    float (1e999 would become infinity), and an escaped lone surrogate (``"\\ud800"``,
    which no UTF-8 text, and so no Kubernetes object, can hold).
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidRequest(f"the body is not UTF-8: byte {error.start} cannot be decoded") from None
    try:
        document = json.loads(
            text, parse_constant=_refuse_constant, parse_float=_finite_float, object_pairs_hook=_unique_names
        )
    except json.JSONDecodeError as error:
        raise InvalidRequest(
            f"the body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except ValueError as error:
        raise InvalidRequest(f"the body is not valid JSON: {error}") from None
    except RecursionError:
        raise InvalidRequest("the body is not valid JSON: it is nested too deeply") from None
    if _SURROGATE_ESCAPE.search(text) and _has_surrogate(document):
        raise InvalidRequest(
            "the body is not valid JSON: it escapes a lone UTF-16 surrogate (\\ud800-\\udfff)"
        )
    return document


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise ValueError(f"the number {literal[:40]} is too large")
    return value


def _unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        names = [name for name, _ in pairs]
        twice = next(name for name in names if names.count(name) > 1)
        raise ValueError(f"the name {twice[:80]!r} appears twice in one object")
    return document


def _has_surrogate(value: Any) -> bool:
    """Whether a parsed document holds a string (or a name) that is not encodable as UTF-8."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and any("\ud800" <= char <= "\udfff" for char in item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def read_json(request: flask.Request, limit: int, *, optional: bool = False) -> Any:
    """The JSON body of ``request`` (None when ``optional`` and empty): 413, 415 or 400 if not."""
    data = read_body(request, limit)
    if not data.strip():
        if optional:
            return None
        raise InvalidRequest("this request needs a JSON body")
    require_json_media_type(request.mimetype)
    return parse_json(data)


def require_json_media_type(media_type: str) -> None:
    """UnsupportedMediaType unless ``media_type`` (of a non-empty body) is JSON; a missing one too."""
    if not media_type:
        raise UnsupportedMediaType(f"the body has no Content-Type: send it as {JSON_TYPE}")
    if not is_json_media_type(media_type):
        raise UnsupportedMediaType(f"send the body as {JSON_TYPE}, not {media_type[:80]}")


def release_unread_body(request: flask.Request, response: flask.Response) -> None:
    """Keep a body the answer did not need from being read into memory after all.

    functions-framework reads any unread body after each non-streamed response; for a
    request refused for its size (or refused before its body mattered) that would load
    the very body jobfn refused. A streamed response is left alone by that hook.
    """
    if request.environ.get(_BODY_READ):
        return
    has_body = (request.content_length or 0) > 0 or "chunked" in request.headers.get(
        "Transfer-Encoding", ""
    ).lower()
    if has_body and not response.is_streamed:
        response.response = iter([response.get_data()])


# --- load shedding --------------------------------------------------------------------------
class InFlightLimit:
    """Answers 429 at once when ``limit`` requests are already being served (0: no limit)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._count = 0
        self._lock = threading.Lock()

    @contextmanager
    def slot(self) -> Iterator[None]:
        if self.limit <= 0:
            yield
            return
        with self._lock:
            if self._count >= self.limit:
                raise TooManyRequests(
                    f"the function is already serving {self.limit} requests; retry shortly", retry_after=1
                )
            self._count += 1
        try:
            yield
        finally:
            with self._lock:
                self._count -= 1
