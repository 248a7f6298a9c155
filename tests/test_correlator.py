"""Correlator: replies matched to requests by id, other messages routed."""

from __future__ import annotations

import ctypes
import logging
from typing import Any

import anyio
import pytest

from anytcpip import (
    BadMessageError,
    BaseClientOrServer,
    Client,
    ConnectionLostError,
    Correlator,
    NotConnectedError,
    RequestTimeoutError,
    StructDispatcher,
)
from helpers import (
    ACK,
    COMMAND,
    TELEMETRY,
    TIMEOUT,
    Ack,
    Command,
    Header,
    connected_pair,
)

Message = tuple[Header, Any]

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


async def test_hostile_json_is_skipped_like_any_bad_json(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with connected_pair() as (server, client):
        async with Correlator(client, id_of=json_id) as correlator:
            with anyio.fail_after(TIMEOUT):
                await server.write(b"[" * 60_000 + b"\r\n")  # too deep to parse
                await server.write(b"1" * 5_000 + b"\r\n")  # too many digits
                await server.write_json({"id": 4})
                assert await correlator.request({"id": 4}) == {"id": 4}
    assert caplog.text.count("skipped a bad message") == 2


class Resynchronising:
    """A reader of JSON lines that calls ``"bad"`` messages bad, as a protocol might."""

    def __init__(self, conn: BaseClientOrServer, resynchronised: bool) -> None:
        self.conn = conn
        self.resynchronised = resynchronised

    async def read(self) -> Any:
        message = await self.conn.read_json()
        if message == "bad":
            raise BadMessageError("a bad message", b'"bad"', self.resynchronised)
        return message


async def test_a_resynchronised_bad_message_is_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with connected_pair() as (server, client):
        reader = Resynchronising(client, resynchronised=True)
        async with Correlator(
            client, id_of=json_id, read=reader.read, write=client.write_json
        ) as correlator:
            with anyio.fail_after(TIMEOUT):
                await server.write_json("bad")
                await server.write_json({"id": 1})
                assert await correlator.request({"id": 1}) == {"id": 1}
    assert "skipped a bad message: a bad message" in caplog.text


async def test_a_bad_message_out_of_step_stops_the_reader() -> None:
    async with connected_pair() as (server, client):
        reader = Resynchronising(client, resynchronised=False)
        async with Correlator(
            client, id_of=json_id, read=reader.read, write=client.write_json
        ) as correlator:
            with anyio.fail_after(TIMEOUT):
                await server.write_json("bad")
                with pytest.raises(ConnectionLostError, match="reader failed") as info:
                    await correlator.request({"id": 1})
                assert isinstance(info.value.__cause__, ConnectionLostError)


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
