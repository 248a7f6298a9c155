"""``Tap``: a one-client TCP proxy that shows and records what it forwards.

Rationale
---------
A client connects to the tap; the tap then connects to the target (the real
controller), one target connection per client connection, so each client
session is a fresh session with the controller, exactly as without the tap.
The two connections are forwarded both ways, unchanged, by a
:class:`TapSession` (:mod:`._tap_session`: raw chunks, EOF as a half-close,
reset as a reset); this module listens, accepts, connects to the target, and
sends each record the session emits to the display and the recording (a
failing display or recording is turned off, never the forwarding).

While a session runs, other clients are accepted and closed at once with
nothing sent, as :class:`OneClientServer` does. A target that cannot be
reached is logged, the client is reset (the nearest a proxy can come to a
refused connection), and ``on_target_error`` is called; the tap keeps
listening.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from types import TracebackType
from typing import Literal

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.stapled import MultiListener

from ._constants import DEFAULT_LOCALHOST
from ._options import check_timeout
from ._streams import close_stream, host_port, peer_address
from ._tap_framing import format_record
from ._tap_session import TapSession, abort_stream
from ._tcp_connect import connect_tcp
from .recording import Framing, Header, Record, Recording, RecordingWriter

__all__ = ["Tap"]

DEFAULT_CONNECT_TIMEOUT = 10.0
"""Seconds the tap waits for the target to accept a connection."""


def describe_error(error: OSError) -> str:
    """Return the OS's own words for ``error`` (e.g. "Connection refused")."""
    if error.errno:
        return os.strerror(error.errno)
    return error.strerror or str(error)


def _os_error(exc: OSError) -> OSError:
    """Return the OS's own error behind anyio's "All connection attempts failed".

    anyio chains the attempt's error (or a group of them, one per address)
    as the cause; the first one with an ``errno`` keeps its type (e.g.
    ``ConnectionRefusedError``).
    """
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno is not None:
            return cause
        inner = getattr(cause, "exceptions", None)  # an exception group
        if isinstance(inner, tuple) and inner:
            cause = inner[0]
        else:
            cause = cause.__cause__
    return exc


class Tap:
    """A transparent one-client proxy that shows and records each message.

    ``async with Tap(target_host, target_port, record=path) as tap:`` listens
    on ``tap.host``:``tap.port``; point the client there instead of at the
    controller. Each client connection gets its own connection to the
    target; bytes flow both ways unchanged, and each message is shown (with
    ``display``) and recorded (with ``record``) after it is forwarded.

    Parameters
    ----------
    target_host, target_port
        The real controller.
    host
        Address to listen on; None for all interfaces. Default: loopback.
    port
        Port to listen on; 0 picks a free one (see :attr:`Tap.port`).
    framing
        How to cut messages for display and recording: a
        :class:`~anytcpip.recording.Framing`, or its kind (``"lines"``,
        ``"json"``, ``"frames"``, ``"raw"``) with the default options.
    record
        Where to record the session(s): a file path (JSON Lines, see
        :mod:`anytcpip.recording`), a list (to which each
        :class:`~anytcpip.recording.Record` is appended), or None.
    display
        Called with each formatted entry (timestamp, direction, decoded
        message; connects, EOFs, resets); e.g. ``print``. None shows nothing.
    hide_heartbeats
        Do not display heartbeat lines (they are still forwarded and
        recorded).
    connect_timeout
        Seconds to wait for the target to accept each connection.
    on_target_error
        Called with the error when the target cannot be reached for a
        client (the client is reset, the error logged, and the tap keeps
        listening).
    log
        Logger; default: the ``anytcpip.tap`` logger.

    Attributes
    ----------
    header
        The recording's header (also when recording to a list).
    rejected_count
        How many extra clients were turned away.
    sessions
        How many client sessions have started.
    target_errors
        Every error met connecting to the target.
    record_error
        Why recording stopped, if writing the file failed (the tap logs it
        and keeps forwarding).
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        host: str | None = DEFAULT_LOCALHOST,
        port: int = 0,
        framing: Framing | Literal["lines", "json", "frames", "raw"] = "lines",
        record: str | os.PathLike[str] | list[Record] | None = None,
        display: Callable[[str], object] | None = None,
        hide_heartbeats: bool = False,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        on_target_error: Callable[[OSError], object] | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        for name, value in (("target_port", target_port), ("port", port)):
            if (
                not isinstance(value, int)
                or isinstance(value, bool)
                or not 0 <= value < 65536
            ):
                raise ValueError(f"{name}={value!r} must be an int in 0..65535")
        check_timeout("connect_timeout", connect_timeout)
        self.target_host = target_host
        self.target_port = target_port
        self.host = host
        self.port: int = port
        """The port the tap listens on (the real one once entered, even for 0)."""
        self.framing: Framing = (
            framing if isinstance(framing, Framing) else Framing(framing)
        )
        self.display = display
        self.hide_heartbeats = hide_heartbeats
        self.connect_timeout = connect_timeout
        self.on_target_error = on_target_error
        self.log: logging.Logger = log or logging.getLogger("anytcpip.tap")
        self.header: Header = Header.now(self.framing, target=self.target)
        self.rejected_count: int = 0
        self.sessions: int = 0
        self.target_errors: list[OSError] = []
        self.record_error: OSError | None = None
        self._record = record
        self._records: list[Record] | None = None
        self._writer: RecordingWriter | None = None
        self._t0 = time.perf_counter()
        self._listener: MultiListener[anyio.abc.SocketStream] | None = None
        self._task_group: anyio.abc.TaskGroup | None = None
        self._session: TapSession | None = None
        self._ended = 0
        self._changed: anyio.Event | None = None  # created when entered
        self._entered = False

    @property
    def target(self) -> str:
        """The target as ``host:port``."""
        return host_port(self.target_host, self.target_port)

    @property
    def connected(self) -> bool:
        """Whether a client session is running."""
        return self._session is not None

    @property
    def recording(self) -> Recording:
        """What was recorded to a list, as a :class:`~anytcpip.recording.Recording`.

        Raises
        ------
        RuntimeError
            If ``record`` was not a list (load a file with
            :func:`anytcpip.recording.load`).
        """
        if not isinstance(self._record, list):
            raise RuntimeError("recording() needs record=[] (a list)")
        return Recording(self.header, self._record)

    @property
    def sessions_ended(self) -> int:
        """How many client sessions have ended."""
        return self._ended

    # -- life cycle ---------------------------------------------------------------

    async def __aenter__(self) -> Tap:
        if self._entered:
            raise RuntimeError("a Tap can only be started once")
        self._entered = True
        try:
            await anyio.getaddrinfo(
                self.target_host, self.target_port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise type(exc)(
                exc.errno or 0, f"cannot resolve target {self.target}: {reason}"
            ) from exc
        try:
            listener = await anyio.create_tcp_listener(
                local_host=self.host, local_port=self.port
            )
        except OSError as exc:
            message = (
                f"tap: cannot listen on {host_port(self.host, self.port)}: "
                f"{exc.strerror or exc}"
            )
            raise OSError(exc.errno or 0, message) from exc
        self._listener = listener
        self.port = listener.extra(SocketAttribute.local_port)
        self._changed = anyio.Event()
        self._t0 = time.perf_counter()
        self.header = Header.now(
            self.framing, host_port(self.host, self.port), self.target
        )
        try:
            if isinstance(self._record, list):
                self._records = self._record
            elif self._record is not None:
                try:
                    self._writer = RecordingWriter(self._record, self.header)
                except OSError as exc:
                    path = os.fspath(self._record)
                    reason = exc.strerror or str(exc)
                    raise OSError(
                        exc.errno or 0,
                        f"tap: cannot write the recording {path}: {reason}",
                    ) from exc
            task_group = anyio.create_task_group()
            await task_group.__aenter__()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await close_stream(listener)
            if self._writer is not None:
                self._writer.close()
            raise
        self._task_group = task_group
        for one in listener.listeners:
            task_group.start_soon(self._accept_loop, one, task_group)
        self.log.info(
            "tap: listening on %s, forwarding to %s",
            host_port(self.host, self.port),
            self.target,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening, end the session (closing both sides), close the file."""
        task_group, self._task_group = self._task_group, None
        listener, self._listener = self._listener, None
        try:
            if listener is not None:
                with anyio.CancelScope(shield=True):
                    await close_stream(listener)
            if task_group is not None:
                task_group.cancel_scope.cancel()
                await task_group.__aexit__(None, None, None)
        finally:
            if self._writer is not None:
                self._writer.close()

    async def wait_sessions_ended(self, count: int = 1) -> None:
        """Wait until ``count`` client sessions have ended (at once if they have).

        Bound it with ``anyio.fail_after``.
        """
        while self._ended < count:
            assert self._changed is not None, "the tap is not running"
            await self._changed.wait()

    def _notify(self) -> None:
        event, self._changed = self._changed, anyio.Event()
        if event is not None:
            event.set()

    # -- accepting ------------------------------------------------------------------

    async def _accept_loop(
        self,
        listener: anyio.abc.Listener[anyio.abc.SocketStream],
        task_group: anyio.abc.TaskGroup,
    ) -> None:
        accept = getattr(listener, "accept")  # noqa: B009  (SocketListener API)
        while True:
            try:
                client = await accept()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return
            except OSError as exc:
                self.log.warning("tap: accept failed: %r", exc)
                await anyio.sleep(0.1)
                continue
            if self._session is not None:
                self.rejected_count += 1
                self.log.info(
                    "tap: client %s rejected: another client is connected "
                    "(%d rejected so far)",
                    peer_address(client),
                    self.rejected_count,
                )
                await close_stream(client)
                continue
            self.sessions += 1
            # Claimed before the next accept, so a second client is rejected.
            self._session = TapSession(
                self.sessions, client, self.framing, self._emit, self._now, self.log
            )
            task_group.start_soon(self._serve, self._session)

    async def _serve(self, session: TapSession) -> None:
        client = session.client
        try:
            try:
                with anyio.fail_after(self.connect_timeout):
                    server = await connect_tcp(self.target_host, self.target_port)
            except (OSError, TimeoutError) as exc:
                await self._target_failed(session, exc)
                return
            connect = Record(
                self._now(),
                "connect",
                None,
                b"",
                session.number,
                client=peer_address(client),
            )
            self._emit(connect)
            self.log.info(
                "tap: session %d: client %s <-> target %s",
                session.number,
                peer_address(client),
                self.target,
            )
            await session.forward(server)
        finally:
            with anyio.CancelScope(shield=True):
                await close_stream(client)  # if cancelled while connecting
            if self._session is session:
                self._session = None
            self._ended += 1
            self._notify()

    async def _target_failed(self, session: TapSession, exc: BaseException) -> None:
        if isinstance(exc, OSError):
            error = _os_error(exc)
            reason = describe_error(error)
        else:
            reason = f"no answer within {self.connect_timeout} s"
            error = TimeoutError(reason)
        self.target_errors.append(error)
        self.log.error(
            "tap: cannot connect to target %s for client %s: %s; resetting the client",
            self.target,
            peer_address(session.client),
            reason,
        )
        await abort_stream(session.client)
        if self.on_target_error is not None:
            try:
                self.on_target_error(error)
            except Exception:
                self.log.exception("tap: on_target_error failed")

    # -- records ----------------------------------------------------------------------

    def _now(self) -> float:
        return time.perf_counter() - self._t0

    def _emit(self, record: Record) -> None:
        # Forwarding never stops for the display or the recording: if one
        # fails (disk full, stdout closed), it is logged and turned off.
        writer = self._writer
        if writer is not None:
            try:
                writer.write(record)
            except OSError as exc:
                self._writer = None
                self.record_error = exc
                self.log.error(
                    "tap: cannot write the recording %s: %s; recording stopped "
                    "(forwarding goes on)",
                    writer.path,
                    exc,
                )
                with contextlib.suppress(OSError):
                    writer.close()
        elif self._records is not None:
            self._records.append(record)
        display = self.display
        if display is not None and not (record.heartbeat and self.hide_heartbeats):
            try:
                display(format_record(record, self.framing))
            except Exception as exc:
                self.display = None
                self.log.error(
                    "tap: the display failed: %r; display stopped (forwarding goes on)",
                    exc,
                )
