"""The latency the tap adds: round trips direct vs through ``Tap``, on loopback.

An echo server (plain anyio sockets) answers each message. A client sends a
message and waits for its echo, alternately straight to the server and
through a ``Tap`` in front of it (displaying nothing and recording every
message to a file, the worst case), so both series see the same machine
load. By default the tap runs in the benchmark's process (on the same event
loop as the client and the server: a conservative setup); ``--cli`` runs it
as ``anytcpip tap`` in its own process, as it is used. A round trip crosses
the tap twice (once each way), so the latency added *per message* is half
the difference of the round-trip times.

Target: the tap adds at most 1 ms per message (median and p99).

    python benchmarks/tap_latency.py [--trials 2000] [--size 64] [--cli]
                                     [--backends asyncio uvloop trio] [--json F]
"""

from __future__ import annotations

import argparse
import gc
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.to_thread

from anytcpip.testing import Tap

TARGET = 1e-3  # seconds added per message


async def echo(stream: anyio.abc.ByteStream) -> None:
    async with stream:
        try:
            while True:
                await stream.send(await stream.receive())
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass


async def round_trip(stream: anyio.abc.ByteStream, message: bytes) -> float:
    start = time.perf_counter()
    await stream.send(message)
    received = 0
    while received < len(message):
        received += len(await stream.receive())
    return time.perf_counter() - start


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@asynccontextmanager
async def cli_tap(port: int, record: Path, backend: str) -> AsyncIterator[int]:
    """Run ``anytcpip tap`` in its own process; yield the port it listens on."""
    command = [sys.executable, "-m", "anytcpip", "tap", "0", "127.0.0.1", str(port)]
    command += ["--quiet", "--record", str(record), "--backend", backend]
    process = subprocess.Popen(  # noqa: ASYNC220  (set-up, not timed)
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert process.stdout is not None
        line = await anyio.to_thread.run_sync(process.stdout.readline)
        yield int(line.split(" on ", 1)[1].split(",")[0].rsplit(":", 1)[1])
    finally:
        process.send_signal(signal.SIGTERM)
        await anyio.to_thread.run_sync(process.wait)


@asynccontextmanager
async def library_tap(port: int, record: Path) -> AsyncIterator[int]:
    """Run a ``Tap`` in this process; yield the port it listens on."""
    async with Tap("127.0.0.1", port, record=record) as tap:
        yield tap.port


async def measure(
    trials: int, size: int, record: Path, cli: str | None = None
) -> dict[str, Any]:
    message = b"x" * (size - 2) + b"\r\n"
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(listener.serve, echo)
        tap = library_tap(port, record) if cli is None else cli_tap(port, record, cli)
        async with tap as tap_port:
            direct = await anyio.connect_tcp("127.0.0.1", port)
            tapped = await anyio.connect_tcp("127.0.0.1", tap_port)
            async with direct, tapped:
                for _ in range(50):  # warm up
                    await round_trip(direct, message)
                    await round_trip(tapped, message)
                times: dict[str, list[float]] = {"direct": [], "tap": []}
                # Startup objects out of the collector's way, for both series.
                gc.collect()
                gc.freeze()
                for _ in range(trials):
                    times["direct"].append(await round_trip(direct, message))
                    times["tap"].append(await round_trip(tapped, message))
        task_group.cancel_scope.cancel()
    await listener.aclose()
    result: dict[str, Any] = {}
    for name in ("direct", "tap"):
        result[f"{name}_median"] = statistics.median(times[name])
        result[f"{name}_p99"] = percentile(times[name], 0.99)
    result["added_median"] = (result["tap_median"] - result["direct_median"]) / 2
    result["added_p99"] = (result["tap_p99"] - result["direct_p99"]) / 2
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64, help="message size in bytes")
    parser.add_argument("--backends", nargs="+", default=["asyncio", "uvloop", "trio"])
    parser.add_argument(
        "--cli",
        action="store_true",
        help="run the tap as the anytcpip command, in its own process (as in "
        "real use) instead of in the benchmark's process",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    print(
        f"{'backend':8} {'direct rt':>10} {'tap rt':>10} {'added/msg':>10}"
        f" {'direct p99':>11} {'tap p99':>10} {'added p99':>10}"
    )
    figures = {}
    ok = True
    with tempfile.TemporaryDirectory() as directory:
        for backend in args.backends:
            name, options = backend, {}
            if backend == "uvloop":
                name, options = "asyncio", {"use_uvloop": True}
            record = Path(directory) / f"{backend}.jsonl"
            result = anyio.run(
                measure,
                args.trials,
                args.size,
                record,
                backend if args.cli else None,
                backend=name,
                backend_options=options,
            )
            figures[backend] = result
            passed = max(result["added_median"], result["added_p99"]) <= TARGET
            ok &= passed
            ms = {key: value * 1000 for key, value in result.items()}
            print(
                f"{backend:8} {ms['direct_median']:8.3f}ms {ms['tap_median']:8.3f}ms"
                f" {ms['added_median']:8.3f}ms {ms['direct_p99']:9.3f}ms"
                f" {ms['tap_p99']:8.3f}ms {ms['added_p99']:8.3f}ms"
                f"  {'PASS' if passed else 'FAIL'} (added <= 1 ms per message)"
            )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
