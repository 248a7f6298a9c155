"""The conformance battery, run over every transport that connects two ends.

Every transport (plain TCP over IPv4 and IPv6, TLS, and an in-memory stream
with no socket at all) must pass the same checks: the kit
``anytcpip.testing.check_connection`` (round trips, ordering, empty, tiny and
large writes, concurrent reader rejected, peer close, close waking a blocked
reader or writer) and the extra checks below (full-duplex ordering, tiny and
large writes from the server, EOF semantics after either end closes, a peer's
half-close with ``send_eof`` where the transport has one, and this end's close
while the peer is blocked reading or writing).
"""

from __future__ import annotations

import ctypes
import random
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import pytest
import trustme

from anytcpip import Backoff, BaseClientOrServer, OneClientServer
from anytcpip.testing import MakePair, check_connection, connected_pair
from helpers import (
    TIMEOUT,
    CallbackRecorder,
    MemoryConnection,
    ipv6_available,
    memory_pair,
    memory_stream_pair,
)

OpenRaw = Callable[
    [dict[str, Any]],
    AbstractAsyncContextManager[tuple[BaseClientOrServer, anyio.abc.ByteStream]],
]
"""``open_raw(kwargs)``: one of our ends, connected to a bare anyio stream."""


@dataclass
class Transport:
    make_pair: MakePair
    open_raw: OpenRaw
    supports_eof: bool  # the bare stream can half-close (send_eof)


def _tcp(host: str) -> Transport:
    @asynccontextmanager
    async def make_pair(
        server_kwargs: dict[str, Any], client_kwargs: dict[str, Any]
    ) -> AsyncIterator[tuple[BaseClientOrServer, BaseClientOrServer]]:
        async with connected_pair(server_kwargs, client_kwargs, host=host) as pair:
            yield pair

    @asynccontextmanager
    async def open_raw(
        kwargs: dict[str, Any],
    ) -> AsyncIterator[tuple[BaseClientOrServer, anyio.abc.ByteStream]]:
        async with OneClientServer(host=host, port=0, **kwargs) as server:
            async with await anyio.connect_tcp(host, server.port) as stream:
                with anyio.fail_after(TIMEOUT):
                    await server.wait_connected()
                yield server, stream

    return Transport(make_pair, open_raw, supports_eof=True)


def _tls() -> Transport:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    @asynccontextmanager
    async def make_pair(
        server_kwargs: dict[str, Any], client_kwargs: dict[str, Any]
    ) -> AsyncIterator[tuple[BaseClientOrServer, BaseClientOrServer]]:
        async with connected_pair(
            {**server_kwargs, "ssl_context": server_context},
            {**client_kwargs, "ssl_context": client_context},
        ) as pair:
            yield pair

    @asynccontextmanager
    async def open_raw(
        kwargs: dict[str, Any],
    ) -> AsyncIterator[tuple[BaseClientOrServer, anyio.abc.ByteStream]]:
        async with OneClientServer(
            port=0, ssl_context=server_context, **kwargs
        ) as server:
            stream = await anyio.connect_tcp(
                "127.0.0.1", server.port, ssl_context=client_context
            )
            async with stream:
                with anyio.fail_after(TIMEOUT):
                    await server.wait_connected()
                yield server, stream

    # TLS has no half-close: anyio's TLSStream.send_eof is not supported.
    return Transport(make_pair, open_raw, supports_eof=False)


def _memory() -> Transport:
    @asynccontextmanager
    async def make_pair(
        server_kwargs: dict[str, Any], client_kwargs: dict[str, Any]
    ) -> AsyncIterator[tuple[BaseClientOrServer, BaseClientOrServer]]:
        async with memory_pair(server_kwargs, client_kwargs) as pair:
            yield pair

    @asynccontextmanager
    async def open_raw(
        kwargs: dict[str, Any],
    ) -> AsyncIterator[tuple[BaseClientOrServer, anyio.abc.ByteStream]]:
        ours, theirs = memory_stream_pair()
        async with MemoryConnection(ours, **kwargs) as end, theirs:
            yield end, theirs

    return Transport(make_pair, open_raw, supports_eof=True)


@pytest.fixture(
    params=[
        pytest.param("tcp-ipv4"),
        pytest.param(
            "tcp-ipv6",
            marks=pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback"),
        ),
        pytest.param("tls"),
        pytest.param("memory"),
    ]
)
def transport(request: pytest.FixtureRequest) -> Transport:
    """Each way of connecting a client to a server that must pass the battery."""
    name = request.param
    if name == "tcp-ipv4":
        return _tcp("127.0.0.1")
    if name == "tcp-ipv6":
        return _tcp("::1")
    if name == "tls":
        return _tls()
    return _memory()


# -- the kit -------------------------------------------------------------------------


async def test_kit(transport: Transport) -> None:
    await check_connection(transport.make_pair)


async def test_reconnecting_client() -> None:
    @asynccontextmanager
    async def make_pair(
        server_kwargs: dict[str, Any], client_kwargs: dict[str, Any]
    ) -> AsyncIterator[tuple[BaseClientOrServer, BaseClientOrServer]]:
        policy = Backoff(initial=0.01, maximum=0.1)
        async with connected_pair(
            server_kwargs, {**client_kwargs, "reconnect": policy}
        ) as pair:
            yield pair

    await check_connection(make_pair)


async def test_heartbeat_timeouts_on_both_sides() -> None:
    @asynccontextmanager
    async def make_pair(
        server_kwargs: dict[str, Any], client_kwargs: dict[str, Any]
    ) -> AsyncIterator[tuple[BaseClientOrServer, BaseClientOrServer]]:
        watchdog = {"heartbeat_timeout": 30.0}
        async with connected_pair(
            {**server_kwargs, **watchdog}, {**client_kwargs, **watchdog}
        ) as pair:
            yield pair

    await check_connection(make_pair)


async def test_the_kit_fails_a_broken_pair() -> None:
    """Mismatched terminators: the kit must report it, not hang or pass."""

    @asynccontextmanager
    async def make_pair(
        server_kwargs: dict[str, Any], client_kwargs: dict[str, Any]
    ) -> AsyncIterator[tuple[BaseClientOrServer, BaseClientOrServer]]:
        async with connected_pair(
            server_kwargs, {**client_kwargs, "terminator": b"\n"}
        ) as pair:
            yield pair

    with pytest.raises(AssertionError, match="round_trip: timed out"):
        await check_connection(make_pair, timeout=0.5)


# -- the extra checks ------------------------------------------------------------------


class Point(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint32), ("x", ctypes.c_double)]


async def test_full_duplex_ordering(transport: Transport) -> None:
    """Both ends send at once, text and structs mixed: each side gets all, in order."""
    count = 1000
    async with transport.make_pair({}, {}) as (server, client):

        async def talk(me: BaseClientOrServer, label: str) -> None:
            for i in range(count):
                if i % 3:
                    await me.write_str(f"{label} {i}")
                else:
                    await me.write_from(Point(i, i / 4))

        async def listen(me: BaseClientOrServer, label: str) -> None:
            for i in range(count):
                if i % 3:
                    assert await me.read_str() == f"{label} {i}"
                else:
                    point = Point()
                    await me.read_into(point)
                    assert (point.index, point.x) == (i, i / 4)

        with anyio.fail_after(TIMEOUT * 2):
            async with anyio.create_task_group() as tg:
                tg.start_soon(talk, client, "to server")
                tg.start_soon(talk, server, "to client")
                tg.start_soon(listen, server, "to server")
                tg.start_soon(listen, client, "to client")


async def test_tiny_and_large_writes_from_the_server(transport: Transport) -> None:
    """One-byte writes, then a 3 MiB write read back in random-sized reads."""
    rng = random.Random(7)
    big = rng.randbytes(3 * 1024 * 1024)
    async with transport.make_pair({}, {}) as (server, client):
        with anyio.fail_after(TIMEOUT * 2):
            for byte in b"tiny\r\n":
                await server.write(bytes([byte]))
            assert await client.read_str() == "tiny"
            async with anyio.create_task_group() as tg:
                tg.start_soon(server.write, big)
                received = bytearray()
                while len(received) < len(big):
                    data = await client.read(rng.randrange(1, 200_000))
                    assert data
                    received += data
            assert received == big


@pytest.mark.parametrize("closer", ["client", "server"])
async def test_eof_after_either_end_closes(transport: Transport, closer: str) -> None:
    """What was sent before the close is read; then ``b""`` once; then errors."""
    calls = CallbackRecorder()
    server_kwargs = {"connect_callback": calls} if closer == "client" else {}
    client_kwargs = {"connect_callback": calls} if closer == "server" else {}
    async with transport.make_pair(server_kwargs, client_kwargs) as (server, client):
        leaving, staying = (client, server) if closer == "client" else (server, client)
        with anyio.fail_after(TIMEOUT):
            await leaving.write_str("last line")
            await leaving.write(b"tail")
            await leaving.close()
            assert await calls.wait_for(2) == [True, False]
            assert staying.should_be_connected and not staying.connected
            assert await staying.read_str() == "last line"
            assert await staying.read(100) == b"tail"
            assert await staying.read(100) == b""
            with pytest.raises(ConnectionError, match="closed by the peer"):
                await staying.read(100)
            with pytest.raises(ConnectionError, match="closed by the peer"):
                await staying.write_str("anyone?")


async def test_half_close_by_the_peer(transport: Transport) -> None:
    """A peer's ``send_eof``: its data is read, then EOF; we close our side too."""
    if not transport.supports_eof:
        pytest.skip("this transport has no half-close")
    calls = CallbackRecorder()
    async with transport.open_raw({"connect_callback": calls}) as (end, peer):
        with anyio.fail_after(TIMEOUT):
            await peer.send(b"first\r\nsecond\r\npartial")
            await peer.send_eof()
            assert await calls.wait_for(2) == [True, False]
            assert await end.read_str() == "first"
            assert await end.read_str() == "second"
            with pytest.raises(ConnectionError):
                await end.write_str("too late")  # we do not half-open
            with pytest.raises(EOFError) as info:  # IncompleteReadError
                await end.read_str()
            assert info.value.partial == b"partial"  # type: ignore[attr-defined]
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await peer.receive()


async def test_close_while_the_peer_is_blocked_reading(transport: Transport) -> None:
    async with transport.make_pair({}, {}) as (server, client):
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:

                async def reader() -> None:
                    with pytest.raises(ConnectionError, match="closed by the peer"):
                        await server.read_str()

                tg.start_soon(reader)
                await anyio.wait_all_tasks_blocked()
                await client.close()


async def test_close_while_the_peer_is_blocked_writing(transport: Transport) -> None:
    async with transport.make_pair({}, {}) as (server, client):
        written = 0
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:

                async def writer() -> None:
                    nonlocal written
                    with pytest.raises(ConnectionError):
                        while True:  # the client never reads: backpressure
                            await server.write(b"w" * 65536)
                            written += 65536

                tg.start_soon(writer)
                await anyio.wait_all_tasks_blocked()
                await client.close()
        assert written > 0
