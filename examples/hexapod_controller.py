"""A mock hexapod controller and its client, built from the protocol toolkit.

Like the controllers that ``lsst.ts.hexrotcomm`` talks to, the mock has two
ports, and every message is a ``Header`` followed by the body its
``frame_id`` selects:

- the command port: the client sends ``Header + Command``; the controller
  answers with ``Header + Ack`` carrying the command's ``counter``, and later
  sends events (``Header + Event``, e.g. "motion done") on the same
  connection;
- the telemetry port: the controller sends ``Header + Config`` once, then
  streams ``Header + Telemetry`` at 50 Hz. It also sends one ``Diagnostic``
  message, which this (older) client does not know: the header's ``length``
  field lets the client skip it and stay in step.

The client (:class:`HexapodClient`, the page of code a controller package
would ship) matches acks to commands by counter with a ``Correlator``, routes
events to a callback, and reads telemetry with a ``StructDispatcher``.

The scripted session: a MOVE that is rejected (not enabled), ENABLE, a MOVE
and its "motion done" event, a SELF_TEST whose ack comes too late (a clear
``TimeoutError``; the late ack is logged and dropped; the connection stays
usable), and STOP. It prints a summary and exits 0.

Run it::

    python examples/hexapod_controller.py
    python examples/hexapod_controller.py --backend trio
"""

from __future__ import annotations

import argparse
import ctypes
import enum
import logging
import time
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import anyio
import anyio.abc

from anytcpip import (
    Client,
    Correlator,
    OneClientReadLoopServer,
    OneClientServer,
    RequestTimeoutError,
    StructDispatcher,
    UnknownMessageError,
)

# -- the protocol -------------------------------------------------------------------


class FrameId(enum.IntEnum):
    COMMAND = 1
    ACK = 2
    EVENT = 3
    TELEMETRY = 4
    CONFIG = 5
    DIAGNOSTIC = 99  # newer than the client: it does not know this one


class CommandCode(enum.IntEnum):
    ENABLE = 1
    MOVE = 2
    STOP = 3
    SELF_TEST = 4


class AckStatus(enum.IntEnum):
    OK = 0
    REJECTED = 1


class ControllerState(enum.IntEnum):
    DISABLED = 0
    ENABLED = 1
    MOVING = 2


class Header(ctypes.LittleEndianStructure):
    _pack_ = 1
    _fields_ = [
        ("frame_id", ctypes.c_uint16),
        ("length", ctypes.c_uint16),  # body size in bytes
        ("counter", ctypes.c_uint32),  # command counter, echoed in the ack
        ("timestamp", ctypes.c_double),  # seconds since the epoch
    ]


Pose = ctypes.c_double * 6  # x, y, z (mm), u, v, w (deg)


class Command(ctypes.LittleEndianStructure):
    _pack_ = 1
    _fields_ = [("code", ctypes.c_uint32), ("params", Pose)]


class Ack(ctypes.LittleEndianStructure):
    _pack_ = 1
    _fields_ = [("status", ctypes.c_int32), ("reason", ctypes.c_char * 60)]


class Event(ctypes.LittleEndianStructure):
    _pack_ = 1
    _fields_ = [("code", ctypes.c_uint32), ("position", Pose)]


MOTION_DONE = 1


class Telemetry(ctypes.LittleEndianStructure):
    _pack_ = 1
    _fields_ = [("state", ctypes.c_uint32), ("position", Pose)]


class Config(ctypes.LittleEndianStructure):
    _pack_ = 1
    _fields_ = [("max_speed", ctypes.c_double), ("limits", Pose)]


class Diagnostic(ctypes.LittleEndianStructure):
    _pack_ = 1
    _fields_ = [("temperatures", ctypes.c_float * 8)]


CLIENT_FRAMES = StructDispatcher(
    Header,
    "frame_id",
    {
        FrameId.COMMAND: Command,
        FrameId.ACK: Ack,
        FrameId.EVENT: Event,
        FrameId.TELEMETRY: Telemetry,
        FrameId.CONFIG: Config,
    },
    length_field="length",
)
CONTROLLER_FRAMES = StructDispatcher(
    Header,
    "frame_id",
    {**CLIENT_FRAMES.bodies, FrameId.DIAGNOSTIC: Diagnostic},
    length_field="length",
)

Message = tuple[Header, Any]

# -- the mock controller ------------------------------------------------------------


class CommandServer(OneClientReadLoopServer):
    """The command port: one ``Header + Command`` in, one ``Header + Ack`` out."""

    def __init__(self, hexapod: MockHexapod, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hexapod = hexapod

    async def read_and_dispatch(self) -> None:
        header, command = await CONTROLLER_FRAMES.read(self)
        if not isinstance(command, Command):
            raise ValueError(f"expected a command, got {command!r}")
        await self.hexapod.handle(header.counter, command)


class MockHexapod:
    """A pretend hexapod: a pose that moves towards a target when enabled."""

    SPEED = 25.0  # mm/s, deg/s
    SELF_TEST_DURATION = 0.5  # s; longer than the client's timeout for it

    def __init__(self) -> None:
        self.state = ControllerState.DISABLED
        self.position = [0.0] * 6
        self.target = [0.0] * 6
        self.commands = CommandServer(self, port=0, name="hexapod-commands")
        self.telemetry = OneClientServer(port=0, name="hexapod-telemetry")
        self._stack = AsyncExitStack()
        self._task_group: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> MockHexapod:
        stack = self._stack
        await stack.enter_async_context(self.commands)
        await stack.enter_async_context(self.telemetry)
        self._task_group = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(self._task_group.cancel_scope.cancel)
        self._task_group.start_soon(self._stream_telemetry)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def send(self, conn: OneClientServer, body: Any, counter: int = 0) -> None:
        header = Header(counter=counter, timestamp=time.time())
        await CONTROLLER_FRAMES.write(conn, body, header=header)

    async def ack(self, counter: int, reason: str = "") -> None:
        status = AckStatus.REJECTED if reason else AckStatus.OK
        await self.send(self.commands, Ack(status, reason.encode()), counter)

    async def handle(self, counter: int, command: Command) -> None:
        assert self._task_group is not None
        match command.code:
            case CommandCode.ENABLE:
                self.state = ControllerState.ENABLED
                await self.ack(counter)
            case CommandCode.MOVE if self.state == ControllerState.DISABLED:
                await self.ack(counter, "not enabled")
            case CommandCode.MOVE:
                self.target = list(command.params)
                self.state = ControllerState.MOVING
                await self.ack(counter)
                self._task_group.start_soon(self._move)
            case CommandCode.STOP:
                self.target = list(self.position)
                await self.ack(counter)
            case CommandCode.SELF_TEST:
                self._task_group.start_soon(self._self_test, counter)
            case code:
                await self.ack(counter, f"unknown command {code}")

    async def _move(self) -> None:
        step = self.SPEED * 0.01
        while self.position != self.target:
            await anyio.sleep(0.01)
            self.position = [
                p + max(-step, min(step, t - p))
                for p, t in zip(self.position, self.target, strict=True)
            ]
        self.state = ControllerState.ENABLED
        try:
            await self.send(self.commands, Event(MOTION_DONE, Pose(*self.position)))
        except ConnectionError:
            pass  # the client left

    async def _self_test(self, counter: int) -> None:
        await anyio.sleep(self.SELF_TEST_DURATION)
        try:
            await self.ack(counter)
        except ConnectionError:
            pass

    async def _stream_telemetry(self) -> None:
        server = self.telemetry
        while True:
            await server.wait_connected()
            try:
                await self.send(server, Config(self.SPEED, Pose(*[100.0] * 6)))
                for sample in range(1_000_000):
                    if sample == 3:
                        await self.send(server, Diagnostic((ctypes.c_float * 8)()))
                    await self.send(server, Telemetry(self.state, Pose(*self.position)))
                    await anyio.sleep(0.02)
            except ConnectionError:
                pass  # the client left; wait for the next one


# -- the client: what a controller package ships ------------------------------------


class CommandRejected(RuntimeError):
    """The controller acknowledged a command with a rejection."""


class HexapodClient:
    """Command a hexapod and follow its telemetry (two connections)."""

    def __init__(
        self, host: str, command_port: int, telemetry_port: int, timeout: float = 2.0
    ) -> None:
        self.commands = Client(host, command_port, name="commands")
        self.telemetry_link = Client(host, telemetry_port, name="telemetry")
        self.correlator: Correlator[Message] = Correlator(
            self.commands,
            # Acks carry the counter of their command; events carry none.
            id_of=lambda m: m[0].counter if m[0].frame_id == FrameId.ACK else None,
            request_id_of=lambda m: m[0].counter,
            read=lambda: CLIENT_FRAMES.read(self.commands),
            write=lambda m: CLIENT_FRAMES.write(self.commands, m[1], header=m[0]),
            on_unsolicited=self._on_event,
            timeout=timeout,
        )
        self.config: Config | None = None
        self.telemetry: Telemetry | None = None
        self.samples = 0
        self.skipped: list[int] = []  # ids of unknown messages skipped
        self.events: list[Event] = []
        self._got_config = anyio.Event()
        self._motion_done = anyio.Event()
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> HexapodClient:
        stack = self._stack
        await stack.enter_async_context(self.commands)
        await stack.enter_async_context(self.telemetry_link)
        await stack.enter_async_context(self.correlator)
        task_group = await stack.enter_async_context(anyio.create_task_group())
        stack.callback(task_group.cancel_scope.cancel)
        task_group.start_soon(self._read_telemetry)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def command(
        self, code: CommandCode, *params: float, timeout: float | None = None
    ) -> None:
        """Send a command and wait for its ack; raise if it is rejected."""
        header = Header(counter=self.correlator.next_id(), timestamp=time.time())
        body = Command(code, Pose(*params))
        if code == CommandCode.MOVE:
            self._motion_done = anyio.Event()
        _, ack = await self.correlator.request((header, body), timeout=timeout)
        if ack.status != AckStatus.OK:
            raise CommandRejected(f"{code.name} rejected: {ack.reason.decode()}")

    async def wait_config(self) -> Config:
        await self._got_config.wait()
        assert self.config is not None
        return self.config

    async def wait_motion_done(self) -> Event:
        await self._motion_done.wait()
        return self.events[-1]

    async def _on_event(self, message: Message) -> None:
        _, event = message
        self.events.append(event)
        if event.code == MOTION_DONE:
            self._motion_done.set()

    async def _read_telemetry(self) -> None:
        while True:
            try:
                _, body = await CLIENT_FRAMES.read(self.telemetry_link)
            except UnknownMessageError as exc:
                if not exc.resynchronised:
                    raise
                self.skipped.append(exc.message_id)
                continue
            except ConnectionError:
                return
            if isinstance(body, Telemetry):
                self.telemetry = body
                self.samples += 1
            elif isinstance(body, Config):
                self.config = body
                self._got_config.set()


# -- the scripted session -----------------------------------------------------------


async def main(backend: str) -> None:
    print(f"backend: {backend}")
    async with MockHexapod() as hexapod:
        async with HexapodClient(
            "127.0.0.1", hexapod.commands.port, hexapod.telemetry.port
        ) as client:
            with anyio.fail_after(10):
                config = await client.wait_config()
                print(f"config: max speed {config.max_speed} mm/s")

                try:
                    await client.command(CommandCode.MOVE, 1, 2, 3, 0, 0, 0)
                except CommandRejected as exc:
                    print(exc)
                else:
                    raise AssertionError("MOVE while disabled was not rejected")

                await client.command(CommandCode.ENABLE)
                print("ENABLE acknowledged")

                await client.command(CommandCode.MOVE, 1, 2, 3, 0.5, 0, 0)
                print("MOVE acknowledged")
                done = await client.wait_motion_done()
                print(f"motion done at {list(done.position)}")

                try:
                    await client.command(CommandCode.SELF_TEST, timeout=0.2)
                except RequestTimeoutError as exc:
                    print(f"SELF_TEST timed out: {exc}")
                else:
                    raise AssertionError("SELF_TEST did not time out")
                while client.correlator.late_replies < 1:  # noqa: ASYNC110 (the late ack)
                    await anyio.sleep(0.05)
                print(f"late acks dropped: {client.correlator.late_replies}")

                await client.command(CommandCode.STOP)
                print("STOP acknowledged (the connection stayed usable)")

                while client.samples < 10 or not client.skipped:  # noqa: ASYNC110
                    await anyio.sleep(0.02)
                assert client.telemetry is not None
                position = list(client.telemetry.position)
                assert position == [1.0, 2.0, 3.0, 0.5, 0.0, 0.0], position
                print(
                    f"telemetry: {client.samples} samples, last position "
                    f"{position}, unknown message ids skipped: {client.skipped}"
                )
    print("done")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Mock hexapod controller and client")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    anyio.run(main, args.backend, backend=args.backend)
