"""The ``anytcpip`` command: ``demo``, ``serve`` and ``send``.

Printing is this module's purpose (it is the only one allowed to print);
library modules log instead.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import anyio

from ._client import Client
from ._connection import BaseClientOrServer
from ._constants import DEFAULT_LOCALHOST, HEARTBEAT
from ._read_loop import OneClientReadLoopServer
from ._server import OneClientServer
from ._version import __version__

__all__ = ["main"]

TERMINATORS = {"crlf": b"\r\n", "lf": b"\n"}
DEMO_ROUND_TRIPS = 1000
log = logging.getLogger("anytcpip.cli")


class CliError(Exception):
    """An error to report in one line (exit status 1)."""


# -- running on a backend -----------------------------------------------------


def _run(func: Any, args: argparse.Namespace) -> None:
    backend, options = args.backend, {}
    if backend == "uvloop":
        backend, options = "asyncio", {"use_uvloop": True}
    anyio.run(func, args, backend=backend, backend_options=options)


# -- demo -----------------------------------------------------------------------


class _Sample(ctypes.Structure):
    _fields_ = [("counter", ctypes.c_uint32), ("xyz", ctypes.c_double * 3)]


class EchoServer(OneClientReadLoopServer):
    """Echo every message back: text and JSON lines, and structs."""

    json_echo = False

    async def read_and_dispatch(self) -> None:
        if self.json_echo:
            message = await self.read_json()
            log.info("%s: received %r", self.name, message)
            await self.write_json(message)
        else:
            line = await self.read_str()
            log.info("%s: received %r", self.name, line)
            await self.write_str(line)


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


async def _serve(args: argparse.Namespace) -> None:
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
    with _stop_signals() as signals:  # before listening: no signal is missed
        async with server:
            print(f"{kind} server listening on {args.host}:{server.port}", flush=True)
            async for signum in signals:
                log.info("stopping on %s", signal.Signals(signum).name)
                break
    print("stopped", file=sys.stderr)


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


async def _send(args: argparse.Namespace) -> None:
    terminator = TERMINATORS.get(args.terminator, b"\r\n")
    payloads: list[Any] = []
    for message in args.messages:
        if args.json:
            try:
                payloads.append(json.loads(message))
            except json.JSONDecodeError as exc:
                raise CliError(f"not JSON: {message!r} ({exc.msg})") from exc
        else:
            payloads.append(message)
    client = Client(
        args.host, args.port, terminator=terminator, connect_timeout=args.timeout
    )
    try:
        await client.__aenter__()
    except OSError as exc:
        raise CliError(exc.strerror or str(exc)) from exc
    try:
        await _exchange(client, args, payloads)
    finally:
        await client.__aexit__(None, None, None)


async def _exchange(
    client: Client, args: argparse.Namespace, payloads: list[Any]
) -> None:
    for payload in payloads:
        if args.terminator == "none":
            text = json.dumps(payload) if args.json else payload
            await client.write(text.encode())
        elif args.json:
            await client.write_json(payload)
        else:
            await client.write_str(payload)
    if args.terminator == "none":
        with anyio.move_on_after(args.timeout):
            while data := await client.read(65536):
                sys.stdout.write(data.decode(errors="replace"))
                sys.stdout.flush()
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
        except (ConnectionError, EOFError) as exc:
            raise CliError(f"connection lost: {exc}") from exc
        if args.json:
            try:
                line = json.dumps(json.loads(line))
            except json.JSONDecodeError as exc:
                raise CliError(f"reply {number + 1} is not JSON: {line!r}") from exc
        print(line, flush=True)


# -- argument parsing -------------------------------------------------------------


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value < 65536:
        raise argparse.ArgumentTypeError(f"must be in 0..65535, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``anytcpip`` command."""
    parser = argparse.ArgumentParser(
        prog="anytcpip",
        description="TCP/IP tools for instrument control: a demo, a mock "
        "controller and a line/JSON netcat.",
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
        "connections and messages. Ctrl-C stops it.",
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
        description="Connect, send each MESSAGE, print the replies, exit.",
    )
    send.add_argument("host", metavar="HOST")
    send.add_argument("port", metavar="PORT", type=_port)
    send.add_argument("messages", metavar="MESSAGE", nargs="+")
    send.add_argument("--json", action="store_true", help="messages are JSON")
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
        help="line ending; none sends raw bytes and prints what arrives",
    )
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
    command = {"demo": _demo, "serve": _serve, "send": _send}[args.command]
    try:
        _run(command, args)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
        return 0
    except CliError as exc:
        if args.debug:
            raise
        print(f"anytcpip {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if args.debug:
            raise
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        print(f"anytcpip {args.command}: error: {reason}", file=sys.stderr)
        return 1
    return 0
