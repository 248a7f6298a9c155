"""Fault injection: resets, closes mid-operation, floods, garbage, cancellation.

Each test asserts exact outcomes: which exception, which callback sequence,
and that no byte is lost or duplicated.
"""

from __future__ import annotations

import ctypes
import functools
import random
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.lowlevel
import pytest

import anytcpip
from anytcpip import Client, OneClientServer
from helpers import (
    TIMEOUT,
    CallbackRecorder,
    blackhole_proxy,
    cancel_after_checkpoints,
    connected_pair,
    open_fds,
    raw_peer,
    reset_socket,
    reset_while_blocked,
    rss_bytes,
)

Figures = Callable[[str], None]
MiB = 1024 * 1024


class Sample(ctypes.Structure):
    _fields_ = [("index", ctypes.c_uint64), ("values", ctypes.c_double * 7)]


# -- resets -----------------------------------------------------------------------


async def test_reset_while_reading() -> None:
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        sock = socket.create_connection(("127.0.0.1", server.port))
        try:
            await recorder.wait_for(1)

            async def reader() -> None:
                with pytest.raises(anytcpip.ConnectionLostError, match="lost"):
                    await server.read_str()

            await reset_while_blocked(sock, reader)
        finally:
            sock.close()
        assert await recorder.wait_for(2) == [True, False]


async def test_reset_while_writing() -> None:
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        sock = socket.create_connection(("127.0.0.1", server.port))
        try:
            await recorder.wait_for(1)

            async def writer() -> None:
                with pytest.raises(anytcpip.ConnectionLostError, match="lost"):
                    while True:  # the peer never reads: we block
                        await server.write(b"w" * 65536)

            await reset_while_blocked(sock, writer)
        finally:
            sock.close()
        assert await recorder.wait_for(2) == [True, False]
        assert server.should_be_connected and not server.connected


async def test_reset_while_idle() -> None:
    """Noticed without reading or writing; then every read and write fails."""
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        sock = socket.create_connection(("127.0.0.1", server.port))
        try:
            assert await recorder.wait_for(1) == [True]
        finally:
            reset_socket(sock)
        assert await recorder.wait_for(2) == [True, False]
        assert server.should_be_connected and not server.connected
        with anyio.fail_after(TIMEOUT):
            with pytest.raises(anytcpip.ConnectionLostError, match="lost"):
                await server.read_str()
            with pytest.raises(anytcpip.ConnectionLostError, match="lost"):
                await server.write_str("anyone?")
        assert recorder.states == [True, False]


async def test_client_reset_by_the_server_while_reading() -> None:
    recorder = CallbackRecorder()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        async with Client("127.0.0.1", port, connect_callback=recorder) as client:
            conn, _ = listener.accept()  # already in the backlog: does not block
            try:
                conn.sendall(b"whole\r\n")
                with anyio.fail_after(TIMEOUT):
                    assert await client.read_str() == "whole"
                    async with anyio.create_task_group() as tg:

                        async def reader() -> None:
                            with pytest.raises(
                                anytcpip.ConnectionLostError, match="lost"
                            ):
                                await client.read_str()

                        tg.start_soon(reader)
                        await anyio.wait_all_tasks_blocked()
                        reset_socket(conn)
            finally:
                conn.close()
            assert await recorder.wait_for(2) == [True, False]
            assert client.should_be_connected and not client.connected


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
    recorder = CallbackRecorder()
    async with OneClientServer(
        port=0, heartbeat_timeout=0.3, connect_callback=recorder
    ) as server:
        async with raw_peer(server.port):  # connects, never reads, never sends
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
                with pytest.raises(
                    anytcpip.ConnectionLostError, match="heartbeat_timeout"
                ):
                    while True:
                        await server.write(b"h" * 65536)
                assert await recorder.wait_for(2) == [True, False]
                assert server.should_be_connected and not server.connected


async def test_vanished_peer_makes_writes_fail_not_hang() -> None:
    """A relay that goes silent (no FIN, no reset): heartbeats find out.

    Both ends send heartbeats and watch for them. Once the network between
    them vanishes, the client, blocked in a write, and the server, idle, both
    declare the connection lost within ``heartbeat_timeout``, report it, and
    fail every later write with ``ConnectionError``.
    """
    server_calls, client_calls = CallbackRecorder(), CallbackRecorder()
    watchdog: dict[str, Any] = {"heartbeat_interval": 0.04, "heartbeat_timeout": 0.4}
    async with OneClientServer(
        port=0, connect_callback=server_calls, **watchdog
    ) as server:
        async with blackhole_proxy(server.port) as (port, vanish):
            async with Client(
                "127.0.0.1", port, connect_callback=client_calls, **watchdog
            ) as client:
                with anyio.fail_after(TIMEOUT):
                    await server.wait_connected()
                    # Heartbeats keep a quiet connection alive past the timeout.
                    await anyio.sleep(0.8)
                    assert server.connected and client.connected
                    await client.write_str("before")
                    assert await server.read_str() == "before"
                    vanish.set()
                    started = time.monotonic()
                    with pytest.raises(
                        anytcpip.ConnectionLostError, match="heartbeat_timeout"
                    ):
                        while True:  # soon blocked: the relay stopped reading
                            await client.write(b"v" * 65536)
                    assert time.monotonic() - started < 0.4 + 2.0
                    assert await client_calls.wait_for(2) == [True, False]
                    assert await server_calls.wait_for(2) == [True, False]
                    for end in (client, server):
                        assert end.should_be_connected and not end.connected
                        with pytest.raises(ConnectionError):
                            await end.write_str("anyone?")


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


async def test_100_mib_without_terminator_stays_bounded(figures: Figures) -> None:
    """LimitOverrunError comes early; the sender then feels backpressure.

    While nobody reads, the sender stalls far below 100 MiB and resident
    memory grows by far less than what was sent; draining then delivers all
    100 MiB, byte for byte.
    """
    total = 100 * MiB
    chunk = b"n" * MiB
    sent = [0]
    rss_start = rss_bytes()
    rss_peak = rss_start or 0

    def sample_rss() -> None:
        nonlocal rss_peak
        rss_peak = max(rss_peak, rss_bytes() or 0)

    async with OneClientServer(port=0) as server:
        thread = threading.Thread(
            target=_send_in_thread, args=(server.port, total, chunk, sent)
        )
        thread.start()
        try:
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
                with pytest.raises(anytcpip.LimitOverrunError) as info:
                    await server.read_str()
            assert info.value.consumed > server.max_line_length
            # Nobody reads now: the sender must stall far below 100 MiB.
            with anyio.fail_after(TIMEOUT):
                previous = -1
                while sent[0] != previous:
                    previous = sent[0]
                    await anyio.sleep(0.2)
                    sample_rss()
            stalled_at = sent[0]
            assert stalled_at < 32 * MiB
            # Drain the rest: nothing lost, every byte as sent.
            received = 0
            with anyio.fail_after(TIMEOUT * 4):
                while received < total:
                    data = await server.read(MiB)
                    assert data, "stream ended early"
                    assert data == chunk[: len(data)]
                    received += len(data)
                    sample_rss()
            assert received == total
        finally:
            await server.close()
            thread.join(TIMEOUT)
    growth = None if rss_start is None else rss_peak - rss_start
    rss = (
        "RSS not measurable here"
        if rss_start is None or growth is None
        else f"RSS {rss_start / MiB:.1f} MiB, peak growth {growth / MiB:.1f} MiB"
    )
    figures(
        f"100 MiB unterminated: LimitOverrunError after {info.value.consumed} bytes, "
        f"sender stalled at {stalled_at / MiB:.1f} MiB, {rss}, "
        f"{received / MiB:.0f} MiB drained and verified"
    )
    if growth is not None:
        assert growth < 32 * MiB


@pytest.mark.parametrize("method", ["read_str", "read_json", "readline", "readuntil"])
async def test_every_terminated_read_is_bounded(method: str) -> None:
    """Each terminated read stops at max_line_length; the stream stays usable."""
    limit = 1000
    async with connected_pair({"max_line_length": limit}) as (server, client):
        read = getattr(server, method)
        with anyio.fail_after(TIMEOUT):
            await client.write(b"7" * (limit + 1))  # no terminator yet
            with pytest.raises(anytcpip.LimitOverrunError) as info:
                await read()
            assert f"max_line_length={limit}" in str(info.value)
            # As in asyncio, the over-long data stays buffered: drain it.
            assert await server.readexactly(limit + 1) == b"7" * (limit + 1)
            await client.write(b"8\r\n")
            expected = {"read_str": "8", "read_json": 8}.get(method, b"8\r\n")
            assert await read() == expected


# -- many clients ---------------------------------------------------------------------


async def test_1000_connect_disconnect_cycles_leak_nothing(figures: Figures) -> None:
    recorder = CallbackRecorder()
    cycles = 1000
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        # Warm up once so lazily created resources are not counted as leaks.
        async with Client("127.0.0.1", server.port):
            await recorder.wait_for(1)
        await recorder.wait_for(2)
        await anyio.wait_all_tasks_blocked()  # let the warm-up's tasks finish
        fds_before = open_fds()
        tasks_before = len(anyio.get_running_tasks())
        started = time.monotonic()
        for i in range(1, cycles + 1):
            async with Client("127.0.0.1", server.port):
                pass
            await recorder.wait_for(2 + 2 * i)
        duration = time.monotonic() - started
        assert recorder.states == [True, False] * (cycles + 1)
        assert server.rejected_count == 0
        await anyio.wait_all_tasks_blocked()
        tasks_after = len(anyio.get_running_tasks())
        fds_after = open_fds()
        figures(
            f"{cycles} connect/disconnect cycles in {duration:.2f} s: "
            f"{len(recorder.states)} callbacks strictly alternating, "
            f"open fds {fds_before} -> {fds_after}, "
            f"tasks {tasks_before} -> {tasks_after}"
        )
        assert tasks_after == tasks_before
        assert fds_after == fds_before


async def test_flood_of_extra_clients_while_one_streams(figures: Figures) -> None:
    extras, lines = 200, 5000
    async with connected_pair() as (server, client):
        rejected: list[None] = []

        async def extra() -> None:
            try:
                async with raw_peer(server.port) as stream:
                    with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                        await stream.receive()  # closed at once, nothing sent
                    rejected.append(None)
            except OSError:
                pytest.fail("an extra client could not even connect")

        async def stream_lines() -> None:
            for i in range(lines):
                await client.write_str(f"line {i}")

        verified = 0
        started = time.monotonic()
        with anyio.fail_after(TIMEOUT * 6):
            async with anyio.create_task_group() as tg:
                for _ in range(extras):
                    tg.start_soon(extra)
                tg.start_soon(stream_lines)
                for i in range(lines):
                    line = await server.read_str()
                    assert line == f"line {i}"
                    verified += len(line) + 2
            # Still responsive.
            await server.write_str("pong")
            assert await client.read_str() == "pong"
        duration = time.monotonic() - started
        figures(
            f"flood: {len(rejected)}/{extras} extra clients rejected, "
            f"rejected_count={server.rejected_count}, {lines} lines "
            f"({verified} bytes) streamed and verified in {duration:.2f} s"
        )
        assert len(rejected) == extras
        assert server.rejected_count == extras
        assert server.connected and client.connected
        assert client.stats.bytes_sent == verified


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


async def _cancelled_after(
    count: int, operation: Callable[[], Awaitable[Any]]
) -> tuple[bool, Any]:
    """Run ``operation``, cancelled after ``count`` checkpoints if still running.

    Returns ``(True, result)`` if it completed, ``(False, None)`` if cancelled.
    """
    outcome: tuple[bool, Any] = (False, None)
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(cancel_after_checkpoints, scope, count)
            outcome = (True, await operation())
            tg.cancel_scope.cancel()
    return outcome


@pytest.mark.parametrize("seed", range(3))
async def test_reads_cancelled_at_every_checkpoint_lose_nothing(seed: int) -> None:
    """Cancel each read after 0, 1, 2, ... checkpoints: the stream is intact.

    A mix of ``read_str``, ``readexactly``, ``readuntil``, ``read_into`` and
    ``read`` over data arriving in random fragments; every cancelled read is
    retried, and the values read must be exactly those sent, in order.
    """
    rng = random.Random(seed)
    plan: list[tuple[str, Any]] = []
    for i in range(200):
        kind = rng.choice(["str", "exactly", "until", "struct", "some"])
        if kind == "str":
            plan.append((kind, f"{i}:" + "s" * rng.randrange(0, 400)))
        elif kind == "exactly":
            plan.append((kind, bytes([i % 256]) * rng.randrange(1, 900)))
        elif kind == "until":
            plan.append((kind, b"u" * rng.randrange(0, 300) + b"\x03"))
        elif kind == "struct":
            plan.append((kind, Sample(i, (i / 2,) * 7)))
        else:
            plan.append((kind, b"#" * rng.randrange(1, 50)))
    wire = b"".join(
        value.encode() + b"\r\n" if kind == "str" else bytes(value)
        for kind, value in plan
    )
    async with connected_pair() as (server, client):
        position = 0

        async def feed() -> None:
            """Maybe send the next fragment of the wire (1 to 300 bytes)."""
            nonlocal position
            if rng.random() < 0.5:
                size = rng.randrange(1, 300)
                await client.write(wire[position : position + size])
                position += size

        def read_op(kind: str, expected: Any) -> Callable[[], Awaitable[Any]]:
            if kind == "str":
                return server.read_str
            if kind == "exactly":
                return functools.partial(server.readexactly, len(expected))
            if kind == "until":
                return functools.partial(server.readuntil, b"\x03")
            if kind == "struct":

                async def read_struct() -> bytes:
                    sample = Sample()
                    await server.read_into(sample)
                    return bytes(sample)

                return read_struct
            # read(n) may return fewer bytes than n: read one at a time.
            return functools.partial(server.read, 1)

        cancelled = 0
        with anyio.fail_after(TIMEOUT * 4):
            for kind, value in plan:
                expected = value if kind == "str" else bytes(value)
                while expected or kind != "some":
                    # The data may be buffered, in flight, or not sent yet: a
                    # read that must wait is cancelled after 0 to 7 checkpoints.
                    await feed()
                    operation = read_op(kind, expected)
                    done, got = await _cancelled_after(rng.randrange(0, 8), operation)
                    if not done:
                        cancelled += 1
                    elif kind == "some":
                        assert got == expected[:1]
                        expected = expected[1:]
                    else:
                        assert got == expected, kind
                        break
            assert position >= len(wire)
        assert cancelled > 0, "no read was ever cancelled: the test tested nothing"
        assert client.connected and server.connected


@pytest.mark.parametrize("seed", range(3))
async def test_writes_cancelled_at_every_checkpoint_send_whole_or_nothing(
    seed: int,
) -> None:
    """Cancel each write after 0, 1, 2, ... checkpoints: whole or nothing.

    ``write_str``, ``write`` and ``writelines`` of messages up to 150 kB,
    to a reader that is sometimes slow: a write that returned delivered its
    message whole, a cancelled one delivered nothing, and the connection
    stays usable. The reader receives exactly the completed writes, in order.
    """
    rng = random.Random(seed)
    async with connected_pair({"max_line_length": 1 << 20}) as (server, client):
        completed: list[str] = []
        received: list[str] = []
        cancelled = 0
        reading = True  # while False, the reader stops: writes soon block
        reading_changed = anyio.Event()

        def set_reading(value: bool) -> None:
            nonlocal reading, reading_changed
            reading = value
            reading_changed.set()
            reading_changed = anyio.Event()

        async def receive() -> None:
            while True:
                while not reading:
                    await reading_changed.wait()
                line = await server.read_str()
                if line == "END":
                    return
                received.append(line)

        with anyio.fail_after(TIMEOUT * 6):
            async with anyio.create_task_group() as tg:
                tg.start_soon(receive)
                pause_until = 0  # cancelled writes to see before reading again
                for i in range(400):
                    if reading and rng.random() < 0.05:
                        set_reading(False)
                        pause_until = cancelled + rng.randrange(1, 6)
                    elif not reading and cancelled >= pause_until:
                        set_reading(True)
                    size = rng.choice([10, 1000, 30_000, 300_000])
                    message = f"{i}:" + chr(65 + i % 26) * rng.randrange(1, size)
                    data = message.encode() + b"\r\n"
                    kind = rng.choice(["str", "bytes", "lines"])
                    if kind == "str":
                        op: Callable[[], Awaitable[None]] = functools.partial(
                            client.write_str, message
                        )
                    elif kind == "bytes":
                        op = functools.partial(client.write, data)
                    else:
                        cut = rng.randrange(0, len(data) + 1)
                        pieces = [data[:cut], data[cut:]]
                        op = functools.partial(client.writelines, pieces)
                    done, _ = await _cancelled_after(rng.randrange(0, 6), op)
                    if done:
                        completed.append(message)
                    else:
                        cancelled += 1
                set_reading(True)
                await client.write_str("END")
        assert cancelled > 0, "no write was ever cancelled: the test tested nothing"
        assert received == completed
        assert client.connected and server.connected


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file descriptors")
async def test_no_fd_leak_after_rejections() -> None:
    async with connected_pair() as (server, _client):
        fds_before = open_fds()
        for _ in range(50):
            async with raw_peer(server.port) as stream:
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    with anyio.fail_after(TIMEOUT):
                        await stream.receive()
        assert server.rejected_count == 50
        assert open_fds() == fds_before


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


# -- a connect_callback that never returns ------------------------------------------


async def test_callback_waiting_for_a_lock_held_by_the_leaving_task() -> None:
    """The realistic trigger: the disconnect callback takes an application lock
    that the task leaving the ``async with`` holds. The caller's timeout must
    still end the block (the callback is cancelled), and nothing is left
    running.
    """
    app_lock = anyio.Semaphore(1)  # releasable by the watchdog below
    waiting = anyio.Event()
    outcome: list[str] = []

    async def on_change(client: Client) -> None:
        if client.connected:
            return
        waiting.set()
        try:
            async with app_lock:
                outcome.append("got the lock")
        except anyio.get_cancelled_exc_class():
            outcome.append("cancelled")
            raise

    async def watchdog() -> None:
        # Before the fix the block could not be cancelled at all: only
        # releasing the lock could end it, which this does after TIMEOUT.
        await anyio.sleep(TIMEOUT)
        outcome.append("watchdog")
        app_lock.release()

    async with OneClientServer(port=0) as server:
        tasks_before = len(anyio.get_running_tasks())
        async with anyio.create_task_group() as tg:
            tg.start_soon(watchdog)
            with anyio.move_on_after(0.5) as scope:
                async with app_lock:
                    async with Client(
                        "127.0.0.1", server.port, connect_callback=on_change
                    ) as client:
                        with anyio.fail_after(TIMEOUT):
                            await server.wait_connected()
                            await server.close_client()  # the client is dropped
                            await waiting.wait()  # its callback waits for the lock
                        # Leaving the block waits for that report, which waits
                        # for the lock this task holds: only the timeout ends it.
            tg.cancel_scope.cancel()
        assert scope.cancelled_caught
        assert outcome == ["cancelled"]
        assert not client.connected
        assert len(anyio.get_running_tasks()) == tasks_before
