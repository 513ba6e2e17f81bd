"""Page tokens: one codec for every listing's opaque token, and the newest-first job position.

A token names a position, not an offset, so jobs created while a caller pages never
shift or repeat what a later page holds.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from ._errors import InvalidRequest
from ._submission import JobView

#: The most jobs one page of any listing (REST or AWS Batch) may hold.
MAX_PAGE_SIZE = 1000


class InvalidToken(ValueError):
    """Raised when a token is not one ``encode_opaque`` made (each listing words its own answer)."""


def encode_opaque(position: Any) -> str:
    """A URL-safe token for a JSON-able position in a listing (base64 of its JSON, unpadded)."""
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_opaque(token: str) -> Any:
    """The position ``encode_opaque`` made ``token`` from; InvalidToken for anything else."""
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError):
        raise InvalidToken(token[:40]) from None


def newest_first_position(view: JobView) -> tuple[int, str]:
    """Where a job stands in a newest-first listing (larger is newer)."""
    return (view.created or 0, view.name)


def encode_position(position: tuple[int, str]) -> str:
    return encode_opaque(list(position))


def decode_position(token: str) -> tuple[int, str]:
    """The position a token names; InvalidRequest for anything a listing did not give."""
    try:
        created, name = decode_opaque(token)
        if isinstance(created, int) and isinstance(name, str):
            return created, name
    except (ValueError, TypeError):  # an InvalidToken, or not a (time, name) pair
        pass
    raise InvalidRequest("the page token is not one this listing gave; list again from the start")
