"""lsst.ts.tcpip 2.x, as a drop-in for asyncio code: change one import.

Replace ``from lsst.ts import tcpip`` with::

    from anytcpip import asyncio_compat as tcpip

and the code runs unchanged on anytcpip: constructors that start work on the
running event loop, the ``start_task``/``done_task``/``connected_task``
futures, the same read/write methods and exceptions, the module functions on
asyncio streams and the unittest base classes. Underneath, each instance
drives a native :mod:`anytcpip` object (in a task of its own), so
disconnects are noticed without polling; move to the native API at your own
pace. Needs a running asyncio event loop (uvloop included); not for trio.

``ConnectCallbackType`` is the type of ``connect_callback``: an async
callable taking the client or server whose state changed. What still differs
from lsst.ts.tcpip 2.2, and why, is listed in ``docs/migrating.md``.
"""

from ._base import BaseClientOrServer as BaseClientOrServer
from ._base import ConnectCallbackType as ConnectCallbackType
from ._client import Client as Client
from ._constants import DEFAULT_ENCODING as DEFAULT_ENCODING
from ._constants import DEFAULT_LOCALHOST as DEFAULT_LOCALHOST
from ._constants import DEFAULT_MAX_HEARTBEAT_INTERVAL as DEFAULT_MAX_HEARTBEAT_INTERVAL
from ._constants import (
    DEFAULT_MONITOR_CONNECTION_INTERVAL as DEFAULT_MONITOR_CONNECTION_INTERVAL,
)
from ._constants import DEFAULT_TERMINATOR as DEFAULT_TERMINATOR
from ._constants import HEARTBEAT as HEARTBEAT
from ._constants import KEEPALIVE_INTERVAL as KEEPALIVE_INTERVAL
from ._constants import KEEPALIVE_PROBES as KEEPALIVE_PROBES
from ._constants import KEEPALIVE_TIME as KEEPALIVE_TIME
from ._constants import LOCAL_HOST as LOCAL_HOST
from ._constants import LOCALHOST_IPV4 as LOCALHOST_IPV4
from ._constants import LOCALHOST_IPV6 as LOCALHOST_IPV6
from ._constants import TERMINATOR as TERMINATOR
from ._read_loop import OneClientReadLoopServer as OneClientReadLoopServer
from ._server import OneClientServer as OneClientServer
from ._testing import (
    BaseOneClientReadLoopServerTestCase as BaseOneClientReadLoopServerTestCase,
)
from ._testing import BaseOneClientServerTestCase as BaseOneClientServerTestCase
from ._testing import TestOneClientReadLoopServer as TestOneClientReadLoopServer
from ._utils import close_stream_writer as close_stream_writer
from ._utils import read_into as read_into
from ._utils import set_socket_options as set_socket_options
from ._utils import write_from as write_from

__all__ = (
    "DEFAULT_ENCODING",
    "DEFAULT_LOCALHOST",
    "DEFAULT_MAX_HEARTBEAT_INTERVAL",
    "DEFAULT_MONITOR_CONNECTION_INTERVAL",
    "DEFAULT_TERMINATOR",
    "HEARTBEAT",
    "KEEPALIVE_INTERVAL",
    "KEEPALIVE_PROBES",
    "KEEPALIVE_TIME",
    "LOCALHOST_IPV4",
    "LOCALHOST_IPV6",
    "LOCAL_HOST",
    "TERMINATOR",
    "BaseClientOrServer",
    "BaseOneClientReadLoopServerTestCase",
    "BaseOneClientServerTestCase",
    "Client",
    "ConnectCallbackType",
    "OneClientReadLoopServer",
    "OneClientServer",
    "TestOneClientReadLoopServer",
    "close_stream_writer",
    "read_into",
    "set_socket_options",
    "write_from",
)

# Tracebacks and reprs say ``anytcpip.asyncio_compat.Client``.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith(__name__ + "."):
        try:
            _obj.__module__ = __name__
        except (AttributeError, TypeError):  # pragma: no cover - constants
            pass
del _name, _obj
