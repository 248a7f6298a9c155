"""Connection statistics: traffic counters, history, round-trip time."""

from __future__ import annotations

import socket
import sys
import time

import anyio
import pytest

import anytcpip
from anytcpip import Client, OneClientServer
from helpers import (
    TIMEOUT,
    CallbackRecorder,
    CountingBackoff,
    connected_pair,
    memory_pair,
    raw_peer,
)


async def test_stats() -> None:
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        assert server.stats == anytcpip.ConnectionStats()
        before = time.monotonic()
        async with Client("127.0.0.1", server.port) as client:
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
                await client.write_str("one")  # 5 bytes
                await client.write_json({"a": 1})  # 10 bytes
                await client.write_from(anytcpip_struct(), anytcpip_struct())
                assert await server.read_str() == "one"
                assert await server.read_json() == {"a": 1}
                await server.readexactly(8)
                await client.drain()
            stats = client.stats
            assert stats.messages_sent == 4
            assert stats.bytes_sent == 5 + 10 + 8
            assert stats.connects == 1 and stats.disconnects == 0
            server_stats = server.stats
            assert server_stats.messages_received == 3
            assert server_stats.bytes_received == 23
            assert server_stats.last_received is not None
            assert server_stats.last_received >= before
        # The server must have seen the client leave before the next comes.
        assert await recorder.wait_for(2) == [True, False]
        async with raw_peer(server.port):
            async with raw_peer(server.port) as extra:
                with anyio.fail_after(TIMEOUT):
                    with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                        await extra.receive()
        recorder_done = server.stats
        assert recorder_done.connects == 2
        assert recorder_done.rejected_clients == 1
        assert recorder_done.bytes_received == 23  # kept after the client left


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_INFO is Linux's")
async def test_stats_round_trip_time() -> None:
    policy = {"heartbeat_interval": 0.01}
    async with connected_pair(policy, policy) as (server, client):
        with anyio.fail_after(TIMEOUT):
            await client.write_str("ping")
            assert await server.read_str() == "ping"
            await server.write_str("pong")
            assert await client.read_str() == "pong"
        for end in (server, client):
            rtt = end.stats.round_trip_time
            assert rtt is not None and 0 < rtt < 1.0, rtt  # loopback: microseconds
        await client.close()
        assert client.stats.round_trip_time is None  # not connected
    async with memory_pair() as (ours, _theirs):
        assert ours.stats.round_trip_time is None  # no TCP underneath


def anytcpip_struct() -> object:
    import ctypes

    return ctypes.c_uint32(7)


async def test_stats_count_reconnect_attempts_and_rejected_clients() -> None:
    # Each class reports its own counter through the base class's hooks.
    policy = CountingBackoff(initial=0.01, maximum=0.05)
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with Client("127.0.0.1", port, reconnect=policy) as client:
        await policy.wait_for_delays(2)
        stats = client.stats
        assert stats.reconnect_attempts >= 2
        assert stats.reconnect_attempts <= client.reconnect_attempts
        assert stats.rejected_clients == 0
    async with memory_pair() as (ours, _theirs):
        assert ours.stats.reconnect_attempts == ours.stats.rejected_clients == 0


async def test_reads_after_the_peer_left_are_counted() -> None:
    """Messages read after the connection ended count, as do later ones."""
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        for connection in (1, 2):
            async with Client("127.0.0.1", server.port) as client:
                with anyio.fail_after(TIMEOUT):
                    await server.wait_connected()
                    for i in range(5):
                        await client.write_str(f"line {i}")  # 8 bytes each
                    await client.drain()
            assert await recorder.wait_for(2 * connection) == [True, False] * connection
            assert not server.connected
            with anyio.fail_after(TIMEOUT):
                for i in range(5):  # still buffered: read after the client left
                    assert await server.read_str() == f"line {i}"
            stats = server.stats
            assert stats.messages_received == 5 * connection
            assert stats.bytes_received == 40 * connection
            assert stats.connects == stats.disconnects == connection


async def test_every_read_is_counted_as_it_happens() -> None:
    """``messages_received`` is exact after every read, buffered or not.

    Thousands of messages arrive at once, so most reads are served from the
    buffer (past several of the points where a run of such reads yields to
    the scheduler); text and struct reads alternate, and the last ones are
    made after the peer left.
    """
    import ctypes

    count = 2500
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            for i in range(count):
                if i % 2:
                    await client.write_from(ctypes.c_uint32(i))
                else:
                    await client.write_str(f"line {i}")
            await client.drain()
            await client.close()
            value = ctypes.c_uint32()
            for i in range(count):
                if i % 2:
                    await server.read_into(value)
                    assert value.value == i
                else:
                    assert await server.read_str() == f"line {i}"
                assert server.stats.messages_received == i + 1
            with pytest.raises(ConnectionError):  # nothing left
                await server.read_str()
    assert server.stats.messages_received == count
