"""``anytcpip tap`` and ``anytcpip replay``: exit codes, errors, sessions, a kill."""

from __future__ import annotations

import pathlib
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
import pytest

from anytcpip._cli import main
from anytcpip.recording import Framing, Header, Record, RecordingWriter, load

WAIT = 30  # seconds: a bound on every wait, not a speed target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "anytcpip", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(process: subprocess.Popen[str], timeout: float = WAIT) -> str:
    """The next line of the process's stdout, or fail after ``timeout``."""
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    assert ready, f"no output within {timeout} s"
    return process.stdout.readline()


def port_of(line: str) -> int:
    """The port in "... on 127.0.0.1:PORT" or "... on 127.0.0.1:PORT, ..."."""
    address = line.split(" on ", 1)[1].split(",")[0].split()[0]
    return int(address.rsplit(":", 1)[1])


@contextmanager
def running(*args: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Run ``anytcpip ARGS``; yield it and the port from its first line."""
    process = start(*args)
    try:
        line = read_line(process)
        assert " on 127.0.0.1:" in line, (line, process.stderr)
        yield process, port_of(line)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=WAIT)


@contextmanager
def echo_server() -> Iterator[int]:
    """A plain socket echo server for one connection at a time."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(WAIT)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def exchange(port: int, *messages: bytes) -> list[bytes]:
    """Connect, send each message and read its echo; return the echoes."""
    echoes = []
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        for message in messages:
            sock.sendall(message)
            data = b""
            while len(data) < len(message):
                data += sock.recv(65536)
            echoes.append(data)
    return echoes


def expect_reset(port: int) -> None:
    """Connect to ``port`` and expect the connection to be reset."""
    with pytest.raises(ConnectionResetError):  # from connect() or from recv()
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
            sock.recv(1)


# -- help and arguments ---------------------------------------------------------------


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command, words in (
        ("tap", ["LISTEN_PORT", "TARGET_HOST", "--record", "--hide-heartbeats"]),
        ("replay", ["FILE", "--timing", "--unknown-reply", "--ignore-json-field"]),
    ):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0
        out = capsys.readouterr().out
        for word in [*words, "--framing" if command == "tap" else "--port"]:
            assert word in out, (command, word)


@pytest.mark.parametrize(
    "argv",
    [
        ["tap"],
        ["tap", "0", "127.0.0.1"],
        ["tap", "99999", "127.0.0.1", "1"],
        ["tap", "0", "127.0.0.1", "1", "--framing", "morse"],
        ["tap", "0", "127.0.0.1", "1", "--encoding", "klingon"],
        ["tap", "0", "127.0.0.1", "1", "--prefix", "3"],
        ["replay"],
        ["replay", "f.jsonl", "--timing", "slow"],
        ["replay", "f.jsonl", "--ignore-bytes", "8-16"],
        ["replay", "f.jsonl", "--key-regex", "("],
        ["replay", "f.jsonl", "--ignore-json-field", "a", "--key-regex", "b"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


# -- tap ------------------------------------------------------------------------


def test_tap_a_refused_target_exits_1_with_one_line() -> None:
    target = free_port()
    with running("tap", "0", "127.0.0.1", str(target)) as (process, port):
        # The client is reset, as the target refused (so fast, at times,
        # that connect() itself reports it).
        expect_reset(port)
        _, err = process.communicate(timeout=WAIT)
    assert process.returncode == 1, err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"anytcpip tap: error: cannot connect to target 127.0.0.1:{target}: "
        "Connection refused"
    )


def test_tap_keep_going_survives_a_refused_target() -> None:
    target = free_port()
    with running("tap", "0", "127.0.0.1", str(target), "--keep-going") as (
        process,
        port,
    ):
        for _ in range(2):
            expect_reset(port)
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=WAIT)
    assert process.returncode == 0, err
    assert err.count("cannot connect to target") == 2


def test_tap_on_a_busy_port_exits_1() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "anytcpip", "tap", str(port), "127.0.0.1", "1"],
            capture_output=True,
            text=True,
            timeout=WAIT,
        )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"anytcpip tap: error: tap: cannot listen on 127.0.0.1:{port}: "
        "Address already in use"
    )


@pytest.mark.parametrize(("signum", "status"), [("SIGINT", 130), ("SIGTERM", 0)])
def test_tap_stops_on_signals(signum: str, status: int) -> None:
    with echo_server() as target:
        with running("tap", "0", "127.0.0.1", str(target)) as (process, _):
            process.send_signal(getattr(signal, signum))
            _, err = process.communicate(timeout=WAIT)
    assert process.returncode == status, err
    assert "Traceback" not in err
    assert err.rstrip().endswith("stopped")


@pytest.mark.parametrize("backend", ["asyncio", "trio", "uvloop"])
def test_tap_once_shows_and_records_a_session(
    backend: str, tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "session.jsonl"
    with echo_server() as target:
        args = ["tap", "0", "127.0.0.1", str(target), "--record", str(path)]
        with running(*args, "--once", "--backend", backend) as (process, port):
            assert exchange(port, b"hello\r\n", b"heartbeat\r\n") == [
                b"hello\r\n",
                b"heartbeat\r\n",
            ]
            out, err = process.communicate(timeout=WAIT)
    assert process.returncode == 0, err
    assert "client -> server: hello" in out
    assert "server -> client: hello" in out
    assert "server -> client: heartbeat" in out
    recording = load(path)
    assert [(r.direction, r.payload) for r in recording.messages()] == [
        ("c2s", b"hello\r\n"),
        ("s2c", b"hello\r\n"),
        ("c2s", b"heartbeat\r\n"),
        ("s2c", b"heartbeat\r\n"),
    ]
    assert recording.header.target == f"127.0.0.1:{target}"


def test_tap_hide_heartbeats_and_json(tmp_path: pathlib.Path) -> None:
    with echo_server() as target:
        args = ["tap", "0", "127.0.0.1", str(target), "--framing", "json"]
        with running(*args, "--once", "--hide-heartbeats") as (process, port):
            exchange(port, b'{"cmd": "park"}\r\n', b"heartbeat\r\n")
            out, _ = process.communicate(timeout=WAIT)
    assert process.returncode == 0
    assert '  "cmd": "park"' in out
    assert "heartbeat" not in out


def test_a_killed_recording_still_loads(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "killed.jsonl"
    with echo_server() as target:
        args = ["tap", "0", "127.0.0.1", str(target), "--record", str(path)]
        with running(*args, "--quiet") as (process, port):
            with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
                for number in range(50):
                    message = f"message {number}\r\n".encode()
                    sock.sendall(message)
                    echoed = b""
                    while len(echoed) < len(message):
                        echoed += sock.recv(65536)
                # Mid-session, with the client still connected: SIGKILL.
                process.kill()
                process.wait(timeout=WAIT)
    assert process.returncode == -signal.SIGKILL
    recording = load(path)
    sent = [r.payload for r in recording.messages("c2s")]
    # Each message was recorded before its echo could come back, except
    # possibly the echo of the very last one.
    assert sent[:49] == [f"message {n}\r\n".encode() for n in range(49)]
    assert len(recording.messages("s2c")) >= 49
    assert recording.records[-1].kind == "data"  # no close: it was killed
    # A kill in the middle of a write leaves half a line: still loads.
    with path.open("ab") as file:
        file.write(b'{"t": 9.0, "kind": "da')
    assert load(path).records == recording.records
    assert load(path).truncated


# -- replay ---------------------------------------------------------------------


def write_recording(path: pathlib.Path, framing: Framing | None = None) -> None:
    with RecordingWriter(path, Header.now(framing or Framing())) as writer:
        writer.write_all(
            [
                Record(0.0, "connect", client="127.0.0.1:1"),
                Record(0.1, "data", "c2s", b'{"cmd": "status", "seq": 1}\r\n'),
                Record(0.2, "data", "s2c", b'{"state": "idle"}\r\n'),
                Record(0.3, "close"),
            ]
        )


def test_replay_a_missing_file_exits_1(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "missing.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "anytcpip", "replay", str(missing)],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"anytcpip replay: error: cannot read {missing}: No such file or directory"
    )


def test_replay_a_file_that_is_not_a_recording_exits_1(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some notes\n")
    assert main(["replay", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        f"anytcpip replay: error: {path}, line 1: not JSON (Expecting value)"
    )


def test_replay_a_missing_session_exits_1(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.jsonl"
    write_recording(path)
    assert main(["replay", str(path), "--session", "7"]) == 1
    assert "the recording has no session 7" in capsys.readouterr().err


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_replay_once_answers_as_recorded(backend: str, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "r.jsonl"
    write_recording(path)
    args = ["replay", str(path), "--port", "0", "--ignore-json-field", "seq"]
    args += ["--unknown-reply", "?", "--once", "--backend", backend]
    with running(*args) as (process, port):
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
            sock.sendall(b'{"seq": 99, "cmd": "status"}\r\n')
            reply = b""
            while not reply.endswith(b"\r\n"):
                reply += sock.recv(65536)
            assert reply == b'{"state": "idle"}\r\n'
            sock.sendall(b'{"cmd": "dance"}\r\n')
            assert sock.recv(65536) == b"?\r\n"
        _, err = process.communicate(timeout=WAIT)
    assert process.returncode == 0, err
    assert "unknown command" in err and "dance" in err


def test_replay_stops_with_130_on_ctrl_c(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "r.jsonl"
    write_recording(path)
    with running("replay", str(path)) as (process, _):
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=WAIT)
    assert process.returncode == 130, err
    assert err.rstrip().endswith("stopped")


def test_replay_unknown_reply_impossible_for_a_header_framing(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "r.jsonl"
    write_recording(path, Framing("frames", prefix=2, length_offset=2, header_size=8))
    assert main(["replay", str(path), "--unknown-reply", "x"]) == 1
    assert "--unknown-reply: cannot build a message" in capsys.readouterr().err


def test_tap_an_unresolvable_target_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def no_such_host(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(anyio, "getaddrinfo", no_such_host)  # no DNS query
    assert main(["tap", "0", "no.such.host", "1"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "anytcpip tap: error: cannot resolve target no.such.host:1: "
        "Name or service not known"
    )


def test_tap_a_recording_that_cannot_be_written_exits_1(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "no" / "such" / "dir.jsonl"
    assert main(["tap", "0", "127.0.0.1", "1", "--record", str(path)]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"anytcpip tap: error: tap: cannot write the recording {path}: "
        "No such file or directory"
    )
