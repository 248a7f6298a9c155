"""The anytcpip command: every subcommand, its exit codes and its output."""

from __future__ import annotations

import pathlib
import re
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from anytcpip import __version__, blocking
from anytcpip._cli import build_parser, main

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anytcpip", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("backend", ["asyncio", "trio", "uvloop"])
def test_demo(backend: str) -> None:
    result = run("demo", "--backend", backend)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"demo on {backend}" in out
    assert "got 'HELLO, CONTROLLER'" in out
    assert "{'ack': 'done', 'position': 12.5}" in out
    assert "got counter 8" in out
    assert out.count("callback:") == 4
    assert "round trips/s" in out


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert __version__ in capsys.readouterr().out
    for command in ("demo", "serve", "send"):
        with pytest.raises(SystemExit) as info:
            main([command, "--help"])
        assert info.value.code == 0
        assert "--backend" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["fly"],
        ["send", "127.0.0.1"],
        ["send", "127.0.0.1", "99999", "x"],
        ["send", "127.0.0.1", "1", "x", "--timeout", "0"],
        ["send", "127.0.0.1", "1", "x", "--replies", "-1"],
        ["serve", "--echo", "--json-echo"],
        ["demo", "--backend", "curio"],
    ],
)
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["send", "127.0.0.1", "x", "hi"], "argument PORT: not a port number: 'x'"),
        (["serve", "--port", "-1"], "argument --port: must be in 0..65535, got -1"),
        (
            ["send", "127.0.0.1", "1", "hi", "--timeout", "soon"],
            "argument --timeout: not a number: 'soon'",
        ),
    ],
)
def test_bad_argument_messages_say_what_is_wrong(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(argv)
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith(message)


def test_send_to_a_closed_port_fails_in_one_line() -> None:
    result = run("send", "127.0.0.1", str(free_port()), "hello")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "Connection refused" in result.stderr
    assert "Traceback" not in result.stderr


def test_send_bad_json_fails_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", "127.0.0.1", "1", "{bad", "--json"]) == 1
    assert "not JSON" in capsys.readouterr().err


def test_backend_and_debug_go_before_or_after_the_subcommand() -> None:
    parse = build_parser().parse_args
    args = parse(["send", "h", "1", "m"])
    assert (args.backend, args.debug) == ("asyncio", False)
    args = parse(["--backend", "trio", "--debug", "send", "h", "1", "m"])
    assert (args.backend, args.debug) == ("trio", True)
    args = parse(["send", "--backend", "uvloop", "h", "1", "m"])
    assert (args.backend, args.debug) == ("uvloop", False)


def test_debug_shows_the_real_cause() -> None:
    with pytest.raises(Exception) as info:
        main(["send", "127.0.0.1", str(free_port()), "x", "--debug"])
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


def test_serve_on_a_busy_port_fails_in_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        result = run("serve", "--port", port)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        f"anytcpip serve: error: EchoServer 'serve' (127.0.0.1:{port}): "
        "cannot listen: Address already in use"
    )


@contextmanager
def serving(*options: str) -> Iterator[subprocess.Popen[str]]:
    """Run ``anytcpip serve --port 0 OPTIONS``; yield it with ``.port`` set."""
    process = subprocess.Popen(
        [sys.executable, "-m", "anytcpip", "serve", "--port", "0", *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on 127.0.0.1:" in line, line
        process.port = int(line.strip().rsplit(":", 1)[1])  # type: ignore[attr-defined]
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_serve_stops_cleanly_on_sigterm(backend: str) -> None:
    with serving("--backend", backend) as server:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=10)
    assert server.returncode == 0, err
    assert "Traceback" not in err
    assert err.rstrip().endswith("stopped")


@pytest.fixture
def server() -> Iterator[subprocess.Popen[str]]:
    with serving() as process:
        yield process


@pytest.mark.parametrize("backend", ["trio", "uvloop"])
def test_send_skips_the_servers_heartbeats(backend: str) -> None:
    with serving("--heartbeat", "0.02", "--backend", backend) as server:
        port = str(server.port)  # type: ignore[attr-defined]
        # The second reply never comes; heartbeats keep arriving meanwhile
        # and must not be printed as replies.
        result = run(
            "send", "127.0.0.1", port, "hi", "--replies", "2", "--timeout", "0.5"
        )
    assert result.returncode == 1
    assert result.stdout.splitlines() == ["hi"]
    assert "waiting for reply 2 of 2" in result.stderr


@pytest.mark.parametrize(
    ("options", "sent", "printed"),
    [
        (["--terminator", "lf"], b"GET TEMP\n", "21.5"),
        (["--terminator", "none", "--json"], b'{"cmd": 1}', '{"cmd": 1}'),
    ],
)
def test_send_terminators_against_a_blocking_server(
    options: list[str], sent: bytes, printed: str
) -> None:
    with blocking.OneClientServer(port=0, terminator=b"\n") as server:
        message = "GET TEMP" if "lf" in options else '{"cmd": 1}'
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "anytcpip", "send", "127.0.0.1"),
                *(str(server.port), message, *options, "--timeout", "1"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            server.wait_connected(timeout=30)
            assert server.readexactly(len(sent), timeout=30) == sent
            server.write_str(printed)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=10)
    assert process.returncode == 0, err
    assert out.splitlines()[0] == printed


def test_serve_send_and_ctrl_c(server: subprocess.Popen[str]) -> None:
    port = str(server.port)  # type: ignore[attr-defined]
    result = run("send", "127.0.0.1", port, "hello", "world")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hello", "world"]
    # No reply expected beyond what was echoed: a clear one-line timeout.
    result = run("send", "127.0.0.1", port, "one", "--replies", "2", "--timeout", "0.5")
    assert result.returncode == 1
    assert "timed out after 0.5 s waiting for reply 2 of 2" in result.stderr
    # Raw mode prints whatever arrives until the timeout.
    result = run(
        "send", "127.0.0.1", port, "raw\r\n", "--terminator", "none", "--timeout", "0.5"
    )
    assert result.returncode == 0
    assert "raw" in result.stdout
    server.send_signal(signal.SIGINT)
    _, err = server.communicate(timeout=10)
    assert server.returncode == 0
    assert "Traceback" not in err
    assert "received 'hello'" in err
    assert "client connected" in err


def test_serve_json_echo() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "anytcpip", "serve", "--port", "0", "--json-echo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip().rsplit(":", 1)[1]
        result = run("send", "127.0.0.1", port, '{"cmd": "park", "id": 3}', "--json")
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == '{"cmd": "park", "id": 3}'
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)
    assert process.returncode == 0


def _documented_commands() -> list[list[str]]:
    page = (ROOT / "docs" / "guide" / "command-line.md").read_text()
    blocks = re.findall(r"^```sh\n(.*?)^```", page, re.MULTILINE | re.DOTALL)
    lines = [line for block in blocks for line in block.splitlines()]
    return [shlex.split(line)[1:] for line in lines if line.startswith("anytcpip ")]


def test_the_documented_commands_run() -> None:
    commands = _documented_commands()
    demos = [argv for argv in commands if argv[0] == "demo"]
    serves = [argv for argv in commands if argv[0] == "serve"]
    sends = [argv for argv in commands if argv[0] == "send"]
    assert demos and sends and len(serves) == len(sends)
    for argv in demos:
        result = run(*argv)
        assert result.returncode == 0, (argv, result.stderr)
    for serve, send in zip(serves, sends, strict=True):
        options = [arg if arg != "5000" else "0" for arg in serve[1:]]
        options.remove("--port")
        options.remove("0")
        with serving(*options) as server:
            port = str(server.port)  # type: ignore[attr-defined]
            result = run(*[arg if arg != "5000" else port for arg in send])
        assert result.returncode == 0, (serve, send, result.stderr)
        assert result.stdout.strip(), (serve, send)
