"""anytcpip.testing and its pytest plugin, used the way a downstream test would."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from anytcpip import Client, OneClientReadLoopServer, OneClientServer
from anytcpip.testing import (
    CallbackRecorder,
    connect_client,
    connected_pair,
    memory_pair,
    memory_stream_pair,
    start_server,
)
from helpers import TIMEOUT, ipv6_available


def test_the_plugin_is_registered(pytestconfig: pytest.Config) -> None:
    # Loaded through the pytest11 entry point, not by our conftest.
    assert pytestconfig.pluginmanager.has_plugin("anytcpip")


async def test_recorder_next_returns_each_change_in_order() -> None:
    recorder = CallbackRecorder(timeout=TIMEOUT)
    async with start_server(connect_callback=recorder) as server:
        for _ in range(2):
            async with connect_client(server):
                assert await recorder.next() is True
            assert await recorder.next() is False
    assert recorder.states == [True, False, True, False]


async def test_recorder_next_times_out_when_nothing_changes() -> None:
    recorder = CallbackRecorder(timeout=0.05)
    async with start_server(connect_callback=recorder):
        with pytest.raises(TimeoutError):
            await recorder.next()
    assert recorder.states == []


async def test_recorder_next_and_wait_for_agree() -> None:
    recorder = CallbackRecorder(timeout=TIMEOUT)
    async with connected_pair({"connect_callback": recorder}) as (_server, client):
        await client.close()
        assert await recorder.wait_for(2) == [True, False]
        assert await recorder.next() is True
        assert await recorder.next() is False


async def test_start_server_and_connect_client() -> None:
    async with start_server(name="mock") as server:
        assert server.port > 0
        assert server.host == "127.0.0.1"
        async with connect_client(server, name="ctl") as client:
            assert server.connected and client.connected
            await client.write_json({"cmd": "ping"})
            assert await server.read_json() == {"cmd": "ping"}
        assert not client.connected


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
async def test_start_server_on_ipv6() -> None:
    async with start_server(host="::1") as server:
        async with connect_client(server) as client:
            await server.write_str("over IPv6")
            assert await client.read_str() == "over IPv6"


async def test_the_fixtures_give_a_connected_pair(
    anytcpip_server: OneClientServer,
    anytcpip_client: Client,
    anytcpip_recorder: CallbackRecorder,
) -> None:
    assert await anytcpip_recorder.next() is True
    await anytcpip_client.write_str("ping")
    assert await anytcpip_server.read_str() == "ping"
    await anytcpip_client.close()
    assert await anytcpip_recorder.next() is False
    assert anytcpip_server.should_be_connected and not anytcpip_server.connected


class _UpperEcho(OneClientReadLoopServer):
    """A mock controller: replies to each line with it in upper case."""

    async def read_and_dispatch(self) -> None:
        line = await self.read_str()
        await self.write_str(line.upper())


class TestOverridingTheServer:
    """A downstream package overrides the fixtures to test its own server."""

    @pytest.fixture
    def anytcpip_server_class(self) -> type[OneClientServer]:
        return _UpperEcho

    @pytest.fixture
    def anytcpip_server_kwargs(self) -> dict[str, Any]:
        return {"name": "upper", "terminator": b"\n"}

    async def test_it_runs_the_overridden_class(
        self, anytcpip_server: OneClientServer, anytcpip_client: Client
    ) -> None:
        assert isinstance(anytcpip_server, _UpperEcho)
        assert anytcpip_server.name == "upper"
        # The client uses the default CRLF terminator; the server reads "\n"
        # lines, so it sees the "\r" and sends it back upper-cased.
        await anytcpip_client.write(b"move 3\n")
        with anyio.fail_after(TIMEOUT):
            assert await anytcpip_client.readline() == b"MOVE 3\n"


async def test_memory_pair_runs_the_whole_api_without_sockets() -> None:
    recorder = CallbackRecorder(timeout=TIMEOUT)
    async with memory_pair({"connect_callback": recorder}, {"terminator": b"\n"}) as (
        server,
        client,
    ):
        assert await recorder.next() is True
        await client.write_json({"cmd": "home"})
        assert await server.readline() == b'{"cmd": "home"}\n'
        await server.write_str("done")
        assert await client.readuntil(b"\r\n") == b"done\r\n"
        await client.close()
        assert await recorder.next() is False
        assert server.should_be_connected and not server.connected


async def test_memory_streams_apply_backpressure() -> None:
    ours, theirs = memory_stream_pair(limit=4)
    async with ours, theirs:
        await ours.send(b"1234")
        with anyio.move_on_after(0.05) as scope:
            await ours.send(b"5")  # full: waits for the peer to read
        assert scope.cancelled_caught
        assert await theirs.receive() == b"1234"
        await ours.send_eof()
        with pytest.raises(anyio.EndOfStream):
            await theirs.receive()
