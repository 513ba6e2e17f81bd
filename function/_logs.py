"""Structured logs: one JSON object per line on stderr, tagged with the request being served.

Knative and every log pipeline read a JSON line as fields, so a search for one request
id or one job name finds every line about it. Tokens and request bodies are never
logged; fields are only what the code passes in ``extra=``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any

#: The id of the request this thread is serving ("-" outside a request).
request_id: ContextVar[str] = ContextVar("jobfn_request_id", default="-")

# What the request did (the job it created, ...), for its one access-log line: a line
# per request, not two for a submission, keeps logging off a submission's CPU bill.
_request_fields: ContextVar[dict[str, Any] | None] = ContextVar("jobfn_request_fields", default=None)


def start_request_fields() -> dict[str, Any]:
    """A fresh set of fields for the request this thread starts serving."""
    fields: dict[str, Any] = {}
    _request_fields.set(fields)
    return fields


def add_request_fields(**fields: Any) -> None:
    """Record fields on the current request's access-log line (ignored outside a request)."""
    current = _request_fields.get()
    if current is not None:
        current.update(fields)


# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object: time, level, logger, message, request id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = request_id.get()
        if current != "-":
            entry["request_id"] = current
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """Send every log record (jobfn's, Flask's, the Kubernetes client's) as JSON to stderr."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler.formatter, JsonFormatter):
            root.setLevel(level)
            return  # already configured (the module was loaded twice)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.handlers = [handler]
    root.setLevel(level)
    # The Kubernetes client logs every retry and connection warning at WARNING with
    # tracebacks; jobfn reports those itself, once, as errors with a request id.
    logging.getLogger("urllib3").setLevel(logging.ERROR)
