"""A stand-in for the few ``lsst.ts.utils`` helpers lsst.ts.tcpip uses.

lsst.ts.tcpip imports ``lsst.ts.utils`` (Rubin's utility package, not on
PyPI) only for its read-loop server's heartbeat monitor: the current TAI
time and a future that is already done. ``benchmarks/run.py`` installs this
module as ``lsst.ts.utils`` when the real one is missing, so lsst.ts.tcpip
can be measured without it. Nothing here is used by the scenarios' hot
paths.
"""

from __future__ import annotations

import asyncio
import sys
import time
import types

__all__ = ["current_tai", "install", "make_done_future"]

TAI_MINUS_UTC = 37.0  # seconds, since 2017-01-01


def current_tai() -> float:
    """TAI now, in unix seconds (UTC plus the leap seconds)."""
    return time.time() + TAI_MINUS_UTC


def make_done_future() -> asyncio.Future[None]:
    """Return a future that is already done."""
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_result(None)
    return future


def install() -> None:
    """Register this module as ``lsst.ts.utils`` (if none is importable)."""
    module = types.ModuleType("lsst.ts.utils")
    module.current_tai = current_tai  # type: ignore[attr-defined]
    module.make_done_future = make_done_future  # type: ignore[attr-defined]
    module.__doc__ = __doc__
    sys.modules["lsst.ts.utils"] = module
    parent = sys.modules.get("lsst.ts")  # from lsst.ts.tcpip's source, if loaded
    if parent is not None:
        parent.utils = module  # type: ignore[attr-defined]
