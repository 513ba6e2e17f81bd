"""The AWS Batch front door over HTTP: body, signature, action, and AWS-shaped answers.

Errors are answered the way AWS's REST-JSON services answer them — a status, the
``x-amzn-ErrorType`` header and ``{"__type", "message"}`` — so botocore raises
``batch.exceptions.ClientException`` and friends, and retries what it would retry
against AWS. Which error becomes which answer is decided in ``ERROR_ANSWERS`` only.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

import flask

from .._errors import (
    Forbidden,
    JobfnError,
    PayloadTooLarge,
    RequestError,
    TooManyRequests,
    Unavailable,
    UnsupportedMediaType,
)
from .._logs import request_id
from .._metrics import API_ERRORS
from .._service import Service
from .._settings import Settings
from .._web import ENDPOINT_KEY, json_response, parse_json, read_body, require_json_media_type
from .actions import ACTIONS
from .answers import Arns
from .call import Call
from .fields import request_object
from .sigv4 import Credentials, SignatureError, SignedRequest, UnrecognizedClient, signing_region, verify

logger = logging.getLogger(__name__)

#: The region in ARNs when a request is not signed (signed ones use their own region).
DEFAULT_REGION = "us-east-1"
REQUEST_ID_HEADER = "x-amzn-RequestId"
ERROR_TYPE_HEADER = "x-amzn-ErrorType"
#: What AWS's JSON protocols send besides application/json (``application/x-amz-json-1.1``).
AWS_JSON_MEDIA_TYPE_PREFIX = "application/x-amz-json-"

#: The tag actions' REST path (the resource ARN follows) and which method is which action.
TAGS_PATH = "/v1/tags/"
TAG_ACTIONS = {"GET": "listtagsforresource", "POST": "tagresource", "DELETE": "untagresource"}
#: Error class → (HTTP status, AWS error type), first match wins. None: the error's own code.
ERROR_ANSWERS: tuple[tuple[type[BaseException], int, str | None], ...] = (
    (SignatureError, 403, None),  # InvalidSignatureException, UnrecognizedClientException, ...
    (Forbidden, 403, "AccessDeniedException"),
    (TooManyRequests, 429, "TooManyRequestsException"),  # botocore retries it as throttling
    (PayloadTooLarge, 413, "ClientException"),  # the status AWS's front end answers a large body with
    (UnsupportedMediaType, 415, "ClientException"),
    (RequestError, 400, "ClientException"),
    (Unavailable, 503, "ServerException"),
    (JobfnError, 500, "ServerException"),
)


def handle(request: flask.Request, service: Service) -> flask.Response:
    """Serve ``POST /v1/<action>`` of the AWS Batch API; every failure in AWS's error shape."""
    tagged = request.path.startswith(TAGS_PATH)
    if tagged:  # GET, POST and DELETE /v1/tags/<resource ARN>
        action_name = TAG_ACTIONS.get(request.method, "")
    else:
        action_name = request.path.rstrip("/").rpartition("/")[2].lower()
    request.environ[ENDPOINT_KEY] = action_name if action_name in ACTIONS else "unserved"
    try:
        if not tagged and request.method != "POST":
            raise RequestError(f"the AWS Batch API takes POST requests, not {request.method[:10]}")
        if tagged and not action_name:
            raise RequestError(f"/v1/tags/<arn> takes GET, POST and DELETE, not {request.method[:10]}")
        data = read_body(request, service.settings.max_body_bytes)
        caller, region = authenticate(request, data, service.settings)
        action = ACTIONS.get(action_name)
        if action is None:
            raise RequestError(
                f"jobfn does not serve {action_name}: job definitions and queues are configured in "
                f"its definitions file; it serves {', '.join(sorted(ACTIONS))}"
            )
        body = request_object(_parse_body(request, data))
        if tagged:
            body = {
                **body,
                "resourceArn": request.path[len(TAGS_PATH) :],
                "tagKeys": request.args.getlist("tagKeys"),
            }
        arns = Arns(region, service.settings.aws_account_id)
        answer = action(Call(body, service, arns, caller))
    except Exception as error:
        return error_response(error)
    return json_response(answer, 200, {REQUEST_ID_HEADER: request_id.get()})


def _parse_body(request: flask.Request, data: bytes) -> object:
    """The JSON body of an action (None when empty).

    A body without a Content-Type is read as JSON: botocore sent REST-JSON bodies
    without one before it began adding ``application/json``, and AWS accepts them.
    """
    if not data.strip():
        return None
    media_type = request.mimetype
    if media_type and not media_type.lower().startswith(AWS_JSON_MEDIA_TYPE_PREFIX):
        require_json_media_type(media_type)
    return parse_json(data)


def authenticate(request: flask.Request, body: bytes, settings: Settings) -> tuple[str | None, str]:
    """Who signed the request (None when signatures are not checked) and the region it names."""
    region = signing_region(_headers(request)) or DEFAULT_REGION
    if settings.aws_access_key_id is None or settings.aws_secret_access_key is None:
        if settings.auth != "none":
            # Callers of the other doors must authenticate; this one must not be a way around it.
            raise UnrecognizedClient(
                "the AWS Batch API is closed: the function requires authentication and has no "
                "AWS credentials configured (JOBFN_AWS_ACCESS_KEY_ID, JOBFN_AWS_SECRET_ACCESS_KEY)"
            )
        return None, region
    credentials = Credentials(settings.aws_access_key_id, settings.aws_secret_access_key)
    authorization = verify(_signed_request(request, body), credentials, datetime.now(UTC))
    return f"aws:{authorization.access_key_id}", authorization.region


def _signed_request(request: flask.Request, body: bytes) -> SignedRequest:
    # The signature covers the path as sent; servers that keep it (gunicorn, werkzeug) say so.
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw:
        parts = urlsplit(raw)
        path, query = parts.path or "/", parts.query
    else:
        path, query = quote(request.path, safe="/~"), request.query_string.decode("latin-1")
    return SignedRequest(request.method, path, query, _headers(request), body)


def _headers(request: flask.Request) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


def error_response(error: BaseException) -> flask.Response:
    """The AWS-shaped answer to ``error``; unexpected errors are logged and answered without internals."""
    status, error_type = 500, "ServerException"
    message = f"an unexpected error occurred; quote request id {request_id.get()} when reporting it"
    for kind, kind_status, kind_type in ERROR_ANSWERS:
        if isinstance(error, kind):
            status, error_type = kind_status, kind_type or str(getattr(error, "code", "ServerException"))
            break
    if isinstance(error, JobfnError):
        message = error.message
        if status >= 500:
            logger.error("answering %s: %s", error_type, error.message)
    else:
        logger.error("unexpected error while serving an AWS Batch request", exc_info=error)
    headers = {ERROR_TYPE_HEADER: error_type, REQUEST_ID_HEADER: request_id.get()}
    if isinstance(error, TooManyRequests | Unavailable):
        headers["Retry-After"] = str(max(1, error.retry_after))
    API_ERRORS.labels(str(status), error_type).inc()
    return json_response({"__type": error_type, "message": message}, status, headers)
