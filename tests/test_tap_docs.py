"""Every command and code sample of docs/guide/debugging.md runs.

The commands run in page order, as a user would type them in several
terminals, with the page's fixed ports replaced by free ones; the Python
samples (fenced ``py``) run in-process on every backend, after the
recordings they use are made.
"""

from __future__ import annotations

import pathlib
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from typing import Any

import anyio
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "guide" / "debugging.md"
EXAMPLES = ROOT / "examples"
WAIT = 60
# Commands that keep running (in their own terminal) and print a first line.
SERVERS = {"controller": "hexapod controller on", "tap": "tap listening on"}
SERVERS["replay"] = "replaying "
SERVERS["serve"] = "listening on"


def blocks(language: str) -> list[str]:
    page = PAGE.read_text()
    return re.findall(rf"^```{language}\n(.*?)^```", page, re.MULTILINE | re.DOTALL)


def documented_commands() -> list[list[str]]:
    lines = [line for block in blocks("sh") for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line.strip()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def resolve(argv: list[str], ports: dict[str, str]) -> list[str]:
    """Turn a documented command into one to run here."""
    program, *args = argv
    args = [ports.get(arg, arg) for arg in args]
    args = [str(ROOT / arg) if arg.startswith("examples/") else arg for arg in args]
    if program == "anytcpip":
        return [sys.executable, "-m", "anytcpip", *args]
    if program == "python":
        return [sys.executable, *args]
    return [program, *args]


def kind(argv: list[str]) -> str | None:
    """Which long-running server ``argv`` starts, or None for a one-shot."""
    for word in argv[1:3]:
        if word in SERVERS:
            return word
    return None


def first_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], WAIT)
    assert ready, "no output"
    return process.stdout.readline()


def test_the_page_has_the_whole_story() -> None:
    commands = [" ".join(argv) for argv in documented_commands()]
    assert any("controller" in c for c in commands)
    assert sum(c.startswith("anytcpip tap ") for c in commands) == 3
    assert sum(c.startswith("anytcpip replay ") for c in commands) == 2
    assert sum(" client " in c for c in commands) == 2
    assert sum("--record" in c for c in commands if c.startswith("anytcpip tap")) == 2
    assert "debugging" in (ROOT / "docs" / "index.md").read_text()


def test_the_documented_commands_run(tmp_path: pathlib.Path) -> None:
    commands = documented_commands()
    numbers = {arg for argv in commands for arg in argv if re.fullmatch(r"\d{4}", arg)}
    ports = {number: str(free_port()) for number in numbers}
    running: list[subprocess.Popen[str]] = []
    client_outputs: list[str] = []
    try:
        for argv in commands:
            if argv[0] == "jq" and shutil.which("jq") is None:
                continue  # jq is optional
            command = resolve(argv, ports)
            server = kind(argv)
            if server is not None:
                process = subprocess.Popen(
                    command,
                    cwd=tmp_path,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                running.append(process)
                line = first_line(process)
                assert SERVERS[server] in line, (argv, line)
                continue
            result = subprocess.run(
                command, cwd=tmp_path, capture_output=True, text=True, timeout=WAIT
            )
            assert result.returncode == 0, (argv, result.stderr[-3000:])
            if "client" in argv:
                client_outputs.append(result.stdout)
            # The taps end with the client's session (--once): wait for them,
            # so that their recordings are complete for the next commands.
            for process in running:
                if "--once" in process.args:  # type: ignore[operator]
                    _, err = process.communicate(timeout=WAIT)
                    assert process.returncode == 0, err
            running = [p for p in running if p.returncode is None]
        assert len(client_outputs) == 2
        # Against the replay, the client gets what it got from the controller.
        assert client_outputs[0] == client_outputs[1]
        assert "MOVE rejected: not enabled" in client_outputs[0]
        assert (tmp_path / "commands.jsonl").exists()
        # The replays stop on Ctrl-C with status 130.
        for process in running:
            if "replay" in process.args:  # type: ignore[operator]
                process.send_signal(signal.SIGINT)
                _, err = process.communicate(timeout=WAIT)
                assert process.returncode == 130, err
    finally:
        for process in running:
            if process.poll() is None:
                process.kill()
                process.communicate(timeout=WAIT)


def python_samples() -> list[str]:
    # Fenced ``py``, not ``python``: tests/test_docs.py runs ``python`` blocks
    # as standalone scripts in an empty directory, and these need the
    # story's recordings and example modules; they run here instead.
    return blocks("py")


async def test_the_python_samples_run(
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    samples = python_samples()
    assert len(samples) == 3
    # Record first (the last sample), then read, then test against the replay.
    recorder, reader, replay_test = samples[2], samples[0], samples[1]
    for code in (recorder, reader, replay_test):
        namespace: dict[str, Any] = {}
        exec(compile(code, str(PAGE), "exec"), namespace)
        for name, function in list(namespace.items()):
            if name.startswith("test_"):
                with anyio.fail_after(WAIT):
                    await function()
    out = capsys.readouterr().out
    assert "frames" in out and " c2s 68 bytes" in out and " s2c 80 bytes" in out
