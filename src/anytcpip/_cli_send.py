"""The ``anytcpip send`` subcommand: send messages, print the replies, exit.

Messages come from the command line or, for a MESSAGE of ``-``, from stdin
(read by ``main`` before connecting). With ``--terminator none`` raw bytes
are sent and whatever arrives until the timeout is printed.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

import anyio

from ._cli_common import CliError
from ._cli_common import busy_hint as _busy_hint
from ._cli_common import open_client as _open
from ._cli_common import out as _out
from ._cli_common import shown_reply as _shown_reply
from ._client import Client
from ._constants import HEARTBEAT

__all__ = ["run_send"]


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


async def run_send(args: argparse.Namespace) -> None:
    """Run ``anytcpip send``."""
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
