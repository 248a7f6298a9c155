"""The ``anytcpip`` command: its argument parser and ``main``.

``main`` parses the arguments, runs the subcommand on the chosen backend
(``--backend``) and turns how it ended into an exit status. Each
subcommand lives in its own module: ``_cli_demo``, ``_cli_serve``,
``_cli_send``, ``_cli_connect`` and ``_cli_tap`` (``tap`` and ``replay``);
what several of them share is in ``_cli_common``.

Exit statuses follow the shell's conventions: 0 for success, 1 for an error
(one line on stderr), 2 for bad arguments, 130 for Ctrl-C (SIGINT), so that
``anytcpip send ... && next-step`` stops when it should. Output piped into a
command that stops reading (``| head``) ends the command quietly.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from . import _cli_tap
from ._cli_args import count as _count
from ._cli_args import port as _port
from ._cli_args import positive as _positive
from ._cli_common import EXIT_INTERRUPTED, CliError, OutputClosedError
from ._cli_connect import run_connect
from ._cli_demo import run_demo
from ._cli_send import run_send
from ._cli_serve import run_serve
from ._constants import DEFAULT_LOCALHOST
from ._version import __version__

__all__ = ["main"]

#: Where a missing backend comes from: the module to import, the extra to install.
BACKEND_EXTRAS = {"trio": "trio", "uvloop": "uvloop"}


# -- running on a backend -----------------------------------------------------


def _run(func: Any, args: argparse.Namespace) -> int | None:
    backend, options = args.backend, {}
    if backend in BACKEND_EXTRAS:
        try:
            importlib.import_module(BACKEND_EXTRAS[backend])
        except ImportError as exc:
            raise CliError(
                f"the {backend} backend is not installed; install it with: "
                f'pip install "anytcpip[{backend}]"'
            ) from exc
    if backend == "uvloop":
        backend, options = "asyncio", {"use_uvloop": True}
    result: int | None = anyio.run(func, args, backend=backend, backend_options=options)
    return result


# -- argument parsing -------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``anytcpip`` command."""
    parser = argparse.ArgumentParser(
        prog="anytcpip",
        description="TCP/IP tools for instrument control: a demo, a mock "
        "controller, and a line/JSON netcat (send, connect).",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    # --backend and --debug go before or after the subcommand. The
    # subcommands' copies default to SUPPRESS so they do not override a
    # value given before the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    for options, defaults in ((parser, ("asyncio", False)), (common, None)):
        backend, debug = defaults or (argparse.SUPPRESS, argparse.SUPPRESS)
        options.add_argument(
            "--backend",
            choices=["asyncio", "trio", "uvloop"],
            default=backend,
            help="event loop to run on (default: asyncio)",
        )
        options.add_argument(
            "--debug",
            action="store_true",
            default=debug,
            help="log details and show tracebacks",
        )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    commands.add_parser(
        "demo",
        parents=[common],
        help="run an echo server and a client in one process",
        description="Start a one-client echo server and a client on loopback, "
        "exchange text, JSON and struct messages, show the connection "
        "callbacks and measure round trips per second.",
    )

    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="run a one-client mock controller",
        description="Serve one client at a time, echoing each message; log "
        "connections and messages. Ctrl-C (exit status 130) or SIGTERM "
        "(exit status 0) stops it.",
    )
    serve.add_argument("--host", default=DEFAULT_LOCALHOST, help="default: 127.0.0.1")
    serve.add_argument(
        "--port", type=_port, default=0, help="default: 0, a free port (printed)"
    )
    mode = serve.add_mutually_exclusive_group()
    mode.add_argument("--echo", action="store_true", help="echo text lines (default)")
    mode.add_argument("--json-echo", action="store_true", help="echo JSON messages")
    serve.add_argument(
        "--heartbeat", type=_positive, metavar="S", help="send heartbeats every S s"
    )
    serve.add_argument(
        "--terminator",
        choices=["crlf", "lf"],
        default="crlf",
        help="line ending of messages (default: crlf)",
    )

    send = commands.add_parser(
        "send",
        parents=[common],
        help="send messages and print the replies",
        description="Connect, send each MESSAGE, print the replies, exit. "
        "A MESSAGE of - reads the messages from stdin, one a line (blank "
        "lines skipped).",
    )
    send.add_argument("host", metavar="HOST")
    send.add_argument("port", metavar="PORT", type=_port)
    send.add_argument(
        "messages",
        metavar="MESSAGE",
        nargs="+",
        help="a message to send; - reads them from stdin, one a line",
    )
    send.add_argument(
        "--json", action="store_true", help="messages and replies are JSON"
    )
    send.add_argument(
        "--replies",
        type=_count,
        metavar="N",
        help="replies to wait for (default: one per message)",
    )
    send.add_argument(
        "--timeout", type=_positive, default=5.0, metavar="S", help="default: 5 s"
    )
    send.add_argument(
        "--terminator",
        choices=["crlf", "lf", "none"],
        default="crlf",
        help="line ending; none sends raw bytes and prints what arrives "
        "until the timeout",
    )

    connect = commands.add_parser(
        "connect",
        parents=[common],
        help="type messages and see what arrives (interactive)",
        description="Connect, then send each line typed (or read from stdin) "
        "and print each message as it arrives. At the end of input (Ctrl-D), "
        "print the replies still coming, then exit. Ctrl-C exits at once.",
    )
    connect.add_argument("host", metavar="HOST")
    connect.add_argument("port", metavar="PORT", type=_port)
    connect.add_argument(
        "--json",
        action="store_true",
        help="send each line as JSON (not JSON: not sent) and pretty-print "
        "JSON replies",
    )
    connect.add_argument(
        "--timeout",
        type=_positive,
        default=5.0,
        metavar="S",
        help="connection timeout (default: 5 s)",
    )
    connect.add_argument(
        "--wait",
        type=_positive,
        default=1.0,
        metavar="S",
        help="at the end of input, wait until no message has arrived for S s "
        "(default: 1 s)",
    )
    connect.add_argument(
        "--terminator",
        choices=["crlf", "lf"],
        default="crlf",
        help="line ending of messages (default: crlf)",
    )
    _cli_tap.add_parsers(commands, common)  # tap and replay
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``anytcpip`` command; return its exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command != "serve" and not args.debug:
        logging.getLogger("anytcpip").setLevel(logging.WARNING)
    command = {
        "demo": run_demo,
        "serve": run_serve,
        "send": run_send,
        "connect": run_connect,
        **_cli_tap.COMMANDS,
    }[args.command]
    try:
        if args.command == "send" and "-" in args.messages:
            args.stdin = sys.stdin.read()  # before connecting: a file or a pipe
        return _run(command, args) or 0
    except BaseException as exc:
        error = _unwrap(exc)  # a task group wraps what one of its tasks raised
        if isinstance(error, KeyboardInterrupt):
            print("stopped", file=sys.stderr)
            return EXIT_INTERRUPTED
        if isinstance(error, (OutputClosedError, BrokenPipeError)):
            _silence_stdout()
            return 0
        if not isinstance(error, Exception) or args.debug:
            raise
        if isinstance(error, OSError) and error.strerror:
            reason: object = error.strerror
        else:
            reason = error
        print(f"anytcpip {args.command}: error: {reason}", file=sys.stderr)
        return 1


def _unwrap(exc: BaseException) -> BaseException:
    """Return the one error inside (nested) exception groups of one error."""
    while True:
        inner = getattr(exc, "exceptions", None)  # an exception group's errors
        if not isinstance(inner, tuple) or len(inner) != 1:
            return exc
        exc = inner[0]


def _silence_stdout() -> None:
    """Stop writing to a closed pipe, without "Exception ignored" at exit.

    The reader (``head``, ``grep -m1``) has gone: point stdout at the null
    device so that the interpreter's last flush has nowhere to fail.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # pragma: no cover - stdout not a file
        pass
