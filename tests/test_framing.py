"""The sans-IO framing core, tested synchronously, byte by byte."""

from __future__ import annotations

import asyncio
import ctypes
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anytcpip import NEED_DATA, FrameBuffer, IncompleteReadError, LimitOverrunError


def drain_lines(frames: FrameBuffer, terminator: bytes) -> list[bytes]:
    lines = []
    while (line := frames.next_line(terminator)) is not NEED_DATA:
        assert isinstance(line, bytes)
        lines.append(line)
    return lines


# -- lines --------------------------------------------------------------------


@pytest.mark.parametrize("terminator", [b"\n", b"\r\n", b"\r\n\x03"])
def test_lines_fed_byte_by_byte(terminator: bytes) -> None:
    frames = FrameBuffer()
    messages = [b"first", b"", b"third message"]
    wire = b"".join(m + terminator for m in messages)
    received = []
    for byte in wire:
        frames.feed(bytes([byte]))
        line = frames.next_line(terminator)
        if line is not NEED_DATA:
            received.append(line)
    assert received == [m + terminator for m in messages]
    assert frames.next_line(terminator) is NEED_DATA
    assert len(frames) == 0


def test_terminator_split_across_feeds() -> None:
    frames = FrameBuffer()
    frames.feed(b"abc\r")
    assert frames.next_line(b"\r\n") is NEED_DATA
    frames.feed(b"\ndef")
    assert frames.next_line(b"\r\n") == b"abc\r\n"
    assert frames.next_line(b"\r\n") is NEED_DATA
    assert frames.peek() == b"def"


def test_utf8_character_split_across_feeds() -> None:
    frames = FrameBuffer()
    wire = "ends with half of the ö\r\n".encode()
    split = wire.index("ö".encode()) + 1
    frames.feed(wire[:split])
    assert frames.next_text(b"\r\n", "utf-8") is NEED_DATA
    frames.feed(wire[split:])
    assert frames.next_text(b"\r\n", "utf-8") == "ends with half of the ö"


def test_strip_and_text() -> None:
    frames = FrameBuffer()
    frames.feed(b"one\r\nheartbeat\r\ntwo\r\n\xff\r\nthree\r\n")
    assert frames.next_line(b"\r\n", strip=True) == b"one"
    assert frames.next_text(b"\r\n", "utf-8", skip=b"heartbeat") == "two"
    with pytest.raises(UnicodeDecodeError):
        frames.next_text(b"\r\n", "utf-8")
    assert frames.next_text(b"\r\n", "utf-8") == "three"  # the bad one was consumed


def test_partial_at_eof() -> None:
    frames = FrameBuffer()
    frames.feed(b"line\nrest")
    frames.feed(b"")
    assert frames.eof
    assert frames.next_line(b"\n", at_eof="partial") == b"line\n"
    assert frames.next_line(b"\n", at_eof="partial") == b"rest"
    assert frames.next_line(b"\n", at_eof="partial") == b""


def test_incomplete_line_at_eof() -> None:
    frames = FrameBuffer(who="test")
    frames.feed(b"no terminator")
    frames.feed(b"")
    with pytest.raises(IncompleteReadError) as info:
        frames.next_line(b"\r\n")
    assert info.value.partial == b"no terminator"
    assert info.value.expected is None
    assert isinstance(info.value, asyncio.IncompleteReadError)
    assert isinstance(info.value, EOFError)
    assert "test" in str(info.value) and "closed by the peer" in str(info.value)
    assert len(frames) == 0


# -- max_line_length -----------------------------------------------------------


def test_line_of_exactly_max_length_is_accepted() -> None:
    frames = FrameBuffer(max_line_length=10)
    frames.feed(b"x" * 10 + b"\r\n")
    assert frames.next_line(b"\r\n") == b"x" * 10 + b"\r\n"
    # The terminator may arrive later, in pieces.
    frames.feed(b"y" * 10)
    assert frames.next_line(b"\r\n") is NEED_DATA
    frames.feed(b"\r")
    assert frames.next_line(b"\r\n") is NEED_DATA  # could still complete
    frames.feed(b"\n")
    assert frames.next_line(b"\r\n") == b"y" * 10 + b"\r\n"


def test_limit_overrun_as_soon_as_proven() -> None:
    frames = FrameBuffer(max_line_length=10)
    frames.feed(b"x" * 10)
    assert frames.next_line(b"\n") is NEED_DATA
    frames.feed(b"x")  # 11 bytes, no "\n": too long already
    with pytest.raises(LimitOverrunError) as info:
        frames.next_line(b"\n")
    assert info.value.consumed == 11
    assert isinstance(info.value, asyncio.LimitOverrunError)
    assert "max_line_length=10" in str(info.value)
    # Nothing was consumed; the data can be drained.
    assert frames.next_some(100) == b"x" * 11


def test_limit_overrun_with_two_byte_terminator() -> None:
    frames = FrameBuffer(max_line_length=10)
    frames.feed(b"x" * 10 + b"x")
    with pytest.raises(LimitOverrunError):
        frames.next_line(b"\r\n")
    frames = FrameBuffer(max_line_length=10)
    frames.feed(b"x" * 11 + b"\r\n")  # terminator present but too late
    with pytest.raises(LimitOverrunError):
        frames.next_line(b"\r\n")


def test_search_is_linear() -> None:
    """A long line fed in small pieces is scanned once, not once per piece."""
    frames = FrameBuffer(max_line_length=1 << 22)
    start = time.perf_counter()
    for _ in range(100_000):
        frames.feed(b"ab")
        assert frames.next_line(b"\r\n") is NEED_DATA
    frames.feed(b"\r\n")
    assert len(frames.next_line(b"\r\n")) == 200_002  # type: ignore[arg-type]
    # Quadratic rescanning would take minutes; linear takes well under a second.
    assert time.perf_counter() - start < 10


# -- fixed sizes ---------------------------------------------------------------


def test_next_exactly_and_next_some() -> None:
    frames = FrameBuffer()
    assert frames.next_some(5) is NEED_DATA
    assert frames.next_exactly(0) == b""
    frames.feed(b"0123456789")
    assert frames.next_exactly(4) == b"0123"
    assert frames.next_exactly(7) is NEED_DATA
    assert frames.next_some(2) == b"45"
    assert frames.next_some(100) == b"6789"
    frames.feed(b"")
    assert frames.next_some(5) == b""


def test_next_exactly_at_eof() -> None:
    frames = FrameBuffer()
    frames.feed(b"abc")
    frames.feed(b"")
    with pytest.raises(IncompleteReadError) as info:
        frames.next_exactly(5)
    assert (info.value.partial, info.value.expected) == (b"abc", 5)


def test_next_into_fills_ctypes() -> None:
    class Sample(ctypes.Structure):
        _fields_ = [("a", ctypes.c_uint16), ("b", ctypes.c_int8 * 3)]

    frames = FrameBuffer()
    wire = bytes(Sample(513, (1, -1, 7)))
    sample = Sample()
    frames.feed(wire[:2])
    assert frames.next_into(sample, ctypes.sizeof(sample)) is NEED_DATA
    frames.feed(wire[2:])
    assert frames.next_into(sample, ctypes.sizeof(sample)) is True
    assert (sample.a, list(sample.b)) == (513, [1, -1, 7])


def test_frames() -> None:
    frames = FrameBuffer()
    frames.feed((3).to_bytes(2, "little") + b"ab")
    assert frames.next_frame(2, "little", 100) is NEED_DATA
    frames.feed(b"c" + (0).to_bytes(2, "little"))
    assert frames.next_frame(2, "little", 100) == b"abc"
    assert frames.next_frame(2, "little", 100) == b""


def test_bad_arguments() -> None:
    frames = FrameBuffer()
    with pytest.raises(ValueError, match="terminator"):
        frames.next_line(b"")
    with pytest.raises(ValueError):
        frames.next_exactly(-1)
    with pytest.raises(ValueError):
        frames.next_some(-1)
    with pytest.raises(ValueError, match="max_line_length"):
        FrameBuffer(max_line_length=0)
    frames.feed(b"")
    with pytest.raises(RuntimeError, match="after end of stream"):
        frames.feed(b"late")


# -- properties ----------------------------------------------------------------

terminators = st.binary(min_size=1, max_size=4)


@st.composite
def messages_and_terminator(draw: st.DrawFn) -> tuple[list[bytes], bytes]:
    terminator = draw(terminators)
    # No message may contain the terminator, nor make it appear early once
    # the terminator is appended (e.g. message b"a\r" with terminator b"\r\n").
    messages = draw(
        st.lists(
            st.binary(max_size=50).filter(
                lambda m: terminator not in (m + terminator)[:-1]
            ),
            max_size=20,
        )
    )
    return messages, terminator


@settings(max_examples=200, deadline=None)
@given(data=messages_and_terminator(), sizes=st.lists(st.integers(1, 64), max_size=50))
def test_any_messages_any_segments_come_out_identical(
    data: tuple[list[bytes], bytes], sizes: list[int]
) -> None:
    messages, terminator = data
    wire = b"".join(m + terminator for m in messages)
    frames = FrameBuffer(max_line_length=1000)
    received: list[bytes] = []
    position = 0
    for size in [*sizes, len(wire)]:
        chunk = wire[position : position + size]
        if chunk:  # an empty feed would mean end of stream
            frames.feed(chunk)
        position += size
        received.extend(drain_lines(frames, terminator))
        if position >= len(wire):
            break
    assert received == [m + terminator for m in messages]
    assert len(frames) == 0


@settings(max_examples=200, deadline=None)
@given(
    payloads=st.lists(st.binary(min_size=1, max_size=40), max_size=20),
    sizes=st.lists(st.integers(1, 64), max_size=50),
)
def test_fixed_size_frames_in_any_segments(
    payloads: list[bytes], sizes: list[int]
) -> None:
    wire = b"".join(payloads)
    frames = FrameBuffer()
    received: list[bytes] = []
    pending = list(payloads)
    position = 0
    for size in [*sizes, len(wire)]:
        chunk = wire[position : position + size]
        if chunk:  # an empty feed would mean end of stream
            frames.feed(chunk)
        position += size
        while (
            pending and (frame := frames.next_exactly(len(pending[0]))) is not NEED_DATA
        ):
            assert isinstance(frame, bytes)
            received.append(frame)
            pending.pop(0)
        if position >= len(wire):
            break
    assert received == payloads


@settings(max_examples=200, deadline=None)
@given(
    items=st.lists(
        st.one_of(
            st.tuples(
                st.just("line"), st.binary(max_size=30).filter(lambda b: b"\n" not in b)
            ),
            st.tuples(st.just("exact"), st.binary(min_size=1, max_size=30)),
        ),
        max_size=20,
    ),
    sizes=st.lists(st.integers(1, 16), max_size=80),
)
def test_interleaved_lines_and_exact_frames(
    items: list[tuple[str, bytes]], sizes: list[int]
) -> None:
    wire = b"".join(data + b"\n" if kind == "line" else data for kind, data in items)
    frames = FrameBuffer()
    received: list[bytes] = []
    pending = list(items)
    position = 0
    for size in [*sizes, len(wire)]:
        chunk = wire[position : position + size]
        if chunk:  # an empty feed would mean end of stream
            frames.feed(chunk)
        position += size
        while pending:
            kind, data = pending[0]
            frame = (
                frames.next_line(b"\n", strip=True)
                if kind == "line"
                else frames.next_exactly(len(data))
            )
            if frame is NEED_DATA:
                break
            assert isinstance(frame, bytes)
            received.append(frame)
            pending.pop(0)
        if position >= len(wire):
            break
    assert received == [data for _, data in items]
