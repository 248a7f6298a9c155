"""An idle connected pair costs no event-loop wake-ups (no polling)."""

from __future__ import annotations

import pathlib
import sys
import time
from typing import Any

import anyio
import pytest

from anytcpip import Client, OneClientServer

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "benchmarks"))
from _wakeups import count_wakeups

WINDOW = 0.5


@pytest.mark.parametrize(
    "settings",
    [{}, {"heartbeat_timeout": 60.0}],
    ids=["defaults", "heartbeat_timeout"],
)
async def test_idle_pair_never_wakes_up(settings: dict[str, Any]) -> None:
    async with OneClientServer(port=0, **settings) as server:
        async with Client("127.0.0.1", server.port, **settings):
            await server.wait_connected()
            with count_wakeups() as counter:
                if counter is None:
                    pytest.skip("no wake-up hook on this loop (uvloop)")
                await anyio.sleep(0.1)  # settle
                counter.counting = True
                end = time.monotonic() + WINDOW
                await anyio.sleep(WINDOW)
                counter.counting = False
                assert counter.count_before(end - 0.05) == 0


async def test_the_counter_sees_heartbeats() -> None:
    """The measurement can fail: heartbeats every 50 ms are counted."""
    async with OneClientServer(port=0, heartbeat_interval=0.05) as server:
        async with Client("127.0.0.1", server.port):
            await server.wait_connected()
            with count_wakeups() as counter:
                if counter is None:
                    pytest.skip("no wake-up hook on this loop (uvloop)")
                counter.counting = True
                end = time.monotonic() + WINDOW
                await anyio.sleep(WINDOW)
                counter.counting = False
                assert counter.count_before(end - 0.05) >= 5
