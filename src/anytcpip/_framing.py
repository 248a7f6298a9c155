"""Sans-IO framing: split a byte stream into lines and fixed-size frames.

Rationale
---------
All parsing lives here, with no I/O and no anyio import, so it can be tested
synchronously, byte by byte, and so the I/O layer can parse many messages per
receive call without a scheduler round trip per message.

The buffer is a :class:`bytearray`; CPython deletes from its front in O(1)
amortized time, so consuming a frame never copies the rest. Chunks fed
while the buffer is empty are first kept as they are (``_chunks``) and copied
into the buffer only when a parse needs it: ``next_some`` hands them out
whole, so bulk reads cost no copy at all. Terminator search
resumes where the previous unsuccessful search stopped, so feeding a long line
one byte at a time costs O(n), not O(n**2).

Text reads (:meth:`FrameBuffer.next_text`, the hot path of ``read_str``)
split lines in batches: when a terminator is found, every complete line
buffered is cut off at once by ``bytes.split`` (in C) into a deque, and the
following calls pop from it, decoding each line (and skipping heartbeats)
only when it is popped, so an error surfaces exactly at the line that has
it. The split lines logically precede the rest of the buffer; any other read
puts them back first (``_unsplit``), so every method sees exactly the bytes
it would have seen without splitting.

A terminated read is bounded: as soon as the buffered bytes prove that the
message (without its terminator) is longer than ``max_line_length``,
:class:`LimitOverrunError` is raised and the data stays buffered.
"""

from __future__ import annotations

import ctypes
import enum
from collections import deque
from typing import Any, Final, Literal

from ._constants import DEFAULT_MAX_LINE_LENGTH
from ._exceptions import (
    FrameTooLargeError,
    IncompleteReadError,
    LimitOverrunError,
    prefixed,
)

__all__ = ["NEED_DATA", "FrameBuffer", "NeedData", "bytes_view", "fill_ctypes"]


def bytes_view(obj: Any, size: int) -> memoryview:
    """Return a writable view of the ``size`` bytes of a ctypes object.

    ``memoryview(obj).cast("B")``, whose ``obj`` is ``obj``; ``size`` must
    be ``ctypes.sizeof(obj)``.
    """
    try:
        return memoryview(obj).cast("B")
    except (TypeError, ValueError):  # pragma: no cover - exotic ctypes types
        raw = (ctypes.c_ubyte * size).from_address(ctypes.addressof(obj))
        return memoryview(raw).cast("B")


def fill_ctypes(obj: Any, data: bytes | bytearray) -> None:
    """Copy ``data`` (exactly ``ctypes.sizeof(obj)`` bytes) into a ctypes object."""
    bytes_view(obj, len(data))[:] = data


class NeedData(enum.Enum):
    """Type of the :data:`NEED_DATA` sentinel."""

    NEED_DATA = enum.auto()


NEED_DATA: Final = NeedData.NEED_DATA
"""Returned by :class:`FrameBuffer` methods when more data must be fed first."""


class FrameBuffer:
    """Buffer received bytes and cut them into frames.

    Parameters
    ----------
    max_line_length
        The longest terminated message, not counting the terminator.
    who
        Which connection, used in exception messages.
    """

    __slots__ = (
        "_chunks",
        "_scan_term",
        "_scanned",
        "buf",
        "chunked",
        "eof",
        "lines",
        "lines_size",
        "lines_term",
        "max_line_length",
        "who",
    )

    def __init__(
        self, max_line_length: int = DEFAULT_MAX_LINE_LENGTH, who: str = ""
    ) -> None:
        if max_line_length < 1:
            raise ValueError(f"max_line_length={max_line_length} must be >= 1")
        self.max_line_length: int = max_line_length
        self.who: str = who
        # The received bytes not yet read (after ``lines``, if any).
        self.buf: bytearray = bytearray()
        # Received chunks not yet copied into ``buf``, and their total size.
        # They follow nothing: ``buf`` and ``lines`` are empty while there
        # are any.
        # ``buf`` and ``chunked`` are not private: ``ReceiveSide``'s hot
        # paths read them (never write them) to see whether anything is
        # buffered without a call to ``__len__``.
        self._chunks: list[bytes] = []
        self.chunked: int = 0
        # True once end of stream has been fed (read it; set only by feed).
        self.eof: bool = False
        # Bytes at the front of the buffer known to contain no complete
        # ``_scan_term`` (the search resumes from there).
        self._scanned = 0
        self._scan_term = b""
        # Complete messages split off the front of the stream by
        # ``next_text``, without their terminator ``lines_term``, and their
        # total size, terminators included. They precede ``buf``; every read
        # but ``next_text`` puts them back first. There are no chunks while
        # there are split messages, as if they were still in ``buf``.
        # Not private: ``ReceiveSide.try_read_text`` pops a split message
        # itself (the hottest path), keeping ``lines_size`` in step.
        self.lines: deque[bytes] = deque()
        self.lines_size: int = 0
        self.lines_term: bytes = b""

    def __len__(self) -> int:
        return len(self.buf) + self.chunked + self.lines_size

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes; an empty ``data`` means end of stream.

        Raises
        ------
        RuntimeError
            If data is fed after end of stream.
        """
        if not data:
            self.eof = True
            return
        if self.eof:
            raise RuntimeError("cannot feed data after end of stream")
        if not self.buf and not self.lines and type(data) is bytes:
            self._chunks.append(data)  # copied only if a parse needs it
            self.chunked += len(data)
        else:
            if self._chunks:  # they come first
                self._absorb()
            self.buf += data

    def _absorb(self) -> None:
        """Move the kept chunks into the buffer (call when there are any)."""
        buf = self.buf
        for chunk in self._chunks:
            buf += chunk
        self._chunks.clear()
        self.chunked = 0

    def _unsplit(self) -> None:
        """Put the split messages back in front of the buffer (call if any)."""
        lines = self.lines
        terminator = self.lines_term
        self.buf[:0] = terminator.join(lines) + terminator  # no chunks now
        lines.clear()
        self.lines_size = 0
        self._scanned = 0

    def peek(self) -> bytes:
        """Return a copy of all buffered bytes, consuming nothing."""
        if self.lines:
            self._unsplit()
        if self._chunks:
            return b"".join(self._chunks)
        return bytes(self.buf)

    def _take(self, n: int) -> bytes:
        if self._chunks:
            self._absorb()
        buf = self.buf
        if n >= len(buf):  # everything: one copy, no slice
            data = bytes(buf)
            buf.clear()
        else:
            data = bytes(buf[:n])
            del buf[:n]
        self._scanned = 0
        return data

    def next_some(self, n: int) -> bytes | NeedData:
        """Return up to ``n`` buffered bytes.

        Returns ``b""`` at end of stream once the buffer is empty, and
        :data:`NEED_DATA` if nothing is buffered yet.
        """
        if n < 0:
            raise ValueError(f"n={n} must be >= 0")
        if self.lines:
            self._unsplit()
        chunks = self._chunks
        if chunks and n >= len(chunks[0]):
            chunk = chunks.pop(0)  # a whole chunk, as received: no copy
            self.chunked -= len(chunk)
            return chunk
        if self.buf or chunks:
            return self._take(n)
        if self.eof or n == 0:
            return b""
        return NEED_DATA

    def next_exactly(self, n: int) -> bytes | NeedData:
        """Return exactly ``n`` bytes, or :data:`NEED_DATA`.

        Raises
        ------
        IncompleteReadError
            At end of stream with fewer than ``n`` bytes buffered; those bytes
            are consumed and carried in ``.partial``.
        """
        if n < 0:
            raise ValueError(f"n={n} must be >= 0")
        if self.lines:
            self._unsplit()
        if self._chunks:
            self._absorb()
        if len(self.buf) >= n:
            return self._take(n)
        if self.eof:
            raise IncompleteReadError(self._take(len(self.buf)), n, self.who)
        return NEED_DATA

    def next_line(
        self,
        terminator: bytes,
        *,
        at_eof: Literal["raise", "partial"] = "raise",
        strip: bool = False,
    ) -> bytes | NeedData:
        """Return the next message including its ``terminator``, or :data:`NEED_DATA`.

        Parameters
        ----------
        terminator
            The separator, one byte or more.
        at_eof
            What to do at end of stream with an unterminated remainder:
            ``"raise"`` :class:`IncompleteReadError` (like
            ``asyncio.StreamReader.readuntil``) or return it, ``"partial"``
            (like ``readline``; ``b""`` when nothing is left).
        strip
            Return the message without its terminator (both are consumed).

        Raises
        ------
        LimitOverrunError
            As soon as the buffer proves the message is longer than
            ``max_line_length``. Nothing is consumed.
        IncompleteReadError
            At end of stream before the terminator, with ``at_eof="raise"``.
        """
        tlen = len(terminator)
        if tlen == 0:
            raise ValueError("the terminator must not be empty")
        if self.lines:
            self._unsplit()
        if self._chunks:
            self._absorb()
        buf = self.buf
        limit = self.max_line_length
        start = self._scanned if self._scan_term == terminator else 0
        # The terminator of a valid message starts at index <= limit.
        idx = buf.find(terminator, start, limit + tlen)
        if idx >= 0:
            if strip:
                data = bytes(buf[:idx])
                del buf[: idx + tlen]
                self._scanned = 0
                return data
            return self._take(idx + tlen)
        blen = len(buf)
        self._scan_term = terminator
        self._scanned = max(0, min(blen, limit + tlen) - tlen + 1)
        if blen > limit and not self._may_complete(terminator):
            raise LimitOverrunError(
                prefixed(
                    self.who,
                    f"message longer than max_line_length={limit} bytes "
                    f"without terminator {terminator!r}",
                ),
                blen,
            )
        if self.eof:
            if at_eof == "partial":
                return self._take(blen)
            raise IncompleteReadError(self._take(blen), None, self.who)
        return NEED_DATA

    def next_text(
        self, terminator: bytes, encoding: str, skip: bytes | None = None
    ) -> str | NeedData:
        """Return the next message without its terminator, decoded strictly.

        The fast path of text reads: equivalent to ``next_line(terminator,
        strip=True)`` followed by ``decode(encoding)``, skipping messages equal
        to ``skip`` (heartbeats).

        Raises
        ------
        UnicodeDecodeError
            If the message is not valid text; it is consumed all the same.
        LimitOverrunError, IncompleteReadError
            As :meth:`next_line`.
        """
        chunks = self._chunks
        tlen = len(terminator)
        if len(chunks) == 1 and skip is None:
            # One chunk as received, nothing before it (chunks follow
            # nothing): a reply that arrived for a waiting reader, the
            # commonest case of command/reply traffic. Just one message?
            chunk = chunks[0]
            idx = chunk.find(terminator, 0, self.max_line_length + tlen)
            if idx >= 0 and idx + tlen == len(chunk):
                chunks.clear()
                self.chunked = 0
                return chunk[:idx].decode(encoding)  # consumed even if this raises
        lines = self.lines
        if lines and self.lines_term != terminator:
            self._unsplit()
        while True:
            if lines:  # the fast path: a message split off earlier
                line: bytes | bytearray = lines.popleft()
                self.lines_size -= len(line) + tlen
                if skip is not None and line == skip:
                    continue
                return line.decode(encoding)
            chunks = self._chunks
            buf = self.buf
            limit = self.max_line_length
            data: bytes | bytearray
            # The terminator of a valid message starts at index <= limit.
            if chunks:  # then the buffer is empty: search the chunks uncopied
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                idx = data.find(terminator, 0, limit + tlen)
            else:
                data = buf
                start = self._scanned if self._scan_term is terminator else 0
                idx = data.find(terminator, start, limit + tlen)
            if idx < 0:
                # No message yet (or an over-long one, or end of stream):
                # next_line knows what to do and resumes the search later.
                found = self.next_line(terminator, strip=True)
                if found is NEED_DATA:
                    return NEED_DATA
                line = found
            elif idx + tlen == len(data):  # one message, nothing after it
                line = data[:idx]
                if chunks:
                    chunks.clear()
                    self.chunked = 0
                else:
                    buf.clear()
                    self._scanned = 0
            else:
                self._split(data if type(data) is bytes else bytes(data), terminator)
                continue
            if skip is not None and line == skip:
                continue
            return line.decode(encoding)

    def _split(self, data: bytes, terminator: bytes) -> None:
        """Split off every complete message of ``data``, the whole buffer.

        Called when ``data`` holds more than one message. Messages longer
        than ``max_line_length`` are not split off, nor anything after the
        first one: it stays buffered, to raise :class:`LimitOverrunError`
        once reached.
        """
        parts = data.split(terminator)  # left to right, like repeated find()
        rest = parts.pop()  # after the last terminator: incomplete
        limit = self.max_line_length
        tlen = len(terminator)
        size = len(data) - len(rest)
        if size - tlen > limit and max(map(len, parts)) > limit:
            first = next(i for i, part in enumerate(parts) if len(part) > limit)
            del parts[first:]
            size = sum(map(len, parts)) + first * tlen
        self.lines.extend(parts)
        self.lines_size = size
        self.lines_term = terminator
        self._scanned = 0
        # What remains is buffered as it would be had the messages been
        # consumed one by one (so other reads see the same layout).
        chunks = self._chunks
        if chunks:  # ``data`` is their concatenation; the buffer is empty
            chunks.clear()
            self.chunked = 0
            self.buf += memoryview(data)[size:]
        else:  # ``data`` is a copy of the buffer
            del self.buf[:size]

    def next_into(self, obj: Any, size: int) -> bool | NeedData:
        """Fill the ctypes object ``obj`` with the next ``size`` bytes.

        ``size`` must be ``ctypes.sizeof(obj)``. Returns True, or
        :data:`NEED_DATA`.

        Raises
        ------
        IncompleteReadError
            As :meth:`next_exactly`.
        """
        return self.next_into_view(bytes_view(obj, size), size)

    def fill_view(self, view: memoryview, size: int) -> bool:
        """Fill ``view`` with the next ``size`` bytes if they are buffered.

        Returns False, consuming nothing, if fewer are buffered; never
        raises, even at end of stream (the hot path of ``read_into``: a
        read that finds its struct whole needs no other check).
        """
        if self.lines:
            self._unsplit()
        if self._chunks:
            self._absorb()
        buf = self.buf
        if len(buf) < size:
            return False
        view[:] = buf[:size]
        del buf[:size]
        self._scanned = 0
        return True

    def next_into_view(self, view: memoryview, size: int) -> bool | NeedData:
        """:meth:`next_into` for a byte view of the object (the hot path).

        ``view`` is ``memoryview(obj).cast("B")`` and ``size`` its length:
        the caller keeps the view across reads into the same object, which
        saves building it (and sizing the object) on every read.
        """
        if self.fill_view(view, size):
            return True
        data = self.next_exactly(size)
        if data is NEED_DATA:
            return NEED_DATA
        view[:] = data
        return True

    def next_frame(
        self,
        prefix: int = 4,
        byteorder: Literal["big", "little"] = "big",
        max_size: int = 1 << 20,
    ) -> bytes | NeedData:
        """Return the payload of the next length-prefixed frame.

        A frame is an unsigned ``prefix``-byte length in ``byteorder``
        followed by that many bytes.

        Raises
        ------
        FrameTooLargeError
            If the announced length exceeds ``max_size``; nothing is consumed.
        IncompleteReadError
            At end of stream mid-frame; ``.expected`` is the whole frame's size
            (prefix included) once the prefix is known.
        """
        if self.lines:
            self._unsplit()
        if self._chunks:
            self._absorb()
        buf = self.buf
        if len(buf) < prefix:
            if self.eof:
                raise IncompleteReadError(self._take(len(buf)), prefix, self.who)
            return NEED_DATA
        size = int.from_bytes(buf[:prefix], byteorder)
        if size > max_size:
            raise FrameTooLargeError(
                prefixed(
                    self.who,
                    f"frame of {size} bytes is larger than max_frame_size={max_size}",
                ),
                size,
                max_size,
            )
        end = prefix + size
        if len(buf) >= end:
            data = bytes(buf[prefix:end])
            del buf[:end]
            self._scanned = 0
            return data
        if self.eof:
            raise IncompleteReadError(self._take(len(buf)), end, self.who)
        return NEED_DATA

    def _may_complete(self, terminator: bytes) -> bool:
        """Whether a terminator could still end a message of allowed length.

        Called only when the buffer holds more than ``max_line_length`` bytes
        and no complete terminator within the allowed range.
        """
        buf = self.buf
        limit = self.max_line_length
        first = max(0, len(buf) - len(terminator) + 1)
        return any(terminator.startswith(buf[i:]) for i in range(first, limit + 1))
