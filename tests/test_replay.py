"""ReplayServer: a recording served back as a mock controller."""

from __future__ import annotations

import logging
import pathlib

import anyio
import pytest

from anytcpip import Client
from anytcpip.recording import (
    Direction,
    Framing,
    Header,
    Record,
    Recording,
    RecordingWriter,
)
from anytcpip.testing import ReplayServer, ignore_json_fields, regex_key

TIMEOUT = 20


def recording(
    *events: tuple[float, Direction, bytes], framing: Framing | None = None
) -> Recording:
    """A one-session recording of ``(time, direction, message)`` events."""
    framing = framing or Framing()
    records = [Record(0.0, "connect", client="127.0.0.1:1")]
    records += [Record(t, "data", d, payload) for t, d, payload in events]
    return Recording(Header.now(framing), records)


DIALOGUE = recording(
    (0.01, "s2c", b"WELCOME\r\n"),
    (0.10, "c2s", b"STATUS?\r\n"),
    (0.11, "s2c", b"IDLE\r\n"),
    (0.20, "c2s", b"MOVE 1\r\n"),
    (0.21, "s2c", b"OK\r\n"),
    (0.22, "s2c", b"DONE\r\n"),
    (0.30, "c2s", b"STATUS?\r\n"),
    (0.31, "s2c", b"AT 1\r\n"),
)


async def test_answers_each_command_as_recorded() -> None:
    async with ReplayServer(DIALOGUE, timing="fast") as server:
        async with Client("127.0.0.1", server.port) as client:
            with anyio.fail_after(TIMEOUT):
                assert await client.read_str() == "WELCOME"  # unsolicited
                await client.write_str("MOVE 1")
                assert await client.read_str() == "OK"
                assert await client.read_str() == "DONE"
                # Sent several times: the answers in order, then the last again.
                for expected in ("IDLE", "AT 1", "AT 1"):
                    await client.write_str("STATUS?")
                    assert await client.read_str() == expected
        assert server.unknown_commands == []
        assert server.received == [b"MOVE 1\r\n", *[b"STATUS?\r\n"] * 3]


async def test_each_client_gets_a_fresh_replay() -> None:
    async with ReplayServer(DIALOGUE, timing="fast") as server:
        for _ in range(2):
            async with Client("127.0.0.1", server.port) as client:
                with anyio.fail_after(TIMEOUT):
                    assert await client.read_str() == "WELCOME"
                    await client.write_str("STATUS?")
                    assert await client.read_str() == "IDLE"


async def test_unknown_command_is_logged_and_gets_no_reply(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="anytcpip")
    async with ReplayServer(DIALOGUE, timing="fast") as server:
        async with Client("127.0.0.1", server.port) as client:
            with anyio.fail_after(TIMEOUT):
                assert await client.read_str() == "WELCOME"
                await client.write_str("DANCE")
                await client.write_str("STATUS?")  # the next reply is this one's
                assert await client.read_str() == "IDLE"
        assert server.unknown_commands == [b"DANCE\r\n"]
    assert "unknown command b'DANCE\\r\\n': not in the recording; no reply" in (
        caplog.text
    )


async def test_unknown_command_gets_the_configured_reply() -> None:
    async with ReplayServer(DIALOGUE, timing="fast", unknown_reply=b"ERR\r\n") as srv:
        async with Client("127.0.0.1", srv.port) as client:
            with anyio.fail_after(TIMEOUT):
                assert await client.read_str() == "WELCOME"
                await client.write_str("DANCE")
                assert await client.read_str() == "ERR"


async def test_a_key_function_ignores_a_sequence_number() -> None:
    framing = Framing("json")
    rec = recording(
        (0.1, "c2s", b'{"cmd": "park", "seq": 1}\r\n'),
        (0.2, "s2c", b'{"ack": "park"}\r\n'),
        framing=framing,
    )
    async with ReplayServer(rec, key=ignore_json_fields("seq"), timing="fast") as srv:
        async with Client("127.0.0.1", srv.port) as client:
            with anyio.fail_after(TIMEOUT):
                await client.write_json({"seq": 42, "cmd": "park"})
                assert await client.read_json() == {"ack": "park"}
    # Without the key function, the sequence number makes it unknown.
    async with ReplayServer(rec, timing="fast", unknown_reply=b"?\r\n") as srv:
        async with Client("127.0.0.1", srv.port) as client:
            with anyio.fail_after(TIMEOUT):
                await client.write_json({"seq": 42, "cmd": "park"})
                assert await client.read_str() == "?"


async def test_a_regex_key() -> None:
    rec = recording((0.1, "c2s", b"GET TEMP 17\r\n"), (0.2, "s2c", b"21.5\r\n"))
    async with ReplayServer(rec, key=regex_key(r"^(\w+ \w+)"), timing="fast") as srv:
        async with Client("127.0.0.1", srv.port) as client:
            with anyio.fail_after(TIMEOUT):
                await client.write_str("GET TEMP 99")
                assert await client.read_str() == "21.5"


async def test_recorded_timing_keeps_the_delays() -> None:
    rec = recording(
        (0.3, "s2c", b"TELEMETRY\r\n"),
        (0.4, "c2s", b"SLOW\r\n"),
        (0.7, "s2c", b"DONE\r\n"),
    )
    async with ReplayServer(rec) as server:
        async with Client("127.0.0.1", server.port) as client:
            with anyio.fail_after(TIMEOUT):
                start = anyio.current_time()
                assert await client.read_str() == "TELEMETRY"
                # No earlier than recorded after the connection.
                assert anyio.current_time() - start >= 0.25
                sent = anyio.current_time()
                await client.write_str("SLOW")
                assert await client.read_str() == "DONE"
                assert anyio.current_time() - sent >= 0.25


async def test_unsolicited_messages_keep_flowing_between_commands() -> None:
    rec = recording(
        (0.00, "s2c", b"T 0\r\n"),
        (0.05, "c2s", b"PING\r\n"),
        (0.06, "s2c", b"PONG\r\n"),
        (0.10, "s2c", b"T 1\r\n"),
        (0.20, "s2c", b"T 2\r\n"),
        (0.21, "s2c", b"heartbeat\r\n"),
    )
    is_telemetry = regex_key(r"^T ")
    async with ReplayServer(
        rec, timing="fast", unsolicited=lambda m: is_telemetry(m) != m
    ) as server:
        assert [r.payload for r in server.script.unsolicited] == [
            b"T 0\r\n",
            b"T 1\r\n",
            b"T 2\r\n",
            b"heartbeat\r\n",
        ]
        async with Client("127.0.0.1", server.port) as client:
            with anyio.fail_after(TIMEOUT):
                for expected in ("T 0", "T 1", "T 2", "heartbeat"):
                    assert await client.read_str() == expected
                await client.write_str("PING")
                assert await client.read_str() == "PONG"


async def test_client_heartbeats_are_not_commands() -> None:
    async with ReplayServer(DIALOGUE, timing="fast") as server:
        async with Client("127.0.0.1", server.port) as client:
            with anyio.fail_after(TIMEOUT):
                assert await client.read_str() == "WELCOME"
                await client.write(b"heartbeat\r\n")
                await client.write_str("STATUS?")
                assert await client.read_str() == "IDLE"
        assert server.unknown_commands == []


async def test_a_recorded_close_is_replayed() -> None:
    rec = recording((0.1, "c2s", b"QUIT\r\n"), (0.2, "s2c", b"BYE\r\n"))
    rec.records.append(Record(0.3, "eof", "s2c"))
    async with ReplayServer(rec, timing="fast") as server:
        async with Client("127.0.0.1", server.port) as client:
            with anyio.fail_after(TIMEOUT):
                await client.write_str("QUIT")
                assert await client.read_str() == "BYE"
                with pytest.raises(ConnectionError):
                    await client.read_str()


async def test_frames(tmp_path: pathlib.Path) -> None:
    framing = Framing("frames")
    rec = recording(
        (0.1, "c2s", b"\0\0\0\2hi"), (0.2, "s2c", b"\0\0\0\3yo!"), framing=framing
    )
    path = tmp_path / "frames.jsonl"
    with RecordingWriter(path, rec.header) as writer:
        writer.write_all(rec.records)
    async with ReplayServer(path, timing="fast") as server:  # from a file
        async with Client("127.0.0.1", server.port) as client:
            with anyio.fail_after(TIMEOUT):
                await client.write_frame(b"hi")
                assert await client.read_frame() == b"yo!"


async def test_raw_chunks() -> None:
    rec = recording(
        (0.1, "c2s", b"\x01\x02"), (0.2, "s2c", b"\x03"), framing=Framing("raw")
    )
    async with ReplayServer(rec, timing="fast") as server:
        async with Client("127.0.0.1", server.port) as client:
            with anyio.fail_after(TIMEOUT):
                await client.write(b"\x01\x02")
                assert await client.readexactly(1) == b"\x03"


async def test_answers_never_reach_the_next_client() -> None:
    rec = recording((0.1, "c2s", b"SLOW\r\n"), (0.6, "s2c", b"LATE\r\n"))
    rec.records.append(Record(0.7, "data", "c2s", b"FAST\r\n"))
    rec.records.append(Record(0.71, "data", "s2c", b"QUICK\r\n"))
    async with ReplayServer(rec) as server:
        async with Client("127.0.0.1", server.port) as client:
            await client.write_str("SLOW")
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
        async with Client("127.0.0.1", server.port) as client:
            with anyio.fail_after(TIMEOUT):
                await server.wait_connected()
                # LATE is due now, after the first client left: never sent.
                await anyio.sleep(0.7)
                await client.write_str("FAST")
                assert await client.read_str() == "QUICK"


def test_sessions_and_arguments() -> None:
    rec = recording((0.1, "c2s", b"A\r\n"), (0.2, "s2c", b"B\r\n"))
    rec.records += [
        Record(1.0, "connect", session=2),
        Record(1.1, "data", "c2s", b"C\r\n", session=2),
        Record(1.2, "data", "s2c", b"D\r\n", session=2),
    ]
    assert list(ReplayServer(rec).script.answers) == [b"A\r\n"]
    second = ReplayServer(rec, session=2).script
    assert second.answers[b"C\r\n"][0][0].payload == b"D\r\n"
    assert second.answers[b"C\r\n"][0][0].delay == pytest.approx(0.1)
    with pytest.raises(ValueError, match="no session 3"):
        ReplayServer(rec, session=3)
    with pytest.raises(ValueError, match="timing"):
        ReplayServer(rec, timing="slow")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unknown_reply"):
        ReplayServer(rec, unknown_reply=42)  # type: ignore[arg-type]
    assert ReplayServer(rec, unknown_reply="ERR").unknown_reply == b"ERR\r\n"


async def test_a_recorded_reset_is_replayed_as_a_reset() -> None:
    rec = recording((0.1, "c2s", b"CRASH\r\n"), (0.2, "s2c", b"ARGH\r\n"))
    rec.records.append(Record(0.3, "reset", "s2c"))
    async with ReplayServer(rec, timing="fast") as server:
        stream = await anyio.connect_tcp("127.0.0.1", server.port)
        async with stream:
            await stream.send(b"CRASH\r\n")
            received = b""
            with anyio.fail_after(TIMEOUT), pytest.raises(anyio.BrokenResourceError):
                while True:
                    received += await stream.receive()
            assert received == b"ARGH\r\n"
