"""The ``anytcpip connect`` subcommand: an interactive line/JSON netcat.

Each line typed (or read from stdin) is sent; each message that arrives is
printed. At the end of input the replies still coming are printed until a
quiet spell (``--wait``); Ctrl-C ends at once.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import stat
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread

from ._cli_common import CliError
from ._cli_common import busy_hint as _busy_hint
from ._cli_common import err as _err
from ._cli_common import open_client as _open
from ._cli_common import out as _out
from ._cli_common import shown_reply as _shown_reply
from ._client import Client
from ._constants import HEARTBEAT

__all__ = ["run_connect"]


class _Session:
    """What ``connect`` has seen so far."""

    def __init__(self) -> None:
        self.received = 0
        self.closed_by_peer: BaseException | None = None
        # After the end of input: wait this long after the last reply.
        self.linger = anyio.CancelScope()


async def run_connect(args: argparse.Namespace) -> None:
    """Run ``anytcpip connect``."""
    client = await _open(args)
    session = _Session()
    try:
        if _is_tty(sys.stdin):
            _err(
                f"connected to {args.host}:{args.port}; type a message and "
                "press Enter to send it; Ctrl-D (end of input) or Ctrl-C ends"
            )
        async with anyio.create_task_group() as tg:
            tg.start_soon(_print_incoming, client, args, session, tg.cancel_scope)
            await _send_typed(client, args, session, tg.cancel_scope)
            # End of input: print the replies still coming, until a quiet spell.
            session.linger.deadline = anyio.current_time() + args.wait
            with session.linger:
                await anyio.sleep_forever()
            tg.cancel_scope.cancel()
    finally:
        await client.__aexit__(None, None, None)
    if session.closed_by_peer is not None:
        if session.received == 0 and not client.stats.bytes_received:
            raise CliError(_busy_hint(client)) from session.closed_by_peer
        _err(f"{args.host}:{args.port} closed the connection")


async def _print_incoming(
    client: Client,
    args: argparse.Namespace,
    session: _Session,
    scope: anyio.CancelScope,
) -> None:
    """Print each message as it arrives (JSON pretty-printed with ``--json``)."""
    try:
        while True:
            line = await client.read_str()
            if line.encode() == HEARTBEAT:
                continue
            session.received += 1
            if session.linger.deadline != math.inf:
                session.linger.deadline = anyio.current_time() + args.wait
            try:
                line = _shown_reply(line, args.json, indent=2)
            except json.JSONDecodeError:
                pass  # not JSON: shown as it is
            _out(line)
    except (ConnectionError, EOFError) as exc:
        session.closed_by_peer = exc
        scope.cancel()


async def _send_typed(
    client: Client,
    args: argparse.Namespace,
    session: _Session,
    scope: anyio.CancelScope,
) -> None:
    """Send each line read from stdin, until the end of input."""
    async for line in _read_stdin_lines():
        if not line.strip():
            continue
        try:
            if args.json:
                try:
                    payload = json.loads(line)
                except json.JSONDecodeError as exc:
                    _err(f"not JSON, not sent: {line!r} ({exc.msg})")
                    continue
                await client.write_json(payload)
            else:
                await client.write_str(line)
        except (ConnectionError, EOFError) as exc:
            session.closed_by_peer = exc
            scope.cancel()
            await anyio.lowlevel.checkpoint()  # cancelled here


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed
        return False


async def _read_stdin_lines() -> AsyncIterator[str]:
    """Yield the lines of stdin without blocking the event loop.

    A terminal or a pipe is read when it is readable (no thread, so nothing
    is left blocked on stdin at exit); a regular file is always readable; on
    Windows, where only sockets can be waited on, a worker thread reads.
    """
    if sys.stdin is None:  # started without a standard input
        return
    fd = sys.stdin.fileno()
    if sys.platform == "win32":  # pragma: no cover - not tested on Windows
        while line := await anyio.to_thread.run_sync(
            sys.stdin.readline, abandon_on_cancel=True
        ):
            yield line.rstrip("\r\n")
        return
    regular_file = stat.S_ISREG(os.fstat(fd).st_mode)
    pending = b""
    while True:
        if not regular_file:
            await anyio.wait_readable(fd)
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            yield line.rstrip(b"\r").decode(errors="replace")
        await anyio.lowlevel.checkpoint()
    if pending:
        yield pending.rstrip(b"\r").decode(errors="replace")
