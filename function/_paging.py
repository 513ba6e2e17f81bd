"""Page tokens: one codec for every listing's opaque token, and the newest-first job position.

A token names a position, not an offset, so jobs created while a caller pages never
shift or repeat what a later page holds.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
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


# --- windows of creation time ---------------------------------------------------------------
#: A window aims at this many times the jobs still needed (its estimates are rough).
_MARGIN = 1.5
#: A window that held too few, with no sampled job left to size the next, is followed by
#: one at most this many times as wide.
_MAX_GROWTH = 16


class Windows:
    """The windows of creation time [lower, upper) one newest-first listing reads, newest
    first, in whole seconds (a job's ``created``).

    The API server walks the whole namespace for every request (it keeps no index of
    labels), so what a listing costs at 50,000 jobs is its number of requests; this
    chooses each window from what the reads before it showed. It only decides speed:
    a window is read whole (``read_whole``) or narrowed (``overfull``), never used in
    part, and a listing that needs more windows than it should reads the rest whole.

    The first window has no bounds. When a window holds more jobs than one read returns,
    the jobs the read did return are the first by name: about a random sample of the
    window when names end in a random suffix, as jobfn's do. About one sample's share of
    the window is as new as its newest job, so the next window starts at that job's
    second; the sample then sizes each older window: the jobs read per sampled job so far
    tell how many sampled jobs' worth the jobs still needed take.
    """

    def __init__(self, upper: int | None, wanted: int, read_limit: int) -> None:
        self.lower: int | None = None
        self.upper = upper
        self._wanted = wanted
        self._read_limit = read_limit
        self._found = 0
        self._sample: list[int] = []  # newest first: keys an over-full window returned
        self._floor: int | None = None  # the bottom of the last over-full window

    def overfull(self, keys: Sequence[int]) -> None:
        """The window held more jobs than a read returns; ``keys`` are those it returned
        (the eligible ones', or all when none was eligible)."""
        self._floor = self.lower
        self._sample = sorted(keys, reverse=True)
        # From the newest sampled job's second on: the jobs read there per sampled job in
        # it size the windows after it. (Its second holds the bottom: it cannot narrow.)
        lower = self._sample[0] if self.lower is None or self._sample[0] > self.lower else self._sample[0] + 1
        if self.upper is not None:
            # Names in time order sample the oldest: then their density sizes the window.
            span = self._sample[0] - self._sample[-1] + 1
            lower = max(lower, self.upper - int(_MARGIN * self._needed * span / len(self._sample)) - 1)
            lower = min(lower, self.upper - 1)
        self.lower = lower

    def read_whole(self, eligible_keys: Sequence[int]) -> bool:
        """The window was read whole and these of its jobs kept; True when the listing has
        all it needs (enough jobs, or every one)."""
        self._found += len(eligible_keys)
        lower, upper = self.lower, self.upper
        if lower is None or self._found >= self._wanted:
            return True
        if self._floor is not None and self._floor >= lower:
            self._floor = None  # everything down to it is read
        sampled = sum(1 for key in self._sample if key >= lower and (upper is None or key < upper))
        below = [key for key in self._sample if key < lower]
        if below:
            per_sampled = max(1.0, len(eligible_keys) / max(sampled, 1))
            count = min(
                len(below),
                max(1, math.ceil(_MARGIN * self._needed / per_sampled)),
                max(1, int(0.8 * self._read_limit / per_sampled)),
            )
            self.lower = below[count - 1]
        else:
            newest = max(eligible_keys, default=None)
            span = (newest + 1 if newest is not None else upper if upper is not None else lower + 1) - lower
            self.lower = widened_lower(lower, max(span, 1), len(eligible_keys), self._needed, self._floor)
        self.upper = lower
        return False

    @property
    def _needed(self) -> int:
        return self._wanted - self._found


def widened_lower(lower: int, span: int, eligible: int, needed: int, floor: int | None) -> int | None:
    """The lower bound of the next, older window below ``lower``, after the window above it
    was read whole: ``eligible`` jobs kept over ``span`` seconds (from ``lower`` to the newest
    job read, or the window's width when it held none), ``needed`` more wanted. None reads
    everything older.

    The window is sized by the density just read, and never reaches below ``floor`` (the
    bottom of a window that held too many) by more than half the way there.
    """
    growth = _MAX_GROWTH if eligible == 0 else min(_MAX_GROWTH, max(1.0, _MARGIN * needed / eligible))
    candidate = lower - max(1, int(span * growth))
    if floor is not None:
        return max(candidate, floor + (lower - floor) // 2)
    return None if candidate <= 0 else candidate
