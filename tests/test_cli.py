"""The anytcpip command: every subcommand, its exit codes and its output."""

from __future__ import annotations

import importlib
import json
import pathlib
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from anytcpip import __version__, blocking
from anytcpip._cli import build_parser, main

ROOT = pathlib.Path(__file__).resolve().parent.parent
COMMAND = [sys.executable, "-m", "anytcpip"]


def run(
    *args: str, timeout: float = 60, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


def _default_sigint() -> None:
    """In the child: take Ctrl-C even if this test runs where it is ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*args: str, stdin: int | None = None) -> subprocess.Popen[str]:
    """Start ``anytcpip ARGS`` with its output captured."""
    return subprocess.Popen(
        [*COMMAND, *args],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    )


def finish(process: subprocess.Popen[str]) -> tuple[str, str]:
    """Wait for a process started by ``start``; kill it if it hangs."""
    try:
        return process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def finish_stderr(process: subprocess.Popen[str]) -> str:
    """Like ``finish`` for a process whose stdout the test has closed.

    Returns what it wrote to stderr.
    """
    try:
        assert process.stderr is not None
        with process.stderr:
            err = process.stderr.read()
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    return err


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
    for command in ("demo", "serve", "send", "connect"):
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
    assert server.returncode == 130  # Ctrl-C, as the shell reports it
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
    assert process.returncode == 130


def _documented_commands() -> list[tuple[list[str], str]]:
    """Each ``anytcpip`` command of the guide, with the input piped into it."""
    page = (ROOT / "docs" / "guide" / "command-line.md").read_text()
    blocks = re.findall(r"^```sh\n(.*?)^```", page, re.MULTILINE | re.DOTALL)
    commands = []
    for line in (line for block in blocks for line in block.splitlines()):
        stdin = "STATUS?\n"  # what a user types into `connect`
        piped = re.fullmatch(r"printf '(.*)' \| (anytcpip .*)", line)
        if piped:
            stdin = piped.group(1).replace("\\n", "\n")
            line = piped.group(2)
        words = shlex.split(line, comments=True)
        if words and words[0] == "anytcpip":
            commands.append(([w for w in words[1:] if w != "&"], stdin))
    return commands


def test_the_documented_commands_run() -> None:
    commands = _documented_commands()
    demos = [argv for argv, _ in commands if argv[0] == "demo"]
    serves = [argv for argv, _ in commands if argv[0] == "serve"]
    clients = [(argv, i) for argv, i in commands if argv[0] in ("send", "connect")]
    assert demos and clients and len(serves) == len(clients)
    assert {argv[0] for argv, _ in clients} == {"send", "connect"}
    assert any("-" in argv for argv, _ in clients)  # send - reads stdin
    for argv in demos:
        result = run(*argv)
        assert result.returncode == 0, (argv, result.stderr)
    for serve, (client, stdin) in zip(serves, clients, strict=True):
        options = [arg if arg != "5000" else "0" for arg in serve[1:]]
        options.remove("--port")
        options.remove("0")
        with serving(*options) as server:
            port = str(server.port)  # type: ignore[attr-defined]
            argv = [arg if arg != "5000" else port for arg in client]
            result = run(*argv, input=stdin)
        assert result.returncode == 0, (serve, client, result.stderr)
        assert result.stdout.strip(), (serve, client)
        if "-" in client or client[0] == "connect":
            expected = [line for line in stdin.splitlines() if line]
            assert len(result.stdout.strip().splitlines()) >= len(expected)


# -- issue 15: the command line as netcat, socat and httpie users expect it ----


def test_importing_main_module_does_not_run_the_command() -> None:
    module = importlib.import_module("anytcpip.__main__")
    assert module.main is main


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_ctrl_c_exits_130(backend: str) -> None:
    """``anytcpip send ... && next-step`` must not run next-step after Ctrl-C."""
    with blocking.OneClientServer(port=0) as server:
        process = start(
            *("send", "127.0.0.1", str(server.port), "STATUS?"),
            *("--timeout", "60", "--backend", backend),
        )
        try:
            server.wait_connected(timeout=30)
            assert server.read_str(timeout=30) == "STATUS?"  # waiting for a reply
            process.send_signal(signal.SIGINT)
        finally:
            _, err = finish(process)
    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip() == "stopped"


def test_serve_stopped_by_ctrl_c_exits_130(server: subprocess.Popen[str]) -> None:
    server.send_signal(signal.SIGINT)
    _, err = server.communicate(timeout=10)
    assert server.returncode == 130, err
    assert err.rstrip().endswith("stopped")


def test_send_dash_reads_messages_from_stdin(server: subprocess.Popen[str]) -> None:
    port = str(server.port)  # type: ignore[attr-defined]
    result = run("send", "127.0.0.1", port, "-", input="one\r\n\ntwo words\nthree")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["one", "two words", "three"]
    # "-" mixes with messages on the command line, in order.
    result = run("send", "127.0.0.1", port, "first", "-", "last", input="middle\n")
    assert result.stdout.splitlines() == ["first", "middle", "last"]


def test_send_dash_with_json() -> None:
    with serving("--json-echo") as server:
        port = str(server.port)  # type: ignore[attr-defined]
        result = run(
            *("send", "127.0.0.1", port, "-", "--json"),
            input='{"cmd": "park"}\n[1, 2]\n',
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == ['{"cmd": "park"}', "[1, 2]"]
        result = run("send", "127.0.0.1", port, "-", "--json", input="{bad\n")
    assert result.returncode == 1
    assert "not JSON: '{bad'" in result.stderr


def test_send_json_prints_non_ascii_as_it_is() -> None:
    with serving("--json-echo") as server:
        port = str(server.port)  # type: ignore[attr-defined]
        message = '{"site": "Cerro Pachón", "temp": "21 °C"}'
        result = run("send", "127.0.0.1", port, message, "--json")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == message
    assert "\\u" not in result.stdout


def test_connect_sends_typed_lines_and_prints_what_arrives(
    server: subprocess.Popen[str],
) -> None:
    port = str(server.port)  # type: ignore[attr-defined]
    result = run(
        *("connect", "127.0.0.1", port, "--wait", "0.5"),
        input="hello\n\nworld\n",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["hello", "world"]
    # Not a terminal: no banner, nothing else on stderr.
    assert result.stderr == ""


def test_connect_prints_messages_the_server_sends_unasked() -> None:
    with blocking.OneClientServer(port=0) as server:
        process = start("connect", "127.0.0.1", str(server.port), stdin=subprocess.PIPE)
        try:
            server.wait_connected(timeout=30)
            server.write_str("event 1")
            server.write_str("event 2")
            assert process.stdout is not None
            assert process.stdout.readline() == "event 1\n"
            assert process.stdout.readline() == "event 2\n"
            assert process.stdin is not None
            process.stdin.write("ack\n")
            process.stdin.flush()
            assert server.read_str(timeout=30) == "ack"
            # The server leaving ends the session (status 0), said on stderr.
            server.close_client()
            _, err = process.communicate(timeout=30)
        finally:
            finish(process)
    assert process.returncode == 0, err
    assert err.strip() == f"127.0.0.1:{server.port} closed the connection"


def test_connect_json_pretty_prints_and_does_not_send_bad_json() -> None:
    with serving("--json-echo") as server:
        port = str(server.port)  # type: ignore[attr-defined]
        result = run(
            *("connect", "127.0.0.1", port, "--json", "--wait", "0.5"),
            input='{"cmd": "move", "axes": [1, 2], "by": "Pachón"}\nnot json\n',
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        '{\n  "cmd": "move",\n  "axes": [\n    1,\n    2\n  ],\n  "by": "Pachón"\n}\n'
    )
    assert "not JSON, not sent: 'not json'" in result.stderr


def test_connect_ctrl_c_exits_130() -> None:
    with blocking.OneClientServer(port=0) as server:
        process = start("connect", "127.0.0.1", str(server.port), stdin=subprocess.PIPE)
        try:
            server.wait_connected(timeout=30)
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=30)
        finally:
            finish(process)
    assert process.returncode == 130, err
    assert "Traceback" not in err


def test_connect_to_a_closed_port_fails_in_one_line() -> None:
    result = run("connect", "127.0.0.1", str(free_port()), input="")
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "Connection refused" in result.stderr


def test_terminator_none_without_a_reply_says_what_happened(
    server: subprocess.Popen[str],
) -> None:
    port = str(server.port)  # type: ignore[attr-defined]
    # The echo server waits for a line ending that never comes: no reply.
    result = run(
        *("send", "127.0.0.1", port, "PING"),
        *("--terminator", "none", "--timeout", "0.5"),
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "anytcpip send: error: nothing received within 0.5 s (--terminator none "
        "prints whatever arrives until --timeout; --replies 0 does not wait)"
    )
    # --replies 0: send and go, without waiting.
    started = time.monotonic()
    result = run(
        *("send", "127.0.0.1", port, "PING"),
        *("--terminator", "none", "--timeout", "30", "--replies", "0"),
    )
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 25


BUSY = "closed the connection without sending anything: the server may be busy"


@pytest.mark.parametrize(
    ("command", "terminator"),
    [("send", "crlf"), ("send", "none"), ("connect", "crlf")],
)
def test_a_second_client_learns_that_the_server_is_busy(
    server: subprocess.Popen[str], command: str, terminator: str
) -> None:
    port = server.port  # type: ignore[attr-defined]
    with blocking.Client("127.0.0.1", port) as first:
        first.write_str("first")
        assert first.read_str(timeout=30) == "first"  # it is being served
        args = [command, "127.0.0.1", str(port), "--terminator", terminator]
        if command == "send":
            args.append("second")
        result = run(*args, input="second\n")
        assert first.connected  # unaffected
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert BUSY in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("backend", ["trio", "uvloop"])
def test_a_missing_backend_names_the_extra_to_install(
    backend: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, backend, None)  # import fails: not installed
    assert main(["demo", "--backend", backend]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"anytcpip demo: error: the {backend} backend is not installed; "
        f'install it with: pip install "anytcpip[{backend}]"'
    )


@pytest.mark.parametrize("command", ["send", "connect"])
def test_output_into_head_ends_quietly(
    server: subprocess.Popen[str], command: str
) -> None:
    """``anytcpip send ... | head -1``: no "Broken pipe", no traceback, status 0."""
    port = str(server.port)  # type: ignore[attr-defined]
    # A few lines: the server logs each one to a pipe read only at its end.
    messages = "".join(f"line {i}\n" for i in range(50))
    args = [command, "127.0.0.1", port] + (["-"] if command == "send" else [])
    process = start(*args, stdin=subprocess.PIPE)
    assert process.stdout is not None and process.stdin is not None
    process.stdout.close()  # the reader has gone before the first reply
    try:
        process.stdin.write(messages)
        process.stdin.close()
    except BrokenPipeError:  # pragma: no cover - it stopped reading first
        pass
    assert finish_stderr(process) == ""
    assert process.returncode == 0


@pytest.mark.parametrize("backend", ["asyncio", "trio", "uvloop"])
@pytest.mark.parametrize("lines", [3, 6])
def test_demo_into_head_ends_quietly(backend: str, lines: int) -> None:
    """``anytcpip demo | head -3``: no callback tracebacks, no error, status 0.

    The reader goes after a few lines, while the demo still has lines to
    print from its connection callbacks and its main task (the summary comes
    after a thousand round trips).
    """
    process = start("demo", "--backend", backend)
    assert process.stdout is not None and process.stderr is not None
    with process.stdout:  # the reader reads a few lines, then goes
        read = [process.stdout.readline() for _ in range(lines)]
    err = finish_stderr(process)
    assert read[0].startswith("anytcpip "), read
    assert all(line.endswith("\n") for line in read), read
    assert err == ""
    assert process.returncode == 0


def test_serve_json_echo_logs_one_line_for_a_message_that_is_not_json() -> None:
    with serving("--json-echo") as server:
        port = str(server.port)  # type: ignore[attr-defined]
        result = run(
            *("send", "127.0.0.1", port, "not json", '{"ok": 1}'),
            *("--replies", "1", "--timeout", "30"),
        )
        # The bad line is not echoed; the client stays connected and the next
        # message is.
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout) == {"ok": 1}
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=10)
    assert "Traceback" not in err
    warnings = [line for line in err.splitlines() if "WARNING" in line]
    assert len(warnings) == 1, err
    assert "ignored a message that is not JSON" in warnings[0]
    assert "'not json'" in warnings[0]
