"""The read/write API of BaseClientOrServer, over real loopback TCP."""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import socket

import anyio
import pytest

import anytcpip
from anytcpip import Client, OneClientServer
from helpers import TIMEOUT, CallbackRecorder, connected_pair, raw_peer, reset_socket


class Telemetry(ctypes.Structure):
    _fields_ = [
        ("counter", ctypes.c_uint32),
        ("position", ctypes.c_double * 3),
        ("flags", ctypes.c_uint8 * 4),
    ]


# -- bytes ----------------------------------------------------------------------


async def test_write_and_read_bytes() -> None:
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            await client.write(b"hello")
            assert await server.readexactly(5) == b"hello"
            await server.write(bytearray(b"abc"))
            await server.write(memoryview(b"def"))
            data = b""
            while len(data) < 6:
                chunk = await client.read(100)
                assert chunk
                data += chunk
            assert data == b"abcdef"


async def test_read_returns_at_most_n() -> None:
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            await client.write(b"0123456789")
            assert await server.readexactly(3) == b"012"
            assert await server.read(4) == b"3456"
            assert await server.readexactly(3) == b"789"
            assert await server.read(0) == b""


async def test_writelines_is_one_message() -> None:
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            await client.writelines([b"a\n", bytearray(b"bc\n"), memoryview(b"d\n")])
            assert [await server.readline() for _ in range(3)] == [
                b"a\n",
                b"bc\n",
                b"d\n",
            ]


async def test_readline_and_readuntil() -> None:
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            await client.write(b"one\ntwo||three\n")
            assert await server.readline() == b"one\n"
            assert await server.readuntil(b"||") == b"two||"
            assert await server.readuntil() == b"three\n"


async def test_readline_returns_partial_data_at_eof() -> None:
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        async with raw_peer(server.port) as peer:
            await peer.send(b"line\nrest")
        with anyio.fail_after(TIMEOUT):
            await recorder.wait_for(2)  # connected, then gone
            assert await server.readline() == b"line\n"
            assert await server.readline() == b"rest"
            assert await server.readline() == b""
            with pytest.raises(ConnectionError):
                await server.readline()


async def test_read_returns_empty_once_at_eof_then_raises() -> None:
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        async with raw_peer(server.port) as peer:
            await peer.send(b"xyz")
        with anyio.fail_after(TIMEOUT):
            await recorder.wait_for(2)  # connected, then gone
            assert await server.readexactly(3) == b"xyz"
            assert await server.read(10) == b""
            assert not server.connected
            with pytest.raises(ConnectionError, match="closed by the peer"):
                await server.read(10)


async def test_data_sent_before_close_is_not_lost() -> None:
    """Bytes buffered when the peer leaves stay readable."""
    recorder = CallbackRecorder()
    async with connected_pair({"connect_callback": recorder}) as (server, client):
        with anyio.fail_after(TIMEOUT):
            await client.write_str("last words")
            await client.close()
            assert await recorder.wait_for(2) == [True, False]
            assert not server.connected
            assert await server.read_str() == "last words"
            with pytest.raises(ConnectionError):
                await server.read_str()


# -- text -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("terminator", "encoding", "text"),
    [
        (b"\r\n", "utf-8", "grüße 🌍"),
        (b"\n", "utf-8", "plain"),
        (b"\x03", "latin-1", "caf\xe9"),
        (b"\r\n\x03", "utf-8", "laser ✓"),
        (b"END", "utf-16-le", "wide"),
    ],
)
async def test_text_with_terminators_and_encodings(
    terminator: bytes, encoding: str, text: str
) -> None:
    kwargs = {"terminator": terminator, "encoding": encoding}
    async with connected_pair(kwargs, kwargs) as (server, client):
        assert client.terminator == terminator
        assert client.encoding == encoding
        with anyio.fail_after(TIMEOUT):
            await client.write_str(text)
            await client.write_str("")
            assert await server.read_str() == text
            assert await server.read_str() == ""
            await server.write_str(text * 3)
            assert await client.read_str() == text * 3


async def test_terminator_split_across_segments_and_cancelled_read() -> None:
    """A multi-byte terminator and a UTF-8 character split over two sends.

    The first read times out half-way through; nothing is lost.
    """
    async with connected_pair() as (server, client):
        payload = "façade".encode() + b"\r\n"
        split = payload.index(b"\xa7")  # inside the two bytes of "ç"
        first, second = payload[:split], payload[split:-1]
        with anyio.fail_after(TIMEOUT):
            await client.write(first)
            with anyio.move_on_after(0.05) as scope:
                await server.read_str()
            assert scope.cancelled_caught
            await client.write(second)
            with anyio.move_on_after(0.05) as scope:
                await server.read_str()  # only "\r" of the terminator so far
            assert scope.cancelled_caught
            await client.write(b"\n")
            assert await server.read_str() == "façade"


async def test_readexactly_cancelled_half_way_loses_nothing() -> None:
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            await client.write(b"01234")
            with anyio.move_on_after(0.05) as scope:
                await server.readexactly(10)
            assert scope.cancelled_caught
            await client.write(b"56789")
            assert await server.readexactly(10) == b"0123456789"


async def test_invalid_utf8_raises_and_connection_stays_usable() -> None:
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            await client.write(b"\xff\xfe bad\r\nok\r\n")
            with pytest.raises(UnicodeDecodeError):
                await server.read_str()
            assert await server.read_str() == "ok"


async def test_write_str_unencodable_sends_nothing() -> None:
    async with connected_pair({}, {"encoding": "ascii"}) as (server, client):
        with anyio.fail_after(TIMEOUT):
            with pytest.raises(UnicodeEncodeError):
                await client.write_str("naïve")
            await client.write_str("fine")
            assert await server.read_str() == "fine"


# -- JSON -----------------------------------------------------------------------


async def test_json_round_trip() -> None:
    message = {"id": 7, "cmd": "move", "args": [1.5, None, True], "nested": {"a": "é"}}
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            await client.write_json(message)
            await client.write_json([1, 2])
            assert await server.read_json() == message
            assert await server.read_json() == [1, 2]


async def test_bad_json_names_the_text_and_connection_stays_usable() -> None:
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            await client.write_str("{not json")
            await client.write_json({"ok": True})
            with pytest.raises(json.JSONDecodeError, match="not json"):
                await server.read_json()
            assert await server.read_json() == {"ok": True}


# -- ctypes -----------------------------------------------------------------------


async def test_structs_with_arrays() -> None:
    async with connected_pair() as (server, client):
        first = Telemetry(1, (1.0, 2.0, 3.0), (1, 2, 3, 4))
        second = Telemetry(2, (-1.0, 0.5, 1e300), (255, 0, 0, 7))
        array = (ctypes.c_int16 * 3)(-1, 0, 1)
        with anyio.fail_after(TIMEOUT):
            await client.write_from(first, second)
            await client.write_from(array)
            received = [Telemetry(), Telemetry()]
            for item in received:
                await server.read_into(item)
            received_array = (ctypes.c_int16 * 3)()
            await server.read_into(received_array)
        assert bytes(received[0]) == bytes(first)
        assert received[1].counter == 2
        assert list(received[1].position) == [-1.0, 0.5, 1e300]
        assert list(received[1].flags) == [255, 0, 0, 7]
        assert list(received_array) == [-1, 0, 1]


async def test_struct_io_rejects_non_ctypes() -> None:
    async with connected_pair() as (server, client):
        with pytest.raises(TypeError, match="ctypes"):
            await client.write_from(b"bytes")
        with pytest.raises(TypeError, match="ctypes"):
            await server.read_into(Telemetry)


async def test_peer_closes_mid_struct() -> None:
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        size = ctypes.sizeof(Telemetry)
        async with raw_peer(server.port) as peer:
            await peer.send(b"\x01" * (size - 3))
        with anyio.fail_after(TIMEOUT):
            await recorder.wait_for(2)  # connected, then gone
            with pytest.raises(anytcpip.IncompleteReadError) as info:
                await server.read_into(Telemetry())
        assert info.value.partial == b"\x01" * (size - 3)
        assert info.value.expected == size
        assert isinstance(info.value, asyncio.IncompleteReadError)
        assert isinstance(info.value, EOFError)
        assert "closed by the peer" in str(info.value)


async def test_peer_closes_mid_line() -> None:
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        async with raw_peer(server.port) as peer:
            await peer.send(b"complete\r\nhalf a li")
        with anyio.fail_after(TIMEOUT):
            await recorder.wait_for(2)  # connected, then gone
            assert await server.read_str() == "complete"
            with pytest.raises(anytcpip.IncompleteReadError) as info:
                await server.read_str()
        assert info.value.partial == b"half a li"
        assert info.value.expected is None


# -- limits -----------------------------------------------------------------------


async def test_line_longer_than_max_line_length() -> None:
    async with connected_pair({"max_line_length": 10}) as (server, client):
        assert server.max_line_length == 10
        with anyio.fail_after(TIMEOUT):
            await client.write(b"x" * 10 + b"\r\n")
            assert await server.read_str() == "x" * 10
            await client.write(b"y" * 25)  # no terminator at all
            with pytest.raises(anytcpip.LimitOverrunError) as info:
                await server.read_str()
            assert isinstance(info.value, asyncio.LimitOverrunError)
            assert "max_line_length=10" in str(info.value)
            # The data stays buffered and can be drained.
            data = b""
            while len(data) < 25:
                data += await server.read(25 - len(data))
            assert data == b"y" * 25


async def test_limit_overrun_while_peer_keeps_sending() -> None:
    """Raised before any terminator arrives, with memory bounded."""
    async with connected_pair({"max_line_length": 1000}) as (server, client):
        async with anyio.create_task_group() as tg:

            async def flood() -> None:
                with anyio.move_on_after(TIMEOUT):
                    while True:
                        await client.write(b"z" * 4096)

            tg.start_soon(flood)
            with anyio.fail_after(TIMEOUT):
                with pytest.raises(anytcpip.LimitOverrunError):
                    await server.readuntil(b"\n")
            tg.cancel_scope.cancel()


# -- concurrency --------------------------------------------------------------------


async def test_concurrent_writers_never_interleave() -> None:
    writers, messages, size = 8, 50, 20_000
    async with connected_pair() as (server, client):

        async def writer(index: int) -> None:
            line = chr(ord("a") + index) * size
            for _ in range(messages):
                await client.write_str(line)

        with anyio.fail_after(TIMEOUT * 4):
            async with anyio.create_task_group() as tg:
                for i in range(writers):
                    tg.start_soon(writer, i)
                counts: dict[str, int] = {}
                for _ in range(writers * messages):
                    line = await server.read_str()
                    assert len(line) == size
                    assert line == line[0] * size, "interleaved message"
                    counts[line[0]] = counts.get(line[0], 0) + 1
        assert counts == {chr(ord("a") + i): messages for i in range(writers)}


async def test_concurrent_readers_rejected() -> None:
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                started = anyio.Event()

                async def first_reader() -> None:
                    started.set()
                    assert await server.read_str() == "only"

                tg.start_soon(first_reader)
                await started.wait()
                await anyio.wait_all_tasks_blocked()
                with pytest.raises(anyio.BusyResourceError):
                    await server.read_str()
                with pytest.raises(anyio.BusyResourceError):
                    await server.read_into(Telemetry())
                await client.write_str("only")


# -- connection state and errors -------------------------------------------------------


async def test_not_connected_errors() -> None:
    client = Client("127.0.0.1", 9)
    assert not client.connected
    assert not client.should_be_connected
    with pytest.raises(ConnectionError, match="not connected"):
        await client.read(1)
    with pytest.raises(ConnectionError, match="not connected"):
        await client.write(b"x")
    async with OneClientServer(port=0) as server:
        with pytest.raises(ConnectionError, match="not connected"):
            await server.read_str()
        with pytest.raises(ConnectionError, match="not connected"):
            await server.write_json({})


async def test_io_after_own_close_raises() -> None:
    async with connected_pair() as (_server, client):
        await client.close()
        await client.close()  # idempotent
        assert not client.connected
        assert not client.should_be_connected
        with pytest.raises(ConnectionError, match="closed by this end"):
            await client.read_str()
        with pytest.raises(ConnectionError, match="closed by this end"):
            await client.write_str("x")


async def test_blocked_reader_woken_by_own_close() -> None:
    async with connected_pair() as (_server, client):
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:

                async def reader() -> None:
                    with pytest.raises(ConnectionError, match="closed by this end"):
                        await client.read_str()

                tg.start_soon(reader)
                await anyio.wait_all_tasks_blocked()
                await client.close()


async def test_peer_close_noticed_without_reading() -> None:
    recorder = CallbackRecorder()
    async with connected_pair({"connect_callback": recorder}) as (server, client):
        assert await recorder.wait_for(1) == [True]
        await client.close()
        assert await recorder.wait_for(2) == [True, False]
        assert not server.connected
        assert server.should_be_connected  # the peer dropped us
        with pytest.raises(ConnectionError, match="closed by the peer"):
            await server.write_str("anyone?")


async def test_peer_reset_noticed_and_reported() -> None:
    recorder = CallbackRecorder()
    async with OneClientServer(port=0, connect_callback=recorder) as server:
        sock = socket.create_connection(("127.0.0.1", server.port))
        try:
            assert await recorder.wait_for(1) == [True]
        finally:
            reset_socket(sock)
        assert await recorder.wait_for(2) == [True, False]
        assert not server.connected
        with pytest.raises(ConnectionError):
            await server.read_str()


async def test_server_dropping_client_is_seen_by_client() -> None:
    recorder = CallbackRecorder()
    async with connected_pair({}, {"connect_callback": recorder}) as (server, client):
        assert await recorder.wait_for(1) == [True]
        await server.close_client()
        assert await recorder.wait_for(2) == [True, False]
        assert client.should_be_connected and not client.connected


async def test_close_runs_callback_before_returning() -> None:
    recorder = CallbackRecorder()
    async with connected_pair({}, {"connect_callback": recorder}) as (_server, client):
        assert recorder.states == [True]
        await client.close()
        assert recorder.states == [True, False]
        await client.close()
        assert recorder.states == [True, False]


async def test_callback_exceptions_are_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[bool] = []

    async def broken(conn: Client) -> None:
        calls.append(conn.connected)
        raise RuntimeError("callback bug")

    with caplog.at_level(logging.ERROR, logger="anytcpip"):
        async with connected_pair({}, {"connect_callback": broken, "name": "cb"}) as (
            server,
            client,
        ):
            await client.write_str("still works")
            with anyio.fail_after(TIMEOUT):
                assert await server.read_str() == "still works"
    assert calls == [True, False]
    messages = [r for r in caplog.records if "connect_callback failed" in r.message]
    assert len(messages) == 2
    assert messages[0].name == "anytcpip.Client.cb"


async def test_callback_may_close_the_connection() -> None:
    """A callback that closes its own instance does not deadlock."""
    states: list[bool] = []

    async def close_on_connect(conn: Client) -> None:
        states.append(conn.connected)
        if conn.connected:
            await conn.close()

    async with OneClientServer(port=0) as server:
        with anyio.fail_after(TIMEOUT):
            async with Client(
                "127.0.0.1", server.port, connect_callback=close_on_connect
            ) as client:
                assert not client.connected
    assert states == [True, False]


async def test_exception_in_body_propagates_unwrapped() -> None:
    with pytest.raises(KeyError, match="mine"):
        async with connected_pair():
            raise KeyError("mine")


def test_constructor_validation() -> None:
    def sync_callback(conn: object) -> None:
        pass

    with pytest.raises(TypeError, match="async"):
        Client("127.0.0.1", 1, connect_callback=sync_callback)
    with pytest.raises(ValueError, match="terminator"):
        Client("127.0.0.1", 1, terminator="\n")
    with pytest.raises(ValueError, match="terminator"):
        OneClientServer(terminator=b"")
    with pytest.raises(ValueError, match="encoding"):
        OneClientServer(encoding="no-such-codec")
    with pytest.raises(ValueError, match="max_line_length"):
        OneClientServer(max_line_length=0)
    with pytest.raises(ValueError, match="port"):
        Client("127.0.0.1", 0)
    with pytest.raises(ValueError, match="extra_client"):
        OneClientServer(extra_client="ignore")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="heartbeat_interval"):
        OneClientServer(heartbeat_interval=0)


def test_logger_is_a_child_of_the_given_one() -> None:
    parent = logging.getLogger("myapp")
    assert Client("h", 1, log=parent, name="dome").log.name == "myapp.Client.dome"
    assert OneClientServer().log.name == "anytcpip.OneClientServer"


async def test_drain_waits_until_handed_to_the_os() -> None:
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            await client.write(b"x" * 200_000)
            await client.write_str("tail")
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.drain)
                assert await server.readexactly(200_000) == b"x" * 200_000
            await client.drain()  # at once when nothing is queued
            assert await server.read_str() == "tail"


async def test_close_sends_what_was_queued() -> None:
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            for i in range(1000):
                await client.write_str(f"message {i}")
            await client.close()
            for i in range(1000):
                assert await server.read_str() == f"message {i}"
