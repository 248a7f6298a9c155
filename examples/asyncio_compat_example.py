"""lsst.ts.tcpip code running on anytcpip, with one import changed.

This is the usage shown in lsst.ts.tcpip's User Guide: an echo server built on
``OneClientReadLoopServer`` (overriding its ``read_loop`` hook to greet each
client), a ``Client``, ``start_task`` and ``connected_task``,
``write_str``/``read_str``, and ``close``. The only
change from code written for lsst.ts.tcpip 2.x is the import line.

Run it::

    python examples/asyncio_compat_example.py
"""

from __future__ import annotations

import asyncio
import logging

from anytcpip import asyncio_compat as tcpip  # was: from lsst.ts import tcpip

TCP_TIMEOUT = 1  # seconds to wait for each message


class EchoServer(tcpip.OneClientReadLoopServer):
    """Greet each client, then send every line received back to it."""

    async def read_loop(self) -> None:
        # Overriding a 2.2 hook works as in 2.2: read_loop runs per client.
        await self.write_str("welcome")
        await super().read_loop()

    async def read_and_dispatch(self) -> None:
        line = await self.read_str()
        await self.write_str(line)


async def main() -> None:
    log = logging.getLogger("echo")

    server = EchoServer(port=0, log=log)  # port 0: any free port
    await server.start_task

    client = tcpip.Client(host=server.host, port=server.port, log=log)
    await client.start_task
    await server.connected_task
    print(f"connected to port {server.port}")
    greeting = await asyncio.wait_for(client.read_str(), timeout=TCP_TIMEOUT)
    print(f"greeted with {greeting!r}")

    for text in ("first line", "second line", "third line"):
        await asyncio.wait_for(client.write_str(text), timeout=TCP_TIMEOUT)
        echoed = await asyncio.wait_for(client.read_str(), timeout=TCP_TIMEOUT)
        assert echoed == text
        print(f"echoed {echoed!r}")

    await client.close()
    await server.close()
    print(f"closed: client {client.done_task.done()}, server {server.done_task.done()}")


if __name__ == "__main__":
    asyncio.run(main())
