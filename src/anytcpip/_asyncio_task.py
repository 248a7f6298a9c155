"""A private backend module: a plain client's tasks on asyncio, joined on exit.

Rationale
---------
A :class:`~anytcpip.Client` without ``reconnect`` runs one task per
connection: the receive pump, which watches the connection while nobody
reads. In anyio 4.16 on asyncio, a task group costs two cancel scopes and a
pass of the event loop to leave, and ``start_soon`` wraps every task in a
``TaskHandle`` (a cancel scope, an event and a wrapper coroutine) and waits
for it through a future: a task group with one task costs 70-75 µs, against
12 µs for ``loop.create_task``. For a short-lived connection (connect, one
exchange, close: benchmark E of ``benchmarks/run.py``) that was a fifth of
the cycle, and the main reason anytcpip connected and closed more slowly
than lsst.ts.tcpip, which starts bare asyncio tasks.

When nothing in those tasks runs user code (no ``connect_callback``, no
heartbeat, no bound task: ``LifecycleMixin._run_plain_channel``), they need
nothing that a task group adds beyond starting and waiting: none of them
raises (the pump reports a lost connection instead of raising; the flusher
reports a failed send), and all of them end by themselves once the
connection is closed (the socket's close ends the pump's receive). So on
asyncio (and uvloop) such a client gets a :class:`TaskSet` instead of a task
group: bare tasks, still owned by the client's ``async with``, whose exit
closes the connection and then waits for every task (:meth:`TaskSet.join`),
so that no task outlives the block. If closing failed (the caller was
cancelled midway), the tasks are cancelled first, as the task group would
have done, and an exception of a task is raised on exit, in an exception
group, as anyio's would be.

On any other backend (trio), :func:`on_asyncio` is False and the client
uses an anyio task group: the generic path, which asyncio also takes
whenever a connection has a callback, a heartbeat or bound tasks.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

import anyio

if sys.version_info < (3, 11):  # pragma: no cover - anyio's backport there
    from exceptiongroup import (  # type: ignore[import-not-found,unused-ignore]
        BaseExceptionGroup,
    )

__all__ = ["TaskSet", "on_asyncio"]


def on_asyncio() -> bool:
    """Whether the running event loop is asyncio's (or uvloop's)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False  # trio (or no loop)
    return True


class TaskSet:
    """Bare asyncio tasks, started like a task group's and joined on exit.

    Only what a plain client needs of a task group (see above):
    :meth:`start_soon`, and :meth:`join` in place of leaving the group.
    Create it, and call both, in a running asyncio loop.
    """

    __slots__ = ("_done", "_errors", "_open", "_tasks")

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._errors: list[BaseException] = []
        self._open = True
        self._done: asyncio.Future[None] | None = None  # set when none is left

    def start_soon(
        self,
        func: Callable[..., Coroutine[Any, Any, Any]],
        *args: Any,
        name: object = None,
    ) -> None:
        """Start ``func(*args)`` in a new task (``name`` is ignored).

        Raises
        ------
        RuntimeError
            Once :meth:`join` has returned (as a task group that was left).
        """
        if not self._open:
            raise RuntimeError("the task set was joined: no new tasks can be started")
        task = asyncio.get_running_loop().create_task(func(*args))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        """Account for a task that ended (its done callback; idempotent)."""
        if task not in self._tasks:
            return  # already accounted for by join()
        self._tasks.remove(task)
        if not task.cancelled():
            error = task.exception()
            if error is not None:
                self._errors.append(error)
        done = self._done
        if done is not None and not self._tasks and not done.done():
            done.set_result(None)

    async def join(self, *, cancel: bool) -> None:
        """Wait for every task, those started meanwhile included, then close.

        Waits even if the caller is cancelled (shielded from anyio's
        cancellation; a native cancellation is raised once the tasks are
        done). With ``cancel``, and after a native cancellation, cancels
        the tasks first.

        Raises
        ------
        BaseExceptionGroup
            The exceptions of the tasks that raised (not their cancellation).
        """
        interrupted: BaseException | None = None
        for task in [task for task in self._tasks if task.done()]:
            # Ended, its callback not yet run: no need to wait a loop pass.
            self._task_done(task)
        if self._tasks:
            with anyio.CancelScope(shield=True):
                while self._tasks:
                    if cancel:
                        for task in self._tasks:
                            task.cancel()
                    done = self._done = asyncio.get_running_loop().create_future()
                    try:
                        await done
                    except asyncio.CancelledError as exc:
                        interrupted = exc
                        cancel = True
                    self._done = None
        self._open = False
        if self._errors:
            errors, self._errors = self._errors, []
            raise BaseExceptionGroup("unhandled errors in a task of the client", errors)
        if interrupted is not None:
            raise interrupted
