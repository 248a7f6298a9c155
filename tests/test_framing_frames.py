"""The sans-IO framing core: length-prefixed frames."""

from __future__ import annotations

from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anytcpip import (
    NEED_DATA,
    FrameBuffer,
    FrameTooLargeError,
    IncompleteReadError,
)
from helpers import segments

# -- length-prefixed frames -----------------------------------------------------

PAYLOADS = [b"", b"a", bytes(range(200)), b"\x00\r\n" * 50]


def framed(payload: bytes, prefix: int, byteorder: Literal["big", "little"]) -> bytes:
    return len(payload).to_bytes(prefix, byteorder) + payload


@pytest.mark.parametrize("prefix", [1, 2, 4])
@pytest.mark.parametrize("byteorder", ["big", "little"])
def test_frames_fed_byte_by_byte(
    prefix: int, byteorder: Literal["big", "little"]
) -> None:
    frames = FrameBuffer()
    wire = b"".join(framed(p, prefix, byteorder) for p in PAYLOADS)
    received = []
    for byte in wire:
        frames.feed(bytes([byte]))
        while (frame := frames.next_frame(prefix, byteorder, 255)) is not NEED_DATA:
            received.append(frame)
            assert len(frames) == 0
    assert received == PAYLOADS
    assert frames.next_frame(prefix, byteorder, 255) is NEED_DATA
    assert len(frames) == 0


def test_frame_byteorder_is_honoured() -> None:
    frames = FrameBuffer()
    frames.feed(b"\x01\x00" + b"x" + b"\x00\x01" + b"y")
    assert frames.next_frame(2, "little", 1) == b"x"
    assert frames.next_frame(2, "big", 1) == b"y"
    frames.feed(b"\x00\x00\x01\x00" + b"z" * 256)
    assert frames.next_frame(4, "big", 256) == b"z" * 256
    frames.feed(b"\x00\x00\x01\x00")
    with pytest.raises(FrameTooLargeError):  # 1 << 16 in little-endian order
        frames.next_frame(4, "little", 1 << 15)
    frames.feed(b"")
    with pytest.raises(IncompleteReadError) as info:
        frames.next_frame(4, "big", 1 << 15)  # 256 in big-endian order
    assert (info.value.partial, info.value.expected) == (b"\x00\x00\x01\x00", 260)


@pytest.mark.parametrize("prefix", [1, 2, 4])
@pytest.mark.parametrize("byteorder", ["big", "little"])
def test_frame_too_large(prefix: int, byteorder: Literal["big", "little"]) -> None:
    frames = FrameBuffer(who="peer")
    frames.feed(framed(b"fits", prefix, byteorder))
    assert frames.next_frame(prefix, byteorder, 4) == b"fits"  # size == max: fine
    header = (5).to_bytes(prefix, byteorder)
    for piece in header:  # raised as soon as the prefix is complete
        assert len(frames) < prefix
        assert frames.next_frame(prefix, byteorder, 4) is NEED_DATA
        frames.feed(bytes([piece]))
    for _ in range(2):  # again and again: nothing is consumed
        with pytest.raises(FrameTooLargeError) as info:
            frames.next_frame(prefix, byteorder, 4)
        assert str(info.value) == (
            "peer: frame of 5 bytes is larger than max_frame_size=4"
        )
        assert (info.value.size, info.value.max_size) == (5, 4)
        assert isinstance(info.value, ValueError)
        assert frames.peek() == header
    frames.feed(b"hello")
    with pytest.raises(FrameTooLargeError):
        frames.next_frame(prefix, byteorder, 4)
    assert frames.peek() == header + b"hello"  # the frame's data stays buffered
    # A caller that knows better can drain it, or read it with a larger limit.
    assert frames.next_frame(prefix, byteorder, 5) == b"hello"
    frames.feed(framed(b"big!!", prefix, byteorder))
    with pytest.raises(FrameTooLargeError, match="max_frame_size=0"):
        frames.next_frame(prefix, byteorder, 0)
    assert frames.next_exactly(prefix + 5) == framed(b"big!!", prefix, byteorder)


def test_frame_too_large_message_without_who() -> None:
    frames = FrameBuffer()
    frames.feed((1000).to_bytes(2, "big"))
    with pytest.raises(FrameTooLargeError) as info:
        frames.next_frame(2, "big", 999)
    assert str(info.value) == "frame of 1000 bytes is larger than max_frame_size=999"


@pytest.mark.parametrize("prefix", [1, 2, 4])
@pytest.mark.parametrize("byteorder", ["big", "little"])
def test_end_of_stream_mid_prefix(
    prefix: int, byteorder: Literal["big", "little"]
) -> None:
    header = (7).to_bytes(prefix, byteorder)
    for cut in range(prefix):  # nothing, or part of the prefix
        frames = FrameBuffer(who="peer")
        if cut:
            frames.feed(header[:cut])
        assert frames.next_frame(prefix, byteorder, 100) is NEED_DATA
        frames.feed(b"")
        with pytest.raises(IncompleteReadError) as info:
            frames.next_frame(prefix, byteorder, 100)
        assert (info.value.partial, info.value.expected) == (header[:cut], prefix)
        assert "peer" in str(info.value)
        assert f"after {cut} bytes" in str(info.value)
        assert len(frames) == 0  # consumed, carried in .partial


@pytest.mark.parametrize("prefix", [1, 2, 4])
@pytest.mark.parametrize("byteorder", ["big", "little"])
def test_end_of_stream_mid_frame(
    prefix: int, byteorder: Literal["big", "little"]
) -> None:
    wire = framed(b"0123456", prefix, byteorder)
    for cut in range(prefix, len(wire)):  # the prefix and part of the data
        frames = FrameBuffer()
        for byte in wire[:cut]:
            frames.feed(bytes([byte]))
            assert frames.next_frame(prefix, byteorder, 100) is NEED_DATA
        frames.feed(b"")
        with pytest.raises(IncompleteReadError) as info:
            frames.next_frame(prefix, byteorder, 100)
        assert info.value.partial == wire[:cut]
        assert info.value.expected == prefix + 7  # the whole frame, prefix included
        assert len(frames) == 0
    # The whole frame, then end of stream: the frame, then an empty partial.
    frames = FrameBuffer()
    frames.feed(wire)
    frames.feed(b"")
    assert frames.next_frame(prefix, byteorder, 100) == b"0123456"
    with pytest.raises(IncompleteReadError) as info:
        frames.next_frame(prefix, byteorder, 100)
    assert (info.value.partial, info.value.expected) == (b"", prefix)


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.sampled_from([1, 2, 4]),
    byteorder=st.sampled_from(["big", "little"]),
    items=st.lists(
        st.one_of(
            st.tuples(st.just("frame"), st.binary(max_size=60)),
            st.tuples(
                st.just("line"), st.binary(max_size=30).filter(lambda b: b"\n" not in b)
            ),
            st.tuples(
                st.just("text"),
                st.text(max_size=20).filter(lambda t: "\n" not in t).map(str.encode),
            ),
        ),
        max_size=20,
    ),
    sizes=st.lists(st.integers(1, 16), max_size=80),
    cut=st.booleans(),
)
def test_frames_and_lines_in_any_segments(
    prefix: int,
    byteorder: Literal["big", "little"],
    items: list[tuple[str, bytes]],
    sizes: list[int],
    cut: bool,
) -> None:
    """Frames interleaved with lines, fed in any segments (byte by byte too).

    With ``cut``, the stream ends one byte short: the last item's read raises
    IncompleteReadError carrying exactly what arrived of it.
    """
    pieces = [
        framed(d, prefix, byteorder) if k == "frame" else d + b"\n" for k, d in items
    ]
    wire = b"".join(pieces)
    if cut and wire:
        wire = wire[:-1]
    frames = FrameBuffer()
    received: list[bytes] = []
    pending = list(items)

    def read_all() -> None:
        while pending:
            kind = pending[0][0]
            if kind == "frame":
                frame = frames.next_frame(prefix, byteorder, 60)
            elif kind == "line":
                frame = frames.next_line(b"\n", strip=True)
            else:
                text = frames.next_text(b"\n", "utf-8")
                frame = text if text is NEED_DATA else text.encode()
            if frame is NEED_DATA:
                return
            assert isinstance(frame, bytes)
            received.append(frame)
            pending.pop(0)

    for chunk in segments(wire, sizes):
        frames.feed(chunk)
        read_all()
    frames.feed(b"")
    if cut and items:
        with pytest.raises(IncompleteReadError) as info:
            read_all()
        assert received == [d for _, d in items[:-1]]
        arrived = pieces[-1][:-1]
        assert info.value.partial == arrived
        if items[-1][0] != "frame":
            assert info.value.expected is None
        elif len(arrived) < prefix:  # the length itself is cut short
            assert info.value.expected == prefix
        else:
            assert info.value.expected == prefix + len(items[-1][1])
    else:
        read_all()
        assert received == [d for _, d in items]
    assert len(frames) == 0
