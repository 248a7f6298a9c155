"""Large writes to a peer that is not reading: backpressure, drain, cancellation.

A large message is handed to the OS directly; on asyncio and uvloop what the
kernel does not take at once stays in the transport's buffer, on trio it is
queued, and the flusher task sends it or waits for it (see
``anytcpip._send``). Either way, what a user sees must be the same: writes
wait while the peer does not read, a cancelled write sends nothing,
``drain`` waits for everything, nothing is lost or interleaved, and two
peers that both write before they read do not wait for each other while
the send buffer has room.
"""

from __future__ import annotations

import socket

import anyio
import pytest

import anytcpip
from anytcpip import Client, OneClientServer
from helpers import (
    TIMEOUT,
    CallbackRecorder,
    channel_of,
    connected_pair,
    reset_while_blocked,
)

CHUNK = b"x" * (1 << 20)


async def fill(client: anytcpip.BaseClientOrServer) -> int:
    """Write CHUNKs until one waits 0.2 s (the peer reads nothing).

    Returns the bytes written (the write that waited was cancelled).
    """
    written = 0
    with anyio.fail_after(TIMEOUT):
        while True:
            with anyio.move_on_after(0.2) as scope:
                await client.write(CHUNK)
            if scope.cancelled_caught:
                return written  # the cancelled write sent nothing
            written += len(CHUNK)


async def test_large_writes_to_a_reading_peer_need_no_flusher(
    anyio_backend_name: str,
) -> None:
    """Large writes behind a direct send's backlog need no flusher task.

    On asyncio and uvloop, what the kernel does not take of a large write
    stays in the transport; the next one is queued, and the transport hands
    it over once it has sent the first (from its ``resume_writing``), so the
    writer is the only task woken per message, as with anyio's own send;
    waking the flusher task cost a second task switch per message.
    Everything arrives, in order.
    """
    messages = [bytes([ord("a") + i % 26]) * (256 << 10) for i in range(64)]
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:

                async def write_all() -> None:
                    for message in messages:
                        await client.write(message)

                tg.start_soon(write_all)
                received = await server.readexactly(sum(map(len, messages)))
        assert received == b"".join(messages)
        assert client.stats.messages_sent == len(messages)
        if anyio_backend_name == "asyncio":  # uvloop too; trio queues partial sends
            assert not channel_of(client).sender._flusher_started


async def test_drain_waits_for_what_a_large_write_left() -> None:
    async with connected_pair() as (server, client):
        written = await fill(client)
        with anyio.move_on_after(0.2) as scope:
            await client.drain()  # the peer reads nothing: it cannot finish
        assert scope.cancelled_caught
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.drain)
                assert await server.readexactly(written) == b"x" * written
            await client.drain()  # at once now


async def test_writers_behind_a_large_write_each_send_whole() -> None:
    """Several writers wait behind the same backlog; one is cancelled."""
    async with connected_pair() as (server, client):
        written = await fill(client)
        messages = [bytes([ord("a") + i]) * 100_000 for i in range(3)]
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                for message in messages:
                    tg.start_soon(client.write, message)
                cancelled = anyio.CancelScope()

                async def cancelled_writer() -> None:
                    with cancelled:
                        await client.write(b"!" * 100_000)

                tg.start_soon(cancelled_writer)
                await anyio.wait_all_tasks_blocked()
                cancelled.cancel()
                assert await server.readexactly(written) == b"x" * written
            received = await server.readexactly(3 * 100_000)
        # Whole and in some order, never interleaved; nothing of the cancelled one.
        parts = [received[i : i + 100_000] for i in range(0, len(received), 100_000)]
        assert sorted(parts) == messages
        assert client.stats.messages_sent == written // len(CHUNK) + 3


@pytest.mark.parametrize("blocked", ["write", "drain"])
async def test_close_while_a_write_or_a_drain_waits(blocked: str) -> None:
    """This end closes while the peer reads nothing.

    close() returns within its bound, dropping what is still queued, and the
    write or drain() that waited gets a ConnectionError: neither returns as
    if its data had been sent.
    """
    async with OneClientServer(port=0) as server:
        async with Client("127.0.0.1", server.port) as client:
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
            await fill(client)
            with anyio.fail_after(TIMEOUT):
                async with anyio.create_task_group() as tg:

                    async def waiter() -> None:
                        with pytest.raises(ConnectionError):
                            if blocked == "write":
                                await client.write(CHUNK)
                            else:
                                await client.drain()

                    tg.start_soon(waiter)
                    await anyio.wait_all_tasks_blocked()
                    await client.close()
            assert not client.connected


async def test_both_ends_write_a_large_message_then_a_small_one_then_read() -> None:
    """Full duplex: neither end's second write waits for the other end to read.

    Each large message is more than the kernel's buffers hold; the small one
    after it still fits in the send buffer, so both ends reach their read.
    """
    size = 32 << 20
    received: dict[str, int] = {}

    async def side(conn: anytcpip.BaseClientOrServer, name: str) -> None:
        await conn.write(b"x" * size)
        await conn.write(b"end")
        data = await conn.readexactly(size + 3)
        assert data.endswith(b"xend")
        received[name] = len(data)

    async with connected_pair() as (server, client):
        with anyio.fail_after(4 * TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(side, client, "client")
                tg.start_soon(side, server, "server")
    assert received == {"client": size + 3, "server": size + 3}


async def test_both_ends_write_two_large_messages_then_read() -> None:
    """The second large message is queued (the send queue had room).

    On asyncio and uvloop the first one's rest stays in the transport,
    which hands it the second once it has sent the first: neither end's
    second write waits for the other end to read.
    """
    size = 16 << 20  # more than the kernel's buffers hold

    async def side(conn: anytcpip.BaseClientOrServer, tag: bytes) -> None:
        await conn.write(tag * size)
        await conn.write(tag * size)
        data = await conn.readexactly(2 * size)
        assert data.count(data[:1]) == 2 * size

    async with connected_pair() as (server, client):
        with anyio.fail_after(4 * TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(side, client, b"c")
                tg.start_soon(side, server, b"s")


async def test_drain_after_the_peer_read_everything_and_left() -> None:
    """Nothing was dropped: drain() returns, though the connection is gone."""
    recorder = CallbackRecorder()
    data = b"x" * (16 << 20)  # more than the kernel's buffers hold
    async with connected_pair(client_kwargs={"connect_callback": recorder}) as (
        server,
        client,
    ):
        assert await recorder.wait_for(1) == [True]
        with anyio.fail_after(TIMEOUT):
            await client.write(data)  # the transport keeps what the kernel does not
            assert await server.readexactly(len(data)) == data
            await server.close()
            assert await recorder.wait_for(2) == [True, False]
            await client.drain()


async def test_drain_raises_if_the_connection_is_lost_with_data_unsent() -> None:
    """A peer that resets with data still queued: drain() says it was not sent."""
    async with OneClientServer(port=0) as server:
        sock = socket.create_connection(("127.0.0.1", server.port))
        try:
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
            await fill(server)  # the raw peer reads nothing

            async def drainer() -> None:
                with pytest.raises(ConnectionError):
                    await server.drain()

            await reset_while_blocked(sock, drainer)
        finally:
            sock.close()
