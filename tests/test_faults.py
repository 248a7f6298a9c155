"""Fault injection: resets, closes mid-operation, floods, garbage, cancellation.

Each test asserts exact outcomes: which exception, which callback sequence,
and that no byte is lost or duplicated.
"""

from __future__ import annotations

import ctypes
import os
import random
import socket
import sys
import threading

import anyio
import anyio.lowlevel
import pytest

import anytcpip
from anytcpip import Client, OneClientServer
from helpers import TIMEOUT, CallbackRecorder, connected_pair, raw_peer, reset_socket


class Sample(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint64), ("values", ctypes.c_double * 7)]


def _open_fds() -> int | None:
    for path in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(path):
            return len(os.listdir(path))
    return None


# -- resets -----------------------------------------------------------------------


async def test_reset_while_reading() -> None:
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        sock = socket.create_connection(("127.0.0.1", server.port))
        try:
            await recorder.wait_for(1)
            with anyio.fail_after(TIMEOUT):
                async with anyio.create_task_group() as tg:

                    async def reader() -> None:
                        with pytest.raises(ConnectionError):
                            await server.read_str()

                    tg.start_soon(reader)
                    await anyio.wait_all_tasks_blocked()
                    reset_socket(sock)
        finally:
            sock.close()
        assert await recorder.wait_for(2) == [True, False]


async def test_reset_while_writing() -> None:
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        sock = socket.create_connection(("127.0.0.1", server.port))
        try:
            await recorder.wait_for(1)
            with anyio.fail_after(TIMEOUT):
                async with anyio.create_task_group() as tg:

                    async def writer() -> None:
                        with pytest.raises(ConnectionError):
                            while True:  # the peer never reads: we block
                                await server.write(b"w" * 65536)

                    tg.start_soon(writer)
                    await anyio.wait_all_tasks_blocked()
                    reset_socket(sock)
        finally:
            sock.close()
        assert await recorder.wait_for(2) == [True, False]
        assert server.should_be_connected and not server.connected


async def test_server_closed_while_client_blocked_in_read_str() -> None:
    recorder = CallbackRecorder()
    async with connected_pair({}, {"connect_callback": recorder}) as (server, client):
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:

                async def reader() -> None:
                    with pytest.raises(ConnectionError, match="closed by the peer"):
                        await client.read_str()

                tg.start_soon(reader)
                await anyio.wait_all_tasks_blocked()
                await server.close()
        assert await recorder.wait_for(2) == [True, False]


async def test_client_closed_while_server_blocked_in_read_into() -> None:
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:

                async def reader() -> None:
                    with pytest.raises(anytcpip.IncompleteReadError) as info:
                        await server.read_into(Sample())
                    assert info.value.partial == b"\x05" * 10
                    assert info.value.expected == ctypes.sizeof(Sample)

                tg.start_soon(reader)
                await anyio.wait_all_tasks_blocked()
                await client.write(b"\x05" * 10)
                await client.close()


# -- backpressure and bounded memory --------------------------------------------------


async def test_writes_to_a_peer_that_stopped_reading_block() -> None:
    async with connected_pair() as (server, client):
        sent = 0
        chunk = b"b" * 65536
        with anyio.move_on_after(1.0) as scope:
            while True:
                await client.write(chunk)
                sent += len(chunk)
        assert scope.cancelled_caught, "writes never blocked"
        # Blocked long before 64 MiB: only kernel buffers, the server's bounded
        # receive buffer and the client's bounded send buffer hold the data.
        assert 0 < sent < 64 * 1024 * 1024
        # The write cancelled while waiting queued nothing; the connection is
        # intact and the server receives exactly the completed writes.
        assert client.connected
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.write_str, "end")
                assert await server.readexactly(sent) == b"b" * sent
                assert await server.read_str() == "end"


async def test_blocked_write_fails_when_silent_peer_is_declared_dead() -> None:
    async with OneClientServer(port=0, heartbeat_timeout=0.3) as server:
        async with raw_peer(server.port):  # connects, never reads, never sends
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
                with pytest.raises(ConnectionError, match="heartbeat_timeout"):
                    while True:
                        await server.write(b"h" * 65536)


def _send_in_thread(port: int, total: int, chunk: bytes, sent: list[int]) -> None:
    """Send ``total`` bytes (no terminator); stop when the peer goes away."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(TIMEOUT)
        try:
            while sent[0] < total:
                sock.sendall(chunk)
                sent[0] += len(chunk)
        except OSError:
            pass


async def test_100_mib_without_terminator_stays_bounded() -> None:
    """LimitOverrunError comes early; the sender then feels backpressure."""
    total = 100 * 1024 * 1024
    chunk = b"n" * (1024 * 1024)
    sent = [0]
    async with OneClientServer(port=0) as server:
        thread = threading.Thread(
            target=_send_in_thread, args=(server.port, total, chunk, sent)
        )
        thread.start()
        try:
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
                with pytest.raises(anytcpip.LimitOverrunError):
                    await server.read_str()
            # Nobody reads now: the sender must stall far below 100 MiB.
            with anyio.fail_after(TIMEOUT):
                previous = -1
                while sent[0] != previous:
                    previous = sent[0]
                    await anyio.sleep(0.2)
            assert sent[0] < 32 * 1024 * 1024
            # Drain the rest: nothing lost, every byte as sent.
            received = 0
            with anyio.fail_after(TIMEOUT * 4):
                while received < total:
                    data = await server.read(1 << 20)
                    assert data, "stream ended early"
                    received += len(data)
            assert received == total
        finally:
            await server.close()
            thread.join(TIMEOUT)


# -- many clients ---------------------------------------------------------------------


async def test_1000_connect_disconnect_cycles_leak_nothing() -> None:
    recorder = CallbackRecorder()
    cycles = 1000
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        # Warm up once so lazily created resources are not counted as leaks.
        async with Client("127.0.0.1", server.port):
            await recorder.wait_for(1)
        await recorder.wait_for(2)
        await anyio.wait_all_tasks_blocked()  # let the warm-up's tasks finish
        fds_before = _open_fds()
        tasks_before = len(anyio.get_running_tasks())
        for i in range(1, cycles + 1):
            async with Client("127.0.0.1", server.port):
                pass
            await recorder.wait_for(2 + 2 * i)
        assert recorder.states == [True, False] * (cycles + 1)
        assert server.rejected_count == 0
        await anyio.wait_all_tasks_blocked()
        assert len(anyio.get_running_tasks()) == tasks_before
        if fds_before is not None:
            assert _open_fds() == fds_before


async def test_flood_of_extra_clients_while_one_streams() -> None:
    extras, lines = 200, 5000
    async with connected_pair() as (server, client):

        async def extra() -> None:
            try:
                async with raw_peer(server.port) as stream:
                    with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                        await stream.receive()
            except OSError:
                pytest.fail("an extra client could not even connect")

        async def stream_lines() -> None:
            for i in range(lines):
                await client.write_str(f"line {i}")

        with anyio.fail_after(TIMEOUT * 6):
            async with anyio.create_task_group() as tg:
                for _ in range(extras):
                    tg.start_soon(extra)
                tg.start_soon(stream_lines)
                for i in range(lines):
                    assert await server.read_str() == f"line {i}"
            # Still responsive.
            await server.write_str("pong")
            assert await client.read_str() == "pong"
        assert server.rejected_count == extras
        assert server.connected and client.connected


# -- cancellation at arbitrary points -------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
async def test_randomly_cancelled_reads_lose_nothing(seed: int) -> None:
    rng = random.Random(seed)
    messages = [f"{i}:" + "x" * rng.randrange(0, 3000) for i in range(300)]
    structs = [Sample(i, (float(i),) * 7) for i in range(100)]
    async with connected_pair() as (server, client):

        async def send() -> None:
            payload = b"".join(m.encode() + b"\r\n" for m in messages)
            payload += b"".join(bytes(s) for s in structs)
            position = 0
            while position < len(payload):
                size = rng.randrange(1, 5000)
                await client.write(payload[position : position + size])
                position += size
                if rng.random() < 0.3:
                    await anyio.lowlevel.checkpoint()

        with anyio.fail_after(TIMEOUT * 4):
            async with anyio.create_task_group() as tg:
                tg.start_soon(send)
                received: list[str] = []
                while len(received) < len(messages):
                    with anyio.move_on_after(rng.choice([0, 0.0001, 0.001, 1])):
                        received.append(await server.read_str())
                assert received == messages
                got: list[int] = []
                while len(got) < len(structs):
                    sample = Sample()
                    with anyio.move_on_after(rng.choice([0, 0.0001, 0.001, 1])):
                        await server.read_into(sample)
                        got.append(sample.index)
                        assert list(sample.values) == [float(sample.index)] * 7
                assert got == list(range(len(structs)))


@pytest.mark.parametrize("seed", range(3))
async def test_randomly_cancelled_writes_never_corrupt(seed: int) -> None:
    """Each message arrives whole or not at all; at most the connection closes."""
    rng = random.Random(seed)
    async with connected_pair({"max_line_length": 1 << 20}) as (server, client):
        completed: list[str] = []
        received: list[str] = []

        async def send() -> None:
            for i in range(300):
                message = f"{i}:" + chr(65 + i % 26) * rng.randrange(1, 200_000)
                with anyio.move_on_after(rng.choice([0, 0.0005, 0.005, 1])) as scope:
                    try:
                        await client.write_str(message)
                    except ConnectionError:
                        return  # an earlier cancelled write closed it
                if not scope.cancelled_caught:
                    completed.append(message)
                elif not client.connected:
                    return  # cancelled part-way: the connection was closed

        async def receive() -> None:
            while True:
                try:
                    received.append(await server.read_str())
                except (ConnectionError, anytcpip.IncompleteReadError):
                    return

        with anyio.fail_after(TIMEOUT * 4):
            async with anyio.create_task_group() as tg:
                tg.start_soon(receive)
                await send()
                await client.close()
        # Whole messages only, in order, and every completed write arrived.
        for message in received:
            index, _, body = message.partition(":")
            assert body == chr(65 + int(index) % 26) * len(body)
        indices = [int(m.partition(":")[0]) for m in received]
        assert indices == sorted(set(indices))
        assert [m for m in received if m in completed] == completed


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file descriptors")
async def test_no_fd_leak_after_rejections() -> None:
    async with connected_pair() as (server, _client):
        fds_before = _open_fds()
        for _ in range(50):
            async with raw_peer(server.port) as stream:
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    with anyio.fail_after(TIMEOUT):
                        await stream.receive()
        assert server.rejected_count == 50
        assert _open_fds() == fds_before


async def test_peer_half_close_keeps_data_then_ends_connection() -> None:
    """A peer that shuts down its sending side: we read everything, then EOF."""
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        async with raw_peer(server.port) as peer:
            await peer.send(b"first\r\nsecond\r\n")
            await peer.send_eof()
            assert await recorder.wait_for(2) == [True, False]
            with anyio.fail_after(TIMEOUT):
                assert await server.read_str() == "first"
                assert await server.read_str() == "second"
                with pytest.raises(ConnectionError, match="closed by the peer"):
                    await server.read_str()
                # We closed our side too: the peer sees end of stream.
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await peer.receive()
