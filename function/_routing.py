"""Picks the front door for a request, in one place, and runs every request's life around it.

    a CloudEvent (``ce-`` headers or a CloudEvents content type)  → ``events``
    ``/v1/<AWS Batch action>``, e.g. ``POST /v1/submitjob``        → the AWS Batch API
    anything else                                                 → ``rest``

Around every door: a request id, the in-flight cap, the one JSON error shape, an
access log line and the latency histogram.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import flask

from . import _aws_batch as aws_batch
from . import _rest as rest
from ._aws_batch import AWS_BATCH_ACTIONS
from ._logs import start_request_fields
from ._metrics import REQUEST_SECONDS
from ._service import Service
from ._web import (
    ENDPOINT_KEY,
    REQUEST_ID_HEADER,
    begin_request,
    check_header_encoding,
    error_response,
    is_cloudevent,
    release_unread_body,
)

logger = logging.getLogger(__name__)

FrontDoor = Callable[[flask.Request, Service], flask.Response]
#: The error answer of each door that does not use the one JSON error shape.
ERROR_RESPONSES: dict[str, Callable[[BaseException], flask.Response]] = {
    "aws_batch": aws_batch.error_response
}


def _events_door(request: flask.Request, service: Service) -> flask.Response:
    from . import _events  # on the first event: a REST-only start never imports it

    return _events.handle(request, service)


def is_aws_batch_path(path: str) -> bool:
    """Whether ``path`` is an AWS Batch API action, e.g. ``/v1/submitjob`` or ``/v1/tags/<arn>``."""
    parts = path.strip("/").split("/")
    if len(parts) > 2 and parts[:2] == ["v1", "tags"]:
        return True
    return len(parts) == 2 and parts[0] == "v1" and parts[1].lower() in AWS_BATCH_ACTIONS


def choose_door(request: flask.Request) -> tuple[str, FrontDoor]:
    """The name of the front door that serves ``request``, and the door."""
    if is_cloudevent(request.headers):
        return "events", _events_door
    if is_aws_batch_path(request.path):
        return "aws_batch", aws_batch.handle
    return "rest", rest.handle


def dispatch(request: flask.Request, service: Service) -> flask.Response:
    """Serve one request through its front door; every failure becomes the one JSON error."""
    started = time.perf_counter()
    request_id = begin_request(request.headers.get(REQUEST_ID_HEADER))
    fields = start_request_fields()
    door_name, door = choose_door(request)
    try:
        check_header_encoding(request.headers)
        if door_name == "rest" and request.path in rest.UNCAPPED_PATHS:
            response = door(request, service)  # probes answer even when the function is saturated
        else:
            with service.in_flight.slot():
                response = door(request, service)
    except Exception as error:
        # Refused before the door ran (the in-flight cap, a header): still in the door's shape.
        response = ERROR_RESPONSES.get(door_name, error_response)(error)
    release_unread_body(request, response)
    response.headers[REQUEST_ID_HEADER] = request_id
    elapsed = time.perf_counter() - started
    endpoint = str(request.environ.get(ENDPOINT_KEY, "unmatched"))
    REQUEST_SECONDS.labels(door_name, endpoint).observe(elapsed)
    logger.log(
        logging.DEBUG if request.path in rest.UNCAPPED_PATHS else logging.INFO,
        "%s %s %d",
        request.method,
        request.path[:200],
        response.status_code,
        extra={"door": door_name, "endpoint": endpoint, "status": response.status_code,
               "duration_ms": round(elapsed * 1000, 1), **fields},
    )  # fmt: skip
    return response
