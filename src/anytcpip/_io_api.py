"""``ReadWriteMixin``: the read/write API of a client or server.

The methods of :class:`~anytcpip.BaseClientOrServer` that read and write one
message (bytes, lines, text, JSON, frames, ctypes objects). They go to the
connection :meth:`_require_channel` returns; the hot paths (``read_str``,
``read_into``, ``write_str``) look at ``_channel`` directly and call it
only when a task has ever been bound to a connection of this client or
server (a read loop, a ``Connection`` handle) or none is open, so they
cost no extra call.

The mixin reads the options the base class sets in ``__init__`` (declared
below) and declares the hooks it needs (``_require_channel``, ``_describe``),
which :class:`~anytcpip._connection.BaseClientOrServer` overrides; it never
imports ``_connection``.
"""

from __future__ import annotations

import ctypes
import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal

from . import _json
from ._exceptions import FrameTooLargeError
from ._framing import NEED_DATA, FrameBuffer, NeedData, bytes_view
from ._streams import ctypes_size

if TYPE_CHECKING:
    from ._channel import Channel

__all__ = ["ReadWriteMixin"]

_sizeof: Callable[[Any], int] = ctypes.sizeof


class ReadWriteMixin:
    """The read and write methods of :class:`~anytcpip.BaseClientOrServer`."""

    # Set by BaseClientOrServer.__init__ (copies of the options, read on hot paths).
    _channel: Channel | None
    _encoding: str
    _terminator: bytes
    _write_terminator: bytes
    _frame_prefix: Literal[1, 2, 4]
    _frame_byteorder: Literal["big", "little"]
    _max_frame_size: int
    _max_line_length: int
    _skip: bytes | None
    _into_view: memoryview | None  # see read_into
    _has_bindings: bool  # a task was ever bound to one of its connections

    # -- hooks ------------------------------------------------------------------

    def _require_channel(self) -> Channel:
        """Return the connection that I/O of the current task goes to (hook)."""
        raise NotImplementedError

    def _describe(self) -> str:
        """Return the description used in error messages (hook)."""
        raise NotImplementedError

    # -- reading ----------------------------------------------------------------

    async def read(self, n: int) -> bytes:
        """Read up to ``n`` bytes; ``b""`` once at end of stream.

        Raises
        ------
        ConnectionError
            If not connected, or the end of stream was already reported.
        """
        if n < 0:
            raise ValueError(f"n={n} must be >= 0")
        return await self._require_channel().read_some(n)

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes.

        Raises
        ------
        IncompleteReadError
            If the peer closes first (``.partial`` holds what arrived).
        ConnectionError
            If not connected (or the peer left and nothing is buffered).
        """
        if n < 0:
            raise ValueError(f"n={n} must be >= 0")
        return await self._require_channel().read(lambda f: f.next_exactly(n), n)

    async def readline(self) -> bytes:
        r"""Read up to and including ``b"\n"``.

        At end of stream, return the unterminated remainder (``b""`` if none),
        like :meth:`asyncio.StreamReader.readline`.

        Raises
        ------
        LimitOverrunError
            If the line is longer than ``max_line_length``.
        """
        return await self._require_channel().read(
            lambda f: f.next_line(b"\n", at_eof="partial"), self._max_line_length + 1
        )

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        """Read up to and including ``separator``.

        Raises
        ------
        IncompleteReadError
            If the peer closes before the separator.
        LimitOverrunError
            If the message is longer than ``max_line_length``.
        """
        if not isinstance(separator, bytes) or not separator:
            raise ValueError(f"separator={separator!r} must be non-empty bytes")
        return await self._require_channel().read(
            lambda f: f.next_line(separator),
            self._max_line_length + len(separator),
        )

    async def read_into(self, struct: Any) -> None:
        """Fill a ctypes object (``Structure``, array, ...) from ``sizeof`` bytes.

        Raises
        ------
        IncompleteReadError
            If the peer closes mid-struct; ``.expected`` is the struct's size.
        """
        # The byte view of the last object read into is kept: reading into
        # the same object again (the usual loop) neither sizes it nor builds
        # a view. A view is rebuilt if the object was resized meanwhile.
        view = self._into_view
        if view is None or view.obj is not struct or len(view) != _sizeof(struct):
            view = self._into_view = bytes_view(struct, ctypes_size(struct))
        size = len(view)
        channel = self._channel
        if channel is None or self._has_bindings:  # hot path: no call
            channel = self._require_channel()

        if not channel.try_read_into(view, size):

            def parse(frames: FrameBuffer) -> bool | NeedData:
                return frames.next_into_view(view, size)

            await channel.read_slow(parse, size)

    def _parse_text(self, frames: FrameBuffer) -> str | NeedData:
        """Parse one text message (skipping heartbeats if enabled)."""
        return frames.next_text(self._terminator, self._encoding, self._skip)

    async def read_str(self) -> str:
        """Read a message ending in ``terminator``; strip it and decode strictly.

        A line that is exactly ``HEARTBEAT`` is skipped when heartbeats are
        enabled on this side.

        Raises
        ------
        UnicodeDecodeError
            If the message is not valid text (it was consumed; the connection
            stays usable).
        """
        channel = self._channel
        if channel is None or self._has_bindings:  # hot path: no call
            channel = self._require_channel()
        # The common case, a message already buffered, in one synchronous call.
        result = channel.try_read_text(self._terminator, self._encoding, self._skip)
        if result is NEED_DATA:
            result = await channel.read_slow(
                self._parse_text, self._max_line_length + len(self._terminator)
            )
        return result

    async def read_json(self) -> Any:
        """Read a message with :meth:`read_str` and parse it as JSON.

        Raises
        ------
        json.JSONDecodeError
            If the message is not JSON, including hostile JSON that nests too
            deeply or holds an integer of too many digits; the error quotes
            the text (truncated). The message was consumed; the connection
            stays usable.
        """
        return _json.loads(await self.read_str())

    # -- writing ----------------------------------------------------------------

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send bytes as one message.

        Returns once the message is queued in the connection's bounded send
        buffer (64 KiB, like asyncio's ``StreamWriter.drain``), which a
        background task hands to the OS; while the buffer is full, writes wait
        (backpressure). Use :meth:`drain` to wait until everything queued has
        been handed to the OS.
        """
        channel = self._require_channel()
        if not channel.try_send(data):  # the hot path: no coroutine
            await channel.send_slow(data)

    async def drain(self) -> None:
        """Wait until every message written so far has been handed to the OS.

        Raises
        ------
        ConnectionError
            If not connected, or the connection is lost first.
        """
        await self._require_channel().drain()

    async def writelines(self, lines: Iterable[bytes | bytearray | memoryview]) -> None:
        """Send several byte strings as one message (never interleaved)."""
        await self._require_channel().send(b"".join(lines))

    async def write_from(self, *structs: Any) -> None:
        """Send one or more ctypes objects, queued together (never interleaved)."""
        for struct in structs:
            ctypes_size(struct)
        channel = self._require_channel()
        data = b"".join([bytes(s) for s in structs])
        if not channel.try_send(data, len(structs)):
            await channel.send_slow(data, len(structs))

    async def read_frame(self) -> bytes:
        """Read one length-prefixed frame and return its payload.

        The prefix is ``frame_prefix`` bytes in ``frame_byteorder``.

        Raises
        ------
        FrameTooLargeError
            If the announced length exceeds ``max_frame_size`` (nothing is
            consumed; the stream is no longer trustworthy: close it).
        IncompleteReadError
            If the peer closes mid-frame.
        """
        prefix, order, limit = (
            self._frame_prefix,
            self._frame_byteorder,
            self._max_frame_size,
        )
        return await self._require_channel().read(
            lambda f: f.next_frame(prefix, order, limit), prefix + limit
        )

    async def write_frame(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` as one frame, preceded by its length.

        Raises
        ------
        FrameTooLargeError
            If ``data`` is larger than ``max_frame_size`` (nothing is sent).
        """
        size = len(data)
        if size > self._max_frame_size:
            raise FrameTooLargeError(
                f"{self._describe()}: frame of {size} bytes is larger than "
                f"max_frame_size={self._max_frame_size}",
                size,
                self._max_frame_size,
            )
        header = size.to_bytes(self._frame_prefix, self._frame_byteorder)
        await self._require_channel().send(header + bytes(data))

    async def write_str(self, line: str) -> None:
        """Encode ``line`` strictly, append ``terminator`` and send it.

        Raises
        ------
        UnicodeEncodeError
            If ``line`` cannot be encoded (nothing is sent).
        """
        channel = self._channel
        if channel is None or self._has_bindings:  # hot path: no call
            channel = self._require_channel()
        data = line.encode(self._encoding) + self._write_terminator
        if not channel.try_send(data):  # the hot path: no coroutine
            await channel.send_slow(data)

    async def write_json(self, obj: Any) -> None:
        """Send ``json.dumps(obj)`` with :meth:`write_str`."""
        await self.write_str(json.dumps(obj))
