"""Long-lived connections: heartbeats, read-loop server, reconnect, TLS."""

from __future__ import annotations

import socket
import ssl
from typing import Any

import anyio
import pytest
import trustme

import anytcpip
from anytcpip import Backoff, Client, OneClientReadLoopServer, OneClientServer
from helpers import (
    TIMEOUT,
    CallbackRecorder,
    CountingBackoff,
    connected_pair,
    counted_memory_pair,
    raw_peer,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- heartbeats -----------------------------------------------------------------


HEARTBEAT_LINE = anytcpip.HEARTBEAT + b"\r\n"


async def test_heartbeats_are_sent_on_the_wire() -> None:
    # A side without heartbeat settings sees them as ordinary lines.
    with anyio.fail_after(TIMEOUT):
        async with OneClientServer(port=0) as plain:
            async with Client("127.0.0.1", plain.port, heartbeat_interval=0.01):
                await plain.wait_connected()
                assert await plain.readuntil(b"\r\n") == HEARTBEAT_LINE
                assert await plain.readuntil(b"\r\n") == HEARTBEAT_LINE


async def test_heartbeats_are_skipped_by_read_str() -> None:
    async with counted_memory_pair(
        {"heartbeat_timeout": 5}, {"heartbeat_interval": 0.01}
    ) as (server, client, received, _):
        with anyio.fail_after(TIMEOUT):
            # Several heartbeats are buffered, unread, on the reading side ...
            await received.wait_received(3 * len(HEARTBEAT_LINE))
            await client.write_str("payload")
            # ... and read_str skips every one of them.
            assert await server.read_str() == "payload"
            assert client.stats.messages_sent >= 4  # 3 heartbeats or more
            assert server.stats.messages_received == 1  # heartbeats not counted


async def test_heartbeats_never_split_a_message() -> None:
    async with connected_pair(
        {"max_line_length": 300_000}, {"heartbeat_interval": 0.001}
    ) as (server, client):
        line = "x" * 200_000
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:

                async def send() -> None:
                    for _ in range(20):
                        await client.write_str(line)

                tg.start_soon(send)
                received = 0
                while received < 20:
                    text = (await server.readuntil(b"\r\n"))[:-2]
                    if text == anytcpip.HEARTBEAT:
                        continue
                    assert text == line.encode()
                    received += 1


async def test_heartbeat_timeout_declares_silent_peer_lost() -> None:
    recorder = CallbackRecorder()
    async with OneClientServer(
        port=0, heartbeat_timeout=0.1, connect_callback=recorder
    ) as server:
        async with raw_peer(server.port):
            assert await recorder.wait_for(2) == [True, False]
            assert server.should_be_connected  # the loss is visible
            with pytest.raises(ConnectionError, match="heartbeat_timeout"):
                await server.read_str()


async def test_heartbeats_keep_a_connection_alive() -> None:
    recorder = CallbackRecorder()
    server_kwargs: dict[str, Any] = {
        "heartbeat_timeout": 0.2,
        "connect_callback": recorder,
    }
    async with counted_memory_pair(server_kwargs, {"heartbeat_interval": 0.02}) as (
        server,
        _client,
        received,
        _,
    ):
        start = anyio.current_time()
        # 50 heartbeats, 0.02 s apart: about five timeouts long.
        await received.wait_received(50 * len(HEARTBEAT_LINE))
        assert anyio.current_time() - start >= 0.5  # > 2 timeouts, at least
        assert server.connected
        assert recorder.states == [True]


# -- read-loop server ---------------------------------------------------------------


class EchoServer(OneClientReadLoopServer):
    async def read_and_dispatch(self) -> None:
        line = await self.read_str()
        if line == "fail":
            raise RuntimeError("asked to fail")
        await self.write_str(line.upper())


async def test_read_loop_server_echoes() -> None:
    async with EchoServer(port=0) as server:
        async with Client("127.0.0.1", server.port) as client:
            with anyio.fail_after(TIMEOUT):
                for word in ("one", "two", "three"):
                    await client.write_str(word)
                    assert await client.read_str() == word.upper()


async def test_read_loop_error_closes_client_and_serves_the_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = CallbackRecorder()
    async with EchoServer(port=0, connect_callback=recorder) as server:
        async with Client("127.0.0.1", server.port) as first:
            await first.write_str("fail")
            with anyio.fail_after(TIMEOUT):
                assert await first.read(10) == b""
            assert await recorder.wait_for(2) == [True, False]
        assert "asked to fail" in caplog.text
        async with Client("127.0.0.1", server.port) as second:
            with anyio.fail_after(TIMEOUT):
                await second.write_str("again")
                assert await second.read_str() == "AGAIN"


def test_read_loop_server_is_abstract() -> None:
    with pytest.raises(TypeError):
        OneClientReadLoopServer()  # type: ignore[abstract]


# -- reconnect ----------------------------------------------------------------------


async def test_reconnect_waits_for_a_server_that_starts_later() -> None:
    port = _free_port()
    recorder = CallbackRecorder()
    policy = CountingBackoff(initial=0.01, maximum=0.05)
    async with Client(
        "127.0.0.1", port, reconnect=policy, connect_callback=recorder
    ) as client:
        assert not client.connected
        with pytest.raises(ConnectionError, match="not connected"):
            await client.write_str("too early")
        # Two attempts failed (each is followed by a delay).
        await policy.wait_for_delays(2)
        assert client.reconnect_attempts >= 2
        async with OneClientServer(port=port) as server:
            with anyio.fail_after(TIMEOUT):
                await client.wait_connected()
                await client.write_str("hello")
                assert await server.read_str() == "hello"


async def test_reconnect_after_loss_reports_each_change() -> None:
    recorder = CallbackRecorder()
    policy = Backoff(initial=0.01, maximum=0.05)
    async with OneClientServer(port=0) as server:
        async with Client(
            "127.0.0.1", server.port, reconnect=policy, connect_callback=recorder
        ) as client:
            assert await recorder.wait_for(1) == [True]
            with anyio.fail_after(TIMEOUT):
                # The client may report before the server has accepted.
                await server.wait_connected()
            await server.close_client()
            assert await recorder.wait_for(3) == [True, False, True]
            with anyio.fail_after(TIMEOUT):
                await client.wait_connected()
                await server.wait_connected()
                await client.write_str("back")
                assert await server.read_str() == "back"
            assert client.should_be_connected
    assert recorder.states == [True, False, True, False]


async def test_reconnect_backs_off_from_a_server_that_drops_it_at_once() -> None:
    # A busy one-client server accepts and closes at once: the reconnecting
    # client must wait its backoff delay between attempts, not spin.
    policy = CountingBackoff(initial=0.1, maximum=0.1, jitter=0)
    async with OneClientServer(port=0) as server:
        async with Client("127.0.0.1", server.port):
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
            start = anyio.current_time()
            async with Client("127.0.0.1", server.port, reconnect=policy) as extra:
                # Each rejected attempt is followed by a delay: wait for four.
                await policy.wait_for_delays(4)
                elapsed = anyio.current_time() - start
                assert server.rejected_count >= 4
                # Three delays of 0.1 s separate four attempts (a timer may
                # fire a millisecond early; without backoff it takes ~3 ms).
                assert elapsed >= 0.25, elapsed
                assert extra.reconnect_attempts >= 4
                # Each was accepted, then lost (the last may still be on its
                # way to the client when the server has counted it).
                assert extra.stats.connects >= 3


async def test_reconnect_gives_up_after_max_attempts() -> None:
    port = _free_port()
    policy = Backoff(initial=0.001, maximum=0.001, max_attempts=3)
    async with Client("127.0.0.1", port, reconnect=policy) as client:
        with anyio.fail_after(TIMEOUT), pytest.raises(ConnectionRefusedError):
            await client.wait_connected()
        assert client.reconnect_attempts == 3


def test_backoff_delays() -> None:
    delays = Backoff(initial=1, maximum=5, factor=2, jitter=0).delays()
    assert [next(delays) for _ in range(5)] == [1, 2, 4, 5, 5]
    jittered = Backoff(initial=1, maximum=1, jitter=0.5).delays()
    assert all(0.5 <= next(jittered) <= 1.5 for _ in range(100))
    with pytest.raises(ValueError, match="factor"):
        Backoff(factor=0.5)
    with pytest.raises(ValueError, match="max_attempts"):
        Backoff(max_attempts=0)
    with pytest.raises(TypeError, match="Backoff"):
        Client("127.0.0.1", 1, reconnect=3)  # type: ignore[arg-type]


# -- TLS ----------------------------------------------------------------------------


async def test_tls_round_trip(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    recorder = CallbackRecorder()
    async with connected_pair(
        {"ssl_context": server_context, "connect_callback": recorder},
        {"ssl_context": client_context},
    ) as (server, client):
        with anyio.fail_after(TIMEOUT):
            await client.write_json({"secure": True})
            assert await server.read_json() == {"secure": True}
            await server.write_str("ok")
            assert await client.read_str() == "ok"
        await client.close()
        assert await recorder.wait_for(2) == [True, False]


async def test_tls_verifies_the_hostname(
    ca: trustme.CA, client_context: ssl.SSLContext
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("controller.example").configure_cert(context)
    async with OneClientServer(port=0, ssl_context=context) as server:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            async with Client("127.0.0.1", server.port, ssl_context=client_context):
                pass
    message = str(info.value)
    assert "cannot connect: TLS handshake failed" in message, message
    assert "mismatch, certificate is not valid for '127.0.0.1'" in message, message
    assert info.value.verify_code == 64  # X509_V_ERR_IP_ADDRESS_MISMATCH


async def test_tls_untrusted_server_refused(server_context: ssl.SSLContext) -> None:
    async with OneClientServer(port=0, ssl_context=server_context) as server:
        with pytest.raises(ssl.SSLCertVerificationError) as info:
            async with Client(
                "127.0.0.1", server.port, ssl_context=ssl.create_default_context()
            ):
                pass
    message = str(info.value)
    assert "TLS handshake failed: unable to get local issuer certificate" in message
    assert "Operation not permitted" not in message


async def test_tls_extra_client_rejected(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    async with connected_pair(
        {"ssl_context": server_context}, {"ssl_context": client_context}
    ) as (server, client):
        with pytest.raises((OSError, ConnectionError)):
            async with Client("127.0.0.1", server.port, ssl_context=client_context):
                pass
        assert server.rejected_count == 1
        with anyio.fail_after(TIMEOUT):
            await client.write_str("unaffected")
            assert await server.read_str() == "unaffected"
