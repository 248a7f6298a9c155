"""The sans-IO framing core, tested synchronously, byte by byte."""

from __future__ import annotations

import asyncio
import ctypes
import time
from collections.abc import Iterator
from functools import partial
from typing import Any, Literal, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anytcpip import (
    NEED_DATA,
    FrameBuffer,
    FrameTooLargeError,
    IncompleteReadError,
    LimitOverrunError,
)

AtEof = Literal["raise", "partial"]


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


def segments(wire: bytes, sizes: list[int]) -> Iterator[bytes]:
    """Cut ``wire`` into pieces of ``sizes`` bytes, then the rest, as TCP might."""
    position = 0
    for size in [*sizes, len(wire)]:
        if position >= len(wire):
            return
        yield wire[position : position + size]
        position += size


@settings(max_examples=200, deadline=None)
@given(data=messages_and_terminator(), sizes=st.lists(st.integers(1, 64), max_size=50))
def test_any_messages_any_segments_come_out_identical(
    data: tuple[list[bytes], bytes], sizes: list[int]
) -> None:
    messages, terminator = data
    wire = b"".join(m + terminator for m in messages)
    frames = FrameBuffer(max_line_length=1000)
    received: list[bytes] = []
    for chunk in segments(wire, sizes):
        frames.feed(chunk)
        received.extend(drain_lines(frames, terminator))
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
    for chunk in segments(wire, sizes):
        frames.feed(chunk)
        while (
            pending and (frame := frames.next_exactly(len(pending[0]))) is not NEED_DATA
        ):
            assert isinstance(frame, bytes)
            received.append(frame)
            pending.pop(0)
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
    for chunk in segments(wire, sizes):
        frames.feed(chunk)
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
    assert received == [data for _, data in items]


# -- next_text splits every buffered line at once ------------------------------
#
# The split lines logically precede the rest of the buffer: every other read
# must see exactly the bytes it would have seen without splitting.

BATCH = b"one\r\ntwo\r\nthree\r\nfour\r\nrest"


def drain(frames: FrameBuffer) -> bytes:
    """Everything buffered, by ``next_some`` (which may return less than asked)."""
    data = b""
    while (chunk := frames.next_some(1000)) not in (b"", NEED_DATA):
        assert isinstance(chunk, bytes)
        data += chunk
    return data


def split_once() -> FrameBuffer:
    frames = FrameBuffer()
    frames.feed(BATCH)
    assert frames.next_text(b"\r\n", "utf-8") == "one"
    return frames


def test_split_lines_come_out_in_order_and_len_counts_them() -> None:
    frames = split_once()
    assert len(frames) == len(BATCH) - 5
    assert frames.next_text(b"\r\n", "utf-8") == "two"
    assert len(frames) == len(BATCH) - 10
    frames.feed(b"\r\nfive\r\n")
    assert [frames.next_text(b"\r\n", "utf-8") for _ in range(4)] == [
        "three",
        "four",
        "rest",
        "five",
    ]
    assert frames.next_text(b"\r\n", "utf-8") is NEED_DATA
    assert len(frames) == 0


REST = b"two\r\nthree\r\nfour\r\nrest"  # what split_once() leaves


@pytest.mark.parametrize(
    ("read", "expected", "consumed"),
    [
        (lambda f: f.peek(), REST, 0),
        (lambda f: f.next_line(b"\r\n"), b"two\r\n", 5),
        (lambda f: f.next_line(b"\n", strip=True), b"two\r", 5),
        (lambda f: f.next_line(b"e\r"), b"two\r\nthree\r", 11),
        (lambda f: f.next_line(b"x", at_eof="partial"), NEED_DATA, 0),
        (lambda f: f.next_exactly(7), b"two\r\nth", 7),
        (lambda f: f.next_exactly(len(REST)), REST, len(REST)),
        (lambda f: f.next_exactly(len(REST) + 1), NEED_DATA, 0),
        (lambda f: f.next_some(2), b"tw", 2),
        (lambda f: f.next_some(100), REST, len(REST)),
        (lambda f: f.next_frame(1), NEED_DATA, 0),  # b"t" is 116
        (lambda f: f.next_frame(1, "big", 3), FrameTooLargeError, 0),
        (lambda f: f.next_text(b"\n", "utf-8"), "two\r", 5),
        (lambda f: f.next_text(b"o", "utf-8"), "tw", 3),
        (lambda f: f.next_text(b"\r\n", "ascii", b"two"), "three", 12),
        # An equal terminator, not the same object:
        (lambda f: f.next_text(bytes(bytearray(b"\r\n")), "utf-8"), "two", 5),
    ],
)
def test_other_reads_see_the_split_lines_as_bytes(
    read: Any, expected: object, consumed: int
) -> None:
    frames = split_once()
    if isinstance(expected, type):
        with pytest.raises(expected):
            read(frames)
    else:
        assert read(frames) == expected
    rest = REST[consumed:]
    assert len(frames) == len(rest)
    assert frames.peek() == rest
    frames.feed(b"")
    assert drain(frames) == rest
    assert frames.next_some(1000) == b""


def test_next_into_sees_the_split_lines() -> None:
    frames = split_once()
    target = (ctypes.c_char * 2)()  # fewer bytes than are left unsplit
    assert frames.next_into(target, 2) is True
    assert target.raw == b"tw"
    assert frames.next_text(b"\r\n", "utf-8") == "o"
    target = (ctypes.c_char * 6)()
    assert frames.next_into(target, 6) is True
    assert target.raw == b"three\r"
    assert frames.next_text(b"\r\n", "utf-8") == "\nfour"
    assert len(frames) == 4


@pytest.mark.parametrize("rest", [b"", b"re", b"rest\r"])
def test_split_lines_precede_data_fed_later(rest: bytes) -> None:
    """Unsplitting keeps order whether the rest is a kept chunk or buffered."""
    frames = FrameBuffer()
    frames.feed(b"one\ntwo\nthree\n" + rest)
    assert frames.next_text(b"\n", "utf-8") == "one"
    frames.feed(b"X")  # a kept chunk, or appended to the buffer
    frames.feed(bytearray(b"Y"))  # always copied into the buffer
    frames.feed(b"Z")
    expected = b"two\nthree\n" + rest + b"XYZ"
    assert len(frames) == len(expected)
    assert frames.peek() == expected
    assert frames.next_some(4) == expected[:4]
    assert frames.peek() == expected[4:]
    assert frames.next_text(b"\n", "utf-8") == "three"
    assert drain(frames) == rest + b"XYZ"


def test_bytes_fed_while_split_lines_wait_follow_them() -> None:
    frames = FrameBuffer()
    frames.feed(b"one\ntwo\n")  # ends with a terminator: nothing left over
    assert frames.next_text(b"\n", "utf-8") == "one"
    frames.feed(b"three\n")
    frames.feed(b"four")
    assert frames.peek() == b"two\nthree\nfour"
    assert frames.next_some(100) == b"two\nthree\nfour"  # all: one buffer


def test_self_overlapping_terminators_split_like_repeated_find() -> None:
    for terminator, wire in [
        (b"aa", b"xaaay aaaaaz aaa"),
        (b"\r\n\r", b"a\r\n\r\n\rb\r\n\r\r\n\r\n"),
        (b"aba", b"ababababa-aba"),
    ]:
        expected = []
        rest = wire
        while (idx := rest.find(terminator)) >= 0:
            expected.append(rest[:idx].decode())
            rest = rest[idx + len(terminator) :]
        frames = FrameBuffer()
        frames.feed(wire)
        got = []
        while (text := frames.next_text(terminator, "utf-8")) is not NEED_DATA:
            got.append(text)
        assert got == expected, terminator
        assert frames.peek() == rest


def test_an_over_long_line_among_split_ones_raises_when_reached() -> None:
    frames = FrameBuffer(max_line_length=5)
    long = b"x" * 6 + b"\n"
    frames.feed(b"ab\ncd\n" + long + b"ef\n")
    assert frames.next_text(b"\n", "utf-8") == "ab"
    assert frames.next_text(b"\n", "utf-8") == "cd"
    for _ in range(2):  # raised again and again: nothing is consumed
        with pytest.raises(LimitOverrunError) as info:
            frames.next_text(b"\n", "utf-8")
        assert info.value.consumed == len(long) + 3
        assert frames.peek() == long + b"ef\n"
    assert frames.next_exactly(len(long)) == long  # drain it
    assert frames.next_text(b"\n", "utf-8") == "ef"
    # A line of exactly max_line_length among split ones is fine.
    frames.feed(b"a\n12345\nb\n")
    assert [frames.next_text(b"\n", "utf-8") for _ in range(3)] == ["a", "12345", "b"]


def test_an_over_long_rest_raises_after_the_split_lines() -> None:
    frames = FrameBuffer(max_line_length=5)
    frames.feed(b"ab\ncd\n" + b"y" * 6)
    assert frames.next_text(b"\n", "utf-8") == "ab"
    assert frames.next_text(b"\n", "utf-8") == "cd"
    with pytest.raises(LimitOverrunError):
        frames.next_text(b"\n", "utf-8")
    assert frames.peek() == b"y" * 6


def test_a_bad_split_line_raises_once_and_is_consumed() -> None:
    frames = FrameBuffer()
    frames.feed(b"ok\n\xff\xfe\nnext\n\xc3\nlast\n")
    assert frames.next_text(b"\n", "utf-8") == "ok"
    with pytest.raises(UnicodeDecodeError):
        frames.next_text(b"\n", "utf-8")
    assert len(frames) == len(b"next\n\xc3\nlast\n")
    assert frames.next_text(b"\n", "utf-8") == "next"
    with pytest.raises(UnicodeDecodeError):
        frames.next_text(b"\n", "utf-8")
    assert frames.next_text(b"\n", "latin-1") == "last"
    assert len(frames) == 0


def test_heartbeats_are_skipped_among_split_lines() -> None:
    frames = FrameBuffer()
    wire = b"HB\na\nHB\nHB\nb\nHB\n"
    frames.feed(wire)
    assert frames.next_text(b"\n", "utf-8", b"HB") == "a"
    assert frames.next_text(b"\n", "utf-8", b"HB") == "b"
    assert frames.next_text(b"\n", "utf-8", b"HB") is NEED_DATA
    assert len(frames) == 0
    frames.feed(wire)
    assert frames.next_text(b"\n", "utf-8", b"HB") == "a"
    assert frames.next_text(b"\n", "utf-8") == "HB"  # skip is per call
    assert frames.next_text(b"\n", "utf-8", b"HB") == "b"


def test_split_lines_come_before_end_of_stream() -> None:
    frames = split_once()
    frames.feed(b"")
    assert [frames.next_text(b"\r\n", "utf-8") for _ in range(3)] == [
        "two",
        "three",
        "four",
    ]
    with pytest.raises(IncompleteReadError) as info:
        frames.next_text(b"\r\n", "utf-8")
    assert (info.value.partial, info.value.expected) == (b"rest", None)
    assert len(frames) == 0


def test_text_search_is_linear() -> None:
    """A long line fed in small pieces between short ones is scanned once."""
    frames = FrameBuffer(max_line_length=1 << 22)
    frames.feed(b"a\nb\nc")
    assert frames.next_text(b"\n", "utf-8") == "a"
    assert frames.next_text(b"\n", "utf-8") == "b"
    start = time.perf_counter()
    for _ in range(100_000):
        assert frames.next_text(b"\n", "utf-8") is NEED_DATA
        frames.feed(b"cd")
    frames.feed(b"\nshort\n")
    assert len(frames.next_text(b"\n", "utf-8")) == 200_001  # type: ignore[arg-type]
    assert frames.next_text(b"\n", "utf-8") == "short"
    assert time.perf_counter() - start < 10


class Model:
    """The reference: one ``bytes`` buffer, every read a plain left-to-right find."""

    def __init__(self, max_line_length: int) -> None:
        self.buf = b""
        self.eof = False
        self.limit = max_line_length

    def take(self, n: int) -> bytes:
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def line(
        self, terminator: bytes, at_eof: str = "raise", strip: bool = False
    ) -> object:
        idx = self.buf.find(terminator)
        if 0 <= idx <= self.limit:
            data = self.take(idx + len(terminator))
            return data[:idx] if strip else data
        may_complete = any(
            terminator.startswith(self.buf[i:]) for i in range(self.limit + 1)
        )
        if len(self.buf) > self.limit and not may_complete:
            return LimitOverrunError("", len(self.buf))
        if self.eof:
            if at_eof == "partial":
                return self.take(len(self.buf))
            return IncompleteReadError(self.take(len(self.buf)), None)
        return NEED_DATA

    def text(self, terminator: bytes, skip: bytes | None) -> object:
        while True:
            data = self.line(terminator, strip=True)
            if not isinstance(data, bytes):
                return data
            if data != skip:
                try:
                    return data.decode()
                except UnicodeDecodeError as exc:
                    return exc

    def exactly(self, n: int) -> object:
        if len(self.buf) >= n:
            return self.take(n)
        if self.eof:
            return IncompleteReadError(self.take(len(self.buf)), n)
        return NEED_DATA

    def frame(self, prefix: int, byteorder: Literal["big", "little"]) -> object:
        if len(self.buf) < prefix:
            if self.eof:
                return IncompleteReadError(self.take(len(self.buf)), prefix)
            return NEED_DATA
        size = int.from_bytes(self.buf[:prefix], byteorder)
        if size > FRAME_MAX:
            return FrameTooLargeError("", size, FRAME_MAX)
        if len(self.buf) >= prefix + size:
            return self.take(prefix + size)[prefix:]
        if self.eof:
            return IncompleteReadError(self.take(len(self.buf)), prefix + size)
        return NEED_DATA


FRAME_MAX = 40


def read_into(frames: FrameBuffer, size: int) -> object:
    """``next_into`` a fresh ``c_char`` array; its bytes if filled."""
    target = (ctypes.c_char * size)()
    result = frames.next_into(target, size)
    return target.raw if result is True else result


def outcome(call: Any) -> object:
    try:
        return call()
    except (LimitOverrunError, IncompleteReadError, FrameTooLargeError) as exc:
        return exc
    except UnicodeDecodeError as exc:
        return exc


def same(got: object, expected: object) -> bool:
    if isinstance(expected, BaseException):
        if type(got) is not type(expected):
            return False
        fields = ("partial", "expected", "consumed", "size", "max_size")
        return all(
            getattr(got, f, None) == getattr(expected, f, None) for f in fields
        ) and (not isinstance(got, UnicodeDecodeError) or got.object == expected.object)  # type: ignore[attr-defined]
    return type(got) is type(expected) and got == expected


# Self-overlapping terminators included: the split must match repeated find().
any_terminator = st.one_of(
    st.sampled_from([b"\n", b"\r\n", b"aa", b"aba", b"\r\n\r", b"aaa"]),
    st.binary(min_size=1, max_size=3).map(lambda t: t.replace(b"\x00", b"a")),
)
# Few distinct bytes, so terminators (and pieces of them) occur everywhere.
text_bytes = st.lists(
    st.sampled_from([b"a", b"b", b"\r", b"\n", b"\xc3\xa9", b"\xff", b"\x05"]),
    max_size=12,
).map(b"".join)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("feed"), st.integers(1, 40)),
        st.tuples(st.just("feed_messages"), st.tuples(st.integers(1, 4), st.just(0))),
        # Feed two messages or more (and maybe a bit of the next), then read
        # one with next_text: the others are split off, and the next read
        # must find them.
        st.tuples(st.just("batch"), st.tuples(st.integers(2, 5), st.integers(0, 8))),
        st.tuples(st.just("batch"), st.tuples(st.integers(2, 5), st.integers(0, 8))),
        st.tuples(st.just("text"), st.booleans()),
        st.tuples(st.just("text"), st.booleans()),
        st.tuples(st.just("text"), st.booleans()),
        st.tuples(st.just("line"), st.sampled_from(["raise", "partial"])),
        st.tuples(st.just("other_line"), st.booleans()),
        st.tuples(st.just("other_text"), st.booleans()),
        st.tuples(st.just("exactly"), st.integers(0, 6) | st.integers(0, 30)),
        st.tuples(st.just("some"), st.integers(0, 6) | st.integers(0, 30)),
        st.tuples(st.just("into"), st.integers(1, 6) | st.integers(1, 30)),
        st.tuples(st.just("frame"), st.sampled_from([1, 2])),
        st.tuples(st.just("peek"), st.just(0)),
        st.tuples(st.just("eof"), st.just(0)),
    ),
    max_size=60,
)


@settings(max_examples=600, deadline=None)
@given(
    terminator=any_terminator,
    other=any_terminator,
    messages=st.lists(text_bytes, max_size=25),
    skip=st.sampled_from([None, b"", b"a", b"ab"]),
    limit=st.sampled_from([3, 8, 1000, 1000, 1000]),
    ops=operations,
)
def test_any_reads_in_any_order_see_the_same_bytes_as_a_plain_buffer(
    terminator: bytes,
    other: bytes,
    messages: list[bytes],
    skip: bytes | None,
    limit: int,
    ops: list[tuple[str, Any]],
) -> None:
    """next_text splits lines in batches; no other read may notice."""
    wire = b"".join(m + terminator for m in messages)
    ends = [len(wire)] * 5  # where the messages end: feeds that end there too
    for message in reversed(messages):
        ends.insert(0, ends[0] - len(message) - len(terminator))
    frames = FrameBuffer(max_line_length=limit)
    model = Model(limit)
    position = 0

    def check(call: Any, reference: Any) -> None:
        got, expected = outcome(call), reference()
        assert same(got, expected), (got, expected)
        assert len(frames) == len(model.buf)

    steps: list[tuple[str, Any]] = []
    for op, arg in [*ops, ("feed", len(wire)), ("eof", 0), *ops]:
        if op == "batch":
            steps += [("feed_messages", arg), ("text", False)]
        else:
            steps.append((op, arg))
    for op, arg in steps:
        if op == "feed_messages":  # up to the end of the k-th next message
            k, extra = arg
            later = [end for end in ends if end > position]
            op, arg = "feed", later[k - 1] - position + extra if later else 1
        if op == "feed" and not model.eof and position < len(wire):
            chunk = wire[position : position + arg]
            position += len(chunk)
            frames.feed(chunk if arg % 3 else bytearray(chunk))
            model.buf += chunk
        elif op == "eof" and not model.eof and position >= len(wire):
            frames.feed(b"")
            model.eof = True
        elif op in ("text", "other_text"):
            term = terminator if op == "text" else other
            this_skip = skip if arg else None
            check(
                partial(frames.next_text, term, "utf-8", this_skip),
                partial(model.text, term, this_skip),
            )
        elif op in ("line", "other_line"):
            term, at_eof, strip = (
                (terminator, arg, False) if op == "line" else (other, "raise", arg)
            )
            check(
                partial(
                    frames.next_line, term, at_eof=cast(AtEof, at_eof), strip=strip
                ),
                partial(model.line, term, at_eof, strip),
            )
        elif op == "exactly":
            check(partial(frames.next_exactly, arg), partial(model.exactly, arg))
        elif op == "into":
            check(partial(read_into, frames, arg), partial(model.exactly, arg))
        elif op == "frame":
            order: Literal["big", "little"] = "big" if arg == 1 else "little"
            check(
                partial(frames.next_frame, arg, order, FRAME_MAX),
                partial(model.frame, arg, order),
            )
        elif op == "some":
            got = frames.next_some(arg)
            if not model.buf:
                assert got == (b"" if model.eof or arg == 0 else NEED_DATA)
            else:  # up to arg bytes; fewer only at a chunk boundary
                assert isinstance(got, bytes) and model.buf.startswith(got)
                assert len(got) == min(arg, len(model.buf)) or 0 < len(got) <= arg
                model.take(len(got))
            assert len(frames) == len(model.buf)
        elif op == "peek":
            assert frames.peek() == model.buf
    # Whatever is left comes out whole.
    assert frames.peek() == model.buf
    assert len(frames) == len(model.buf)


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
