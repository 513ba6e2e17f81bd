"""When things happened to a job, as Unix seconds, from the API objects' own records."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ._contract import CREATED_LABEL


def unix_time(timestamp: str | None) -> int | None:
    """An API timestamp (RFC 3339) as unix seconds."""
    if not timestamp:
        return None
    return int(datetime.fromisoformat(timestamp).timestamp())


def created_time(metadata: Mapping[str, Any]) -> int | None:
    """When the job was created: as jobfn's store labelled it, so that listings can select
    by it (``CREATED_LABEL``), else as the API server stamped it."""
    try:
        return int((metadata.get("labels") or {})[CREATED_LABEL]) // 1000
    except (KeyError, ValueError, TypeError):
        return unix_time(metadata.get("creationTimestamp"))
