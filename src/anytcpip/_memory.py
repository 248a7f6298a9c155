"""An in-memory transport: connection ends joined by a byte stream, no sockets.

For testing protocol logic quickly and deterministically, the way anyio and
trio test theirs over memory streams. :class:`MemoryByteStream` behaves like
a TCP socket stream in everything anytcpip relies on (backpressure, end of
stream, half-close, a closed or broken peer), and :class:`MemoryConnection`
runs the same connection machinery as :class:`~anytcpip.Client` and the
servers (receive pump, framing, send queue, heartbeats, callbacks) over it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from ._connection import BaseClientOrServer
from ._requester import RequestMixin
from ._send import Spawner

__all__ = [
    "MemoryByteStream",
    "MemoryConnection",
    "memory_pair",
    "memory_stream_pair",
]

DEFAULT_MEMORY_LIMIT = 256 * 1024
"""Bytes one direction of a memory stream holds before ``send`` waits."""


class _Pipe:
    """One direction of an in-memory byte stream, holding at most ``limit``."""

    def __init__(self, limit: int) -> None:
        self.buffer: bytearray = bytearray()
        self.limit = limit
        self.eof = False  # the sending end closed or sent EOF
        self.reader_closed = False  # the receiving end closed
        self._changed = anyio.Event()

    def changed(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def wait(self) -> None:
        await self._changed.wait()


class MemoryByteStream(anyio.abc.ByteStream):
    """One end of an in-memory, bounded, full-duplex byte stream.

    ``send`` waits while the peer's direction is full (backpressure);
    ``receive`` raises :class:`anyio.EndOfStream` after the peer's
    ``send_eof`` or ``aclose``; ``send`` to a closed peer raises
    :class:`anyio.BrokenResourceError`; use after ``aclose`` raises
    :class:`anyio.ClosedResourceError`. Make pairs with
    :func:`memory_stream_pair`.
    """

    def __init__(self, incoming: _Pipe, outgoing: _Pipe) -> None:
        self._in = incoming
        self._out = outgoing
        self._closed = False

    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Receive at most ``max_bytes``, waiting until some are there."""
        pipe = self._in
        while True:
            if self._closed:
                raise anyio.ClosedResourceError
            if pipe.buffer:
                data = bytes(pipe.buffer[:max_bytes])
                del pipe.buffer[:max_bytes]
                pipe.changed()
                await anyio.lowlevel.checkpoint()
                return data
            if pipe.eof:
                raise anyio.EndOfStream
            await pipe.wait()

    async def send(self, item: bytes) -> None:
        """Send all of ``item``, waiting while the peer's direction is full."""
        pipe = self._out
        view = memoryview(item)
        await anyio.lowlevel.checkpoint()
        while True:
            if self._closed or pipe.eof:
                raise anyio.ClosedResourceError
            if pipe.reader_closed:
                raise anyio.BrokenResourceError
            room = pipe.limit - len(pipe.buffer)
            if room > 0:
                pipe.buffer += view[:room]
                view = view[room:]
                pipe.changed()
                if not view:
                    return
            await pipe.wait()

    async def send_eof(self) -> None:
        """Half-close: the peer's ``receive`` ends once it has read the rest."""
        self._out.eof = True
        self._out.changed()
        await anyio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        """Close this end; the peer sees end of stream, its sends break."""
        if not self._closed:
            self._closed = True
            self._out.eof = True
            self._in.reader_closed = True
            self._in.buffer.clear()
            self._out.changed()
            self._in.changed()
        await anyio.lowlevel.checkpoint()


def memory_stream_pair(
    limit: int = DEFAULT_MEMORY_LIMIT,
) -> tuple[MemoryByteStream, MemoryByteStream]:
    """Return two connected in-memory byte streams.

    Parameters
    ----------
    limit
        Bytes each direction holds before ``send`` waits.
    """
    forward, backward = _Pipe(limit), _Pipe(limit)
    return MemoryByteStream(backward, forward), MemoryByteStream(forward, backward)


class MemoryConnection(RequestMixin, BaseClientOrServer):
    """A connection end over an in-memory (or any other) byte stream.

    It has the whole read/write API of :class:`~anytcpip.Client` and the
    servers, and their constructor keywords (``connect_callback``,
    ``terminator``, heartbeats, ...), but no network: entering its
    ``async with`` adopts ``stream`` as the connection, and leaving closes
    it. It connects once and never reconnects.

    Parameters
    ----------
    stream
        The byte stream to run the connection over, e.g. one end of
        :func:`memory_stream_pair`.
    **kwargs
        The keywords common to every connection (see
        :class:`~anytcpip.BaseClientOrServer`).
    """

    def __init__(self, stream: anyio.abc.ByteStream, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._stream = stream

    async def _start(self, task_group: Spawner) -> None:
        channel = self._adopt(self._stream, "memory stream")
        task_group.start_soon(self._run_channel, channel)


@asynccontextmanager
async def memory_pair(
    server_kwargs: dict[str, Any] | None = None,
    client_kwargs: dict[str, Any] | None = None,
    *,
    limit: int = DEFAULT_MEMORY_LIMIT,
) -> AsyncIterator[tuple[MemoryConnection, MemoryConnection]]:
    """Two :class:`MemoryConnection` ends joined in memory, both connected.

    A drop-in for :func:`~anytcpip.testing.connected_pair` (a ``MakePair``)
    when a test needs no sockets. Yields ``(server, client)``; closes both
    on exit.

    Parameters
    ----------
    server_kwargs
        Keyword arguments for the "server" end (named ``"server"`` unless
        given).
    client_kwargs
        Keyword arguments for the "client" end (named ``"client"``).
    limit
        Bytes each direction holds before a write waits.
    """
    server_stream, client_stream = memory_stream_pair(limit)
    server = MemoryConnection(
        server_stream, **{"name": "server", **(server_kwargs or {})}
    )
    client = MemoryConnection(
        client_stream, **{"name": "client", **(client_kwargs or {})}
    )
    async with server, client:
        yield server, client
