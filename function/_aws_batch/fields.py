"""Reading one field of an AWS Batch request body.

Each reader appends what is wrong to ``problems`` instead of raising, so a body's
every problem is reported at once; page tokens are opaque positions (``_paging``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import InvalidRequest
from .._paging import InvalidToken, decode_opaque, encode_opaque


def request_object(body: Any) -> dict[str, Any]:
    """The request body as an object (an empty body is an empty request)."""
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def required_string(body: Mapping[str, Any], key: str, problems: list[str]) -> str | None:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        problems.append(f"{key}: required, a non-empty string")
        return None
    return value


def optional_object(body: Mapping[str, Any], key: str, problems: list[str]) -> Mapping[str, Any]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{key}: must be an object")
        return {}
    return value


def optional_int(
    body: Mapping[str, Any],
    key: str,
    problems: list[str],
    where: str = "",
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    whole = isinstance(value, int) and not isinstance(value, bool)
    if not whole or (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        bounds = f" from {minimum} to {maximum}" if maximum is not None else ""
        problems.append(f"{where}{key}: must be a whole number{bounds}")
        return None
    return int(value)


def string_map(body: Mapping[str, Any], key: str, problems: list[str]) -> dict[str, str]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        problems.append(f"{key}: must map names to strings")
        return {}
    return {str(k): v for k, v in value.items()}


def max_results(body: Mapping[str, Any], default: int, maximum: int) -> int:
    problems: list[str] = []
    value = optional_int(body, "maxResults", problems, "", 1, maximum)
    if problems:
        raise InvalidRequest(problems[0])
    return value if value is not None else default


def encode_token(position: Any) -> str:
    """An opaque nextToken for a position in a listing."""
    return encode_opaque(position)


def decode_token(token: Any) -> Any:
    """The position a nextToken from ``encode_token`` stands for; InvalidRequest otherwise."""
    if token is None:
        return None
    try:
        return decode_opaque(str(token))
    except InvalidToken:
        raise InvalidRequest("nextToken: not a token this API gave; list again from the start") from None
