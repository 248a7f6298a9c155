"""The ``anytcpip demo`` subcommand: a server and a client in one process.

Exchanges text, JSON and struct messages over loopback, shows the connection
callbacks and measures echo round trips per second.

Output piped into a command that stops reading (``| head -3``) ends the demo
quietly. The connection callbacks do not raise ``OutputClosedError`` (the
library would log it as a failed callback): the main task raises it, at the
latest with the summary, printed after every callback has run. The server
side runs in a task group inside the client, so that it is cancelled before
the client closes instead of failing on the lost connection.
"""

from __future__ import annotations

import argparse
import ctypes
import time

import anyio

from ._cli_common import OutputClosedError
from ._cli_common import out as _out
from ._client import Client
from ._connection import BaseClientOrServer
from ._constants import DEFAULT_LOCALHOST
from ._server import OneClientServer
from ._version import __version__

__all__ = ["DEMO_ROUND_TRIPS", "run_demo"]

DEMO_ROUND_TRIPS = 1000


class _Sample(ctypes.Structure):
    _fields_ = [("counter", ctypes.c_uint32), ("xyz", ctypes.c_double * 3)]


async def _demo_server(server: OneClientServer) -> None:
    """Play the server side of the demo."""
    await server.wait_connected()
    await server.write_str((await server.read_str()).upper())
    command = await server.read_json()
    await server.write_json({"ack": "done", "position": command["position"]})
    sample = _Sample()
    await server.read_into(sample)
    sample.counter += 1
    await server.write_from(sample)
    for _ in range(DEMO_ROUND_TRIPS):
        await server.write_str(await server.read_str())


async def run_demo(args: argparse.Namespace) -> None:
    """Run ``anytcpip demo``."""

    async def show(conn: BaseClientOrServer) -> None:
        state = "connected" if conn.connected else "disconnected"
        try:
            _out(f"  callback: {type(conn).__name__} {state}")
        except OutputClosedError:
            pass  # the reader has gone: the summary, printed last, raises it

    _out(f"anytcpip {__version__} demo on {args.backend}")
    async with OneClientServer(port=0, name="demo", connect_callback=show) as server:
        _out(f"one-client server listening on {DEFAULT_LOCALHOST}:{server.port}")
        async with (
            Client(DEFAULT_LOCALHOST, server.port, connect_callback=show) as client,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(_demo_server, server)
            with anyio.fail_after(30):
                await client.write_str("hello, controller")
                reply = await client.read_str()
                _out(f"text:   sent 'hello, controller', got {reply!r}")
                await client.write_json({"cmd": "move", "position": 12.5})
                _out(f"json:   sent a move command, got {await client.read_json()}")
                sample = _Sample(7, (1.0, 2.0, 3.0))
                await client.write_from(sample)
                await client.read_into(sample)
                _out(
                    f"struct: sent counter 7, got counter {sample.counter} "
                    f"xyz={list(sample.xyz)}"
                )
                start = time.perf_counter()
                for i in range(DEMO_ROUND_TRIPS):
                    await client.write_str(f"ping {i}")
                    await client.read_str()
                elapsed = time.perf_counter() - start
        await server.close_client()
    _out(
        f"summary: {DEMO_ROUND_TRIPS} echo round trips in {elapsed * 1000:.0f} ms "
        f"({DEMO_ROUND_TRIPS / elapsed:,.0f} round trips/s)"
    )
