"""CloudEvents intake: exactly one job per event, however often a broker delivers it.

An event (binary or structured mode, parsed by the cloudevents SDK) is a submission:
its type selects the definition that declares it in ``event_types``, its data are the
arguments, and its (source, id) pair is the idempotency key, so a redelivery returns
the job the first delivery created. The answer is a CloudEvent in binary mode naming
the job, which a Knative broker can route as a reply.

An ApiServerSource event saying one of jobfn's jobs changed is not a submission: when the
job has finished, the jobs waiting on it are settled now (``job_changed``).

Permanent problems (unknown type, invalid data, a malformed event) are answered 4xx
so a broker dead-letters the event; transient ones (the Kubernetes API unreachable,
a definition's cap reached) 503 or 429, so it retries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import flask
from cloudevents.exceptions import GenericException
from cloudevents.http import CloudEvent, from_http
from werkzeug.datastructures import Headers

from ._auth import caller_fields
from ._errors import InvalidArguments, InvalidRequest, JobNotFound, MethodNotAllowed, UnsupportedMediaType
from ._gate_state import may_free_a_waiting_pod
from ._service import Service
from ._state_events import state_change, unannounced_state
from ._status import is_terminal
from ._submission import MAX_IDEMPOTENCY_KEY_LENGTH, JobView, Submission
from ._web import (
    ENDPOINT_KEY,
    STRUCTURED_MEDIA_TYPE_PREFIX,
    dumps,
    is_json_media_type,
    media_type_of,
    parse_json,
    read_body,
)

BATCH_MEDIA_TYPE = "application/cloudevents-batch+json"
STRUCTURED_JSON_MEDIA_TYPE = "application/cloudevents+json"
#: The type of the reply event that names the job an event created (or found).
SUBMITTED_EVENT_TYPE = "dev.jobfn.job.submitted"
#: Binary-mode attribute headers that can only hold one value (see ``_binary_headers``).
SINGLE_VALUED_HEADERS = ("ce-specversion", "ce-id", "ce-type")
REQUIRED_BINARY_HEADERS = ("ce-specversion", "ce-id", "ce-source", "ce-type")


#: The jobs an ApiServerSource event settled, as JSON (``job_changed``'s answer).
SETTLED_HEADER = "X-Jobfn-Settled"

#: What Knative's ApiServerSource sends when a watched object changes (mode Resource).
JOB_CHANGED_EVENT_TYPES = frozenset(
    {"dev.knative.apiserver.resource.update", "dev.knative.apiserver.resource.add"}
)


def idempotency_key(source: str, event_id: str) -> str:
    """The one idempotency key of the event (source, id); different pairs never share one.

    The pair is JSON-encoded rather than joined, so source ``a`` with id ``bc`` and
    source ``ab`` with id ``c`` stay apart. A pair too long to store as a key is
    replaced by its SHA-256, marked so that it cannot equal any encoded pair.
    """
    encoded = json.dumps([source, event_id], ensure_ascii=False, separators=(",", ":"))
    if len(encoded) <= MAX_IDEMPOTENCY_KEY_LENGTH:
        return encoded
    return "sha256:" + hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def parse_event(headers: Mapping[str, str] | Headers, body: bytes) -> CloudEvent:
    """The CloudEvent in a request; InvalidRequest naming what is wrong with it.

    The mode is decided here, by the content type as the HTTP binding says, and the SDK
    is handed only what that mode reads: it would otherwise take a request that lacks a
    binary-mode header for a structured event and parse its body as one.
    """
    media_type = media_type_of(headers.get("Content-Type"))
    if media_type == BATCH_MEDIA_TYPE:
        raise UnsupportedMediaType("batched CloudEvents are not accepted; send one event per request")
    if media_type.startswith(STRUCTURED_MEDIA_TYPE_PREFIX):
        if media_type != STRUCTURED_JSON_MEDIA_TYPE:
            raise UnsupportedMediaType(
                f"structured-mode CloudEvents are accepted as {STRUCTURED_JSON_MEDIA_TYPE}, not {media_type[:80]}"
            )
        # The SDK parses the envelope with a bare json.loads: checked here first, so a
        # deeply nested, duplicated or non-UTF-8 envelope is a 400 like any other body.
        if not isinstance(parse_json(body), dict):
            raise InvalidRequest("not a valid CloudEvent: a structured-mode event is a JSON object")
        given = {"content-type": str(headers.get("Content-Type"))}
    else:
        given = _binary_headers(headers)
    try:
        # The data is kept as it came (bytes or JSON text) and decoded below, so a
        # malformed payload is reported as such instead of turning into a string.
        event: CloudEvent = from_http(given, body, data_unmarshaller=lambda raw: raw)
    except GenericException as error:
        raise InvalidRequest(f"not a valid CloudEvent: {str(error)[:300]}") from None
    except RecursionError:  # a few frames deeper than parse_json above, at the very limit
        raise InvalidRequest("not a valid CloudEvent: it is nested too deeply") from None
    for attribute in ("id", "source", "type"):
        if not isinstance(event.get(attribute), str) or not event[attribute]:
            raise InvalidRequest(f"not a valid CloudEvent: '{attribute}' must be a non-empty string")
    content_type = event.get("datacontenttype")
    if content_type is not None and not isinstance(content_type, str):
        raise InvalidRequest("not a valid CloudEvent: 'datacontenttype' must be a string")
    return event


def _binary_headers(headers: Mapping[str, str] | Headers) -> dict[str, str]:
    """The headers of a binary-mode event, refusing what they leave missing or ambiguous.

    The server joins a header sent twice into one value with a comma, so a comma in
    an attribute that is one token (spec version, id, type) may mean the event named
    two of them; it is refused rather than read as one. (Data without a Content-Type
    is read as JSON: the CloudEvents SDKs' binary encoders send JSON data without one.)
    """
    given = {name.lower(): value for name, value in headers.items()}
    missing = [name for name in REQUIRED_BINARY_HEADERS if not given.get(name)]
    if missing:
        raise InvalidRequest(
            f"not a valid CloudEvent: binary mode needs the headers {', '.join(REQUIRED_BINARY_HEADERS)}; "
            f"missing: {', '.join(missing)} (or send it as {STRUCTURED_JSON_MEDIA_TYPE})"
        )
    for attribute in SINGLE_VALUED_HEADERS:
        if "," in given[attribute]:
            raise InvalidRequest(
                f"not a valid CloudEvent: the {attribute} header holds a comma, as when it is sent "
                f"twice; send one {attribute} header, without commas"
            )
    return given


def arguments_of(event: CloudEvent) -> dict[str, Any]:
    """The event's data as job arguments: a JSON object (no data means no arguments)."""
    data = event.get_data()
    if data is None or data in ("", b""):
        return {}
    media_type = media_type_of(event.get("datacontenttype"))
    if media_type and not is_json_media_type(media_type):
        raise UnsupportedMediaType(f"the event's data must be JSON, not {media_type[:80]}")
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    arguments = parse_json(raw)
    if not isinstance(arguments, dict):
        raise InvalidArguments("the event's data must be a JSON object of arguments")
    return arguments


def reply(view: JobView, source: str) -> flask.Response:
    """The answer to an accepted event: a CloudEvent (binary mode) whose data is the job."""
    attributes = {
        "type": SUBMITTED_EVENT_TYPE,
        "source": source,
        "id": view.uid or view.name,  # one reply id per job: a redelivery's reply is a duplicate
        "subject": view.name,
        "datacontenttype": "application/json",
    }
    if view.created is not None:
        attributes["time"] = datetime.fromtimestamp(view.created, UTC).isoformat().replace("+00:00", "Z")
    headers, body = binary_event(attributes, view.to_json())
    return flask.Response(body, status=201 if view.created_now else 200, headers=headers)


def binary_event(attributes: Mapping[str, str], data: Any) -> tuple[dict[str, str], bytes]:
    """An event jobfn sends, in HTTP binary mode: each attribute a ``ce-`` header, the JSON data the body.

    Written here, not through the SDK's CloudEvent and to_binary (a third of this door's
    CPU per event in a cProfile of 300 events): every attribute jobfn sends is ASCII it
    made itself (a type, a namespace, a uid, a Job name, a time), so no header needs the
    binding's percent-encoding, and the data is always a JSON object.
    """
    headers = {"ce-specversion": "1.0"}
    if "time" not in attributes:  # as the SDK's CloudEvent stamped it
        headers["ce-time"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    for name, value in attributes.items():
        if name == "datacontenttype":
            headers["Content-Type"] = value
        else:
            headers[f"ce-{name}"] = value
    return headers, dumps(data).encode("utf-8")


def job_changed(event: CloudEvent, service: Service) -> flask.Response:
    """A job changed (Knative's ApiServerSource, mode Resource): when it has finished, settle the
    jobs waiting on it now rather than at the next pass; and answer with its state-change event
    (``_state_events``) when its state, read afresh, has not been announced. The event only wakes
    this: every state used is read from the API, so an event cannot release a job, nor announce a
    state the job is not in."""
    job = arguments_of(event)  # the object, as the source saw it
    metadata = job.get("metadata") or {}
    name = metadata.get("name")
    manager = service.manager()
    ours = (
        job.get("kind") == "Job"
        and isinstance(name, str)
        and metadata.get("namespace") == service.settings.namespace
        and manager.signer.is_signed(job)
    )
    if not ours:
        return _no_reply({})
    settled = manager.settle_waiting_jobs(only_dependents_of=name) if is_terminal(job) else {}
    if may_free_a_waiting_pod(job):  # a failed attempt, or a finished child an N_TO_N child waits for
        settled.update({f"pods_{outcome}": count for outcome, count in manager.decide_waiting_pods().items()})
    try:
        view = manager.describe_job(str(name))
    except JobNotFound:
        return _no_reply(settled)  # deleted since: the archive record says the rest
    if unannounced_state(view) is None:
        return _no_reply(settled)
    attributes, data = state_change(view, service.settings.namespace)
    headers, body = binary_event(attributes, data)
    response = flask.Response(body, status=200, headers=headers)
    response.headers[SETTLED_HEADER] = dumps(settled)  # for whoever watches; brokers ignore it
    return response


def _no_reply(settled: Mapping[str, Any]) -> flask.Response:
    """200 with an empty body: a broker takes any other body that is not a CloudEvent for a
    failed delivery and retries it (Knative's filter: "the response MUST be either empty or a
    valid CloudEvent"). What was settled is told in a header, as beside a reply."""
    return flask.Response(b"", status=200, headers={SETTLED_HEADER: dumps(settled)})


def handle(request: flask.Request, service: Service) -> flask.Response:
    """Submit the job an event asks for and answer with a reply event."""
    request.environ[ENDPOINT_KEY] = "cloudevent"
    if request.method != "POST":
        raise MethodNotAllowed("CloudEvents are delivered with POST", ["POST"])
    # A broker's token is for the function's audience (JOBFN_EVENT_AUDIENCE), not the API server's.
    caller = service.caller(request, audience=service.settings.event_audience)
    event = parse_event(request.headers, read_body(request, service.settings.max_body_bytes))
    if event["type"] in JOB_CHANGED_EVENT_TYPES:
        return job_changed(event, service)
    definition = service.definitions().for_event_type(event["type"])
    submission = Submission(
        definition=definition.name,
        arguments=arguments_of(event),
        idempotency_key=idempotency_key(event["source"], event["id"]),
        **caller_fields(caller),
    )
    return reply(service.submit(submission, door="events"), service.event_source)
