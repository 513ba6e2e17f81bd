"""The cold-start baseline: a bare functions-framework function that only says hello."""

from __future__ import annotations

from typing import Any


def hello(request: Any) -> str:
    return "hello"
