"""I/O bound to one connection: a reply never reaches the next client.

Rationale
---------
A client or server has one *current* connection, and it changes: a client
reconnects, a one-client server serves the next client. Code that answers a
command late (a read loop that waits for an axis to move, a task it spawned)
must not write its reply to whoever is connected by then.

So the tasks that the library runs for a connection (the read loop) work
*for that connection*: a :class:`contextvars.ContextVar` records, per client
or server, the connection the current task works for. Tasks inherit a copy of
their parent's context on asyncio and on trio, so a task spawned from a read
loop is bound too. The read and write methods of a client or server look it
up first: a bound task reads and writes only its own connection, which
refuses I/O with a ``ConnectionError`` once it has ended. Calls from tasks
that are not bound (the application's main task, say) use the current
connection, as before.

:class:`Connection` gives code running in its own tasks the same binding
explicitly: ``handle = server.connection`` names one connection, and every
call made through ``handle`` is bound to it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:
    from ._channel import Channel
    from ._connection import BaseClientOrServer

__all__ = ["BOUND", "Connection", "bind", "bound_channel", "unbind"]

_P = ParamSpec("_P")
_T = TypeVar("_T")

Bindings = tuple[tuple["BaseClientOrServer", "Channel"], ...]

BOUND: contextvars.ContextVar[Bindings] = contextvars.ContextVar(
    "anytcpip_bound_connections", default=()
)
"""(owner, channel) pairs: the connection of each owner this task works for."""


def bound_channel(owner: BaseClientOrServer) -> Channel | None:
    """Return the connection of ``owner`` that the current task works for, if any."""
    bindings = BOUND.get()
    if bindings:
        for bound_owner, channel in bindings:
            if bound_owner is owner:
                return channel
    return None


def bind(owner: BaseClientOrServer, channel: Channel) -> contextvars.Token[Bindings]:
    """Bind the current context to ``channel`` of ``owner``.

    Returns the token to pass to :func:`unbind`. Tasks started afterwards
    from this context inherit the binding. The owner is marked as having had
    a task bound (``_has_bindings``, never reset): until then, no context can
    hold a binding of it, and its hot paths skip the look-up.
    """
    owner._has_bindings = True
    return BOUND.set(((owner, channel), *BOUND.get()))


def unbind(token: contextvars.Token[Bindings]) -> None:
    """Undo :func:`bind`."""
    BOUND.reset(token)


class Connection:
    """One connection of a client or server, with the read/write API.

    Get it from :attr:`BaseClientOrServer.connection` (for example
    ``server.connection``). Every call made through it goes to *that*
    connection, never to a later one: once it has ended, writes raise
    ``ConnectionError``, and so do reads once what arrived before the end
    has been read (at once if this end closed it). Hand it to a task that
    answers a command later, so a late reply can never reach the next
    client.

    Parameters
    ----------
    owner
        The client or server the connection belongs to.
    channel
        The connection itself, of an internal type: a ``Connection`` is not
        made directly, only by :attr:`BaseClientOrServer.connection`.

    Examples
    --------
    >>> # handle = server.connection
    >>> # task_group.start_soon(answer_later, handle, command)
    >>> # ... in answer_later: await handle.write_str(reply)
    >>> # (raises ConnectionError if that client has gone)
    """

    __slots__ = ("_channel", "_owner")

    def __init__(self, owner: BaseClientOrServer, channel: Channel) -> None:
        self._owner = owner
        self._channel = channel

    def __repr__(self) -> str:
        state = "connected" if self._channel.is_open else "ended"
        return f"<Connection {self._channel.who!r} ({state})>"

    @property
    def owner(self) -> BaseClientOrServer:
        """The client or server this connection belongs to."""
        return self._owner

    @property
    def connected(self) -> bool:
        """True until this connection ends (it never becomes True again)."""
        return self._channel.is_open

    async def _bound(
        self, method: Callable[_P, Awaitable[_T]], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        token = bind(self._owner, self._channel)
        try:
            return await method(*args, **kwargs)
        finally:
            unbind(token)

    # -- reading ----------------------------------------------------------------

    async def read(self, n: int) -> bytes:
        """Read up to ``n`` bytes; ``b""`` once at end of stream.

        Raises
        ------
        ConnectionError
            If this connection has ended and nothing is left to read.
        """
        return await self._bound(self._owner.read, n)

    async def readexactly(self, n: int) -> bytes:
        """Read exactly ``n`` bytes.

        Raises
        ------
        IncompleteReadError
            If the peer closes first.
        ConnectionError
            If this connection has ended and nothing is left to read.
        """
        return await self._bound(self._owner.readexactly, n)

    async def readline(self) -> bytes:
        r"""Read up to and including ``b"\n"``.

        Raises
        ------
        ConnectionError
            If this connection has ended and nothing is left to read.
        """
        return await self._bound(self._owner.readline)

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        """Read up to and including ``separator``.

        Raises
        ------
        IncompleteReadError
            If the peer closes before the separator.
        ConnectionError
            If this connection has ended and nothing is left to read.
        """
        return await self._bound(self._owner.readuntil, separator)

    async def read_into(self, struct: Any) -> None:
        """Fill a ctypes object from ``sizeof`` bytes.

        Raises
        ------
        IncompleteReadError
            If the peer closes mid-struct.
        ConnectionError
            If this connection has ended and nothing is left to read.
        """
        await self._bound(self._owner.read_into, struct)

    async def read_str(self) -> str:
        """Read a message ending in the terminator; strip it and decode it.

        Raises
        ------
        ConnectionError
            If this connection has ended and nothing is left to read.
        """
        return await self._bound(self._owner.read_str)

    async def read_json(self) -> Any:
        """Read a message with :meth:`read_str` and parse it as JSON.

        Raises
        ------
        json.JSONDecodeError
            If the message is not JSON (it was consumed).
        ConnectionError
            If this connection has ended and nothing is left to read.
        """
        return await self._bound(self._owner.read_json)

    async def read_frame(self) -> bytes:
        """Read one length-prefixed frame and return its payload.

        Raises
        ------
        ConnectionError
            If this connection has ended and nothing is left to read.
        """
        return await self._bound(self._owner.read_frame)

    # -- writing ----------------------------------------------------------------

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send bytes as one message.

        Raises
        ------
        ConnectionError
            If this connection has ended.
        """
        await self._bound(self._owner.write, data)

    async def writelines(self, lines: Iterable[bytes | bytearray | memoryview]) -> None:
        """Send several byte strings as one message.

        Raises
        ------
        ConnectionError
            If this connection has ended.
        """
        await self._bound(self._owner.writelines, lines)

    async def drain(self) -> None:
        """Wait until everything written so far has been handed to the OS.

        Raises
        ------
        ConnectionError
            If this connection has ended (or ends first) with data queued.
        """
        await self._bound(self._owner.drain)

    async def write_from(self, *structs: Any) -> None:
        """Send one or more ctypes objects as one message.

        Raises
        ------
        ConnectionError
            If this connection has ended.
        """
        await self._bound(self._owner.write_from, *structs)

    async def write_str(self, line: str) -> None:
        """Encode ``line``, append the terminator and send it.

        Raises
        ------
        ConnectionError
            If this connection has ended.
        """
        await self._bound(self._owner.write_str, line)

    async def write_json(self, obj: Any) -> None:
        """Send ``json.dumps(obj)`` with :meth:`write_str`.

        Raises
        ------
        ConnectionError
            If this connection has ended.
        """
        await self._bound(self._owner.write_json, obj)

    async def write_frame(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data`` as one length-prefixed frame.

        Raises
        ------
        ConnectionError
            If this connection has ended.
        """
        await self._bound(self._owner.write_frame, data)
