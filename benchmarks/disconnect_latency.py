"""Measure how fast a peer's disconnect reaches ``connect_callback``.

For each backend, many trials: a client connects to a ``OneClientServer``,
then leaves in one of three ways, and we time from the leaving call to the
server's ``connect_callback`` reporting ``connected == False``. Nobody reads:
detection must come from the receive pump, not from the application.

- ``close``: ``await client.close()`` (an orderly FIN);
- ``reset``: a raw socket closed with ``SO_LINGER`` 0 (a reset, RST);
- ``raw-close``: a raw socket closed normally;
- ``after-read``: the server has just read a message (so its reader holds
  the receiving role and the pump is parked for ``RECEIVE_LINGER``), then
  ``client.close()``: the bound is the linger (5 ms) plus delivery, less on
  Linux, where the parked pump watches for a hang-up.

The target is p99 < 50 ms on every backend. Exit status 1 if it is missed.

Run it::

    python benchmarks/disconnect_latency.py [--trials 100] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import struct
import sys
import time
from typing import Any

import anyio

from anytcpip import BaseClientOrServer, Client, OneClientServer

TARGET_P99_MS = 50.0
MODES = ("close", "reset", "raw-close", "after-read")


async def trial(server: OneClientServer, events: list[anyio.Event], mode: str) -> float:
    connected, gone = anyio.Event(), anyio.Event()
    events[:] = [connected, gone]
    if mode in ("close", "after-read"):
        async with Client("127.0.0.1", server.port) as client:
            await connected.wait()
            if mode == "after-read":
                await client.write_str("last")
                await server.read_str()
            start = time.perf_counter()
            await client.close()
    else:
        sock = socket.create_connection(("127.0.0.1", server.port))
        await connected.wait()
        if mode == "reset":
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        start = time.perf_counter()
        sock.close()
    with anyio.fail_after(5):
        await gone.wait()
    return (time.perf_counter() - start) * 1000


async def run_backend(trials: int) -> dict[str, list[float]]:
    events: list[anyio.Event] = []
    finished: list[float] = []

    async def callback(server: BaseClientOrServer) -> None:
        if server.connected:
            events[0].set()
        else:
            finished.append(time.perf_counter())
            events[1].set()

    results: dict[str, list[float]] = {mode: [] for mode in MODES}
    async with OneClientServer(port=0, connect_callback=callback) as server:
        for i in range(trials):
            for mode in MODES:
                results[mode].append(await trial(server, events, mode))
            del i
    return results


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
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
    print(
        f"{'backend':8} {'mode':10} {'trials':>6} {'median':>8} {'p99':>8} {'max':>8}"
    )
    ok = True
    report: dict[str, Any] = {}
    for label, backend, options in backends:
        results = anyio.run(
            run_backend, args.trials, backend=backend, backend_options=options
        )
        for mode, values in results.items():
            p99 = percentile(values, 0.99)
            verdict = "PASS" if p99 < TARGET_P99_MS else "FAIL"
            ok &= p99 < TARGET_P99_MS
            median = statistics.median(values)
            print(
                f"{label:8} {mode:10} {len(values):6d} {median:7.2f}ms"
                f" {p99:7.2f}ms {max(values):7.2f}ms"
                f"  {verdict} (p99 < {TARGET_P99_MS:g} ms)"
            )
            report[f"{label}/{mode}"] = {
                "median_ms": statistics.median(values),
                "p99_ms": p99,
                "max_ms": max(values),
                "trials": len(values),
            }
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=2)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
