"""anytcpip.asyncio_compat, tested as a user of lsst.ts.tcpip 2.x would.

Every test case runs on plain asyncio and again on uvloop (the ``*OnUvloop``
classes generated at the bottom). The tests use only the lsst.ts.tcpip API,
through the one changed import below, and wait on futures and queues with
timeouts instead of sleeping.
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib.util
import json
import logging
import socket
import sys
import unittest
from typing import Any

import pytest

from anytcpip import asyncio_compat as tcpip

# Standard timeout for TCP/IP messages (sec).
TCP_TIMEOUT = 2


class ShortStruct(ctypes.Structure):
    _pack_ = 1
    _fields_ = [
        ("ushort_0", ctypes.c_ushort),
        ("int64_0", ctypes.c_int64),
        ("double_0", ctypes.c_double),
        ("float_0", ctypes.c_float),
    ]


# -- the example of lsst.ts.tcpip's documentation, with only the import changed


class EchoServer(tcpip.OneClientReadLoopServer):
    """A trivial echo server (the lsst.ts.tcpip documented example)."""

    async def read_and_dispatch(self) -> None:
        data = await self.read_str()
        await self.write_str(data)


class ExampleTestCase(unittest.IsolatedAsyncioTestCase):
    async def test_echo_server(self) -> None:
        log = logging.getLogger()

        server = EchoServer(port=0, log=log)
        await server.start_task

        client = tcpip.Client(
            host=server.host,
            port=server.port,
            log=server.log,
        )
        await client.start_task
        await server.connected_task

        for write_str in ("some data", "more data", "yet more data"):
            await asyncio.wait_for(client.write_str(write_str), timeout=TCP_TIMEOUT)
            read_str = await asyncio.wait_for(client.read_str(), timeout=TCP_TIMEOUT)
            assert read_str == write_str

        await client.close()
        await server.close()
        assert client.done_task.done() and server.done_task.done()


# -- Client and OneClientServer


class ClientTestCase(tcpip.BaseOneClientServerTestCase):
    server_class = tcpip.OneClientServer

    @property
    def callback(self) -> tcpip.ConnectCallbackType:
        return self.connect_callback

    async def check_read_write_not_connected(self, client: tcpip.Client) -> None:
        assert not client.connected
        struct = ShortStruct()
        for call in (
            client.read_json(),
            client.read_str(),
            client.read(1),
            client.readexactly(1),
            client.readline(),
            client.readuntil(b"\n"),
            client.read_into(struct),
            client.write(b"\n"),
            client.write_from(struct),
            client.writelines([b" ", b"\n"]),
            client.write_str("x"),
            client.write_json({}),
        ):
            with pytest.raises(ConnectionError):
                await call

    async def check_read_write_methods(
        self, reader: tcpip.BaseClientOrServer, writer: tcpip.BaseClientOrServer
    ) -> None:
        data = b"data with unicode \xf0\x9f\x98\x80"
        await writer.write(data)
        assert await asyncio.wait_for(reader.read(len(data)), TCP_TIMEOUT) == data

        await writer.write(data)
        assert await asyncio.wait_for(reader.readexactly(5), TCP_TIMEOUT) == data[:5]
        rest = await asyncio.wait_for(reader.readexactly(len(data) - 5), TCP_TIMEOUT)
        assert rest == data[5:]

        await writer.writelines([data, b"\n"])
        assert await asyncio.wait_for(reader.readline(), TCP_TIMEOUT) == data + b"\n"

        await writer.write(data + tcpip.DEFAULT_TERMINATOR)
        read_bytes = await asyncio.wait_for(
            reader.readuntil(tcpip.DEFAULT_TERMINATOR), TCP_TIMEOUT
        )
        assert read_bytes == data + tcpip.DEFAULT_TERMINATOR

        sent = ShortStruct(ushort_0=1, int64_0=2, double_0=3.3, float_0=4.5)
        received = ShortStruct()
        await writer.write_from(sent, sent)
        for _ in range(2):
            await asyncio.wait_for(reader.read_into(received), TCP_TIMEOUT)
            for field in ShortStruct._fields_:
                assert getattr(received, field[0]) == getattr(sent, field[0])

        # encoding and terminator are attributes that may be changed.
        initial = reader.encoding, reader.terminator
        try:
            for encoding, terminator in (
                ("utf-8", b"\r\n"),
                ("utf-16", b"\n"),
                ("utf-32", b"XYZZY"),
            ):
                for end in (reader, writer):
                    end.encoding, end.terminator = encoding, terminator
                text = "data with unicode \U0001f600 for read_str"
                await writer.write_str(text)
                assert await asyncio.wait_for(reader.read_str(), TCP_TIMEOUT) == text
                await writer.write(text.encode(encoding) + terminator)
                assert await asyncio.wait_for(reader.read_str(), TCP_TIMEOUT) == text
                message = {"msg": text, "values": [1, 2.5, None]}
                await writer.write_json(message)
                reply = await asyncio.wait_for(reader.read_json(), TCP_TIMEOUT)
                assert reply == message
        finally:
            for end in (reader, writer):
                end.encoding, end.terminator = initial

    async def test_initial_conditions(self) -> None:
        async with self.create_server() as server:
            assert server.port != 0
            assert not server.connected
            assert not server.connected_task.done()
            async with self.create_client(
                server, connect_callback=self.connect_callback
            ) as client:
                assert client.connected
                assert server.connected
                assert client.should_be_connected
                assert server.should_be_connected
                assert server.connected_task.done()
                await self.assert_next_connected(True)  # the server's
                await self.assert_next_connected(True)  # the client's

    async def test_read_write_methods(self) -> None:
        async with (
            self.create_server(connect_callback=None) as server,
            self.create_client(server) as client,
        ):
            await self.check_read_write_methods(reader=client, writer=server)
            await self.check_read_write_methods(reader=server, writer=client)

    async def test_close(self) -> None:
        async with (
            self.create_server(connect_callback=None) as server,
            self.create_client(server, connect_callback=self.callback) as client,
        ):
            await self.assert_next_connected(True)
            assert not client.done_task.done()
            await asyncio.wait_for(client.close(), TCP_TIMEOUT)
            assert not client.connected
            assert not client.should_be_connected
            assert client.done_task.done()
            await self.assert_next_connected(False)
            await self.check_read_write_not_connected(client)
            # Subsequent calls have no effect.
            await asyncio.wait_for(client.close(), TCP_TIMEOUT)
            await asyncio.wait_for(client.basic_close(), TCP_TIMEOUT)
            assert self.connect_queue is not None and self.connect_queue.empty()
        await server.close()
        await server.close_client()
        assert server.done_task.done()

    async def test_basic_close(self) -> None:
        async with (
            self.create_server(connect_callback=None) as server,
            self.create_client(server, connect_callback=self.callback) as client,
        ):
            await self.assert_next_connected(True)
            await asyncio.wait_for(client.basic_close(), TCP_TIMEOUT)
            assert not client.connected
            assert client.should_be_connected
            assert client.done_task.done()
            await self.assert_next_connected(False)
            await self.check_read_write_not_connected(client)

    async def test_create_done_client(self) -> None:
        client = tcpip.Client(host="", port=0, log=self.log)
        assert client.start_task.done()
        assert client.done_task.done()
        assert not client.connected
        assert not client.should_be_connected
        await self.check_read_write_not_connected(client)
        await client.close()
        async with tcpip.Client(host="", port=0, log=self.log) as same:
            assert not same.connected

    async def test_sync_connect_callback(self) -> None:
        def sync_callback(_: object) -> None:
            pass

        async with self.create_server() as server:
            with pytest.raises(TypeError):
                async with self.create_client(server, connect_callback=sync_callback):
                    pass
            with pytest.raises(TypeError):
                tcpip.OneClientServer(
                    host=tcpip.LOCALHOST_IPV4,
                    port=0,
                    log=self.log,
                    connect_callback=sync_callback,  # type: ignore[arg-type]
                )

    async def test_connect_callback_raises(self) -> None:
        async def bad_callback(_: object) -> None:
            raise RuntimeError("intentional")

        with self.assertLogs(self.log, logging.ERROR) as logs:
            async with self.create_server(connect_callback=bad_callback) as server:
                async with self.create_client(server) as client:
                    await self.check_read_write_methods(reader=server, writer=client)
        assert any("connect_callback failed" in line for line in logs.output)

    async def test_server_drops_connection(self) -> None:
        async with (
            self.create_server(connect_callback=None) as server,
            self.create_client(server, connect_callback=self.callback) as client,
        ):
            await self.assert_next_connected(True)
            await asyncio.wait_for(server.close_client(), TCP_TIMEOUT)
            assert not server.should_be_connected
            await self.assert_next_connected(False)
            assert client.should_be_connected  # the peer dropped the client
            assert not client.connected
            # The server keeps listening.
            async with self.create_client(server) as client2:
                assert client2.connected

    async def test_server_basic_close_client(self) -> None:
        async with self.create_server() as server, self.create_client(server):
            await self.assert_next_connected(True)
            await server.basic_close_client()
            await self.assert_next_connected(False)
            assert server.should_be_connected
            assert not server.connected

    async def test_connected_task_renewal(self) -> None:
        async with self.create_server() as server:
            first = server.connected_task
            async with self.create_client(server):
                await self.assert_next_connected(True)
                assert first.done()
            await self.assert_next_connected(False)
            second = server.connected_task
            assert second is not first and not second.done()
            async with self.create_client(server):
                assert second.done()
            await self.assert_next_connected(True)
            await self.assert_next_connected(False)
            # Also after the server drops the client.
            async with self.create_client(server):
                await self.assert_next_connected(True)
                done = server.connected_task
                await server.close_client()
                assert server.connected_task is not done
                assert not server.connected_task.done()

    async def test_port_zero(self) -> None:
        server = tcpip.OneClientServer(host=tcpip.LOCALHOST_IPV4, port=0, log=self.log)
        assert server.port == 0
        await server.start_task
        assert server.port != 0
        await server.close()

        # All interfaces: IPv4 and IPv6 share the port, so it is not ambiguous.
        async with self.create_server(host=None) as server:
            assert server.port != 0
            async with self.create_client(server) as client:
                assert client.connected

    async def test_extra_client_is_rejected(self) -> None:
        async with (
            self.create_server() as server,
            self.create_client(server) as client,
        ):
            await self.assert_next_connected(True)
            async with self.create_client(server, wait_connected=False) as extra:
                assert await asyncio.wait_for(extra.read(10), TCP_TIMEOUT) == b""
                assert not extra.connected
            await client.write_str("still here")
            assert await asyncio.wait_for(server.read_str(), TCP_TIMEOUT) == (
                "still here"
            )

    async def test_refused_connection(self) -> None:
        async with self.create_server() as server:
            port = server.port
        client = tcpip.Client(host=tcpip.LOCALHOST_IPV4, port=port, log=self.log)
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(client.start_task, TCP_TIMEOUT)
        await asyncio.wait_for(client.done_task, TCP_TIMEOUT)
        assert not client.connected
        await client.close()

    async def test_close_before_connected(self) -> None:
        async with self.create_server() as server:
            client = tcpip.Client(host=server.host, port=server.port, log=self.log)
            await client.close()
            assert client.done_task.done()
            assert not client.connected
            assert client.start_task.cancelled()

    async def test_read_exceptions(self) -> None:
        async with (
            self.create_server(connect_callback=None) as server,
            self.create_client(server, limit=10) as client,
        ):
            await server.write(b"0123456789abcdef")
            with pytest.raises(asyncio.LimitOverrunError):
                await asyncio.wait_for(client.readuntil(b"\n"), TCP_TIMEOUT)
            # The data stays buffered.
            assert await client.readexactly(16) == b"0123456789abcdef"

            await server.write(b"partial")
            await server.close_client()
            with pytest.raises(asyncio.IncompleteReadError) as info:
                await asyncio.wait_for(client.readexactly(10), TCP_TIMEOUT)
            assert info.value.partial == b"partial"
            assert not client.connected
            assert client.should_be_connected
            with pytest.raises(ConnectionError):
                await client.read_str()

    async def test_incomplete_line_and_struct(self) -> None:
        for method in ("read_str", "read_into", "readline", "read"):
            async with (
                self.create_server(connect_callback=None) as server,
                self.create_client(server) as client,
            ):
                await server.write(b"half")
                await server.close_client()
                if method == "read_str":
                    with pytest.raises(asyncio.IncompleteReadError):
                        await asyncio.wait_for(client.read_str(), TCP_TIMEOUT)
                elif method == "read_into":
                    with pytest.raises(asyncio.IncompleteReadError) as info:
                        await asyncio.wait_for(
                            client.read_into(ShortStruct()), TCP_TIMEOUT
                        )
                    assert info.value.expected == ctypes.sizeof(ShortStruct)
                elif method == "readline":
                    # As asyncio: the unterminated remainder at EOF.
                    assert await asyncio.wait_for(client.readline(), TCP_TIMEOUT) == (
                        b"half"
                    )
                else:
                    assert await asyncio.wait_for(client.read(-1), TCP_TIMEOUT) == (
                        b"half"
                    )

    async def test_read_json_exception(self) -> None:
        invalid = "not valid json"
        async with self.create_server() as server, self.create_client(server) as client:
            await client.write_str(invalid)
            with pytest.raises(json.JSONDecodeError, match=invalid):
                await asyncio.wait_for(server.read_json(), TCP_TIMEOUT)
            # The connection is still usable.
            await client.write_json([1])
            assert await asyncio.wait_for(server.read_json(), TCP_TIMEOUT) == [1]

    async def test_encodings_and_terminators(self) -> None:
        async with self.create_server() as server:
            for good_encoding in ("utf-8", "utf_8", "utf-16", "UTF-32"):
                async with self.create_client(server, encoding=good_encoding) as client:
                    assert client.encoding == good_encoding
            for good_terminator in (b"\r\n", b"\r", b"any bytes"):
                async with self.create_client(
                    server, terminator=good_terminator
                ) as client:
                    assert client.terminator == good_terminator
            for bad_encoding in ("no_such_encoder", b"utf_8"):
                with pytest.raises(ValueError):
                    async with self.create_client(server, encoding=bad_encoding):
                        pass
            for bad_terminator in ("\r\n", "any str"):
                with pytest.raises(ValueError):
                    async with self.create_client(server, terminator=bad_terminator):
                        pass

    async def test_ignored_and_unknown_keywords(self) -> None:
        async with self.create_server(monitor_connection_interval=0) as server:
            async with self.create_client(
                server, monitor_connection_interval=5, name="fast"
            ) as client:
                assert client.monitor_connection_interval == 5
                assert client.name == "fast"
                assert client.log.name.endswith("Client(fast)")
            with pytest.raises(TypeError, match="no_such_option"):
                tcpip.Client(
                    host=server.host, port=server.port, log=self.log, no_such_option=1
                )

    async def test_disconnect_noticed_without_reading(self) -> None:
        async with self.create_server() as server:
            client = tcpip.Client(host=server.host, port=server.port, log=self.log)
            await asyncio.wait_for(client.start_task, TCP_TIMEOUT)
            await self.assert_next_connected(True)
            await client.close()
            # Nobody reads on the server: the callback comes anyway, at once.
            await self.assert_next_connected(False)
            assert not server.connected
            assert server.should_be_connected

    async def test_close_from_connect_callback(self) -> None:
        closed = asyncio.Event()

        async def close_on_connect(client: tcpip.Client) -> None:
            if client.connected:
                await client.close()
                closed.set()

        async with self.create_server() as server:
            client = tcpip.Client(
                host=server.host,
                port=server.port,
                log=self.log,
                connect_callback=close_on_connect,
            )
            await asyncio.wait_for(closed.wait(), TCP_TIMEOUT)
            await asyncio.wait_for(client.done_task, TCP_TIMEOUT)
            assert not client.connected
            await client.close()

    async def test_heartbeats_are_sent(self) -> None:
        async with (
            self.create_server(connect_callback=None) as server,
            self.create_client(
                server, run_heartbeat_send_task=True, heartbeat_send_sleep=0.01
            ),
        ):
            for _ in range(2):
                line = await asyncio.wait_for(server.readuntil(b"\r\n"), TCP_TIMEOUT)
                assert line == tcpip.HEARTBEAT + tcpip.TERMINATOR

    async def test_set_socket_options_via_kwargs(self) -> None:
        async with self.create_server(keepalive=False) as server:
            async with self.create_client(server, connect_timeout=5) as client:
                assert client.connected

    async def test_uses_requested_event_loop(self) -> None:
        async with self.create_server() as server, self.create_client(server):
            assert server.connected
        self.assert_loop_kind()

    def assert_loop_kind(self) -> None:
        assert "uvloop" not in type(asyncio.get_running_loop()).__module__


# -- OneClientReadLoopServer and TestOneClientReadLoopServer


class HeartbeatRecordingServer(tcpip.TestOneClientReadLoopServer):
    """Sets ``heartbeat_event`` at each heartbeat handled."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.heartbeat_event = asyncio.Event()
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    async def handle_received_heartbeat(self) -> None:
        await super().handle_received_heartbeat()
        self.heartbeat_event.set()


class ReadLoopServerTestCase(tcpip.BaseOneClientServerTestCase):
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
            assert await asyncio.wait_for(client.read(1), TCP_TIMEOUT) == b""
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
            await asyncio.wait_for(server.read_loop_task, TCP_TIMEOUT)
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
            await asyncio.wait_for(loop_task, TCP_TIMEOUT)
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
        return EchoServer(port=0, log=self.log)

    async def test_echo(self) -> None:
        async with self.create_server_and_client():
            await self.client.write_json({"hello": "world"})
            reply = await asyncio.wait_for(self.client.read_json(), TCP_TIMEOUT)
            assert reply == {"hello": "world"}
        assert self.server.done_task.done()


# -- the module functions, on asyncio streams


class StreamFunctionsTestCase(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        self.accepted: asyncio.Queue[
            tuple[asyncio.StreamReader, asyncio.StreamWriter]
        ] = asyncio.Queue()

        async def on_connect(
            reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            await self.accepted.put((reader, writer))

        self.server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.peer_reader, self.peer_writer = await asyncio.wait_for(
            self.accepted.get(), TCP_TIMEOUT
        )

    async def asyncTearDown(self) -> None:
        await tcpip.close_stream_writer(self.writer)
        await tcpip.close_stream_writer(self.peer_writer)
        self.server.close()
        await self.server.wait_closed()

    async def test_read_into_write_from(self) -> None:
        sent = ShortStruct(ushort_0=7, int64_0=-8, double_0=9.5, float_0=10.25)
        await tcpip.write_from(self.writer, sent, sent)
        for _ in range(2):
            received = ShortStruct()
            await asyncio.wait_for(
                tcpip.read_into(self.peer_reader, received), TCP_TIMEOUT
            )
            assert bytes(received) == bytes(sent)

    async def test_read_into_incomplete(self) -> None:
        self.writer.write(b"abc")
        await tcpip.close_stream_writer(self.writer)
        with pytest.raises(asyncio.IncompleteReadError) as info:
            await asyncio.wait_for(
                tcpip.read_into(self.peer_reader, ShortStruct()), TCP_TIMEOUT
            )
        assert info.value.partial == b"abc"

    async def test_close_stream_writer_is_idempotent(self) -> None:
        await tcpip.close_stream_writer(self.writer)
        assert self.writer.is_closing()
        await tcpip.close_stream_writer(self.writer)
        assert await asyncio.wait_for(self.peer_reader.read(), TCP_TIMEOUT) == b""

    async def test_set_socket_options(self) -> None:
        await tcpip.set_socket_options(self.writer)
        sock = self.writer.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_KEEPIDLE"):
            idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
            assert idle == tcpip.KEEPALIVE_TIME


def test_constants() -> None:
    assert tcpip.DEFAULT_ENCODING == "utf-8"
    assert tcpip.DEFAULT_TERMINATOR == tcpip.TERMINATOR == b"\r\n"
    assert tcpip.DEFAULT_LOCALHOST == tcpip.LOCALHOST_IPV4 == tcpip.LOCAL_HOST
    assert tcpip.LOCALHOST_IPV4 == "127.0.0.1"
    assert tcpip.LOCALHOST_IPV6 == "::1"
    assert tcpip.HEARTBEAT == b"heartbeat"
    assert tcpip.DEFAULT_MONITOR_CONNECTION_INTERVAL == 0.1
    assert tcpip.DEFAULT_MAX_HEARTBEAT_INTERVAL == 10.0
    assert (tcpip.KEEPALIVE_TIME, tcpip.KEEPALIVE_INTERVAL) == (60, 15)
    assert tcpip.KEEPALIVE_PROBES == 4


def test_public_names() -> None:
    names = {name for name in dir(tcpip) if not name.startswith("_")}
    assert set(tcpip.__all__) == names
    for name in tcpip.__all__:
        obj = getattr(tcpip, name)
        if isinstance(obj, type):
            assert obj.__module__ == "anytcpip.asyncio_compat", name
            assert obj.__doc__, name


def test_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        tcpip.Client(host="127.0.0.1", port=1, log=None)


# -- the same again on uvloop

_HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


def on_uvloop(case: type[unittest.IsolatedAsyncioTestCase]) -> Any:
    """Return a subclass of ``case`` whose tests run on a uvloop event loop."""
    import uvloop

    attributes: dict[str, Any]
    if sys.version_info >= (3, 13):
        attributes = {"loop_factory": staticmethod(uvloop.new_event_loop)}
    else:  # IsolatedAsyncioTestCase takes its loop from the policy

        def run(self: Any, result: Any = None) -> Any:
            previous = asyncio.get_event_loop_policy()
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
            try:
                return case.run(self, result)
            finally:
                asyncio.set_event_loop_policy(previous)

        attributes = {"run": run}
    variant = type(f"{case.__name__}OnUvloop", (case,), attributes)
    return unittest.skipUnless(_HAS_UVLOOP, "uvloop not installed")(variant)


class ClientTestCaseOnUvloop(on_uvloop(ClientTestCase)):  # type: ignore[misc]
    def assert_loop_kind(self) -> None:
        assert "uvloop" in type(asyncio.get_running_loop()).__module__


ExampleTestCaseOnUvloop = on_uvloop(ExampleTestCase)
ReadLoopServerTestCaseOnUvloop = on_uvloop(ReadLoopServerTestCase)
UserReadLoopTestCaseOnUvloop = on_uvloop(UserReadLoopTestCase)
StreamFunctionsTestCaseOnUvloop = on_uvloop(StreamFunctionsTestCase)
