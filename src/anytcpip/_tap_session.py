"""One tap session: forward a client and its target both ways, unchanged.

Rationale
---------
Two pumps forward raw chunks, one per direction, as soon as they arrive:
nothing is re-framed, reordered, dropped or altered. Only *after* a chunk is
forwarded is a copy cut into messages (:mod:`._tap_framing`) and handed on
as records, so the display and the recording add no latency to the
forwarding.

Ends propagate as they happened: an EOF (FIN) from one side becomes
``send_eof()`` towards the other (a half-close: the other direction keeps
flowing), and a reset (RST) from one side becomes a reset of the other (an
abortive close: ``SO_LINGER`` with a zero timeout, then close). The session
ends when both directions have ended, or at once on a reset.

Listening, accepting, connecting to the target, and what becomes of the
records are the tap's business (:mod:`._tap`), not this module's.
"""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import Callable

import anyio
import anyio.abc

from ._socket_options import raw_socket
from ._streams import close_stream
from ._tap_framing import MessageSplitter
from .recording import Direction, Framing, Record, RecordKind

__all__ = ["CHUNK_SIZE", "TapSession", "abort_stream"]

CHUNK_SIZE = 65536
"""The most bytes forwarded per receive."""

_OTHER: dict[Direction, Direction] = {"c2s": "s2c", "s2c": "c2s"}
_STREAM_ERRORS = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


async def abort_stream(stream: anyio.abc.ByteStream) -> None:
    """Close ``stream`` abortively, so that its peer sees a reset (RST).

    ``SO_LINGER`` with a zero timeout makes the close send an RST instead of
    a FIN. A stream without a socket is just closed.
    """
    sock = raw_socket(stream)
    if sock is not None:
        try:
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        except (OSError, ValueError):  # already closed (uvloop: ValueError)
            pass
    with anyio.CancelScope(shield=True):
        await close_stream(stream)


class TapSession:
    """One client connection and its target connection.

    Parameters
    ----------
    number
        The session's number (1 for the tap's first client).
    client
        The accepted client's stream.
    framing
        How to cut the forwarded bytes into messages for the records.
    emit
        Called with each :class:`~anytcpip.recording.Record`: each message
        after it is forwarded, each EOF and reset, and the final close.
    clock
        Returns the time stamp of a record.
    log
        Where EOFs and resets are logged.
    """

    def __init__(
        self,
        number: int,
        client: anyio.abc.ByteStream,
        framing: Framing,
        emit: Callable[[Record], None],
        clock: Callable[[], float],
        log: logging.Logger,
    ) -> None:
        self.number = number
        self.client = client
        self.streams: dict[Direction, anyio.abc.ByteStream] = {
            "c2s": client,  # where c2s data goes: the target, once connected
            "s2c": client,
        }
        self.splitters = {
            "c2s": MessageSplitter(framing),
            "s2c": MessageSplitter(framing),
        }
        self.reset: Direction | None = None
        self.scope = anyio.CancelScope()
        self._framing = framing
        self._emit = emit
        self._now = clock
        self._log = log

    async def forward(self, server: anyio.abc.ByteStream) -> None:
        """Forward between the client and ``server`` (the target) until the end.

        Returns when both directions have ended (EOF each way), or at once
        after a reset (or when cancelled). Both streams are closed (unless a
        reset already did) and a ``close`` record is emitted.
        """
        client = self.client
        self.streams["c2s"] = server
        try:
            with self.scope:
                async with anyio.create_task_group() as task_group:
                    task_group.start_soon(self._pump, "c2s")
                    task_group.start_soon(self._pump, "s2c")
        finally:
            with anyio.CancelScope(shield=True):
                if self.reset is None:
                    await close_stream(server)
                    await close_stream(client)
                self._emit(Record(self._now(), "close", None, b"", self.number))

    # -- forwarding -------------------------------------------------------------------

    async def _pump(self, direction: Direction) -> None:
        source = self.streams[_OTHER[direction]]
        sink = self.streams[direction]
        while True:
            try:
                data = await source.receive(CHUNK_SIZE)
            except anyio.EndOfStream:
                self._observe(direction, b"")
                self._event("eof", direction)
                try:
                    await sink.send_eof()
                except _STREAM_ERRORS:
                    pass
                return
            except _STREAM_ERRORS:
                self._observe(direction, b"")
                await self._reset(direction)
                return
            try:
                await sink.send(data)
            except _STREAM_ERRORS:
                # The receiving side is gone (it reset, or closed and the OS
                # answered with a reset): reset the sending side too.
                self._observe(direction, data)
                await self._reset(_OTHER[direction])
                return
            self._observe(direction, data)

    async def _reset(self, direction: Direction) -> None:
        """``direction``'s sender reset: reset the other side, end the session."""
        if self.reset is not None:
            return
        self.reset = direction
        self._event("reset", direction)
        victim = self.streams[direction]  # the client if the target reset
        other = self.streams[_OTHER[direction]]
        await abort_stream(victim)
        with anyio.CancelScope(shield=True):
            await close_stream(other)  # already broken: just release it
        self.scope.cancel()

    # -- observing --------------------------------------------------------------------

    def _event(self, kind: RecordKind, direction: Direction) -> None:
        self._emit(Record(self._now(), kind, direction, b"", self.number))
        who = "client" if direction == "c2s" else "target"
        self._log.info(
            "tap: session %d: %s %s",
            self.number,
            who,
            "closed its side (EOF)" if kind == "eof" else "reset the connection",
        )

    def _observe(self, direction: Direction, data: bytes) -> None:
        messages = self.splitters[direction].feed(data)
        if not messages:
            return
        now = self._now()
        framing = self._framing
        for message, partial in messages:
            self._emit(
                Record(
                    now,
                    "data",
                    direction,
                    message,
                    self.number,
                    heartbeat=framing.is_heartbeat(message),
                    partial=partial,
                )
            )
