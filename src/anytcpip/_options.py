"""Validated connection options: one frozen object, one validator per rule.

Rationale
---------
Every front end (the native classes, :mod:`anytcpip.blocking`,
:mod:`anytcpip.asyncio_compat`, the command line) takes the same keywords
(``encoding``, ``terminator``, ``max_line_length``, heartbeats, ...). They are
checked here once, by :meth:`ConnectionOptions.create`, which raises the same
clear ``ValueError``/``TypeError`` whichever front end was used, and the
result is a frozen value that the connection reads on its hot paths. The
small validators (:func:`check_timeout`, :func:`check_async_callable`) are
the only copies of those rules in the package.

This module imports nothing from the package but the constants: any layer may
use it.
"""

from __future__ import annotations

import codecs
import inspect
from dataclasses import dataclass
from typing import Final, Literal

from ._constants import (
    DEFAULT_ENCODING,
    DEFAULT_MAX_FRAME_SIZE,
    DEFAULT_MAX_LINE_LENGTH,
    DEFAULT_TERMINATOR,
    HEARTBEAT,
)

__all__ = [
    "ConnectionOptions",
    "check_async_callable",
    "check_timeout",
    "is_async_callable",
]


def check_timeout(name: str, value: float | None) -> float | None:
    """Return ``value`` if it is None or a number > 0.

    Parameters
    ----------
    name
        The keyword's name, for the message.
    value
        Seconds, or None for "no limit".

    Raises
    ------
    ValueError
        If ``value`` is not None and not > 0 (NaN, 0, negative, not a number).
    """
    try:
        positive = value is None or value > 0
    except TypeError:
        positive = False
    if not positive or isinstance(value, bool):
        raise ValueError(f"{name}={value!r} must be None or > 0")
    return value


def is_async_callable(obj: object) -> bool:
    """Tell whether calling ``obj`` returns a coroutine (also via ``__call__``)."""
    return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(
        getattr(obj, "__call__", None)  # noqa: B004
    )


def check_async_callable(name: str, obj: object) -> None:
    """Raise ``TypeError`` unless ``obj`` is None or an async callable.

    Parameters
    ----------
    name
        The keyword's name, for the message.
    obj
        The callable to check.

    Raises
    ------
    TypeError
        If ``obj`` is neither None nor an async callable.
    """
    if obj is not None and not is_async_callable(obj):
        raise TypeError(
            f"{name}={obj!r} must be an async callable "
            "(async def callback(client_or_server))"
        )


def _check_terminator(name: str, value: bytes) -> bytes:
    if not isinstance(value, bytes) or not value:
        raise ValueError(f"{name}={value!r} must be non-empty bytes")
    return value


_DEFAULT_PREFIX: Final = 4
_DEFAULT_BYTEORDER: Final = "big"


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """The validated options of one connection (internal).

    Build it with :meth:`create`, which checks every value; the attributes
    are the values the connection uses.

    Attributes
    ----------
    encoding
        Text encoding of ``read_str``/``write_str`` (a known codec).
    read_terminator
        Bytes that end a message read by ``read_str``/``read_json``.
    write_terminator
        Bytes appended by ``write_str``/``write_json`` and to heartbeats.
    frame_prefix
        Size in bytes of the length prefix of ``read_frame``/``write_frame``.
    frame_byteorder
        Byte order of that prefix.
    max_frame_size
        Largest frame payload.
    max_line_length
        Longest terminated message (without terminator) a read buffers.
    heartbeat_interval
        Seconds between heartbeats sent, or None.
    heartbeat_timeout
        Seconds without received bytes after which the connection is lost,
        or None.
    keepalive
        Whether TCP keepalive is enabled.
    """

    encoding: str = DEFAULT_ENCODING
    read_terminator: bytes = DEFAULT_TERMINATOR
    write_terminator: bytes = DEFAULT_TERMINATOR
    frame_prefix: Literal[1, 2, 4] = 4
    frame_byteorder: Literal["big", "little"] = "big"
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    max_line_length: int = DEFAULT_MAX_LINE_LENGTH
    heartbeat_interval: float | None = None
    heartbeat_timeout: float | None = None
    keepalive: bool = True

    @classmethod
    def create(
        cls,
        *,
        encoding: str = DEFAULT_ENCODING,
        terminator: bytes = DEFAULT_TERMINATOR,
        read_terminator: bytes | None = None,
        write_terminator: bytes | None = None,
        frame_prefix: Literal[1, 2, 4] = _DEFAULT_PREFIX,
        frame_byteorder: Literal["big", "little"] = _DEFAULT_BYTEORDER,
        max_frame_size: int | None = None,
        max_line_length: int = DEFAULT_MAX_LINE_LENGTH,
        heartbeat_interval: float | None = None,
        heartbeat_timeout: float | None = None,
        keepalive: bool = True,
    ) -> ConnectionOptions:
        """Check the keywords of a connection and return them as options.

        The keywords are those of :class:`~anytcpip.BaseClientOrServer`;
        ``terminator`` is the default of ``read_terminator`` and
        ``write_terminator``.

        Raises
        ------
        ValueError
            If a terminator is not non-empty bytes, ``encoding`` is unknown,
            or a number is out of range.
        """
        if (
            encoding is DEFAULT_ENCODING
            and terminator is DEFAULT_TERMINATOR
            and read_terminator is None
            and write_terminator is None
            and frame_prefix is _DEFAULT_PREFIX
            and frame_byteorder is _DEFAULT_BYTEORDER
            and max_frame_size is None
            and max_line_length is DEFAULT_MAX_LINE_LENGTH
            and heartbeat_interval is None
            and heartbeat_timeout is None
            and keepalive is True
        ):
            # Every keyword is the default object itself (not just an equal
            # value): the checks below would pass, and the options are
            # immutable, so every such connection shares one instance.
            return _DEFAULT_OPTIONS
        _check_terminator("terminator", terminator)
        if read_terminator is not None:
            _check_terminator("read_terminator", read_terminator)
        if write_terminator is not None:
            _check_terminator("write_terminator", write_terminator)
        if frame_prefix not in (1, 2, 4):
            raise ValueError(f"frame_prefix={frame_prefix!r} must be 1, 2 or 4")
        if frame_byteorder not in ("big", "little"):
            raise ValueError(
                f"frame_byteorder={frame_byteorder!r} must be 'big' or 'little'"
            )
        if max_frame_size is None:
            max_frame_size = min(DEFAULT_MAX_FRAME_SIZE, 256**frame_prefix - 1)
        if (
            not isinstance(max_frame_size, int)
            or isinstance(max_frame_size, bool)
            or not 0 < max_frame_size < 256**frame_prefix
        ):
            raise ValueError(
                f"max_frame_size={max_frame_size!r} must be > 0 and fit in a "
                f"{frame_prefix}-byte prefix"
            )
        try:
            codecs.lookup(encoding)
        except (LookupError, TypeError) as exc:
            raise ValueError(f"unknown encoding={encoding!r}") from exc
        if (
            not isinstance(max_line_length, int)
            or isinstance(max_line_length, bool)
            or max_line_length < 1
        ):
            raise ValueError(f"max_line_length={max_line_length!r} must be an int >= 1")
        return cls(
            encoding=encoding,
            read_terminator=terminator if read_terminator is None else read_terminator,
            write_terminator=(
                terminator if write_terminator is None else write_terminator
            ),
            frame_prefix=frame_prefix,
            frame_byteorder=frame_byteorder,
            max_frame_size=max_frame_size,
            max_line_length=max_line_length,
            heartbeat_interval=check_timeout("heartbeat_interval", heartbeat_interval),
            heartbeat_timeout=check_timeout("heartbeat_timeout", heartbeat_timeout),
            keepalive=keepalive,
        )

    @property
    def skipped_line(self) -> bytes | None:
        """The line text reads skip: ``HEARTBEAT`` if heartbeats are enabled."""
        heartbeats = (
            self.heartbeat_interval is not None or self.heartbeat_timeout is not None
        )
        return HEARTBEAT if heartbeats else None


_DEFAULT_OPTIONS = ConnectionOptions()
"""What :meth:`ConnectionOptions.create` returns when given no keyword."""
