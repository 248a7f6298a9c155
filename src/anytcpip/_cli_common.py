"""What several ``anytcpip`` subcommands share.

The errors that end a command and its exit statuses, writing to stdout and
stderr, stopping on a signal (``serve``, ``tap``, ``replay``), and the client
that ``send`` and ``connect`` open (with the hint they give when a busy
server turns them away).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator, Iterator

import anyio

from ._client import Client

__all__ = [
    "EXIT_INTERRUPTED",
    "TERMINATORS",
    "CliError",
    "OutputClosedError",
    "busy_hint",
    "err",
    "log",
    "open_client",
    "out",
    "shown_reply",
    "stop_signals",
    "stopped",
]

TERMINATORS = {"crlf": b"\r\n", "lf": b"\n"}
#: Exit status for Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130
log = logging.getLogger("anytcpip.cli")


class CliError(Exception):
    """An error to report in one line (exit status 1)."""


class OutputClosedError(Exception):
    """Whoever read stdout has gone (``| head``): end quietly (exit status 0)."""


def out(text: str, end: str = "\n") -> None:
    """Write to stdout at once; a reader that has gone is not a socket error."""
    try:
        sys.stdout.write(text + end)
        sys.stdout.flush()
    except BrokenPipeError as exc:
        raise OutputClosedError from exc


def err(text: str) -> None:
    """Write one line to stderr at once."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def busy_hint(client: Client) -> str:
    """Explain a connection closed before anything was received."""
    return (
        f"{client.host}:{client.port} closed the connection without sending "
        "anything: the server may be busy with another client (a one-client "
        "server, such as anytcpip serve, turns extra clients away)"
    )


async def open_client(args: argparse.Namespace) -> Client:
    """Connect a client as the options say; report a failure in one line."""
    client = Client(
        args.host,
        args.port,
        terminator=TERMINATORS.get(args.terminator, b"\r\n"),
        connect_timeout=args.timeout,
    )
    try:
        await client.__aenter__()
    except OSError as exc:
        raise CliError(exc.strerror or str(exc)) from exc
    return client


def shown_reply(line: str, as_json: bool, indent: int | None = None) -> str:
    """Return a reply as printed: JSON re-encoded, non-ASCII kept as it is."""
    if not as_json:
        return line
    return json.dumps(json.loads(line), ensure_ascii=False, indent=indent)


@contextlib.contextmanager
def stop_signals() -> Iterator[AsyncIterator[int]]:
    """Receive Ctrl-C (SIGINT) and SIGTERM, to stop cleanly.

    Receiving them, rather than waiting for KeyboardInterrupt, also stops a
    process started where SIGINT is ignored (a script's background job) or
    stopped by ``kill``. Windows has no signal receivers: there Ctrl-C raises
    KeyboardInterrupt, which ``main`` handles.
    """
    if sys.platform == "win32":
        yield _never()
        return
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        yield signals


async def _never() -> AsyncIterator[int]:
    await anyio.sleep_forever()
    yield 0  # pragma: no cover - never reached


def stopped(signum: int) -> int:
    """Say "stopped" on stderr; return the exit status for the stop signal.

    Ctrl-C is an interruption (130); SIGTERM is the orderly way to stop a
    service (0), as service managers expect.
    """
    err("stopped")
    return EXIT_INTERRUPTED if signum == signal.SIGINT else 0
