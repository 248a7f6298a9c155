"""The receive path: readers receive themselves, the pump watches idle links.

Also the receive-side faults of issue 11: a disconnect while 512 KiB or more
is unread (fault 8), the memory bound on every backend (fault 9), and the
message of a reset in the middle of a message.

A few tests look at private state (which task received, how much anyio
holds): there is no public way to see where a chunk went.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct
import sys
import termios
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import anyio.lowlevel
import pytest

import anytcpip
import anytcpip._receive_role as receive_module
from anytcpip import Client, OneClientServer
from anytcpip._asyncio_receive import READ_AHEAD
from anytcpip._channel import Channel
from anytcpip._constants import RECEIVE_CHUNK_SIZE
from anytcpip._receive import HIGH_WATER_MARK, READS_PER_CHECKPOINT
from anytcpip._receive_role import SMALL_RECEIVE_SIZE
from helpers import (
    TIMEOUT,
    CallbackRecorder,
    CountingSender,
    Header,
    MemoryConnection,
    channel_of,
    connected_pair,
    counted_memory_pair,
    on_asyncio,
    reset_socket,
    reset_while_blocked,
)

MiB = 1024 * 1024
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="TCP_INFO and epoll are Linux's"
)


def held_by_anyio(channel: Channel) -> int:
    """Bytes received from the OS that anyio's asyncio stream still holds."""
    protocol = getattr(channel.stream, "_protocol", None)
    return sum(map(len, getattr(protocol, "read_queue", ())))


@contextmanager
def linger(seconds: float) -> Iterator[None]:
    """Change how long the receiving role stays with the readers."""
    saved = receive_module.RECEIVE_LINGER
    receive_module.RECEIVE_LINGER = seconds
    try:
        yield
    finally:
        receive_module.RECEIVE_LINGER = saved


class Flood:
    """A raw client in a thread that sends until the server stops taking data.

    ``stalled`` is set once a send has made no progress for a while (the
    server's buffers and the kernel's are full), with ``sent`` bytes sent.
    """

    def __init__(self, port: int, data: bytes, total: int | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.data = data
        self.total = total
        self.sent = 0
        self.stalled = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.3)
        view = memoryview(self.data)
        try:
            while self.total is None or self.sent < self.total:
                try:
                    # Go on where the last send stopped (a partial send).
                    self.sent += self.sock.send(view[self.sent % len(view) :])
                except TimeoutError:
                    self.stalled.set()
                    return
        except OSError:
            pass
        finally:
            self.done.set()

    async def wait_stalled(self) -> None:
        # A thread cannot be cancelled: the wait itself is bounded.
        await anyio.to_thread.run_sync(self.done.wait, TIMEOUT * 4)
        assert self.stalled.is_set(), "the sender never stalled"

    async def wait_done(self) -> None:
        await anyio.to_thread.run_sync(self.done.wait, TIMEOUT * 4)
        assert self.done.is_set(), "the sender never finished"

    def join(self) -> None:
        self.thread.join(TIMEOUT)

    async def all_in_peer_kernel(self) -> bool:
        """Whether everything sent left this socket within 2 s (Linux).

        The peer's kernel then holds it all, so this socket's FIN is not
        queued behind unsent data. There is no event for it: the kernel's
        count of unsent bytes is checked every 5 ms, in a thread.
        """

        def unsent() -> int:
            out = fcntl.ioctl(self.sock.fileno(), termios.TIOCOUTQ, b"\0" * 4)
            return int(struct.unpack("i", out)[0])

        def wait() -> bool:
            deadline = time.monotonic() + 2.0
            while unsent():
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.005)
            return True

        return await anyio.to_thread.run_sync(wait)


# -- the receiving role ---------------------------------------------------------


async def test_reads_that_keep_coming_receive_themselves() -> None:
    """No hop through the pump per message while reads keep arriving."""
    with linger(60.0):  # however slow the machine, the role stays with readers
        async with connected_pair() as (server, client):
            with anyio.fail_after(TIMEOUT):
                for i in range(200):
                    await client.write_str(f"request {i}")
                    line = await server.read_str()
                    await server.write_str(f"reply to {line}")
                    assert await client.read_str() == f"reply to request {i}"
            # At most the first message of each end went through its pump.
            assert channel_of(server).receiver.pump_receives <= 1
            assert channel_of(client).receiver.pump_receives <= 1


async def test_receives_ask_for_64_kib_until_a_chunk_fills_that() -> None:
    """Small receives in command/reply traffic, large ones in a stream.

    A receive on trio allocates what it asks for: 256 KiB each time cost
    three memory system calls per message (see SMALL_RECEIVE_SIZE).
    """
    async with counted_memory_pair() as (server, client, counter, _):
        with anyio.fail_after(TIMEOUT):
            for i in range(3):
                await client.write_str(f"command {i}")
                assert await server.read_str() == f"command {i}"
            assert set(counter.asked) == {SMALL_RECEIVE_SIZE}
            # A stream: a chunk of 64 KiB or more, then 256 KiB receives.
            stream = b"x" * (4 * RECEIVE_CHUNK_SIZE)
            await client.write(stream)
            assert await server.readexactly(len(stream)) == stream
            asked = counter.asked[3:]
            assert asked[0] == SMALL_RECEIVE_SIZE
            assert set(asked[1:]) == {RECEIVE_CHUNK_SIZE}
            # Back to small messages: back to small receives.
            await client.write_str("command")
            assert await server.read_str() == "command"
            await client.write_str("command")
            assert await server.read_str() == "command"
            assert counter.asked[-1] == SMALL_RECEIVE_SIZE


async def test_pump_takes_the_role_back_after_the_linger() -> None:
    """Once reads stop, the pump receives: a close is seen without reading.

    The hang-up watch (Linux) is switched off, so only the pump taking the
    role back can notice the close.
    """
    recorder = CallbackRecorder()
    async with connected_pair({"connect_callback": recorder}) as (server, client):
        receiver = channel_of(server).receiver
        receiver._watchable = False
        assert await recorder.wait_for(1) == [True]
        await client.write_str("one")
        assert await server.read_str() == "one"  # the reader takes the role
        by_pump = receiver.pump_receives
        await client.close()
        assert await recorder.wait_for(2) == [True, False]
        assert receiver.pump_receives == by_pump  # the pump saw the end


async def test_close_after_reads_stop_is_noticed_within_the_linger() -> None:
    recorder = CallbackRecorder()
    async with connected_pair({"connect_callback": recorder}) as (server, client):
        assert await recorder.wait_for(1) == [True]
        await client.write_str("last")
        assert await server.read_str() == "last"  # the reader holds the role
        started = anyio.current_time()
        await client.close()
        assert await recorder.wait_for(2) == [True, False]
        # The bound is the linger plus the OS's delivery: milliseconds. A
        # generous margin, for loaded machines.
        assert anyio.current_time() - started < receive_module.RECEIVE_LINGER + 1.0
        assert not server.connected


@linux_only
async def test_close_during_the_linger_is_noticed_at_once_on_linux() -> None:
    """The parked pump watches for a hang-up: no need to wait for the linger."""
    recorder = CallbackRecorder()
    with linger(60.0):
        async with connected_pair({"connect_callback": recorder}) as (server, client):
            assert await recorder.wait_for(1) == [True]
            await client.write_str("last")
            assert await server.read_str() == "last"
            await client.close()
            assert await recorder.wait_for(2) == [True, False]


async def test_reader_cancelled_inside_receive_loses_nothing() -> None:
    with linger(60.0):
        await _cancel_readers_inside_receive()


async def _cancel_readers_inside_receive() -> None:
    async with connected_pair() as (server, client):
        receiver = channel_of(server).receiver
        with anyio.fail_after(TIMEOUT):
            await client.write_str("first")
            assert await server.read_str() == "first"  # the role is the reader's
            by_pump = receiver.pump_receives
            for i in range(20):
                with anyio.CancelScope() as scope:

                    async def read_then_fail() -> None:
                        await server.read_str()
                        raise AssertionError("the read should have been cancelled")

                    async with anyio.create_task_group() as task_group:
                        task_group.start_soon(read_then_fail)
                        await anyio.wait_all_tasks_blocked()
                        if i % 2:  # half a message buffered already
                            await client.write(f"message {i} ".encode())
                            await anyio.wait_all_tasks_blocked()
                        # The reader itself waits in stream.receive().
                        assert receiver._receiving and receiver.pump_receives == by_pump
                        scope.cancel()
                if i % 2:
                    await client.write(b"second half\r\n")
                    assert await server.read_str() == f"message {i} second half"
                else:
                    await client.write_str(f"message {i}")
                    assert await server.read_str() == f"message {i}"


@pytest.mark.parametrize("passes", [0, 1, 2, 3])
async def test_reader_cancelled_by_its_task_as_data_arrives_loses_nothing(
    passes: int,
) -> None:
    """``Task.cancel()`` (``asyncio.wait_for``'s timeout) at any point of a read.

    On asyncio and uvloop a waiting reader's chunk is fed to the buffer by
    the stream's protocol, before the reader resumes: cancelled after the
    chunk arrived and before it ran, the reader loses nothing either. The
    cancel comes ``passes`` loop passes after the peer wrote, so it falls
    before the chunk arrived, after it was fed, or after the reader read it.
    """
    if not on_asyncio():
        pytest.skip("Task.cancel() is asyncio's; cancel scopes are tested above")
    import asyncio

    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            await client.write_str("first")
            assert await server.read_str() == "first"  # the role is the reader's
            sent = len(b"first\r\n")
            for i in range(30):
                reader = asyncio.ensure_future(server.read_str())
                await anyio.wait_all_tasks_blocked()
                await client.write_str(f"message {i}")
                sent += len(f"message {i}\r\n")
                for _ in range(passes + i % 3):
                    await asyncio.sleep(0)
                reader.cancel()
                try:
                    assert await reader == f"message {i}"  # it was done already
                except asyncio.CancelledError:
                    assert await server.read_str() == f"message {i}"
            assert server.stats.bytes_received == sent


async def test_last_received_is_when_the_reader_received_whatever_the_linger() -> None:
    """``stats.last_received`` is never in the future (it once added the linger)."""
    with linger(60.0):
        async with connected_pair() as (server, client):
            with anyio.fail_after(TIMEOUT):
                for i in range(3):
                    await client.write_str(f"m{i}")
                    assert await server.read_str() == f"m{i}"
                    last = server.stats.last_received
                    assert last is not None and last <= time.monotonic()


async def test_second_reader_is_refused_while_the_first_receives() -> None:
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            await client.write_str("first")
            assert await server.read_str() == "first"
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(server.read_str)
                await anyio.wait_all_tasks_blocked()
                assert channel_of(server).receiver._receiving
                with pytest.raises(anyio.BusyResourceError):
                    await server.read_str()
                with pytest.raises(anyio.BusyResourceError):
                    await server.read(10)
                task_group.cancel_scope.cancel()
            await client.write_str("second")
            assert await server.read_str() == "second"


@pytest.mark.parametrize("size", [1, 1000, 65536, MiB])
async def test_bulk_reads_lose_nothing(size: int) -> None:
    """Chunks handed out as received, or cut to ``n``, in order, all of them."""
    payload = os.urandom(3 * MiB + 17 if size > 1 else 200_000)
    async with connected_pair() as (server, client):

        async def send() -> None:
            for start in range(0, len(payload), 100_000):
                await client.write(payload[start : start + 100_000])

        received = bytearray()
        with anyio.fail_after(TIMEOUT * 4):
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(send)
                while len(received) < len(payload):
                    data = await server.read(size)
                    assert 0 < len(data) <= size
                    received += data
        # Chunks handed out as received are counted like the others.
        assert server.stats.bytes_received == len(payload)
    assert zlib.crc32(received) == zlib.crc32(payload)
    assert received == payload


@pytest.mark.parametrize(
    "seconds", [receive_module.RECEIVE_LINGER, 60.0], ids=["linger", "long-linger"]
)
async def test_heartbeats_are_skipped_when_the_reader_receives(seconds: float) -> None:
    """Heartbeats that arrive between reads are skipped, whoever receives them.

    The client is a connection over a real socket whose sends are counted,
    so the test waits for a whole heartbeat to be sent before each message:
    TCP delivers it first, and the server's read must skip it. Once the
    linger is over the pump receives it; with a long linger, the reader.
    """
    heartbeat_line = anytcpip.HEARTBEAT + b"\r\n"
    interval = 0.01
    with linger(seconds):
        async with OneClientServer(port=0, heartbeat_interval=interval) as server:
            stream = await anyio.connect_tcp("127.0.0.1", server.port)
            sender = CountingSender(stream)
            async with MemoryConnection(
                sender, name="client", heartbeat_interval=interval
            ) as client:
                by_pump = 0
                with anyio.fail_after(TIMEOUT):
                    await server.wait_connected()
                    receiver = channel_of(server).receiver
                    for i in range(5):
                        # Only heartbeats are sent meanwhile: a whole one.
                        await sender.wait_sent(sender.sent + len(heartbeat_line))
                        before = sender.sent
                        await client.write_str(f"data {i}")
                        assert await server.read_str() == f"data {i}"
                        # Received (so skipped), and not counted as messages.
                        received = server.stats.bytes_received
                        assert received >= before + len(f"data {i}\r\n")
                        assert server.stats.messages_received == i + 1
                        if i == 0:  # from now on, the reader holds the role
                            by_pump = receiver.pump_receives
                if seconds > 1:  # the reader received every heartbeat since
                    assert receiver.pump_receives == by_pump


# -- fault 9: the memory bound on every backend -----------------------------------


async def read_flood(
    server: OneClientServer, flood: Flood, received: int, *, reads: int = 0
) -> int:
    """Bulk-read what ``flood`` sent (``reads`` reads, or up to what it sent).

    Checks every byte and returns the count received, ``received`` included.
    """
    byte = flood.data[:1]
    done = 0
    while (done < reads) if reads else (received < flood.sent):
        data = await server.read(MiB)
        assert data == byte * len(data)
        received += len(data)
        done += 1
    return received


async def test_unread_data_held_in_memory_is_bounded_on_every_backend() -> None:
    """After LimitOverrunError, nobody reads: at most 512 KiB + one chunk held.

    On uvloop, anyio's own queue used to hold 7.5 MiB more (libuv reads up to
    32 chunks per wake-up before anyio pauses reading).
    """
    async with OneClientServer(port=0) as server:
        flood = Flood(server.port, b"n" * MiB)
        try:
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
                with pytest.raises(anytcpip.LimitOverrunError):
                    await server.read_str()
            await flood.wait_stalled()
            channel = channel_of(server)
            held = len(channel.frames) + held_by_anyio(channel)
            assert held <= HIGH_WATER_MARK + RECEIVE_CHUNK_SIZE, held
            assert held_by_anyio(channel) <= RECEIVE_CHUNK_SIZE
            # Nothing was lost: what was sent is still there, in order.
            with anyio.fail_after(TIMEOUT * 4):
                await read_flood(server, flood, 0)
        finally:
            flood.sock.close()
            flood.join()


async def test_unread_data_after_bulk_reads_is_bounded() -> None:
    """Bulk reads let the transport read ahead; once they stop, it is bounded.

    The transport reads up to READ_AHEAD ahead of a bulk reader (asyncio,
    uvloop); when the reads stop, the pump fills the buffer to the
    high-water mark and the transport stops too.
    """
    async with OneClientServer(port=0) as server:
        flood = Flood(server.port, b"b" * MiB)
        try:
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
                received = await read_flood(server, flood, 0, reads=8)
            await flood.wait_stalled()
            channel = channel_of(server)
            bound = HIGH_WATER_MARK + READ_AHEAD + RECEIVE_CHUNK_SIZE
            held = len(channel.frames) + held_by_anyio(channel)
            assert held <= bound, held
            assert held_by_anyio(channel) <= READ_AHEAD + RECEIVE_CHUNK_SIZE
            # Nothing was lost: what was sent is still there.
            with anyio.fail_after(TIMEOUT * 4):
                await read_flood(server, flood, received)
        finally:
            flood.sock.close()
            flood.join()


# -- fault 8: a disconnect while 512 KiB or more is unread ------------------------


@linux_only
async def test_reset_is_noticed_while_unread_data_fills_the_buffer() -> None:
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        flood = Flood(server.port, b"u" * MiB)
        try:
            assert await recorder.wait_for(1) == [True]
            await flood.wait_stalled()  # nobody reads: every buffer is full
            reset_socket(flood.sock)
            assert await recorder.wait_for(2) == [True, False]
        finally:
            flood.join()
        assert "reset" in channel_of(server).reason
        # The slot is free again: the next client is served, not rejected.
        async with Client("127.0.0.1", server.port) as client:
            await client.write_str("next")
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
                assert await server.read_str() == "next"
        assert server.rejected_count == 0


@linux_only
async def test_close_is_noticed_while_the_buffer_is_full_and_nothing_is_lost() -> None:
    """All the peer sent fits in the kernel: the close is seen, the data kept."""
    recorder = CallbackRecorder()
    # More than the pump buffers; the rest (at most HIGH_WATER_MARK) stays
    # in the kernel.
    payload = os.urandom(HIGH_WATER_MARK * 2)
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        flood = Flood(server.port, payload, total=len(payload))
        try:
            assert await recorder.wait_for(1) == [True]
            await flood.wait_done()
            if not await flood.all_in_peer_kernel():
                # The kernel's receive buffer did not grow enough (autotuning
                # varies): the FIN would wait behind the data, the limit that
                # the next test covers.
                flood.sock.close()
                pytest.skip("the server's kernel cannot hold all the peer sent")
            flood.sock.close()  # an orderly close, with nothing read yet
            assert await recorder.wait_for(2) == [True, False]
        finally:
            flood.join()
        assert not server.connected
        received = bytearray()
        with anyio.fail_after(TIMEOUT):
            while data := await server.read(MiB):
                received += data
        assert received == payload


@linux_only
async def test_close_behind_more_than_the_buffers_hold_is_seen_once_read() -> None:
    """The documented limit: a close queued behind unsent data needs a read.

    The peer's close (FIN) comes after its data; when that data does not fit
    in this end's buffer and the kernel's, the FIN cannot arrive until the
    application reads. Reading is the remedy: the close is then reported and
    no byte is lost.
    """
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        flood = Flood(server.port, b"v" * MiB)
        try:
            assert await recorder.wait_for(1) == [True]
            await flood.wait_stalled()
            flood.sock.shutdown(socket.SHUT_WR)  # FIN queued behind the data
            with anyio.move_on_after(0.3):
                await recorder.wait_for(2)
            assert recorder.states == [True]  # not visible yet
            received = 0
            with anyio.fail_after(TIMEOUT * 4):
                while data := await server.read(MiB):
                    assert data == b"v" * len(data)
                    received += len(data)
            assert received == flood.sent
            assert await recorder.wait_for(2) == [True, False]
        finally:
            flood.sock.close()
            flood.join()


@linux_only
async def test_heartbeat_timeout_still_fires_while_the_buffer_is_full() -> None:
    """Unread data no longer disables heartbeat_timeout: a silent peer is lost."""
    recorder = CallbackRecorder()
    async with OneClientServer(
        port=0, connect_callback=recorder, heartbeat_timeout=1.0
    ) as server:
        flood = Flood(server.port, b"h" * MiB)
        try:
            assert await recorder.wait_for(1) == [True]
            await flood.wait_stalled()  # then the peer says nothing more
            assert await recorder.wait_for(2) == [True, False]
            assert "heartbeat_timeout" in channel_of(server).reason
        finally:
            flood.sock.close()
            flood.join()


@linux_only
async def test_bytes_arriving_while_the_buffer_is_full_count_as_liveness() -> None:
    """The kernel still receiving counts: a talking peer is not declared lost."""
    recorder = CallbackRecorder()
    async with OneClientServer(
        port=0, connect_callback=recorder, heartbeat_timeout=1.0
    ) as server:
        sock = socket.create_connection(("127.0.0.1", server.port))
        try:
            assert await recorder.wait_for(1) == [True]
            # More than the buffer takes (the rest stays in the kernel), but
            # far less than the kernel takes: heartbeats still get in.
            sock.sendall(b"x" * (HIGH_WATER_MARK + 2 * RECEIVE_CHUNK_SIZE))
            for _ in range(20):  # 2 s of heartbeats, 2 timeouts' worth
                sock.sendall(b"heartbeat\r\n")
                await anyio.sleep(0.1)
                assert server.connected
            assert recorder.states == [True]
            assert len(channel_of(server).frames) >= HIGH_WATER_MARK  # was full
        finally:
            sock.close()


# -- messages -------------------------------------------------------------------------


async def test_reset_in_the_middle_of_a_message_says_reset() -> None:
    async with OneClientServer(port=0) as server:
        sock = socket.create_connection(("127.0.0.1", server.port))
        try:
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
                sock.sendall(b"0123456789")
                assert await server.readexactly(4) == b"0123"

            async def read() -> None:
                with pytest.raises(anytcpip.IncompleteReadError) as info:
                    await server.readexactly(100)
                assert info.value.partial == b"456789"
                assert info.value.expected == 100
                assert "reset" in str(info.value)
                assert "closed by the peer" not in str(info.value)

            await reset_while_blocked(sock, read)
        finally:
            sock.close()


# -- reads after the peer left -------------------------------------------------


class _Counter:
    """Counts the scheduler passes a busy task gets while another reads."""

    def __init__(self) -> None:
        self.passes = 0

    async def run(self) -> None:
        while True:
            await anyio.lowlevel.checkpoint()
            self.passes += 1


async def test_lines_buffered_when_the_peer_left_are_all_read_then_lost() -> None:
    """Messages still buffered after the peer's close are read in order.

    They take the fast path (no scheduler pass each), yet the reader still
    yields now and then, and once they are read the end is reported.
    """
    count = 8 * READS_PER_CHECKPOINT
    recorder = CallbackRecorder()
    async with connected_pair({"connect_callback": recorder}) as (server, client):
        assert await recorder.wait_for(1) == [True]
        await client.write(b"".join(b"line %d\r\n" % i for i in range(count)))
        await client.close()
        assert await recorder.wait_for(2) == [True, False]  # seen without reading
        counter = _Counter()
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(counter.run)
            with anyio.fail_after(TIMEOUT):
                for i in range(count):
                    assert await server.read_str() == f"line {i}"
            task_group.cancel_scope.cancel()
        # A yield every READS_PER_CHECKPOINT reads: other tasks ran meanwhile
        # (about seven passes; without the yields there would be none).
        assert counter.passes >= 2
        with pytest.raises(anytcpip.ConnectionLostError):
            await server.read_str()


async def test_mixed_reads_after_the_peer_left_still_yield() -> None:
    """Fast reads and reads that could meet the end share one budget.

    ``read_into`` of a byte takes the fast path after the peer left;
    ``readexactly`` goes through ``read_slow``, which does not always yield:
    mixed, they must still let other tasks run every so often.
    """
    count = 200_000
    recorder = CallbackRecorder()
    async with connected_pair({"connect_callback": recorder}) as (server, client):
        assert await recorder.wait_for(1) == [True]
        await client.write(b"x" * count)
        await client.close()
        assert await recorder.wait_for(2) == [True, False]
        counter = _Counter()
        byte = ctypes.c_uint8()
        longest = run = 0
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(counter.run)
            await anyio.lowlevel.checkpoint()
            last = counter.passes
            with anyio.fail_after(TIMEOUT):
                for i in range(count):
                    if i % 1000 == 0:
                        assert await server.readexactly(1) == b"x"
                    else:
                        await server.read_into(byte)
                    run = run + 1 if counter.passes == last else 1
                    last = counter.passes
                    longest = max(longest, run)
            task_group.cancel_scope.cancel()
        # A yield every READS_PER_CHECKPOINT reads or so (trio may run the
        # other task only at every other yield); without them, none at all.
        assert longest <= 3 * READS_PER_CHECKPOINT
        assert server.stats.messages_received == count


async def test_structs_buffered_when_the_peer_left_then_a_partial_one() -> None:
    count = 3000
    recorder = CallbackRecorder()
    async with connected_pair({"connect_callback": recorder}) as (server, client):
        assert await recorder.wait_for(1) == [True]
        data = b"".join(bytes(Header(i % 65536, 4, i)) for i in range(count))
        await client.write(data + bytes(Header(1, 2, 3))[:5])
        await client.close()
        assert await recorder.wait_for(2) == [True, False]
        header = Header()
        with anyio.fail_after(TIMEOUT):
            for i in range(count):
                await server.read_into(header)
                assert header.counter == i
        with pytest.raises(anytcpip.IncompleteReadError) as info:
            await server.read_into(header)
        assert info.value.expected == ctypes.sizeof(Header)
        assert len(info.value.partial) == 5
        with pytest.raises(anytcpip.ConnectionLostError):
            await server.read_into(header)


# -- read_into: the byte view kept between reads, the pump's room ---------------


async def test_read_into_many_structs_past_the_high_water_mark() -> None:
    """Twice the high-water mark of structs, read one by one, in order.

    The pump stops at the high-water mark and resumes as reads make room
    (fast reads count down the bytes still due instead of sizing the
    buffer each time); the reads fill the same object through the byte
    view kept between them.
    """
    count = 2 * HIGH_WATER_MARK // ctypes.sizeof(Header) + 7
    async with connected_pair() as (server, client):
        data = b"".join(bytes(Header(i % 65536, 4, i)) for i in range(count))
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(client.write, data)
            header = Header()
            # A bound on a hang, not on speed: tens of thousands of reads,
            # which take seconds under coverage on a loaded 2-core machine.
            with anyio.fail_after(3 * TIMEOUT):
                for i in range(count):
                    await server.read_into(header)
                    assert header.counter == i
        assert channel_of(server).receiver.pump_receives > 0


async def test_read_into_other_objects_and_a_resized_one() -> None:
    async with connected_pair() as (server, client):
        first, second = Header(), Header()
        pair = (ctypes.c_uint8 * 2)()
        await client.write(
            bytes(Header(1, 2, 3)) + bytes(Header(4, 5, 6)) + b"\x07\x08"
        )
        with anyio.fail_after(TIMEOUT):
            await server.read_into(first)
            await server.read_into(second)
            await server.read_into(pair)
        assert (first.frame_id, first.counter) == (1, 3)
        assert (second.frame_id, second.counter) == (4, 6)
        assert list(pair) == [7, 8]
        # Grown in place: the next read fills its new size.
        grown = (ctypes.c_uint8 * 2)()
        with anyio.fail_after(TIMEOUT):
            await client.write(b"\x01\x02")
            await server.read_into(grown)
        ctypes.resize(grown, 4)
        with anyio.fail_after(TIMEOUT):
            await client.write(b"\x03\x04\x05\x06")
            await server.read_into(grown)
        assert bytes((ctypes.c_uint8 * 4).from_address(ctypes.addressof(grown))) == (
            b"\x03\x04\x05\x06"
        )
        with pytest.raises(TypeError):
            await server.read_into(b"not ctypes")
