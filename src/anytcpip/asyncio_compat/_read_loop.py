"""``OneClientReadLoopServer``: lsst.ts.tcpip 2.2's read-loop server.

As in 2.2, :meth:`OneClientReadLoopServer.call_connect_callback` starts
``read_loop_task``, a task running :meth:`~OneClientReadLoopServer.read_loop`,
when a client connects; ``read_loop`` calls ``read_and_dispatch`` while the
client is connected and closes the client when it raises. So a subclass that
overrides ``read_loop`` (to send a greeting first, say) or
``call_connect_callback`` works unchanged. The read loop is bound to its
client (see :mod:`anytcpip.asyncio_compat._base`): it never reads from, writes
to or closes the next one.

The heartbeat monitor waits on an event that each received heartbeat sets,
with ``max_heartbeat_interval`` as the timeout, instead of 2.2's polling
once a second; like 2.2, it counts heartbeats, not other data.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from typing import Any

from .._constants import DEFAULT_ENCODING, DEFAULT_LOCALHOST, DEFAULT_TERMINATOR
from ._base import ConnectCallbackType, done_future
from ._constants import DEFAULT_MAX_HEARTBEAT_INTERVAL
from ._server import OneClientServer

__all__ = ["OneClientReadLoopServer"]

TAI_MINUS_UTC = 37.0
"""Seconds TAI is ahead of UTC (since 2017), for ``heartbeat_received_tai``."""


class OneClientReadLoopServer(OneClientServer):
    """A :class:`OneClientServer` that runs a read loop (lsst.ts.tcpip 2.2 API).

    Subclasses implement :meth:`read_and_dispatch`, which reads and handles
    one message; :meth:`read_loop` calls it while a client is connected. If
    it raises, the error is logged and the client closed.

    Parameters
    ----------
    port
        Port to listen on; 0 picks a free one.
    host
        Address to listen on; None for all interfaces.
    log
        Parent logger (see :class:`BaseClientOrServer`).
    connect_callback
        Async function ``callback(self)`` called when a client connects or
        disconnects.
    name
        Name used in log messages.
    encoding
        Encoding of the text and JSON methods.
    terminator
        Terminator of the text and JSON methods.
    run_heartbeat_monitor_task
        Run :meth:`monitor_received_heartbeats` for each client: close it if
        no heartbeat (see :meth:`handle_received_heartbeat`) arrives for
        ``max_heartbeat_interval`` seconds.
    max_heartbeat_interval
        Seconds without a heartbeat after which the client is considered gone.
    **kwargs
        Keywords for :meth:`~OneClientServer.start` (see
        :class:`OneClientServer`).

    Attributes
    ----------
    read_loop_task : asyncio.Future
        The task running :meth:`read_loop` for the current (or last) client.
    monitor_heartbeats_task : asyncio.Future
        The task running :meth:`monitor_received_heartbeats`, if any.
    heartbeat_received_tai : float or None
        TAI (UNIX seconds, as lsst.ts.utils.current_tai) of the last heartbeat
        handled; None before the first.
    """

    def __init__(
        self,
        *,
        port: int | None,
        host: str | None = DEFAULT_LOCALHOST,
        log: logging.Logger | None,
        connect_callback: ConnectCallbackType | None = None,
        name: str = "",
        encoding: str = DEFAULT_ENCODING,
        terminator: bytes = DEFAULT_TERMINATOR,
        run_heartbeat_monitor_task: bool = False,
        max_heartbeat_interval: float = DEFAULT_MAX_HEARTBEAT_INTERVAL,
        **kwargs: Any,
    ) -> None:
        self.read_loop_task: asyncio.Future[None] = done_future()
        super().__init__(
            host=host,
            port=port,
            log=log,
            connect_callback=connect_callback,
            monitor_connection_interval=0,
            name=name,
            encoding=encoding,
            terminator=terminator,
            **kwargs,
        )
        self.run_heartbeat_monitor_task = run_heartbeat_monitor_task
        self.max_heartbeat_interval = max_heartbeat_interval
        self.heartbeat_received_tai: float | None = None
        self.monitor_heartbeats_task: asyncio.Future[None] = done_future()
        self.monitor_heartbeats_task_start: float | None = None
        self._heartbeat_received = asyncio.Event()

    async def call_connect_callback(self) -> None:
        """Call ``connect_callback``; start the read loop when a client connects.

        On a connection, cancels the previous ``read_loop_task`` (and heartbeat
        monitor) and starts new ones, as 2.2 does.
        """
        await super().call_connect_callback()
        if self.connected:
            self.log.info("Client connected.")
            self.read_loop_task.cancel()
            self.monitor_heartbeats_task.cancel()
            try:
                await self.read_loop_task
            except asyncio.CancelledError:
                pass
            try:
                await self.monitor_heartbeats_task
            except asyncio.CancelledError:
                pass
            self.read_loop_task = asyncio.create_task(self.read_loop())
            if self.run_heartbeat_monitor_task:
                self.monitor_heartbeats_task = asyncio.create_task(
                    self.monitor_received_heartbeats()
                )
        else:
            self.log.info("Client disconnected.")
            if self.monitor_heartbeats_task is not asyncio.current_task():
                self.monitor_heartbeats_task.cancel()

    async def read_loop(self) -> None:
        """Call :meth:`read_and_dispatch` while a client is connected.

        (Or, after the client has left, until what it sent has been read.)

        If it raises, log the error and close the client (without cancelling
        this task). Overridable: an override may, for example, send a
        greeting and then ``await super().read_loop()``.
        """
        try:
            self.log.info("The read_loop begins connected? %s", self.connected)
            # As in 2.2, what a client sent before leaving is still read.
            while self.connected or self._unread_after_end():
                self.log.debug("Waiting for next incoming data.")
                await self.read_and_dispatch()
        except Exception as exc:
            if isinstance(exc, (ConnectionError, asyncio.IncompleteReadError)):
                # The usual end: the client left (2.2 logged a traceback).
                self.log.info("read_loop ended: %s. Disconnecting.", exc)
            else:
                self.log.exception("read_loop failed. Disconnecting. %r", exc)
            await self.close_client(cancel_read_loop_task=False)

    @abc.abstractmethod
    async def read_and_dispatch(self) -> None:
        """Read, parse and handle one message.

        Use ``read_str``, ``read_json``, ``read_into``, ... to read.
        """

    async def handle_received_heartbeat(self) -> None:
        """Record a heartbeat received from the client.

        Call it from :meth:`read_and_dispatch` when the message read is
        ``HEARTBEAT``.

        Raises
        ------
        RuntimeError
            If ``run_heartbeat_monitor_task`` is False (a heartbeat was not
            expected).
        """
        if not self.run_heartbeat_monitor_task:
            raise RuntimeError(
                "Unexpectedly received a heartbeat. "
                "Please set `run_heartbeat_monitor_task` to True."
            )
        self.heartbeat_received_tai = time.time() + TAI_MINUS_UTC
        self._heartbeat_received.set()

    async def monitor_received_heartbeats(self) -> None:
        """Close the client once no heartbeat arrives for ``max_heartbeat_interval``.

        Started for each client when ``run_heartbeat_monitor_task`` is True.
        """
        self.monitor_heartbeats_task_start = time.time() + TAI_MINUS_UTC
        while True:
            self._heartbeat_received = event = asyncio.Event()
            try:
                await asyncio.wait_for(event.wait(), self.max_heartbeat_interval)
            except asyncio.TimeoutError:
                break
        self.log.warning(
            "No heartbeat received for more than %s seconds. "
            "Assuming the connection with the client has dropped.",
            self.max_heartbeat_interval,
        )
        self.heartbeat_received_tai = None
        await self.close_client()

    async def close_client(self, cancel_read_loop_task: bool = True) -> None:
        """Stop the read loop and close the client, if any.

        Parameters
        ----------
        cancel_read_loop_task
            Cancel ``read_loop_task`` and wait for it; False when called from
            the read loop itself (ignored there anyway).
        """
        loop_task = self.read_loop_task
        if cancel_read_loop_task and loop_task is not asyncio.current_task():
            self.log.debug("Cancelling read_loop_task.")
            loop_task.cancel()
            try:
                await loop_task
            except asyncio.CancelledError:
                pass
        self.log.debug("Closing client.")
        await super().close_client()
