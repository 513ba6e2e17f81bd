"""CloudEvents intake without a server: recognising events, keys, data and the reply."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent, from_http
from werkzeug.datastructures import Headers

from jobfn._errors import InvalidArguments, InvalidRequest, UnsupportedMediaType
from jobfn._events import (
    SUBMITTED_EVENT_TYPE,
    arguments_of,
    idempotency_key,
    parse_event,
    reply,
)
from jobfn._submission import MAX_IDEMPOTENCY_KEY_LENGTH, JobView
from jobfn._web import is_cloudevent


def an_event(data: Any = None, **attributes: str) -> CloudEvent:
    return CloudEvent({"type": "t", "source": "/s", "id": "1", **attributes}, data)


def test_pairs_that_concatenate_alike_get_different_keys() -> None:
    assert idempotency_key("a", "bc") != idempotency_key("ab", "c")
    assert idempotency_key("a/", "b") != idempotency_key("a", "/b")
    assert idempotency_key('a","', "b") != idempotency_key("a", '","b')


def test_the_same_event_always_gets_the_same_key() -> None:
    assert idempotency_key("/source", "42") == idempotency_key("/source", "42") == '["/source","42"]'


def test_a_pair_too_long_for_a_key_is_hashed_and_stays_apart() -> None:
    long_source = "s" * 300
    first, second = idempotency_key(long_source, "1"), idempotency_key(long_source, "2")
    assert first != second
    assert first.startswith("sha256:") and len(first) <= MAX_IDEMPOTENCY_KEY_LENGTH


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"ce-specversion": "1.0"}, True),
        ({"Ce-Specversion": "1.0"}, True),
        ({"Content-Type": "application/cloudevents+json; charset=utf-8"}, True),
        ({"Content-Type": "application/cloudevents-batch+json"}, True),
        ({"Content-Type": "application/json"}, False),
        ({}, False),
    ],
)
def test_a_cloudevent_is_recognised_by_its_headers(headers: dict[str, str], expected: bool) -> None:
    assert is_cloudevent(Headers(headers)) is expected


@pytest.mark.parametrize("encode", [to_binary, to_structured])
def test_binary_and_structured_events_parse_alike(encode: Any) -> None:
    headers, body = encode(an_event({"message": "hi"}))
    event = parse_event(Headers(headers), body)
    assert (event["type"], event["source"], event["id"]) == ("t", "/s", "1")
    assert arguments_of(event) == {"message": "hi"}


def test_an_event_without_an_id_is_invalid() -> None:
    headers = {"ce-specversion": "1.0", "ce-type": "t", "ce-source": "/s", "Content-Type": "application/json"}
    with pytest.raises(InvalidRequest, match="not a valid CloudEvent"):
        parse_event(Headers(headers), b"{}")


def test_a_structured_event_that_is_not_json_is_invalid() -> None:
    with pytest.raises(InvalidRequest):
        parse_event(Headers({"Content-Type": "application/cloudevents+json"}), b"{not json")


def test_batched_events_are_refused() -> None:
    with pytest.raises(UnsupportedMediaType):
        parse_event(Headers({"Content-Type": "application/cloudevents-batch+json"}), b"[]")


def test_an_event_without_data_has_no_arguments() -> None:
    headers, body = to_binary(an_event(None))
    assert arguments_of(parse_event(Headers(headers), body)) == {}


@pytest.mark.parametrize("data", [[1, 2], "text", 3])
def test_event_data_must_be_a_json_object(data: Any) -> None:
    headers, body = to_binary(an_event(data))
    with pytest.raises(InvalidArguments):
        arguments_of(parse_event(Headers(headers), body))


def test_event_data_in_another_media_type_is_refused() -> None:
    headers = {
        "ce-specversion": "1.0",
        "ce-type": "t",
        "ce-source": "/s",
        "ce-id": "1",
        "Content-Type": "text/plain",
    }
    with pytest.raises(UnsupportedMediaType):
        arguments_of(parse_event(Headers(headers), b"hello"))


def test_malformed_event_data_says_where() -> None:
    headers = {"ce-specversion": "1.0", "ce-type": "t", "ce-source": "/s", "ce-id": "1"}
    with pytest.raises(InvalidRequest, match="line 1 column"):
        arguments_of(parse_event(Headers({**headers, "Content-Type": "application/json"}), b'{"a": '))


def a_view(created_now: bool) -> JobView:
    return JobView(
        name="echo-1", uid="uid-1", definition="echo", state="SUBMITTED", reason="", created=1_700_000_000,
        started=None, stopped=None, arguments={"message": "hi"}, deletion_time=None, array_size=None,
        labels={}, annotations={}, created_now=created_now,
    )  # fmt: skip


@pytest.mark.parametrize(("created_now", "status"), [(True, 201), (False, 200)])
def test_the_reply_is_a_binary_event_naming_the_job(created_now: bool, status: int) -> None:
    response = reply(a_view(created_now), "/jobfn/namespaces/jobs")
    assert response.status_code == status
    event = from_http(dict(response.headers), response.get_data())
    assert (event["type"], event["source"], event["subject"], event["id"]) == (
        SUBMITTED_EVENT_TYPE,
        "/jobfn/namespaces/jobs",
        "echo-1",
        "uid-1",
    )
    assert event["time"] == "2023-11-14T22:13:20Z"
    assert json.loads(response.get_data())["name"] == "echo-1"
