"""Tap, record and replay the hexapod example's controller link.

The hexapod controller of ``hexapod_controller.py`` speaks a binary
protocol on two ports (commands, telemetry): a 16-byte ``Header`` whose
``length`` field (2 bytes, little-endian, at offset 2) counts the body that
follows. This script

- ``controller``: runs that mock controller on fixed ports, as a real one
  would be;
- ``client``: runs the client's scripted session against any pair of
  ports (the controller, two taps, or two replays) and prints the replies;
- ``demo`` (the default): does the whole story in one process with the
  library: records the session through two ``Tap``s, replays the
  recordings with two ``ReplayServer``s, runs the same session against the
  replay and checks the client gets the same replies.

Run it::

    python examples/tap_record_replay.py
    python examples/tap_record_replay.py demo --backend trio
    python examples/tap_record_replay.py controller --port 5001 --telemetry-port 5002
    python examples/tap_record_replay.py client 127.0.0.1 5001 5002

See docs/guide/debugging.md for the same story with the ``anytcpip``
command.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys
import tempfile

import anyio

# The hexapod example next to this file (also when imported, e.g. by a test).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from hexapod_controller import (
    CommandCode,
    CommandRejected,
    HexapodClient,
    MockHexapod,
)

from anytcpip.recording import Framing, Recording, load
from anytcpip.testing import ReplayServer, Tap, ignore_bytes

# A 16-byte header whose length field (2 bytes, little-endian, at offset 2)
# counts the body after the header.
HEXAPOD_FRAMING = Framing(
    "frames", prefix=2, byteorder="little", length_offset=2, header_size=16
)
# Commands carry a timestamp (header bytes 8 to 16) that differs on every
# run: match them ignoring it (the counter, bytes 4 to 8, must match).
COMMAND_KEY = ignore_bytes((8, 16))


async def drive(client: HexapodClient) -> list[str]:
    """The client's test session: return what it got, one line per reply."""
    replies = []
    with anyio.fail_after(20):
        config = await client.wait_config()
        replies.append(f"config: max speed {config.max_speed} mm/s")
        try:
            await client.command(CommandCode.MOVE, 1, 2, 3, 0, 0, 0)
        except CommandRejected as exc:
            replies.append(str(exc))
        await client.command(CommandCode.ENABLE)
        replies.append("ENABLE acknowledged")
        await client.command(CommandCode.MOVE, 1, 2, 3, 0.5, 0, 0)
        replies.append("MOVE acknowledged")
        done = await client.wait_motion_done()
        replies.append(f"motion done at {list(done.position)}")
        await client.command(CommandCode.STOP)
        replies.append("STOP acknowledged")
    return replies


async def run_client(host: str, command_port: int, telemetry_port: int) -> None:
    async with HexapodClient(host, command_port, telemetry_port) as client:
        for line in await drive(client):
            print(line)


async def run_controller(port: int, telemetry_port: int) -> None:
    hexapod = MockHexapod()
    hexapod.commands.port = port  # the example picks free ports by default
    hexapod.telemetry.port = telemetry_port
    async with hexapod:
        print(
            f"hexapod controller on 127.0.0.1:{hexapod.commands.port} (commands) "
            f"and 127.0.0.1:{hexapod.telemetry.port} (telemetry)",
            flush=True,
        )
        await anyio.sleep_forever()


async def demo(directory: pathlib.Path) -> None:
    # 1. Record: the client talks to the controller through two taps.
    command_file = directory / "commands.jsonl"
    telemetry_file = directory / "telemetry.jsonl"
    async with MockHexapod() as hexapod:
        async with (
            Tap(
                "127.0.0.1",
                hexapod.commands.port,
                framing=HEXAPOD_FRAMING,
                record=command_file,
            ) as command_tap,
            Tap(
                "127.0.0.1",
                hexapod.telemetry.port,
                framing=HEXAPOD_FRAMING,
                record=telemetry_file,
            ) as telemetry_tap,
        ):
            async with HexapodClient(
                "127.0.0.1", command_tap.port, telemetry_tap.port
            ) as client:
                recorded_replies = await drive(client)
            with anyio.fail_after(10):
                await command_tap.wait_sessions_ended(1)
                await telemetry_tap.wait_sessions_ended(1)
    commands: Recording = load(command_file)
    telemetry = load(telemetry_file)
    print(
        f"recorded {len(commands.messages('c2s'))} commands, "
        f"{len(commands.messages('s2c'))} acks and events, "
        f"{len(telemetry.messages('s2c'))} telemetry messages"
    )

    # 2. Replay: the same client session against the recordings.
    async with (
        ReplayServer(commands, key=COMMAND_KEY) as command_replay,
        ReplayServer(telemetry) as telemetry_replay,
    ):
        async with HexapodClient(
            "127.0.0.1", command_replay.port, telemetry_replay.port
        ) as client:
            replayed_replies = await drive(client)
    for line in replayed_replies:
        print(f"replay: {line}")
    assert replayed_replies == recorded_replies, (recorded_replies, replayed_replies)
    print("the replay answered exactly as the controller did")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    commands = parser.add_subparsers(dest="mode")
    demo_parser = commands.add_parser("demo", help="the whole story in one process")
    demo_parser.add_argument("--backend", choices=["asyncio", "trio"])
    controller = commands.add_parser("controller", help="run the mock controller")
    controller.add_argument("--port", type=int, default=0)
    controller.add_argument("--telemetry-port", type=int, default=0)
    client = commands.add_parser("client", help="run the client's session")
    client.add_argument("host")
    client.add_argument("port", type=int)
    client.add_argument("telemetry_port", type=int)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    backend = args.backend or "asyncio"
    if args.mode == "controller":
        try:
            anyio.run(run_controller, args.port, args.telemetry_port, backend=backend)
        except KeyboardInterrupt:
            pass
    elif args.mode == "client":
        anyio.run(
            run_client, args.host, args.port, args.telemetry_port, backend=backend
        )
    else:
        print(f"backend: {backend}")
        with tempfile.TemporaryDirectory() as directory:
            anyio.run(demo, pathlib.Path(directory), backend=backend)


if __name__ == "__main__":
    main()
