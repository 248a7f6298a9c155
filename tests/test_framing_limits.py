"""Property-based tests of max_line_length in the sans-IO framing core."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from anytcpip import NEED_DATA, FrameBuffer, LimitOverrunError


@settings(max_examples=300, deadline=None)
@given(
    limit=st.integers(1, 200),
    length=st.integers(0, 400),
    terminator=st.sampled_from([b"\n", b"\r\n", b"\r\n\x03"]),
    sizes=st.lists(st.integers(1, 64), min_size=1, max_size=30),
)
def test_a_line_is_returned_iff_it_fits_and_overruns_are_caught_early(
    limit: int, length: int, terminator: bytes, sizes: list[int]
) -> None:
    """Fed in any segments, a line comes out whole iff it is at most ``limit``.

    A longer one raises ``LimitOverrunError`` no later than when
    ``limit + len(terminator)`` bytes without a terminator have arrived, so
    memory never depends on what the peer sends.
    """
    line = b"x" * length
    wire = line + terminator
    frames = FrameBuffer(max_line_length=limit)
    fed = 0
    result: object = NEED_DATA
    index = 0
    while fed < len(wire):
        size = sizes[index % len(sizes)]
        index += 1
        frames.feed(wire[fed : fed + size])
        fed = min(fed + size, len(wire))
        try:
            result = frames.next_line(terminator)
        except LimitOverrunError as exc:
            assert length > limit, "a line that fits was refused"
            assert min(fed, length) <= limit + len(terminator) + max(sizes), (
                "the overrun was noticed late"
            )
            assert exc.consumed > limit
            return
        if result is not NEED_DATA:
            break
        assert fed < limit + len(terminator) or length <= limit, (
            f"{fed} bytes buffered without a terminator and no LimitOverrunError"
        )
    assert length <= limit, "an over-long line was returned"
    assert result == wire
    assert len(frames) == 0
