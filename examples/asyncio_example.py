"""anytcpip in a plain asyncio program: tasks, ``asyncio.wait_for``, errors.

A server task echoes lines in upper case; the client sends a few, waits for
each answer with ``asyncio.wait_for``, and finally shows that asyncio's own
``IncompleteReadError`` catches anytcpip's when the peer leaves mid-message.

Run it::

    python examples/asyncio_example.py
"""

from __future__ import annotations

import asyncio

from anytcpip import Client, OneClientServer


async def shout_back(server: OneClientServer) -> None:
    await server.wait_connected()
    for _ in range(3):
        await server.write_str((await server.read_str()).upper())
    await server.write(b"half a mess")  # then the server closes: no terminator
    await server.close_client()


async def main() -> None:
    async with OneClientServer(port=0) as server:
        async with Client("127.0.0.1", server.port) as client:
            task = asyncio.create_task(shout_back(server))
            for word in ("alpha", "beta", "gamma"):
                await client.write_str(word)
                print(await asyncio.wait_for(client.read_str(), timeout=5))
            try:
                await asyncio.wait_for(client.read_str(), timeout=5)
            except asyncio.IncompleteReadError as exc:
                print(f"peer left mid-message; partial={exc.partial!r}")
            await task
    print("done")


if __name__ == "__main__":
    asyncio.run(main())
