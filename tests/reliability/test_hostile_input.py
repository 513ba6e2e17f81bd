"""Hostile requests are refused early, each with a 4xx a person can act on, in the door's own shape.

Every front door — REST, CloudEvents in binary and structured mode, the AWS Batch API —
gets the same abuse: bodies beyond the limit (declared or chunked), JSON nested 100,000
deep, bytes that are not UTF-8 in the body and in headers, duplicated headers, huge
headers and wrong content types. An answer must be 4xx, name what is wrong, come in
the door's error shape (REST: ``{"error": {..., "request_id"}}``; AWS: ``__type`` and
``x-amzn-ErrorType``) and never show a stack trace.

Which layer answers: gunicorn (under functions-framework) refuses what breaks HTTP
itself before jobfn sees it — a header over 8190 bytes or more than 100 headers (431),
a second Content-Type (400) — in its own small HTML page; everything else reaches jobfn.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from tests.helpers import FunctionServer
from tests.reliability.rawhttp import Answer, Header, chunked, request_bytes, send_once, serve_e2e_function

BODY_LIMIT = 256 * 1024  # room for 100,000 levels of nesting (200,000 bytes), so depth is what is refused
DEPTH = 100_000
EVENT_TYPE = "dev.jobfn.test.echo"
DOORS = ("rest", "binary", "structured", "aws")


@pytest.fixture(scope="module")
def server(api_client: k8s.ApiClient, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionServer]:
    yield from serve_e2e_function(
        api_client, tmp_path_factory, "hostile-input", {"JOBFN_MAX_BODY_BYTES": str(BODY_LIMIT)}
    )


@pytest.fixture(autouse=True)
def no_stack_trace_is_logged(server: FunctionServer) -> Iterator[None]:
    """Nothing a test sends makes the function log a traceback (an unexpected error)."""
    before = len(server.log())
    yield
    assert "Traceback" not in server.log()[before:]


def door_request(door: str, data: bytes, extra: tuple[Header, ...] = (), **options: Any) -> bytes:
    """A submission through ``door`` whose JSON payload (the arguments, or the whole body) is ``data``."""
    if door == "rest":
        headers: tuple[Header, ...] = (("Content-Type", "application/json"),)
        return request_bytes("POST", "/jobs", headers + extra, data, **options)
    if door == "binary":
        headers = (
            ("ce-specversion", "1.0"), ("ce-id", "hostile-1"), ("ce-source", "/hostile"),
            ("ce-type", EVENT_TYPE), ("Content-Type", "application/json"),
        )  # fmt: skip
        return request_bytes("POST", "/", headers + extra, data, **options)
    if door == "structured":
        headers = (("Content-Type", "application/cloudevents+json"),)
        return request_bytes("POST", "/", headers + extra, data, **options)
    headers = (("Content-Type", "application/json"),)
    return request_bytes("POST", "/v1/submitjob", headers + extra, data, **options)


def assert_refused(server: FunctionServer, answer: Answer, door: str, status: int, says: str) -> None:
    """``answer`` is jobfn's ``status`` in ``door``'s error shape, saying ``says``, with no stack trace."""
    assert answer.status == status, (answer.status, answer.text[:500])
    assert answer.from_function, answer.text[:500]
    body = answer.json()
    if door == "aws":
        assert answer.headers["x-amzn-errortype"] == body["__type"], body
        message = body["message"]
    else:
        error = body["error"]
        assert error["request_id"] == answer.headers["x-request-id"]
        assert error["problems"], error
        message = error["message"]
    assert says in message, message
    assert "Traceback" not in answer.text and 'File "' not in answer.text


def assert_refused_by_gunicorn(answer: Answer, status: int, says: str) -> None:
    assert answer.status == status, (answer.status, answer.text[:500])
    assert not answer.from_function
    assert says in answer.text, answer.text
    assert "Traceback" not in answer.text


# --- bodies ----------------------------------------------------------------------------------
@pytest.mark.parametrize("door", DOORS)
def test_declared_oversized_body_is_413_before_it_is_sent(server: FunctionServer, door: str) -> None:
    # Only the headers and a first byte are sent: an answer at all proves the body was not awaited.
    declared = BODY_LIMIT * 100
    data = door_request(door, b"", (("Content-Length", str(declared)),), content_length=False) + b"{"
    started = time.monotonic()
    answer = send_once(server.url, data, timeout=20)
    assert time.monotonic() - started < 10
    assert_refused(
        server, answer, door, 413, f"the request body has {declared} bytes; the limit is {BODY_LIMIT}"
    )
    # Were the rest of the body sent on this (kept-alive) connection, gunicorn would read and
    # discard it before the next request, 8 KiB at a time: never held in memory.


@pytest.mark.parametrize("door", DOORS)
def test_chunked_oversized_body_is_413(server: FunctionServer, door: str) -> None:
    body = chunked(b'{"message": "' + b"x" * (2 * BODY_LIMIT) + b'"}')
    data = door_request(door, body, (("Transfer-Encoding", "chunked"),), content_length=False)
    answer = send_once(server.url, data)
    assert_refused(server, answer, door, 413, f"larger than the limit of {BODY_LIMIT} bytes")


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("door", DOORS)
def test_json_nested_100000_deep_is_400(server: FunctionServer, door: str) -> None:
    body = {
        "rest": nested(DEPTH),
        "binary": nested(DEPTH),
        "structured": b'{"specversion": "1.0", "id": "d", "source": "/s", "type": "%s", "data": %s}'
        % (EVENT_TYPE.encode(), nested(DEPTH)),
        "aws": b'{"jobName": "n", "jobQueue": "q", "jobDefinition": "echo", "parameters": %s}'
        % nested(DEPTH),
    }[door]
    answer = send_once(server.url, door_request(door, body))
    assert_refused(server, answer, door, 400, "nested too deeply")


@pytest.mark.parametrize("door", DOORS)
def test_body_that_is_not_utf8_is_400(server: FunctionServer, door: str) -> None:
    answer = send_once(server.url, door_request(door, b'{"message": "caf\xe9 \xff\xfe"}'))
    assert_refused(server, answer, door, 400, "the body is not UTF-8: byte 16 cannot be decoded")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            b'{"definition": "echo", "definition": "forever", "arguments": {"message": "x"}}',
            "'definition' appears twice",
        ),
        (b'{"definition": "echo", "arguments": {"message": "\\ud800"}}', "lone UTF-16 surrogate"),
        (b'{"definition": "echo", "arguments": {"\\udfff": 1}}', "lone UTF-16 surrogate"),
        (
            b'{"definition": "echo", "arguments": {"message": "x", "count": 1e999}}',
            "the number 1e999 is too large",
        ),
        (b'{"definition": "echo", "arguments": {"message": NaN}}', "NaN is not a JSON value"),
    ],
    ids=["duplicate-name", "lone-surrogate-value", "lone-surrogate-name", "infinite-number", "nan"],
)
def test_json_that_cannot_be_taken_as_data_is_400(server: FunctionServer, body: bytes, says: str) -> None:
    # json.loads takes all of these; each would be a guess (which name counts?) or a 500 later
    # (a surrogate cannot be encoded in the answer or the Job; infinity is not JSON).
    answer = send_once(
        server.url, request_bytes("POST", "/jobs", (("Content-Type", "application/json"),), body)
    )
    assert_refused(server, answer, "rest", 400, says)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            b'{"specversion": "1.0", "id": "1", "id": "2", "source": "/s", "type": "%s"}'
            % EVENT_TYPE.encode(),
            "'id' appears twice",
        ),
        (
            b'{"specversion": "1.0", "id": "1", "source": "/s", "type": "%s", "datacontenttype": 5}'
            % EVENT_TYPE.encode(),
            "'datacontenttype' must be a string",
        ),
        (b'["not", "an", "object"]', "a structured-mode event is a JSON object"),
    ],
    ids=["duplicate-attribute", "datacontenttype-not-a-string", "not-an-object"],
)
def test_malformed_structured_event_is_400(server: FunctionServer, body: bytes, says: str) -> None:
    answer = send_once(server.url, door_request("structured", body))
    assert_refused(server, answer, "structured", 400, says)


# --- headers ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("door", "header"),
    [
        ("rest", "Idempotency-Key"),
        ("binary", "ce-id"),
        ("binary", "ce-source"),
        ("rest", "Content-Type"),
        ("aws", "Authorization"),
    ],
)
def test_header_that_is_not_utf8_is_400(server: FunctionServer, door: str, header: str) -> None:
    data = door_request(door, b"{}", ((header, b"caf\xe9-\xff"),))
    if header.lower() in ("ce-id", "content-type"):  # replace the door's own value instead of repeating it
        data = data.replace(
            f"\r\n{header}: ".encode()
            + (b"hostile-1" if header == "ce-id" else b"application/json")
            + b"\r\n",
            b"\r\n",
        )
    answer = send_once(server.url, data)
    assert_refused(server, answer, door, 400, f"the {header.title()} header is not valid UTF-8")


def test_header_of_64_kib_is_431_from_gunicorn(server: FunctionServer) -> None:
    answer = send_once(server.url, door_request("rest", b"{}", (("X-Padding", "a" * 65536),)))
    assert_refused_by_gunicorn(answer, 431, "limit request headers fields size")


def test_a_thousand_headers_are_431_from_gunicorn(server: FunctionServer) -> None:
    headers = tuple((f"X-Header-{i}", "v") for i in range(1000))
    answer = send_once(server.url, door_request("binary", b"{}", headers))
    assert_refused_by_gunicorn(answer, 431, "limit request headers fields")


def test_second_content_type_is_400_from_gunicorn(server: FunctionServer) -> None:
    answer = send_once(server.url, door_request("rest", b"{}", (("Content-Type", "text/plain"),)))
    assert_refused_by_gunicorn(answer, 400, "Invalid HTTP Header: &#x27;CONTENT-TYPE&#x27;")


@pytest.mark.parametrize("header", ["ce-id", "ce-type", "ce-specversion"])
def test_cloudevent_attribute_header_sent_twice_is_400(server: FunctionServer, header: str) -> None:
    # gunicorn joins a repeated header into one value with a comma; jobfn refuses the comma.
    value = {"ce-id": "hostile-2", "ce-type": EVENT_TYPE, "ce-specversion": "1.0"}[header]
    answer = send_once(server.url, door_request("binary", b'{"message": "x"}', ((header, value),)))
    assert_refused(
        server, answer, "binary", 400, f"the {header} header holds a comma, as when it is sent twice"
    )


def test_idempotency_key_sent_twice_is_400(server: FunctionServer) -> None:
    body = b'{"definition": "echo", "arguments": {"message": "x"}}'
    headers = (("Idempotency-Key", "first"), ("Idempotency-Key", "second"))
    answer = send_once(server.url, door_request("rest", body, headers))
    assert_refused(server, answer, "rest", 400, "the Idempotency-Key header holds a comma")


# --- content types ---------------------------------------------------------------------------
REST_SUBMISSION = b'{"definition": "echo", "arguments": {"message": "x"}}'
AWS_SUBMISSION = b'{"jobName": "n", "jobQueue": "q", "jobDefinition": "echo", "parameters": {"message": "x"}}'


def with_content_type(data: bytes, content_type: str | None) -> bytes:
    header = b"\r\nContent-Type: application/json\r\n"
    return data.replace(
        header, b"\r\n" if content_type is None else f"\r\nContent-Type: {content_type}\r\n".encode()
    )


@pytest.mark.parametrize(
    ("content_type", "says"),
    [
        ("text/plain", "send the body as application/json, not text/plain"),
        ("multipart/form-data; boundary=x", "send the body as application/json, not multipart/form-data"),
        (None, "the body has no Content-Type: send it as application/json"),
    ],
)
def test_rest_body_in_another_content_type_is_415(
    server: FunctionServer, content_type: str | None, says: str
) -> None:
    answer = send_once(server.url, with_content_type(door_request("rest", REST_SUBMISSION), content_type))
    assert_refused(server, answer, "rest", 415, says)


@pytest.mark.parametrize(
    ("content_type", "says"),
    [
        ("text/plain", "send the body as application/json, not text/plain"),
        ("multipart/form-data; boundary=x", "send the body as application/json, not multipart/form-data"),
    ],
)
def test_aws_body_in_another_content_type_is_415(
    server: FunctionServer, content_type: str, says: str
) -> None:
    answer = send_once(server.url, with_content_type(door_request("aws", AWS_SUBMISSION), content_type))
    assert_refused(server, answer, "aws", 415, says)


def test_aws_body_without_content_type_is_read_as_json(server: FunctionServer) -> None:
    # Accepted on purpose: botocore sent REST-JSON bodies without a Content-Type before it
    # began to add one, and AWS takes them. The answer shows the body was parsed as JSON.
    answer = send_once(server.url, with_content_type(door_request("aws", b'{"jobName": '), None))
    assert_refused(server, answer, "aws", 400, "the body is not valid JSON")


@pytest.mark.parametrize(
    ("content_type", "says"),
    [
        ("text/plain", "the event's data must be JSON, not text/plain"),
        ("multipart/form-data; boundary=x", "the event's data must be JSON, not multipart/form-data"),
    ],
)
def test_binary_event_data_in_another_content_type_is_415(
    server: FunctionServer, content_type: str, says: str
) -> None:
    answer = send_once(
        server.url, with_content_type(door_request("binary", b'{"message": "x"}'), content_type)
    )
    assert_refused(server, answer, "binary", 415, says)


def test_binary_event_data_without_content_type_is_read_as_json(server: FunctionServer) -> None:
    # Accepted on purpose: the CloudEvents SDKs' binary encoders send JSON data without a
    # Content-Type when the event has no datacontenttype.
    answer = send_once(server.url, with_content_type(door_request("binary", b'{"message": '), None))
    assert_refused(server, answer, "binary", 400, "the body is not valid JSON")


@pytest.mark.parametrize("content_type", ["application/cloudevents+xml", "application/cloudevents"])
def test_structured_event_in_another_format_is_415(server: FunctionServer, content_type: str) -> None:
    event = {"specversion": "1.0", "id": "f", "source": "/s", "type": EVENT_TYPE, "data": {"message": "x"}}
    data = door_request("structured", json.dumps(event).encode())
    data = data.replace(b"application/cloudevents+json", content_type.encode())
    answer = send_once(server.url, data)
    assert_refused(server, answer, "structured", 415, "accepted as application/cloudevents+json")
