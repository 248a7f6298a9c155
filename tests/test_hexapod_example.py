"""The hexapod example runs its scripted session, as a script and in-process."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys
from types import ModuleType

import anyio
import pytest

EXAMPLE = (
    pathlib.Path(__file__).resolve().parent.parent
    / "examples"
    / "hexapod_controller.py"
)


def check_summary(out: str, backend: str) -> None:
    lines = out.splitlines()
    assert lines[0] == f"backend: {backend}"
    assert "config: max speed 25.0 mm/s" in lines
    assert "MOVE rejected: not enabled" in lines
    assert "ENABLE acknowledged" in lines
    assert "motion done at [1.0, 2.0, 3.0, 0.5, 0.0, 0.0]" in lines
    timeout_line = next(line for line in lines if line.startswith("SELF_TEST"))
    assert "no reply to request 4" in timeout_line
    assert "within 0.2 s" in timeout_line
    assert "late acks dropped: 1" in lines
    assert "STOP acknowledged (the connection stayed usable)" in lines
    telemetry = next(line for line in lines if line.startswith("telemetry:"))
    assert "unknown message ids skipped: [99]" in telemetry
    assert lines[-1] == "done"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_script(backend: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--backend", backend],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=EXAMPLE.parent.parent,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    check_summary(result.stdout, backend)
    # The late ack is logged (the example configures logging to stderr).
    assert "dropped a late reply to request 4" in result.stderr


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("hexapod_controller", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    example = load_example()
    with anyio.fail_after(30):
        await example.main("in-process")
    check_summary(capsys.readouterr().out, "in-process")
