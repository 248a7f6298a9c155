"""The ``anytcpip`` command: ``demo``, ``serve``, ``send`` and ``connect``.

Printing is this module's purpose (it is the only one allowed to print);
library modules log instead.

Exit statuses follow the shell's conventions: 0 for success, 1 for an error
(one line on stderr), 2 for bad arguments, 130 for Ctrl-C (SIGINT), so that
``anytcpip send ... && next-step`` stops when it should. Output piped into a
command that stops reading (``| head``) ends the command quietly.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib
import json
import logging
import math
import os
import signal
import stat
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread

from . import _cli_tap
from ._cli_args import count as _count
from ._cli_args import port as _port
from ._cli_args import positive as _positive
from ._client import Client
from ._connection import BaseClientOrServer
from ._constants import DEFAULT_LOCALHOST, HEARTBEAT
from ._read_loop import OneClientReadLoopServer
from ._server import OneClientServer
from ._version import __version__

__all__ = ["main"]

TERMINATORS = {"crlf": b"\r\n", "lf": b"\n"}
DEMO_ROUND_TRIPS = 1000
#: Exit status for Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130
#: Where a missing backend comes from: the module to import, the extra to install.
BACKEND_EXTRAS = {"trio": "trio", "uvloop": "uvloop"}
log = logging.getLogger("anytcpip.cli")


class CliError(Exception):
    """An error to report in one line (exit status 1)."""


class OutputClosedError(Exception):
    """Whoever read stdout has gone (``| head``): end quietly (exit status 0)."""


def _out(text: str, end: str = "\n") -> None:
    """Write to stdout at once; a reader that has gone is not a socket error."""
    try:
        sys.stdout.write(text + end)
        sys.stdout.flush()
    except BrokenPipeError as exc:
        raise OutputClosedError from exc


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


# -- demo -----------------------------------------------------------------------


class _Sample(ctypes.Structure):
    _fields_ = [("counter", ctypes.c_uint32), ("xyz", ctypes.c_double * 3)]


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


async def _demo_server(server: OneClientServer) -> None:
    """Play the server side of the demo."""
    await server.wait_connected()
    await server.write_str((await server.read_str()).upper())
    command = await server.read_json()
    await server.write_json({"ack": "done", "position": command["position"]})
    sample = _Sample()
    await server.read_into(sample)
    sample.counter += 1
    await server.write_from(sample)
    for _ in range(DEMO_ROUND_TRIPS):
        await server.write_str(await server.read_str())


async def _demo(args: argparse.Namespace) -> None:
    async def show(conn: BaseClientOrServer) -> None:
        state = "connected" if conn.connected else "disconnected"
        print(f"  callback: {type(conn).__name__} {state}")

    print(f"anytcpip {__version__} demo on {args.backend}")
    async with OneClientServer(port=0, name="demo", connect_callback=show) as server:
        print(f"one-client server listening on {DEFAULT_LOCALHOST}:{server.port}")
        async with anyio.create_task_group() as tg:
            tg.start_soon(_demo_server, server)
            async with Client(
                DEFAULT_LOCALHOST, server.port, connect_callback=show
            ) as client:
                with anyio.fail_after(30):
                    await client.write_str("hello, controller")
                    reply = await client.read_str()
                    print(f"text:   sent 'hello, controller', got {reply!r}")
                    await client.write_json({"cmd": "move", "position": 12.5})
                    print(
                        f"json:   sent a move command, got {await client.read_json()}"
                    )
                    sample = _Sample(7, (1.0, 2.0, 3.0))
                    await client.write_from(sample)
                    await client.read_into(sample)
                    print(
                        f"struct: sent counter 7, got counter {sample.counter} "
                        f"xyz={list(sample.xyz)}"
                    )
                    start = time.perf_counter()
                    for i in range(DEMO_ROUND_TRIPS):
                        await client.write_str(f"ping {i}")
                        await client.read_str()
                    elapsed = time.perf_counter() - start
        await server.close_client()
    print(
        f"summary: {DEMO_ROUND_TRIPS} echo round trips in {elapsed * 1000:.0f} ms "
        f"({DEMO_ROUND_TRIPS / elapsed:,.0f} round trips/s)"
    )


# -- serve ----------------------------------------------------------------------


async def _serve(args: argparse.Namespace) -> int:
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
    with _stop_signals() as signals:  # before listening: no signal is missed
        async with server:
            print(f"{kind} server listening on {args.host}:{server.port}", flush=True)
            async for signum in signals:
                stopped_by = signal.Signals(signum)
                log.info("stopping on %s", stopped_by.name)
                break
    print("stopped", file=sys.stderr)
    # Ctrl-C is an interruption (130); SIGTERM is the orderly way to stop a
    # service (0), as service managers expect.
    return EXIT_INTERRUPTED if stopped_by == signal.SIGINT else 0


@contextlib.contextmanager
def _stop_signals() -> Iterator[AsyncIterator[int]]:
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


# -- send -----------------------------------------------------------------------


def _busy_hint(client: Client) -> str:
    """Explain a connection closed before anything was received."""
    return (
        f"{client.host}:{client.port} closed the connection without sending "
        "anything: the server may be busy with another client (a one-client "
        "server, such as anytcpip serve, turns extra clients away)"
    )


async def _open(args: argparse.Namespace) -> Client:
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


def _parse_messages(messages: Sequence[str], as_json: bool) -> list[Any]:
    """Return the messages to send (JSON-decoded with ``--json``)."""
    if not as_json:
        return list(messages)
    payloads = []
    for message in messages:
        try:
            payloads.append(json.loads(message))
        except json.JSONDecodeError as exc:
            raise CliError(f"not JSON: {message!r} ({exc.msg})") from exc
    return payloads


def _stdin_lines(text: str) -> list[str]:
    """Split text read from stdin into messages: one a line, blank lines skipped."""
    lines = (line.rstrip("\r") for line in text.split("\n"))
    return [line for line in lines if line.strip()]


def _shown_reply(line: str, as_json: bool, indent: int | None = None) -> str:
    """Return a reply as printed: JSON re-encoded, non-ASCII kept as it is."""
    if not as_json:
        return line
    return json.dumps(json.loads(line), ensure_ascii=False, indent=indent)


async def _send(args: argparse.Namespace) -> None:
    messages: list[str] = []
    for message in args.messages:
        messages.extend(_stdin_lines(args.stdin) if message == "-" else [message])
    payloads = _parse_messages(messages, args.json)
    client = await _open(args)
    try:
        await _exchange(client, args, payloads)
    finally:
        await client.__aexit__(None, None, None)


async def _exchange(
    client: Client, args: argparse.Namespace, payloads: list[Any]
) -> None:
    received = 0
    try:
        for payload in payloads:
            if args.terminator == "none":
                text = json.dumps(payload) if args.json else payload
                await client.write(text.encode())
            elif args.json:
                await client.write_json(payload)
            else:
                await client.write_str(payload)
        if args.terminator == "none":
            await _print_raw(client, args)
            return
        replies = len(payloads) if args.replies is None else args.replies
        for number in range(replies):
            try:
                with anyio.fail_after(args.timeout):
                    line = await client.read_str()
                    while line.encode() == HEARTBEAT:  # a server's heartbeat
                        line = await client.read_str()
            except TimeoutError as exc:
                raise CliError(
                    f"timed out after {args.timeout} s waiting for reply "
                    f"{number + 1} of {replies}"
                ) from exc
            received += 1
            try:
                line = _shown_reply(line, args.json)
            except json.JSONDecodeError as exc:
                raise CliError(f"reply {number + 1} is not JSON: {line!r}") from exc
            _out(line)
    except (ConnectionError, EOFError) as exc:
        if received == 0 and not client.stats.bytes_received:
            raise CliError(_busy_hint(client)) from exc
        raise CliError(f"connection lost: {exc}") from exc


async def _print_raw(client: Client, args: argparse.Namespace) -> None:
    """``--terminator none``: print whatever arrives until the timeout."""
    if args.replies == 0:
        return
    received = 0
    with anyio.move_on_after(args.timeout):
        while data := await client.read(65536):
            received += len(data)
            _out(data.decode(errors="replace"), end="")
        if not received:
            raise CliError(_busy_hint(client))
        return
    if not received:
        raise CliError(
            f"nothing received within {args.timeout} s (--terminator none prints "
            "whatever arrives until --timeout; --replies 0 does not wait)"
        )


# -- connect ----------------------------------------------------------------------


class _Session:
    """What ``connect`` has seen so far."""

    def __init__(self) -> None:
        self.received = 0
        self.closed_by_peer: BaseException | None = None
        # After the end of input: wait this long after the last reply.
        self.linger = anyio.CancelScope()


async def _connect(args: argparse.Namespace) -> None:
    client = await _open(args)
    session = _Session()
    try:
        if _is_tty(sys.stdin):
            print(
                f"connected to {args.host}:{args.port}; type a message and "
                "press Enter to send it; Ctrl-D (end of input) or Ctrl-C ends",
                file=sys.stderr,
                flush=True,
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
        print(f"{args.host}:{args.port} closed the connection", file=sys.stderr)


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
                    print(f"not JSON, not sent: {line!r} ({exc.msg})", file=sys.stderr)
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
        "demo": _demo,
        "serve": _serve,
        "send": _send,
        "connect": _connect,
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
