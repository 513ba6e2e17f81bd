"""Errors answered in AWS's REST-JSON shape, so botocore raises the exceptions it would for AWS."""

from __future__ import annotations

import json

import flask
import pytest

from jobfn._aws_batch.door import authenticate, error_response
from jobfn._aws_batch.sigv4 import InvalidSignature, MissingAuthenticationToken, UnrecognizedClient
from jobfn._errors import (
    Conflict,
    DefinitionError,
    DefinitionNotFound,
    Forbidden,
    InvalidArguments,
    JobfnError,
    JobNotFound,
    KubernetesError,
    TooManyRequests,
    Unavailable,
)
from jobfn._settings import Settings


@pytest.mark.parametrize(
    ("error", "status", "error_type"),
    [
        (InvalidArguments("count: 'x' is not of type 'integer'"), 400, "ClientException"),
        (DefinitionNotFound("no job definition named 'x'"), 400, "ClientException"),
        (JobNotFound("job 'x' not found"), 400, "ClientException"),
        (Conflict("clash"), 400, "ClientException"),
        (Forbidden("not you"), 403, "AccessDeniedException"),
        (InvalidSignature("does not match"), 403, "InvalidSignatureException"),
        (UnrecognizedClient("who?"), 403, "UnrecognizedClientException"),
        (MissingAuthenticationToken("sign it"), 403, "MissingAuthenticationTokenException"),
        (TooManyRequests("cap", retry_after=3), 429, "TooManyRequestsException"),
        (Unavailable("API down"), 503, "ServerException"),
        (DefinitionError("broken file"), 500, "ServerException"),
        (KubernetesError("odd answer"), 500, "ServerException"),
    ],
)
def test_each_error_has_one_aws_answer(error: JobfnError, status: int, error_type: str) -> None:
    response = error_response(error)
    assert response.status_code == status
    assert response.headers["x-amzn-ErrorType"] == error_type
    assert json.loads(response.get_data()) == {"__type": error_type, "message": error.message}


def test_throttling_and_unavailability_say_when_to_retry() -> None:
    assert error_response(TooManyRequests("cap", retry_after=3)).headers["Retry-After"] == "3"
    assert error_response(Unavailable("down", retry_after=7)).headers["Retry-After"] == "7"


def test_an_unexpected_error_is_a_server_exception_without_internals() -> None:
    response = error_response(RuntimeError("secret internals at 0xdeadbeef"))
    body = json.loads(response.get_data())
    assert response.status_code == 500
    assert body["__type"] == "ServerException"
    assert "internals" not in body["message"] and "request id" in body["message"]


def settings(**aws: str) -> Settings:
    return Settings(signature="jobfn", namespace="default", definitions_path=None, **aws)  # type: ignore[arg-type]


SIGNED_HEADER = (
    "AWS4-HMAC-SHA256 Credential=AKID/20260301/eu-central-1/batch/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
)


def test_without_credentials_any_request_is_served_and_arns_use_its_region() -> None:
    with flask.Flask(__name__).test_request_context(
        "/v1/listjobs", method="POST", headers={"Authorization": SIGNED_HEADER}
    ):
        assert authenticate(flask.request, b"{}", settings()) == (None, "eu-central-1")
    with flask.Flask(__name__).test_request_context("/v1/listjobs", method="POST"):
        assert authenticate(flask.request, b"{}", settings()) == (None, "us-east-1")


def test_with_caller_authentication_on_the_aws_door_needs_credentials_of_its_own() -> None:
    context = flask.Flask(__name__).test_request_context(
        "/v1/listjobs", method="POST", headers={"Authorization": SIGNED_HEADER}
    )
    with context, pytest.raises(UnrecognizedClient, match="closed"):
        authenticate(flask.request, b"{}", settings(auth="tokenreview"))


def test_with_credentials_a_bad_signature_is_refused() -> None:
    configured = settings(aws_access_key_id="AKID", aws_secret_access_key="secret")
    headers = {"Authorization": SIGNED_HEADER, "X-Amz-Date": "20260301T120000Z"}
    context = flask.Flask(__name__).test_request_context("/v1/listjobs", method="POST", headers=headers)
    with context, pytest.raises(InvalidSignature):
        authenticate(flask.request, b"{}", configured)
