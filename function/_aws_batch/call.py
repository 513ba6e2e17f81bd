"""One AWS Batch request as the actions take it, and what they share: names and pages.

``Backend`` is what the actions need from the function (the service), so the door can
hand each action a ``Call`` without the actions knowing how the function is built.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .._definitions import JobDefinition, JobDefinitions
from .._errors import InvalidRequest
from .._kueue import QueueSnapshot
from .._queues import JobQueue
from .._submission import JobView, Submission
from .answers import Arns
from .fields import decode_token, encode_token, max_results

if TYPE_CHECKING:
    from .._manager import JobManager
    from .._registration import Registration
    from .._registry import RegisteredDefinitions

#: The front door's name in metrics and logs.
DOOR = "aws_batch"

T = TypeVar("T")


class Backend(Protocol):
    """What the actions need from the function (``service.Service``)."""

    def definitions(self) -> JobDefinitions: ...

    def manager(self) -> JobManager: ...

    def submit(
        self, submission: Submission, door: str, definition: JobDefinition | None = None
    ) -> JobView: ...

    def registration(self, name: str, revision: int | None) -> Registration | None: ...

    def registered_definition(self, name: str, revision: int | None) -> JobDefinition | None: ...

    def registry(self) -> RegisteredDefinitions | None: ...

    def register(self, registration: Registration, caller: str | None) -> Registration: ...

    def queue_snapshot(self, queue: JobQueue) -> QueueSnapshot: ...


@dataclass(frozen=True)
class Call:
    """One AWS Batch request, read and authenticated."""

    body: dict[str, Any]
    backend: Backend
    arns: Arns
    caller: str | None
    """``aws:<access key id>`` when signatures are verified, else None."""


Action = Callable[[Call], dict[str, Any]]


def names(body: dict[str, Any], key: str, read: Callable[[str], T]) -> set[T] | None:
    raw = body.get(key)
    if raw is None or raw == []:
        return None
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise InvalidRequest(f"{key}: must be a list of names or ARNs")
    return {read(item) for item in raw}


def paged(
    field: str,
    items: list[T],
    key: Callable[[T], str],
    render: Callable[[T], dict[str, Any]],
    body: dict[str, Any],
) -> dict[str, Any]:
    """AWS's ``{field: [...], "nextToken"}``: up to ``maxResults`` (100) items after the token's
    key, in key order (``items`` are sorted by it)."""
    limit = max_results(body, default=100, maximum=100)
    after = decode_token(body.get("nextToken"))
    if after is not None and not isinstance(after, str):
        raise InvalidRequest("nextToken: not a token this API gave; list again from the start")
    rest = [item for item in items if after is None or key(item) > after]
    page = rest[:limit]
    answer: dict[str, Any] = {field: [render(item) for item in page]}
    if len(rest) > limit:
        answer["nextToken"] = encode_token(key(page[-1]))
    return answer
