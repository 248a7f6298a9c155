"""Real lsst.ts.tcpip 2.2 code patterns, run unchanged on anytcpip.asyncio_compat.

Packages built on lsst.ts.tcpip go past its examples: they subclass, override
hooks and rely on where errors surface and on when ``close`` switches tasks.
Each test below is such a pattern, written as 2.2 code with only the import
changed; each test case runs on asyncio and again on uvloop (the
``*OnUvloop`` classes at the bottom). Waits are on futures, queues and events
with generous timeouts, never on sleeps.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import socket
import unittest
from typing import Any

import pytest

from anytcpip import asyncio_compat as tcpip
from asyncio_compat_support import on_uvloop

TIMEOUT = 10  # generous: a bound turns a hang into a failure

log = logging.getLogger("test_asyncio_compat_patterns")


class Pose(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("x", ctypes.c_double), ("y", ctypes.c_double), ("n", ctypes.c_int32)]


# -- lsst.ts.tcpip 2.2's documented example (tests/test_example.py), unchanged


class DocumentedEchoServer(tcpip.OneClientServer):
    """lsst.ts.tcpip 2.2's ``EchoServer`` example, word for word."""

    def __init__(self, host: str, port: int, log: logging.Logger) -> None:
        self.read_loop_task: asyncio.Future[None] = asyncio.Future()
        super().__init__(
            host=host,
            port=port,
            log=log,
            connect_callback=self.connect_callback,
        )

    async def connect_callback(self, server: tcpip.OneClientServer) -> None:
        self.read_loop_task.cancel()
        if server.connected:
            self.read_loop_task = asyncio.create_task(self.read_loop())

    async def close_client(self) -> None:
        self.read_loop_task.cancel()
        await super().close_client()

    async def read_loop(self) -> None:
        try:
            while self.connected:
                data = await self.readuntil(tcpip.TERMINATOR)
                await self.write(data)
        except (asyncio.CancelledError, asyncio.IncompleteReadError):
            pass


class DocumentedExampleTestCase(unittest.IsolatedAsyncioTestCase):
    async def test_echo_server(self) -> None:
        server = DocumentedEchoServer(host=tcpip.LOCALHOST_IPV4, port=0, log=log)
        await server.start_task
        client = tcpip.Client(host=server.host, port=server.port, log=server.log)
        await client.start_task
        await server.connected_task
        for write_str in ("some data", "more data", "yet more data"):
            write_bytes = write_str.encode() + tcpip.TERMINATOR
            await asyncio.wait_for(client.write(write_bytes), timeout=TIMEOUT)
            read_bytes = await asyncio.wait_for(
                client.readuntil(tcpip.TERMINATOR), timeout=TIMEOUT
            )
            assert read_bytes == write_bytes
        await client.close()
        await server.close()
        assert client.done_task.done() and server.done_task.done()


# -- overridden hooks are called where 2.2 calls them


class ReadingClient(tcpip.Client):
    """A ``Client`` subclass that starts its own read loop in ``start``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.lines: asyncio.Queue[str] = asyncio.Queue()
        self.start_kwargs: dict[str, Any] | None = None
        self.read_loop_task: asyncio.Future[None] | None = None
        self.calls: list[str] = []
        super().__init__(*args, **kwargs)

    async def start(self, **kwargs: Any) -> None:
        self.start_kwargs = kwargs
        await super().start(**kwargs)
        self.calls.append("start")
        self.read_loop_task = asyncio.create_task(self.read_loop())

    async def read_loop(self) -> None:
        try:
            while self.connected:
                self.lines.put_nowait(await self.read_str())
        except (ConnectionError, asyncio.IncompleteReadError):
            pass

    async def call_connect_callback(self) -> None:
        self.calls.append(f"call_connect_callback({self.connected})")
        await super().call_connect_callback()

    async def basic_close(self) -> None:
        self.calls.append("basic_close")
        await super().basic_close()

    async def close(self) -> None:
        self.calls.append("close")
        if self.read_loop_task is not None:
            self.read_loop_task.cancel()
        await super().close()


class GreetingServer(tcpip.OneClientReadLoopServer):
    """A read-loop server that greets each client, then echoes lines."""

    def __init__(self, **kwargs: Any) -> None:
        self.calls: list[str] = []
        super().__init__(**kwargs)

    async def start(self, **kwargs: Any) -> None:
        self.calls.append(f"start({sorted(kwargs)})")
        await super().start(**kwargs)

    async def call_connect_callback(self) -> None:
        self.calls.append(f"call_connect_callback({self.connected})")
        await super().call_connect_callback()

    async def read_loop(self) -> None:
        self.calls.append("read_loop")
        await self.write_str("hello")
        await super().read_loop()

    async def read_and_dispatch(self) -> None:
        line = await self.read_str()
        if line == "fail":
            raise RuntimeError("asked to fail")
        await self.write_str(line)

    async def close_client(self, cancel_read_loop_task: bool = True) -> None:
        self.calls.append(f"close_client({cancel_read_loop_task})")
        await super().close_client(cancel_read_loop_task=cancel_read_loop_task)

    async def basic_close_client(self) -> None:
        self.calls.append("basic_close_client")
        await super().basic_close_client()

    async def close(self) -> None:
        self.calls.append("close")
        await super().close()


class HooksTestCase(unittest.IsolatedAsyncioTestCase):
    async def test_client_subclass_overriding_start(self) -> None:
        server = GreetingServer(port=0, log=log)
        await asyncio.wait_for(server.start_task, TIMEOUT)
        client = ReadingClient(server.host, server.port, log, limit=1000)
        await asyncio.wait_for(client.start_task, TIMEOUT)
        assert client.start_kwargs == {"limit": 1000}
        # 2.2 reports the connection from start, before start returns.
        assert client.calls == ["call_connect_callback(True)", "start"]
        # The subclass's own read loop runs: it gets the greeting and echoes.
        assert await asyncio.wait_for(client.lines.get(), TIMEOUT) == "hello"
        await client.write_str("ping")
        assert await asyncio.wait_for(client.lines.get(), TIMEOUT) == "ping"
        with pytest.raises(RuntimeError, match="already"):
            await client.start()
        await client.close()
        assert client.calls[2:] == [
            "close",
            "basic_close",
            "call_connect_callback(False)",
        ]
        assert client.done_task.done()
        await server.close()

    async def test_read_loop_server_hooks(self) -> None:
        server = GreetingServer(port=0, log=log, family=socket.AF_INET)
        await asyncio.wait_for(server.start_task, TIMEOUT)
        assert server.calls == ["start(['family'])"]
        client = tcpip.Client(server.host, server.port, log)
        await asyncio.wait_for(client.start_task, TIMEOUT)
        assert await asyncio.wait_for(client.read_str(), TIMEOUT) == "hello"
        assert server.calls[1:] == ["call_connect_callback(True)", "read_loop"]
        # read_and_dispatch raising: 2.2's read_loop closes the client
        # without cancelling itself.
        await client.write_str("fail")
        await asyncio.wait_for(server.read_loop_task, TIMEOUT)
        assert server.calls[3:] == [
            "close_client(False)",
            "basic_close_client",
            "call_connect_callback(False)",
        ]
        assert not server.should_be_connected
        await client.close()
        # The next client gets its own greeting and read loop.
        client = tcpip.Client(server.host, server.port, log)
        await asyncio.wait_for(client.start_task, TIMEOUT)
        assert await asyncio.wait_for(client.read_str(), TIMEOUT) == "hello"
        del server.calls[:]
        await server.close()
        assert server.calls == [
            "close",
            "close_client(True)",
            "basic_close_client",
            "call_connect_callback(False)",
        ]
        assert server.read_loop_task.cancelled()
        await client.close()

    async def test_server_start_override_and_second_start(self) -> None:
        server = tcpip.OneClientServer(tcpip.LOCALHOST_IPV4, 0, log)
        await asyncio.wait_for(server.start_task, TIMEOUT)
        with pytest.raises(RuntimeError, match="already"):
            await server.start()
        await server.close()

    async def test_heartbeat_monitor_hooks(self) -> None:
        class Monitored(tcpip.TestOneClientReadLoopServer):
            started = asyncio.Event()
            heartbeat = asyncio.Event()

            async def monitor_received_heartbeats(self) -> None:
                self.started.set()
                await super().monitor_received_heartbeats()

            async def handle_received_heartbeat(self) -> None:
                await super().handle_received_heartbeat()
                self.heartbeat.set()

        server = Monitored(
            port=0, log=log, run_heartbeat_monitor_task=True, max_heartbeat_interval=5
        )
        await asyncio.wait_for(server.start_task, TIMEOUT)
        client = tcpip.Client(
            server.host,
            server.port,
            log,
            run_heartbeat_send_task=True,
            heartbeat_send_sleep=0.05,
        )
        await asyncio.wait_for(client.start_task, TIMEOUT)
        await asyncio.wait_for(Monitored.started.wait(), TIMEOUT)
        assert not server.monitor_heartbeats_task.done()
        await asyncio.wait_for(Monitored.heartbeat.wait(), TIMEOUT)
        assert server.heartbeat_received_tai is not None
        assert server.connected
        await client.close()
        await server.close()


# -- where errors surface


class ErrorsTestCase(unittest.IsolatedAsyncioTestCase):
    async def test_port_0_or_none_fails_in_start_task(self) -> None:
        for port in (0, None):
            client = tcpip.Client(tcpip.LOCALHOST_IPV4, port, log)  # no raise
            with pytest.raises(ConnectionRefusedError):
                await asyncio.wait_for(client.start_task, TIMEOUT)
            assert not client.connected
            await client.close()
            assert client.done_task.done()

    async def test_bad_port_fails_in_start_task(self) -> None:
        client = tcpip.Client(tcpip.LOCALHOST_IPV4, 70000, log)
        with pytest.raises((ValueError, OSError, OverflowError)):
            await asyncio.wait_for(client.start_task, TIMEOUT)
        await client.close()

    async def test_constructor_validates_what_2_2_validates(self) -> None:
        async def callback(_: Any) -> None:
            pass

        def sync_callback(_: Any) -> None:
            pass

        with pytest.raises(TypeError):
            tcpip.Client("", 0, log, connect_callback=sync_callback)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            tcpip.Client("", 0, log, terminator="\n")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            tcpip.Client("", 0, log, encoding="no_such_encoding")
        tcpip.Client("", 0, log, connect_callback=callback)

    async def test_unknown_and_unsupported_keywords_fail_in_start_task(self) -> None:
        client = tcpip.Client(tcpip.LOCALHOST_IPV4, 1, log, no_such_option=1)
        with pytest.raises(TypeError, match="no_such_option"):
            await client.start_task
        await client.close()
        client = tcpip.Client(tcpip.LOCALHOST_IPV4, 1, log, local_addr=("::1", 0))
        with pytest.raises(TypeError, match=r"local_addr.*not supported"):
            await client.start_task
        await client.close()
        server = tcpip.OneClientServer(tcpip.LOCALHOST_IPV4, 0, log, sock=None)
        with pytest.raises(TypeError, match=r"sock.*not supported"):
            await server.start_task
        await server.close()
        server = tcpip.OneClientServer(tcpip.LOCALHOST_IPV4, 0, log, bogus=1)
        with pytest.raises(TypeError, match="bogus"):
            await server.start_task
        await server.close()


# -- listener keywords


class ListenerKeywordsTestCase(unittest.IsolatedAsyncioTestCase):
    async def test_family_backlog_reuse_port(self) -> None:
        kwargs: dict[str, Any] = {"family": socket.AF_INET, "backlog": 5}
        if hasattr(socket, "SO_REUSEPORT"):
            kwargs["reuse_port"] = True
        server = tcpip.OneClientServer(None, 0, log, reuse_address=True, **kwargs)
        try:
            await asyncio.wait_for(server.start_task, TIMEOUT)
            assert server._server is not None
            sockets = server._server.sockets
            assert len(sockets) == 1
            assert sockets[0].family == socket.AF_INET
            assert server.port == sockets[0].getsockname()[1] != 0
            client = tcpip.Client(tcpip.LOCALHOST_IPV4, server.port, log)
            await asyncio.wait_for(client.start_task, TIMEOUT)
            await asyncio.wait_for(server.connected_task, TIMEOUT)
            await client.close()
        finally:
            await server.close()
        assert server._server is None

    async def test_port_stays_0_with_several_sockets(self) -> None:
        server = tcpip.OneClientServer(None, 0, log)
        try:
            await asyncio.wait_for(server.start_task, TIMEOUT)
            assert server._server is not None
            if len(server._server.sockets) > 1:
                assert server.port == 0  # ambiguous, as in 2.2
            else:
                assert server.port != 0
        finally:
            await server.close()


# -- close without a scheduler switch where 2.2 has none


class CancelThenCloseTestCase(unittest.IsolatedAsyncioTestCase):
    async def cancel_then_close(self, instance: tcpip.BaseClientOrServer) -> None:
        """Cancel the current task, close ``instance``, and see no switch."""
        reached: list[str] = []

        async def body() -> None:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
            await instance.close()  # must not deliver the cancellation
            reached.append("after close")
            await asyncio.sleep(0)  # this one does
            reached.append("not reached")

        task = asyncio.create_task(body())
        with pytest.raises(asyncio.CancelledError):
            await task
        assert reached == ["after close"]
        assert instance.done_task.done()

    async def test_already_closed_client(self) -> None:
        await self.cancel_then_close(tcpip.Client(host="", port=0, log=log))

    async def test_client_still_connecting(self) -> None:
        client = tcpip.Client(tcpip.LOCALHOST_IPV4, 1, log)
        await self.cancel_then_close(client)
        with pytest.raises(asyncio.CancelledError):
            await client.start_task

    async def test_client_whose_connection_failed(self) -> None:
        client = tcpip.Client(tcpip.LOCALHOST_IPV4, 0, log)
        with pytest.raises(OSError):
            await client.start_task
        await self.cancel_then_close(client)

    async def test_client_whose_peer_left(self) -> None:
        server = tcpip.OneClientServer(tcpip.LOCALHOST_IPV4, 0, log)
        await asyncio.wait_for(server.start_task, TIMEOUT)
        lost = asyncio.Event()

        async def callback(client: tcpip.BaseClientOrServer) -> None:
            if not client.connected:
                lost.set()

        client = tcpip.Client(server.host, server.port, log, connect_callback=callback)
        await asyncio.wait_for(client.start_task, TIMEOUT)
        await server.close()
        await asyncio.wait_for(lost.wait(), TIMEOUT)
        await self.cancel_then_close(client)
        assert not client.should_be_connected

    async def test_server_never_started(self) -> None:
        server = tcpip.OneClientServer(tcpip.LOCALHOST_IPV4, 0, log)
        await self.cancel_then_close(server)

    async def test_close_client_without_a_client(self) -> None:
        server = tcpip.TestOneClientReadLoopServer(port=0, log=log)
        await asyncio.wait_for(server.start_task, TIMEOUT)
        reached: list[str] = []

        async def body() -> None:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
            await server.close_client()  # no client: no switch, as in 2.2
            await server.basic_close_client()
            reached.append("after close_client")
            await asyncio.sleep(0)

        with pytest.raises(asyncio.CancelledError):
            await asyncio.create_task(body())
        assert reached == ["after close_client"]
        assert not server.done_task.done()
        await server.close()


# -- BaseOneClientServerTestCase passes what 2.2 passes


class MockController(tcpip.OneClientReadLoopServer):
    """A mock controller whose constructor takes no ``host``."""

    def __init__(self, port: int, log: logging.Logger, **kwargs: Any) -> None:
        self.commands: asyncio.Queue[Any] = asyncio.Queue()
        super().__init__(port=port, log=log, **kwargs)

    async def read_and_dispatch(self) -> None:
        command = await self.read_json()
        await self.commands.put(command)
        await self.write_json({"ack": command["cmd"]})


class MockControllerTestCase(tcpip.BaseOneClientServerTestCase):
    server_class = MockController

    async def test_create_server_passes_port_and_log_only(self) -> None:
        async with (
            self.create_server() as server,
            self.create_client(
                server, connect_callback=self.connect_callback
            ) as client,
        ):
            assert isinstance(server, MockController)
            assert server.log.parent is self.log
            # Only the client reports: create_server adds no connect_callback.
            await self.assert_next_connected(True)
            assert self.connect_queue is not None and self.connect_queue.empty()
            await client.write_json({"cmd": "park"})
            assert await asyncio.wait_for(client.read_json(), TIMEOUT) == {
                "ack": "park"
            }
        await self.assert_next_connected(False)
        assert self.connect_queue.empty()

    async def test_kwargs_reach_the_server(self) -> None:
        async with self.create_server(
            name="dome", connect_callback=self.connect_callback
        ) as server:
            assert server.name == "dome"
            async with self.create_client(server):
                await self.assert_next_connected(True)
            await self.assert_next_connected(False)


class PlainServerTestCase(tcpip.BaseOneClientServerTestCase):
    server_class = tcpip.OneClientServer

    async def test_host_added_for_one_client_server(self) -> None:
        async with self.create_server() as server:
            assert server.host == tcpip.DEFAULT_LOCALHOST
        async with self.create_server(host=tcpip.LOCALHOST_IPV4) as server:
            assert server.host == tcpip.LOCALHOST_IPV4


# -- the private attributes that 2.2-era tests read


class StandInsTestCase(tcpip.BaseOneClientServerTestCase):
    server_class = tcpip.OneClientServer

    async def test_reader_stand_in(self) -> None:
        async with self.create_server() as server:
            client = tcpip.Client(server.host, server.port, log)
            assert client._reader is None  # as in 2.2, until connected
            await asyncio.wait_for(client.start_task, TIMEOUT)
            await asyncio.wait_for(server.connected_task, TIMEOUT)
            reader = client._reader
            assert reader is not None and not reader.at_eof()
            await server.write(b"line\nabcdefXYZtail")
            assert await asyncio.wait_for(reader.readline(), TIMEOUT) == b"line\n"
            assert await asyncio.wait_for(reader.readexactly(3), TIMEOUT) == b"abc"
            assert await asyncio.wait_for(reader.readuntil(b"XYZ"), TIMEOUT) == (
                b"defXYZ"
            )
            assert await asyncio.wait_for(reader.read(4), TIMEOUT) == b"tail"
            await client.close()
            assert client._reader is reader and reader.at_eof()  # kept, as in 2.2
            assert await reader.readline() == b""
            assert await reader.read() == b""
            with pytest.raises(asyncio.IncompleteReadError):
                await reader.readexactly(1)
            with pytest.raises(asyncio.IncompleteReadError):
                await reader.readuntil()

    async def test_writer_stand_in(self) -> None:
        async with (
            self.create_server(connect_callback=self.connect_callback) as server,
            self.create_client(server) as client,
        ):
            await self.assert_next_connected(True)
            writer = server._writer
            assert writer is not None and not writer.is_closing()
            sock = writer.get_extra_info("socket")  # as in 2.2: the transport's
            assert sock.family == socket.AF_INET
            assert sock.getsockname()[1] == server.port
            assert (
                writer.get_extra_info("peername")[1]
                == (
                    client._writer.get_extra_info("sockname")[1]  # type: ignore[union-attr]
                )
            )
            assert writer.get_extra_info("no such thing", 5) == 5
            await tcpip.set_socket_options(writer)  # type: ignore[arg-type]
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            # Writes without drain are sent, in order.
            writer.write(b"one ")
            writer.writelines([b"two ", b"three\n"])
            assert await asyncio.wait_for(client.readline(), TIMEOUT) == (
                b"one two three\n"
            )
            # The module functions work on the stand-ins, as on asyncio streams.
            sent = Pose(x=1.5, y=-2.5, n=7)
            await tcpip.write_from(writer, sent)  # type: ignore[arg-type]
            received = Pose()
            await asyncio.wait_for(client.read_into(received), TIMEOUT)
            assert (received.x, received.y, received.n) == (1.5, -2.5, 7)
            await client.write_from(sent)
            received = Pose()
            await asyncio.wait_for(
                tcpip.read_into(server._reader, received),  # type: ignore[arg-type]
                TIMEOUT,
            )
            assert received.n == 7
            # Closing the writer drops the client, as the peer would see it.
            await tcpip.close_stream_writer(writer)  # type: ignore[arg-type]
            assert writer.is_closing()
            await self.assert_next_connected(False)
            assert server._writer is None
            assert server.should_be_connected  # not closed with close_client
            writer.write(b"dropped")  # like a closed transport: ignored
            with pytest.raises(ConnectionError):
                await writer.drain()

    async def test_server_stand_in(self) -> None:
        server = tcpip.OneClientServer(tcpip.LOCALHOST_IPV4, 0, log)
        assert server._server is None
        await asyncio.wait_for(server.start_task, TIMEOUT)
        assert server._server is not None and server._server.is_serving()
        (sock,) = server._server.sockets
        assert sock.getsockname()[1] == server.port
        view = server._server
        await server.close()
        assert server._server is None
        assert not view.is_serving() and view.sockets == ()


# -- what a client sent before leaving is still read


class Recorder(tcpip.OneClientReadLoopServer):
    """A mock controller that records each command; it never replies."""

    def __init__(self, **kwargs: Any) -> None:
        self.commands: asyncio.Queue[str] = asyncio.Queue()
        super().__init__(**kwargs)

    async def read_and_dispatch(self) -> None:
        await self.commands.put(await self.read_str())


class SendAndLeaveTestCase(tcpip.BaseOneClientServerTestCase):
    server_class = Recorder

    async def test_commands_sent_before_leaving_are_handled(self) -> None:
        async with self.create_server(connect_callback=self.connect_callback) as server:
            assert isinstance(server, Recorder)
            # Hold the read loop back until the client has gone.
            gate = asyncio.Event()
            read_and_dispatch = server.read_and_dispatch

            async def gated() -> None:
                await gate.wait()
                await read_and_dispatch()

            server.read_and_dispatch = gated  # type: ignore[method-assign]
            async with self.create_client(server) as client:
                await self.assert_next_connected(True)
                for command in ("park", "open", "close"):
                    await client.write_str(command)
            await self.assert_next_connected(False)
            assert server._reader is not None and not server._reader.at_eof()
            gate.set()
            for command in ("park", "open", "close"):
                assert await asyncio.wait_for(server.commands.get(), TIMEOUT) == (
                    command
                )
            await asyncio.wait([server.read_loop_task], timeout=TIMEOUT)
            assert server._reader.at_eof()
            assert server.commands.empty()


# -- tasks bound to their connection


class BindingTestCase(tcpip.BaseOneClientServerTestCase):
    server_class = tcpip.OneClientServer

    async def test_task_of_an_ended_connection_cannot_touch_the_next(self) -> None:
        next_connected = asyncio.Event()
        outcome: asyncio.Queue[str] = asyncio.Queue()

        async def stale_worker(server: tcpip.OneClientServer) -> None:
            await next_connected.wait()
            try:
                await server.write_str("for the first client")
                await outcome.put("written")
            except ConnectionError:
                await outcome.put("ConnectionError")
            await server.close_client()  # must leave the new client alone

        workers: list[asyncio.Task[None]] = []

        async def callback(server: tcpip.BaseClientOrServer) -> None:
            assert isinstance(server, tcpip.OneClientServer)
            if server.connected and not workers:
                workers.append(asyncio.create_task(stale_worker(server)))

        async with self.create_server(connect_callback=callback) as server:
            async with self.create_client(server):
                pass
            async with self.create_client(server) as second:
                next_connected.set()
                assert await asyncio.wait_for(outcome.get(), TIMEOUT) == (
                    "ConnectionError"
                )
                await asyncio.wait_for(workers[0], TIMEOUT)
                assert server.connected and second.connected
                await server.write_str("for the second client")
                assert await asyncio.wait_for(second.read_str(), TIMEOUT) == (
                    "for the second client"
                )


# -- the same again on uvloop


class LoopKindTestCase(unittest.IsolatedAsyncioTestCase):
    expected = "asyncio"

    async def test_loop_kind(self) -> None:
        kind = type(asyncio.get_running_loop()).__module__
        assert kind.startswith(self.expected)


class LoopKindTestCaseOnUvloop(on_uvloop(LoopKindTestCase)):  # type: ignore[misc]
    expected = "uvloop"


DocumentedExampleTestCaseOnUvloop = on_uvloop(DocumentedExampleTestCase)
HooksTestCaseOnUvloop = on_uvloop(HooksTestCase)
ErrorsTestCaseOnUvloop = on_uvloop(ErrorsTestCase)
ListenerKeywordsTestCaseOnUvloop = on_uvloop(ListenerKeywordsTestCase)
CancelThenCloseTestCaseOnUvloop = on_uvloop(CancelThenCloseTestCase)
MockControllerTestCaseOnUvloop = on_uvloop(MockControllerTestCase)
PlainServerTestCaseOnUvloop = on_uvloop(PlainServerTestCase)
StandInsTestCaseOnUvloop = on_uvloop(StandInsTestCase)
BindingTestCaseOnUvloop = on_uvloop(BindingTestCase)
SendAndLeaveTestCaseOnUvloop = on_uvloop(SendAndLeaveTestCase)
