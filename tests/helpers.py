"""Shared helpers for the behaviour tests."""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from anytcpip import Client, OneClientServer

TIMEOUT = 5  # seconds: a bound on every wait, so a bug fails instead of hanging


class CallbackRecorder:
    """An async connect_callback that records each call and lets tests wait."""

    def __init__(self) -> None:
        self.states: list[bool] = []
        self._changed = anyio.Event()

    async def __call__(self, conn: Any) -> None:
        self.states.append(conn.connected)
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, count: int) -> list[bool]:
        """Wait until at least ``count`` calls happened; return the states."""
        with anyio.fail_after(TIMEOUT):
            while len(self.states) < count:
                await self._changed.wait()
        return self.states


@asynccontextmanager
async def connected_pair(
    server_kwargs: dict[str, Any] | None = None,
    client_kwargs: dict[str, Any] | None = None,
) -> AsyncIterator[tuple[OneClientServer, Client]]:
    """A server on 127.0.0.1, port 0, with a connected client."""
    async with OneClientServer(port=0, **(server_kwargs or {})) as server:
        async with Client("127.0.0.1", server.port, **(client_kwargs or {})) as client:
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
            yield server, client


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
