"""Every example runs, as a user would run it, and prints what it promises."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=EXAMPLES.parent,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_echo(backend: str) -> None:
    out = run_example("echo.py", "--backend", backend)
    assert "echoed 'grüße aus dem Observatorium'" in out
    assert out.count("] connected") == 2
    assert out.count("] disconnected") == 2
    assert out.rstrip().endswith("done")


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_telemetry_structs(backend: str) -> None:
    out = run_example("telemetry_structs.py", "--count", "2000", "--backend", backend)
    assert "received 2000 samples in order" in out


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_json_commands(backend: str) -> None:
    out = run_example("json_commands.py", "--backend", backend)
    assert "unknown command 'dance'" in out
    assert "'tracking': True" in out


def test_trio_example() -> None:
    out = run_example("trio_example.py")
    assert out.count("client: TEMP?") == 3
    assert "controller: client connected" in out
    assert "controller: client left" in out


def test_asyncio_example() -> None:
    out = run_example("asyncio_example.py")
    assert "ALPHA" in out and "GAMMA" in out
    assert "partial=b'half a mess'" in out


def test_asyncio_compat_example() -> None:
    out = run_example("asyncio_compat_example.py")
    assert out.count("echoed") == 3
    assert "closed: client True, server True" in out
