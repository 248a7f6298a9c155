"""Run examples/read_loop_echo.py on both backends."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "read_loop_echo.py"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_read_loop_echo_example(backend: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--backend", backend],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "sent 'hello', got 'HELLO'" in result.stdout
    assert "the server closed us: True" in result.stdout
    assert "second client got 'STILL SERVING'" in result.stdout
    assert "read_and_dispatch failed" in result.stderr  # the error was logged
