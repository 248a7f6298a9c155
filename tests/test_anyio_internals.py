"""Reach-ins into anyio's private state fail loudly when anyio changes.

``_direct_send.py`` and ``_workarounds.py`` use anyio's private transport and
protocol (asyncio, uvloop) or the raw socket (trio), by duck typing, with a
silent fallback. Without these tests, a change in anyio would silently cost
the fast path (direct sends) or the memory bound (the workarounds). Each
backend checks that every reach-in is active and that the transport is
configured as the code assumes; a strict xfail canary turns red when anyio
fixes the accept bug, so that the workaround can go.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import anyio.streams.stapled
import pytest

from anytcpip import Client, OneClientServer
from anytcpip._asyncio_receive import (
    QUIET_RECEIVES,
    SMALL_READ_SIZE,
    DirectReceiver,
    direct_receiver,
)
from anytcpip._direct_send import direct_sender
from anytcpip._receive import receives_losslessly
from anytcpip._socket_options import raw_socket
from anytcpip._tcp_connect import _backend_connect, _ip_literal, connect_tcp
from anytcpip._workarounds import bound_read_queue, pause_reading_after_accept
from helpers import TIMEOUT, channel_of, connected_pair, on_asyncio


@asynccontextmanager
async def raw_pair() -> AsyncIterator[tuple[anyio.abc.SocketStream, Any]]:
    """A connected pair of plain anyio TCP streams: (accepted, connected)."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        connected = await anyio.connect_tcp("127.0.0.1", port)
        async with connected:
            inner = listener.listeners[0]
            with anyio.fail_after(TIMEOUT):
                accepted = await inner.accept()  # type: ignore[attr-defined]
            async with accepted:
                yield accepted, connected


@dataclass
class Direct:
    """A connected pair, the accepted end received from by a direct receiver."""

    receiver: DirectReceiver
    accepted: anyio.abc.SocketStream
    connected: Any


@pytest.fixture
async def direct() -> AsyncIterator[Direct]:
    """asyncio and uvloop only (trio has no direct receiver): skips on trio."""
    if not on_asyncio():
        pytest.skip("asyncio and uvloop only")
    async with raw_pair() as (accepted, connected):
        receiver = direct_receiver(accepted)
        assert receiver is not None
        yield Direct(receiver, accepted, connected)


async def test_ip_literal_connect_path_is_active() -> None:
    # An IP literal is connected with the backend's own connect_tcp (no
    # Happy Eyeballs task group); if anyio moves it, every connect would
    # silently take the slower generic path.
    assert _backend_connect() is not None
    assert _ip_literal("127.0.0.1") == "127.0.0.1"
    assert _ip_literal("0:0:0:0:0:0:0:1") == "::1"
    assert _ip_literal("localhost") is None
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        with anyio.fail_after(TIMEOUT):
            stream = await connect_tcp("127.0.0.1", port)
        async with stream:
            assert isinstance(stream, anyio.abc.SocketStream)
            assert receives_losslessly(stream)
            assert stream.extra(anyio.abc.SocketAttribute.remote_port) == port


async def test_raw_socket_is_the_one_extra_returns() -> None:
    # raw_socket() reads anyio's _raw_socket instead of building every
    # extra attribute; it must be the very object extra() returns.
    async with raw_pair() as (accepted, connected):
        for stream in (accepted, connected):
            sock = raw_socket(stream)
            assert sock is not None
            assert sock is stream.extra(anyio.abc.SocketAttribute.raw_socket)
    send, receive = anyio.create_memory_object_stream[bytes](1)
    with send, receive:
        assert (
            raw_socket(anyio.streams.stapled.StapledObjectStream(send, receive)) is None
        )


async def test_direct_send_path_is_active() -> None:
    async with raw_pair() as (accepted, connected):
        for stream in (accepted, connected):
            sender = direct_sender(stream)
            assert sender is not None, "anyio changed: no direct sends any more"
            expected = "_TransportSender" if on_asyncio() else "_SocketSender"
            assert type(sender).__name__ == expected
    # And the library uses it on both ends of a real connection.
    async with OneClientServer(port=0) as server:
        async with Client("127.0.0.1", server.port) as client:
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
            assert channel_of(client).sender._direct is not None
            assert channel_of(server).sender._direct is not None


async def test_the_transport_is_configured_as_the_code_assumes() -> None:
    """asyncio: no write buffering in the transport; trio: a non-blocking socket."""
    async with raw_pair() as (accepted, connected):
        streams: tuple[Any, ...] = (accepted, connected)
        for stream in streams:
            if on_asyncio():
                transport = stream._transport
                # anyio's send() returns only once the transport's buffer is
                # empty: a direct write then never overtakes buffered data.
                assert transport.get_write_buffer_limits() == (0, 0)
                assert hasattr(stream, "_protocol")
                assert hasattr(stream._protocol, "read_queue")
            else:
                sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
                assert type(sock) is socket.socket
                assert sock.gettimeout() == 0.0


async def test_readers_may_receive_themselves_from_anyio_socket_streams() -> None:
    """The cancel-safe receive the reader-receives path relies on is there."""
    async with raw_pair() as (accepted, connected):
        assert receives_losslessly(accepted) and receives_losslessly(connected)
        # A cancelled receive loses nothing, on every backend.
        with anyio.move_on_after(0.05):
            await accepted.receive()
        await connected.send(b"after the cancelled receive")
        with anyio.fail_after(TIMEOUT):
            assert await accepted.receive() == b"after the cancelled receive"


async def test_the_workarounds_are_active() -> None:
    async with raw_pair() as (accepted, connected):
        if not on_asyncio():
            assert not bound_read_queue(accepted)  # nothing to do on trio
            return
        transport = accepted._transport  # type: ignore[attr-defined]
        pause_reading_after_accept(accepted)
        assert not transport.is_reading()
        assert bound_read_queue(accepted) and bound_read_queue(connected)
        # The hook pauses reading as soon as a chunk arrives.
        await connected.send(b"chunk")
        with anyio.fail_after(TIMEOUT):
            assert await accepted.receive() == b"chunk"
        assert not transport.is_reading()


async def test_direct_receive_path_is_active() -> None:
    """asyncio and uvloop: the library receives without anyio's stream."""
    async with raw_pair() as (accepted, connected):
        receiver = direct_receiver(accepted)
        if not on_asyncio():
            assert receiver is None  # trio's own receive is the fast one
            return
        assert receiver is not None, "anyio changed: no direct receives any more"
        await connected.send(b"one chunk")
        with anyio.fail_after(TIMEOUT):
            assert await receiver.receive(65536) == b"one chunk"
    async with OneClientServer(port=0) as server:
        async with Client("127.0.0.1", server.port) as client:
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
            for end in (client, server):
                assert (channel_of(end).receiver._receiver is not None) == on_asyncio()


async def test_a_command_reply_exchange_never_pauses_the_transport() -> None:
    """The point of the direct receiver: no epoll_ctl pair per message."""
    if not on_asyncio():
        pytest.skip("asyncio and uvloop only: trio has no transport to pause")
    async with OneClientServer(port=0) as server:
        async with Client("127.0.0.1", server.port) as client:
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
            transport = client._channel.stream._transport  # type: ignore[union-attr]
            with anyio.fail_after(TIMEOUT):
                for i in range(50):
                    await client.write_str(f"command {i}")
                    assert await server.read_str() == f"command {i}"
                    await server.write_str(f"reply {i}")
                    assert await client.read_str() == f"reply {i}"
                    # anyio's own receive would have paused it by now. (The
                    # first exchanges pause it: they might be a stream.)
                    if i > QUIET_RECEIVES:
                        assert transport.is_reading(), f"paused after reply {i}"


async def test_selector_transports_read_small_chunks_until_a_stream_comes() -> None:
    """64 KiB per recv in command/reply traffic (no mmap), 256 KiB in a stream."""
    if not on_asyncio():
        pytest.skip("asyncio only: trio has no transport")
    async with connected_pair() as (server, client):
        transport = channel_of(server).stream._transport  # type: ignore[attr-defined]
        if getattr(type(transport), "max_size", None) is None:
            pytest.skip("this loop's transport reads into a buffer of its own")
        protocol = channel_of(server).stream._protocol  # type: ignore[attr-defined]
        sizes: list[int] = []
        data_received = protocol.data_received

        def record(data: bytes) -> None:
            sizes.append(len(data))
            data_received(data)

        protocol.data_received = record
        transport.set_protocol(protocol)  # as uvloop would need

        async def exchange(i: int) -> None:
            await client.write_str(f"command {i}")
            assert await server.read_str() == f"command {i}"

        with anyio.fail_after(TIMEOUT):
            await exchange(0)
            assert transport.max_size == SMALL_READ_SIZE
            payload = bytes(range(256)) * 4096 * 4  # 4 MiB: a stream
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(client.write, payload)
                assert await server.readexactly(len(payload)) == payload
            # A full small read switched to large ones.
            assert max(sizes) > SMALL_READ_SIZE, sizes
            await exchange(1)
            assert transport.max_size == SMALL_READ_SIZE
            assert sizes[-1] < SMALL_READ_SIZE


async def test_a_stream_is_received_in_chunks_the_kernel_gathered(
    direct: Direct,
) -> None:
    """In a stream, a chunk arriving while the reader is busy pauses reading."""
    receiver, accepted, connected = direct.receiver, direct.accepted, direct.connected
    transport = accepted._transport  # type: ignore[attr-defined]

    async def exchange(data: bytes) -> None:
        """Receive ``data``, sent once the receive waits (as a reply is)."""

        async def send() -> None:
            await anyio.wait_all_tasks_blocked()
            await connected.send(data)

        async with anyio.create_task_group() as tg:
            tg.start_soon(send)
            assert await receiver.receive(65536) == data

    with anyio.fail_after(TIMEOUT):
        for _ in range(QUIET_RECEIVES + 1):  # command/reply so far
            await exchange(b"command")
        assert transport.is_reading()
        # A chunk arrives while nobody receives: it pauses the transport.
        protocol = accepted._protocol  # type: ignore[attr-defined]
        arrived = anyio.Event()

        def data_received(data: bytes) -> None:
            receiver.data_received(data)
            arrived.set()

        protocol.data_received = data_received
        transport.set_protocol(protocol)  # uvloop caches data_received
        await connected.send(b"one")
        await arrived.wait()
        assert not transport.is_reading()
        assert await receiver.receive(65536) == b"one"
        # Now a stream: a waiting receive's chunk pauses it too, so the
        # kernel gathers what follows into one chunk.
        await exchange(b"two")
        assert not transport.is_reading()


async def test_a_cancelled_direct_receive_loses_nothing(direct: Direct) -> None:
    receiver, accepted, connected = direct.receiver, direct.accepted, direct.connected
    with anyio.move_on_after(0.05) as scope:
        await receiver.receive(65536)
    assert scope.cancelled_caught
    await connected.send(b"after the cancelled receive")
    with anyio.fail_after(TIMEOUT):
        assert await receiver.receive(65536) == b"after the cancelled receive"
    await connected.aclose()
    with anyio.fail_after(TIMEOUT), pytest.raises(anyio.EndOfStream):
        await receiver.receive(65536)
    await accepted.aclose()
    with pytest.raises(anyio.ClosedResourceError):
        await receiver.receive(65536)


async def test_a_receive_cancelled_as_its_chunk_arrives_loses_nothing(
    direct: Direct,
) -> None:
    """The chunk completes the waiting receive's future, then it is cancelled.

    anyio's cancel scopes wait for such a task to run first; an asyncio
    ``Task.cancel()`` (``asyncio.wait_for``, the compatibility layer) does
    not: the task resumes with the cancellation instead of the wake-up, and
    the chunk must still be there for the next receive.
    """
    import asyncio

    receiver = direct.receiver
    task = asyncio.get_running_loop().create_task(receiver.receive(65536))
    with anyio.fail_after(TIMEOUT):
        await anyio.wait_all_tasks_blocked()
        # What the protocol does when a chunk arrives, and a cancel
        # before the receiving task runs again.
        receiver.data_received(b"raced")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await receiver.receive(65536) == b"raced"


async def test_a_chunk_for_a_cancelled_receive_pauses_the_transport(
    direct: Direct,
) -> None:
    """Nobody takes it: the transport pauses, so at most that chunk is queued."""
    import asyncio

    receiver, accepted, connected = direct.receiver, direct.accepted, direct.connected
    transport = accepted._transport  # type: ignore[attr-defined]
    with anyio.fail_after(TIMEOUT):
        for i in range(QUIET_RECEIVES + 1):  # command/reply: it reads on
            await connected.send(b"reply %d" % i)
            assert await receiver.receive(65536) == b"reply %d" % i
        task = asyncio.get_running_loop().create_task(receiver.receive(65536))
        await anyio.wait_all_tasks_blocked()
        task.cancel()  # the receive's future is cancelled; it has not run
        receiver.data_received(b"for nobody")  # arrives in between
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not transport.is_reading()
        assert await receiver.receive(65536) == b"for nobody"


async def test_a_direct_receive_at_the_end_is_a_checkpoint(direct: Direct) -> None:
    """As anyio's: a cancelled caller is cancelled, not told EndOfStream."""
    receiver, connected = direct.receiver, direct.connected
    await connected.aclose()
    with anyio.fail_after(TIMEOUT), pytest.raises(anyio.EndOfStream):
        await receiver.receive(65536)
    with anyio.CancelScope() as scope:
        scope.cancel()
        await receiver.receive(65536)
    assert scope.cancelled_caught
    with pytest.raises(anyio.EndOfStream):
        await receiver.receive(65536)


async def test_a_second_direct_receiver_takes_over_the_stream() -> None:
    """A new receive side for the same stream receives (it used to hang)."""
    if not on_asyncio():
        pytest.skip("asyncio and uvloop only")
    async with raw_pair() as (accepted, connected):
        assert direct_receiver(accepted) is not None
        receiver = direct_receiver(accepted)
        assert receiver is not None
        with anyio.fail_after(TIMEOUT):
            await connected.send(b"to the second")
            assert await receiver.receive(65536) == b"to the second"
            await connected.aclose()
            with pytest.raises(anyio.EndOfStream):
                await receiver.receive(65536)


async def test_direct_receives_hand_out_bytes(direct: Direct) -> None:
    """A loop that passes a bytearray (Windows' proactor) still yields bytes."""
    receiver = direct.receiver
    receiver.data_received(bytearray(b"from a proactor"))
    with anyio.fail_after(TIMEOUT):
        chunk = await receiver.receive(65536)
    assert type(chunk) is bytes and chunk == b"from a proactor"


@pytest.mark.parametrize(
    ("closer", "error"),
    [("peer", anyio.EndOfStream), ("this end", anyio.ClosedResourceError)],
)
async def test_a_waiting_direct_receive_ends_when_the_stream_does(
    closer: str, error: type[Exception], direct: Direct
) -> None:
    """End of stream, and this end closing, wake a receive that waits."""
    receiver, accepted, connected = direct.receiver, direct.accepted, direct.connected

    async def close() -> None:
        await anyio.wait_all_tasks_blocked()
        await (connected if closer == "peer" else accepted).aclose()

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(close)
            with pytest.raises(error):
                await receiver.receive(65536)


@pytest.mark.xfail(
    strict=True,
    reason="anyio's accepted asyncio streams start reading; when this passes, "
    "anyio has fixed it: remove pause_reading_after_accept",
)
async def test_canary_anyio_accept_starts_reading() -> None:
    if not on_asyncio():
        pytest.skip("asyncio only (trio has no transport): the canary is asyncio's")
    async with raw_pair() as (accepted, _):
        transport = accepted._transport  # type: ignore[attr-defined]
        assert not transport.is_reading()
