"""AWS Signature Version 4: was an AWS Batch API request signed with the configured key?

AWS SDKs and the CLI sign every request (``Authorization: AWS4-HMAC-SHA256
Credential=<key>/<date>/<region>/batch/aws4_request, SignedHeaders=..., Signature=...``).
To check one, jobfn rebuilds the canonical request from what it received, derives the
signing key from the configured secret, and compares the signatures in constant time,
as AWS's SigV4 documentation describes. PyPI has no small, maintained server-side
verifier (botocore only signs), so it is done here with hashlib and hmac. Pure: the
current time is an argument. Authorization headers and signatures are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import quote, unquote

from .._errors import Unauthenticated

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "batch"
#: How far a request's time may be from ours, as AWS allows.
MAX_CLOCK_SKEW_SECONDS = 15 * 60
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed_headers>[^,\s]+)\s*,\s*Signature=(?P<signature>[0-9a-f]{64})\s*$"
)
_REGION = re.compile(r"Credential=[^/\s,]+/\d{8}/(?P<region>[a-z0-9-]{1,32})/")


class SignatureError(Unauthenticated):
    """Raised when a request's signature cannot be accepted; ``code`` is AWS's error name."""

    status = 403
    code = "InvalidSignatureException"


class MissingAuthenticationToken(SignatureError):
    """Raised when credentials are configured and a request is not signed at all."""

    code = "MissingAuthenticationTokenException"


class IncompleteSignature(SignatureError):
    """Raised when the Authorization header is not a well-formed SigV4 header."""

    code = "IncompleteSignatureException"


class UnrecognizedClient(SignatureError):
    """Raised when a request is signed with an access key other than the configured one."""

    code = "UnrecognizedClientException"


class InvalidSignature(SignatureError):
    """Raised when the signature does not match, or the request is too old or too new."""


@dataclass(frozen=True)
class Credentials:
    """The access key requests must be signed with."""

    access_key_id: str
    secret_access_key: str = field(repr=False)


@dataclass(frozen=True)
class SignedRequest:
    """A request as it arrived: what its signature covers."""

    method: str
    path: str
    """The path as sent (still percent-encoded), without the query."""
    query: str
    """The query string as sent, without the ``?``."""
    headers: Mapping[str, str]
    body: bytes


@dataclass(frozen=True)
class Authorization:
    """The parts of an ``Authorization: AWS4-HMAC-SHA256 ...`` header."""

    access_key_id: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str = field(repr=False)

    @property
    def scope(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{self.terminator}"


def signing_region(headers: Mapping[str, str]) -> str | None:
    """The region a request was signed for, when it is signed (used in the ARNs answered)."""
    match = _REGION.search(_header(headers, "authorization") or "")
    return match.group("region") if match else None


def parse_authorization(header: str) -> Authorization:
    """The parts of a SigV4 Authorization header; IncompleteSignature if it is not one."""
    match = _AUTHORIZATION.match(header.strip())
    if match is None and header.count("AWS4-HMAC-SHA256") > 1:
        # The server joins a header sent twice with a comma: two signatures, and none to trust.
        raise IncompleteSignature(
            "the Authorization header holds two signatures (was it sent twice?); send one"
        )
    if match is None:
        raise IncompleteSignature(
            "the Authorization header must be 'AWS4-HMAC-SHA256 Credential=..., "
            "SignedHeaders=..., Signature=...'"
        )
    parts = match.group("credential").split("/")
    if len(parts) != 5 or not all(parts):
        raise IncompleteSignature(
            "the Credential must be <access key>/<yyyymmdd>/<region>/<service>/aws4_request"
        )
    access_key_id, date, region, service, terminator = parts
    return Authorization(
        access_key_id=access_key_id,
        date=date,
        region=region,
        service=service,
        terminator=terminator,
        signed_headers=tuple(match.group("signed_headers").split(";")),
        signature=match.group("signature"),
    )


def verify(request: SignedRequest, credentials: Credentials, now: datetime) -> Authorization:
    """Accept ``request`` only if it was signed with ``credentials`` within the allowed skew."""
    header = _header(request.headers, "authorization")
    if not header:
        raise MissingAuthenticationToken("Missing Authentication Token: sign the request with SigV4")
    authorization = parse_authorization(header)
    if not hmac.compare_digest(authorization.access_key_id.encode(), credentials.access_key_id.encode()):
        raise UnrecognizedClient("The security token included in the request is invalid.")
    # Unsigned, the time could be replaced to replay an old request.
    if not {"host", "x-amz-date"} <= set(authorization.signed_headers):
        raise IncompleteSignature("the signed headers must include host and x-amz-date")
    if authorization.service != SERVICE or authorization.terminator != "aws4_request":
        raise InvalidSignature(f"Credential should be scoped to correct service: '{SERVICE}'.")
    amz_date = _request_time(_header(request.headers, "x-amz-date") or "")
    if authorization.date != amz_date[:8]:
        raise InvalidSignature("the Credential's date is not the date of the request's x-amz-date")
    sent = datetime.strptime(amz_date, _AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    if abs((now - sent).total_seconds()) > MAX_CLOCK_SKEW_SECONDS:
        raise InvalidSignature(
            f"Signature expired: {amz_date} is more than 15 minutes away from the server's time "
            f"{now.astimezone(UTC).strftime(_AMZ_DATE_FORMAT)}"
        )
    expected = signature(
        credentials.secret_access_key, authorization, amz_date, canonical_request(request, authorization)
    )
    if not hmac.compare_digest(expected.encode(), authorization.signature.encode()):
        raise InvalidSignature(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
    return authorization


def canonical_request(request: SignedRequest, authorization: Authorization) -> str:
    """The canonical form of a request that SigV4 signs."""
    headers = []
    for name in authorization.signed_headers:
        value = _header(request.headers, name)
        if value is None:
            raise InvalidSignature(f"the signed header {name[:60]!r} is not in the request")
        headers.append(f"{name}:{' '.join(value.split())}\n")
    return "\n".join(
        [
            request.method.upper(),
            _canonical_path(request.path),
            _canonical_query(request.query),
            "".join(headers),
            ";".join(authorization.signed_headers),
            hashlib.sha256(request.body).hexdigest(),
        ]
    )


def signature(secret_access_key: str, authorization: Authorization, amz_date: str, canonical: str) -> str:
    """The hex signature of a canonical request under the key derived for its scope."""
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, authorization.scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()]
    )
    key = ("AWS4" + secret_access_key).encode("utf-8")
    for part in (authorization.date, authorization.region, authorization.service, authorization.terminator):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        # Mappings that are not case-insensitive (a plain dict in tests, say).
        value = next((v for k, v in headers.items() if k.lower() == name), None)
    return value


def _request_time(value: str) -> str:
    try:
        datetime.strptime(value, _AMZ_DATE_FORMAT)
    except ValueError:
        raise IncompleteSignature("x-amz-date must be a time like 20240131T235959Z") from None
    return value


def _canonical_path(path: str) -> str:
    """The path with dot and empty segments resolved, each segment encoded (again), as SigV4 wants."""
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    normalized = "/" + "/".join(segments)
    if path.endswith("/") and segments:
        normalized += "/"
    # The path arrived percent-encoded once; SigV4 (outside S3) encodes it once more.
    return quote(normalized, safe="/~")


def _canonical_query(query: str) -> str:
    pairs = []
    for part in query.split("&") if query else []:
        name, _, value = part.partition("=")
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))
