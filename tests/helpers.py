"""Shared helpers for the behaviour tests."""

from __future__ import annotations

import ctypes
import os
import socket
import struct
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from anytcpip import NEED_DATA, Backoff, FrameBuffer
from anytcpip._channel import Channel
from anytcpip.testing import (
    CallbackRecorder,
    MemoryByteStream,
    MemoryConnection,
    connected_pair,
    memory_pair,
    memory_stream_pair,
)

__all__ = [
    "ACK",
    "COMMAND",
    "FIGURES",
    "TELEMETRY",
    "TIMEOUT",
    "Ack",
    "CallbackRecorder",
    "Command",
    "CountingBackoff",
    "CountingSender",
    "CountingStream",
    "Header",
    "MemoryByteStream",
    "MemoryConnection",
    "blackhole_proxy",
    "cancel_after_checkpoints",
    "connected_pair",
    "counted_memory_pair",
    "drain_lines",
    "ipv6_available",
    "memory_pair",
    "memory_stream_pair",
    "open_fds",
    "raw_peer",
    "reset_socket",
    "reset_while_blocked",
    "rss_bytes",
    "segments",
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


async def reset_while_blocked(
    sock: socket.socket, operation: Callable[[], Coroutine[Any, Any, None]]
) -> None:
    """Run ``operation`` until it blocks, then reset ``sock`` (its peer).

    ``operation`` asserts what it sees of the reset; this returns once it
    has, and fails after TIMEOUT if it never returns.
    """
    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(operation)
            await anyio.wait_all_tasks_blocked()
            reset_socket(sock)


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


# -- waiting on events instead of polling -------------------------------------------


class CountingStream(anyio.abc.ByteStream):
    """A byte stream wrapper that lets a test wait until bytes were received.

    Wrap the transport of a :class:`MemoryConnection` with it, and
    :meth:`wait_received` returns once the connection's receive side has
    taken that many bytes from the transport (so they are buffered in the
    connection, whoever reads them): an event-based wait, no polling.
    """

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self._stream = stream
        self.received = 0
        self.asked: list[int] = []  # max_bytes of each receive call
        self._changed: anyio.Event | None = None

    async def receive(self, max_bytes: int = 65536) -> bytes:
        self.asked.append(max_bytes)
        data = await self._stream.receive(max_bytes)
        self.received += len(data)
        if self._changed is not None:
            self._changed.set()
        return data

    async def send(self, item: bytes) -> None:
        await self._stream.send(item)

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def wait_received(self, count: int) -> None:
        """Return once ``count`` bytes in all have been received."""
        with anyio.fail_after(TIMEOUT):
            while self.received < count:
                self._changed = anyio.Event()
                await self._changed.wait()


@asynccontextmanager
async def counted_memory_pair(
    server_kwargs: dict[str, Any] | None = None,
    client_kwargs: dict[str, Any] | None = None,
) -> AsyncIterator[
    tuple[MemoryConnection, MemoryConnection, CountingStream, CountingStream]
]:
    """Like :func:`memory_pair`, with a :class:`CountingStream` on each end.

    Yields ``(server, client, server_counter, client_counter)``.
    """
    server_stream, client_stream = memory_stream_pair()
    server_counter = CountingStream(server_stream)
    client_counter = CountingStream(client_stream)
    server = MemoryConnection(server_counter, name="server", **(server_kwargs or {}))
    client = MemoryConnection(client_counter, name="client", **(client_kwargs or {}))
    async with server, client:
        yield server, client, server_counter, client_counter


class CountingSender(anyio.abc.ByteStream):
    """A byte stream wrapper that lets a test wait until bytes were sent.

    The sending twin of :class:`CountingStream`: wrap the transport of a
    :class:`MemoryConnection` with it (a real socket stream works too), and
    :meth:`wait_sent` returns once the connection has handed that many bytes
    to the transport, its heartbeats included: an event-based wait, no
    polling.
    """

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self._stream = stream
        self.sent = 0
        self._changed: anyio.Event | None = None

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self._stream.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        await self._stream.send(item)
        self.sent += len(item)
        if self._changed is not None:
            self._changed.set()

    async def send_eof(self) -> None:
        await self._stream.send_eof()

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def wait_sent(self, count: int) -> None:
        """Return once ``count`` bytes in all have been sent."""
        with anyio.fail_after(TIMEOUT):
            while self.sent < count:
                self._changed = anyio.Event()
                await self._changed.wait()


class CountingBackoff(Backoff):
    """A :class:`~anytcpip.Backoff` that counts the delays a client takes.

    A reconnecting client takes one delay after each failed or lost
    connection: :meth:`wait_for_delays` waits for them without polling.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "taken", 0)
        object.__setattr__(self, "_changed", None)

    taken: int
    _changed: anyio.Event | None

    def delays(self) -> Iterator[float]:
        for delay in super().delays():
            object.__setattr__(self, "taken", self.taken + 1)
            if self._changed is not None:
                self._changed.set()
            yield delay

    async def wait_for_delays(self, count: int) -> None:
        """Return once the client has taken ``count`` delays."""
        with anyio.fail_after(TIMEOUT):
            while self.taken < count:
                object.__setattr__(self, "_changed", anyio.Event())
                assert self._changed is not None
                await self._changed.wait()


# -- a small binary protocol, for the toolkit tests -----------------------------------


class Header(ctypes.LittleEndianStructure):
    """Header of the test protocol: an id, the body length and a counter."""

    _pack_ = 1
    _fields_ = [
        ("frame_id", ctypes.c_uint16),
        ("length", ctypes.c_uint16),
        ("counter", ctypes.c_uint32),
    ]


class Command(ctypes.LittleEndianStructure):
    """A command body."""

    _pack_ = 1
    _fields_ = [("code", ctypes.c_uint32), ("value", ctypes.c_double)]


class Ack(ctypes.LittleEndianStructure):
    """The reply to a command (its header carries the command's counter)."""

    _pack_ = 1
    _fields_ = [("status", ctypes.c_int32)]


COMMAND, ACK, TELEMETRY = 1, 2, 3
"""Message ids of the test protocol."""


# -- the framing core ----------------------------------------------------------------


def drain_lines(frames: FrameBuffer, terminator: bytes) -> list[bytes]:
    """Take every complete line out of ``frames``."""
    lines = []
    while (line := frames.next_line(terminator)) is not NEED_DATA:
        assert isinstance(line, bytes)
        lines.append(line)
    return lines


def segments(wire: bytes, sizes: list[int]) -> Iterator[bytes]:
    """Cut ``wire`` into pieces of ``sizes`` bytes, then the rest, as TCP might."""
    position = 0
    for size in [*sizes, len(wire)]:
        if position >= len(wire):
            return
        yield wire[position : position + size]
        position += size


def channel_of(end: Any) -> Channel:
    """The current connection (``Channel``) of a client or server (private state)."""
    channel = end._channel
    assert isinstance(channel, Channel)
    return channel


def on_asyncio() -> bool:
    """Whether the running backend is asyncio (with or without uvloop)."""
    import sniffio

    return sniffio.current_async_library() == "asyncio"
