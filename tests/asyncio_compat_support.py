"""Shared helpers of the ``test_asyncio_compat*`` modules (no tests here)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib.util
import sys
import unittest
from collections.abc import AsyncGenerator
from typing import Any

from anytcpip import asyncio_compat as tcpip

TCP_TIMEOUT = 2
"""Standard timeout for TCP/IP messages (seconds): turns a hang into a failure."""


class ShortStruct(ctypes.Structure):
    _pack_ = 1
    _fields_ = [
        ("ushort_0", ctypes.c_ushort),
        ("int64_0", ctypes.c_int64),
        ("double_0", ctypes.c_double),
        ("float_0", ctypes.c_float),
    ]


class EchoServer(tcpip.OneClientReadLoopServer):
    """A trivial echo server (the lsst.ts.tcpip documented example)."""

    async def read_and_dispatch(self) -> None:
        data = await self.read_str()
        await self.write_str(data)


class CountingTestCase(tcpip.BaseOneClientServerTestCase):
    """Base test case whose servers report to ``connect_queue`` by default."""

    @contextlib.asynccontextmanager
    async def create_server(
        self, **kwargs: Any
    ) -> AsyncGenerator[tcpip.OneClientServer, None]:
        # These tests count connect_queue entries of the server by default.
        kwargs.setdefault("connect_callback", self.connect_callback)
        async with super().create_server(**kwargs) as server:
            yield server


_HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None


def on_uvloop(case: type[unittest.IsolatedAsyncioTestCase]) -> Any:
    """Return a subclass of ``case`` whose tests run on a uvloop event loop."""
    import uvloop

    attributes: dict[str, Any]
    if sys.version_info >= (3, 13):
        attributes = {"loop_factory": staticmethod(uvloop.new_event_loop)}
    else:  # IsolatedAsyncioTestCase takes its loop from the policy

        def run(self: Any, result: Any = None) -> Any:
            previous = asyncio.get_event_loop_policy()
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
            try:
                return case.run(self, result)
            finally:
                asyncio.set_event_loop_policy(previous)

        attributes = {"run": run}
    variant = type(f"{case.__name__}OnUvloop", (case,), attributes)
    return unittest.skipUnless(_HAS_UVLOOP, "uvloop not installed")(variant)
