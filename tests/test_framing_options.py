"""Separate read/write terminators, length-prefixed frames, statistics."""

from __future__ import annotations

import sys
import time

import anyio
import pytest

import anytcpip
from anytcpip import Client, OneClientServer
from helpers import (
    TIMEOUT,
    CallbackRecorder,
    connected_pair,
    memory_pair,
    raw_peer,
)


async def test_separate_read_and_write_terminators() -> None:
    # A laser controller: reads lines ending in CR, writes CR LF ETX.
    laser = {"read_terminator": b"\r", "write_terminator": b"\r\n\x03"}
    host = {"read_terminator": b"\r\n\x03", "write_terminator": b"\r"}
    async with connected_pair(laser, host) as (server, client):
        assert server.read_terminator == b"\r"
        assert server.write_terminator == b"\r\n\x03"
        with anyio.fail_after(TIMEOUT):
            await client.write_str("STATUS?")
            assert await server.read_str() == "STATUS?"
            await server.write_str("OK 42")
            assert await client.readexactly(8) == b"OK 42\r\n\x03"


async def test_terminator_sets_both() -> None:
    async with connected_pair({"terminator": b"\n"}, {"terminator": b"\n"}) as (
        server,
        client,
    ):
        assert client.read_terminator == client.write_terminator == b"\n"
        with anyio.fail_after(TIMEOUT):
            await client.write_str("x")
            assert await server.readline() == b"x\n"


@pytest.mark.parametrize("prefix", [1, 2, 4])
@pytest.mark.parametrize("byteorder", ["big", "little"])
async def test_length_prefixed_frames(prefix: int, byteorder: str) -> None:
    kwargs = {"frame_prefix": prefix, "frame_byteorder": byteorder}
    async with connected_pair(kwargs, kwargs) as (server, client):
        payloads = [b"", b"a", bytes(range(200)), b"\x00\r\n" * 50]
        with anyio.fail_after(TIMEOUT):
            for payload in payloads:
                await client.write_frame(payload)
            for payload in payloads:
                assert await server.read_frame() == payload
            # The wire format is exactly prefix + payload.
            await client.write_frame(b"xyz")
            header = await server.readexactly(prefix)
            assert int.from_bytes(header, byteorder) == 3  # type: ignore[arg-type]
            assert await server.readexactly(3) == b"xyz"


async def test_frame_over_the_maximum() -> None:
    async with connected_pair({"max_frame_size": 10}, {"max_frame_size": 100}) as (
        server,
        client,
    ):
        with pytest.raises(anytcpip.FrameTooLargeError, match="max_frame_size=100"):
            await client.write_frame(b"x" * 101)
        await client.write_frame(b"y" * 11)
        with anyio.fail_after(TIMEOUT):
            with pytest.raises(anytcpip.FrameTooLargeError) as info:
                await server.read_frame()
        assert (info.value.size, info.value.max_size) == (11, 10)
        # Nothing was consumed.
        assert await server.readexactly(4) == (11).to_bytes(4, "big")


async def test_frame_cut_short_by_the_peer() -> None:
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        async with raw_peer(server.port) as peer:
            await peer.send((10).to_bytes(4, "big") + b"abc")
        await recorder.wait_for(2)
        with pytest.raises(anytcpip.IncompleteReadError) as info:
            await server.read_frame()
        assert info.value.partial == (10).to_bytes(4, "big") + b"abc"
        assert info.value.expected == 14


def test_frame_options_validation() -> None:
    with pytest.raises(ValueError, match="frame_prefix"):
        OneClientServer(frame_prefix=3)
    with pytest.raises(ValueError, match="max_frame_size"):
        OneClientServer(frame_prefix=1, max_frame_size=256)
    with pytest.raises(ValueError, match="frame_byteorder"):
        OneClientServer(frame_byteorder="middle")
    with pytest.raises(ValueError, match="write_terminator"):
        Client("127.0.0.1", 1, write_terminator=b"")


async def test_stats() -> None:
    async with OneClientServer(port=0) as server:
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
