"""Shared helpers for the behaviour tests."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import anyio.lowlevel

from anytcpip.testing import (
    CallbackRecorder,
    MemoryByteStream,
    MemoryConnection,
    connected_pair,
    memory_pair,
    memory_stream_pair,
)

__all__ = [
    "FIGURES",
    "TIMEOUT",
    "CallbackRecorder",
    "MemoryByteStream",
    "MemoryConnection",
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
