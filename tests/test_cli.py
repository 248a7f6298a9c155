"""The anytcpip command: every subcommand, its exit codes and its output."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest

from anytcpip import __version__
from anytcpip._cli import main


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


@pytest.fixture
def server() -> object:
    process = subprocess.Popen(
        [sys.executable, "-m", "anytcpip", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening on 127.0.0.1:" in line, line
    process.port = int(line.strip().rsplit(":", 1)[1])  # type: ignore[attr-defined]
    yield process
    if process.poll() is None:
        process.kill()
    process.communicate(timeout=10)


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
