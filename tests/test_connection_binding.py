"""I/O is bound to one connection (issue 11, fault 1).

A reply computed for one client must never reach the next one: the read loop
runs in a task bound to its connection, cancelled when that connection ends,
and a read or write made on behalf of a connection that has ended raises
``ConnectionError``. ``connection`` gives user code the same binding for its
own tasks.

The "slow" handler below waits on an event the test controls, instead of
sleeping, so each step happens in a known order.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
import anyio.abc
import pytest

from anytcpip import (
    Backoff,
    Client,
    Connection,
    NotConnectedError,
    OneClientReadLoopServer,
    OneClientServer,
)
from helpers import TIMEOUT, CallbackRecorder, raw_peer


class SlowReplyServer(OneClientReadLoopServer):
    """Replies ``reply-to:<command>``; a command starting "slow" waits for ``gate``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = anyio.Event()
        self.got_slow = anyio.Event()
        self.slow_done = anyio.Event()
        self.outcomes: list[str] = []

    async def read_and_dispatch(self) -> None:
        command = await self.read_str()
        if not command.startswith("slow"):
            await self.write_str(f"reply-to:{command}")
            return
        self.got_slow.set()
        try:
            await self.gate.wait()  # an axis moving
            await self.write_str(f"reply-to:{command}")
            self.outcomes.append("written")
        except ConnectionError:
            self.outcomes.append("ConnectionError")
            raise
        except anyio.get_cancelled_exc_class():
            self.outcomes.append("cancelled")
            raise
        finally:
            self.slow_done.set()


async def test_late_reply_never_reaches_the_replacing_client() -> None:
    recorder = CallbackRecorder()
    async with SlowReplyServer(
        port=0, extra_client="replace", connect_callback=recorder
    ) as server:
        async with Client("127.0.0.1", server.port) as first:
            assert await recorder.next() is True
            with anyio.fail_after(TIMEOUT):
                await first.write_str("slow-A")
                await server.got_slow.wait()
            async with Client("127.0.0.1", server.port) as second:
                assert await recorder.next() is False
                assert await recorder.next() is True
                with anyio.fail_after(TIMEOUT):
                    # The handler of the replaced client was cancelled.
                    await server.slow_done.wait()
                    assert server.outcomes == ["cancelled"]
                    server.gate.set()
                    await second.write_str("ping")
                    assert await second.read_str() == "reply-to:ping"


async def test_late_reply_never_reaches_the_next_client_after_a_reconnect() -> None:
    recorder = CallbackRecorder()
    async with SlowReplyServer(port=0, connect_callback=recorder) as server:
        async with Client("127.0.0.1", server.port) as first:
            assert await recorder.next() is True
            with anyio.fail_after(TIMEOUT):
                await first.write_str("slow-A")
                await server.got_slow.wait()
        assert await recorder.next() is False
        # The handler is cancelled when its client leaves, before anyone else
        # can connect.
        with anyio.fail_after(TIMEOUT):
            await server.slow_done.wait()
        assert server.outcomes == ["cancelled"]
        async with Client("127.0.0.1", server.port) as second:
            assert await recorder.next() is True
            server.gate.set()
            with anyio.fail_after(TIMEOUT):
                await second.write_str("ping")
                assert await second.read_str() == "reply-to:ping"
        assert server.rejected_count == 0


async def test_request_after_a_reconnect_gets_its_own_reply() -> None:
    recorder = CallbackRecorder()
    async with (
        SlowReplyServer(port=0) as server,
        Client(
            "127.0.0.1",
            server.port,
            reconnect=Backoff(initial=0.01, maximum=0.05),
            connect_callback=recorder,
        ) as client,
    ):
        assert await recorder.next() is True
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:

                async def first_request() -> None:
                    with pytest.raises(ConnectionError):
                        await client.request("slow-1")

                tg.start_soon(first_request)
                await server.got_slow.wait()
                # The connection ends while the command is being handled.
                await server.close_client()
        assert await recorder.next() is False
        assert await recorder.next() is True  # reconnected
        with anyio.fail_after(TIMEOUT):
            server.gate.set()
            await server.slow_done.wait()
            assert await client.request("status?") == "reply-to:status?"
            assert await client.request("again?") == "reply-to:again?"
        assert server.outcomes == ["cancelled"]


class SpawningServer(OneClientReadLoopServer):
    """Answers each command from a task spawned into a task group of the test."""

    def __init__(self, task_group: anyio.abc.TaskGroup, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task_group = task_group
        self.gate = anyio.Event()
        self.spawned = anyio.Event()
        self.done = anyio.Event()
        self.outcomes: list[str] = []

    async def read_and_dispatch(self) -> None:
        command = await self.read_str()
        self.task_group.start_soon(self.answer_later, command)

    async def answer_later(self, command: str) -> None:
        self.spawned.set()
        await self.gate.wait()
        try:
            await self.write_str(f"reply-to:{command}")
            self.outcomes.append(f"written {command}")
        except ConnectionError as exc:
            self.outcomes.append(f"ConnectionError {command}: {exc}")
        finally:
            self.done.set()


async def test_a_task_spawned_by_the_read_loop_stays_bound_to_its_connection() -> None:
    recorder = CallbackRecorder()
    async with anyio.create_task_group() as tg:
        async with SpawningServer(
            tg, port=0, extra_client="replace", connect_callback=recorder
        ) as server:
            async with Client("127.0.0.1", server.port) as first:
                assert await recorder.next() is True
                with anyio.fail_after(TIMEOUT):
                    await first.write_str("A")
                    await server.spawned.wait()
                async with Client("127.0.0.1", server.port) as second:
                    assert await recorder.next() is False
                    assert await recorder.next() is True
                    with anyio.fail_after(TIMEOUT):
                        server.gate.set()
                        await server.done.wait()
                        assert len(server.outcomes) == 1
                        assert server.outcomes[0].startswith("ConnectionError A: ")
                        assert "replaced" in server.outcomes[0]
                        await second.write_str("B")
                        assert await second.read_str() == "reply-to:B"
                        assert server.outcomes[1:] == ["written B"]


async def test_connection_handle_refuses_io_once_its_connection_ended() -> None:
    recorder = CallbackRecorder()
    async with OneClientServer(
        port=0, extra_client="replace", connect_callback=recorder
    ) as server:
        with pytest.raises(NotConnectedError):
            server.connection  # noqa: B018  (never connected)
        async with Client("127.0.0.1", server.port) as first:
            assert await recorder.next() is True
            handle = server.connection
            assert isinstance(handle, Connection)
            assert handle.connected and handle.owner is server
            with anyio.fail_after(TIMEOUT):
                await handle.write_str("to first")
                assert await first.read_str() == "to first"
                await first.write_str("from first")
                assert await handle.read_str() == "from first"
            async with Client("127.0.0.1", server.port) as second:
                assert await recorder.next() is False
                assert await recorder.next() is True
                assert not handle.connected
                with anyio.fail_after(TIMEOUT):
                    for call in (
                        lambda: handle.write_str("late"),
                        lambda: handle.write(b"late"),
                        lambda: handle.write_json({"late": True}),
                        lambda: handle.read_str(),
                        lambda: handle.readexactly(1),
                    ):
                        with pytest.raises(ConnectionError, match="replaced"):
                            await call()
                    current = server.connection
                    assert current.connected and current is not handle
                    await current.write_str("to second")
                    assert await second.read_str() == "to second"
                    # Calls from outside any connection-bound task keep going
                    # to the current connection.
                    await server.write_str("current")
                    assert await second.read_str() == "current"
                    await second.write_str("from second")
                    assert await current.read_str() == "from second"


async def test_client_connection_handle_is_bound_to_one_connection() -> None:
    recorder = CallbackRecorder()
    async with (
        OneClientServer(port=0, connect_callback=recorder) as server,
        Client(
            "127.0.0.1", server.port, reconnect=Backoff(initial=0.01, maximum=0.05)
        ) as client,
    ):
        with anyio.fail_after(TIMEOUT):
            await client.wait_connected()
            assert await recorder.next() is True
            old = client.connection
            await server.close_client()
            assert await recorder.next() is False
            assert await recorder.next() is True
            await client.wait_connected()
            with pytest.raises(ConnectionError):
                await old.write_str("late")
            await client.connection.write_str("fresh")
            assert await server.read_str() == "fresh"


async def test_messages_sent_before_the_peer_left_are_still_dispatched() -> None:
    class Recording(OneClientReadLoopServer):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.received: list[str] = []
            self.all_in = anyio.Event()

        async def read_and_dispatch(self) -> None:
            self.received.append(await self.read_str())
            if len(self.received) == 3:
                self.all_in.set()

    async with Recording(port=0) as server:
        for _ in range(5):  # also when the close comes with the data
            server.received.clear()
            server.all_in = anyio.Event()
            async with raw_peer(server.port) as peer:
                await peer.send(b"one\r\ntwo\r\nthree\r\n")
            with anyio.fail_after(TIMEOUT):
                await server.all_in.wait()
            assert server.received == ["one", "two", "three"]


async def test_read_loop_logs_the_connection_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = CallbackRecorder()
    logged = anyio.Event()

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "read loop" in record.msg:
                logged.set()

    handler = Handler()
    logging.getLogger("anytcpip").addHandler(handler)
    try:
        await _read_loop_logs(caplog, recorder, logged)
    finally:
        logging.getLogger("anytcpip").removeHandler(handler)
    ended = [r.getMessage() for r in caplog.records if "read loop" in r.msg]
    assert len(ended) == 1, ended
    assert ended[0].count("client 127.0.0.1:") == 1, ended[0]
    assert ended[0].count("SlowReplyServer 'once'") == 1, ended[0]
    assert "closed by the peer" in ended[0]


async def _read_loop_logs(
    caplog: pytest.LogCaptureFixture, recorder: CallbackRecorder, logged: anyio.Event
) -> None:
    with caplog.at_level(logging.INFO, logger="anytcpip"):
        async with SlowReplyServer(
            port=0, name="once", connect_callback=recorder
        ) as server:
            async with Client("127.0.0.1", server.port) as client:
                assert await recorder.next() is True
                with anyio.fail_after(TIMEOUT):
                    await client.write_str("ping")
                    assert await client.read_str() == "reply-to:ping"
            assert await recorder.next() is False
            with anyio.fail_after(TIMEOUT):
                await logged.wait()
