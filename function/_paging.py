"""Page tokens of newest-first listings: the last job's (creation time, name), opaque to callers.

A token names a position, not an offset, so jobs created while a caller pages never
shift or repeat what a later page holds.
"""

from __future__ import annotations

import base64
import json

from ._errors import InvalidRequest
from ._submission import JobView

#: The most jobs one page of any listing (REST or AWS Batch) may hold.
MAX_PAGE_SIZE = 1000


def newest_first_position(view: JobView) -> tuple[int, str]:
    """Where a job stands in a newest-first listing (larger is newer)."""
    return (view.created or 0, view.name)


def encode_position(position: tuple[int, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(position)).encode()).decode().rstrip("=")


def decode_position(token: str) -> tuple[int, str]:
    """The position a token names; InvalidRequest for anything a listing did not give."""
    try:
        created, name = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if isinstance(created, int) and isinstance(name, str):
            return created, name
    except (ValueError, TypeError):
        pass
    raise InvalidRequest("the page token is not one this listing gave; list again from the start")
