"""The sans-IO framing core: properties over any messages, segments and reads."""

from __future__ import annotations

import ctypes
from functools import partial
from typing import Any, Literal, cast

from hypothesis import given, settings
from hypothesis import strategies as st

from anytcpip import (
    NEED_DATA,
    FrameBuffer,
    FrameTooLargeError,
    IncompleteReadError,
    LimitOverrunError,
)
from helpers import drain_lines, segments

AtEof = Literal["raise", "partial"]

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


def read_into_view(frames: FrameBuffer, size: int) -> object:
    """``next_into_view`` a byte view of a fresh array; its bytes if filled."""
    target = (ctypes.c_ubyte * size)()
    result = frames.next_into_view(memoryview(target).cast("B"), size)
    return bytes(target) if result is True else result


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
        st.tuples(st.just("into_view"), st.integers(1, 6) | st.integers(1, 30)),
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
        elif op == "into_view":
            check(partial(read_into_view, frames, arg), partial(model.exactly, arg))
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
