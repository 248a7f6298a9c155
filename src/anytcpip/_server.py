"""``OneClientServer``: serve one client at a time.

Rationale
---------
Each listener (one, or one per address family with ``host=None``) has an
accept loop in the server's task group. A newly accepted client either
becomes the current connection, is closed at once with nothing sent
("reject", counted in ``rejected_count``), or takes over from the current one
("replace"). The current client's receive pump runs in its own task; when it
ends, the disconnection is reported and the next client may connect.

That decision and the adoption are one synchronous step (:meth:`_admit`),
taken after any TLS handshake: however many handshakes end at once, exactly
one client is admitted. The accept loop never waits for ``connect_callback``
or for a flush: a replaced client is aborted without sending what was queued
for it, and the connections' own tasks report the changes, in order.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import anyio
import anyio.abc
from anyio.abc import SocketAttribute
from anyio.streams.stapled import MultiListener

from ._connection import BaseClientOrServer
from ._constants import DEFAULT_LOCALHOST, TLS_HANDSHAKE_TIMEOUT
from ._requester import RequestMixin
from ._send import Spawner
from ._socket_options import set_socket_options
from ._streams import close_stream, host_port, peer_address
from ._workarounds import pause_reading_after_accept

__all__ = ["OneClientServer"]

_ACCEPT_ERROR_BACKOFF = 0.1  # seconds to wait after accept fails (e.g. EMFILE)


class OneClientServer(RequestMixin, BaseClientOrServer):
    """A TCP server that serves one client at a time.

    ``async with OneClientServer(port=0) as server:`` binds and listens;
    ``server.port`` is then the real port.

    Parameters
    ----------
    host
        Address to listen on; None for all interfaces (IPv4 and IPv6, on the
        same port). Default: ``127.0.0.1``, loopback only.
    port
        Port to listen on; 0 picks a free one.
    extra_client
        What to do when a client connects while another is connected:
        ``"reject"`` closes the newcomer at once; ``"replace"`` closes the old
        client and serves the newcomer.
    **kwargs
        The common keywords of :class:`BaseClientOrServer`.
    """

    def __init__(
        self,
        host: str | None = DEFAULT_LOCALHOST,
        port: int = 0,
        *,
        extra_client: Literal["reject", "replace"] = "reject",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port < 65536:
            raise ValueError(f"port={port!r} must be an int in 0..65535")
        if extra_client not in ("reject", "replace"):
            raise ValueError(
                f"extra_client={extra_client!r} must be 'reject' or 'replace'"
            )
        self.host = host
        self.port: int = port
        self.extra_client = extra_client
        self.rejected_count: int = 0
        self._listener: MultiListener[anyio.abc.SocketStream] | None = None
        self._listen_scope: anyio.CancelScope | None = None

    def _describe(self) -> str:
        return f"{super()._describe()} ({host_port(self.host, self.port)})"

    def _rejected_clients(self) -> int:
        return self.rejected_count

    async def _end_connection(self) -> None:
        await self.close_client()

    def _listener_options(self) -> dict[str, Any]:
        """More keywords for ``anyio.create_tcp_listener`` (hook for subclasses)."""
        return {}

    async def _open(self) -> None:
        try:
            listener = await anyio.create_tcp_listener(
                local_host=self.host, local_port=self.port, **self._listener_options()
            )
        except OSError as exc:
            message = f"{self._describe()}: cannot listen: {exc.strerror or exc}"
            if exc.errno is None:
                raise OSError(message) from exc
            raise type(exc)(exc.errno, message) from exc
        self._listener = listener
        self._listen_scope = anyio.CancelScope()
        self.port = listener.extra(SocketAttribute.local_port)
        self._log.info("%s: listening", self._describe())

    async def _start(self, task_group: Spawner) -> None:
        assert self._listener is not None
        for listener in self._listener.listeners:
            task_group.start_soon(self._accept_loop, listener, task_group)

    async def _accept_loop(
        self,
        listener: anyio.abc.Listener[anyio.abc.SocketStream],
        task_group: Spawner,
    ) -> None:
        accept = getattr(listener, "accept")  # noqa: B009  (SocketListener API)
        assert self._listen_scope is not None
        with self._listen_scope:
            while True:
                try:
                    stream = await accept()
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    return
                except OSError as exc:
                    # e.g. out of file descriptors: back off instead of spinning.
                    self._log.warning("%s: accept failed: %r", self._describe(), exc)
                    await anyio.sleep(_ACCEPT_ERROR_BACKOFF)
                    continue
                pause_reading_after_accept(stream)
                if self._is_busy():
                    # Closed at once, before any TLS handshake: nothing sent.
                    self._reject(stream)
                    await anyio.aclose_forcefully(stream)
                elif self.ssl_context is None:
                    if not self._admit(stream, task_group):
                        await anyio.aclose_forcefully(stream)
                else:
                    # The handshake must not hold up the accept loop.
                    task_group.start_soon(self._handshake, stream, task_group)

    def _is_busy(self) -> bool:
        current = self._channel
        return self.extra_client == "reject" and current is not None and current.is_open

    def _reject(self, stream: anyio.abc.ByteStream) -> None:
        """Count and log a rejected client (the caller closes it)."""
        self.rejected_count += 1
        if not self._log.isEnabledFor(logging.INFO):
            return  # (no address to look up: a client turned away costs less)
        self._log.info(
            "%s: client %s rejected: another client is connected (%d rejected so far)",
            self._describe(),
            peer_address(stream),
            self.rejected_count,
        )

    async def _handshake(
        self, stream: anyio.abc.ByteStream, task_group: Spawner
    ) -> None:
        # Imported here: it imports ssl, which only TLS users need (issue 15).
        from anyio.streams.tls import TLSStream

        peer = peer_address(stream)
        try:
            with anyio.fail_after(TLS_HANDSHAKE_TIMEOUT):
                tls_stream = await TLSStream.wrap(
                    stream,
                    server_side=True,
                    ssl_context=self.ssl_context,
                    standard_compatible=False,
                )
        except BaseException as exc:
            # Also when cancelled (the server is closing): never leak the socket.
            await anyio.aclose_forcefully(stream)
            if not isinstance(
                exc, (OSError, anyio.BrokenResourceError, anyio.EndOfStream)
            ):
                raise
            self._log.warning(
                "%s: TLS handshake with %s failed: %r", self._describe(), peer, exc
            )
            return
        # Several handshakes may end at once: the first admitted wins.
        if not self._admit(tls_stream, task_group):
            await anyio.aclose_forcefully(tls_stream)

    def _admit(self, stream: anyio.abc.ByteStream, task_group: Spawner) -> bool:
        """Serve a new client, or let it replace the current one; or reject it.

        Synchronous, so the decision and the adoption are one atomic step:
        no other client can be admitted in between. Nothing here waits for a
        callback or a flush: the old connection is aborted, and its tasks and
        the new one's report the changes (in order) in the background.
        Returns False if the client was not admitted: the caller closes it.
        """
        current = self._channel
        if self._closed:
            return False
        if current is not None and current.is_open:
            if self.extra_client == "reject":
                self._reject(stream)
                return False
            self._log.info(
                "%s: client %s replaces the connected client",
                self._describe(),
                peer_address(stream),
            )
            self._abort_channel(current, "the connection was replaced by a new client")
        if self.keepalive:
            set_socket_options(stream)
        channel = self._adopt(stream, f"client {peer_address(stream)}")
        task_group.start_soon(self._run_channel, channel)
        return True

    async def close_client(self) -> None:
        """Drop the current client (``should_be_connected`` turns False).

        The server keeps listening. If a client was connected,
        ``connect_callback`` has run before this returns.
        """
        self._should_be_connected = False
        channel = self._channel
        if channel is not None:
            await channel.aclose()
        await self._report()

    async def close(self) -> None:
        """Stop listening and drop the client; idempotent."""
        if self._listen_scope is not None:
            self._listen_scope.cancel()
        listener, self._listener = self._listener, None
        if listener is not None:
            await close_stream(listener)
        await super().close()
