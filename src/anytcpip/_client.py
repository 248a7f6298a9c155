"""``Client``: connect to a TCP server, and optionally reconnect."""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

import anyio
import anyio.abc

from ._connection import BaseClientOrServer
from ._constants import TLS_HANDSHAKE_TIMEOUT
from ._exceptions import ConnectionLostError
from ._options import check_timeout
from ._reconnect import Backoff
from ._requester import RequestMixin
from ._send import Spawner
from ._socket_options import set_socket_options
from ._streams import host_port
from ._tcp_connect import connect_tcp

__all__ = ["Client"]


def _reason(cause: OSError) -> str:
    """Say in a few words why a connection attempt failed."""
    import ssl  # here, not at import time: only TLS users need it (issue 15)

    if isinstance(cause, ssl.SSLError):
        # errno 1 here is OpenSSL's, not EPERM: "Operation not permitted"
        # would mislead. "certificate verify failed: ..." says what happened.
        detail = getattr(cause, "verify_message", None) or cause.reason
        return f"TLS handshake failed: {detail or cause}"
    if isinstance(cause, socket.gaierror) or cause.errno is None or cause.errno <= 0:
        # getaddrinfo's codes are negative; its text is in strerror.
        return cause.strerror or str(cause) or type(cause).__name__
    # asyncio's text ("Connect call failed (...)") hides the OS's reason.
    return os.strerror(cause.errno)


def _connect_error(exc: OSError, where: str) -> OSError:
    """Build a clear ``OSError`` of the OS's own type from a failed connect.

    anyio reports "All connection attempts failed" with the last attempt's
    error as the cause; surface that one (e.g. ``ConnectionRefusedError``),
    keeping its type and, for TLS errors, its details (``reason``,
    ``verify_code``, ``verify_message``).
    """
    cause = exc
    while cause.errno is None and isinstance(cause.__cause__, OSError):
        cause = cause.__cause__
    message = f"{where}: {_reason(cause)}"
    if cause.errno is None:
        return OSError(message)
    error = type(cause)(cause.errno, message)
    for attribute in ("library", "reason", "verify_code", "verify_message"):
        if hasattr(cause, attribute):
            setattr(error, attribute, getattr(cause, attribute))
    return error


class Client(RequestMixin, BaseClientOrServer):
    """A TCP client; ``async with Client(host, port) as client:`` connects.

    Parameters
    ----------
    host
        Host name or IP address of the server.
    port
        TCP port of the server.
    connect_timeout
        Seconds allowed for one connection attempt, TLS handshake included
        (None: the OS's limit for TCP, and ``tls_handshake_timeout`` for TLS).
    tls_handshake_timeout
        Seconds allowed for the TLS handshake of one attempt (with
        ``ssl_context`` only). Default: ``TLS_HANDSHAKE_TIMEOUT`` (10 s), the
        server's bound, so a peer that accepts TCP but never answers the TLS
        hello cannot hold a connection attempt forever; ``math.inf`` removes
        the bound. The shorter of this and ``connect_timeout`` applies.
    reconnect
        A reconnection policy such as :class:`Backoff`. With one, entering
        does not wait for a connection: the client connects in the
        background, retrying with the policy's delays, and reconnects after
        a loss; ``connect_callback`` reports each change and
        :meth:`wait_connected` waits for the next connection. Without one
        (the default), entering raises if the server cannot be reached, and a
        lost connection stays lost: the caller decides what to do.
    **kwargs
        The common keywords of :class:`BaseClientOrServer` (``log``,
        ``connect_callback``, ``name``, ``encoding``, ``terminator``,
        ``max_line_length``, ``heartbeat_interval``, ``heartbeat_timeout``,
        ``keepalive``, ``ssl_context``).

    Raises
    ------
    OSError
        On entry, if the server refuses (``ConnectionRefusedError``) or cannot
        be reached, or ``TimeoutError`` after ``connect_timeout`` or
        ``tls_handshake_timeout`` (the message says which). With
        ``reconnect``, each such failure counts as a failed attempt.
    ValueError
        If ``port``, ``connect_timeout`` or ``tls_handshake_timeout`` is out
        of range.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        connect_timeout: float | None = None,
        tls_handshake_timeout: float = TLS_HANDSHAKE_TIMEOUT,
        reconnect: Backoff | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise ValueError(f"port={port!r} must be an int in 1..65535")
        check_timeout("connect_timeout", connect_timeout)
        if (
            not isinstance(tls_handshake_timeout, (int, float))
            or isinstance(tls_handshake_timeout, bool)
            or not tls_handshake_timeout > 0
        ):
            raise ValueError(
                f"tls_handshake_timeout={tls_handshake_timeout!r} must be a number "
                "> 0 (math.inf for no bound)"
            )
        if reconnect is not None and not isinstance(reconnect, Backoff):
            raise TypeError(f"reconnect={reconnect!r} must be None or a Backoff")
        self.host = host
        self.port = port
        self.connect_timeout = connect_timeout
        self.tls_handshake_timeout = tls_handshake_timeout
        """Seconds allowed for the TLS handshake of one connection attempt."""
        self._reconnect = reconnect
        self._pending: anyio.abc.ByteStream | None = None
        self.reconnect_attempts: int = 0
        """Connection attempts made so far with ``reconnect``, the first
        included, successful or not (``stats.connects`` of them succeeded)."""

    def _describe(self) -> str:
        return f"{super()._describe()} ({host_port(self.host, self.port)})"

    def _reconnect_attempts(self) -> int:
        return self.reconnect_attempts

    async def _connect(self) -> anyio.abc.ByteStream:
        timeout = self.connect_timeout
        try:
            # No cancel scope at all when there is no bound (the common case).
            with (
                anyio.fail_after(timeout)
                if timeout is not None
                else contextlib.nullcontext()
            ):
                tcp = await connect_tcp(self.host, self.port)
                stream: anyio.abc.ByteStream | None = tcp
                if self.ssl_context is not None:
                    stream = await self._tls_handshake(tcp)
        except TimeoutError as exc:
            raise TimeoutError(
                f"{self._cannot_connect()}: timed out after {self.connect_timeout} s"
            ) from exc
        except OSError as exc:
            raise _connect_error(exc, self._cannot_connect()) from exc
        except anyio.BrokenResourceError as exc:
            reason = repr(exc.__cause__ or exc)
            raise ConnectionLostError(f"{self._cannot_connect()}: {reason}") from exc
        except anyio.EndOfStream as exc:
            raise ConnectionLostError(
                f"{self._cannot_connect()}: the server closed the connection "
                "during the TLS handshake"
            ) from exc
        if stream is None:
            raise TimeoutError(
                f"{self._cannot_connect()}: TLS handshake timed out after "
                f"{self.tls_handshake_timeout} s (the server accepted the TCP "
                "connection but did not complete the handshake)"
            )
        if self.keepalive:
            set_socket_options(stream)
        return stream

    def _cannot_connect(self) -> str:
        """Start a failed connection attempt's message (built only on failure)."""
        return f"{self._describe()}: cannot connect"

    async def _tls_handshake(
        self, stream: anyio.abc.ByteStream
    ) -> anyio.abc.ByteStream | None:
        """Wrap ``stream`` in TLS within ``tls_handshake_timeout``.

        Returns None if the handshake timed out. The TCP stream is closed if
        the handshake fails, times out or is cancelled.
        """
        # Imported here: it imports ssl, which only TLS users need (issue 15).
        from anyio.streams.tls import TLSStream

        try:
            with anyio.move_on_after(self.tls_handshake_timeout) as scope:
                return await TLSStream.wrap(
                    stream,
                    server_side=False,
                    hostname=self.host,
                    ssl_context=self.ssl_context,
                    standard_compatible=False,
                )
        except BaseException:
            await anyio.aclose_forcefully(stream)
            raise
        assert scope.cancelled_caught
        await anyio.aclose_forcefully(stream)
        return None

    async def _open(self) -> None:
        if self._reconnect is None:
            self._pending = await self._connect()

    def _tasks_end_when_closed(self) -> bool:
        # Without reconnect, the only task is the connection's (_run_channel).
        return self._reconnect is None

    async def _start(self, task_group: Spawner) -> None:
        if self._reconnect is not None:
            task_group.start_soon(self._keep_connected, self._reconnect)
            return
        stream, self._pending = self._pending, None
        if stream is None:
            return
        channel = self._adopt(stream)
        task_group.start_soon(self._run_channel, channel)
        await self._report()

    async def _keep_connected(self, policy: Backoff) -> None:
        """Connect, serve the connection until it is lost, and start over.

        Every attempt after the first waits for the policy's next delay, also
        after a connection that was lost: a server that accepts and drops at
        once (a busy one-client server) sees backoff, not a tight loop. The
        delays start again from ``initial`` after a connection that lasted at
        least ``maximum`` seconds.
        """
        delays = policy.delays()
        failures = 0
        while not self._closed:
            self.reconnect_attempts += 1
            try:
                stream = await self._connect()
            except (OSError, ConnectionError) as exc:
                failures += 1
                if policy.max_attempts is not None and failures >= policy.max_attempts:
                    self._log.error(
                        "giving up after %d failed connection attempts: %s",
                        failures,
                        exc,
                    )
                    self._failure = exc
                    self._notify_state_changed()
                    return
                delay = next(delays)
                self._log.info("%s; retrying in %.2f s", exc, delay)
                await anyio.sleep(delay)
                continue
            failures = 0
            await self._report()
            if self._closed:
                await anyio.aclose_forcefully(stream)
                return
            channel = self._adopt(stream)
            connected_at = anyio.current_time()
            await self._run_channel(channel)
            if self._closed:
                return
            if anyio.current_time() - connected_at >= policy.maximum:
                delays = policy.delays()
            delay = next(delays)
            self._log.info("reconnecting in %.2f s", delay)
            await anyio.sleep(delay)

    async def close(self) -> None:
        """Close the connection; idempotent.

        If a connection was up, ``connect_callback`` has run before this
        returns.
        """
        stream, self._pending = self._pending, None
        if stream is not None:
            with contextlib.suppress(Exception):
                await anyio.aclose_forcefully(stream)
        await super().close()
