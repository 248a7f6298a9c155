"""An echo server built on OneClientReadLoopServer, and a client that uses it.

``OneClientReadLoopServer`` calls ``read_and_dispatch`` in a loop for each
connected client; if it raises, that client is closed and the server serves
the next one. Here a bad command ("boom") shows that: the first client is
dropped, the second is served as if nothing happened.

Run it::

    python examples/read_loop_echo.py            # asyncio
    python examples/read_loop_echo.py --backend trio
"""

from __future__ import annotations

import argparse
import logging

import anyio

from anytcpip import Client, OneClientReadLoopServer


class EchoServer(OneClientReadLoopServer):
    """Echo each line back in upper case; "boom" is a protocol error."""

    async def read_and_dispatch(self) -> None:
        line = await self.read_str()
        if line == "boom":
            raise ValueError("the client sent 'boom'")
        await self.write_str(line.upper())


async def main() -> None:
    async with EchoServer(port=0, name="echo") as server:
        async with Client("127.0.0.1", server.port) as client:
            with anyio.fail_after(5):
                for word in ("hello", "read", "loop"):
                    await client.write_str(word)
                    print(f"sent {word!r}, got {await client.read_str()!r}")
                await client.write_str("boom")
                print(
                    "after 'boom' the server closed us:", await client.read(10) == b""
                )
        async with Client("127.0.0.1", server.port) as client:
            with anyio.fail_after(5):
                await client.write_str("still serving")
                print("second client got", repr(await client.read_str()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    anyio.run(main, backend=args.backend)
