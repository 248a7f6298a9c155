"""Shared helpers for the behaviour tests."""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from anytcpip.testing import CallbackRecorder, connected_pair

__all__ = [
    "TIMEOUT",
    "CallbackRecorder",
    "connected_pair",
    "ipv6_available",
    "raw_peer",
    "reset_socket",
]

TIMEOUT = 5  # seconds: a bound on every wait, so a bug fails instead of hanging


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
