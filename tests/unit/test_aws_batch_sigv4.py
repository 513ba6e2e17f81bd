"""SigV4 verification against signatures made by botocore's own signer."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from urllib.parse import urlsplit

import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from jobfn._aws_batch.sigv4 import (
    Credentials,
    IncompleteSignature,
    InvalidSignature,
    MissingAuthenticationToken,
    SignedRequest,
    UnrecognizedClient,
    parse_authorization,
    signing_region,
    verify,
)

KEY = Credentials("AKIDJOBFNTEST", "s3cr3t/with+chars")
SIGNED_AT = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
BODY = b'{"jobName": "j", "jobQueue": "main", "jobDefinition": "hello"}'


def signed(
    url: str = "http://127.0.0.1:8080/v1/submitjob",
    body: bytes = BODY,
    secret: str = KEY.secret_access_key,
    access_key: str = KEY.access_key_id,
    region: str = "eu-west-1",
    at: dt.datetime = SIGNED_AT,
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> SignedRequest:
    """A request signed exactly as boto3 signs a batch call, as it arrives at the server."""
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    assert monkeypatch is not None
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: at.replace(tzinfo=None))
    botocore.auth.SigV4Auth(BotoCredentials(access_key, secret), "batch", region).add_auth(request)
    prepared = request.prepare()
    parts = urlsplit(prepared.url)
    headers = {name: value for name, value in prepared.headers.items()}
    headers["Host"] = parts.netloc  # added by the HTTP client, as urllib3 does
    return SignedRequest("POST", parts.path, parts.query, headers, prepared.body or b"")


def test_a_request_signed_with_the_configured_key_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    authorization = verify(signed(monkeypatch=monkeypatch), KEY, SIGNED_AT + dt.timedelta(seconds=30))
    assert authorization.access_key_id == KEY.access_key_id
    assert authorization.region == "eu-west-1"


def test_a_wrong_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidSignature, match="does not match"):
        verify(signed(secret="not-the-secret", monkeypatch=monkeypatch), KEY, SIGNED_AT)


def test_another_access_key_is_unrecognized(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UnrecognizedClient):
        verify(signed(access_key="AKIDSOMEONEELSE", monkeypatch=monkeypatch), KEY, SIGNED_AT)


def test_a_changed_body_breaks_the_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    request = signed(monkeypatch=monkeypatch)
    tampered = SignedRequest(request.method, request.path, request.query, request.headers, BODY + b" ")
    with pytest.raises(InvalidSignature):
        verify(tampered, KEY, SIGNED_AT)


def test_a_changed_signed_header_breaks_the_signature(monkeypatch: pytest.MonkeyPatch) -> None:
    request = signed(monkeypatch=monkeypatch)
    headers = {**request.headers, "Host": "elsewhere:8080"}
    with pytest.raises(InvalidSignature):
        verify(
            SignedRequest(request.method, request.path, request.query, headers, request.body), KEY, SIGNED_AT
        )


@pytest.mark.parametrize("skew", [dt.timedelta(minutes=16), -dt.timedelta(minutes=16)])
def test_a_request_more_than_15_minutes_off_is_refused(
    monkeypatch: pytest.MonkeyPatch, skew: dt.timedelta
) -> None:
    request = signed(monkeypatch=monkeypatch)
    verify(request, KEY, SIGNED_AT + skew / 16 * 14)  # 14 minutes: still fine
    with pytest.raises(InvalidSignature, match="expired"):
        verify(request, KEY, SIGNED_AT + skew)


def test_an_unsigned_request_is_refused_when_credentials_are_configured() -> None:
    with pytest.raises(MissingAuthenticationToken):
        verify(SignedRequest("POST", "/v1/listjobs", "", {"Host": "x"}, b"{}"), KEY, SIGNED_AT)


def test_query_strings_and_encoded_paths_are_canonicalized_as_botocore_signs_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "http://127.0.0.1:8080/v1/./x/../odd%20path/?b=2&a=1&c=%2F%20space&a=0"
    verify(signed(url=url, monkeypatch=monkeypatch), KEY, SIGNED_AT)


@pytest.mark.parametrize(
    "header",
    [
        "Bearer abc",
        "AWS4-HMAC-SHA256 Credential=AKID/20260301/us-east-1/batch, SignedHeaders=host, Signature="
        + "0" * 64,
        "AWS4-HMAC-SHA256 Credential=AKID/20260301/us-east-1/batch/aws4_request, Signature=" + "0" * 64,
    ],
)
def test_malformed_authorization_headers_are_incomplete_signatures(header: str) -> None:
    with pytest.raises(IncompleteSignature):
        parse_authorization(header)


def test_the_date_and_host_must_be_signed(monkeypatch: pytest.MonkeyPatch) -> None:
    request = signed(monkeypatch=monkeypatch)
    authorization = request.headers["Authorization"].replace(
        "SignedHeaders=content-type;host;x-amz-date", "SignedHeaders=content-type;host"
    )
    headers = {**request.headers, "Authorization": authorization}
    with pytest.raises(IncompleteSignature, match="x-amz-date"):
        verify(
            SignedRequest(request.method, request.path, request.query, headers, request.body), KEY, SIGNED_AT
        )


def test_the_signing_region_is_read_without_verifying() -> None:
    header = "AWS4-HMAC-SHA256 Credential=AKID/20260301/ap-south-1/batch/aws4_request, SignedHeaders=host, Signature=x"
    assert signing_region({"authorization": header}) == "ap-south-1"
    assert signing_region({}) is None


def test_the_secret_never_shows_in_a_repr() -> None:
    assert KEY.secret_access_key not in repr(KEY)


def test_the_function_verifies_signatures_without_botocore() -> None:
    code = "import sys, jobfn._aws_batch, jobfn._routing; assert 'botocore' not in sys.modules, 'botocore'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
