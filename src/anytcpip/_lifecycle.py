"""``LifecycleMixin``: the tasks of a client or server and of each connection.

Rationale
---------
Each instance owns one task group, entered by ``__aenter__`` and left by
``__aexit__``; receive pumps, accept loops, heartbeats and reconnects all
run in it, so nothing outlives the ``async with``. (On asyncio, a plain
client's group is a :class:`~anytcpip._asyncio_task.TaskSet` of bare tasks
that ``__aexit__`` joins: see that module for why and when.) A connection
with a callback, a heartbeat or bound tasks gets a task group of its own
inside it (:meth:`LifecycleMixin._run_channel`): its receive pump, its
heartbeat sender, the tasks a subclass binds to it, and the reports of its
connection and disconnection; a plain one runs its pump in one task.

The mixin reads the attributes the base class sets in ``__init__`` (declared
below) and declares the hooks it needs (``close``, ``_close_connection``,
``_report``, ``_describe``, ``_bind``), which
:class:`~anytcpip._connection.BaseClientOrServer` overrides; it never
imports ``_connection``.
"""

from __future__ import annotations

import contextvars
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

import anyio
import anyio.abc

from ._asyncio_task import TaskSet, on_asyncio
from ._binding import Bindings, unbind
from ._channel import Channel, ChannelState
from ._heartbeat import send_heartbeats

if TYPE_CHECKING:
    from ._reporting import StateReporter
    from ._send import Spawner
    from ._stats import Totals

__all__ = ["LifecycleMixin"]

_Self = TypeVar("_Self", bound="LifecycleMixin")


class LifecycleMixin:
    """The ``async with`` and per-connection tasks of ``BaseClientOrServer``."""

    # Set by BaseClientOrServer.__init__.
    heartbeat_interval: float | None
    heartbeat_timeout: float | None
    _write_terminator: bytes
    _entered: bool
    # The instance's task group; on asyncio's fast path a TaskSet (see
    # __aenter__).
    _task_group: anyio.abc.TaskGroup | TaskSet | None
    _reporter: StateReporter
    _totals: Totals

    # -- hooks ------------------------------------------------------------------

    async def close(self) -> None:
        """Close the connection, and report the change (hook)."""
        raise NotImplementedError

    async def _close_connection(self) -> None:
        """Close the connection, even when the caller is cancelled (hook)."""
        raise NotImplementedError

    async def _report(self) -> None:
        """Run ``connect_callback`` for each queued state change (hook)."""
        raise NotImplementedError

    def _describe(self) -> str:
        """Return the description used in error messages (hook)."""
        raise NotImplementedError

    def _bind(self, channel: Channel) -> contextvars.Token[Bindings]:
        """Bind the current context to ``channel`` of this instance (hook).

        See :func:`anytcpip._binding.bind`, which takes the
        ``BaseClientOrServer`` that this module does not import.
        """
        raise NotImplementedError

    # -- life cycle -----------------------------------------------------------

    async def __aenter__(self: _Self) -> _Self:
        if self._entered:
            raise RuntimeError(f"{self._describe()} can only be started once")
        self._entered = True
        self._reporter.start()
        await self._open()
        task_group: anyio.abc.TaskGroup | TaskSet
        if self._tasks_end_when_closed() and self._is_plain() and on_asyncio():
            # No task of the instance runs user code, and all of them end
            # once it is closed: bare tasks will do (see _asyncio_task).
            task_group = TaskSet()
        else:
            task_group = anyio.create_task_group()
            await task_group.__aenter__()
        self._task_group = task_group
        try:
            await self._start(task_group)
        except BaseException:
            await self._shutdown()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self._shutdown()

    async def _shutdown(self) -> None:
        """Close, then stop and wait for the background tasks.

        Only closing the connection is shielded from the caller's
        cancellation. Reporting the disconnection is not: if the caller's
        ``fail_after``/``move_on_after`` expires while ``connect_callback``
        runs (or waits for a lock the caller holds), the callback is
        cancelled, the remaining reports are skipped, and the block is left.
        """
        closed = False
        try:
            try:
                await self.close()
                closed = True
            except BaseException:
                self._reporter.abandon()
                with anyio.CancelScope(shield=True):
                    await self._close_connection()
                raise
        finally:
            task_group = self._task_group
            if task_group is not None:
                self._task_group = None
                cancel = not (closed and self._tasks_end_when_closed())
                if isinstance(task_group, TaskSet):
                    await task_group.join(cancel=cancel)
                else:
                    if cancel:
                        task_group.cancel_scope.cancel()
                    # The body's own exception is not passed in: it propagates
                    # unchanged instead of being wrapped in an ExceptionGroup.
                    await task_group.__aexit__(None, None, None)

    async def _open(self) -> None:
        """Acquire resources before the task group starts (connect, bind)."""

    def _tasks_end_when_closed(self) -> bool:
        """Whether every task in the instance's group ends once closed (hook).

        If so, :meth:`_shutdown` waits for them instead of cancelling the
        group after a successful :meth:`close` (anyio's cancellation formats
        the task's repr, and retries on every loop pass until the tasks are
        gone: a fifth of the cost of a short-lived connection). Only
        connection tasks qualify: once the connection is closed, its pump
        ends (the socket's close ends its receive; see ``ReceiveSide.shut``)
        and so do the tasks bound to it. Background loops (accepting,
        reconnecting) do not: the default is False.
        """
        return False

    async def _start(self, task_group: Spawner) -> None:
        """Start background work in the instance's task group.

        That is an anyio task group, except on asyncio's fast path for an
        instance whose tasks all end once it is closed and run no user code
        (see ``__aenter__``).
        """

    # -- the tasks of one connection --------------------------------------------

    async def _run_channel(self, channel: Channel) -> None:
        """Serve one connection until it ends, then report the disconnection.

        Runs the receive pump, the heartbeat sender (if enabled) and any
        per-connection tasks of a subclass (see :meth:`_start_channel_tasks`).
        Those are bound to the connection (see :mod:`anytcpip._binding`) and
        cancelled when it ends: at once if this end closed it or nothing it
        received is left unread; otherwise they may first read what is left
        (their writes fail), and end by themselves at the end of the data.
        """
        owner = self._task_group
        if owner is not None and self._is_plain():
            await self._run_plain_channel(channel, owner)
            return
        async with anyio.create_task_group() as task_group:
            if self._reporter.has_callback:
                # Report the connection without delaying the pump.
                task_group.start_soon(self._report)
            else:
                await self._report()  # synchronous: nothing to run
            # Tasks are started only when there is work for them (each
            # costs a task and a cancel scope per connection).
            bound_scope: anyio.CancelScope | None = None
            if self._has_channel_tasks():
                bound_scope = anyio.CancelScope()
                task_group.start_soon(self._run_bound_tasks, channel, bound_scope)
            heartbeat_scope: anyio.CancelScope | None = None
            try:
                channel.attach(task_group)  # the flusher starts when needed
                if self.heartbeat_interval is not None:
                    heartbeat_scope = anyio.CancelScope()
                    task_group.start_soon(self._heartbeats, channel, heartbeat_scope)
                await channel.pump(receive_timeout=self.heartbeat_timeout)
            finally:
                if heartbeat_scope is not None:
                    heartbeat_scope.cancel()
                if bound_scope is not None and (
                    channel.state is ChannelState.CLOSED or not len(channel.frames)
                ):
                    bound_scope.cancel()
                with anyio.CancelScope(shield=True):
                    await self._report()

    def _is_plain(self) -> bool:
        """Whether a connection needs no task of its own (see below)."""
        return not (
            self._reporter.has_callback
            or self._has_channel_tasks()
            or self.heartbeat_interval is not None
        )

    async def _run_plain_channel(self, channel: Channel, owner: Spawner) -> None:
        """:meth:`_run_channel` for a connection that needs no task of its own.

        No callback, heartbeat or bound task: the pump runs in the calling
        task, and the flusher (started only if a write cannot be sent
        directly) runs in ``owner``, the instance's task group. That saves a
        task group per connection (and a pass of the event loop to leave it).
        """
        await self._report()  # synchronous: no callback to run
        try:
            channel.attach(owner)
            if channel.state is not ChannelState.CLOSED:
                # (Closed by this end before this task ran: nothing to watch.)
                await channel.pump(receive_timeout=self.heartbeat_timeout)
        finally:
            await self._report()  # synchronous: cannot be cancelled midway

    async def _run_bound_tasks(
        self, channel: Channel, bound_scope: anyio.CancelScope
    ) -> None:
        """Run the tasks of :meth:`_start_channel_tasks`, bound to ``channel``."""
        with bound_scope:
            async with anyio.create_task_group() as task_group:
                token = self._bind(channel)
                try:
                    self._start_channel_tasks(channel, task_group)
                finally:
                    unbind(token)

    def _abort_channel(self, channel: Channel, reason: str) -> None:
        """End ``channel`` now, from this end, without sending what is queued.

        Synchronous: the connection is down (and its state change queued)
        when this returns. Its tasks close the socket without waiting
        (``extra_client="replace"``: the old client may have stopped reading).
        """
        channel._go_down(ChannelState.CLOSED, reason)
        task_group = self._task_group
        if task_group is not None:
            task_group.start_soon(anyio.aclose_forcefully, channel.stream)

    async def _heartbeats(self, channel: Channel, scope: anyio.CancelScope) -> None:
        assert self.heartbeat_interval is not None
        with scope:
            await send_heartbeats(
                channel, self.heartbeat_interval, self._write_terminator
            )

    def _has_channel_tasks(self) -> bool:
        """Whether a subclass overrides :meth:`_start_channel_tasks`.

        Only then does each connection get a task (and a task group) for them.
        """
        return (
            type(self)._start_channel_tasks is not LifecycleMixin._start_channel_tasks
        )

    def _start_channel_tasks(
        self, channel: Channel, task_group: anyio.abc.TaskGroup
    ) -> None:
        """Start tasks bound to one connection (hook for subclasses).

        Called synchronously with the connection bound to the current context:
        tasks started here in ``task_group`` read and write only ``channel``
        (through the public methods), and ``task_group`` is cancelled when the
        connection ends (see :meth:`_run_channel`). The group is left once
        they all end.
        """
