"""The ``anytcpip serve`` subcommand: a one-client echo server (mock controller).

It echoes text or JSON lines, logs connections and messages, and stops on
Ctrl-C (SIGINT, exit status 130) or SIGTERM (exit status 0).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
from typing import Any

from ._cli_common import TERMINATORS, log, stop_signals, stopped
from ._cli_common import out as _out
from ._connection import BaseClientOrServer
from ._read_loop import OneClientReadLoopServer

__all__ = ["EchoServer", "run_serve"]


class EchoServer(OneClientReadLoopServer):
    """Echo every message back: text and JSON lines, and structs."""

    json_echo = False

    async def read_and_dispatch(self) -> None:
        """Echo one message; log one line for a message that cannot be read.

        A line that is not JSON (with ``--json-echo``) or not valid text is
        consumed, logged and not echoed; the client stays connected. Other
        errors end the client's session, as in any read-loop server.
        """
        try:
            message: Any = (
                await self.read_json() if self.json_echo else await self.read_str()
            )
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            kind = "JSON" if isinstance(exc, json.JSONDecodeError) else "text"
            log.warning(
                "%s: ignored a message that is not %s: %s",
                self.name,
                kind,
                exc,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            return
        log.info("%s: received %r", self.name, message)
        if self.json_echo:
            await self.write_json(message)
        else:
            await self.write_str(message)


async def run_serve(args: argparse.Namespace) -> int:
    """Run ``anytcpip serve`` until a stop signal; return the exit status."""

    async def show(conn: BaseClientOrServer) -> None:
        log.info("client %s", "connected" if conn.connected else "disconnected")

    heartbeat = {"heartbeat_interval": args.heartbeat} if args.heartbeat else {}
    server = EchoServer(
        args.host,
        args.port,
        name="serve",
        connect_callback=show,
        terminator=TERMINATORS[args.terminator],
        **heartbeat,
    )
    server.json_echo = args.json_echo
    kind = "JSON echo" if args.json_echo else "echo"
    stopped_by = signal.SIGTERM
    with stop_signals() as signals:  # before listening: no signal is missed
        async with server:
            _out(f"{kind} server listening on {args.host}:{server.port}")
            async for signum in signals:
                stopped_by = signal.Signals(signum)
                log.info("stopping on %s", stopped_by.name)
                break
    return stopped(stopped_by)
