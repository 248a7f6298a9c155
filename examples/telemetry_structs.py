"""A telemetry stream of ctypes structures, from a mock controller to a client.

The server streams ``Telemetry`` samples (a counter, a timestamp and an array
of three doubles) with ``write_from``; the client reads them with
``read_into`` into one reusable structure and checks that no sample is lost.

Run it::

    python examples/telemetry_structs.py --count 10000
    python examples/telemetry_structs.py --backend trio
"""

from __future__ import annotations

import argparse
import ctypes
import time

import anyio

from anytcpip import Client, OneClientServer


class Telemetry(ctypes.LittleEndianStructure):
    """One sample, as a controller would send it."""

    _pack_ = 1
    _fields_ = [
        ("counter", ctypes.c_uint32),
        ("timestamp", ctypes.c_double),
        ("position", ctypes.c_double * 3),
    ]


async def stream(server: OneClientServer, count: int) -> None:
    await server.wait_connected()
    sample = Telemetry()
    for i in range(count):
        sample.counter = i
        sample.timestamp = time.time()
        sample.position[:] = (0.1 * i, 0.2 * i, 0.3 * i)
        await server.write_from(sample)


async def main(count: int) -> None:
    async with OneClientServer(port=0) as server:
        async with Client("127.0.0.1", server.port) as client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(stream, server, count)
                sample = Telemetry()
                start = time.perf_counter()
                with anyio.fail_after(30):
                    for expected in range(count):
                        await client.read_into(sample)
                        assert sample.counter == expected, "a sample was lost"
                elapsed = time.perf_counter() - start
    print(f"received {count} samples in order; last position {list(sample.position)}")
    print(f"{count / elapsed:,.0f} samples/s ({ctypes.sizeof(Telemetry)} bytes each)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="ctypes telemetry stream")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    anyio.run(main, args.count, backend=args.backend)
