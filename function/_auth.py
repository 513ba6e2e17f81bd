"""Caller authentication: a bearer token checked with the Kubernetes TokenReview API.

Services call the function with their own ServiceAccount token; the API server says
whose it is. A positive answer is remembered for a short while (keyed by a hash of the
token, never the token itself) so a busy caller costs one review a minute, not one
per request. Tokens are never logged.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypedDict

from ._errors import Unauthenticated

_BEARER = "bearer "
_MAX_TOKEN_LENGTH = 16 * 1024


class Reviewed(Protocol):
    """What a token review tells (``manager.ReviewedToken``)."""

    @property
    def username(self) -> str: ...

    @property
    def groups(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Caller:
    """Who an authenticated request comes from, as the TokenReview said."""

    username: str
    """Recorded on the jobs it submits (``jobfn.dev/submitted-by``)."""
    groups: frozenset[str] = frozenset()
    """Its groups (``system:serviceaccounts:<namespace>``, ...), which ``allowed_subjects`` may name."""


class CallerFields(TypedDict):
    """A caller as ``Submission`` holds it (``Submission(..., **caller_fields(caller))``)."""

    caller: str | None
    caller_groups: frozenset[str]


def caller_fields(caller: Caller | None) -> CallerFields:
    """The submission fields for ``caller`` (None: authentication is off)."""
    if caller is None:
        return {"caller": None, "caller_groups": frozenset()}
    return {"caller": caller.username, "caller_groups": caller.groups}


class TokenAuthenticator:
    """Turns an ``Authorization: Bearer <token>`` header into the caller (username and groups)."""

    def __init__(
        self,
        review: Callable[[str], Reviewed | None],
        ttl_seconds: float = 60.0,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
        refusal: str = "the bearer token is not valid (expired, revoked or not for this cluster)",
    ) -> None:
        self._review = review
        self._refusal = refusal
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._known: OrderedDict[str, tuple[Caller, float]] = OrderedDict()

    def caller(self, authorization: str | None) -> Caller:
        """Who the header's token authenticates as; Unauthenticated if no one."""
        token = bearer_token(authorization)
        key = hashlib.sha256(token.encode("utf-8")).hexdigest()
        now = self._clock()
        with self._lock:
            known = self._known.get(key)
            if known is not None and known[1] > now:
                return known[0]
        reviewed = self._review(token)  # outside the lock: a slow review must not block others
        if reviewed is None:
            raise Unauthenticated(self._refusal)
        caller = Caller(reviewed.username, frozenset(reviewed.groups))
        with self._lock:
            self._known[key] = (caller, now + self._ttl)
            self._known.move_to_end(key)
            while len(self._known) > self._max_entries:
                self._known.popitem(last=False)
        return caller


def bearer_token(authorization: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; Unauthenticated if absent."""
    if not authorization:
        raise Unauthenticated("this request needs an 'Authorization: Bearer <token>' header")
    if not authorization[: len(_BEARER)].lower() == _BEARER:
        raise Unauthenticated("the Authorization header must use the Bearer scheme")
    if authorization.lower().count(_BEARER) > 1:
        # The server joins a header sent twice with a comma: two tokens, and no telling whose call it is.
        raise Unauthenticated("the Authorization header holds two tokens (was it sent twice?); send one")
    token = authorization[len(_BEARER) :].strip()
    if not token or len(token) > _MAX_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise Unauthenticated("the bearer token is empty or malformed")
    return token
