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
  buffered on its own, and says when its buffer is empty again: anyio sets
  its limits to 0, so it pauses its protocol as soon as anything is
  buffered and resumes it once nothing is. :meth:`DirectSender.on_drained`
  hooks that ``resume_writing``, so the caller can hand the transport what
  it queued meanwhile without a task (see ``SendQueue``); ``drain`` and
  ``close`` can also wake the flusher, which waits for the buffer to drain
  (``send(b"")``). The transport is reached through the
  stream's private ``_transport`` attribute, by duck typing, as in
  ``_workarounds``; if it is missing, every message goes through the flusher.

Other streams (TLS, in-memory, wrappers) get no direct sender.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any, Protocol

import anyio.abc

from ._socket_options import raw_socket
from ._workarounds import Parts

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

    @property
    def backlog(self) -> Callable[[], int]:
        """Return the bytes taken by :meth:`send` but still buffered in user space.

        A callable, so that a sender may hand out its transport's own method.
        """
        ...

    def on_drained(self, callback: Callable[[], None]) -> bool:
        """Call ``callback`` each time a :meth:`backlog` has drained to 0.

        Synchronously, from the event loop; the callback may send. Returns
        False if the sender has no such signal (it never has a backlog).
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

    def on_drained(self, callback: Callable[[], None]) -> bool:
        return False  # nothing is ever buffered in user space


class _TransportSender:
    """asyncio and uvloop: the stream's transport, only while its buffer is empty."""

    __slots__ = ("_protocol", "_transport", "backlog")

    def __init__(self, transport: Any, protocol: Any) -> None:
        self._transport = transport
        self._protocol = protocol
        # The transport's own method, called without a frame of ours: the
        # send queue asks after every direct send. (``Callable[[], int]``;
        # pyright would take that for a method of the class, which must
        # bind, and reject the class as a ``DirectSender``.)
        self.backlog: Any = transport.get_write_buffer_size

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

    def on_drained(self, callback: Callable[[], None]) -> bool:
        # The transport calls its protocol's resume_writing once its buffer
        # is empty (anyio sets the limits to 0). anyio's own is kept, and
        # runs first (it wakes a send waiting in anyio). A later sender for
        # the same stream takes over.
        protocol = self._protocol
        original = getattr(protocol, "_anytcpip_resume_writing", None)
        if original is None:
            original = protocol._anytcpip_resume_writing = protocol.resume_writing

        def resume_writing() -> None:
            original()
            callback()

        protocol.resume_writing = resume_writing
        return True


_TRANSPORT_PARTS = Parts(("write", "get_write_buffer_size", "is_closing"))
_PROTOCOL_PARTS = Parts(("resume_writing",))


def direct_sender(stream: anyio.abc.ByteStream) -> DirectSender | None:
    """Return a direct sender for ``stream``, or None if it cannot have one."""
    if not isinstance(stream, anyio.abc.SocketStream):
        return None  # TLS, in-memory, or a wrapper: it may buffer on its own
    transport = getattr(stream, "_transport", None)
    if transport is not None:
        protocol = getattr(stream, "_protocol", None)
        if _TRANSPORT_PARTS(transport) and _PROTOCOL_PARTS(protocol):
            return _TransportSender(transport, protocol)
        return None
    sock = raw_socket(stream)
    if type(sock) is socket.socket and sock.gettimeout() == 0.0:
        return _SocketSender(sock)
    return None
