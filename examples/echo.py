"""Echo server and client in one process: the anytcpip demo.

Starts a ``OneClientServer`` on a free loopback port that echoes every text
line back, connects a ``Client``, exchanges a few messages, and shows each
``connect_callback`` call on both ends.

Run it::

    python examples/echo.py                 # asyncio
    python examples/echo.py --backend trio
"""

from __future__ import annotations

import argparse

import anyio

from anytcpip import BaseClientOrServer, Client, OneClientReadLoopServer


class EchoServer(OneClientReadLoopServer):
    """Send every line back as it came."""

    async def read_and_dispatch(self) -> None:
        await self.write_str(await self.read_str())


async def show_state(conn: BaseClientOrServer) -> None:
    state = "connected" if conn.connected else "disconnected"
    print(f"  [{type(conn).__name__}] {state}")


async def main() -> None:
    client_gone = anyio.Event()

    async def server_state(server: BaseClientOrServer) -> None:
        await show_state(server)
        if not server.connected:
            client_gone.set()

    async with EchoServer(port=0, connect_callback=server_state) as server:
        print(f"echo server listening on 127.0.0.1:{server.port}")
        async with Client(
            "127.0.0.1", server.port, connect_callback=show_state
        ) as client:
            with anyio.fail_after(5):
                for message in ("hello", "grüße aus dem Observatorium", "bye"):
                    await client.write_str(message)
                    print(f"sent {message!r:32} echoed {await client.read_str()!r}")
        with anyio.fail_after(5):
            await client_gone.wait()  # the server notices without reading
    print("done")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="anytcpip echo demo")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    anyio.run(main, backend=parser.parse_args().backend)
