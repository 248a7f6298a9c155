"""Argument types shared by the ``anytcpip`` subcommands.

Each turns a command-line string into a value or raises
:class:`argparse.ArgumentTypeError` with a message that names the bad text.
"""

from __future__ import annotations

import argparse

__all__ = ["count", "port", "positive"]


def positive(text: str) -> float:
    """Parse a number > 0 (a time in seconds, say)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def count(text: str) -> int:
    """Parse a whole number >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def port(text: str) -> int:
    """Parse a TCP port number, 0 to 65535 (0: any free port)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value < 65536:
        raise argparse.ArgumentTypeError(f"must be in 0..65535, got {text}")
    return value
