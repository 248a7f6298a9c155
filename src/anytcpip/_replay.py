"""``ReplayServer``: serve a recording as a mock controller.

Rationale
---------
A recording is a dialogue. Each message the client sent is a *command*; the
messages the controller sent after it, up to the client's next command, are
its *answers*, each with its delay after the command. What the controller
sent before the first command (and every heartbeat, and what a user's
``unsolicited`` predicate picks) is *unsolicited*: telemetry, sent on a
timeline relative to the connection.

Commands are matched by a key: by default the whole message (its bytes on
the wire); a key function can ignore what changes from run to run (a
sequence number, a timestamp). A command seen several times with different
answers gets them in recorded order, then the last one again. A command
that is not in the recording is logged and gets ``unknown_reply`` (or
nothing). A recorded EOF or reset from the controller ends the client's
connection the same way (a close, or a reset with ``SO_LINGER`` 0).

Each client gets a fresh replay: the per-command positions and the
unsolicited timeline restart on each connection. The work for a client runs
in a task bound to its connection (``_start_channel_tasks``), and every
write checks that the connection is still the current one, so nothing of a
replay ever reaches the next client.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import struct
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import anyio.abc

from ._channel import Channel
from ._exceptions import IncompleteReadError, LimitOverrunError
from ._server import OneClientServer
from ._socket_options import raw_socket
from .recording import Framing, Recording, load

__all__ = [
    "KeyFunction",
    "ReplayServer",
    "ignore_bytes",
    "ignore_json_fields",
    "regex_key",
]

KeyFunction = Callable[[bytes], Hashable]
"""Maps a message (its bytes on the wire) to the key commands are matched by."""


def ignore_json_fields(*names: str) -> KeyFunction:
    """Return a key function that matches JSON messages ignoring some fields.

    The key is the message's JSON with the top-level fields ``names``
    removed, keys sorted; a message that is not a JSON object is its own
    key.

    Parameters
    ----------
    *names
        Top-level fields to ignore, e.g. ``"seq"``.
    """
    ignored = frozenset(names)

    def key(message: bytes) -> Hashable:
        try:
            obj = json.loads(message)
        except (ValueError, RecursionError):
            return message
        if not isinstance(obj, dict):
            return message
        kept = {name: value for name, value in obj.items() if name not in ignored}
        return json.dumps(kept, sort_keys=True)

    return key


def regex_key(pattern: str | re.Pattern[str], encoding: str = "utf-8") -> KeyFunction:
    r"""Return a key function that matches messages on a part picked by a regex.

    The key is the pattern's first group (or its whole match if it has no
    group) in the decoded message; a message it does not match is its own
    key.

    Parameters
    ----------
    pattern
        A regular expression, e.g. ``r"^(\w+)"`` to match on the first word.
    encoding
        How to decode messages (undecodable bytes are replaced).
    """
    regex = re.compile(pattern)

    def key(message: bytes) -> Hashable:
        match = regex.search(message.decode(encoding, errors="replace"))
        if match is None:
            return message
        return match.group(1) if regex.groups else match.group(0)

    return key


def ignore_bytes(*ranges: tuple[int, int]) -> KeyFunction:
    """Return a key function that matches binary messages ignoring byte ranges.

    Parameters
    ----------
    *ranges
        ``(start, end)`` slices to ignore (zeroed before comparing), e.g.
        ``(8, 16)`` for a timestamp in a header.
    """
    for start, end in ranges:
        if not 0 <= start <= end:
            raise ValueError(f"byte range {start}:{end} must have 0 <= start <= end")

    def key(message: bytes) -> Hashable:
        masked = bytearray(message)
        for start, end in ranges:
            masked[start:end] = bytes(len(masked[start:end]))
        return bytes(masked)

    return key


def _whole(message: bytes) -> Hashable:
    return message


@dataclass
class _Reply:
    delay: float  # seconds after the command (or the connection)
    payload: bytes | None  # None: end the connection, as ``end`` says
    end: Literal["eof", "reset"] = "eof"


@dataclass
class Script:
    """What a replay sends: answers by command key, and unsolicited messages."""

    answers: dict[Hashable, list[list[_Reply]]] = field(default_factory=dict)
    unsolicited: list[_Reply] = field(default_factory=list)
    commands: int = 0


def build_script(
    recording: Recording,
    key: KeyFunction = _whole,
    *,
    session: int | None = None,
    unsolicited: Callable[[bytes], bool] | None = None,
) -> Script:
    """Cut a recorded session into commands, answers and unsolicited messages.

    Raises
    ------
    ValueError
        If the recording has no such session.
    """
    sessions = recording.sessions
    if session is None:
        session = next(
            (n for n in sessions if recording.messages(session=n)),
            sessions[0] if sessions else 1,
        )
    elif session not in sessions:
        raise ValueError(
            f"the recording has no session {session} (it has {sessions or 'none'})"
        )
    records = [record for record in recording.records if record.session == session]
    framing = recording.framing
    start = next(
        (record.time for record in records if record.kind == "connect"),
        records[0].time if records else 0.0,
    )
    script = Script()
    current: list[_Reply] | None = None
    command_time = start
    for record in records:
        if record.kind == "data" and record.direction == "c2s":
            if framing.is_heartbeat(record.payload):
                continue
            current = []
            script.answers.setdefault(key(record.payload), []).append(current)
            script.commands += 1
            command_time = record.time
        elif record.direction == "s2c" and record.kind in ("data", "eof", "reset"):
            payload = record.payload if record.kind == "data" else None
            end: Literal["eof", "reset"] = "reset" if record.kind == "reset" else "eof"
            is_unsolicited = (
                current is None
                or (payload is not None and framing.is_heartbeat(payload))
                or (
                    payload is not None
                    and unsolicited is not None
                    and unsolicited(payload)
                )
            )
            if is_unsolicited:
                script.unsolicited.append(_Reply(record.time - start, payload, end))
            else:
                assert current is not None
                current.append(_Reply(record.time - command_time, payload, end))
    return script


class ReplayServer(OneClientServer):
    """A mock controller that answers as a recorded controller did.

    ``async with ReplayServer(recording, port=0) as server:`` listens on
    ``server.port``; a client that connects gets, for each message it sends,
    the messages the real controller sent in answer to the same message in
    the recording, and the controller's unsolicited messages (telemetry) on
    their recorded timeline. A command recorded several times with different
    answers gets them in recorded order, then the last one again. A recorded
    close or reset by the controller is replayed as a close or a reset.

    Parameters
    ----------
    recording
        A :class:`~anytcpip.recording.Recording`, or the path of a recording
        file.
    host, port
        Where to listen (default: loopback, a free port).
    key
        Maps a message (bytes, as on the wire) to what commands are matched
        by; default: the whole message. See :func:`ignore_json_fields`,
        :func:`regex_key`, :func:`ignore_bytes`.
    timing
        ``"recorded"``: each answer is sent after the delay it came after its
        command, and unsolicited messages at their recorded times after the
        connection. ``"fast"``: no waiting: answers at once, unsolicited
        messages at once on connection.
    unknown_reply
        What to send when a command is not in the recording: bytes are sent
        as they are (include the terminator); a str is encoded and framed
        like the recording (for lines: the terminator is added); None sends
        nothing. Either way the command is logged and kept in
        :attr:`unknown_commands`.
    unsolicited
        A predicate on the controller's messages: those it returns True for
        are unsolicited (sent on the connection's timeline) even when they
        follow a command. The controller's messages before the first
        command, and heartbeats, always are.
    session
        Which recorded session to serve; default: the first with messages.
    **kwargs
        The keywords of :class:`~anytcpip.OneClientServer` (``name``,
        ``log``, ``connect_callback``, ...). ``terminator``, ``encoding``
        and ``max_line_length`` default to the recording's framing.

    Attributes
    ----------
    received
        Every message received from the current (or last) client.
    unknown_commands
        The messages that were not in the recording.
    """

    def __init__(
        self,
        recording: Recording | str | os.PathLike[str],
        *,
        host: str | None = "127.0.0.1",
        port: int = 0,
        key: KeyFunction | None = None,
        timing: Literal["recorded", "fast"] = "recorded",
        unknown_reply: bytes | str | None = None,
        unsolicited: Callable[[bytes], bool] | None = None,
        session: int | None = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(recording, Recording):
            recording = load(recording)
        if timing not in ("recorded", "fast"):
            raise ValueError(f"timing={timing!r} must be 'recorded' or 'fast'")
        framing = recording.framing
        if isinstance(unknown_reply, str):
            unknown_reply = framing.encode(unknown_reply.encode(framing.encoding))
        elif unknown_reply is not None and not isinstance(unknown_reply, bytes):
            raise TypeError(
                f"unknown_reply={unknown_reply!r} must be bytes, str or None"
            )
        if framing.is_text:
            kwargs.setdefault("terminator", framing.terminator)
            kwargs.setdefault("encoding", framing.encoding)
        kwargs.setdefault("max_line_length", framing.max_size)
        kwargs.setdefault("name", "replay")
        super().__init__(host, port, **kwargs)
        self.recording = recording
        self.framing: Framing = framing
        self.key: KeyFunction = key or _whole
        self.timing = timing
        self.unknown_reply = unknown_reply
        self.script: Script = build_script(
            recording, self.key, session=session, unsolicited=unsolicited
        )
        self.received: list[bytes] = []
        self.unknown_commands: list[bytes] = []

    def _start_channel_tasks(
        self, channel: Channel, task_group: anyio.abc.TaskGroup
    ) -> None:
        task_group.start_soon(self._replay, channel)

    async def _send(self, channel: Channel, reply: _Reply) -> None:
        # Bound to ``channel``: never to a client that came after it.
        if self._channel is not channel or not channel.is_open:
            raise ConnectionError(f"{channel.who}: the client has left")
        if reply.payload is None:
            if reply.end == "reset":
                self._log.info(
                    "%s: resetting, as the recorded controller did", channel.who
                )
                # An abortive close: the client sees a reset (RST).
                stream = getattr(channel, "stream", None)
                sock = None if stream is None else raw_socket(stream)
                if sock is not None:
                    with contextlib.suppress(OSError, ValueError):
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
            else:
                self._log.info(
                    "%s: closing, as the recorded controller did", channel.who
                )
            await self.close_client()
            raise ConnectionError(f"{channel.who}: closed by the replay")
        await self.write(reply.payload)

    async def _replay(self, channel: Channel) -> None:
        self.received = []
        start = anyio.current_time()
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(
                self._send_all, channel, self.script.unsolicited, start
            )
            try:
                await self._answer_commands(channel, task_group)
            except ConnectionError:
                pass
            except (IncompleteReadError, LimitOverrunError, ValueError) as exc:
                self._log.warning("%s: replay ended: %s", channel.who, exc)
            except Exception:
                self._log.exception("%s: replay failed", channel.who)
            finally:
                task_group.cancel_scope.cancel()
        if self._channel is channel and channel.is_open:
            await self.close_client()

    async def _answer_commands(
        self, channel: Channel, task_group: anyio.abc.TaskGroup
    ) -> None:
        positions: dict[Hashable, int] = {}
        answers = self.script.answers
        while self._channel is channel:
            message = await self._read_message()
            if message is None:
                return
            if self.framing.is_heartbeat(message):
                continue
            self.received.append(message)
            key = self.key(message)
            recorded = answers.get(key)
            if recorded is None:
                self.unknown_commands.append(message)
                self._log.warning(
                    "%s: unknown command %r: not in the recording; %s",
                    channel.who,
                    message,
                    "no reply"
                    if self.unknown_reply is None
                    else f"replying {self.unknown_reply!r}",
                )
                if self.unknown_reply is not None:
                    await self._send(channel, _Reply(0.0, self.unknown_reply))
                continue
            position = positions.get(key, 0)
            positions[key] = position + 1
            replies = recorded[min(position, len(recorded) - 1)]
            if self.timing == "fast":
                for reply in replies:
                    await self._send(channel, reply)
            elif replies:
                task_group.start_soon(
                    self._send_all, channel, replies, anyio.current_time()
                )

    async def _send_all(
        self, channel: Channel, replies: Sequence[_Reply], start: float
    ) -> None:
        try:
            for reply in replies:
                if self.timing == "recorded":
                    await anyio.sleep_until(start + reply.delay)
                await self._send(channel, reply)
        except ConnectionError:
            pass

    async def _read_message(self) -> bytes | None:
        """Read one message as the recording's framing cuts them; None at EOF."""
        framing = self.framing
        try:
            if framing.is_text:
                return await self.readuntil(framing.terminator)
            if framing.kind == "raw":
                return await self.read(65536) or None
            header = await self.readexactly(framing.header_bytes)
            start = framing.length_offset
            length = int.from_bytes(
                header[start : start + framing.prefix], framing.byteorder
            )
            if length > framing.max_size:
                raise ValueError(
                    f"a frame of {length} bytes is larger than {framing.max_size}"
                )
            return header + await self.readexactly(length)
        except IncompleteReadError as exc:
            if exc.partial:
                self._log.info(
                    "replay: the client left mid-message (%d bytes)", len(exc.partial)
                )
            return None
