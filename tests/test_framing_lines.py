"""The sans-IO framing core: terminated lines and text, fed byte by byte."""

from __future__ import annotations

import asyncio
import ctypes
import time
from typing import Any

import pytest

from anytcpip import (
    NEED_DATA,
    FrameBuffer,
    FrameTooLargeError,
    IncompleteReadError,
    LimitOverrunError,
)

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
