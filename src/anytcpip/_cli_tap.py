"""The ``anytcpip tap`` and ``anytcpip replay`` subcommands.

``_cli`` registers them (:func:`add_parsers`, :data:`COMMANDS`). Writing to
stdout is this module's purpose; it uses ``sys.stdout`` rather than
``print``.

Exit status: 0 when stopped by SIGTERM or after ``--once``; 130 on Ctrl-C
(SIGINT); 1 with one line on stderr for a target that cannot be reached, a
port that cannot be listened on, or a file that is not a recording; 2 for
bad arguments.
"""

from __future__ import annotations

import argparse
import codecs
import logging
import os
import re
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import anyio
import anyio.abc

from ._cli_args import count as _size
from ._cli_args import port as _port
from ._cli_args import positive as _positive
from ._cli_common import CliError, stop_signals, stopped
from ._connection import BaseClientOrServer
from ._constants import DEFAULT_ENCODING, DEFAULT_LOCALHOST
from ._replay import (
    KeyFunction,
    ReplayServer,
    ignore_bytes,
    ignore_json_fields,
    regex_key,
)
from ._streams import host_port
from ._tap import Tap, describe_error
from .recording import Framing, Recording, RecordingError, load

__all__ = ["COMMANDS", "add_parsers"]

TERMINATOR_NAMES = {"crlf": b"\r\n", "lf": b"\n", "cr": b"\r"}


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# -- argument types ------------------------------------------------------------


def _terminator(text: str) -> bytes:
    if text.lower() in TERMINATOR_NAMES:
        return TERMINATOR_NAMES[text.lower()]
    try:
        value = codecs.escape_decode(text.encode("latin-1"))[0]
    except (ValueError, UnicodeEncodeError):
        raise argparse.ArgumentTypeError(f"bad terminator: {text!r}") from None
    if not isinstance(value, bytes) or not value:
        raise argparse.ArgumentTypeError("the terminator must not be empty")
    return value


def _encoding(text: str) -> str:
    try:
        codecs.lookup(text)
    except LookupError:
        raise argparse.ArgumentTypeError(f"unknown encoding: {text!r}") from None
    return text


def _byte_range(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+):(\d+)", text)
    if match is None or int(match[1]) > int(match[2]):
        raise argparse.ArgumentTypeError(
            f"not a byte range START:END (START <= END): {text!r}"
        )
    return int(match[1]), int(match[2])


def _regex(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"bad regular expression: {exc}") from None


# -- parsers -------------------------------------------------------------------


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``tap`` and ``replay`` subcommands to ``commands``.

    Parameters
    ----------
    commands
        The subparsers action of the ``anytcpip`` parser.
    common
        The parent parser holding ``--backend`` and ``--debug``.
    """
    tap = commands.add_parser(
        "tap",
        parents=[common],
        help="show (and record) the messages between a client and a controller",
        description="A transparent one-client proxy. Point the client at "
        "LISTEN_PORT instead of the controller; every byte is forwarded "
        "unchanged both ways, and each message is shown live with a "
        "timestamp and a direction. Each client connection gets its own "
        "connection to the target. EOF and reset propagate as they came. "
        "The port is printed (LISTEN_PORT 0 picks a free one). Ctrl-C stops "
        "it (exit status 130); a target that cannot be reached stops it "
        "with status 1 unless --keep-going.",
    )
    tap.add_argument("listen_port", metavar="LISTEN_PORT", type=_port)
    tap.add_argument("target_host", metavar="TARGET_HOST")
    tap.add_argument("target_port", metavar="TARGET_PORT", type=_port)
    tap.add_argument(
        "--host", default=DEFAULT_LOCALHOST, help="address to listen on (127.0.0.1)"
    )
    _add_framing_options(tap)
    tap.add_argument(
        "--hide-heartbeats",
        action="store_true",
        help="do not show heartbeat lines (they are still forwarded and recorded)",
    )
    tap.add_argument(
        "--record",
        metavar="FILE",
        help="record the session(s) to FILE (JSON Lines; see the guide)",
    )
    tap.add_argument(
        "--quiet", action="store_true", help="show nothing (e.g. only --record)"
    )
    tap.add_argument(
        "--once", action="store_true", help="exit (status 0) after the first session"
    )
    tap.add_argument(
        "--keep-going",
        action="store_true",
        help="keep listening when the target cannot be reached",
    )
    tap.add_argument(
        "--connect-timeout",
        type=_positive,
        default=10.0,
        metavar="S",
        help="wait at most S s for the target (default: 10)",
    )

    replay = commands.add_parser(
        "replay",
        parents=[common],
        help="serve a recording as a mock controller",
        description="Serve one client at a time, answering each message with "
        "what the recorded controller answered to the same message (in "
        "recorded order when it was sent several times, then the last answer "
        "again), and sending the controller's unsolicited messages at their "
        "recorded times. The port is printed (--port 0 picks a free one). "
        "Ctrl-C stops it (exit status 130).",
    )
    replay.add_argument("file", metavar="FILE", help="a recording (tap --record)")
    replay.add_argument(
        "--host", default=DEFAULT_LOCALHOST, help="address to listen on (127.0.0.1)"
    )
    replay.add_argument(
        "--port", type=_port, default=0, help="default: 0, a free port (printed)"
    )
    replay.add_argument(
        "--timing",
        choices=["recorded", "fast"],
        default="recorded",
        help="recorded: answer after the recorded delays (default); fast: at once",
    )
    keys = replay.add_mutually_exclusive_group()
    keys.add_argument(
        "--ignore-json-field",
        action="append",
        metavar="NAME",
        help="match JSON messages ignoring this top-level field (repeatable)",
    )
    keys.add_argument(
        "--key-regex",
        type=_regex,
        metavar="REGEX",
        help="match messages on the first group (or the match) of REGEX",
    )
    keys.add_argument(
        "--ignore-bytes",
        type=_byte_range,
        action="append",
        metavar="START:END",
        help="match binary messages ignoring these bytes (repeatable)",
    )
    replay.add_argument(
        "--unknown-reply",
        metavar="TEXT",
        help="reply TEXT (framed like the recording) to a command not in it "
        "(default: no reply; either way it is logged)",
    )
    replay.add_argument(
        "--unsolicited-regex",
        type=_regex,
        metavar="REGEX",
        help="controller messages matching REGEX are unsolicited (telemetry), "
        "sent at their recorded times, not as answers",
    )
    replay.add_argument(
        "--session",
        type=int,
        metavar="N",
        help="which recorded session to serve (default: the first)",
    )
    replay.add_argument(
        "--once", action="store_true", help="exit (status 0) after the first client"
    )


def _add_framing_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--framing",
        choices=["lines", "json", "frames", "raw"],
        default="lines",
        help="how to cut messages: lines (default), json (pretty-printed), "
        "frames (length prefix), raw (hex dump of each chunk)",
    )
    parser.add_argument(
        "--terminator",
        type=_terminator,
        default=b"\r\n",
        help="lines/json: crlf (default), lf, cr, or a string with escapes",
    )
    parser.add_argument(
        "--encoding",
        type=_encoding,
        default=DEFAULT_ENCODING,
        help="lines/json: text encoding (default: utf-8)",
    )
    parser.add_argument(
        "--prefix",
        type=int,
        choices=[1, 2, 4, 8],
        default=4,
        help="frames: bytes of the length field (default: 4)",
    )
    parser.add_argument(
        "--byteorder",
        choices=["big", "little"],
        default="big",
        help="frames: byte order of the length field (default: big)",
    )
    parser.add_argument(
        "--length-offset",
        type=_size,
        default=0,
        metavar="N",
        help="frames: where the length field starts in the header (default: 0)",
    )
    parser.add_argument(
        "--header-size",
        type=_size,
        metavar="N",
        help="frames: header size, length field included; the length counts "
        "the bytes after it (default: just the length field)",
    )


def _framing(args: argparse.Namespace) -> Framing:
    try:
        return Framing(
            args.framing,
            terminator=args.terminator,
            encoding=args.encoding,
            prefix=args.prefix,
            byteorder=args.byteorder,
            length_offset=args.length_offset,
            header_size=args.header_size,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from exc


# -- waiting for the end -----------------------------------------------------------


async def _first(*waiters: Callable[[], Awaitable[Any]]) -> Any:
    """Run the waiters; return the result of the first to finish."""
    result: list[Any] = []

    async def run(waiter: Callable[[], Awaitable[Any]]) -> None:
        value = await waiter()
        if not result:
            result.append(value)
        task_group.cancel_scope.cancel()

    async with anyio.create_task_group() as task_group:
        for waiter in waiters:
            task_group.start_soon(run, waiter)
    return result[0] if result else None


async def _signal(signals: Any) -> int:
    async for signum in signals:
        return int(signum)
    return 0  # pragma: no cover - the iterator never ends


def _verbose(args: argparse.Namespace) -> None:
    if not args.debug:
        logging.getLogger("anytcpip").setLevel(logging.INFO)


# -- tap -----------------------------------------------------------------------------


async def run_tap(args: argparse.Namespace) -> int:
    """Run ``anytcpip tap``."""
    _verbose(args)
    framing = _framing(args)
    target_failed = anyio.Event()
    errors: list[OSError] = []

    def on_target_error(exc: OSError) -> None:
        errors.append(exc)
        if not args.keep_going:
            target_failed.set()

    tap = Tap(
        args.target_host,
        args.target_port,
        host=args.host,
        port=args.listen_port,
        framing=framing,
        record=args.record,
        display=None if args.quiet else _out,
        hide_heartbeats=args.hide_heartbeats,
        connect_timeout=args.connect_timeout,
        on_target_error=on_target_error,
    )
    with stop_signals() as signals:  # before listening: no signal is missed
        try:
            await tap.__aenter__()
        except OSError as exc:
            raise CliError(exc.strerror or str(exc)) from exc
        try:
            _out(f"tap listening on {tap.header.listen}, forwarding to {tap.target}")

            async def once() -> str:
                if not args.once:
                    await anyio.sleep_forever()
                await tap.wait_sessions_ended(1)
                return "once"

            async def failed() -> str:
                await target_failed.wait()
                return "failed"

            stop = await _first(lambda: _signal(signals), failed, once)
        finally:
            await tap.aclose()
    if stop == "failed":
        error = errors[0]
        reason = describe_error(error)
        raise CliError(f"cannot connect to target {tap.target}: {reason}")
    return 0 if stop == "once" else stopped(stop)


# -- replay --------------------------------------------------------------------------


def _load(path: str) -> Recording:
    try:
        return load(path)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except RecordingError as exc:
        raise CliError(str(exc)) from exc


def _key(args: argparse.Namespace, encoding: str) -> KeyFunction | None:
    if args.ignore_json_field:
        return ignore_json_fields(*args.ignore_json_field)
    if args.key_regex is not None:
        return regex_key(args.key_regex, encoding)
    if args.ignore_bytes:
        return ignore_bytes(*args.ignore_bytes)
    return None


async def run_replay(args: argparse.Namespace) -> int:
    """Run ``anytcpip replay``."""
    _verbose(args)
    recording = _load(args.file)
    framing = recording.framing
    unknown: bytes | None = None
    if args.unknown_reply is not None:
        try:
            unknown = framing.encode(args.unknown_reply.encode(framing.encoding))
        except (ValueError, UnicodeEncodeError) as exc:
            raise CliError(f"--unknown-reply: {exc}") from exc
    pattern = args.unsolicited_regex

    def unsolicited(message: bytes) -> bool:
        text = message.decode(framing.encoding, errors="replace")
        return pattern.search(text) is not None

    timing: Literal["recorded", "fast"] = args.timing
    served = anyio.Event()

    async def on_change(conn: BaseClientOrServer) -> None:
        if not conn.connected:
            served.set()  # a client has come and gone

    try:
        server = ReplayServer(
            recording,
            host=args.host,
            port=args.port,
            key=_key(args, framing.encoding),
            timing=timing,
            unknown_reply=unknown,
            unsolicited=None if pattern is None else unsolicited,
            session=args.session,
            connect_callback=on_change,
        )
    except ValueError as exc:
        raise CliError(f"{args.file}: {exc}") from exc
    script = server.script
    with stop_signals() as signals:
        try:
            await server.__aenter__()
        except OSError as exc:
            raise CliError(exc.strerror or str(exc)) from exc
        try:
            _out(
                f"replaying {os.path.basename(args.file)} ({script.commands} "
                f"commands, {len(script.unsolicited)} unsolicited messages) "
                f"on {host_port(args.host, server.port)}"
            )

            async def once() -> str:
                if not args.once:
                    await anyio.sleep_forever()
                await served.wait()
                return "once"

            stop = await _first(lambda: _signal(signals), once)
        finally:
            await server.__aexit__(None, None, None)
    return 0 if stop == "once" else stopped(stop)


COMMANDS: dict[str, Callable[[argparse.Namespace], Awaitable[int]]] = {
    "tap": run_tap,
    "replay": run_replay,
}
"""The runners of the subcommands, by name."""
