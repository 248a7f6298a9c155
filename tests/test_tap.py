"""The tap: a transparent proxy that forwards, shows and records messages."""

from __future__ import annotations

import errno
import importlib.util
import logging
import os
import pathlib
import random
import socket
import struct
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.abc import SocketAttribute

from anytcpip import Client, OneClientServer
from anytcpip.recording import Framing, Record, RecordingWriter, load
from anytcpip.testing import ReplayServer, Tap

TIMEOUT = 20  # a bound to turn a hang into a failure, not a speed target
EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


class Target:
    """A raw TCP server (the "controller") that hands out accepted streams."""

    def __init__(self, listener: anyio.abc.SocketListener) -> None:
        self.listener = listener
        self.port: int = listener.extra(SocketAttribute.local_port)

    async def accept(self) -> anyio.abc.SocketStream:
        with anyio.fail_after(TIMEOUT):
            return await self.listener.accept()


@asynccontextmanager
async def target() -> AsyncIterator[Target]:
    multi = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    async with multi:
        listener = multi.listeners[0]
        assert isinstance(listener, anyio.abc.SocketListener)
        yield Target(listener)


@asynccontextmanager
async def tapped(
    **kwargs: Any,
) -> AsyncIterator[tuple[Tap, anyio.abc.SocketStream, anyio.abc.SocketStream]]:
    """A target, a tap in front of it, and a raw client through the tap.

    Yields ``(tap, client, server)``: the client's stream and the target's
    accepted stream.
    """
    async with target() as controller:
        async with Tap("127.0.0.1", controller.port, **kwargs) as tap:
            with anyio.fail_after(TIMEOUT):
                client = await anyio.connect_tcp("127.0.0.1", tap.port)
            async with client:
                server = await controller.accept()
                async with server:
                    yield tap, client, server


async def receive_exactly(stream: anyio.abc.ByteReceiveStream, size: int) -> bytes:
    data = bytearray()
    with anyio.fail_after(TIMEOUT):
        while len(data) < size:
            data += await stream.receive()
    return bytes(data)


async def receive_until_eof(stream: anyio.abc.ByteReceiveStream) -> bytes:
    data = bytearray()
    with anyio.fail_after(TIMEOUT):
        while True:
            try:
                data += await stream.receive()
            except anyio.EndOfStream:
                return bytes(data)


def reset(stream: anyio.abc.SocketStream) -> None:
    """Arrange for closing ``stream`` to send a reset (RST)."""
    sock = stream.extra(SocketAttribute.raw_socket)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


# -- forwarding -----------------------------------------------------------------------


async def test_bytes_flow_both_ways_unchanged_and_in_order() -> None:
    rng = random.Random(16)
    up = bytes(rng.getrandbits(8) for _ in range(300_000))
    down = bytes(rng.getrandbits(8) for _ in range(200_000))
    records: list[Record] = []
    async with tapped(framing="raw", record=records) as (tap, client, server):
        async with anyio.create_task_group() as task_group:
            # Both directions at once, in uneven pieces.
            async def send(stream: anyio.abc.ByteSendStream, data: bytes) -> None:
                offset = 0
                while offset < len(data):
                    size = rng.choice([1, 7, 1000, 65536])
                    await stream.send(data[offset : offset + size])
                    offset += size

            task_group.start_soon(send, client, up)
            task_group.start_soon(send, server, down)
            assert await receive_exactly(server, len(up)) == up
            assert await receive_exactly(client, len(down)) == down
    # The raw recording holds every byte, in order.
    sent = b"".join(r.payload for r in records if r.direction == "c2s")
    received = b"".join(r.payload for r in records if r.direction == "s2c")
    assert (sent, received) == (up, down)
    assert tap.sessions == 1


async def test_lines_are_displayed_and_recorded_as_messages() -> None:
    shown: list[str] = []
    records: list[Record] = []
    async with tapped(display=shown.append, record=records) as (tap, client, server):
        # One line in three pieces, then two lines in one piece.
        for piece in (b"MOV", b"E 1", b".5\r\nSTA", b"TUS?\r\nheartbeat\r\n"):
            await client.send(piece)
        expected = b"MOVE 1.5\r\nSTATUS?\r\nheartbeat\r\n"
        assert await receive_exactly(server, len(expected)) == expected
        await server.send("réponse ✓\r\n".encode())
        await receive_exactly(client, len("réponse ✓\r\n".encode()))
    messages = [(r.direction, r.payload) for r in records if r.kind == "data"]
    assert messages == [
        ("c2s", b"MOVE 1.5\r\n"),
        ("c2s", b"STATUS?\r\n"),
        ("c2s", b"heartbeat\r\n"),
        ("s2c", "réponse ✓\r\n".encode()),
    ]
    assert [r.heartbeat for r in records if r.kind == "data"] == [0, 0, 1, 0]
    assert records[0].kind == "connect"
    text = "\n".join(shown)
    assert "client -> server: MOVE 1.5" in text
    assert "client -> server: STATUS?" in text
    assert "server -> client: réponse ✓" in text
    assert "client -> server: heartbeat" in text
    assert tap.header.framing.kind == "lines"


async def test_hide_heartbeats_hides_them_from_the_display_only() -> None:
    shown: list[str] = []
    records: list[Record] = []
    async with tapped(display=shown.append, record=records, hide_heartbeats=True) as (
        _,
        client,
        server,
    ):
        await client.send(b"heartbeat\r\nPING\r\n")
        assert await receive_exactly(server, 17) == b"heartbeat\r\nPING\r\n"
    assert not any("heartbeat" in line for line in shown)
    assert any("PING" in line for line in shown)
    assert [r.payload for r in records if r.heartbeat] == [b"heartbeat\r\n"]


async def test_json_is_pretty_printed() -> None:
    shown: list[str] = []
    async with tapped(display=shown.append, framing="json") as (_, client, server):
        sent = b'{"cmd": "move", "axes": [1, 2]}\r\nnot json\r\n'
        await client.send(sent)
        assert await receive_exactly(server, len(sent)) == sent
    text = "\n".join(shown)
    assert '"cmd": "move",\n  "axes": [\n    1,\n    2\n  ]' in text
    assert "'not json' (not JSON)" in text


async def test_frames_use_the_length_prefix_of_write_frame() -> None:
    records: list[Record] = []
    shown: list[str] = []
    async with OneClientServer(port=0) as controller:
        async with Tap(
            "127.0.0.1",
            controller.port,
            framing="frames",
            record=records,
            display=shown.append,
        ) as tap:
            async with Client("127.0.0.1", tap.port) as client:
                with anyio.fail_after(TIMEOUT):
                    await controller.wait_connected()
                    await client.write_frame(b"\x00\x01binary")
                    await client.write_frame(b"")
                    assert await controller.read_frame() == b"\x00\x01binary"
                    assert await controller.read_frame() == b""
                    await controller.write_frame(b"ok")
                    assert await client.read_frame() == b"ok"
    data = [r.payload for r in records if r.kind == "data"]
    assert data == [
        b"\x00\x00\x00\x08\x00\x01binary",
        b"\x00\x00\x00\x00",
        b"\x00\x00\x00\x02ok",
    ]
    assert "00 00 00 08 00 01 62 69" in "\n".join(shown)  # a hex dump


async def test_extra_clients_are_rejected_while_one_is_served() -> None:
    async with tapped() as (tap, client, server):
        with anyio.fail_after(TIMEOUT):
            extra = await anyio.connect_tcp("127.0.0.1", tap.port)
            async with extra:
                # Closed at once, with nothing sent.
                assert await receive_until_eof(extra) == b""
        assert tap.rejected_count == 1
        # The served client is unaffected.
        await client.send(b"still here\r\n")
        assert await receive_exactly(server, 12) == b"still here\r\n"


async def test_the_next_client_gets_a_new_target_connection() -> None:
    records: list[Record] = []
    async with target() as controller:
        async with Tap("127.0.0.1", controller.port, record=records) as tap:
            for number in (1, 2):
                client = await anyio.connect_tcp("127.0.0.1", tap.port)
                async with client:
                    server = await controller.accept()
                    async with server:
                        await client.send(f"session {number}\r\n".encode())
                        await receive_exactly(server, 11)
                        await client.send_eof()
                        assert await receive_until_eof(server) == b""
                with anyio.fail_after(TIMEOUT):
                    await tap.wait_sessions_ended(number)
    sessions = [(r.session, r.payload) for r in records if r.kind == "data"]
    assert sessions == [(1, b"session 1\r\n"), (2, b"session 2\r\n")]


# -- ends: close and reset ------------------------------------------------------------


async def test_client_close_propagates_as_a_half_close() -> None:
    records: list[Record] = []
    async with tapped(record=records) as (tap, client, server):
        await client.send(b"last words\r\n")
        await client.send_eof()
        # The target sees the data, then EOF ...
        assert await receive_until_eof(server) == b"last words\r\n"
        # ... and can still answer: the other direction stays open.
        await server.send(b"answer after EOF\r\n")
        assert await receive_exactly(client, 18) == b"answer after EOF\r\n"
        await server.aclose()
        assert await receive_until_eof(client) == b""
        with anyio.fail_after(TIMEOUT):
            await tap.wait_sessions_ended(1)
    kinds = [(r.kind, r.direction) for r in records if r.kind != "data"]
    assert kinds == [("connect", None), ("eof", "c2s"), ("eof", "s2c"), ("close", None)]


async def test_server_close_propagates_as_a_half_close() -> None:
    async with tapped() as (tap, client, server):
        await server.send(b"bye\r\n")
        await server.send_eof()
        assert await receive_until_eof(client) == b"bye\r\n"
        # The client can still talk: the other direction stays open.
        await client.send(b"ok, bye\r\n")
        await client.send_eof()
        assert await receive_until_eof(server) == b"ok, bye\r\n"
        with anyio.fail_after(TIMEOUT):
            await tap.wait_sessions_ended(1)


async def test_client_reset_propagates_as_a_reset() -> None:
    records: list[Record] = []
    async with tapped(record=records) as (tap, client, server):
        await client.send(b"x\r\n")
        assert await receive_exactly(server, 3) == b"x\r\n"
        reset(client)
        await client.aclose()
        with anyio.fail_after(TIMEOUT), pytest.raises(anyio.BrokenResourceError):
            while await server.receive():
                pass
        with anyio.fail_after(TIMEOUT):
            await tap.wait_sessions_ended(1)
    assert ("reset", "c2s") in [(r.kind, r.direction) for r in records]


async def test_server_reset_propagates_as_a_reset() -> None:
    records: list[Record] = []
    async with tapped(record=records) as (tap, client, server):
        await server.send(b"y\r\n")
        assert await receive_exactly(client, 3) == b"y\r\n"
        reset(server)
        await server.aclose()
        with anyio.fail_after(TIMEOUT), pytest.raises(anyio.BrokenResourceError):
            while await client.receive():
                pass
        with anyio.fail_after(TIMEOUT):
            await tap.wait_sessions_ended(1)
    assert ("reset", "s2c") in [(r.kind, r.direction) for r in records]


async def test_anytcpip_client_sees_the_reset_as_connection_lost() -> None:
    async with target() as controller:
        async with Tap("127.0.0.1", controller.port) as tap:
            async with Client("127.0.0.1", tap.port) as client:
                server = await controller.accept()
                reset(server)
                await server.aclose()
                with anyio.fail_after(TIMEOUT), pytest.raises(ConnectionError):
                    await client.read_str()
                assert not client.connected and client.should_be_connected


async def test_an_unreachable_target_resets_the_client_and_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    errors: list[OSError] = []
    async with Tap("127.0.0.1", port, on_target_error=errors.append) as tap:
        with caplog.at_level(logging.ERROR, logger="anytcpip.tap"):
            # Reset: seen by the receive (or, if it is quick, by the connect).
            with (
                anyio.fail_after(TIMEOUT),
                pytest.raises((anyio.BrokenResourceError, OSError)),
            ):
                client = await anyio.connect_tcp("127.0.0.1", tap.port)
                async with client:
                    while await client.receive():
                        pass
            with anyio.fail_after(TIMEOUT):
                await tap.wait_sessions_ended(1)
    assert len(errors) == 1 and isinstance(errors[0], ConnectionRefusedError)
    assert tap.target_errors == errors
    assert f"cannot connect to target 127.0.0.1:{port}" in caplog.text


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="port"):
        Tap("127.0.0.1", 70000)
    with pytest.raises(ValueError, match="connect_timeout"):
        Tap("127.0.0.1", 1, connect_timeout=0)
    with pytest.raises(ValueError, match="framing kind"):
        Tap("127.0.0.1", 1, framing="morse")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="record="):
        _ = Tap("127.0.0.1", 1).recording


async def test_records_to_a_file_as_it_goes(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "session.jsonl"
    async with tapped(record=path, framing="json") as (_, client, server):
        await client.send(b'{"cmd": "park"}\r\n')
        await receive_exactly(server, 17)
        await server.send(b'{"ok": true}\r\n')
        await receive_exactly(client, 14)
        # Written before the session ends: a crash now would keep it.
        recording = load(path)
        assert recording.messages("c2s")[0].payload == b'{"cmd": "park"}\r\n'
    recording = load(path)
    assert recording.framing == Framing("json")
    assert recording.records[-1].kind == "close"
    assert not recording.truncated


# -- the story: record the hexapod link, replay it ----------------------------------


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "tap_record_replay", EXAMPLES / "tap_record_replay.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_a_replay_answers_the_hexapod_client_as_the_controller_did(
    tmp_path: pathlib.Path,
) -> None:
    example = load_example()
    hexapod = example.sys.modules["hexapod_controller"]
    framing = example.HEXAPOD_FRAMING
    commands: list[Record] = []
    telemetry: list[Record] = []
    async with hexapod.MockHexapod() as controller:
        command_tap = Tap(
            "127.0.0.1", controller.commands.port, framing=framing, record=commands
        )
        telemetry_tap = Tap(
            "127.0.0.1", controller.telemetry.port, framing=framing, record=telemetry
        )
        async with command_tap, telemetry_tap:
            async with hexapod.HexapodClient(
                "127.0.0.1", command_tap.port, telemetry_tap.port
            ) as client:
                from_controller = await example.drive(client)
            with anyio.fail_after(TIMEOUT):
                await command_tap.wait_sessions_ended(1)
                await telemetry_tap.wait_sessions_ended(1)
        command_recording = command_tap.recording
        telemetry_recording = telemetry_tap.recording
    assert len(command_recording.messages("c2s")) == 4
    async with (
        ReplayServer(command_recording, key=example.COMMAND_KEY) as command_replay,
        ReplayServer(telemetry_recording) as telemetry_replay,
    ):
        async with hexapod.HexapodClient(
            "127.0.0.1", command_replay.port, telemetry_replay.port
        ) as client:
            from_replay = await example.drive(client)
        assert command_replay.unknown_commands == []
    assert from_replay == from_controller
    assert "MOVE rejected: not enabled" in from_replay
    assert from_replay[-1] == "STOP acknowledged"


def test_example_script() -> None:
    for backend in ("asyncio", "trio"):
        result = subprocess.run(
            [
                sys.executable,
                str(EXAMPLES / "tap_record_replay.py"),
                "demo",
                "--backend",
                backend,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=EXAMPLES.parent,
            env={**os.environ, "PYTHONPATH": str(EXAMPLES.parent / "src")},
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.startswith(f"backend: {backend}\n")
        assert "recorded 4 commands" in result.stdout
        assert "replay: motion done at [1.0, 2.0, 3.0, 0.5, 0.0, 0.0]" in result.stdout
        assert result.stdout.rstrip().endswith(
            "the replay answered exactly as the controller did"
        )


async def test_an_unresolvable_target_fails_on_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_such_host(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(anyio, "getaddrinfo", no_such_host)  # no DNS query
    message = "cannot resolve target no.such.host:1: Name or service not known"
    with pytest.raises(socket.gaierror, match=message):
        async with Tap("no.such.host", 1):
            pass


async def test_a_failing_display_or_recording_never_stops_forwarding(
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: pathlib.Path,
) -> None:
    def broken_display(text: str) -> None:
        raise BrokenPipeError("stdout closed")

    def disk_full(self: RecordingWriter, record: Record) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    record = tmp_path / "r.jsonl"
    async with tapped(display=broken_display, record=record) as (tap, client, server):
        monkeypatch.setattr(RecordingWriter, "write", disk_full)
        for _ in range(3):
            await client.send(b"still forwarded\r\n")
            assert await receive_exactly(server, 17) == b"still forwarded\r\n"
        assert tap.display is None
        assert isinstance(tap.record_error, OSError)
    assert "display stopped (forwarding goes on)" in caplog.text
    assert "recording stopped (forwarding goes on)" in caplog.text
    assert load(record).header.target == tap.target  # what was written stays


async def test_a_recording_that_cannot_be_written_fails_on_entry(
    tmp_path: pathlib.Path,
) -> None:
    with pytest.raises(OSError):
        async with Tap("127.0.0.1", 1, record=tmp_path / "no" / "such" / "dir.jsonl"):
            pass


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6")
async def test_ipv6_loopback() -> None:
    try:
        multi = await anyio.create_tcp_listener(local_host="::1", local_port=0)
    except OSError:
        pytest.skip("cannot bind ::1")
    async with multi:
        listener = multi.listeners[0]
        assert isinstance(listener, anyio.abc.SocketListener)
        port = listener.extra(SocketAttribute.local_port)
        async with Tap("::1", port, host="::1") as tap:
            assert tap.target == f"[::1]:{port}"
            client = await anyio.connect_tcp("::1", tap.port)
            async with client:
                server = await listener.accept()
                async with server:
                    await client.send(b"v6\r\n")
                    assert await receive_exactly(server, 4) == b"v6\r\n"


def test_latency_benchmark_runs() -> None:
    """The benchmark works (a smoke run: its figures mean nothing here)."""
    script = EXAMPLES.parent / "benchmarks" / "tap_latency.py"
    result = subprocess.run(
        [sys.executable, str(script), "--trials", "20", "--backends", "asyncio"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]  # 1: target missed
    assert "added/msg" in result.stdout
    assert result.stdout.splitlines()[1].startswith("asyncio ")


async def test_a_tap_starts_once() -> None:
    async with target() as controller:
        tap = Tap("127.0.0.1", controller.port)
        async with tap:
            pass
        with pytest.raises(RuntimeError, match="once"):
            async with tap:
                pass
