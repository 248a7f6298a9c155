"""asyncio_compat's ``OneClientReadLoopServer`` and the unittest helpers.

Each test case runs on asyncio and again on uvloop.
"""

from __future__ import annotations

import asyncio

import pytest

import asyncio_compat_support as support
from anytcpip import asyncio_compat as tcpip
from asyncio_compat_support import TCP_TIMEOUT, on_uvloop

# -- OneClientReadLoopServer and TestOneClientReadLoopServer


class HeartbeatRecordingServer(tcpip.TestOneClientReadLoopServer):
    """Sets ``heartbeat_event`` at each heartbeat handled."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.heartbeat_event = asyncio.Event()
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    async def handle_received_heartbeat(self) -> None:
        await super().handle_received_heartbeat()
        self.heartbeat_event.set()


class ReadLoopServerTestCase(support.CountingTestCase):
    server_class: type[tcpip.OneClientServer] | None = tcpip.TestOneClientReadLoopServer

    async def test_read_and_dispatch(self) -> None:
        num_good_writes = 5
        async with (
            self.create_server(connect_callback=self.connect_callback) as server,
            self.create_client(server) as client,
        ):
            assert isinstance(server, tcpip.TestOneClientReadLoopServer)
            await self.assert_next_connected(True)
            assert not server.read_loop_task.done()
            for i in range(num_good_writes):
                await client.write_str(f"Test data {i}.")
                data = await asyncio.wait_for(server.get_next_data(), TCP_TIMEOUT)
                assert data == f"Test data {i}."
            server.fail_next_read = True
            await client.write_str("one more")  # ends the read in progress
            await self.assert_next_connected(False)
            await asyncio.wait_for(server.read_loop_task, TCP_TIMEOUT)
            assert not server.connected
            assert not server.should_be_connected
            try:  # b"" if the client has not seen the end yet, as in 2.2
                assert await asyncio.wait_for(client.read(1), TCP_TIMEOUT) == b""
            except ConnectionError:
                pass
            assert not client.connected
            assert not server.connected_task.done()

    async def test_read_loop_per_client(self) -> None:
        async with self.create_server() as server:
            assert isinstance(server, tcpip.OneClientReadLoopServer)
            assert server.read_loop_task.done()  # no client yet
            for i in range(2):
                async with self.create_client(server) as client:
                    await self.assert_next_connected(True)
                    loop_task = server.read_loop_task
                    assert not loop_task.done()
                    assert server.should_be_connected
                    await client.write_str(f"client {i}")
                    assert isinstance(server, tcpip.TestOneClientReadLoopServer)
                    data = await asyncio.wait_for(server.get_next_data(), TCP_TIMEOUT)
                    assert data == f"client {i}"
                await self.assert_next_connected(False)
                await asyncio.wait_for(loop_task, TCP_TIMEOUT)

    async def test_expected_heartbeat(self) -> None:
        self.server_class = HeartbeatRecordingServer
        async with (
            self.create_server(run_heartbeat_monitor_task=True) as server,
            self.create_client(
                server, run_heartbeat_send_task=True, heartbeat_send_sleep=0.01
            ),
        ):
            assert isinstance(server, HeartbeatRecordingServer)
            await self.assert_next_connected(True)
            for _ in range(3):
                server.heartbeat_event.clear()
                await asyncio.wait_for(server.heartbeat_event.wait(), TCP_TIMEOUT)
            assert server.heartbeat_received_tai is not None
            assert not server.read_loop_task.done()
            assert server.connected

    async def test_unexpected_heartbeat(self) -> None:
        async with (
            self.create_server() as server,
            self.create_client(
                server, run_heartbeat_send_task=True, heartbeat_send_sleep=0.01
            ),
        ):
            assert isinstance(server, tcpip.OneClientReadLoopServer)
            await self.assert_next_connected(True)
            # handle_received_heartbeat raises: the read loop ends.
            await self.assert_next_connected(False)
            await asyncio.wait_for(server.read_loop_task, TCP_TIMEOUT)
            assert not server.connected

    async def test_no_heartbeat_received(self) -> None:
        async with (
            self.create_server(
                run_heartbeat_monitor_task=True, max_heartbeat_interval=0.2
            ) as server,
            self.create_client(server),
        ):
            assert isinstance(server, tcpip.OneClientReadLoopServer)
            await self.assert_next_connected(True)
            assert not server.read_loop_task.done()
            # The client is silent: after 0.2 s the server drops it.
            await self.assert_next_connected(False)
            # The monitor's close_client cancels the read loop, as in 2.2.
            await asyncio.wait([server.read_loop_task], timeout=TCP_TIMEOUT)
            assert server.read_loop_task.cancelled()
            assert not server.connected

    async def test_close_client_cancels_read_and_dispatch(self) -> None:
        class BlockedServer(tcpip.OneClientReadLoopServer):
            async def read_and_dispatch(self) -> None:
                await asyncio.Event().wait()  # never reads

        self.server_class = BlockedServer
        async with self.create_server() as server, self.create_client(server):
            assert isinstance(server, BlockedServer)
            await self.assert_next_connected(True)
            loop_task = server.read_loop_task
            await asyncio.wait_for(server.close_client(), TCP_TIMEOUT)
            assert loop_task.cancelled()
            await self.assert_next_connected(False)

    async def test_handle_received_heartbeat(self) -> None:
        async with self.create_server() as server:
            assert isinstance(server, tcpip.OneClientReadLoopServer)
            with pytest.raises(RuntimeError):
                await server.handle_received_heartbeat()
        server = tcpip.TestOneClientReadLoopServer(
            host=tcpip.LOCALHOST_IPV4,
            port=0,
            log=self.log,
            run_heartbeat_monitor_task=True,
        )
        await server.handle_received_heartbeat()
        assert server.heartbeat_received_tai is not None
        await server.close()

    async def test_abstract(self) -> None:
        with pytest.raises(TypeError):
            tcpip.OneClientReadLoopServer(port=0, log=self.log)  # type: ignore[abstract]


class UserReadLoopTestCase(tcpip.BaseOneClientReadLoopServerTestCase):
    """A test case written the way an lsst.ts.tcpip user writes one."""

    async def create_server(self) -> tcpip.OneClientReadLoopServer:
        return support.EchoServer(port=0, log=self.log)

    async def test_echo(self) -> None:
        async with self.create_server_and_client():
            await self.client.write_json({"hello": "world"})
            reply = await asyncio.wait_for(self.client.read_json(), TCP_TIMEOUT)
            assert reply == {"hello": "world"}
        assert self.server.done_task.done()


ReadLoopServerTestCaseOnUvloop = on_uvloop(ReadLoopServerTestCase)
UserReadLoopTestCaseOnUvloop = on_uvloop(UserReadLoopTestCase)
