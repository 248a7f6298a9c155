"""Calls from a blocking thread onto a portal's event loop, interruptibly.

The machinery under :mod:`anytcpip.blocking`: :class:`Session` holds an
async connection's ``async with`` open in a task of a
:class:`anyio.from_thread.BlockingPortal`, and :func:`call` runs one
coroutine function on the portal and waits for its result. The calling
thread waits in short slices, so Ctrl-C is acted on at once, and an
interrupted call is cancelled on the event loop and has ended before the
interrupt propagates: nothing of the connection's stream is lost.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar, cast

import anyio
import anyio.from_thread

__all__ = ["Session", "call"]

_T = TypeVar("_T")


async def _with_timeout(
    what: str, timeout: float | None, func: Callable[..., Awaitable[_T]], *args: Any
) -> _T:
    if timeout is None:
        return await func(*args)
    try:
        with anyio.fail_after(timeout):
            return await func(*args)
    except TimeoutError as exc:
        raise TimeoutError(f"{what} timed out after {timeout} s") from exc


class _Operation:
    """One call run on the event loop, which the calling thread can cancel.

    :meth:`run` runs in the event loop's thread; :meth:`cancel` too (through
    the portal), so the two never race. ``finished`` is set once the
    operation can no longer touch the connection: it ended, or it was
    cancelled before it started (then it never starts).
    """

    def __init__(self) -> None:
        self.finished = threading.Event()
        self._scope: anyio.CancelScope | None = None
        self._started = False
        self._cancelled = False

    async def run(
        self,
        what: str,
        timeout: float | None,
        func: Callable[..., Awaitable[_T]],
        *args: Any,
    ) -> _T | None:
        if self._cancelled:
            return None  # cancelled before it started: do nothing at all
        self._started = True
        try:
            with anyio.CancelScope() as self._scope:
                return await _with_timeout(what, timeout, func, *args)
            return None  # cancelled by the calling thread: nobody waits for it
        finally:
            self.finished.set()

    def cancel(self) -> None:
        self._cancelled = True
        if self._scope is not None:
            self._scope.cancel()
        elif not self._started:
            self.finished.set()


_INTERRUPT_CHECK_INTERVAL = 0.1
"""Longest the calling thread blocks at a time while it waits for the loop.

A signal (Ctrl-C) that arrives just before a thread blocks on a lock is only
acted on when that thread next runs Python code: waiting without a bound, it
would never run any, and the interrupt would be lost. Each wait is therefore
cut into slices of this length; the wait still ends as soon as the awaited
event happens, the slices only bound how late such an interrupt is raised.
"""


def _wait_for(event: threading.Event) -> None:
    """Wait for ``event``, interruptibly (see ``_INTERRUPT_CHECK_INTERVAL``)."""
    while not event.wait(_INTERRUPT_CHECK_INTERVAL):
        pass


def _result(future: concurrent.futures.Future[_T]) -> _T:
    """``future.result()``, interruptibly (see ``_INTERRUPT_CHECK_INTERVAL``)."""
    while True:
        try:
            return future.result(_INTERRUPT_CHECK_INTERVAL)
        except concurrent.futures.TimeoutError:
            if future.done():  # the call's own TimeoutError, or it just ended
                return future.result()


def _cancel_and_wait(
    portal: anyio.from_thread.BlockingPortal, operation: _Operation
) -> None:
    try:
        portal.call(operation.cancel)
    except RuntimeError:  # the event loop is gone: nothing runs any more
        return
    _wait_for(operation.finished)


class Session:
    """Holds an async connection's ``async with`` open in a portal task.

    Like :meth:`anyio.from_thread.BlockingPortal.wrap_async_context_manager`,
    but the calling thread waits interruptibly (see ``_result``).
    """

    def __init__(
        self,
        portal: anyio.from_thread.BlockingPortal,
        conn: AbstractAsyncContextManager[object],
    ) -> None:
        self._portal = portal
        self._conn = conn
        self._entered = threading.Event()
        self._stop: anyio.Event | None = None
        self._task: concurrent.futures.Future[None] | None = None

    async def _hold(self) -> None:
        self._stop = anyio.Event()
        # Called explicitly, as anyio's wrapper does (not ``async with``).
        await self._conn.__aenter__()
        self._entered.set()
        try:
            await self._stop.wait()
        finally:
            await self._conn.__aexit__(None, None, None)

    def enter(self) -> None:
        """Enter the connection's context; raise what its ``__aenter__`` raised."""
        self._task = self._portal.start_task_soon(self._hold)
        self._task.add_done_callback(lambda _: self._entered.set())
        _wait_for(self._entered)
        if self._task.done():
            _result(self._task)  # __aenter__ failed: raise its exception

    def exit(self) -> None:
        """Exit the connection's context; raise what its ``__aexit__`` raised."""
        assert self._task is not None and self._stop is not None
        if not self._task.done():
            self._portal.call(self._stop.set)
        _result(self._task)


def call(
    portal: anyio.from_thread.BlockingPortal,
    what: str,
    func: Callable[..., Awaitable[_T]],
    *args: Any,
    timeout: float | None = None,
) -> _T:
    """Run ``func(*args)`` on the portal's event loop; wait for its result.

    Parameters
    ----------
    portal
        The event loop to run it on.
    what
        The operation's name, for the message of a :class:`TimeoutError`.
    func, args
        The coroutine function and its arguments.
    timeout
        Seconds before the call is cancelled and :class:`TimeoutError`
        raised, or None.

    Raises
    ------
    BaseException
        What ``func`` raised; or what interrupted the wait in this thread
        (:class:`KeyboardInterrupt`), once the call has been cancelled on
        the event loop and has ended.
    """
    operation = _Operation()
    future = None
    try:
        future = portal.start_task_soon(operation.run, what, timeout, func, *args)
        result = _result(future)
    except BaseException:
        if future is None or not future.done():
            # Interrupted while waiting (Ctrl-C): end the operation on the
            # loop before the interrupt propagates, so nothing is lost and
            # the connection is free for the next call.
            _cancel_and_wait(portal, operation)
        raise
    return cast(_T, result)
