"""Client connection behaviour (API.md section 5)."""

from __future__ import annotations

import socket

import anyio
import pytest

from anytcpip import Client, OneClientServer
from helpers import TIMEOUT, ipv6_available


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_refused_raises_connection_refused_not_a_group() -> None:
    port = _free_port()
    with pytest.raises(ConnectionRefusedError) as info:
        async with Client("127.0.0.1", port, name="ctrl"):
            pass
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "ctrl" in str(info.value)


async def test_refused_by_host_name_raises_connection_refused() -> None:
    # A host name takes anyio's Happy Eyeballs path (an IP literal does not);
    # both report the OS's own error.
    port = _free_port()
    with pytest.raises(ConnectionRefusedError) as info:
        async with Client("localhost", port):
            pass
    assert f"localhost:{port}" in str(info.value)


@pytest.mark.parametrize(
    ("listen", "connect"),
    [
        ("127.0.0.1", "localhost"),
        ("::1", "::1"),
        ("::1", "0:0:0:0:0:0:0:1"),
    ],
)
async def test_connects_to_ip_literals_and_host_names(
    listen: str, connect: str
) -> None:
    if ":" in listen and not ipv6_available():
        pytest.skip("no IPv6 loopback")
    async with OneClientServer(host=listen, port=0) as server:
        async with Client(connect, server.port) as client:
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
            await client.write_str("ping")
            with anyio.fail_after(TIMEOUT):
                assert await server.read_str() == "ping"
            assert client.host == connect


async def test_connected_state_and_attributes() -> None:
    async with OneClientServer(port=0) as server:
        client = Client("127.0.0.1", server.port, name="c")
        assert (client.host, client.port, client.name) == (
            "127.0.0.1",
            server.port,
            "c",
        )
        assert not client.connected
        async with client:
            assert client.connected
            assert client.should_be_connected
        assert not client.connected
        assert not client.should_be_connected


async def test_client_cannot_be_entered_twice() -> None:
    async with OneClientServer(port=0) as server:
        client = Client("127.0.0.1", server.port)
        async with client:
            with pytest.raises(RuntimeError, match="once"):
                await client.__aenter__()


async def test_wait_connected_returns_at_once_when_connected() -> None:
    async with OneClientServer(port=0) as server:
        async with Client("127.0.0.1", server.port) as client:
            with anyio.fail_after(1):  # at once: nothing to wait for
                await client.wait_connected()


async def test_connect_timeout_bounds_a_connection_attempt() -> None:
    # A listener that never accepts, its backlog full: the OS drops further
    # SYNs, so a connection attempt hangs until connect_timeout.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):
                filler = socket.socket()
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
                fillers.append(filler)
            start = anyio.current_time()
            with anyio.fail_after(TIMEOUT), pytest.raises(TimeoutError) as info:
                async with Client("127.0.0.1", port, connect_timeout=0.3):
                    pass
            assert anyio.current_time() - start >= 0.25
            assert f"(127.0.0.1:{port}): cannot connect: timed out after 0.3 s" in str(
                info.value
            )
        finally:
            for filler in fillers:
                filler.close()


async def test_keepalive_enabled_by_default() -> None:
    async with OneClientServer(port=0) as server:
        async with Client("127.0.0.1", server.port) as client:
            channel = client._channel  # no public socket accessor
            assert channel is not None
            sock = channel.stream.extra(anyio.abc.SocketAttribute.raw_socket)
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        async with Client("127.0.0.1", server.port, keepalive=False) as client:
            channel = client._channel
            assert channel is not None
            sock = channel.stream.extra(anyio.abc.SocketAttribute.raw_socket)
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 0


def test_connect_timeout_validation() -> None:
    with pytest.raises(ValueError, match="connect_timeout"):
        Client("127.0.0.1", 1, connect_timeout=0)
