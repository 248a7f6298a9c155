"""Requester (one command at a time) and Correlator (replies matched by id)."""

from __future__ import annotations

import ctypes
import logging
import math
import pickle
from typing import Any

import anyio
import pytest

from anytcpip import (
    Client,
    ConnectionLostError,
    Correlator,
    NotConnectedError,
    OneClientServer,
    Requester,
    RequestTimeoutError,
    StructDispatcher,
)
from helpers import TIMEOUT, CallbackRecorder, connected_pair

# -- Requester ----------------------------------------------------------------------


async def echo_upper(server: OneClientServer, count: int, delay: float = 0) -> None:
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
    async with connected_pair() as (server, client):
        requester = Requester(client, reply_timeout_policy="keep")
        with anyio.fail_after(TIMEOUT):
            with pytest.raises(RequestTimeoutError):
                await requester.request("slow", timeout=0.05)
            assert await server.read_str() == "slow"
            received = client.stats.bytes_received
            await server.write_str("SLOW (late)")
            # Wait until the late reply is buffered on the client.
            expected = received + len(b"SLOW (late)\r\n")
            while client.stats.bytes_received < expected:  # noqa: ASYNC110
                await anyio.sleep(0.001)
            async with anyio.create_task_group() as tg:
                tg.start_soon(echo_upper, server, 1)
                assert await requester.request("fast", timeout=TIMEOUT) == "FAST"
            assert requester.late_replies_expected == 0
    assert "discarding a late reply: 'SLOW (late)'" in caplog.text


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
        chunk = b"x" * (1 << 20)
        queued = 0
        with anyio.fail_after(TIMEOUT):
            # The server does not read: write until the send buffer is full.
            with anyio.move_on_after(0.3):
                while True:
                    await client.write(chunk)
                    queued += len(chunk)
            with pytest.raises(RequestTimeoutError) as info:
                await requester.request("status?", timeout=0.1)
            assert "could not send 'status?' within 0.1 s" in str(info.value)
            assert not info.value.connection_closed and client.connected
            assert await server.readexactly(queued) == b"x" * queued
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


# -- Correlator ---------------------------------------------------------------------


def json_id(message: Any) -> Any:
    return message.get("id") if isinstance(message, dict) else None


async def test_replies_are_matched_by_id_and_the_rest_is_unsolicited() -> None:
    async with connected_pair() as (server, client):
        async with Correlator(client, id_of=json_id, timeout=TIMEOUT) as correlator:
            replies: dict[int, Any] = {}

            async def ask(number: int) -> None:
                request = {"id": correlator.next_id(), "cmd": f"c{number}"}
                replies[number] = await correlator.request(request)

            async def controller() -> None:
                commands = [await server.read_json() for _ in range(3)]
                await server.write_json({"telemetry": 1})
                for command in reversed(commands):  # answer out of order
                    await server.write_json(
                        {"id": command["id"], "ack": command["cmd"]}
                    )
                    await server.write_json({"event": command["cmd"]})

            with anyio.fail_after(TIMEOUT):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(controller)
                    for number in range(3):
                        tg.start_soon(ask, number)
                assert {n: r["ack"] for n, r in replies.items()} == {
                    0: "c0",
                    1: "c1",
                    2: "c2",
                }
                assert len({r["id"] for r in replies.values()}) == 3
                received = []
                async for message in correlator.unsolicited():
                    received.append(message)
                    if len(received) == 4:
                        break
                assert received[0] == {"telemetry": 1}
                assert sorted(m["event"] for m in received[1:]) == ["c0", "c1", "c2"]
                assert correlator.pending == 0


async def test_on_unsolicited_callback(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[Any] = []
    got_two = anyio.Event()

    async def on_message(message: Any) -> None:
        if message == "boom":
            raise RuntimeError("callback bug")
        seen.append(message)
        if len(seen) == 2:
            got_two.set()

    async with connected_pair() as (server, client):
        async with Correlator(
            client, id_of=json_id, on_unsolicited=on_message
        ) as correlator:
            with pytest.raises(RuntimeError, match="on_unsolicited"):
                correlator.unsolicited()
            with anyio.fail_after(TIMEOUT):
                for message in ("a", "boom", "b"):
                    await server.write_json(message)
                await got_two.wait()
    assert seen == ["a", "b"]
    assert "on_unsolicited failed" in caplog.text


async def test_reply_that_never_comes() -> None:
    async with connected_pair() as (server, client):
        async with Correlator(client, id_of=json_id) as correlator:
            with anyio.fail_after(TIMEOUT):
                with pytest.raises(RequestTimeoutError) as info:
                    await correlator.request({"id": 7, "cmd": "move"}, timeout=0.1)
                error = info.value
                assert isinstance(error, TimeoutError)
                assert "no reply to request 7" in str(error)
                assert "within 0.1 s" in str(error) and "'move'" in str(error)
                assert error.request == {"id": 7, "cmd": "move"}
                assert not error.connection_closed and client.connected
                assert correlator.pending == 0
                # Still usable.
                assert await server.read_json() == {"id": 7, "cmd": "move"}
                async with anyio.create_task_group() as tg:

                    async def answer() -> None:
                        command = await server.read_json()
                        await server.write_json({"id": command["id"], "ok": True})

                    tg.start_soon(answer)
                    reply = await correlator.request({"id": 8}, timeout=TIMEOUT)
                    assert reply == {"id": 8, "ok": True}


async def test_reply_after_the_timeout_is_logged_and_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with connected_pair() as (server, client):
        async with Correlator(client, id_of=json_id) as correlator:
            with anyio.fail_after(TIMEOUT):
                with pytest.raises(RequestTimeoutError):
                    await correlator.request({"id": 1}, timeout=0.05)
                await server.read_json()
                await server.write_json({"id": 1, "late": True})
                await server.write_json({"id": 99, "stray": True})
                await server.write_json({"event": "after"})
                message = await correlator.unsolicited().__anext__()
                assert message == {"event": "after"}
                assert correlator.late_replies == 2
    assert "dropped a late reply to request 1" in caplog.text
    assert "dropped a reply to no known request (id 99)" in caplog.text


async def test_peer_closing_fails_pending_requests() -> None:
    async with connected_pair() as (server, client):
        async with Correlator(client, id_of=json_id) as correlator:
            errors: list[BaseException] = []

            async def ask(number: int) -> None:
                try:
                    await correlator.request({"id": number}, timeout=TIMEOUT)
                except ConnectionError as exc:
                    errors.append(exc)

            with anyio.fail_after(TIMEOUT):
                async with anyio.create_task_group() as tg:
                    for number in range(3):
                        tg.start_soon(ask, number)
                    for _ in range(3):
                        await server.read_json()
                    await server.write_json({"event": "last words"})
                    await server.close_client()
                assert len(errors) == 3
                assert all(isinstance(e, ConnectionLostError) for e in errors)
                assert "no reply to request" in str(errors[0])
                assert "closed by the peer" in str(errors[0])
                # Queued messages are still delivered, then iteration ends.
                assert [m async for m in correlator.unsolicited()] == [
                    {"event": "last words"}
                ]
                with pytest.raises(ConnectionLostError):
                    await correlator.request({"id": 5}, timeout=TIMEOUT)


async def test_peer_closing_mid_message() -> None:
    async with connected_pair() as (server, client):
        async with Correlator(client, id_of=json_id) as correlator:
            with anyio.fail_after(TIMEOUT):
                async with anyio.create_task_group() as tg:

                    async def half_a_reply() -> None:
                        await server.read_json()
                        await server.write(b'{"id": 1, "ha')
                        await server.close_client()

                    tg.start_soon(half_a_reply)
                    with pytest.raises(ConnectionLostError):
                        await correlator.request({"id": 1})


async def test_this_end_closing_fails_with_not_connected() -> None:
    async with connected_pair() as (server, client):
        async with Correlator(client, id_of=json_id) as correlator:
            with anyio.fail_after(TIMEOUT):
                async with anyio.create_task_group() as tg:

                    async def close_soon() -> None:
                        await server.read_json()
                        await client.close()

                    tg.start_soon(close_soon)
                    with pytest.raises(NotConnectedError):
                        await correlator.request({"id": 1})


async def test_leaving_stops_the_reader_and_fails_outside_requests() -> None:
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            async with anyio.create_task_group() as tg:
                errors: list[BaseException] = []

                async def outside(correlator: Correlator[Any]) -> None:
                    try:
                        await correlator.request({"id": 1})
                    except NotConnectedError as exc:
                        errors.append(exc)

                async with Correlator(client, id_of=json_id) as correlator:
                    tg.start_soon(outside, correlator)
                    await server.read_json()
                    iterator = correlator.unsolicited()
                assert correlator.pending == 0
            assert len(errors) == 1 and "Correlator was closed" in str(errors[0])
            with pytest.raises(NotConnectedError):
                await correlator.request({"id": 2})
            with pytest.raises(StopAsyncIteration):
                await iterator.__anext__()
            # No reader is left behind: the connection can be read directly.
            await server.write_json({"id": 1})
            assert await client.read_json() == {"id": 1}


async def test_full_queue_drops_the_oldest(caplog: pytest.LogCaptureFixture) -> None:
    async with connected_pair() as (server, client):
        async with Correlator(
            client, id_of=json_id, max_unsolicited=3, timeout=TIMEOUT
        ) as correlator:
            with anyio.fail_after(TIMEOUT):
                for n in range(10):
                    await server.write_json({"telemetry": n})
                # Nobody consumes, yet replies still get through.
                async with anyio.create_task_group() as tg:

                    async def answer() -> None:
                        command = await server.read_json()
                        await server.write_json({"id": command["id"]})

                    tg.start_soon(answer)
                    await correlator.request({"id": 1})
                assert correlator.dropped_unsolicited == 7
                iterator = correlator.unsolicited()
                assert [
                    (await iterator.__anext__())["telemetry"] for _ in range(3)
                ] == [
                    7,
                    8,
                    9,
                ]
    assert "unsolicited queue is full (3 messages)" in caplog.text


async def test_full_queue_waits_with_the_wait_policy() -> None:
    async with connected_pair() as (server, client):
        async with Correlator(
            client, id_of=json_id, max_unsolicited=2, unsolicited_overflow="wait"
        ) as correlator:
            with anyio.fail_after(TIMEOUT):
                for n in range(10):
                    await server.write_json({"telemetry": n})
                await server.write_json({"id": 1})
                # The reader waits for room, so the reply is held up...
                with pytest.raises(RequestTimeoutError):
                    await correlator.request({"id": 2}, timeout=0.1)
                # ...and nothing is lost.
                received = []
                async for message in correlator.unsolicited():
                    received.append(message["telemetry"])
                    if len(received) == 10:
                        break
                assert received == list(range(10))
                assert correlator.dropped_unsolicited == 0


async def test_bad_messages_are_skipped(caplog: pytest.LogCaptureFixture) -> None:
    async with connected_pair() as (server, client):
        async with Correlator(client, id_of=json_id) as correlator:
            with anyio.fail_after(TIMEOUT):
                async with anyio.create_task_group() as tg:

                    async def answer() -> None:
                        command = await server.read_json()
                        await server.write(b"{not json\r\n\xff\xfe\r\n")
                        await server.write_json({"id": command["id"], "ok": 1})

                    tg.start_soon(answer)
                    reply = await correlator.request({"id": 3}, timeout=TIMEOUT)
                    assert reply == {"id": 3, "ok": 1}
    assert caplog.text.count("skipped a bad message") == 2


async def test_request_validation() -> None:
    async with connected_pair() as (server, client):
        correlator = Correlator(client, id_of=json_id)
        with pytest.raises(RuntimeError, match="not entered"):
            await correlator.request({"id": 1})
        with pytest.raises(RuntimeError, match="not entered"):
            correlator.unsolicited()
        async with correlator:
            with pytest.raises(RuntimeError, match="only be entered once"):
                await correlator.__aenter__()
            with pytest.raises(ValueError, match="needs an id"):
                await correlator.request({"cmd": "no id"})
            with anyio.fail_after(TIMEOUT):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(correlator.request, {"id": 4})
                    await server.read_json()
                    with pytest.raises(ValueError, match="id 4 is already waiting"):
                        await correlator.request({"id": 4})

                    # reply_id overrides id_of for the request.
                    async def custom() -> None:
                        await correlator.request({"cmd": "x"}, reply_id="custom")

                    tg.start_soon(custom)
                    await server.read_json()
                    await server.write_json({"id": "custom"})
                    await server.write_json({"id": 4})
                assert correlator.pending == 0
    for bad in (
        {"max_unsolicited": 0},
        {"unsolicited_overflow": "block"},
        {"timeout": -1},
        {"max_id": 0},
    ):
        with pytest.raises(ValueError):
            Correlator(client, id_of=json_id, **bad)


async def test_next_id_wraps_and_skips_waiting_ids() -> None:
    async with connected_pair() as (server, client):
        async with Correlator(client, id_of=json_id, max_id=3) as correlator:
            assert [correlator.next_id() for _ in range(4)] == [1, 2, 3, 1]
            with anyio.fail_after(TIMEOUT):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(correlator.request, {"id": 2})
                    await server.read_json()
                    assert [correlator.next_id() for _ in range(3)] == [3, 1, 3]
                    await server.write_json({"id": 2})


async def test_cancelled_request_is_remembered_as_late(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with connected_pair() as (server, client):
        async with Correlator(client, id_of=json_id) as correlator:
            with anyio.fail_after(TIMEOUT):
                with anyio.move_on_after(0.05):
                    await correlator.request({"id": 5})
                await server.read_json()
                await server.write_json({"id": 5})
                await server.write_json({"event": 1})
                await correlator.unsolicited().__anext__()
    assert "dropped a late reply to request 5" in caplog.text


# -- Correlator over structs --------------------------------------------------------


class Header(ctypes.LittleEndianStructure):
    _pack_ = 1
    _fields_ = [
        ("frame_id", ctypes.c_uint16),
        ("length", ctypes.c_uint16),
        ("counter", ctypes.c_uint32),
    ]


class Command(ctypes.LittleEndianStructure):
    _pack_ = 1
    _fields_ = [("code", ctypes.c_uint32), ("value", ctypes.c_double)]


class Ack(ctypes.LittleEndianStructure):
    _pack_ = 1
    _fields_ = [("status", ctypes.c_int32)]


COMMAND, ACK, TELEMETRY = 1, 2, 3
Message = tuple[Header, Any]


def struct_correlator(
    conn: Client, dispatcher: StructDispatcher[Header]
) -> Correlator[Message]:
    async def write(message: Message) -> None:
        head, body = message
        await dispatcher.write(conn, body, header=head)

    return Correlator(
        conn,
        id_of=lambda m: m[0].counter if m[0].frame_id == ACK else None,
        request_id_of=lambda m: m[0].counter,
        read=lambda: dispatcher.read(conn),
        write=write,
        timeout=TIMEOUT,
    )


async def test_struct_messages_with_unknown_ids() -> None:
    bodies: dict[int, type[Any]] = {
        COMMAND: Command,
        ACK: Ack,
        TELEMETRY: ctypes.c_double * 2,
    }
    with_length = StructDispatcher(Header, "frame_id", bodies, length_field="length")
    async with connected_pair() as (server, client):
        async with struct_correlator(client, with_length) as correlator:
            with anyio.fail_after(TIMEOUT):
                async with anyio.create_task_group() as tg:

                    async def controller() -> None:
                        head, command = await with_length.read(server)
                        await server.write_from(Header(42, 3, 0), ctypes.c_char(b"?"))
                        await server.write(b"??")  # an unknown id: skipped
                        await with_length.write(server, (ctypes.c_double * 2)(1.0, 2.0))
                        await with_length.write(
                            server, Ack(int(command.value)), header=head
                        )

                    tg.start_soon(controller)
                    head, ack = await correlator.request(
                        (Header(counter=correlator.next_id()), Command(1, 5.0))
                    )
                    assert head.frame_id == ACK and ack.status == 5
                    _, telemetry = await correlator.unsolicited().__anext__()
                    assert list(telemetry) == [1.0, 2.0]


async def test_struct_messages_out_of_step_stop_the_reader(
    caplog: pytest.LogCaptureFixture,
) -> None:
    no_length = StructDispatcher(Header, "frame_id", {COMMAND: Command, ACK: Ack})
    async with connected_pair() as (server, client):
        async with struct_correlator(client, no_length) as correlator:
            with anyio.fail_after(TIMEOUT):
                async with anyio.create_task_group() as tg:

                    async def controller() -> None:
                        await no_length.read(server)
                        await server.write_from(Header(42, 0, 1))

                    tg.start_soon(controller)
                    with pytest.raises(ConnectionLostError, match="reader failed"):
                        await correlator.request((Header(counter=1), Command(1, 0)))
                with pytest.raises(ConnectionLostError) as info:
                    await correlator.unsolicited().__anext__()
                assert "unknown message id 42" in str(info.value.__cause__)
    assert "the Correlator's reader failed" in caplog.text


async def test_exchange_with_structs_and_the_keep_policy() -> None:
    frames = StructDispatcher(
        Header, "frame_id", {COMMAND: Command, ACK: Ack}, length_field="length"
    )
    async with connected_pair() as (server, client):
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
            received = client.stats.bytes_received
            await frames.write(server, Ack(0), header=head)  # the late ack
            expected = received + ctypes.sizeof(Header) + ctypes.sizeof(Ack)
            while client.stats.bytes_received < expected:  # noqa: ASYNC110
                await anyio.sleep(0.001)
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
