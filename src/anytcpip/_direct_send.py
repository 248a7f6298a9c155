"""Hand a message to the OS synchronously, without a task switch.

Rationale
---------
``Channel`` queues messages and a flusher task sends them, so concurrent
writers never interleave and a cancelled write never leaves half a message.
But the hop to the flusher costs a scheduler round trip before the first byte
leaves, which dominates request/response latency. When nothing is queued and
nothing is being sent, the writer can instead hand its message to the OS
itself, *synchronously*: nothing can interleave with a synchronous step and
nothing can be cancelled part-way, so the guarantees hold; whatever the OS
does not take at once is queued for the flusher as before.

That needs a synchronous, non-blocking send, which anyio does not offer, and
the knowledge that the stream buffers nothing of its own (else a direct send
would overtake it). Both are known for anyio's plain TCP streams:

- trio: ``SocketAttribute.raw_socket`` is the non-blocking socket itself, and
  ``SocketStream.send`` returns only once every byte is in the kernel.
- asyncio and uvloop: the raw socket refuses ``send``, but the stream's
  transport ``write`` takes the whole message synchronously (sending what the
  kernel accepts at once and buffering the rest). anyio sets the transport's
  write-buffer limits to 0, so ``send`` returns only once the transport's
  buffer is empty; a direct write is taken only while it is empty, so it
  never overtakes buffered data. The transport sends what it leaves
  buffered on its own; ``drain`` and ``close`` wake the flusher, which waits
  for it (``send(b"")`` waits for the buffer to drain), and a large write
  waits for it with :meth:`DirectSender.wait_drained` (anyio's protocol's
  ``write_event``), then writes directly. The transport is reached through the
  stream's private ``_transport`` attribute, by duck typing, as in
  ``_workarounds``; if it is missing, every message goes through the flusher.

Other streams (TLS, in-memory, wrappers) get no direct sender.
"""

from __future__ import annotations

import socket
from typing import Any, Protocol

import anyio.abc
import anyio.lowlevel

from ._socket_options import raw_socket

__all__ = ["DirectSender", "direct_sender"]


class DirectSender(Protocol):
    """Synchronous, non-blocking send of a plain TCP stream."""

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Hand ``data`` to the OS now; return how many bytes were taken.

        Returns 0 if nothing can be taken now (the caller queues the message).

        Raises
        ------
        OSError
            If the socket is broken (the caller queues the message and lets
            the flusher report the error).
        """
        ...

    def backlog(self) -> int:
        """Bytes taken by :meth:`send` but still buffered in user space."""
        ...

    async def wait_drained(self) -> None:
        """Wait until :meth:`backlog` is 0, or the connection is lost.

        Sends nothing, so a cancelled wait has no effect.
        """
        ...


class _SocketSender:
    """trio: the stream's own non-blocking socket."""

    __slots__ = ("_sock",)

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def send(self, data: bytes | bytearray | memoryview) -> int:
        try:
            return self._sock.send(data)
        except BlockingIOError:
            return 0

    def backlog(self) -> int:
        return 0

    async def wait_drained(self) -> None:
        # Nothing is ever buffered in user space: only a checkpoint.
        await anyio.lowlevel.checkpoint()


class _TransportSender:
    """asyncio and uvloop: the stream's transport, only while its buffer is empty."""

    __slots__ = ("_protocol", "_transport")

    def __init__(self, transport: Any, protocol: Any) -> None:
        self._transport = transport
        self._protocol = protocol

    def send(self, data: bytes | bytearray | memoryview) -> int:
        transport = self._transport
        if transport.get_write_buffer_size() or transport.is_closing():
            return 0
        if type(data) is not bytes:
            # The transport may keep a reference to what it cannot send at
            # once; a caller's bytearray must not change under it.
            data = bytes(data)
        transport.write(data)
        return len(data)

    def backlog(self) -> int:
        return int(self._transport.get_write_buffer_size())

    async def wait_drained(self) -> None:
        # anyio's protocol sets its write_event when the transport's buffer
        # has drained (anyio sets the buffer's limits to 0) and when the
        # connection is lost; pausing replaces it, so it is looked up now.
        await self._protocol.write_event.wait()


_VERIFIED: set[type] = set()
"""Transport types found to have every method :class:`_TransportSender` uses."""


def _has_parts(transport: Any, protocol: Any) -> bool:
    """Whether ``transport`` and anyio's protocol have what the sender uses.

    Remembered per type of transport (anyio has one protocol class).
    """
    if all(
        callable(getattr(transport, name, None))
        for name in ("write", "get_write_buffer_size", "is_closing")
    ) and callable(getattr(getattr(protocol, "write_event", None), "wait", None)):
        _VERIFIED.add(type(transport))
        return True
    return False


def direct_sender(stream: anyio.abc.ByteStream) -> DirectSender | None:
    """Return a direct sender for ``stream``, or None if it cannot have one."""
    if not isinstance(stream, anyio.abc.SocketStream):
        return None  # TLS, in-memory, or a wrapper: it may buffer on its own
    transport = getattr(stream, "_transport", None)
    if transport is not None:
        protocol = getattr(stream, "_protocol", None)
        if type(transport) in _VERIFIED or _has_parts(transport, protocol):
            return _TransportSender(transport, protocol)
        return None
    sock = raw_socket(stream)
    if type(sock) is socket.socket and sock.gettimeout() == 0.0:
        return _SocketSender(sock)
    return None
