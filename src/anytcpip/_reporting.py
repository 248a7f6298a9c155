"""Connection-state reporting: run ``connect_callback`` once per change, in order.

Rationale
---------
Every change of connection state is queued synchronously, in the order it
happens (:meth:`StateReporter.queue`), by whoever sees it: the code that
adopts a connection, or the channel's receive pump the moment the peer
leaves. ``connect_callback`` is then run for each queued change by whichever
task drains the queue first (:meth:`StateReporter.report`), under a lock,
skipping a change that would repeat the last reported state. So callbacks run
once per change and in order, even when a disconnect and the next connect
happen back to back, and a callback always sees the state it reports.

Only closing the socket must finish whatever the caller's cancellation says;
reporting must not be able to hold up the caller. A report never shields the
callback from its caller, and when closing is interrupted (the caller's
``fail_after`` expired while a callback ran or waited), :meth:`abandon`
cancels a callback running in a background task, even under a shield, and
the reports still queued are skipped.

This module knows nothing of connections: it is composed by
``BaseClientOrServer`` (and must not import ``_connection``).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable

import anyio

__all__ = ["StateReporter"]


class StateReporter:
    """Queue connection-state changes; run a callback for each, in order.

    Parameters
    ----------
    call_callback
        Async callable run once per reported change, such as
        ``BaseClientOrServer.call_connect_callback`` (which logs the user
        callback's exceptions). It is not given the state: while it runs,
        :meth:`reported_state_for_current_task` says which state it reports.
        None if there is nothing to run: then a report only marks the queued
        changes reported, synchronously (no lock, no task switch).
    log
        Logger for skipped reports.
    """

    def __init__(
        self,
        call_callback: Callable[[], Awaitable[None]] | None,
        log: logging.Logger,
    ) -> None:
        self._call_callback = call_callback
        self._log = log
        # Changes queued in the order they happen, not yet reported.
        self._transitions: deque[bool] = deque()
        self._reported = False
        self._lock: anyio.Lock | None = None
        self._started = False
        self._reporting_task: int | None = None
        # Created by the first waiter after each change (events cost a few
        # microseconds each, and most changes have nobody waiting).
        self._state_changed: anyio.Event | None = None
        self._callback_scope: anyio.CancelScope | None = None
        self._abandoned = False

    def start(self) -> None:
        """Get ready to report (in the event loop, on entering ``async with``)."""
        if self._call_callback is not None:
            self._lock = anyio.Lock()
        self._started = True

    @property
    def started(self) -> bool:
        """Whether :meth:`start` was called."""
        return self._started

    @property
    def has_callback(self) -> bool:
        """Whether reports run a callback (else they never wait)."""
        return self._call_callback is not None

    def queue(self, state: bool) -> None:
        """Queue a change to ``state`` (synchronously) and wake the waiters."""
        self._transitions.append(state)
        self.notify()

    def notify(self) -> None:
        """Wake every task waiting in :meth:`wait_changed`."""
        event = self._state_changed
        if event is not None:
            self._state_changed = None
            event.set()

    def reported_state_for_current_task(self) -> bool | None:
        """Return the state being reported if this task is running the callback.

        Return None otherwise (also outside an event loop).
        """
        if self._reporting_task is None:
            return None
        try:
            current = anyio.get_current_task().id
        except RuntimeError:  # not in an event loop (e.g. another thread)
            return None
        return self._reported if current == self._reporting_task else None

    async def report(self) -> None:
        """Run the callback for each queued change, in order.

        Returns at once when called from within the callback (the outer call
        reports the rest). The caller's cancellation reaches the callback.
        """
        transitions = self._transitions
        call_callback = self._call_callback
        if not self._started:
            transitions.clear()
            return
        if call_callback is None:  # nothing to run: the changes are reported
            if transitions:
                self._reported = transitions[-1]
                transitions.clear()
            return
        lock = self._lock
        assert lock is not None
        current = anyio.get_current_task().id
        if self._reporting_task == current:
            # Called from within the callback: the outer loop reports.
            return
        # Take a free lock without a checkpoint: a close whose caller is
        # already cancelled still reports the change (the callback sees the
        # cancellation at its first await, if it has one).
        try:
            lock.acquire_nowait()
        except anyio.WouldBlock:
            await lock.acquire()
        try:
            self._reporting_task = current
            while self._transitions:
                state = self._transitions.popleft()
                if state == self._reported:
                    continue
                self._reported = state
                if self._abandoned:
                    self._log.debug(
                        "connect_callback not run for connected=%s: the close "
                        "was cancelled",
                        state,
                    )
                    continue
                # A scope that abandon() can cancel, even when this runs
                # shielded in a background task.
                with anyio.CancelScope() as scope:
                    self._callback_scope = scope
                    try:
                        await call_callback()
                    finally:
                        self._callback_scope = None
        finally:
            self._reporting_task = None
            lock.release()

    def abandon(self) -> None:
        """Stop reporting: cancel a running callback and skip every later one.

        For a close interrupted by the caller's cancellation (or another
        ``BaseException``): neither a callback in progress nor a shielded
        report in a background task may then hold up leaving ``async with``.
        """
        self._abandoned = True
        scope = self._callback_scope
        if scope is not None:
            scope.cancel()

    async def wait_changed(self) -> None:
        """Wait for the next change of state (or :meth:`notify`).

        Check the condition you wait for before each call, in the same
        synchronous step: no change is missed in between.
        """
        if not self._started:
            raise RuntimeError("StateReporter.start() was not called")
        event = self._state_changed
        if event is None:
            event = self._state_changed = anyio.Event()
        await event.wait()
