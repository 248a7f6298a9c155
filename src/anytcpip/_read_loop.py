"""``OneClientReadLoopServer``: a server that reads and dispatches messages.

Subclasses implement :meth:`OneClientReadLoopServer.read_and_dispatch`; the
server calls it in a loop for each connected client, in a task bound to that
connection. If it raises (or the client leaves), the client is closed, the
reason logged, and the server serves the next client.
"""

from __future__ import annotations

import abc

import anyio
import anyio.abc

from ._channel import Channel
from ._exceptions import IncompleteReadError, prefixed
from ._server import OneClientServer

__all__ = ["OneClientReadLoopServer"]


class OneClientReadLoopServer(OneClientServer, abc.ABC):
    """A :class:`OneClientServer` that runs a read loop for each client.

    Subclass it and implement :meth:`read_and_dispatch`, which reads one
    message (with ``read_str``, ``read_json``, ``read_into``, ...) and handles
    it. Takes the same arguments as :class:`OneClientServer`.
    """

    @abc.abstractmethod
    async def read_and_dispatch(self) -> None:
        """Read one message from the client and handle it."""

    def _start_channel_tasks(
        self, channel: Channel, task_group: anyio.abc.TaskGroup
    ) -> None:
        task_group.start_soon(self._read_loop, channel)

    async def _read_loop(self, channel: Channel) -> None:
        # Bound to ``channel`` (see ``_run_channel``): its reads and writes
        # go to that connection only, and it is cancelled when that ends.
        try:
            # Stop once another client has taken over, or once the peer has
            # left and everything it sent has been read.
            while self._channel is channel and (channel.is_open or len(channel.frames)):
                await self.read_and_dispatch()
        except (ConnectionError, IncompleteReadError) as exc:
            self._log.info(
                "%s: read loop ended: %s", channel.who, _reason(exc, channel)
            )
        except anyio.get_cancelled_exc_class():
            if not channel.is_open:
                self._log.info("%s: read loop ended: %s", channel.who, channel.reason)
            raise
        except Exception:
            self._log.exception(
                "%s: read_and_dispatch failed; closing the client", channel.who
            )
        if self._channel is channel and channel.is_open:
            self._should_be_connected = False
            # The connection's own task reports the change (not this one,
            # which is cancelled as the connection ends).
            await channel.aclose("the read loop failed; client closed by this end")


def _reason(exc: BaseException, channel: Channel) -> str:
    """Return the text of ``exc`` without the connection's name (logged already)."""
    text = str(exc)
    prefix = prefixed(channel.who, "")
    return text[len(prefix) :] if text.startswith(prefix) else text
