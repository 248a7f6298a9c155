"""Requester: one command at a time, and the request methods of clients and servers."""

from __future__ import annotations

import ctypes
import logging
import math
import pickle
from typing import Any

import anyio
import pytest

from anytcpip import (
    Backoff,
    BaseClientOrServer,
    Client,
    ConnectionLostError,
    OneClientServer,
    Requester,
    RequestTimeoutError,
    StructDispatcher,
)
from helpers import (
    ACK,
    COMMAND,
    TIMEOUT,
    Ack,
    CallbackRecorder,
    Command,
    Header,
    connected_pair,
    counted_memory_pair,
    memory_pair,
)


async def echo_upper(server: BaseClientOrServer, count: int, delay: float = 0) -> None:
    for _ in range(count):
        line = await server.read_str()
        await anyio.sleep(delay)
        await server.write_str(line.upper())


async def test_request_and_request_json() -> None:
    async with connected_pair() as (server, client):
        requester = Requester(client, timeout=TIMEOUT)
        async with anyio.create_task_group() as tg:
            tg.start_soon(echo_upper, server, 1)
            assert await requester.request("az?") == "AZ?"
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:

                async def json_server() -> None:
                    command = await server.read_json()
                    await server.write_json({"ack": command["cmd"]})

                tg.start_soon(json_server)
                assert await requester.request_json({"cmd": "park"}) == {"ack": "park"}


async def test_concurrent_requests_take_turns() -> None:
    async with connected_pair() as (server, client):
        requester = Requester(client)
        replies: dict[str, str] = {}

        async def ask(word: str) -> None:
            replies[word] = await requester.request(word, timeout=TIMEOUT)

        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(echo_upper, server, 20, 0.001)
                for i in range(20):
                    tg.start_soon(ask, f"word{i}")
        assert replies == {f"word{i}": f"WORD{i}" for i in range(20)}


async def test_prompt_terminated_replies() -> None:
    # A dome-style controller: commands end in CR, replies end in a prompt.
    server_kwargs = {"read_terminator": b"\r", "write_terminator": b"\r\n>"}
    client_kwargs = {"read_terminator": b"\r\n>", "write_terminator": b"\r"}
    async with connected_pair(server_kwargs, client_kwargs) as (server, client):
        requester = Requester(client, timeout=TIMEOUT)
        async with anyio.create_task_group() as tg:
            tg.start_soon(echo_upper, server, 2)
            assert await requester.request("shutter?") == "SHUTTER?"
            assert await requester.request("az?") == "AZ?"


async def test_no_reply_closes_the_connection_by_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server_calls = CallbackRecorder()
    async with connected_pair({"connect_callback": server_calls}) as (_, client):
        requester = Requester(client)
        with anyio.fail_after(TIMEOUT):
            with pytest.raises(RequestTimeoutError) as info:
                await requester.request("MOVE 10", timeout=0.1)
        error = info.value
        assert isinstance(error, TimeoutError)
        assert "no reply to 'MOVE 10' within 0.1 s" in str(error)
        assert "closed" in str(error) and "Client" in str(error)
        assert error.connection_closed and error.timeout == 0.1
        assert error.request == "MOVE 10"
        assert not client.connected and not client.should_be_connected
        assert await server_calls.wait_for(2) == [True, False]
        with pytest.raises(ConnectionError):
            await requester.request("MOVE 10", timeout=0.1)
    assert "closing the connection" in caplog.text


async def test_timeout_on_a_server_drops_the_client_and_keeps_listening() -> None:
    server_calls = CallbackRecorder()
    async with connected_pair({"connect_callback": server_calls}) as (server, _):
        requester = Requester(server, timeout=0.1)
        with anyio.fail_after(TIMEOUT):
            with pytest.raises(RequestTimeoutError, match="OneClientServer"):
                await requester.request("status?")
            assert await server_calls.wait_for(2) == [True, False]
            async with Client("127.0.0.1", server.port) as second:
                assert await server_calls.wait_for(3) == [True, False, True]
                async with anyio.create_task_group() as tg:

                    async def answer() -> None:
                        assert await second.read_str() == "status?"
                        await second.write_str("ok")

                    tg.start_soon(answer)
                    assert await requester.request("status?") == "ok"


async def test_keep_policy_keeps_the_connection() -> None:
    async with connected_pair() as (server, client):
        requester = Requester(client, reply_timeout_policy="keep")
        with anyio.fail_after(TIMEOUT):
            with pytest.raises(RequestTimeoutError) as info:
                await requester.request("lost", timeout=0.1)
            assert not info.value.connection_closed
            assert "kept" in str(info.value)
            assert client.connected
            assert requester.late_replies_expected == 1
            assert await server.read_str() == "lost"  # the server ignores it
            async with anyio.create_task_group() as tg:
                tg.start_soon(echo_upper, server, 1)
                assert await requester.request("next", timeout=TIMEOUT) == "NEXT"


async def test_late_reply_is_discarded_with_the_keep_policy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with counted_memory_pair() as (server, client, _, client_received):
        requester = Requester(client, reply_timeout_policy="keep")
        with anyio.fail_after(TIMEOUT):
            with pytest.raises(RequestTimeoutError):
                await requester.request("slow", timeout=0.05)
            assert await server.read_str() == "slow"
            received = client_received.received
            await server.write_str("SLOW (late)")
            # Wait until the late reply is buffered on the client.
            await client_received.wait_received(received + len(b"SLOW (late)\r\n"))
            async with anyio.create_task_group() as tg:
                tg.start_soon(echo_upper, server, 1)
                assert await requester.request("fast", timeout=TIMEOUT) == "FAST"
            assert requester.late_replies_expected == 0
    assert "discarding a late reply: 'SLOW (late)'" in caplog.text


async def test_late_replies_expected_are_forgotten_on_a_new_connection() -> None:
    """A reply owed on an old connection never costs a message on the new one."""
    states = CallbackRecorder()
    async with OneClientServer(port=0) as server:
        async with Client(
            "127.0.0.1",
            server.port,
            reconnect=Backoff(initial=0.01, maximum=0.05),
            connect_callback=states,
        ) as client:
            requester = Requester(client, reply_timeout_policy="keep")
            with anyio.fail_after(TIMEOUT):
                assert await states.next() is True
                await server.wait_connected()
                with pytest.raises(RequestTimeoutError):
                    await requester.request("slow", timeout=0.05)
                assert requester.late_replies_expected == 1
                assert await server.read_str() == "slow"
                # The server drops the client without answering; it reconnects.
                await server.close_client()
                assert await states.next() is False
                assert await states.next() is True
                await server.wait_connected()
                assert requester.late_replies_expected == 0
                async with anyio.create_task_group() as tg:
                    # The first line on the new connection is this reply: it
                    # must not be discarded as the old connection's late one.
                    tg.start_soon(echo_upper, server, 1)
                    reply = await requester.request("fresh", timeout=TIMEOUT)
                assert reply == "FRESH"


async def test_late_reply_with_the_close_policy_is_never_read() -> None:
    async with connected_pair() as (server, client):
        requester = Requester(client)
        with anyio.fail_after(TIMEOUT):
            with pytest.raises(RequestTimeoutError):
                await requester.request("slow", timeout=0.05)
            assert await server.read_str() == "slow"
            with pytest.raises(ConnectionError):
                await server.write_str("SLOW (late)")
                await server.drain()
                await server.read_str()
            with pytest.raises(ConnectionError):
                await client.read_str()


async def test_peer_closes_mid_request() -> None:
    async with connected_pair() as (server, client):
        requester = Requester(client)
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:

                async def close_after_request() -> None:
                    assert await server.read_str() == "home"
                    await server.close_client()

                tg.start_soon(close_after_request)
                with pytest.raises(ConnectionError):
                    await requester.request("home", timeout=TIMEOUT)
    async with connected_pair() as (server, client):
        requester = Requester(client)
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:

                async def half_a_reply() -> None:
                    assert await server.read_str() == "home"
                    await server.write(b"HO")
                    await server.close_client()

                tg.start_soon(half_a_reply)
                with pytest.raises(ConnectionLostError) as info:
                    await requester.request("home", timeout=TIMEOUT)
                assert "part-way through the reply to 'home'" in str(info.value)
                assert isinstance(info.value.__cause__, EOFError)


async def test_cancelled_request_applies_the_policy() -> None:
    async with connected_pair() as (_, client):
        keep = Requester(client, reply_timeout_policy="keep")
        with anyio.fail_after(TIMEOUT):
            with anyio.move_on_after(0.05):
                await keep.request("park")
            assert keep.late_replies_expected == 1 and client.connected
            close = Requester(client)
            with anyio.move_on_after(0.05):
                await close.request("park")
            assert not client.connected


async def test_timeout_while_sending_sends_nothing() -> None:
    async with connected_pair() as (server, client):
        requester = Requester(client)
        written = bytearray()
        with anyio.fail_after(TIMEOUT):
            # The server does not read: write until the OS's buffers are full
            # (large writes), then until the send queue is (small ones).
            for chunk in (b"x" * (1 << 20), b"y" * 1024):
                with anyio.move_on_after(0.3):
                    while True:
                        await client.write(chunk)
                        written += chunk
            with pytest.raises(RequestTimeoutError) as info:
                await requester.request("status?", timeout=0.1)
            assert "could not send 'status?' within 0.1 s" in str(info.value)
            assert not info.value.connection_closed and client.connected
            assert await server.readexactly(len(written)) == written
            async with anyio.create_task_group() as tg:
                tg.start_soon(echo_upper, server, 1)
                assert await requester.request("status?") == "STATUS?"


async def test_requester_not_connected_and_validation() -> None:
    async with OneClientServer(port=0) as server:
        with pytest.raises(ConnectionError):
            await Requester(server).request("x", timeout=1)
    with pytest.raises(ValueError, match="reply_timeout_policy"):
        Requester(server, reply_timeout_policy="retry")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        Requester(server, timeout=0)


async def test_infinite_timeout_overrides_the_default() -> None:
    async with connected_pair() as (server, client):
        requester = Requester(client, timeout=0.01)
        async with anyio.create_task_group() as tg:
            tg.start_soon(echo_upper, server, 1, 0.1)
            with anyio.fail_after(TIMEOUT):
                assert await requester.request("wait", timeout=math.inf) == "WAIT"


def test_timeout_error_pickles() -> None:
    error = RequestTimeoutError("late", {"id": 1}, 0.5, True)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.request, copy.timeout, copy.connection_closed) == (
        {"id": 1},
        0.5,
        True,
    )
    assert str(copy) == "late"


Message = tuple[Header, Any]


async def test_exchange_with_structs_and_the_keep_policy() -> None:
    frames = StructDispatcher(
        Header, "frame_id", {COMMAND: Command, ACK: Ack}, length_field="length"
    )
    async with counted_memory_pair() as (server, client, _, client_received):
        requester = Requester(client, reply_timeout_policy="keep", timeout=TIMEOUT)

        async def command(counter: int, timeout: float | None = None) -> Message:
            return await requester.exchange(
                lambda: frames.write(
                    client, Command(1, 0), header=Header(counter=counter)
                ),
                lambda: frames.read(client),
                timeout=timeout,
                description=f"command {counter}",
            )

        with anyio.fail_after(TIMEOUT):
            with pytest.raises(RequestTimeoutError, match="no reply to command 1"):
                await command(1, timeout=0.05)
            head, _ = await frames.read(server)
            received = client_received.received
            await frames.write(server, Ack(0), header=head)  # the late ack
            expected = received + ctypes.sizeof(Header) + ctypes.sizeof(Ack)
            await client_received.wait_received(expected)
            async with anyio.create_task_group() as tg:

                async def answer() -> None:
                    head, _ = await frames.read(server)
                    await frames.write(server, Ack(2), header=head)

                tg.start_soon(answer)
                head, ack = await command(2)
                assert head.counter == 2 and ack.status == 2


async def test_conn_request_and_request_json() -> None:
    async with connected_pair() as (server, client):
        assert isinstance(client.requester, Requester)
        assert client.requester is client.requester
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:

                async def answer() -> None:
                    assert await server.read_str() == "AZ?"
                    await server.write_str("AZ=1")
                    assert await server.read_json() == {"cmd": "park"}
                    await server.write_json({"ack": "park"})

                tg.start_soon(answer)
                assert await client.request("AZ?", timeout=TIMEOUT) == "AZ=1"
                assert await client.request_json({"cmd": "park"}) == {"ack": "park"}


async def test_conn_request_timeout_policy() -> None:
    async with connected_pair() as (_server, client):
        client.requester.reply_timeout_policy = "keep"
        with pytest.raises(RequestTimeoutError, match=r"within 0\.05 s"):
            await client.request("lost", timeout=0.05)
        assert client.connected
        client.requester.reply_timeout_policy = "close"
        with pytest.raises(TimeoutError, match="closed"):
            await client.request("lost", timeout=0.05)
        assert not client.connected


async def test_the_in_memory_connection_has_the_request_methods() -> None:
    async with memory_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(echo_upper, server, 1)
                assert await client.request("memory") == "MEMORY"
            # A timeout with the default policy ends the (only) connection.
            with pytest.raises(RequestTimeoutError, match="closed"):
                await client.request("nobody answers", timeout=0.05)
            assert not client.connected
