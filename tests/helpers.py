"""Shared helpers for the behaviour tests."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from anytcpip import BaseClientOrServer
from anytcpip.testing import CallbackRecorder, connected_pair

__all__ = [
    "FIGURES",
    "TIMEOUT",
    "CallbackRecorder",
    "MemoryByteStream",
    "MemoryEnd",
    "blackhole_proxy",
    "cancel_after_checkpoints",
    "connected_pair",
    "ipv6_available",
    "memory_pair",
    "memory_stream_pair",
    "open_fds",
    "raw_peer",
    "reset_socket",
    "rss_bytes",
]

TIMEOUT = 5  # seconds: a bound on every wait, so a bug fails instead of hanging

FIGURES: list[str] = []
"""Reliability figures recorded by the tests (fds, flood, memory), in order.

``tests/conftest.py`` prints them in the pytest terminal summary, so they can
be read off a CI log; tests add to it through the ``figures`` fixture.
"""


def reset_socket(sock: socket.socket) -> None:
    """Close ``sock`` with SO_LINGER 0 so the peer gets a reset (RST)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@asynccontextmanager
async def raw_peer(port: int) -> AsyncIterator[anyio.abc.SocketStream]:
    """A plain anyio TCP stream to 127.0.0.1:port."""
    stream = await anyio.connect_tcp("127.0.0.1", port)
    async with stream:
        yield stream


def ipv6_available() -> bool:
    """Whether this machine can bind the IPv6 loopback address."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def open_fds() -> int | None:
    """How many file descriptors this process has open (None if unknown)."""
    for path in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(path):
            return len(os.listdir(path))
    return None


def rss_bytes() -> int | None:
    """Resident set size of this process now (None where /proc is missing)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


async def cancel_after_checkpoints(scope: anyio.CancelScope, count: int) -> None:
    """Cancel ``scope`` after ``count`` scheduler checkpoints of this task.

    Run it beside an operation to cancel that operation at an arbitrary
    ``await`` inside it: sweeping ``count`` hits every await point in turn.
    """
    for _ in range(count):
        await anyio.lowlevel.checkpoint()
    scope.cancel()


# -- an in-memory transport ------------------------------------------------------


class _Pipe:
    """One direction of an in-memory byte stream, holding at most ``limit``."""

    def __init__(self, limit: int) -> None:
        self.buffer = bytearray()
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

    Behaves like a TCP socket stream for what anytcpip relies on: ``send``
    blocks while the peer's receive buffer is full (backpressure), ``receive``
    raises :class:`anyio.EndOfStream` after the peer's ``send_eof``/``aclose``,
    ``send`` to a closed peer raises :class:`anyio.BrokenResourceError`, and
    use after ``aclose`` raises :class:`anyio.ClosedResourceError`.
    """

    def __init__(self, incoming: _Pipe, outgoing: _Pipe) -> None:
        self._in = incoming
        self._out = outgoing
        self._closed = False

    async def receive(self, max_bytes: int = 65536) -> bytes:
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
        self._out.eof = True
        self._out.changed()
        await anyio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._out.eof = True
            self._in.reader_closed = True
            self._in.buffer.clear()
            self._out.changed()
            self._in.changed()
        await anyio.lowlevel.checkpoint()


def memory_stream_pair(
    limit: int = 256 * 1024,
) -> tuple[MemoryByteStream, MemoryByteStream]:
    """Two connected in-memory byte streams, each direction holding ``limit``."""
    forward, backward = _Pipe(limit), _Pipe(limit)
    return MemoryByteStream(backward, forward), MemoryByteStream(forward, backward)


class MemoryEnd(BaseClientOrServer):
    """A test-only connection end over an in-memory stream (no sockets).

    It uses the same connection machinery (receive pump, framing, send queue,
    callbacks) as :class:`anytcpip.Client` and :class:`anytcpip.OneClientServer`,
    through the hooks they use: ``_start`` adopts the stream and runs it.
    """

    def __init__(self, stream: anyio.abc.ByteStream, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._stream = stream

    async def _start(self, task_group: anyio.abc.TaskGroup) -> None:
        channel = self._adopt(self._stream, f"memory end {self.name!r}")
        task_group.start_soon(self._run_channel, channel)


@asynccontextmanager
async def memory_pair(
    server_kwargs: dict[str, Any] | None = None,
    client_kwargs: dict[str, Any] | None = None,
) -> AsyncIterator[tuple[MemoryEnd, MemoryEnd]]:
    """A connected ``(server, client)`` over an in-memory stream (a ``MakePair``)."""
    server_stream, client_stream = memory_stream_pair()
    server = MemoryEnd(server_stream, name="server", **(server_kwargs or {}))
    client = MemoryEnd(client_stream, name="client", **(client_kwargs or {}))
    async with server, client:
        with anyio.fail_after(TIMEOUT):
            await server.wait_connected()
            await client.wait_connected()
        yield server, client


# -- a network that goes silent ----------------------------------------------------


@asynccontextmanager
async def blackhole_proxy(
    target_port: int,
) -> AsyncIterator[tuple[int, anyio.Event]]:
    """A TCP relay to 127.0.0.1:target_port that can *vanish*.

    Yields ``(port, vanish)``. Once ``vanish`` is set, the relay stops
    forwarding and reading in both directions but keeps every socket open:
    like a pulled cable or a frozen peer, neither end gets a FIN or a reset.
    """
    vanish = anyio.Event()
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    held: list[anyio.abc.ByteStream] = []

    async def forward(src: anyio.abc.ByteStream, dst: anyio.abc.ByteStream) -> None:
        try:
            while True:
                data = await src.receive()
                await dst.send(data)
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            await dst.aclose()

    async def relay(downstream: anyio.abc.SocketStream) -> None:
        upstream = await anyio.connect_tcp("127.0.0.1", target_port)
        held.extend((downstream, upstream))
        async with anyio.create_task_group() as tg:
            tg.start_soon(forward, downstream, upstream)
            tg.start_soon(forward, upstream, downstream)
            await vanish.wait()
            tg.cancel_scope.cancel()  # silence, but keep the sockets open

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, relay)
        try:
            yield port, vanish
        finally:
            tg.cancel_scope.cancel()
            with anyio.CancelScope(shield=True):
                for stream in held:
                    await anyio.aclose_forcefully(stream)
