"""asyncio_compat's ``Client`` and ``OneClientServer``, used as 2.2 code uses them.

Each test case runs on asyncio and again on uvloop.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging

import pytest

import asyncio_compat_support as support
from anytcpip import asyncio_compat as tcpip
from asyncio_compat_support import TCP_TIMEOUT, ShortStruct, on_uvloop

# -- Client and OneClientServer


class ClientTestCase(support.CountingTestCase):
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
                try:  # b"" if it has not seen the end yet, as in 2.2
                    assert await asyncio.wait_for(extra.read(10), TCP_TIMEOUT) == b""
                except ConnectionError:
                    pass
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
        assert not client.connected
        assert not client.done_task.done()  # as in 2.2: done once closed
        await client.close()
        assert client.done_task.done()

    async def test_close_before_connected(self) -> None:
        async with self.create_server() as server:
            client = tcpip.Client(host=server.host, port=server.port, log=self.log)
            await client.close()
            assert client.done_task.done()
            assert not client.connected
            with pytest.raises(asyncio.CancelledError):
                await client.start_task
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
            # As in 2.2, the keywords are checked by start, in start_task.
            client = tcpip.Client(
                host=server.host, port=server.port, log=self.log, no_such_option=1
            )
            with pytest.raises(TypeError, match="no_such_option"):
                await client.start_task
            await client.close()

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


class ClientTestCaseOnUvloop(on_uvloop(ClientTestCase)):  # type: ignore[misc]
    def assert_loop_kind(self) -> None:
        assert "uvloop" in type(asyncio.get_running_loop()).__module__
