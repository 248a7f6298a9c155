"""Measure event-loop wake-ups of an idle, connected anytcpip pair.

A server and a client connect in one process, then nothing happens: no
traffic, nobody reading, default settings (keepalive on, no heartbeats). The
script counts how often the event loop wakes up over ``--seconds`` after a
short settle, on asyncio and trio (uvloop has no in-process hook; it reports
n/a). lsst.ts.tcpip polls every 0.1 s: 10+ wake-ups per second per
connection. The target is zero.

uvloop has no in-process hook: there (``uvloop*``) the script runs the pair
in a child process and counts its polling system calls with ``strace -c``
(n/a if strace is missing).

Run it::

    python benchmarks/idle_wakeups.py [--seconds 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

import anyio
from _wakeups import count_wakeups

from anytcpip import Client, OneClientServer


async def measure(seconds: float) -> float | None:
    async with OneClientServer(port=0) as server:
        async with Client("127.0.0.1", server.port):
            await server.wait_connected()
            with count_wakeups() as counter:
                if counter is None:
                    return None
                await anyio.sleep(0.2)  # settle: let start-up work finish
                counter.counting = True
                end = time.monotonic() + seconds
                await anyio.sleep(seconds)
                counter.counting = False
                # The wake-ups that end our own sleep come in its last moments.
                return counter.count_before(end - 0.05) / seconds


async def hold_idle_pair(seconds: float) -> None:
    """Child process: connect a pair, say "ready", then stay idle."""
    async with OneClientServer(port=0) as server:
        async with Client("127.0.0.1", server.port):
            await server.wait_connected()
            await anyio.sleep(0.2)
            print("ready", flush=True)
            await anyio.sleep(seconds + 3)


_POLLS = "epoll_wait,epoll_pwait,epoll_pwait2,poll,ppoll,select,pselect6"


def measure_with_strace(seconds: float) -> float | None:
    """Wake-ups of a uvloop child, counted as polling calls by ``strace -c``."""
    strace = shutil.which("strace")
    if strace is None:
        return None
    child = subprocess.Popen(
        [sys.executable, __file__, "--child-uvloop", str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            return None
        trace = subprocess.Popen(
            [strace, "-c", "-f", "-p", str(child.pid), "-e", "trace=" + _POLLS],
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(seconds)
        trace.send_signal(signal.SIGINT)
        _, summary = trace.communicate(timeout=10)
    finally:
        child.kill()
        child.wait()
    calls = 0
    for line in summary.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[-1] in _POLLS.split(","):
            calls += int(fields[3])
    return calls / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--child-uvloop", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_uvloop is not None:
        import uvloop

        anyio.run(
            hold_idle_pair,
            args.child_uvloop,
            backend_options={"loop_factory": uvloop.new_event_loop},
        )
        return 0
    backends: list[tuple[str, str, dict[str, Any]]] = [
        ("asyncio", "asyncio", {}),
        ("trio", "trio", {}),
    ]
    try:
        import uvloop

        backends.insert(
            1, ("uvloop", "asyncio", {"loop_factory": uvloop.new_event_loop})
        )
    except ImportError:
        pass
    results: dict[str, float | None] = {}
    ok = True
    print(f"{'backend':10} {'wake-ups/s':>12}  verdict")
    for label, backend, options in backends:
        rate = anyio.run(
            measure, args.seconds, backend=backend, backend_options=options
        )
        if rate is None and label == "uvloop":
            rate = measure_with_strace(args.seconds)
            label = "uvloop*"
        results[label] = rate
        verdict = "n/a (no hook)" if rate is None else ("PASS" if rate == 0 else "FAIL")
        ok &= rate is None or rate == 0
        shown = "n/a" if rate is None else f"{rate:.2f}"
        print(f"{label:10} {shown:>12}  {verdict}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"seconds": args.seconds, "wakeups_per_second": results}, file)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
