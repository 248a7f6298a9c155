"""Exception types, shared by the whole package.

Every exception subclasses :class:`AnyTcpIpError` *and* the standard type that
existing code already catches, so ``except asyncio.IncompleteReadError`` or
``except ConnectionError`` keeps working unchanged, on trio too.
"""

from __future__ import annotations

import asyncio

__all__ = [
    "AnyTcpIpError",
    "ConnectionLostError",
    "FrameTooLargeError",
    "IncompleteReadError",
    "LimitOverrunError",
    "NotConnectedError",
]


class AnyTcpIpError(Exception):
    """Base class of the exceptions defined by anytcpip."""


class IncompleteReadError(AnyTcpIpError, asyncio.IncompleteReadError):
    """The peer closed the connection before a whole message arrived.

    Also an :class:`asyncio.IncompleteReadError` (and so an :class:`EOFError`).

    Parameters
    ----------
    partial
        The bytes that did arrive (possibly empty).
    expected
        The number of bytes expected (``readexactly``, ``read_into``), or
        None for a terminated read.
    who
        Which connection, for the message, e.g. ``"Client 'x' (127.0.0.1:5000)"``.
    """

    def __init__(self, partial: bytes, expected: int | None, who: str = "") -> None:
        super().__init__(partial, expected)
        wanted = "a terminator" if expected is None else f"{expected} bytes"
        prefix = f"{who}: " if who else ""
        self.args = (
            f"{prefix}connection closed by the peer after {len(partial)} bytes "
            f"of a message; expected {wanted}",
        )
        self.who = who

    def __reduce__(
        self,
    ) -> tuple[type[IncompleteReadError], tuple[bytes, int | None, str]]:
        return (type(self), (self.partial, self.expected, self.who))


class LimitOverrunError(AnyTcpIpError, asyncio.LimitOverrunError):
    """A terminated message is longer than ``max_line_length``.

    Also an :class:`asyncio.LimitOverrunError`. The data stays buffered, so a
    caller may drain it with ``read(n)``.

    Parameters
    ----------
    message
        What happened.
    consumed
        The number of bytes buffered when the limit was hit.
    """

    def __init__(self, message: str, consumed: int) -> None:
        super().__init__(message, consumed)

    def __reduce__(self) -> tuple[type[LimitOverrunError], tuple[str, int]]:
        return (type(self), (self.args[0], self.consumed))


class NotConnectedError(AnyTcpIpError, ConnectionError):
    """There is no connection: not yet connected, or closed by this end."""


class ConnectionLostError(AnyTcpIpError, ConnectionResetError):
    """The connection was closed or reset by the peer, or found dead."""


class FrameTooLargeError(AnyTcpIpError, ValueError):
    """A length-prefixed frame is larger than ``max_frame_size``.

    On reading, nothing is consumed, but the stream cannot be trusted any
    more (the length may be garbage): close the connection.

    Parameters
    ----------
    message
        What happened.
    size
        The frame's size.
    max_size
        The limit.
    """

    def __init__(self, message: str, size: int, max_size: int) -> None:
        super().__init__(message)
        self.size = size
        self.max_size = max_size

    def __reduce__(self) -> tuple[type[FrameTooLargeError], tuple[str, int, int]]:
        return (type(self), (self.args[0], self.size, self.max_size))
