"""anytcpip.asyncio_compat, tested as a user of lsst.ts.tcpip 2.x would.

The tests use only the lsst.ts.tcpip API, through the one changed import
below, and wait on futures and queues with timeouts instead of sleeping. They
are split by concept: this module has the documented example and the
package's public names; ``test_asyncio_compat_client_server``,
``test_asyncio_compat_read_loop`` and ``test_asyncio_compat_streams`` the
classes and functions; ``test_asyncio_compat_patterns`` what real packages
do beyond the examples. Every test case runs on asyncio and again on uvloop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import unittest
from typing import Any

import pytest

from anytcpip import asyncio_compat as tcpip
from asyncio_compat_support import TCP_TIMEOUT, EchoServer, on_uvloop

# -- the example of lsst.ts.tcpip's documentation, with only the import changed


class ExampleTestCase(unittest.IsolatedAsyncioTestCase):
    async def test_echo_server(self) -> None:
        log = logging.getLogger()

        server = EchoServer(port=0, log=log)
        await server.start_task

        client = tcpip.Client(
            host=server.host,
            port=server.port,
            log=server.log,
        )
        await client.start_task
        await server.connected_task

        for write_str in ("some data", "more data", "yet more data"):
            await asyncio.wait_for(client.write_str(write_str), timeout=TCP_TIMEOUT)
            read_str = await asyncio.wait_for(client.read_str(), timeout=TCP_TIMEOUT)
            assert read_str == write_str

        await client.close()
        await server.close()
        assert client.done_task.done() and server.done_task.done()


def test_constants() -> None:
    assert tcpip.DEFAULT_ENCODING == "utf-8"
    assert tcpip.DEFAULT_TERMINATOR == tcpip.TERMINATOR == b"\r\n"
    assert tcpip.DEFAULT_LOCALHOST == tcpip.LOCALHOST_IPV4 == tcpip.LOCAL_HOST
    assert tcpip.LOCALHOST_IPV4 == "127.0.0.1"
    assert tcpip.LOCALHOST_IPV6 == "::1"
    assert tcpip.HEARTBEAT == b"heartbeat"
    assert tcpip.DEFAULT_MONITOR_CONNECTION_INTERVAL == 0.1
    assert tcpip.DEFAULT_MAX_HEARTBEAT_INTERVAL == 10.0
    assert (tcpip.KEEPALIVE_TIME, tcpip.KEEPALIVE_INTERVAL) == (60, 15)
    assert tcpip.KEEPALIVE_PROBES == 4


def test_public_names() -> None:
    """Test the contract: every name in ``__all__`` exists and is documented.

    (Not ``dir(module)``, which also holds what pytest's assertion rewriting
    or an installed wheel add.)
    """
    import anytcpip
    from anytcpip.asyncio_compat import _constants

    assert len(set(tcpip.__all__)) == len(tcpip.__all__)
    for name in tcpip.__all__:
        assert hasattr(tcpip, name), name
        obj = getattr(tcpip, name)
        if isinstance(obj, type) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"
            assert obj.__module__ == "anytcpip.asyncio_compat", name
        else:  # a constant or type alias: documented where it is defined
            documented = (
                name in anytcpip.__all__
                or name in (_constants.__doc__ or "")
                or name in (tcpip.__doc__ or "")
            )
            assert documented, f"{name} is not documented"
    namespace: dict[str, Any] = {}
    exec("from anytcpip.asyncio_compat import *", namespace)
    assert set(tcpip.__all__) <= set(namespace)


def test_needs_a_running_loop() -> None:
    with pytest.raises(RuntimeError):
        tcpip.Client(host="127.0.0.1", port=1, log=None)


ExampleTestCaseOnUvloop = on_uvloop(ExampleTestCase)
