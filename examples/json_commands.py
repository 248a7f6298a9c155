"""JSON command/response: a mock controller and the client that commands it.

The server reads one JSON command per line and answers with an
acknowledgement carrying the same ``id``; an unknown command gets an error
reply (the connection stays up). The client sends a short script and checks
every reply.

Run it::

    python examples/json_commands.py
    python examples/json_commands.py --backend trio
"""

from __future__ import annotations

import argparse
from typing import Any

import anyio

from anytcpip import Client, OneClientReadLoopServer


class MockMount(OneClientReadLoopServer):
    """A pretend telescope mount with a position and a tracking flag."""

    position = 0.0
    tracking = False

    async def read_and_dispatch(self) -> None:
        command = await self.read_json()
        reply: dict[str, Any] = {"id": command.get("id")}
        match command.get("cmd"):
            case "move":
                self.position = float(command["position"])
                reply.update(ack="done", position=self.position)
            case "track":
                self.tracking = bool(command["on"])
                reply.update(ack="done", tracking=self.tracking)
            case "status":
                reply.update(ack="done", position=self.position, tracking=self.tracking)
            case other:
                reply.update(ack="error", reason=f"unknown command {other!r}")
        await self.write_json(reply)


async def main() -> None:
    script: list[dict[str, Any]] = [
        {"cmd": "move", "position": 42.5},
        {"cmd": "track", "on": True},
        {"cmd": "dance"},
        {"cmd": "status"},
    ]
    async with MockMount(port=0) as server:
        async with Client("127.0.0.1", server.port) as client:
            with anyio.fail_after(5):
                for number, command in enumerate(script, start=1):
                    await client.write_json({"id": number, **command})
                    reply = await client.read_json()
                    assert reply["id"] == number
                    print(f"{command} -> {reply}")
    assert reply == {"id": 4, "ack": "done", "position": 42.5, "tracking": True}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="JSON command/response")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    anyio.run(main, backend=parser.parse_args().backend)
