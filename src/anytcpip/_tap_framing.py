"""Cut a copy of a forwarded byte stream into messages, and show them.

Rationale
---------
The tap forwards raw chunks as they arrive and never re-frames them; this
module works on a *copy*, after forwarding, to find message boundaries for
the display and the recording. It is sans-IO (no anyio), built on
:class:`FrameBuffer`. Whatever cannot be cut as the framing says (a line
longer than ``max_size``, a frame announcing more) is passed on as raw
chunks, never dropped: the display and the recording always see every byte.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from ._exceptions import FrameTooLargeError, IncompleteReadError, LimitOverrunError
from ._framing import NEED_DATA, FrameBuffer
from .recording import Framing, Record

__all__ = ["MessageSplitter", "format_record", "hex_dump"]

Message = tuple[bytes, bool]
"""A message's wire bytes, and whether it is partial (cut at end of stream)."""


class MessageSplitter:
    """Cut one direction of a stream into messages, as ``framing`` says.

    Parameters
    ----------
    framing
        How messages are delimited.
    """

    def __init__(self, framing: Framing) -> None:
        self.framing = framing
        self._buffer = FrameBuffer(max_line_length=framing.max_size)
        self._raw = framing.kind == "raw"
        self._header: bytes | None = None  # frames with a header: read so far

    def feed(self, data: bytes) -> list[Message]:
        """Add forwarded bytes; return the messages now complete.

        ``b""`` means end of stream: any incomplete remainder is returned as
        a partial message.
        """
        if self._raw:
            return [(data, False)] if data else self._rest()
        self._buffer.feed(data)
        messages: list[Message] = []
        while True:
            try:
                message = self._next()
            except (LimitOverrunError, FrameTooLargeError):
                # Not this framing after all: show the rest as raw chunks.
                self._raw = True
                return messages + self._rest(partial=False)
            except IncompleteReadError as exc:
                partial = (self._header or b"") + bytes(exc.partial)
                self._header = None
                if partial:
                    messages.append((partial, True))
                return messages
            if message is None:
                return messages
            messages.append((message, False))

    def _rest(self, partial: bool = True) -> list[Message]:
        buffer = self._buffer
        rest = b""
        if len(buffer):
            rest = buffer.peek()
            buffer.next_exactly(len(rest))
        rest = (self._header or b"") + rest
        self._header = None
        return [(rest, partial)] if rest else []

    def _next(self) -> bytes | None:
        framing = self.framing
        buffer = self._buffer
        if framing.is_text:
            line = buffer.next_line(framing.terminator)
            return None if line is NEED_DATA else line
        size = framing.header_bytes
        if size == framing.prefix:  # the plain length prefix of write_frame
            payload = buffer.next_frame(
                framing.prefix,
                framing.byteorder,
                framing.max_size,
            )
            if payload is NEED_DATA:
                return None
            return len(payload).to_bytes(framing.prefix, framing.byteorder) + payload
        if self._header is None:
            header = buffer.next_exactly(size)
            if header is NEED_DATA:
                return None
            self._header = header
        header = self._header
        start = framing.length_offset
        length = int.from_bytes(
            header[start : start + framing.prefix], framing.byteorder
        )
        if length > framing.max_size:  # the header is kept, for _rest
            raise FrameTooLargeError("frame too large", length, framing.max_size)
        body = buffer.next_exactly(length)
        if body is NEED_DATA:
            return None
        self._header = None
        return header + body


# -- display ---------------------------------------------------------------------

ARROWS = {"c2s": "client -> server", "s2c": "server -> client"}


DISPLAY_LIMIT = 1024
"""The most bytes of one binary message shown in a hex dump."""


def hex_dump(data: bytes, indent: str = "    ", limit: int = DISPLAY_LIMIT) -> str:
    """Return a classic hex dump: offset, 16 bytes in hex, printable ASCII.

    At most ``limit`` bytes are shown, then how many more there are.
    """
    lines = []
    for offset in range(0, min(len(data), limit), 16):
        row = data[offset : offset + 16]
        hexes = " ".join(f"{byte:02x}" for byte in row)
        text = "".join(chr(byte) if 32 <= byte < 127 else "." for byte in row)
        lines.append(f"{indent}{offset:08x}  {hexes:<47}  |{text}|")
    if len(data) > limit:
        lines.append(f"{indent}... {len(data) - limit} more bytes")
    return "\n".join(lines)


def _body(record: Record, framing: Framing) -> str:
    payload = record.payload
    if framing.is_text and not record.partial:
        terminator = framing.terminator
        if payload.endswith(terminator):
            payload = payload[: -len(terminator)]
        try:
            text = payload.decode(framing.encoding)
        except UnicodeDecodeError:
            return f"({len(payload)} bytes, not {framing.encoding})\n" + hex_dump(
                payload
            )
        if framing.kind == "json":
            try:
                return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
            except json.JSONDecodeError:
                return f"{text!r} (not JSON)"
        printable = text.isprintable()
        return text if printable else repr(text)
    note = " partial" if record.partial else ""
    return f"({len(payload)} bytes{note})\n" + hex_dump(payload)


def format_record(
    record: Record, framing: Framing, clock: Callable[[], float] = time.time
) -> str:
    """Return one display entry: wall-clock time, direction and message."""
    stamp = time.strftime("%H:%M:%S", time.localtime(now := clock()))
    stamp += f".{int(now % 1 * 1_000_000):06d}"
    session = f"#{record.session}"
    if record.kind == "data":
        assert record.direction is not None
        return f"{stamp} {session} {ARROWS[record.direction]}: {_body(record, framing)}"
    if record.kind == "connect":
        return f"{stamp} {session} client {record.client} connected"
    if record.kind == "close":
        return f"{stamp} {session} session closed"
    who = "client" if record.direction == "c2s" else "server"
    what = "closed its side (EOF)" if record.kind == "eof" else "reset the connection"
    return f"{stamp} {session} {who} {what}"
