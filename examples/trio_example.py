"""anytcpip in a plain trio program: a nursery, a timeout, a callback.

A mock controller and a client run in one nursery; the client polls the
controller's temperature under ``trio.move_on_after`` and the controller's
``connect_callback`` logs the client coming and going.

Run it::

    python examples/trio_example.py
"""

from __future__ import annotations

import trio

from anytcpip import BaseClientOrServer, Client, OneClientServer


async def log_state(server: BaseClientOrServer) -> None:
    print("controller:", "client connected" if server.connected else "client left")


async def controller(server: OneClientServer) -> None:
    temperature = 20.0
    while True:
        try:
            request = await server.read_str()
        except ConnectionError:
            return
        temperature += 0.5
        await server.write_str(f"{request} {temperature:.1f}")


async def main() -> None:
    async with OneClientServer(port=0, connect_callback=log_state) as server:
        async with trio.open_nursery() as nursery:
            async with Client("127.0.0.1", server.port) as client:
                await server.wait_connected()
                nursery.start_soon(controller, server)
                for _ in range(3):
                    with trio.move_on_after(5) as scope:
                        await client.write_str("TEMP?")
                        print("client:", await client.read_str())
                    if scope.cancelled_caught:
                        print("client: no answer within 5 s")
    print("done")


if __name__ == "__main__":
    trio.run(main)
