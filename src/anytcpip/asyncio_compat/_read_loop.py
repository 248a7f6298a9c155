"""``OneClientReadLoopServer``: lsst.ts.tcpip's read-loop server, on the native one.

The read loop is the native :class:`anytcpip.OneClientReadLoopServer`'s: for
each client it calls ``read_and_dispatch`` until that raises, then closes the
client. This module adds lsst.ts.tcpip's view of it: ``read_loop_task``, a
future per client that is done when its loop ends; ``close_client`` that
cancels a ``read_and_dispatch`` in progress; and ``handle_received_heartbeat``.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from typing import Any

import anyio
import anyio.abc

from .._channel import Channel
from .._constants import DEFAULT_ENCODING, DEFAULT_LOCALHOST, DEFAULT_TERMINATOR
from .._read_loop import OneClientReadLoopServer as _NativeReadLoopServer
from .._server import OneClientServer as _NativeServer
from ._base import ConnectCallbackType
from ._constants import DEFAULT_MAX_HEARTBEAT_INTERVAL
from ._server import OneClientServer

__all__ = ["OneClientReadLoopServer"]


class _ReadLoopServer(_NativeReadLoopServer):
    """The native read-loop server, dispatching to a compatibility instance."""

    def __init__(self, owner: OneClientReadLoopServer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._owner = owner

    def _start_channel_tasks(
        self, channel: Channel, task_group: anyio.abc.TaskGroup
    ) -> None:
        self._owner._read_loop_begins()
        super()._start_channel_tasks(channel, task_group)

    async def read_and_dispatch(self) -> None:
        await self._owner._dispatch_once()


class OneClientReadLoopServer(OneClientServer):
    """A :class:`OneClientServer` that runs a read loop (lsst.ts.tcpip 2.x API).

    Subclasses implement :meth:`read_and_dispatch`, which reads and handles
    one message; it is called in a loop while a client is connected. If it
    raises, the error is logged and the client closed.

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
        Close the client if nothing arrives from it for
        ``max_heartbeat_interval`` seconds, and accept heartbeats in
        :meth:`handle_received_heartbeat`.
    max_heartbeat_interval
        Seconds of silence after which the client is considered gone.
    **kwargs
        The keywords listed in :class:`BaseClientOrServer`.

    Attributes
    ----------
    read_loop_task : asyncio.Future
        Done when the read loop of the current (or last) client has ended;
        a new future for each client.
    heartbeat_received_tai : float or None
        ``time.time()`` when the last heartbeat was handled (UTC, not TAI:
        lsst.ts.utils is not a dependency); None before the first.
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
        self.read_loop_task: asyncio.Future[None] = (
            asyncio.get_running_loop().create_future()
        )
        self.read_loop_task.set_result(None)
        self.run_heartbeat_monitor_task = run_heartbeat_monitor_task
        self.max_heartbeat_interval = max_heartbeat_interval
        self.heartbeat_received_tai: float | None = None
        self._read_scope: anyio.CancelScope | None = None
        self._read_task_id: int | None = None
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

    def _make_native(
        self, host: str | None, port: int, options: dict[str, Any]
    ) -> _NativeServer:
        if self.run_heartbeat_monitor_task:
            options["heartbeat_timeout"] = self.max_heartbeat_interval
        return _ReadLoopServer(self, host=host, port=port, **options)

    def _read_loop_begins(self) -> None:
        """Start a new ``read_loop_task`` (a client has connected)."""
        self.read_loop_task = self._loop.create_future()
        self.heartbeat_received_tai = None

    async def _dispatch_once(self) -> None:
        """Run :meth:`read_and_dispatch` once, for the native read loop."""
        loop_task = self.read_loop_task
        scope = anyio.CancelScope()
        self._read_scope = scope
        self._read_task_id = anyio.get_current_task().id
        try:
            with scope:
                await self.read_and_dispatch()
            if scope.cancelled_caught:
                raise ConnectionError("read loop cancelled by close_client")
        except BaseException:
            # The native loop ends and closes the client, as lsst.ts.tcpip's
            # read loop does with close_client().
            self.should_be_connected = False
            if not loop_task.done():
                loop_task.set_result(None)
            raise
        finally:
            self._read_scope = None
            self._read_task_id = None

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
        self.heartbeat_received_tai = time.time()

    async def close_client(self, cancel_read_loop_task: bool = True) -> None:
        """Stop the read loop and close the client, if any.

        Parameters
        ----------
        cancel_read_loop_task
            Cancel a ``read_and_dispatch`` in progress. Ignored when called
            from the read loop itself (from ``read_and_dispatch``).
        """
        scope = self._read_scope
        if cancel_read_loop_task and scope is not None:
            try:
                current = anyio.get_current_task().id
            except RuntimeError:  # pragma: no cover - not in an event loop
                current = None
            if current != self._read_task_id:
                scope.cancel()
        await super().close_client()
