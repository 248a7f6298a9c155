"""The sans-IO framing core: fixed-size reads (``next_exactly``, structs)."""

from __future__ import annotations

import ctypes

import pytest

from anytcpip import (
    NEED_DATA,
    FrameBuffer,
    IncompleteReadError,
)

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


def test_fill_view_takes_a_whole_struct_or_nothing_and_never_raises() -> None:
    frames = FrameBuffer()
    target = ctypes.create_string_buffer(4)
    view = memoryview(target).cast("B")[:4]
    frames.feed(b"ab\ncd\nef")
    assert frames.next_text(b"\n", "ascii") == "ab"  # "cd" is split off
    assert frames.fill_view(view, 4) is True  # the split line comes first
    assert target.raw[:4] == b"cd\ne"
    assert frames.fill_view(view, 4) is False  # "f": too short, kept
    frames.feed(b"ghi")
    assert frames.fill_view(view, 4) is True
    assert target.raw[:4] == b"fghi"
    frames.feed(b"jk")  # kept as a chunk: the buffer was empty
    assert frames.fill_view(view, 4) is False
    frames.feed(b"")  # end of stream, "jk" left
    assert frames.fill_view(view, 4) is False  # no IncompleteReadError here
    assert len(frames) == 2
    with pytest.raises(IncompleteReadError):
        frames.next_into_view(view, 4)


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
