"""Exception types, shared by the whole package.

Every exception subclasses :class:`AnyTcpIpError` *and* the standard type that
existing code already catches, so ``except asyncio.IncompleteReadError`` or
``except ConnectionError`` keeps working unchanged, on trio too.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = [
    "AnyTcpIpError",
    "BadMessageError",
    "ConnectionLostError",
    "FrameTooLargeError",
    "IncompleteReadError",
    "LimitOverrunError",
    "MessageLengthError",
    "NotConnectedError",
    "RequestTimeoutError",
    "UnknownMessageError",
    "prefixed",
]


def prefixed(who: str, text: str) -> str:
    """Return ``text`` prefixed with the connection's description ``who``, if any.

    The one way a log or error message names its connection:
    ``"Client 'x' (127.0.0.1:5000): connection closed by the peer"``.
    """
    return f"{who}: {text}" if who else text


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
        self.args: tuple[Any, ...] = (
            prefixed(
                who,
                f"connection closed by the peer after {len(partial)} bytes "
                f"of a message; expected {wanted}",
            ),
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


class BadMessageError(AnyTcpIpError, ValueError):
    """A message arrived but could not be understood.

    The base of the errors a message reader (such as
    :class:`StructDispatcher`) raises for one bad message. Its
    ``resynchronised`` says whether the reader could skip the whole
    message, so that a loop of reads (a read loop, a :class:`Correlator`) can
    log it and go on, or must stop because the stream is out of step.

    Parameters
    ----------
    message
        What happened.
    data
        The bytes of the bad message that were seen (and consumed).
    resynchronised
        True if the whole message was consumed, so the next read starts at
        the next message and the connection can go on. False if where the
        next message starts is unknown: close the connection (or scan for a
        sync marker, if the protocol has one).
    """

    def __init__(self, message: str, data: bytes, resynchronised: bool) -> None:
        super().__init__(message)
        self.data = data
        self.resynchronised = resynchronised

    def __reduce__(self) -> tuple[type[BadMessageError], tuple[Any, ...]]:
        return (type(self), (self.args[0], self.data, self.resynchronised))


class UnknownMessageError(BadMessageError):
    """A header announced a message id that has no body type.

    Parameters
    ----------
    message
        What happened.
    message_id
        The id found in the header.
    data
        The bytes seen: the header, followed by the skipped body if the
        dispatcher could skip it.
    resynchronised
        True if the whole message was consumed (the header has a length
        field), so the next read starts at the next header and the connection
        can go on. False if only the header was consumed: where the next
        header starts is unknown, so close the connection (or scan for a sync
        marker, if the protocol has one).
    """

    def __init__(
        self, message: str, message_id: Any, data: bytes, resynchronised: bool
    ) -> None:
        super().__init__(message, data, resynchronised)
        self.message_id = message_id

    def __reduce__(
        self,
    ) -> tuple[type[UnknownMessageError], tuple[Any, ...]]:
        return (
            type(self),
            (self.args[0], self.message_id, self.data, self.resynchronised),
        )


class MessageLengthError(BadMessageError):
    """A header's length field does not match the body its id selects.

    Only raised by a :class:`StructDispatcher` with a ``length_field``.

    Parameters
    ----------
    message
        What happened.
    message_id
        The id found in the header.
    data
        The bytes seen: the header, followed by the skipped body if the
        dispatcher could skip it.
    resynchronised
        True if the announced body was skipped, so the next read starts at
        the next header. False if the announced length was impossible
        (negative, or larger than ``max_body_size``) and nothing but the
        header was consumed: close the connection.
    length
        The body length the header announced (excluding the header).
    expected
        The size of the body type (0 for a message without body).
    """

    def __init__(
        self,
        message: str,
        message_id: Any,
        data: bytes,
        resynchronised: bool,
        length: int,
        expected: int,
    ) -> None:
        super().__init__(message, data, resynchronised)
        self.message_id = message_id
        self.length = length
        self.expected = expected

    def __reduce__(
        self,
    ) -> tuple[type[MessageLengthError], tuple[Any, ...]]:
        return (
            type(self),
            (
                self.args[0],
                self.message_id,
                self.data,
                self.resynchronised,
                self.length,
                self.expected,
            ),
        )


class RequestTimeoutError(AnyTcpIpError, TimeoutError):
    """No reply to a request arrived in time.

    Also a :class:`TimeoutError`.

    Parameters
    ----------
    message
        What timed out, after how long, and what became of the connection.
    request
        The request (the message sent, or its description).
    timeout
        The timeout, in seconds.
    connection_closed
        True if the connection was closed because of the timeout
        (:class:`Requester` with ``reply_timeout_policy="close"``).
    """

    def __init__(
        self, message: str, request: Any, timeout: float, connection_closed: bool
    ) -> None:
        super().__init__(message)
        self.request = request
        self.timeout = timeout
        self.connection_closed = connection_closed

    def __reduce__(
        self,
    ) -> tuple[type[RequestTimeoutError], tuple[str, Any, float, bool]]:
        return (
            type(self),
            (self.args[0], self.request, self.timeout, self.connection_closed),
        )
