"""StructDispatcher: a ctypes header whose id selects the body struct."""

from __future__ import annotations

import ctypes
import enum
import pickle
from typing import Any

import anyio
import pytest

from anytcpip import (
    Client,
    IncompleteReadError,
    MessageLengthError,
    OneClientReadLoopServer,
    OneClientServer,
    StructDispatcher,
    UnknownMessageError,
)
from helpers import (
    TIMEOUT,
    CallbackRecorder,
    Header,
    connected_pair,
    counted_memory_pair,
)


class Position(ctypes.LittleEndianStructure):
    _pack_ = 1
    _fields_ = [("xyz", ctypes.c_double * 3)]


class Status(ctypes.LittleEndianStructure):
    _pack_ = 1
    _fields_ = [("code", ctypes.c_int32), ("text", ctypes.c_char * 12)]


class FrameId(enum.IntEnum):
    POSITION = 1
    STATUS = 2
    PING = 3


BODIES = {FrameId.POSITION: Position, FrameId.STATUS: Status, FrameId.PING: None}
WITH_LENGTH = StructDispatcher(Header, "frame_id", BODIES, length_field="length")
NO_LENGTH = StructDispatcher(Header, "frame_id", BODIES)


class HeaderWatchingServer(OneClientServer):
    """A server that sets ``header_read`` once a read has filled a ``Header``.

    A dispatcher read fills the header, then waits for the body: a test that
    cancels the read on this event cancels it there (no timing involved).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.header_read = anyio.Event()

    async def read_into(self, struct: Any) -> None:
        await super().read_into(struct)
        if isinstance(struct, Header):
            self.header_read.set()


async def cancel_after_the_header(server: HeaderWatchingServer) -> None:
    """Run ``WITH_LENGTH.read(server)`` and cancel it once it has the header."""

    async def read() -> None:
        await WITH_LENGTH.read(server)
        pytest.fail("the read returned, yet no body was sent")

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        await server.header_read.wait()
        tg.cancel_scope.cancel()  # the read is waiting for the body


def header(frame_id: int, length: int = 0, counter: int = 0) -> Header:
    return Header(frame_id, length, counter)


async def test_round_trip_with_length_field() -> None:
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            await WITH_LENGTH.write(server, Position((1.0, 2.0, 3.0)))
            await WITH_LENGTH.write(server, Status(7, b"ok"), header=Header(counter=41))
            await WITH_LENGTH.write(
                server, None, header=Header(counter=42), message_id=FrameId.PING
            )
            head, body = await WITH_LENGTH.read(client)
            assert (head.frame_id, head.length) == (1, ctypes.sizeof(Position))
            assert isinstance(body, Position) and list(body.xyz) == [1.0, 2.0, 3.0]
            head, body = await WITH_LENGTH.read(client)
            assert (head.frame_id, head.counter) == (2, 41)
            assert isinstance(body, Status) and (body.code, body.text) == (7, b"ok")
            head, body = await WITH_LENGTH.read(client)
            assert (head.frame_id, head.length, head.counter) == (3, 0, 42)
            assert body is None


async def test_round_trip_without_length_field() -> None:
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            for i in range(50):
                await NO_LENGTH.write(client, Position((i, 0.0, -i)))
            for i in range(50):
                head, body = await NO_LENGTH.read(server)
                assert head.frame_id == FrameId.POSITION and head.length == 0
                assert body.xyz[0] == i and body.xyz[2] == -i


async def test_length_may_include_the_header() -> None:
    dispatcher = StructDispatcher(
        Header,
        "frame_id",
        BODIES,
        length_field="length",
        length_includes_header=True,
    )
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            await dispatcher.write(client, Status(1, b"x"))
            await client.write_from(header(99, ctypes.sizeof(Header) + 5), Status())
            await dispatcher.write(client, None, message_id=3)
            head, body = await dispatcher.read(server)
            assert head.length == ctypes.sizeof(Header) + ctypes.sizeof(Status)
            with pytest.raises(UnknownMessageError) as info:
                await dispatcher.read(server)
            assert info.value.resynchronised
            assert len(info.value.data) == ctypes.sizeof(Header) + 5
            # The rest of that Status was not part of the unknown message.
            await server.readexactly(ctypes.sizeof(Status) - 5)
            head, body = await dispatcher.read(server)
            assert head.frame_id == 3 and body is None


async def test_unknown_id_is_skipped_with_a_length_field() -> None:
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            junk = b"\xde\xad\xbe\xef\x01"
            await client.write_from(header(99, len(junk), 5))
            await client.write(junk)
            await WITH_LENGTH.write(client, Position((4.0, 5.0, 6.0)))
            with pytest.raises(UnknownMessageError) as info:
                await WITH_LENGTH.read(server)
            error = info.value
            assert isinstance(error, ValueError)
            assert error.message_id == 99
            assert error.data == bytes(header(99, len(junk), 5)) + junk
            assert error.resynchronised
            assert "99" in str(error) and "skipped" in str(error)
            assert "63 00" in str(error)  # the header bytes, in hex
            # In step: the next message reads normally.
            _, body = await WITH_LENGTH.read(server)
            assert list(body.xyz) == [4.0, 5.0, 6.0]


async def test_unknown_id_without_a_length_field() -> None:
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            await client.write_from(header(77, 0, 1), Position())
            with pytest.raises(UnknownMessageError) as info:
                await NO_LENGTH.read(server)
            error = info.value
            assert error.message_id == 77
            assert error.data == bytes(header(77, 0, 1))
            assert not error.resynchronised
            assert "no length field" in str(error)
            assert "close the connection" in str(error)
            assert "known ids" in str(error)
            # Only the header was consumed.
            assert await server.readexactly(ctypes.sizeof(Position)) == bytes(
                Position()
            )


async def test_unknown_id_with_an_impossible_length_is_not_skipped() -> None:
    dispatcher = StructDispatcher(
        Header, "frame_id", BODIES, length_field="length", max_body_size=100
    )
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            await client.write_from(header(50, 60000))
            with pytest.raises(UnknownMessageError) as info:
                await dispatcher.read(server)
            assert not info.value.resynchronised
            assert "60000" in str(info.value)
            assert info.value.data == bytes(header(50, 60000))


async def test_length_mismatch() -> None:
    dispatcher = StructDispatcher(
        Header, "frame_id", BODIES, length_field="length", max_body_size=1000
    )
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            await client.write_from(header(FrameId.POSITION, 8), ctypes.c_double(1.5))
            await client.write_from(header(FrameId.PING, 2000))
            with pytest.raises(MessageLengthError) as info:
                await dispatcher.read(server)
            error = info.value
            assert error.resynchronised and (error.length, error.expected) == (8, 24)
            assert error.message_id == FrameId.POSITION
            assert error.data == bytes(header(1, 8)) + bytes(ctypes.c_double(1.5))
            assert "Position is 24 bytes" in str(error)
            with pytest.raises(MessageLengthError) as info:
                await dispatcher.read(server)
            assert not info.value.resynchronised
            assert info.value.expected == 0


async def test_peer_closes_mid_message() -> None:
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            await client.write_from(header(FrameId.POSITION, 24))
            await client.write(b"\x00" * 10)
            await client.close()
            with pytest.raises(IncompleteReadError) as info:
                await WITH_LENGTH.read(server)
            assert info.value.expected == ctypes.sizeof(Position)
            assert len(info.value.partial) == 10
            with pytest.raises(ConnectionError):
                await WITH_LENGTH.read(server)
    async with connected_pair() as (server, client):
        with anyio.fail_after(TIMEOUT):
            await client.write(b"\x01\x00\x18")
            await client.close()
            with pytest.raises(IncompleteReadError) as info:
                await WITH_LENGTH.read(server)
            assert info.value.expected == ctypes.sizeof(Header)


async def test_a_cancelled_read_keeps_the_header() -> None:
    async with counted_memory_pair() as (server, client, server_counter, _):
        with anyio.fail_after(TIMEOUT):
            await client.write_from(header(FrameId.STATUS, 16, 9))
            # The header is in the server's buffer: the read takes it at once.
            await server_counter.wait_received(ctypes.sizeof(Header))
            with anyio.move_on_after(0.05) as scope:
                await WITH_LENGTH.read(server)  # waits for the body
            assert scope.cancelled_caught
            await client.write_from(Status(3, b"resumed"))
            head, body = await WITH_LENGTH.read(server)
            assert head.counter == 9 and body.text == b"resumed"


async def test_a_cancelled_read_does_not_resume_on_a_new_connection() -> None:
    recorder = CallbackRecorder()
    async with HeaderWatchingServer(port=0, connect_callback=recorder) as server:
        async with Client("127.0.0.1", server.port) as first:
            assert await recorder.wait_for(1) == [True]
            with anyio.fail_after(TIMEOUT):
                await first.write_from(header(FrameId.STATUS, 16, 1))
                await cancel_after_the_header(server)
        assert await recorder.wait_for(2) == [True, False]
        async with Client("127.0.0.1", server.port) as second:
            assert await recorder.wait_for(3) == [True, False, True]
            with anyio.fail_after(TIMEOUT):
                await WITH_LENGTH.write(
                    second, Position((1.0, 1.0, 1.0)), header=Header(counter=2)
                )
                head, body = await WITH_LENGTH.read(server)
                assert head.counter == 2 and isinstance(body, Position)


async def test_write_checks_the_id() -> None:
    shared = StructDispatcher(Header, "frame_id", {1: Position, 2: Position, 3: None})
    async with connected_pair() as (server, client):
        with pytest.raises(ValueError, match="message_id is required"):
            await WITH_LENGTH.write(client, None)
        with pytest.raises(ValueError, match="no single message id"):
            await shared.write(client, Position())
        with pytest.raises(ValueError, match="no single message id"):
            await WITH_LENGTH.write(client, ctypes.c_int32(1))
        with pytest.raises(ValueError, match="not in bodies"):
            await WITH_LENGTH.write(client, Position(), message_id=12)
        with pytest.raises(ValueError, match="needs Status"):
            await WITH_LENGTH.write(client, Position(), message_id=2)
        with pytest.raises(ValueError, match="needs no body"):
            await WITH_LENGTH.write(client, Position(), message_id=3)
        with anyio.fail_after(TIMEOUT):
            await shared.write(client, Position((2.0, 0, 0)), message_id=2)
            head, body = await shared.read(server)
            assert head.frame_id == 2 and body.xyz[0] == 2.0


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="id_field='nope'"):
        StructDispatcher(Header, "nope", BODIES)
    with pytest.raises(ValueError, match="length_field='size'"):
        StructDispatcher(Header, "frame_id", BODIES, length_field="size")
    with pytest.raises(TypeError, match="header_type"):
        StructDispatcher(int, "frame_id", BODIES)  # type: ignore[type-var]
    with pytest.raises(TypeError, match=r"bodies\[1\]"):
        StructDispatcher(Header, "frame_id", {1: "Position"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="max_body_size"):
        StructDispatcher(Header, "frame_id", BODIES, max_body_size=-1)
    assert WITH_LENGTH.bodies == BODIES


def test_errors_pickle() -> None:
    error = UnknownMessageError("boom", 5, b"\x05\x00", True)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.message_id, copy.data, copy.resynchronised) == (5, b"\x05\x00", True)
    assert str(copy) == "boom"
    length_error = MessageLengthError("bad", 1, b"", False, 8, 24)
    copy2 = pickle.loads(pickle.dumps(length_error))
    assert (copy2.length, copy2.expected, copy2.resynchronised) == (8, 24, False)


class SlowStructServer(OneClientReadLoopServer):
    """Acknowledges each struct with a Status; counter 1 waits for ``gate``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = anyio.Event()
        self.got_slow = anyio.Event()
        self.slow_ended = anyio.Event()

    async def read_and_dispatch(self) -> None:
        head, _ = await WITH_LENGTH.read(self)
        if head.counter == 1:
            self.got_slow.set()
            try:
                await self.gate.wait()  # the command takes a while
            finally:
                self.slow_ended.set()
        await WITH_LENGTH.write(
            self, Status(0, b"done"), header=Header(counter=head.counter)
        )


async def test_a_late_struct_reply_never_reaches_the_next_client() -> None:
    recorder = CallbackRecorder()
    async with SlowStructServer(
        port=0, extra_client="replace", connect_callback=recorder
    ) as server:
        async with Client("127.0.0.1", server.port) as first:
            assert await recorder.next() is True
            with anyio.fail_after(TIMEOUT):
                await WITH_LENGTH.write(
                    first, Position((1.0, 2.0, 3.0)), header=Header(counter=1)
                )
                await server.got_slow.wait()
            async with Client("127.0.0.1", server.port) as second:
                assert await recorder.wait_for(3) == [True, False, True]
                with anyio.fail_after(TIMEOUT):
                    # Cancelled with its connection, before the gate opens.
                    await server.slow_ended.wait()
                    server.gate.set()
                    await WITH_LENGTH.write(
                        second, Position((4.0, 5.0, 6.0)), header=Header(counter=2)
                    )
                    head, body = await WITH_LENGTH.read(second)
                    assert head.counter == 2
                    assert isinstance(body, Status) and body.text == b"done"
