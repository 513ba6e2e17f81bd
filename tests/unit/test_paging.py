"""The choice of the next window of creation time (in seconds) a newest-first listing reads.

These choices only decide how many requests a listing makes (tests/integration/
test_listing_windows.py checks the pages against reading everything); what they must
guarantee is that a listing ends: a narrowed window is strictly inside the last one, a
widened one strictly below it.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from jobfn._paging import Windows, decode_position, encode_position, widened_lower

NOW = 1_764_860_000
keys = st.integers(min_value=1, max_value=NOW)


@given(
    steps=st.lists(
        st.tuples(st.booleans(), st.lists(keys, min_size=1, max_size=30), st.integers(0, 40)), max_size=30
    ),
    wanted=st.integers(min_value=2, max_value=1001),
    bounded=st.booleans(),
)
def test_every_window_is_inside_the_last_over_full_one_or_below_the_last_read_one(
    steps: list[tuple[bool, list[int], int]], wanted: int, bounded: bool
) -> None:
    windows = Windows(NOW if bounded else None, wanted, read_limit=1000)
    for overfull, drawn, kept in steps:
        lower, upper = windows.lower, windows.upper
        # What a read of [lower, upper) can return: keys inside the window.
        inside = [k for k in drawn if (lower is None or k >= lower) and (upper is None or k < upper)]
        if overfull:
            if not inside or (lower is not None and upper is not None and upper - lower <= 1):
                continue  # the store reads a one-millisecond window whole
            windows.overfull(inside)
            assert lower is None or (windows.lower is not None and windows.lower > lower)
            assert windows.upper == upper
        else:
            if windows.read_whole(inside[:kept]):
                return
            assert windows.upper == lower  # everything from here up is read
            assert windows.lower is None or windows.lower < lower
        assert windows.lower is None or windows.upper is None or windows.lower < windows.upper


def test_a_random_sample_starts_the_next_window_at_its_newest_job() -> None:
    # 45,000 jobs over ten hours, sampled evenly: about 45 are as new as the newest sampled.
    sample = [NOW - 36_000 + i * 36 for i in range(1000)]
    windows = Windows(None, 101, read_limit=1000)
    windows.overfull(sample)
    assert (windows.lower, windows.upper) == (max(sample), None)
    # 45 read there, one of them sampled: the 56 still needed take two sampled jobs' worth
    # (1.5 x 56 / 45), the next two older than it.
    assert not windows.read_whole([max(sample)] * 45)
    assert (windows.lower, windows.upper) == (sorted(sample)[-3], max(sample))


def test_jobs_sampled_from_the_bottom_size_the_window_by_their_density() -> None:
    # Names in time order: the first 1,000 by name were the oldest, a second apart.
    sample = list(range(NOW - 3_600_000, NOW - 3_599_000))
    windows = Windows(NOW, 101, read_limit=1000)
    windows.overfull(sample)
    assert windows.lower == NOW - 152  # 1.5 x 101 jobs at one a second


@given(
    lower=st.integers(min_value=2, max_value=NOW),
    span=st.integers(min_value=1, max_value=10**10),
    eligible=st.integers(min_value=0, max_value=1000),
    needed=st.integers(min_value=1, max_value=1001),
    floor_gap=st.none() | st.integers(min_value=1, max_value=10**10),
)
def test_a_widened_window_lies_below_the_last_and_not_below_the_floor(
    lower: int, span: int, eligible: int, needed: int, floor_gap: int | None
) -> None:
    floor = None if floor_gap is None else lower - floor_gap
    widened = widened_lower(lower, span, eligible, needed, floor)
    if widened is None:  # everything older
        assert floor is None
        return
    assert widened < lower
    assert floor is None or widened >= floor


def test_an_empty_window_is_followed_by_one_sixteen_times_wider() -> None:
    assert widened_lower(NOW, 1000, 0, 101, None) == NOW - 16_000


def test_a_token_names_a_position() -> None:
    assert decode_position(encode_position((NOW, "echo-abc"))) == (NOW, "echo-abc")
