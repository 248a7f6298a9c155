"""anytcpip: TCP/IP client and one-client server for asyncio, uvloop and trio.

Built on anyio byte streams and task groups: the same code runs on every
backend, with structured concurrency, event-driven disconnect detection and
bounded memory. The guide and the API reference: https://anytcpip.readthedocs.io
"""

import logging as _logging

from ._binding import Connection as Connection
from ._client import Client as Client
from ._connection import BaseClientOrServer as BaseClientOrServer
from ._connection import ConnectCallback as ConnectCallback
from ._constants import DEFAULT_ENCODING as DEFAULT_ENCODING
from ._constants import DEFAULT_LOCALHOST as DEFAULT_LOCALHOST
from ._constants import DEFAULT_MAX_FRAME_SIZE as DEFAULT_MAX_FRAME_SIZE
from ._constants import DEFAULT_MAX_LINE_LENGTH as DEFAULT_MAX_LINE_LENGTH
from ._constants import DEFAULT_TERMINATOR as DEFAULT_TERMINATOR
from ._constants import HEARTBEAT as HEARTBEAT
from ._constants import KEEPALIVE_INTERVAL as KEEPALIVE_INTERVAL
from ._constants import KEEPALIVE_PROBES as KEEPALIVE_PROBES
from ._constants import KEEPALIVE_TIME as KEEPALIVE_TIME
from ._constants import LOCAL_HOST as LOCAL_HOST
from ._constants import LOCALHOST_IPV4 as LOCALHOST_IPV4
from ._constants import LOCALHOST_IPV6 as LOCALHOST_IPV6
from ._constants import TERMINATOR as TERMINATOR
from ._correlator import Correlator as Correlator
from ._dispatch import StructDispatcher as StructDispatcher
from ._exceptions import AnyTcpIpError as AnyTcpIpError
from ._exceptions import BadMessageError as BadMessageError
from ._exceptions import ConnectionLostError as ConnectionLostError
from ._exceptions import FrameTooLargeError as FrameTooLargeError
from ._exceptions import IncompleteReadError as IncompleteReadError
from ._exceptions import LimitOverrunError as LimitOverrunError
from ._exceptions import MessageLengthError as MessageLengthError
from ._exceptions import NotConnectedError as NotConnectedError
from ._exceptions import RequestTimeoutError as RequestTimeoutError
from ._exceptions import UnknownMessageError as UnknownMessageError
from ._framing import NEED_DATA as NEED_DATA
from ._framing import FrameBuffer as FrameBuffer
from ._read_loop import OneClientReadLoopServer as OneClientReadLoopServer
from ._reconnect import Backoff as Backoff
from ._requester import Requester as Requester
from ._server import OneClientServer as OneClientServer
from ._socket_options import set_socket_options as set_socket_options
from ._stats import ConnectionStats as ConnectionStats
from ._streams import close_stream as close_stream
from ._streams import read_into as read_into
from ._streams import write_from as write_from
from ._version import __version__ as __version__

__all__ = (
    "DEFAULT_ENCODING",
    "DEFAULT_LOCALHOST",
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_LINE_LENGTH",
    "DEFAULT_TERMINATOR",
    "HEARTBEAT",
    "KEEPALIVE_INTERVAL",
    "KEEPALIVE_PROBES",
    "KEEPALIVE_TIME",
    "LOCALHOST_IPV4",
    "LOCALHOST_IPV6",
    "LOCAL_HOST",
    "NEED_DATA",
    "TERMINATOR",
    "AnyTcpIpError",
    "Backoff",
    "BadMessageError",
    "BaseClientOrServer",
    "Client",
    "ConnectCallback",
    "Connection",
    "ConnectionLostError",
    "ConnectionStats",
    "Correlator",
    "FrameBuffer",
    "FrameTooLargeError",
    "IncompleteReadError",
    "LimitOverrunError",
    "MessageLengthError",
    "NotConnectedError",
    "OneClientReadLoopServer",
    "OneClientServer",
    "RequestTimeoutError",
    "Requester",
    "StructDispatcher",
    "UnknownMessageError",
    "__version__",
    "close_stream",
    "read_into",
    "set_socket_options",
    "write_from",
)

# Tracebacks and reprs say ``anytcpip.Client``, not ``anytcpip._client.Client``.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("anytcpip."):
        try:
            _obj.__module__ = __name__
        except (AttributeError, TypeError):  # pragma: no cover - constants
            pass
del _name, _obj

# A library never configures logging; this only silences "no handler" output.
_logging.getLogger(__name__).addHandler(_logging.NullHandler())
