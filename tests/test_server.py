"""One-client semantics of OneClientServer (API.md section 6)."""

from __future__ import annotations

import logging
import ssl

import anyio
import anyio.abc
import pytest

from anytcpip import BaseClientOrServer, Client, OneClientServer
from helpers import TIMEOUT, CallbackRecorder, connected_pair, ipv6_available, raw_peer


async def test_port_zero_gives_the_real_port() -> None:
    async with OneClientServer(port=0) as server:
        assert server.port > 0
        assert server.host == "127.0.0.1"
        async with Client("127.0.0.1", server.port) as client:
            assert client.connected


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
async def test_host_none_listens_on_ipv4_and_ipv6_on_one_port() -> None:
    async with OneClientServer(host=None, port=0) as server:
        assert server.port > 0
        for host in ("127.0.0.1", "::1"):
            async with Client(host, server.port) as client:
                with anyio.fail_after(TIMEOUT):
                    await server.wait_connected()
                    await client.write_str(host)
                    assert await server.read_str() == host
            with anyio.fail_after(TIMEOUT):
                while server.connected:
                    await server.read(100)  # drain until end of stream


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
async def test_ipv6_loopback_server() -> None:
    async with OneClientServer(host="::1", port=0) as server:
        async with Client("::1", server.port) as client:
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
                await server.write_str("v6")
                assert await client.read_str() == "v6"


async def test_extra_client_rejected_and_first_unaffected() -> None:
    recorder = CallbackRecorder()
    async with connected_pair({"connect_callback": recorder}) as (server, client):
        assert await recorder.wait_for(1) == [True]
        async with raw_peer(server.port) as extra:
            with anyio.fail_after(TIMEOUT):
                # Closed at once with nothing sent.
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await extra.receive()
        assert server.rejected_count == 1
        with anyio.fail_after(TIMEOUT):
            await client.write_str("still here")
            assert await server.read_str() == "still here"
            await server.write_str("and you")
            assert await client.read_str() == "and you"
        assert client.connected and server.connected
        assert recorder.states == [True]


async def test_extra_client_rejected_is_logged_with_its_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The rejection is logged at INFO, naming the client; not below INFO."""
    caplog.set_level(logging.INFO, logger="anytcpip")
    async with connected_pair() as (server, _client):
        async with raw_peer(server.port) as extra:
            address = extra.extra(anyio.abc.SocketAttribute.local_address)
            with anyio.fail_after(TIMEOUT):
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await extra.receive()
        caplog.set_level(logging.WARNING, logger="anytcpip")
        async with raw_peer(server.port) as quiet:
            with anyio.fail_after(TIMEOUT):
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await quiet.receive()
        assert server.rejected_count == 2
    messages = [record.getMessage() for record in caplog.records]
    rejections = [message for message in messages if "rejected" in message]
    assert len(rejections) == 1
    assert f"client {address[0]}:{address[1]} rejected" in rejections[0]
    assert "(1 rejected so far)" in rejections[0]


async def test_many_extra_clients_counted_exactly() -> None:
    async with connected_pair() as (server, client):
        extras = 20

        async def extra() -> None:
            async with raw_peer(server.port) as stream:
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await stream.receive()

        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                for _ in range(extras):
                    tg.start_soon(extra)
                for i in range(100):
                    await client.write_str(str(i))
                for i in range(100):
                    assert await server.read_str() == str(i)
        assert server.rejected_count == extras
        assert server.connected


async def test_next_client_accepted_after_the_first_leaves() -> None:
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        for expected in range(1, 4):
            async with Client("127.0.0.1", server.port) as client:
                await recorder.wait_for(2 * expected - 1)
                await client.write_str(f"client {expected}")
                with anyio.fail_after(TIMEOUT):
                    assert await server.read_str() == f"client {expected}"
            await recorder.wait_for(2 * expected)
        assert recorder.states == [True, False] * 3
        assert server.rejected_count == 0


async def test_close_client_keeps_listening() -> None:
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        async with Client("127.0.0.1", server.port) as first:
            await recorder.wait_for(1)
            assert server.should_be_connected
            await server.close_client()
            assert recorder.states == [True, False]  # ran before returning
            assert not server.connected
            assert not server.should_be_connected
            with pytest.raises(ConnectionError, match="closed by this end"):
                await server.read_str()
            with anyio.fail_after(TIMEOUT):
                assert await first.read(10) == b""
            await server.close_client()  # idempotent
        async with Client("127.0.0.1", server.port) as second:
            await recorder.wait_for(3)
            await second.write_str("next")
            with anyio.fail_after(TIMEOUT):
                assert await server.read_str() == "next"
        assert recorder.states[:3] == [True, False, True]


async def test_close_stops_listening_and_drops_client() -> None:
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        port = server.port
        async with Client("127.0.0.1", port) as client:
            await recorder.wait_for(1)
            await server.close()
            assert recorder.states == [True, False]
            with anyio.fail_after(TIMEOUT):
                assert await client.read(10) == b""
        await server.close()  # idempotent
    with pytest.raises(ConnectionRefusedError):
        async with Client("127.0.0.1", port):
            pass


async def test_wait_connected() -> None:
    async with OneClientServer(port=0) as server:
        assert not server.connected
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                done = anyio.Event()

                async def waiter() -> None:
                    await server.wait_connected()
                    done.set()

                tg.start_soon(waiter)
                await anyio.wait_all_tasks_blocked()
                assert not done.is_set()
                async with Client("127.0.0.1", server.port):
                    await done.wait()
                    await server.wait_connected()  # at once when connected
                    assert server.connected


async def test_wait_connected_raises_when_server_closes() -> None:
    async with OneClientServer(port=0) as server:
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:

                async def waiter() -> None:
                    with pytest.raises(ConnectionError, match="closed"):
                        await server.wait_connected()

                tg.start_soon(waiter)
                await anyio.wait_all_tasks_blocked()
                await server.close()


async def test_replace_policy_hands_over_to_the_newcomer() -> None:
    recorder = CallbackRecorder()
    server_kwargs = {"connect_callback": recorder, "extra_client": "replace"}
    async with connected_pair(server_kwargs) as (server, old):
        await recorder.wait_for(1)
        async with Client("127.0.0.1", server.port) as new:
            assert await recorder.wait_for(3) == [True, False, True]
            with anyio.fail_after(TIMEOUT):
                assert await old.read(10) == b""
                await new.write_str("I am new")
                assert await server.read_str() == "I am new"
        assert server.rejected_count == 0


async def test_server_bound_to_loopback_by_default() -> None:
    async with OneClientServer() as server:
        assert server.host == "127.0.0.1"
        assert server.port > 0


# -- admission is atomic, and never waits for the old client (issue 11) -------------


async def test_simultaneous_tls_clients_admit_exactly_one(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    clients = 20
    recorder = CallbackRecorder(timeout=4 * TIMEOUT)
    rejected: list[int] = []
    admitted: list[anyio.abc.ByteStream] = []
    changed = anyio.Event()

    async with OneClientServer(
        port=0, ssl_context=server_context, connect_callback=recorder
    ) as server:

        async def one(i: int) -> None:
            nonlocal changed
            try:
                stream = await anyio.connect_tcp(
                    "127.0.0.1",
                    server.port,
                    ssl_context=client_context,
                    tls_standard_compatible=False,
                )
            except (OSError, anyio.BrokenResourceError, anyio.EndOfStream):
                rejected.append(i)  # closed during the handshake
            else:
                try:
                    assert await stream.receive() == b"welcome\r\n"
                    admitted.append(stream)
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    rejected.append(i)  # closed after the handshake
                    await stream.aclose()
            changed.set()
            changed = anyio.Event()

        with anyio.fail_after(4 * TIMEOUT):
            async with anyio.create_task_group() as tg:
                for i in range(clients):
                    tg.start_soon(one, i)
                with anyio.move_on_after(2 * TIMEOUT):
                    while len(rejected) < clients - 1:
                        await changed.wait()
                assert len(rejected) == clients - 1, "several clients were admitted"
                assert server.rejected_count == clients - 1
                assert recorder.states == [True]
                await server.write_str("welcome")
            assert len(admitted) == 1
            await admitted[0].aclose()
            assert await recorder.wait_for(2) == [True, False]
            assert not server.connected


async def test_replace_takes_over_at_once_from_a_client_that_stopped_reading() -> None:
    recorder = CallbackRecorder()
    async with OneClientServer(
        port=0, extra_client="replace", connect_callback=recorder
    ) as server:
        async with raw_peer(server.port):  # never reads
            assert await recorder.next() is True
            with anyio.fail_after(TIMEOUT):
                # More than the kernel's buffers hold: most of it stays queued.
                await server.write(b"x" * (16 * 1024 * 1024))
            async with Client("127.0.0.1", server.port) as newcomer:
                # The old client's queue is dropped, not flushed (that took 2 s).
                with anyio.fail_after(1.0):
                    assert await recorder.next() is False
                    assert await recorder.next() is True
                    await newcomer.write_str("hello")
                    assert await server.read_str() == "hello"
                    await server.write_str("served")
                    assert await newcomer.read_str() == "served"


@pytest.mark.parametrize("extra_client", ["reject", "replace"])
async def test_slow_connect_callback_does_not_delay_the_next_client(
    extra_client: str,
) -> None:
    states: list[bool] = []
    blocked = anyio.Event()
    gate = anyio.Event()
    all_reported = anyio.Event()

    async def callback(conn: BaseClientOrServer) -> None:
        states.append(conn.connected)
        if len(states) == 2:  # the first client's departure: a slow callback
            blocked.set()
            await gate.wait()
        if len(states) == 3:
            all_reported.set()

    async def serve_second(server: OneClientServer) -> None:
        async with Client("127.0.0.1", server.port) as second:
            await blocked.wait()
            # Served while the callback still runs.
            await second.write_str("hello")
            assert await server.read_str() == "hello"
            await server.write_str("served")
            assert await second.read_str() == "served"
            assert states == [True, False]
            gate.set()
            await all_reported.wait()
            assert states == [True, False, True]

    async with OneClientServer(
        port=0,
        connect_callback=callback,
        extra_client=extra_client,  # type: ignore[arg-type]
    ) as server:
        with anyio.fail_after(TIMEOUT):
            async with Client("127.0.0.1", server.port):
                await server.wait_connected()
                if extra_client == "replace":
                    await serve_second(server)
            if extra_client == "reject":
                await blocked.wait()
                await serve_second(server)
